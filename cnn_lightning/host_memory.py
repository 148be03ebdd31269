"""CPU memory that a training step frees, kept in the process for the next step instead of handed back to Linux.

glibc's ``malloc`` returns large freed blocks to the kernel: a block above its mmap threshold is unmapped when
freed, and free memory at the top of the heap is trimmed once it exceeds ``M_TRIM_THRESHOLD``. A training step
frees every activation it allocated, so the next step got fresh pages, each a page fault and a page zeroed by the
kernel: on a 2-core AMD EPYC (Zen 3, float32) 1,000-5,000 faults and 6-15 ms of kernel time in every 25-40 ms
LeNet step at batch 256, varying from run to run with the allocator's state; ResNet-18 at 96 px, 490,000 faults
and 2.4 s of a 12 s step on one thread. PyTorch's CPU tuning guide answers this with jemalloc or tcmalloc
preloaded (``LD_PRELOAD``), which must be set up before the process starts; glibc's own ``mallopt`` does the same
from inside it: blocks up to 32 MiB (the largest mmap threshold glibc accepts on 64-bit) come from the heap and
the heap is never trimmed, so a steady LeNet step faults no page (ResNet's activations over 32 MiB still come
mapped fresh, in huge pages: :func:`huge_pages_for_large_tensors`). The process's memory stays at its peak,
which every step reaches anyway. ``benchmarks/overhead.py`` prints the faults a step; README, "The framework's
tax", what it bought.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform
import sys

# <malloc.h>
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
LARGEST_MMAP_THRESHOLD = 32 * 2**20  # glibc refuses more on 64-bit (half its 64 MiB arena heap)
NEVER_TRIM = -1  # mallopt(3): "-1 disables trimming completely"
HUGE_PAGES_SETTING = "THP_MEM_ALLOC_ENABLE"  # PyTorch's, read once when it loads
# A user's own allocator settings win over ours.
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


@functools.cache
def glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (whose ``mallopt`` and ``malloc_trim`` this module calls), else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]  # an int, not whatever ctypes makes of a Python int
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


def retain_freed_memory() -> bool:
    """Keep freed blocks of up to 32 MiB in this process for reuse (process-wide, for the rest of its life).

    Returns whether the setting is in force: False off glibc (macOS, musl) and where the user set glibc's malloc
    environment variables themselves.
    """
    libc = glibc()
    if libc is None or any(name in os.environ for name in USER_SETTINGS):
        return False
    # The mmap threshold first: setting it also stops glibc from moving both thresholds as blocks are freed.
    return bool(libc.mallopt(M_MMAP_THRESHOLD, LARGEST_MMAP_THRESHOLD) and libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))


def release_freed_memory() -> None:
    """Hand the free memory this process keeps back to the kernel now (``malloc_trim``), so that resident memory
    measures what is in use: before a memory measurement, and after one that ran out."""
    libc = glibc()
    if libc is not None:
        libc.malloc_trim(0)


def page_faults() -> int:
    """Fresh pages this process has taken from the kernel so far (minor faults, every thread; Unix only)."""
    import resource  # not on Windows, where the rest of this module still imports

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def huge_pages_for_large_tensors() -> bool:
    """Ask PyTorch to back each CPU tensor of 2 MiB or more with transparent huge pages (``THP_MEM_ALLOC_ENABLE``)
    unless the user set it; returns whether that takes effect. PyTorch reads the setting once, when it loads, so
    this runs before ``import torch`` (``python -m cnn_lightning`` calls it first).

    The activations above the 32 MiB that glibc keeps are mapped fresh every step; in 2 MiB pages that is 1/512 of
    the faults: ResNet-18 at 96 px, batch 256, 300,000 faults a step fell to 13,000 and the bare loop went from
    44-45 to 49-50 examples/sec (2-core AMD EPYC, Zen 3; LeNet, whose blocks glibc keeps, unchanged).
    """
    if "torch" in sys.modules:
        return False
    os.environ.setdefault(HUGE_PAGES_SETTING, "1")
    return os.environ[HUGE_PAGES_SETTING] == "1"
