"""Shared fixtures: the real Fashion-MNIST (from Debian's package, prepared once) and a CLI runner."""

from __future__ import annotations

import contextlib
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


class SmallDisk:
    """A small tmpfs: a disk that really fills up, as a user's does."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def fill(self, leave: int = 0) -> None:
        """Take all the free space but ``leave`` bytes (tmpfs counts whole 4 KiB pages)."""
        free = os.statvfs(self.root).f_bavail * os.statvfs(self.root).f_frsize
        with contextlib.suppress(OSError), (self.root / ".filler").open("wb") as filler:  # full to the last page
            filler.write(b"\0" * max(0, free - leave))

    def refuses(self, capsys: pytest.CaptureFixture, *args: str) -> str:
        """Fill the disk, run the CLI in-process and return its one-line refusal (exit code 4)."""
        from tests.test_errors import fails

        self.fill()
        return fails(capsys, *args, code=4)

    def leftovers(self) -> list[Path]:
        """Hidden temporary files left anywhere on the disk (the filler excepted)."""
        return [path for path in self.root.rglob(".*") if path.name != ".filler" and path.is_file()]


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 4 MiB tmpfs mounted at ``tmp_path/disk`` for the test, then unmounted. Mounting needs root (CI runs as root);
    elsewhere the test is skipped."""
    root = tmp_path / "disk"
    root.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(root)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip() or 'not root'}")
    try:
        yield SmallDisk(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], capture_output=True)
