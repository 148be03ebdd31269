"""Each network's record (cnn_lightning/models/record.py) is the one place its facts live: the model, its config,
the data module and the README's table all agree with it."""

from __future__ import annotations

import inspect
import re

import pytest
import yaml

from cnn_lightning.data.fashion_mnist import CLASSES
from cnn_lightning.models import MODELS
from tests.conftest import REPO


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_and_config_agree_with_the_record(name: str) -> None:
    model_class = MODELS[name]
    record = model_class.record
    defaults = inspect.signature(model_class.__init__).parameters
    assert (defaults["lr"].default, defaults["input_size"].default) == (record.lr, record.input_size)
    config = yaml.safe_load((REPO / "configs" / record.config).read_text())
    assert config["model"]["class_path"].rsplit(".", 1)[-1] == name
    assert config["model"]["init_args"]["lr"] == record.lr
    assert config["model"]["init_args"]["input_size"] == record.input_size
    assert config["data"]["batch_size"] == record.batch_size
    assert record.categories == tuple(CLASSES) and len(record.categories) == 10
    low, median, high = record.book_accuracy.low, record.book_accuracy.median, record.book_accuracy.high
    assert 0 < low <= median <= high < 1


def test_the_readme_table_agrees_with_the_records() -> None:
    rows = {}
    for line in (REPO / "README.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) > 6 and re.fullmatch(r"`\w+\.yaml`", cells[0]):
            rows[cells[1].split("`")[1]] = cells
    assert set(rows) == set(MODELS)
    for name, cells in rows.items():
        record = MODELS[name].record
        assert cells[0] == f"`{record.config}`"
        assert (cells[2], int(cells[3]), int(cells[4].replace(",", ""))) == (
            record.book_section,
            record.input_size,
            record.num_params,
        )
        assert cells[6] == str(record.book_accuracy), name
