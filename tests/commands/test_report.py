"""``python -m cnn_lightning report`` over the event files of real short runs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from cnn_lightning.commands import report
from cnn_lightning.errors import ConfigError
from tests.conftest import REPO, SmallDisk, run_cli

MODELS = {"lenet": ("LeNet", "61,706"), "lenet_bn": ("LeNetBN", "44,878")}  # the book's parameter counts
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Path, dict[str, str]]:
    """``lightning_logs`` holding lenet/version_0 and lenet_bn/version_0, and each run's closing line."""
    cwd = tmp_path_factory.mktemp("report")
    closing = {}
    for config in MODELS:
        result = run_cli(
            "fit",
            f"--config={REPO / 'configs' / config}.yaml",
            f"--data.data_dir={data_dir}",
            "--data.batch_size=64",
            "--trainer.max_epochs=2",
            "--trainer.limit_train_batches=3",
            "--trainer.limit_val_batches=2",
            "--trainer.limit_test_batches=2",
            "--trainer.enable_progress_bar=false",
            cwd=cwd,
            timeout=300,
        )
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
        closing[config] = "\n".join(result.stdout.strip().splitlines()[-2:])  # the closing line's two
    return cwd / "lightning_logs", closing


def _rows(table: str) -> dict[str, list[str]]:
    """Markdown table rows by run name, cells stripped."""
    lines = [line for line in table.splitlines() if line.startswith(("| version_", "| lenet"))]
    return {cells[0]: cells for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines)}


@pytest.mark.slow
def test_report_table_and_plots(runs: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str]) -> None:
    logs, closing = runs
    report.report(str(logs))
    printed = capsys.readouterr().out
    rows = _rows(printed)
    assert set(rows) == {"lenet/version_0", "lenet_bn/version_0"}  # each run named by its config
    header = [c.strip() for c in printed.splitlines()[0].strip("|").split("|")]
    assert header == [*report.COLUMNS, "device"]
    for version, config in (("lenet/version_0", "lenet"), ("lenet_bn/version_0", "lenet_bn")):
        row = dict(zip(header, rows[version], strict=True))
        model, parameters = MODELS[config]
        assert (row["model"], row["parameters"], row["epochs"], row["device"]) == (model, parameters, "2", "cpu")
        # The closing line (3 decimals) and the table (4 decimals) come from the same logged values.
        line = closing[config]
        for label, column in (("loss", "train loss"), ("train acc", "train acc"), ("test acc", "test acc")):
            printed_value = float(re.search(rf"(?:^|, ){label} ([\d.]+)", line, re.MULTILINE).group(1))
            assert float(row[column]) == pytest.approx(printed_value, abs=6e-4), (label, line)
        assert 0 <= float(row["val acc"]) <= 1
        # Whole-fit examples/sec: the closing line's figure, from the same ThroughputMonitor counters.
        rate = float(re.search(r"([\d,.]+) examples/sec", line).group(1).replace(",", ""))
        assert float(row["examples/sec"].replace(",", "")) == pytest.approx(rate, rel=1e-3, abs=1)
        # The book's own network on its own data; the peak memory the closing line shows (CPU: the growth).
        assert row["variant"] == "book" and line.endswith(f"peak memory {row['peak memory']}")
    out = logs / "report"
    markdown = (out / "report.md").read_text()
    assert "| lenet_bn/version_0 | LeNetBN |" in markdown
    for name in report.PLOTS:
        assert f"]({name})" in markdown
        assert (out / name).read_bytes().startswith(PNG)
        width, height = Image.open(out / name).size
        assert width >= 600 and height >= 400


@pytest.mark.slow
def test_existing_output_is_never_overwritten_silently(runs: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    logs, _ = runs
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.md").write_text("my notes")
    with pytest.raises(ConfigError, match="--overwrite"):
        report.report(str(logs), out=str(out))
    assert not (out / "report.md").exists()
    report.report(str(logs), out=str(out), overwrite=True)
    assert (out / "report.md").is_file() and (out / "notes.md").read_text() == "my notes"


@pytest.mark.slow
def test_runs_without_setup_text_fall_back_to_config_yaml(
    runs: tuple[Path, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An older run (no ``run/setup`` text): model from config.yaml, parameters by building it on meta."""
    logs, _ = runs
    old = tmp_path / "logs" / "version_0"
    old.mkdir(parents=True)
    shutil.copy(logs / "lenet_bn" / "version_0" / "config.yaml", old / "config.yaml")
    with SummaryWriter(str(old)) as writer:
        for step, epoch, acc in ((9, 0, 0.5), (19, 1, 0.7)):
            writer.add_scalar("epoch", epoch, step)
            writer.add_scalar("train/acc", acc, step)
            writer.add_scalar("train/loss", 1 - acc, step)
        writer.add_scalar("test/acc", 0.68, 20)
        writer.add_scalar("train/samples", 640, 19)  # ThroughputMonitor's counters, without the CLI's final rate
        writer.add_scalar("train/time", 2.0, 19)
    report.report(str(tmp_path / "logs"))
    row = _rows(capsys.readouterr().out)["version_0"]
    assert row[1:6] == ["LeNetBN", "book", "2", "0.3000", "0.7000"]
    # No val logged; the book's figure from the model's record; no memory measured; the accelerator as configured.
    assert row[6:] == ["—", "0.6800", "0.853 [0.518–0.892]", "320", "—", "—", "44,878", "auto"]  # no target


def test_no_runs_is_a_one_line_error_with_exit_2(tmp_path: Path) -> None:
    result = run_cli("report", str(tmp_path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: No TensorBoard runs") and result.stderr.count("\n") == 1


def test_missing_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No folder"):
        report.report(str(tmp_path / "absent"))


@pytest.mark.slow
def test_a_report_on_a_full_disk_is_one_line_and_leaves_no_partial_file(
    runs: tuple[Path, dict[str, str]], small_disk: SmallDisk
) -> None:
    logs, _ = runs
    small_disk.fill()
    out = small_disk.root / "report"
    result = run_cli("report", str(logs), "--out", str(out))
    assert result.returncode == 4, result.stderr[-2000:]
    assert result.stderr.startswith(f"error: No space left on device: the report could not be written to {out}")
    assert result.stderr.count("\n") == 1 and f"The runs under {logs} are untouched." in result.stderr
    assert not any(out.iterdir())
