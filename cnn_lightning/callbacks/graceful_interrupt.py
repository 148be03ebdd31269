"""Ctrl+C and SIGTERM stop a training fit cleanly: after the current batch, with ``last.ckpt`` saved, and with the
shell's exit code. Outside training (data preparation, the sanity check, the test pass after fit) the process-wide
handlers of :mod:`cnn_lightning.stopping` stop at once, with the same exit codes."""

from __future__ import annotations

import signal
from typing import Any

import lightning as L

from cnn_lightning.stopping import (
    NAMES,
    STOP_SIGNALS,
    note_stop_signal,
    stop_announced,
    stop_exit_code,
    stop_gracefully,
)


def interrupt_exit_code() -> int:
    """Shell convention for a run stopped by a signal: 130 after Ctrl+C, 143 after SIGTERM (143 where none was
    recorded: Lightning's SIGTERM path without this process's handlers)."""
    return stop_exit_code() or 128 + int(signal.SIGTERM)


class GracefulInterrupt(L.Callback):
    """First Ctrl+C or SIGTERM while training: stop after the current batch through Lightning's SIGTERM handler (so
    ``RunCheckpoint`` saves a consistent ``last.ckpt``); a second one aborts at once. Installed once training starts,
    after Lightning has registered its handler, which it calls."""

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        self._lightning_sigterm: Any = None
        self.received: int | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._lightning_sigterm = signal.getsignal(signal.SIGTERM)
        try:
            self._previous = {signum: signal.signal(signum, self._on_signal) for signum in STOP_SIGNALS}
        except ValueError:  # not the main thread: leave the signals to Lightning
            self._previous = {}
            return
        stop_gracefully(True)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            stop_gracefully(False)
            raise KeyboardInterrupt
        self.received = signum
        note_stop_signal(signum)
        stop_announced()
        print(
            f"\n{NAMES.get(signum, 'Signal')}: stopping after this batch and saving last.ckpt (press Ctrl+C again to "
            "abort).",
            flush=True,
        )
        if callable(self._lightning_sigterm):  # Lightning's: the loops stop after this batch (SIGTERMException)
            self._lightning_sigterm(signal.SIGTERM, frame)
        else:  # Lightning registered none: nothing would stop the loops after the batch
            raise KeyboardInterrupt

    def _restore(self) -> None:
        for signum, previous in self._previous.items():
            # Only where still ours: Lightning's teardown has restored the handlers from before the fit by then.
            if previous is not None and signal.getsignal(signum) == self._on_signal:
                signal.signal(signum, previous)
        self._previous = {}
        stop_gracefully(False)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore()
