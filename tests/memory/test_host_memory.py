"""Host memory: a steady training step reuses the memory the previous one freed."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest

from cnn_lightning.commands.fit import make_cli
from cnn_lightning.memory.host_memory import USER_SETTINGS, glibc, page_faults
from cnn_lightning.process import configure_process


class CountPageFaults(L.Callback):
    """The process's minor page faults (fresh pages from the kernel) from the start of batch ``first`` to the end
    of batch ``last``."""

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last, self.faults = first, last, 0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if batch_idx == self.first:
            self.faults = -page_faults()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        if args[-1] == self.last:
            self.faults += page_faults()


@pytest.mark.skipif(glibc() is None, reason="glibc's malloc only")
def test_steady_state_steps_reuse_the_memory_they_free(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """Each step's activations reuse the memory the previous step freed, once the process is configured as the entry
    point configures it (process.py, memory/host_memory.py). With glibc's defaults a LeNet step at batch 256 faulted
    thousands of fresh pages in (docs/measurements.md); with freed memory kept, a few dozen at most."""
    for name in USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    assert configure_process().retained_host_memory
    monkeypatch.chdir(tmp_path)
    cli = make_cli(["--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.max_steps", "30",
                    "--trainer.limit_val_batches", "0"], run=False)  # fmt: skip
    count = CountPageFaults(10, 29)
    cli.trainer.callbacks.append(count)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert count.faults / 20 < 300, f"{count.faults / 20:.0f} page faults a step"
