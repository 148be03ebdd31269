"""What Lightning's per-step calls cost a chunk of steps (training/step_hooks.py): steps straight to torch (``plain``,
what a fit runs when no hook is run per step) against steps through ``manual_backward`` and the
``LightningOptimizer`` (``hooked``: the same fit with one callback hook run at every optimizer step, a no-op).

Fits of ``fit --config lenet.yaml`` alternate in one process, PyTorch on one thread; each counts the main thread's
CPU time over its chunks after a warm-up and divides by the optimizer steps they ran. Medians of the rounds, their
difference per step and the paired ratio are printed. Small batches show the per-step Python best.

    python benchmarks/step_calls.py --batch-size 8 --rounds 7
"""

from __future__ import annotations

import argparse
import statistics
import time

import lightning as L
import torch
from throughput import REPO  # benchmarks/ is the script's folder, on sys.path

from cnn_lightning.commands.fit import make_cli
from cnn_lightning.process import configure_process


class ChunkClock(L.Callback):
    """Main-thread CPU time of the training batches (chunks) from optimizer step ``warmup`` on, per step."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.seconds, self.steps = warmup, 0.0, 0

    def on_train_batch_start(self, trainer: L.Trainer, *args) -> None:
        self.start, self.first = time.thread_time(), trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if self.first >= self.warmup:
            self.seconds += time.thread_time() - self.start
            self.steps += trainer.global_step - self.first


class EveryStep(L.Callback):
    """A hook Lightning calls at every optimizer step: the chunk's steps then go through its per-step calls."""

    def on_before_optimizer_step(self, *args) -> None: ...


def one_fit(side: str, args: argparse.Namespace) -> float:
    """µs of main-thread CPU time per optimizer step of one fit."""
    cli = make_cli(["--config", "lenet.yaml", "--data.data_dir", args.data_dir, "--trainer.accelerator", "cpu",
                    "--trainer.limit_val_batches", "0", "--trainer.max_steps", str(args.warmup + args.steps),
                    "--data.batch_size", str(args.batch_size), "--trainer.logger", "false",
                    "--trainer.enable_progress_bar", "false"], run=False)  # fmt: skip
    clock = ChunkClock(args.warmup)
    cli.trainer.callbacks += [clock] + ([EveryStep()] if side == "hooked" else [])
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return 1e6 * clock.seconds / clock.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(REPO / "data"))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    configure_process()
    torch.set_num_threads(1)
    runs: dict[str, list[float]] = {"plain": [], "hooked": []}
    for _ in range(args.rounds):  # alternated: drift in the machine's load hits both alike
        for side in runs:
            runs[side].append(one_fit(side, args))
    plain, hooked = (statistics.median(runs[side]) for side in runs)
    paired = statistics.median(p / h for p, h in zip(runs["plain"], runs["hooked"], strict=True))
    samples = "; ".join(f"{side} " + " ".join(f"{value:.0f}" for value in values) for side, values in runs.items())
    print(f"LeNet, batch {args.batch_size}, µs of main-thread CPU a step (medians of {args.rounds}): "
          f"plain {plain:,.0f}, hooked {hooked:,.0f}; Lightning's per-step calls {hooked - plain:,.0f} µs a step; "
          f"plain/hooked time {paired:.2f} paired (samples: {samples})")  # fmt: skip


if __name__ == "__main__":
    main()
