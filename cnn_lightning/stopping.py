"""Ctrl+C and SIGTERM end every command with the shell's exit code, 130 and 143, wherever they land: while a config
or checkpoint is read, while Fashion-MNIST is decompressed, in a fit's sanity check, validation or test pass, in a
second Ctrl+C, or inside a library that turns an interrupt into an exit of its own (Lightning's Trainer exits 1 after
a KeyboardInterrupt).

The entry point installs the handlers before anything else: each records the signal and raises KeyboardInterrupt, so
that ``finally`` blocks and context managers remove what they began (SIGTERM's default action would skip them), and
the exit code is the first signal's however the stack unwinds (:func:`stop_exit_code`). While a fit trains, its
:class:`~cnn_lightning.callbacks.graceful_interrupt.GracefulInterrupt` takes the first signal instead: the fit stops
after its batch with ``last.ckpt`` saved (:func:`stop_gracefully`).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
NAMES = {signal.SIGINT: "Ctrl+C", signal.SIGTERM: "SIGTERM"}
_received: list[int] = []  # the stop signals this process got, first first
_graceful = {"on": False, "announced": False}


@contextlib.contextmanager
def stop_signals_handled() -> Iterator[None]:
    """Within: Ctrl+C and SIGTERM handled as above, with nothing recorded yet; after: the handlers from before (a
    caller that runs the entry point in its own process, as the tests do, keeps its own), unless a stop signal came.
    Then the process is ending with that signal's code, and a further Ctrl+C while it exits is ignored: there is nothing
    left to abort, and the interpreter's shutdown resets Python handlers to the default (death by SIGINT, exit -2)."""
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    _received.clear()
    _graceful.update(on=False, announced=False)
    install_stop_handlers()
    try:
        yield
    finally:
        if threading.current_thread() is threading.main_thread():
            for signum, handler in previous.items():
                if _received:
                    signal.signal(signum, signal.SIG_IGN)
                elif handler is not None:
                    signal.signal(signum, handler)


def install_stop_handlers() -> None:
    """Ctrl+C and SIGTERM raise KeyboardInterrupt, recorded; a signal the process was started ignoring (a background
    job of a script) stays ignored, as the shell meant. Only the main thread may set handlers: elsewhere, none."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _stop_now)


def _stop_now(signum: int, frame: Any) -> None:
    if _graceful["on"]:  # a training fit's own handler has taken the signal (Lightning calls the one before it too)
        return
    note_stop_signal(signum)
    raise KeyboardInterrupt


def note_stop_signal(signum: int) -> None:
    _received.append(signum)


def stop_gracefully(on: bool) -> None:
    """While ``on``, the first stop signal is left to the training fit's handler."""
    _graceful["on"] = on


def stop_announced() -> None:
    """The command has said how the signal stops it: :func:`exit_stopped` adds no line of its own."""
    _graceful["announced"] = True


def stop_signal() -> int | None:
    """The first stop signal this process got, if any."""
    return _received[0] if _received else None


def stop_exit_code() -> int | None:
    """128 + the first stop signal (130 after Ctrl+C, 143 after SIGTERM), or None when no stop signal came."""
    first = stop_signal()
    return None if first is None else 128 + int(first)


def exit_stopped() -> None:
    """End the process as the first stop signal asks, with one line where the fit has not said how it stopped."""
    first, code = stop_signal(), stop_exit_code()
    assert first is not None and code is not None
    if not _graceful["announced"]:
        print(f"\nStopped by {NAMES.get(first, f'signal {first}')} (exit code {code}).", file=sys.stderr, flush=True)
    sys.exit(code)
