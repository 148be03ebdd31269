"""Fashion-MNIST's preparation leaves nothing behind on any exit: a damaged ``.gz`` is named with the way to a good
copy, Ctrl+C or SIGTERM during decompression (a real signal to a real process) removes the temporary file and exits
130/143, and the decompressed files get the permissions the user's umask gives."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnn_lightning.data.fashion_mnist import DEBIAN_DIR, RAW_FILES, prepare_raw_files
from cnn_lightning.errors import DataCorruptError

pytestmark = pytest.mark.skipif(not Path(DEBIAN_DIR).is_dir(), reason="Debian's dataset-fashion-mnist is not here")


def offline_copy(folder: Path) -> Path:
    folder.mkdir()
    for name in RAW_FILES:
        shutil.copy(Path(DEBIAN_DIR) / f"{name}.gz", folder)
    return folder


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: data[: len(data) // 2], "Compressed file ended before the end-of-stream marker was reached"),
        (lambda data: b"not gzip at all", "Not a gzipped file"),
        (lambda data: gzip.compress(gzip.decompress(data)[:-100]), "it holds 9,908 bytes, its header says 10,008"),
    ],
)
def test_a_damaged_gz_is_named_with_the_way_to_a_good_copy(tmp_path: Path, damage, reason: str) -> None:
    offline = offline_copy(tmp_path / "offline")
    damaged = offline / "t10k-labels-idx1-ubyte.gz"
    damaged.write_bytes(damage(damaged.read_bytes()))
    size = damaged.stat().st_size
    with pytest.raises(DataCorruptError) as refused:
        prepare_raw_files(tmp_path / "data", [offline], download=False)
    message = str(refused.value)
    assert message.startswith(f"{damaged} is damaged ({reason}") and "apt-get install --reinstall" in message
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    complete = ["t10k-images-idx3-ubyte", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"]  # before it: kept
    assert sorted(path.name for path in raw.iterdir()) == complete  # no temporary, no half file
    assert damaged.stat().st_size == size  # the user's file is left as it was


def test_decompressed_files_get_the_umasks_permissions(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        raw = prepare_raw_files(tmp_path, [DEBIAN_DIR], download=False)
    finally:
        os.umask(previous)
    assert {oct(path.stat().st_mode & 0o777) for path in raw.iterdir()} == {"0o644"}


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code", "said"), [(signal.SIGINT, 130, "Ctrl+C"), (signal.SIGTERM, 143, "SIGTERM")])
def test_a_signal_during_decompression_leaves_no_temporary_file(
    tmp_path: Path, signum: int, code: int, said: str
) -> None:
    """The fit's data preparation is stopped while the first file is half decompressed."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1"}
    args = ["fit", "--config", "lenet.yaml", "--data.data_dir", "data", "--trainer.fast_dev_run", "1"]
    process = subprocess.Popen(
        [sys.executable, "-m", "cnn_lightning", *args], cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal, not a background job
    )  # fmt: skip
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    deadline = time.monotonic() + 120
    while not (raw.is_dir() and any(raw.glob(".train-images-idx3-ubyte.*"))):
        assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()
        time.sleep(0.002)
    process.send_signal(signum)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == code, output[-2000:]
    assert output.strip().splitlines()[-1] == f"Stopped by {said} (exit code {code})."
    assert "Traceback" not in output
    assert list(raw.iterdir()) == []  # no temporary, no half file
