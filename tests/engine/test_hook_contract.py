"""Lightning's contract under the engine: every hook Lightning calls per batch or per optimizer step, overridden on
the model, on the data module or in a callback, is called exactly as Lightning's standard loop calls it (the same
count, order, arguments and batches), on the CLI's default path and from Python with ``strategy=ChunkedSteps()``.

The recording follows Lightning's own tests/tests_pytorch/models/test_hooks.py (``HookedModel``, ``HookedCallback``):
each hook is wrapped on the instance, so that it counts as overridden, and every call is recorded with a summary of
its arguments (tensors by shape, dtype and sum) and the global step; the engine's recording must equal the standard
loop's. Where the engine cannot call a hook as Lightning does, it runs Lightning's loop and says which hook."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from cnn_lightning.commands.fit import make_cli
from cnn_lightning.data.datamodule import FashionMNISTDataModule
from cnn_lightning.engine import ChunkedSteps
from cnn_lightning.models import LeNet

MODEL_HOOKS = [
    "on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer", "on_train_batch_start",
    "training_step", "on_before_zero_grad", "optimizer_zero_grad", "on_before_backward", "backward",
    "on_after_backward", "on_before_optimizer_step", "configure_gradient_clipping", "optimizer_step",
    "lr_scheduler_step", "on_train_batch_end",
]  # fmt: skip
CALLBACK_HOOKS = ["on_train_batch_start", "on_before_zero_grad", "on_before_backward", "on_after_backward",
                  "on_before_optimizer_step", "on_train_batch_end"]  # fmt: skip
DATAMODULE_HOOKS = ["on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer"]
# The hooks the engine calls for every batch of a chunk itself: with one of them overridden, chunks still run.
CALLED_PER_BATCH_OF_A_CHUNK = {"transfer_batch_to_device", "on_after_batch_transfer"}
CASES = [("model", hook) for hook in MODEL_HOOKS] + [("callback", hook) for hook in CALLBACK_HOOKS]
CASES += [("datamodule", hook) for hook in DATAMODULE_HOOKS]
STEPS = dict(max_epochs=2, limit_train_batches=7, limit_val_batches=1)  # two epochs: chunks 3+3+1, a schedule
CLI_ARGS = ["--config", "lenet.yaml", "--trainer.accelerator", "cpu", "--trainer.precision", "32-true",
            "--trainer.logger", "false", "--trainer.enable_progress_bar", "false", "--data.batch_size", "8",
            "--model.init_args.lr_schedule", "cosine", "--trainer.max_epochs", "2",
            "--trainer.limit_train_batches", "7", "--trainer.limit_val_batches", "1"]  # fmt: skip


def summary(value: Any) -> Any:
    """A call's argument as comparable data: tensors by shape, dtype and sum, objects by their class, run folders
    (a checkpoint's paths) without their number."""
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), str(value.dtype), round(float(value.detach().double().sum()), 6))
    if isinstance(value, list | tuple):
        return tuple(summary(item) for item in value)
    if isinstance(value, dict):
        return {summary(key): summary(item) for key, item in value.items()}
    if isinstance(value, str):
        return re.sub(r"version_\d+", "version_N", value)
    return value if isinstance(value, int | float | bool | type(None)) else type(value).__name__


class Recorder:
    """Wraps hooks on instances (as Lightning's HookedModel does: Lightning and the engine then see them overridden)
    and records every call with the global step."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, Any, int]] = []
        self.trainer: L.Trainer | None = None

    def wrap(self, owner: Any, hook: str, label: str) -> None:
        original = getattr(owner, hook)

        def recorded(*args: Any, **kwargs: Any) -> Any:
            step = self.trainer.global_step if self.trainer is not None else -1
            self.calls.append((f"{label}.{hook}", summary(args), summary(kwargs), step))
            return original(*args, **kwargs)

        setattr(owner, hook, recorded)

    def of(self, label: str, hook: str) -> list[tuple[str, Any, Any, int]]:
        return [call for call in self.calls if call[0] == f"{label}.{hook}"]


class Watch(L.Callback):
    """A user's callback; the hooks under test are wrapped on it."""


def wrap_hooks(recorder: Recorder, cases: list[tuple[str, str]], model: Any, datamodule: Any, watch: Any) -> None:
    owners = {"model": model, "datamodule": datamodule, "callback": watch}
    for label, hook in cases:
        recorder.wrap(owners[label], hook, label)


def python_fit(cases: list[tuple[str, str]], strategy: Any = "auto") -> tuple[Recorder, L.Trainer]:
    """A fit from Python, a plain ``lightning.Trainer`` (the standard loop, or the engine given as its strategy)."""
    recorder, watch = Recorder(), Watch()
    L.seed_everything(0)
    model, datamodule = LeNet(lr_schedule="cosine"), FashionMNISTDataModule(data_dir=DATA["dir"], batch_size=8)
    wrap_hooks(recorder, cases, model, datamodule, watch)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[watch], strategy=strategy, **STEPS)  # fmt: skip
    recorder.trainer = trainer
    trainer.fit(model, datamodule=datamodule)
    return recorder, trainer


