"""Module paths of version 0.1.0, before the package was grouped by role, still importable: a saved ``config.yaml``,
a checkpoint's hyperparameters or a user's script that names ``cnn_lightning.batching.AutoMicroBatch`` gets the class
from its new home.

Each old module that no longer exists is served by a stand-in module whose names are looked up, on first use, in the
modules listed for it in :data:`MOVED` (an import hook installed by ``cnn_lightning/__init__.py``). Old modules that
became packages (``cnn_lightning.data``, ``cnn_lightning.callbacks``, ``cnn_lightning.commands``,
``cnn_lightning.scratch``) export their old names from their ``__init__``. Nothing here imports torch until an old
name is used.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import Any

PACKAGE = "cnn_lightning"
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
