"""What each per-batch cut of Lightning's loop (``training/profiler.py``, ``callbacks/progress/steady_bar.py``) saves
per Lightning batch, on this machine (per training step where the engine runs one step per batch; once per chunk
where it runs chunks of steps).

A real ``fit --config lenet.yaml`` (its counting callback has per-batch hooks, so Lightning's loop runs) counts, per
steady-state batch, the profiler contexts Lightning opens, each then timed alone (``timeit``, best of 5) the stock way
and ours, and times the bar's per-batch hook when it redraws every batch (median; into a buffer, so a real terminal
costs more). Saved per step = count × (stock − ours): steadier than timing whole steps on a shared machine, and the
counts say why; the ``stock`` side of ``overhead.py`` shows the same cuts end to end.

    python benchmarks/step_cuts.py
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time
import timeit

import lightning as L
from lightning.pytorch.profilers import PassThroughProfiler
from throughput import REPO  # benchmarks/ is the script's folder, on sys.path

from cnn_lightning.commands.fit import make_cli
from cnn_lightning.training.profiler import NoOpProfiler

COUNTED = 100  # steps counted, after 20 of warm-up


class CountPerStep(L.Callback):
    """From batch 20 on, counts profiler contexts, and times the bar's per-batch hook with a redraw every batch, as
    Lightning ships it."""

    def __init__(self) -> None:
        self.counts = {"profile": 0, "redraw": 0}
        self.redraw_us: list[float] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if batch_idx != 20:
            return
        counts, profiler = self.counts, trainer.profiler
        profile, bar = profiler.profile, trainer.progress_bar_callback
        draw = bar.on_train_batch_end

        def counted_profile(name: str):
            counts["profile"] += 1
            return profile(name)

        def timed_draw(*args, **kwargs) -> None:
            start = time.perf_counter()
            draw(*args, **kwargs)
            self.redraw_us.append(1e6 * (time.perf_counter() - start))
            counts["redraw"] += 1

        profiler.profile, bar.on_train_batch_end = counted_profile, timed_draw
        bar.min_interval = 0.0  # as Lightning ships the bar: a redraw every batch


def best_us(function, number: int) -> float:
    return min(timeit.repeat(function, number=number, repeat=5)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(REPO / "data"))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workdir", default="/tmp/cnn_lightning_step_cuts", help="the run's (throwaway) folder")
    args = parser.parse_args()
    counter = CountPerStep()
    cli = make_cli(["--config", "lenet.yaml", "--data.data_dir", args.data_dir, "--data.batch_size",
                    str(args.batch_size), "--trainer.max_steps", str(20 + COUNTED), "--trainer.limit_val_batches", "0",
                    "--trainer.logger", "false", "--trainer.default_root_dir", args.workdir], run=False)  # fmt: skip
    cli.trainer.callbacks.append(counter)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    per_step = {name: count / COUNTED for name, count in counter.counts.items()}

    def enter_exit(profiler) -> None:
        with profiler.profile("[Callback]RunCheckpoint.on_train_batch_end"):
            pass

    stock_profiler, our_profiler = PassThroughProfiler(), NoOpProfiler()
    costs = {  # (stock, ours) microseconds for one occurrence
        "profile": (best_us(lambda: enter_exit(stock_profiler), 100_000),
                    best_us(lambda: enter_exit(our_profiler), 100_000)),
    }  # fmt: skip
    costs["redraw"] = (statistics.median(counter.redraw_us), 0.0)  # ours: one every 0.1 s, nothing per step
    print(f"LeNet, batch {args.batch_size}: per steady-state step, as Lightning ships it → with the project's cuts")
    total = 0.0
    for name, what in [("profile", "profiler contexts"), ("redraw", "bar redraws")]:
        stock, ours = costs[name]
        saved = per_step[name] * (stock - ours)
        total += saved
        print(f"  {what:18s} {per_step[name]:5.1f} a step × ({stock:6.2f} → {ours:5.2f} us) = {saved:6.0f} us saved")
    print(f"  total              {total:,.0f} us a step")


if __name__ == "__main__":
    main()
