"""Fixtures shared by the commands' tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnn_lightning.commands.fit import make_cli


@pytest.fixture(scope="module")
def trained(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working folder holding one LeNetBN run of one epoch (it learns fast: ~0.8 test accuracy)."""
    root = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        make_cli(["fit", "--config", "lenet_bn.yaml", "--data.data_dir", str(data_dir), "--trainer.max_epochs", "1",
                  "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false"])  # fmt: skip
    return root
