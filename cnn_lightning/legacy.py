"""What earlier versions saved keeps working, each translation with the version that drops it (:data:`DROPPED_IN`).

* Module paths of version 0.1.0, before the package was grouped by role: a saved ``config.yaml``, a checkpoint's
  hyperparameters or a user's script that names ``cnn_lightning.batching.AutoMicroBatch`` gets the class from its new
  home, with one warning per old path. Each old module that no longer exists is served by a stand-in module whose
  names are looked up, on first use, in the modules listed for it in :data:`MOVED` (an import hook installed by
  ``cnn_lightning/__init__.py``). Old modules that became packages (``cnn_lightning.data``, ``cnn_lightning.callbacks``,
  ``cnn_lightning.commands``, ``cnn_lightning.scratch``) export their old names from their ``__init__``.
* Settings of version 0.2.0 that moved out of the model and the Trainer (:func:`upgrade_config`,
  :func:`upgrade_hyperparameters`): the engine's ``model.init_args.steps_per_batch`` and ``cuda_graph`` are the
  ``trainer.strategy`` ``ChunkedSteps``'s now, and ``trainer.retain_host_memory`` is a process setting
  (``CNN_LIGHTNING_RETAIN_HOST_MEMORY``).

Nothing here imports torch until an old name is used.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import types
import warnings
from collections.abc import Sequence
from typing import Any

PACKAGE = "cnn_lightning"
DROPPED_IN = "0.4.0"  # the version that no longer reads what 0.1.0 and 0.2.0 saved
ENGINE_CLASS = "cnn_lightning.engine.ChunkedSteps"
# The engine's settings, model hyperparameters in 0.2.0 and ChunkedSteps's arguments since.
ENGINE_SETTINGS = ("steps_per_batch", "cuda_graph")
# Old module (0.1.0) → the modules that now hold its names, searched in order.
MOVED: dict[str, tuple[str, ...]] = {
    "augmentation": ("data.augmentation",),
    "batching": ("callbacks.micro_batch", "callbacks.effective_batch", "memory.resident_memory"),
    "classifier": ("training.classifier",),
    "cli": ("commands.fit", "__main__"),
    "configs": ("commands.config_files",),
    "dashboards": ("callbacks.dashboards",),
    "epoch_metrics": ("training.epoch_metrics",),
    "export": ("commands.export",),
    "host_memory": ("memory.host_memory",),
    "images": ("data.own_images",),
    "inference": ("api",),
    "messages": ("commands.messages",),
    "optimization": ("training.optimization",),
    "precision": ("training.precision",),
    "prediction": ("callbacks.prediction_writer", "runs"),
    "reliability": (
        "training.checkpoint_io",
        "callbacks.run_checkpoint",
        "training.finite_loss_guard",
        "callbacks.graceful_interrupt",
    ),
    "report": ("commands.report",),
    "search": ("commands.tune", "commands.tune_study", "callbacks.report_to_study"),
    "search_space": ("commands.tune_space",),
    "shapes": ("scratch.shapes",),
    "step_overhead": ("training.profiler", "callbacks.progress.steady_bar"),
    "study_report": ("commands.report_studies",),
    "summary": ("commands.summary",),
}
# Names of old modules that are packages now, which their package does not export: {old module: its new homes}.
MOVED_FROM_PACKAGES: dict[str, tuple[str, ...]] = {
    "callbacks": ("commands.closing_line", "training.precision", "callbacks.throughput", "commands.fit"),
    "commands": ("commands.trainer",),
}


def _full(name: str) -> str:
    return f"{PACKAGE}.{name}"


def find_moved(names: Sequence[str], attribute: str) -> Any:
    """``attribute`` from the first of the modules ``names`` (relative to the package) that has it."""
    for name in names:
        module = importlib.import_module(_full(name))
        if hasattr(module, attribute):
            return getattr(module, attribute)
    raise AttributeError(attribute)


def current_class_path(path: str) -> str:
    """The class path ``path`` means today: ``cnn_lightning.search.ReportToStudy`` →
    ``cnn_lightning.callbacks.report_to_study.ReportToStudy``; any other path is returned as it is."""
    module, _, attribute = path.rpartition(".")
    old = module.removeprefix(f"{PACKAGE}.")
    homes = MOVED.get(old, ()) + MOVED_FROM_PACKAGES.get(old, ())
    if not module.startswith(f"{PACKAGE}.") or not homes:
        return path
    try:
        found = find_moved(homes, attribute)
    except (AttributeError, ImportError):
        return path
    return f"{found.__module__}.{found.__qualname__}"


class _OldModule(types.ModuleType):
    """A 0.1.0 module path: each name it is asked for comes from the modules that hold it now."""

    def __init__(self, name: str, homes: tuple[str, ...]) -> None:
        super().__init__(name, f"{name} (0.1.0's path; its names now live in {', '.join(map(_full, homes))})")
        self._homes = homes

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        try:
            value = find_moved(self._homes, attribute)
        except AttributeError:
            raise AttributeError(f"module {self.__name__!r} has no attribute {attribute!r}") from None
        warn_once(f"{self.__name__}.{attribute} is version 0.1.0's path; use {value.__module__}.{value.__qualname__}.")
        setattr(self, attribute, value)
        return value


class _OldPathFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers imports of the old module paths in :data:`MOVED` with an :class:`_OldModule`."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname.startswith(f"{PACKAGE}.") and fullname.removeprefix(f"{PACKAGE}.") in MOVED:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _OldModule(spec.name, MOVED[spec.name.removeprefix(f"{PACKAGE}.")])

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def install() -> None:
    """Make the old module paths importable (once per process)."""
    if not any(isinstance(finder, _OldPathFinder) for finder in sys.meta_path):
        sys.meta_path.append(_OldPathFinder())


def package_getattr(package: str) -> Any:
    """A module ``__getattr__`` for a package that was a module in 0.1.0: its old names not exported any more."""
    homes = MOVED_FROM_PACKAGES[package.removeprefix(f"{PACKAGE}.")]

    def __getattr__(attribute: str) -> Any:
        try:
            return find_moved(homes, attribute)
        except AttributeError:
            raise AttributeError(f"module {package!r} has no attribute {attribute!r}") from None

    return __getattr__


_warned: set[str] = set()


def warn_once(message: str) -> None:
    """A ``FutureWarning`` about something an earlier version saved, once per process, naming the version that will
    no longer read it."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(f"{message} Version {DROPPED_IN} drops this translation.", FutureWarning, stacklevel=3)


