"""fit measures its peak training memory: logged as train/peak_memory_mib, in the closing line and report's column."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnn_lightning.callbacks import PeakMemory
from cnn_lightning.callbacks.peak_memory import TAG
from cnn_lightning.commands.closing_line import closing_line, final_metrics, memory_text
from cnn_lightning.commands.fit import make_cli
from cnn_lightning.models import LeNet

BALLAST_MIB = 160


class BallastLeNet(LeNet):
    """The book's LeNet holding 160 MiB more from its first training step on: what the peak must grow by."""

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if not hasattr(self, "ballast"):
            self.ballast = torch.ones(BALLAST_MIB << 18)  # float32: 4 bytes each, every page written (resident)
        return super().training_step(batch, batch_idx)


def fit(data_dir: Path, model: str) -> tuple[float, str, PeakMemory]:
    """A short CLI fit of ``model``: its logged peak (MiB), closing line and callback."""
    cli = make_cli(["fit", "--config", "lenet.yaml", "--model", model, "--trainer.max_epochs", "1",
                    "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1",
                    "--trainer.limit_test_batches", "1", "--data.batch_size", "16", "--data.data_dir", str(data_dir),
                    "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false"])  # fmt: skip
    events = EventAccumulator(str(Path(cli.trainer.logger.log_dir)))
    events.Reload()
    callback = next(cb for cb in cli.trainer.callbacks if isinstance(cb, PeakMemory))
    return events.Scalars(TAG)[-1].value, closing_line(final_metrics(cli.trainer), "cpu"), callback


@pytest.mark.slow
def test_the_peak_grows_by_what_training_holds(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model that holds 160 MiB more while it trains peaks at least that high and well above the plain model: the
    resident set's growth over training, measured from the fit's start (the dataset and imports already resident do not
    count; the plain run's own growth partly reuses memory the ballast run also grows into, so the gap is not exact)."""
    monkeypatch.chdir(tmp_path)
    plain, line, callback = fit(data_dir, "cnn_lightning.models.LeNet")
    heavy, heavy_line, _ = fit(data_dir, f"{__name__}.BallastLeNet")
    assert plain == pytest.approx(callback.peak_bytes / 2**20)
    assert heavy >= BALLAST_MIB * 0.95 and heavy - plain >= BALLAST_MIB * 0.8
    assert plain < 600  # not the process's whole resident set (torch and the dataset alone are more)
    assert f"peak memory +{memory_text(plain)}" in line and line.endswith(f"+{memory_text(plain)}")
    assert heavy_line.endswith(f"peak memory +{memory_text(heavy)}")


def test_the_closing_line_shows_the_peak_as_measured_on_its_device() -> None:
    """The book's two lines (train_ch6 prints accuracy, then speed), each within 80 columns even at its widest."""
    metrics = {"train/loss": 0.4692, "train/acc": 0.8231, "test/acc": 0.8079, "examples_per_sec": 1234.5}
    assert closing_line({**metrics, TAG: 312.4}, "cpu") == (
        "loss 0.469, train acc 0.823, test acc 0.808\n1,234.5 examples/sec on cpu, peak memory +312 MiB"
    )
    widest = {**metrics, "val/acc": 0.8123, "train/loss": 12345.678, "examples_per_sec": 12_345_678.9, TAG: 99_999.0}
    assert all(len(line) <= 80 for line in closing_line(widest, "cuda x16").splitlines())
    assert closing_line({**metrics, TAG: 2560.0}, "cuda").endswith("examples/sec on cuda, peak memory 2.50 GiB")
    assert "peak memory" not in closing_line(metrics, "cpu")  # a run without the callback
