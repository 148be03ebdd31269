"""Values of the wrong type and values Lightning or torch would take now and fail on later: one line naming the
option, the value, what it takes and the fix, exit code 2, and nothing written. Configs are read as UTF-8 YAML, and a
file that is not (UTF-16, Latin-1, a syntax error, nothing at all) is named with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_errors import fails

LENET = "model:\n  class_path: cnn_lightning.models.LeNet\n  init_args:\n    lr: 0.1  # é\n"


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--data.batch_size", "ten"],
            "--data.batch_size got 'ten', which is not an integer (jsonargparse: Expected a <class 'int'>. Got value: "
            "ten). Give --data.batch_size an integer",
        ),
        (
            ["--model.init_args.lr", "nan"],
            "--model.init_args.lr got 'nan', which is not a finite number (jsonargparse: Expected a <class 'float'>",
        ),
        (["--trainer.max_epochs", "two"], "--trainer.max_epochs got 'two', which is not an integer (jsonargparse"),
        (["--data.invert", "maybe"], "--data.invert got 'maybe', which is not true or false or 'auto'"),
    ],
)
def test_a_value_of_the_wrong_type(args: list[str], expected: str, in_tmp: Path, capsys) -> None:
    assert expected in fails(capsys, "fit", "--config", "lenet.yaml", *args)
    assert list(in_tmp.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--trainer.accumulate_grad_batches", "0"], "--trainer.accumulate_grad_batches must be at least 1, got 0."),
        (["--trainer.check_val_every_n_epoch", "0"], "--trainer.check_val_every_n_epoch must be at least 1, got 0."),
        (
            ["--optimizer", "torch.optim.Adam", "--optimizer.lr", "-1"],
            "--optimizer torch.optim.Adam refused its settings (lr -1.0): Invalid learning rate: -1.0.",
        ),
        (
            ["--data.batch_size", "1000000000"],
            "--data.batch_size 1000000000 is larger than the training split (55,000 images)",
        ),
    ],
)
def test_a_value_that_would_fail_later_is_refused_up_front(args: list[str], expected: str, in_tmp, capsys) -> None:
    assert expected in fails(capsys, "fit", "--config", "lenet.yaml", *args)
    assert list(in_tmp.iterdir()) == []  # no run folder reserved, nothing written


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "Config mine.yaml is empty (or only comments)."),
        (b"# only a comment\n", "Config mine.yaml is empty (or only comments)."),
        (b"- a list\n", "Config mine.yaml holds a list, not settings."),
        (
            b"model:\n  init_args: {lr: 0.1\ntrainer:\n  max_epochs: 1\n",
            "mine.yaml:3:8 is not valid YAML: while parsing a flow mapping, expected ',' or '}', but got ':'.",
        ),
        (LENET.encode("utf-16"), "Config mine.yaml is saved as UTF-16; configs are read as UTF-8."),
        (
            LENET.encode("latin-1"),
            "mine.yaml:4:16 is not UTF-8 (byte 0xe9, 'é' in Latin-1); configs are read as UTF-8. Save the file",
        ),
    ],
)
def test_a_config_that_is_not_utf8_yaml_settings(content: bytes, expected: str, in_tmp: Path, capsys) -> None:
    (in_tmp / "mine.yaml").write_bytes(content)
    assert expected in fails(capsys, "fit", "--config", "mine.yaml")
    assert [path.name for path in in_tmp.iterdir()] == ["mine.yaml"]


def test_a_utf8_config_with_a_byte_order_mark_still_works(in_tmp: Path, capsys) -> None:
    (in_tmp / "mine.yaml").write_bytes(LENET.encode("utf-8-sig"))
    message = fails(capsys, "fit", "--config", "mine.yaml", "--trainer.accumulate_grad_batches", "0")
    assert "accumulate_grad_batches must be at least 1" in message  # read past the config, refused for this value
