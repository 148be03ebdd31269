"""training/step_hooks.py: a chunk's steps skip Lightning's per-step calls exactly when each would do nothing; if
they come back (a per-step Python cost), the first test fails."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.trainer import call

from cnn_lightning.training.step_hooks import PER_STEP_HOOKS, plain_precision
from tests.training.test_chunked_steps import fit


class EveryStep(L.Callback):
    def on_after_backward(self, *args) -> None: ...


@pytest.mark.parametrize(
    ("hooked", "extra"),
    [(False, []), (True, []), (True, ["--trainer.profiler", "simple"])],
    ids=["no per-step hook", "a per-step hook", "a profiler"],
)
def test_plain_steps_skip_lightnings_per_step_calls(
    data_dir: Path, tmp_path: Path, monkeypatch, hooked: bool, extra: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    calls: Counter[str] = Counter()
    original = call._call_callback_hooks

    def counted(trainer, hook_name, *args, **kwargs):
        calls[hook_name] += 1
        return original(trainer, hook_name, *args, **kwargs)

    monkeypatch.setattr(call, "_call_callback_hooks", counted)
    per_step = (EveryStep(),) if hooked and not extra else ()
    trainer, _ = fit(data_dir, 4, "--trainer.max_steps", "8", *extra, callbacks=per_step)
    assert trainer.global_step == 8
    assert {hook: calls[hook] for hook in PER_STEP_HOOKS} == {hook: 8 if hooked else 0 for hook in PER_STEP_HOOKS}
    assert calls["on_train_batch_start"] == 2  # and Lightning's per-batch loop once per chunk


def test_only_a_plugin_that_just_autocasts_is_plain() -> None:
    assert plain_precision(SimpleNamespace(precision_plugin=Precision()))
    assert plain_precision(SimpleNamespace(precision_plugin=MixedPrecision("bf16-mixed", "cpu")))
    scaled = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))
    assert not plain_precision(SimpleNamespace(precision_plugin=scaled))
