"""``tune`` over a space fit always refuses stops after a few trials in a row and says why; a ``study.db`` that is
not a database is one line, in ``tune`` and in ``report``, and stays as it was."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cnn_lightning.commands.report import report
from cnn_lightning.commands.tune_space import load_space
from cnn_lightning.errors import ConfigError
from tests.conftest import run_cli
from tests.test_errors import fails

NOT_A_DATABASE = b"my notes, not a database\n"


@pytest.mark.slow  # three refused trials, each a fit process
def test_a_space_that_fit_always_refuses_stops_after_three_trials(data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text("data.batch_size: {low: -10, high: -1}\n")
    result = run_cli("tune", "--config", "lenet.yaml", "--space", "space.yaml", "--trials", "2",
                     "--data.data_dir", str(data_dir), "--trainer.max_steps", "2", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: Trials 0 to 2 were all refused by fit (exit 2), so the study stops: trial 2 said:")
    assert "The batch size must be positive" in last and "Fix the space space.yaml" in last
    assert "Traceback" not in result.stderr
    assert sorted(path.name for path in (tmp_path / "lightning_logs" / "tune-lenet").glob("trial_*.log")) == [
        "trial_0000.log", "trial_0001.log", "trial_0002.log"
    ]  # fmt: skip


def test_a_study_db_that_is_not_a_database(tmp_path: Path, monkeypatch, capsys) -> None:
    study = tmp_path / "lightning_logs" / "tune-lenet" / "study.db"
    study.parent.mkdir(parents=True)
    study.write_bytes(NOT_A_DATABASE)
    (tmp_path / "space.yaml").write_text("model.init_args.lr: {low: 0.1, high: 1.0}\n")
    monkeypatch.chdir(tmp_path)
    message = fails(capsys, "tune", "--config", "lenet.yaml", "--space", "space.yaml")
    assert message.startswith(f"error: {study.relative_to(tmp_path)} is not an SQLite database")
    assert "mv lightning_logs/tune-lenet/study.db lightning_logs/tune-lenet/study.db.bak" in message
    (study.parent / "events.out.tfevents.0.run").write_bytes(b"")  # a run for report to find
    with pytest.raises(ConfigError, match=r"study\.db is not an SQLite database"):
        report(str(study.parent))
    assert study.read_bytes() == NOT_A_DATABASE and not (study.parent / "report").exists()


@pytest.mark.parametrize(
    ("range_", "said"),
    [
        ("{low: .nan, high: 1.0}", "low and high must be finite numbers, got nan and 1.0"),
        ("{low: 0.1, high: .inf}", "low and high must be finite numbers, got 0.1 and inf"),
        ("{low: -1.0e+308, high: 1.0e+308}", "low and high must be finite numbers"),  # their distance is not
        ("{low: 1, high: 9, step: -1}", "step must be a positive number no larger than high - low, got -1"),
        ("{low: 1, high: 9, step: .nan}", "step must be a positive number"),
    ],
)
def test_a_range_optuna_cannot_sample_is_refused(range_: str, said: str, tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text(f"model.init_args.lr: {range_}\n")
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_space(str(tmp_path / "space.yaml"), {"model.init_args.lr"})


def test_a_refused_space_is_never_saved(tmp_path: Path, monkeypatch, capsys) -> None:
    """Checked before the study opens: the next tune with a good space is not refused as "another space"."""
    (tmp_path / "space.yaml").write_text("model.init_args.lr: {low: .nan, high: 1.0}\n")
    monkeypatch.chdir(tmp_path)
    assert "got nan and 1.0" in fails(capsys, "tune", "--config", "lenet.yaml", "--space", "space.yaml")
    assert not (tmp_path / "lightning_logs").exists()