def cli_fit(cases: list[tuple[str, str]], *extra: str) -> tuple[Recorder, L.Trainer]:
    """A fit on the CLI's path (``python -m cnn_lightning fit``), in this process."""
    recorder, watch = Recorder(), Watch()
    cli = make_cli([*CLI_ARGS, "--data.data_dir", DATA["dir"], *extra], run=False)
    wrap_hooks(recorder, cases, cli.model, cli.datamodule, watch)
    cli.trainer.callbacks.append(watch)
    recorder.trainer = cli.trainer
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return recorder, cli.trainer


DATA: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def data(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    DATA["dir"] = str(data_dir)


def by_owner(fit: Callable[[list[tuple[str, str]]], Recorder]) -> dict[str, Recorder]:
    """Lightning's standard loop, every hook under test recorded at once (it calls each regardless), in two fits: a
    data module's transfer hook takes precedence over the model's, so they are recorded apart."""
    apart = [case for case in CASES if case[0] != "datamodule"], [case for case in CASES if case[0] == "datamodule"]
    recorders = [fit(cases) for cases in apart]
    return {"model": recorders[0], "callback": recorders[0], "datamodule": recorders[1]}


@pytest.fixture(scope="module")
def standard_python() -> dict[str, Recorder]:
    return by_owner(lambda cases: python_fit(cases)[0])


@pytest.fixture(scope="module")
def standard_cli(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Recorder]:
    """The CLI with Lightning's own strategy (``--trainer.strategy auto``)."""
    return by_owner(lambda cases: cli_fit(cases, "--trainer.strategy", "auto")[0])


def check_hook(
    fit: Callable[[], tuple[Recorder, L.Trainer]], standards: dict[str, Recorder], label: str, hook: str, caplog: Any
) -> None:
    with caplog.at_level(logging.INFO):
        recorder, trainer = fit()
    assert recorder.of(label, hook) == standards[label].of(label, hook)
    # Lightning calls the data module's on_after_batch_transfer instead of the model's (FashionMNISTDataModule has one)
    assert len(recorder.of(label, hook)) > 0 or (label, hook) == ("model", "on_after_batch_transfer")
    if hook in CALLED_PER_BATCH_OF_A_CHUNK:
        assert trainer.strategy.chunk_steps > 1  # the engine ran its chunks and called the hook for each batch
    else:
        said = [record.getMessage() for record in caplog.records if "Chunked steps off" in record.getMessage()]
        assert trainer.strategy.chunk_steps == 1 and len(said) == 1 and f".{hook} is called" in said[0], said


@pytest.mark.parametrize(("label", "hook"), CASES, ids=[f"{label}.{hook}" for label, hook in CASES])
def test_each_hook_from_python_is_called_as_the_standard_loop_calls_it(
    standard_python: dict[str, Recorder], label: str, hook: str, caplog: pytest.LogCaptureFixture
) -> None:
    check_hook(
        lambda: python_fit([(label, hook)], ChunkedSteps(steps_per_batch=3)), standard_python, label, hook, caplog
    )


@pytest.mark.slow
@pytest.mark.parametrize(("label", "hook"), CASES, ids=[f"{label}.{hook}" for label, hook in CASES])
def test_each_hook_on_the_cli_path_is_called_as_the_standard_loop_calls_it(
    standard_cli: dict[str, Recorder],
    label: str,
    hook: str,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    monkeypatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    check_hook(lambda: cli_fit([(label, hook)], "--trainer.strategy.steps_per_batch", "3"), standard_cli, label, hook,
               caplog)  # fmt: skip


def every_hook(owner_class: type) -> list[str]:
    """Lightning's hooks of a class, as its test_hooks.py finds them: public methods, here those called ``on_*`` and
    the steps and optimizer hooks."""
    steps = {"training_step", "validation_step", "test_step", "configure_optimizers", "setup", "teardown"}
    names = {name for name in dir(owner_class) if callable(getattr(owner_class, name, None))}
    return sorted(name for name in names if name.startswith("on_") or name in steps | set(MODEL_HOOKS))


def test_every_hook_at_once_on_the_cli_path_keeps_the_standard_loops_sequence(
    tmp_path: Path, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    """HookedModel and HookedCallback's way: all of the model's and a callback's hooks recorded together, the whole
    sequence (fit, validation, the epoch hooks) equal to the standard loop's."""
    monkeypatch.chdir(tmp_path)
    cases = [("model", hook) for hook in every_hook(L.LightningModule)]
    cases += [("callback", hook) for hook in every_hook(L.Callback)]
    standard, _ = cli_fit(cases, "--trainer.strategy", "auto")
    with caplog.at_level(logging.INFO):
        engine, _ = cli_fit(cases)
    assert engine.calls == standard.calls and len(engine.calls) > 200
    assert any("Chunked steps off" in record.getMessage() for record in caplog.records)
