"""Shared fixtures: the real Fashion-MNIST (from Debian's package, prepared once) and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnn_lightning.data.fashion_mnist import DEBIAN_DIR, prepare_raw_files

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A torchvision root holding the real Fashion-MNIST, decompressed from Debian's dataset-fashion-mnist (or from
    the folder of ``*.gz`` files named by ``FASHION_MNIST_GZ_DIR``, e.g. on a machine without the Debian package)."""
    root = tmp_path_factory.mktemp("data")
    extra = [os.environ["FASHION_MNIST_GZ_DIR"]] if os.environ.get("FASHION_MNIST_GZ_DIR") else []
    prepare_raw_files(root, [DEBIAN_DIR, *extra], download=False)
    return root


def run_cli(*args: str, cwd: Path | str = REPO, timeout: float = 600, env: dict | None = None):
    """Run ``python -m cnn_lightning ARGS`` as a user would; returns the CompletedProcess (text output)."""
    full_env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "cnn_lightning", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
