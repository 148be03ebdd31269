"""The divergence guard: a NaN or infinite training loss stops the run before a checkpoint can hold its weights."""

from __future__ import annotations

import math
from typing import Any

import torch

# A gradient scaler starts at 2**16 and halves on each skipped step: 20 skips in a row take it below 2**-4, where no
# fp16 overflow remains to explain them.
SCALER_SKIPS_ALLOWED = 20


class FiniteLossGuard:
    """Stops training when the loss becomes NaN or infinite, without a host synchronization per step on CUDA.

    On the CPU each loss is checked at once, before backward (a check costs nothing there). On CUDA a per-step
    ``bool(isfinite(loss))`` would make Python wait for the GPU every step, so each step's flag is copied to
    pinned memory without blocking and read once the GPU has got there, normally one or two steps later;
    ``flush`` waits for every pending flag and runs before each checkpoint is written and at each epoch end, so a
    checkpoint never holds weights that a non-finite step has updated.

    Args:
        on_divergence: called as ``on_divergence(loss, epoch, global_step, batch_idx)`` for the first
            non-finite loss seen; expected to raise.
        depth: flags in flight at most; a full ring waits for the oldest (bounds how late a divergence is caught).
        skips_allowed: non-finite losses in a row taken for steps a gradient scaler skips (``16-mixed``: an fp16
            overflow makes the loss or its gradients infinite, and the scaler skips that step and halves its scale);
            one more is a divergence. 0: every non-finite loss is one.
    """

    def __init__(self, on_divergence: Any, depth: int = 4, skips_allowed: int = 0) -> None:
        self.on_divergence, self.depth, self.skips_allowed = on_divergence, depth, skips_allowed
        self.skipped_in_a_row = 0
        self._pending: list[tuple[torch.Tensor, torch.Tensor, torch.cuda.Event, tuple[int, int, int]]] = []
        self._free: list[tuple[torch.Tensor, torch.Tensor]] = []

    def check(self, loss: torch.Tensor, batch_idx: int, *, epoch: int = 0, step: int = 0) -> None:
        """One step's loss, or a 1-D tensor of consecutive steps' losses (a replayed chunk of steps: one flag for
        all of them, and the first non-finite one named by its own step)."""
        where = (epoch, step, batch_idx)
        if loss.device.type != "cuda":
            self._seen_in_order(loss.tolist(), where)  # one read: isfinite would launch an operator for a float's test
            return
        self._poll(wait_for_oldest=len(self._pending) >= self.depth)
        shape = tuple(loss.shape)
        free = next((index for index, (_, value) in enumerate(self._free) if value.shape == shape), None)
        if free is not None:
            flag, value = self._free.pop(free)
        else:
            flag, value = torch.empty((), dtype=torch.bool, pin_memory=True), torch.empty(shape, pin_memory=True)
        finite = torch.isfinite(loss.detach())
        flag.copy_(finite.all() if loss.dim() else finite, non_blocking=True)  # a step's own loss: no extra kernel
        value.copy_(loss.detach(), non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._pending.append((flag, value, event, where))

    def flush(self) -> None:
        """Wait for every pending flag and raise through ``on_divergence`` if one was non-finite."""
        while self._pending:
            self._poll(wait_for_oldest=True)

    def _poll(self, *, wait_for_oldest: bool) -> None:
        while self._pending:
            flag, value, event, where = self._pending[0]
            if wait_for_oldest:
                event.synchronize()
                wait_for_oldest = False
            elif not event.query():
                return
            self._pending.pop(0)
            self._free.append((flag, value))
            if bool(flag):
                self._seen(True, 0.0, where)
                continue
            if self.skipped_in_a_row >= self.skips_allowed:
                self._pending.clear()
            self._seen_in_order(value.tolist(), where)

    def _seen_in_order(self, losses: float | list[float], where: tuple[int, int, int]) -> None:
        """One step's loss, or consecutive steps' from ``where`` on."""
        epoch, step, batch_idx = where
        for offset, loss in enumerate(losses if isinstance(losses, list) else [losses]):
            self._seen(math.isfinite(loss), loss, (epoch, step + offset, batch_idx + offset))

    def _seen(self, finite: bool, value: float, where: tuple[int, int, int]) -> None:
        """One step's loss: finite, a step the scaler skips, or the divergence."""
        if finite:
            self.skipped_in_a_row = 0
        elif self.skipped_in_a_row < self.skips_allowed:
            self.skipped_in_a_row += 1
        else:
            self.on_divergence(value, *where)
