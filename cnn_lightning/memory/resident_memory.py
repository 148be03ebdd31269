"""This process's resident memory (Linux ``/proc/self/status``): now, at its peak, and the peak reset, for memory
measurements on the CPU and ``AutoMicroBatch``'s CPU search."""

from __future__ import annotations

import re
from pathlib import Path

GiB = 1 << 30
_STATUS, _CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def peak_rss_bytes() -> int:
    """This process's peak resident memory (``VmHWM``) since start or the last :func:`reset_peak_rss`."""
    return int(re.search(r"VmHWM:\s+(\d+) kB", _STATUS.read_text()).group(1)) * 1024


def rss_bytes() -> int:
    """This process's current resident memory (``VmRSS``)."""
    return int(re.search(r"VmRSS:\s+(\d+) kB", _STATUS.read_text()).group(1)) * 1024


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current resident memory (Linux ≥ 4.0: ``5`` to ``/proc/self/clear_refs``).

    ``getrusage``'s ``ru_maxrss`` cannot be reset, so it cannot measure one step after the imports' peak.
    Returns False where the kernel or the sandbox does not allow it.
    """
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


class CPUBudgetExceeded(RuntimeError):
    """A training step's peak resident memory went over ``AutoMicroBatch(max_memory=...)`` on CPU.

    The message carries the text of PyTorch's CPU allocator failure so that Lightning's ``is_oom_error``, and
    hence its batch-size finder, treats it as the out-of-memory it stands for.
    """

    def __init__(self, peak: int, budget: int) -> None:
        super().__init__(
            f"DefaultCPUAllocator: can't allocate memory: a step peaked at {peak / GiB:.2f} GiB resident, "
            f"over the {budget / GiB:.2f} GiB search budget of AutoMicroBatch"
        )
