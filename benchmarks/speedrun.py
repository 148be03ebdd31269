"""The Fashion-MNIST speedrun: whole-process wall time from pressing Enter to each test-accuracy threshold.

For each seed, a fresh process runs a recipe as a user runs it (``python -m cnn_lightning fit --config
configs/speedrun/X.yaml``, progress bar off), with two additions that change no step: ``--data.val_on_test true``,
so the validation after every epoch is the official test set's (the recipe itself was chosen on the validation
split, with its own settings), and ``benchmarks/phase_clock.py``'s callback, which records when each validation
ended and where the time went. A threshold counts as reached when the median over the seeds of the final test
accuracy reaches it; its time is the median over the seeds of the first validation at or above it (a seed that never
reaches it counts as not reached). The table's phases are medians too: start-up, data, training steps, evaluation,
the rest (checkpoints, loggers, exit).

    python benchmarks/speedrun.py --config configs/speedrun/fashion_mnist_93.yaml --seeds 0 1 2 --data-dir data
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
THRESHOLDS = (0.90, 0.93, 0.94)


def run_once(config: Path, seed: int, data_dir: str, accelerator: str, workdir: Path, extra: list[str]) -> dict:
    """One seed's fit; the phase clock's record with the parent's own wall time added."""
    record_path = workdir / f"phases-{seed}.json"
    command = [sys.executable, "-m", "cnn_lightning", "fit", "--config", str(config.resolve()),
               "--data.data_dir", data_dir, "--data.val_on_test", "true", "--seed_everything", str(seed),
               "--trainer.accelerator", accelerator, "--trainer.enable_progress_bar", "false",
               "--trainer.callbacks+=phase_clock.PhaseClock", f"--trainer.callbacks.path={record_path}",
               *extra]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "benchmarks"), os.environ.get("PYTHONPATH", "")])}
    started = time.time()
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"seed {seed} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    record = json.loads(record_path.read_text())
    record["wall"] = time.time() - started
    return record


def phases(record: dict) -> dict[str, float]:
    """Seconds spent in each phase of one run."""
    evaluation = sum(end - start for start, end in record["evaluation"])
    inside = sum(  # validations Lightning ran inside a training epoch
        min(end, t_end) - max(start, t_start)
        for t_start, t_end in record["training"]
        for start, end in record["evaluation"]
        if start < t_end and end > t_start
    )
    steps = sum(end - start for start, end in record["training"]) - inside
    start_up, data = record["trainer_built"], record["data_ready"] - record["trainer_built"]
    return {
        "start-up": start_up,
        "data": data,
        "steps": steps,
        "evaluation": evaluation,
        "rest": record["wall"] - start_up - data - steps - evaluation,
        "whole": record["wall"],
    }


def first_time_at(record: dict, threshold: float) -> float | None:
    """Seconds from the process's start to the first validation at or above ``threshold``."""
    return next((seconds for _, seconds, accuracy in record["curve"] if accuracy >= threshold), None)


def median_or_none(values: list[float | None]) -> float | None:
    """The median, or None when at least half the seeds never got there."""
    reached = sorted(v for v in values if v is not None)
    if len(reached) * 2 <= len(values) and len(reached) < len(values):
        return None
    padded = reached + [float("inf")] * (len(values) - len(reached))
    return statistics.median(padded)


def report(config: Path, records: list[dict], thresholds: tuple[float, ...]) -> str:
    """The per-seed lines and the summary table, as printed and kept in benchmarks/results."""
    lines = [f"{config}: {len(records)} seeds"]
    for seed, record in records:
        shares = phases(record)
        times = ", ".join(f"{_level(t)}: {_seconds(first_time_at(record, t))}" for t in thresholds)
        lines.append(
            f"  seed {seed}: test acc {record['test_acc']:.4f}, whole {shares['whole']:.1f} s, first reached {times}"
        )
    accuracy = statistics.median(r["test_acc"] for _, r in records)
    lines += [f"median test accuracy {accuracy:.4f}", "", "| threshold | reached | median seconds to it |"]
    lines.append("|---|---|---|")
    for threshold in thresholds:
        seconds = median_or_none([first_time_at(r, threshold) for _, r in records])
        reached = "yes" if accuracy >= threshold and seconds is not None else "no"
        lines.append(f"| {_level(threshold)} | {reached} | {_seconds(seconds)} |")
    shares = {name: statistics.median(phases(r)[name] for _, r in records) for name in phases(records[0][1])}
    lines += ["", "| " + " | ".join(shares) + " |", "|" + "---|" * len(shares)]
    lines.append("| " + " | ".join(f"{value:.1f} s" for value in shares.values()) + " |")
    return "\n".join(lines)


def _level(threshold: float) -> str:
    """0.90 as ``0.90``, 0.999 as ``0.999``."""
    return f"{threshold:.2f}" if round(threshold, 2) == threshold else f"{threshold:g}"


def _seconds(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="e.g. configs/speedrun/fashion_mnist_93.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS))
    parser.add_argument("fit_args", nargs=argparse.REMAINDER, help="after --: more fit arguments (a short trial)")
    args = parser.parse_args()
    extra = args.fit_args[1:] if args.fit_args[:1] == ["--"] else args.fit_args
    data_dir = str(Path(args.data_dir).resolve())
    with tempfile.TemporaryDirectory(prefix="speedrun-") as workdir:
        records = []
        for seed in args.seeds:
            records.append((seed, run_once(args.config, seed, data_dir, args.accelerator, Path(workdir), extra)))
            print(report(args.config, records[-1:], tuple(args.thresholds)).splitlines()[1], flush=True)
    print(report(args.config, records, tuple(args.thresholds)))


if __name__ == "__main__":
    main()
