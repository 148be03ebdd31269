"""The speedrun benchmark on a short trial of a real recipe: time to each threshold, and where the time went."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.slow  # a whole fit in a child process, about 20 s
def test_the_speedrun_prints_time_to_each_threshold_and_where_it_went(data_dir: Path) -> None:
    trial = ["--trainer.max_epochs", "2", "--trainer.limit_train_batches", "4", "--trainer.limit_val_batches", "2",
             "--trainer.limit_test_batches", "2", "--trainer.accelerator", "cpu"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "benchmarks/speedrun.py", "--config", "configs/speedrun/fashion_mnist_90.yaml", "--seeds",
         "0", "--data-dir", str(data_dir), "--thresholds", "0.05", "0.999", "--", *trial],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "| 0.05 | yes |" in out and "| 0.999 | no | not reached |" in out
    seed_line = next(line for line in out.splitlines() if line.startswith("  seed 0:"))
    whole = float(seed_line.split("whole ")[1].split(" s")[0])
    first = float(seed_line.split("0.05: ")[1].split(" s")[0])
    assert 0 < first < whole
    lines = out.strip().splitlines()
    header = [cell.strip() for cell in lines[-3].strip("|").split("|")]
    values = [float(cell.strip().removesuffix(" s")) for cell in lines[-1].strip("|").split("|")]
    assert header == ["start-up", "data", "steps", "evaluation", "rest", "whole"]
    assert all(value > 0 for value in values) and sum(values[:5]) == pytest.approx(values[5], abs=0.2)
