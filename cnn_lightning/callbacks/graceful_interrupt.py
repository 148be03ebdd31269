"""Ctrl+C and SIGTERM stop a fit cleanly: after the current batch, with ``last.ckpt`` saved, and with the shell's
exit code."""

from __future__ import annotations

import signal
from typing import Any

import lightning as L

_stop_signal = {"signum": signal.SIGTERM}  # what ended a run stopped through Lightning's SIGTERM path


def interrupt_exit_code() -> int:
    """Shell convention for a run stopped by a signal: 130 after Ctrl+C, 143 after SIGTERM."""
    return 128 + int(_stop_signal["signum"])


class GracefulInterrupt(L.Callback):
    """First Ctrl+C: stop after the current batch through Lightning's SIGTERM path (so ``RunCheckpoint``
    saves a consistent ``last.ckpt``); a second Ctrl+C aborts at once."""

    def __init__(self) -> None:
        self._previous: Any = None
        self.received: int | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        try:
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # not the main thread: leave Ctrl+C to Lightning
            self._previous = None

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = _stop_signal["signum"] = signum
        print("\nCtrl+C: stopping after this batch and saving last.ckpt (press again to abort).", flush=True)
        signal.raise_signal(signal.SIGTERM)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
