"""Ctrl+C and SIGTERM exit 130 and 143 wherever they land — in a fit's validation, in the ``validate`` command, as a
second Ctrl+C — with one line and no traceback, and without Lightning's ``[rank: 0] Received SIGTERM: 15`` (data
preparation: tests/data/test_damaged_data.py; a fit's training: tests/callbacks/test_graceful_interrupt.py)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnn_lightning.__main__ import main
from cnn_lightning.runs import load_checkpoint
from cnn_lightning.stopping import stop_exit_code, stop_signals_handled

RUN = Path(__file__).parent / "fixtures" / "lenet_run_0.2.0"


def test_a_signal_is_recorded_and_the_handlers_from_before_come_back() -> None:
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with stop_signals_handled(), pytest.raises(KeyboardInterrupt):  # SIGTERM too: finally blocks run
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler runs at once
        assert stop_exit_code() == 143
        os.kill(os.getpid(), signal.SIGINT)  # while the process exits by the first: no KeyboardInterrupt, no death
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)
        with stop_signals_handled():
            assert stop_exit_code() is None  # each command starts with none recorded
        assert {signum: signal.getsignal(signum) for signum in before} != before  # still the exiting process's
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
    main(["--help"])  # a command no signal stopped gives back the handlers from before
    assert {signum: signal.getsignal(signum) for signum in before} == before


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "cnn_lightning", *args], cwd=cwd, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal, not a background job
    )  # fmt: skip


def wait_for(path_glob: str, cwd: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 180
    while not list(cwd.glob(path_glob)):
        assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()
        time.sleep(0.02)


def stopped(process: subprocess.Popen, *signals: int, code: int = 130) -> str:
    for signum in signals:
        process.send_signal(signum)
        time.sleep(0.05)
    output, _ = process.communicate(timeout=180)
    assert process.returncode == code, output[-3000:]
    assert "Traceback" not in output and "Received SIGTERM" not in output and "KeyboardInterrupt" not in output
    return output


@pytest.mark.slow
def test_ctrl_c_during_a_fits_validation(data_dir: Path, tmp_path: Path) -> None:
    """Two training batches, then a validation of 5000 single images, interrupted: the fit stops there."""
    process = start(["fit", "--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.accelerator", "cpu",
                     "--trainer.limit_train_batches", "2", "--trainer.num_sanity_val_steps", "0",
                     "--data.eval_batch_size", "1", "--checkpoint.last_every_n_steps", "2",
                     "--trainer.enable_progress_bar", "false"], tmp_path)  # fmt: skip
    wait_for("lightning_logs/lenet/version_0/checkpoints/last.ckpt", tmp_path, process)  # training is over
    time.sleep(0.5)
    output = stopped(process, signal.SIGINT)
    assert "Resume with: python -m cnn_lightning fit --ckpt_path lightning_logs/lenet/version_0" in output
    assert load_checkpoint(tmp_path / "lightning_logs/lenet/version_0/checkpoints/last.ckpt")["global_step"] == 2


@pytest.mark.slow
def test_ctrl_c_during_the_validate_command(data_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(RUN, tmp_path / "lightning_logs" / "version_0")
    process = start(["validate", "--ckpt_path", "lightning_logs/version_0", "--data.data_dir", str(data_dir),
                     "--data.val_size", "5000", "--data.eval_batch_size", "1", "--trainer.limit_val_batches", "1.0",
                     "--trainer.accelerator", "cpu",
                     "--trainer.enable_progress_bar", "false"], tmp_path)  # fmt: skip
    wait_for("lightning_logs/version_0/config.validate-*.yaml", tmp_path, process)  # its setup is done
    time.sleep(1.0)
    output = stopped(process, signal.SIGINT)
    assert output.strip().splitlines()[-1] == "Stopped by Ctrl+C (exit code 130)."


@pytest.mark.slow
def test_a_second_ctrl_c_aborts_with_130(data_dir: Path, tmp_path: Path) -> None:
    args = ["fit", "--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.accelerator", "cpu",
            "--checkpoint.last_every_n_steps", "2", "--trainer.enable_progress_bar", "false"]  # fmt: skip
    process = start(args, tmp_path)
    wait_for("lightning_logs/lenet/version_0/checkpoints/last.ckpt", tmp_path, process)
    output = stopped(process, signal.SIGINT, signal.SIGINT)
    assert "Ctrl+C: stopping after this batch and saving last.ckpt" in output
