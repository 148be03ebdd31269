"""The Trainer's default profiler: one that records nothing and costs nothing per hook call."""

from __future__ import annotations

import contextlib

from lightning.pytorch.profilers import PassThroughProfiler


class NoOpProfiler(PassThroughProfiler):
    """Lightning's default profiler, which records nothing, without building a generator-based context manager
    on each of its calls: one shared ``nullcontext``. ``--trainer.profiler simple`` (or any other) replaces it."""

    _nothing = contextlib.nullcontext()

    def profile(self, action_name: str) -> contextlib.nullcontext:  # type: ignore[override]
        return self._nothing
