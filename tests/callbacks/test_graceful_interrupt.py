"""Kills and signals: SIGKILL at random moments costs at most the steps since the last checkpoint; SIGTERM and
Ctrl+C stop cleanly with a checkpoint and a resume command."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnn_lightning.runs import load_checkpoint
from tests.conftest import run_cli

EPOCHS, BATCHES = 3, 100


def fit_args(data_dir: Path) -> list[str]:
    return [
        "fit", "--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.accelerator", "cpu",
        "--trainer.max_epochs", str(EPOCHS), "--trainer.limit_train_batches", str(BATCHES),
        "--trainer.limit_val_batches", "3", "--checkpoint.last_every_n_steps", "3",
        "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "cnn_lightning", *args], cwd=cwd, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def last_checkpoints(root: Path) -> list[Path]:
    return list(root.glob("lightning_logs/*/version_*/checkpoints/last.ckpt"))


def wait_for_checkpoint(root: Path, process: subprocess.Popen, newer_than: float = 0.0, timeout: float = 120) -> None:
    """Until a last.ckpt written after ``newer_than`` (a modification time) exists: training is under way."""
    deadline = time.monotonic() + timeout
    while not any(path.stat().st_mtime > newer_than for path in last_checkpoints(root)):
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume(data_dir: Path, tmp_path: Path) -> None:
    """Each attempt resumes, trains until it has written a new checkpoint, and is killed a random fraction of a
    second later: often while the next checkpoint (every 3 steps) is being written."""
    rng = random.Random(20261122)
    kills = 0
    for _ in range(4):
        previous = max((path.stat().st_mtime for path in last_checkpoints(tmp_path)), default=0.0)
        resume = ["--ckpt_path", "last"] if previous else []
        process = start(fit_args(data_dir) + resume, tmp_path)
        wait_for_checkpoint(tmp_path, process, newer_than=previous)
        time.sleep(rng.uniform(0.0, 0.8))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
        for checkpoint in tmp_path.rglob("*.ckpt"):  # every checkpoint left on disk loads
            load_checkpoint(checkpoint)
    assert kills >= 3
    final = run_cli(*fit_args(data_dir), "--ckpt_path", "last", cwd=tmp_path)
    assert final.returncode == 0, final.stderr[-3000:]
    assert "test acc" in final.stdout.strip().splitlines()[-2]  # the closing line's first of two
    (last,) = last_checkpoints(tmp_path)  # every resume continued the same run folder
    assert load_checkpoint(last)["global_step"] == EPOCHS * BATCHES


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "code", "notice"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl+C")]
)
@pytest.mark.slow
def test_signal_stops_cleanly_and_resumes(data_dir: Path, tmp_path: Path, signum: int, code: int, notice: str) -> None:
    process = start(fit_args(data_dir), tmp_path)
    wait_for_checkpoint(tmp_path, process)
    process.send_signal(signum)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == code, output[-3000:]
    assert notice in output and "Traceback" not in output
    resume_line = next(line for line in output.splitlines() if line.startswith("Resume with: "))
    (last,) = last_checkpoints(tmp_path)
    stopped_at = load_checkpoint(last)["global_step"]
    assert 0 < stopped_at < EPOCHS * BATCHES
    # The printed command, as given: the run's saved config brings back every setting.
    command = resume_line.removeprefix("Resume with: python -m cnn_lightning ").split()
    resumed = run_cli(*command, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert load_checkpoint(last)["global_step"] == EPOCHS * BATCHES
