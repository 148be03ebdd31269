"""The event files' tags: TensorBoard's reading order, and back to the metrics' names for ``report``."""

from __future__ import annotations

import pytest

from cnn_lightning.loggers import dashboard_tag, metric_name, user_settings

METRICS = ["train/loss", "val/acc", "val_class_acc/Bag", "epoch", "lr-SGD", "test/acc", "test_class_acc/Bag",
           "final/test_acc", "final/examples_per_sec", "train/device/samples_per_sec"]  # fmt: skip


@pytest.mark.parametrize("name", METRICS)
def test_each_tag_reads_back_as_its_metric_and_renaming_is_idempotent(name: str) -> None:
    tag = dashboard_tag(name)
    assert metric_name(tag) == name
    assert dashboard_tag(tag) == tag  # log_hyperparams passes renamed metrics through log_metrics again


def test_curves_keep_their_names_and_everything_else_sorts_after_them() -> None:
    tags = [dashboard_tag(name) for name in METRICS]
    assert tags[:3] == METRICS[:3]
    groups = {tag.split("/", 1)[0] for tag in tags}
    late = groups - {"train", "val", "val_class_acc"}
    assert late and all(group > "val_class_acc" for group in late), late


def test_an_evaluation_of_a_checkpoint_has_tags_of_its_own() -> None:
    assert dashboard_tag("test/acc", evaluation=True) == "verdict_eval_test/acc"
    assert metric_name("verdict_eval_test/acc") == "eval-test/acc"
    assert dashboard_tag("test/acc", evaluation=True) != dashboard_tag("test/acc")


def test_old_runs_tags_pass_unchanged() -> None:
    for tag in ("epoch", "lr-SGD", "final/test_acc", "test/acc", "eval-test/acc"):
        assert metric_name(tag) == tag


def test_user_settings_drop_bookkeeping_and_show_booleans_as_text() -> None:
    settings = user_settings({"lr": 0.1, "_class_path": "x", "model._instantiator": "y", "nesterov": False,
                              "optimizer": {"_class_path": "SGD", "momentum": 0.9, "foreach": True}})  # fmt: skip
    assert settings == {"lr": 0.1, "nesterov": "False", "optimizer": {"momentum": 0.9, "foreach": "True"}}