def upgrade_hyperparameters(hparams: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's model hyperparameters without the engine settings version 0.2.0 kept among them."""
    return {key: value for key, value in hparams.items() if key not in ENGINE_SETTINGS}


def upgrade_config(config: Any) -> list[str]:
    """Rewrite a config as read from YAML (in place) from the keys of version 0.2.0 to today's; returns what changed,
    one phrase each (none for a config of today)."""
    trainer = config.get("trainer") if isinstance(config, dict) else None
    model = config.get("model") if isinstance(config, dict) else None
    init_args = model.get("init_args") if isinstance(model, dict) else None
    changes = []
    if isinstance(trainer, dict) and "retain_host_memory" in trainer:
        if trainer.pop("retain_host_memory") is False:  # for the process settings made next, and if made already
            from cnn_lightning.memory.host_memory import return_freed_memory
            from cnn_lightning.process import RETAIN_SETTING

            os.environ[RETAIN_SETTING] = "0"
            return_freed_memory()
        changes.append("trainer.retain_host_memory is the process setting CNN_LIGHTNING_RETAIN_HOST_MEMORY")
    if isinstance(init_args, dict) and set(ENGINE_SETTINGS) & init_args.keys():
        steps, graph = init_args.pop("steps_per_batch", None), bool(init_args.pop("cuda_graph", False))
        config.setdefault("trainer", trainer if isinstance(trainer, dict) else {})
        if config["trainer"].get("strategy", "auto") == "auto":
            engine = ({"steps_per_batch": steps} if steps else {}) | {"cuda_graph": graph}
            config["trainer"]["strategy"] = "auto" if steps == 1 else {"class_path": ENGINE_CLASS, "init_args": engine}
        changes.append("model.init_args.steps_per_batch and cuda_graph are --trainer.strategy.*'s (ChunkedSteps)")
    return changes
