"""CPU memory that a training step frees, kept in the process for the next step instead of handed back to Linux.

glibc's ``malloc`` returns large freed blocks to the kernel: a block above its mmap threshold is unmapped when freed,
and free memory at the top of the heap is trimmed once it exceeds ``M_TRIM_THRESHOLD``. A training step frees every
activation it allocated, so the next step got fresh pages, each a page fault and a page zeroed by the kernel: thousands
of faults and a large share of a small CPU step in kernel time, varying from run to run with the allocator's state
(docs/measurements.md, "Host memory"). PyTorch's CPU tuning guide answers this with jemalloc or tcmalloc preloaded
(``LD_PRELOAD``), which must be set up before the process starts; glibc's own ``mallopt`` does the same from inside it:
blocks up to 32 MiB (the largest mmap threshold glibc accepts on 64-bit) come from the heap and the heap is never
trimmed, so a steady LeNet step faults no page (ResNet's activations over 32 MiB still come mapped fresh, in huge pages:
:func:`huge_pages_for_large_tensors`). The process's memory stays at its peak, which every step reaches anyway.
``benchmarks/overhead.py`` prints the faults a step; README, "The framework's tax", what it bought.
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
GLIBC_DEFAULT_THRESHOLD = 128 * 1024  # both thresholds' initial value (mallopt(3))
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


def return_freed_memory() -> None:
    """Undo :func:`retain_freed_memory`: glibc's initial thresholds again, and the kept memory handed back now. glibc
    cannot turn its adjustment of the mmap threshold back on, so the threshold stays at its initial 128 KiB."""
    libc = glibc()
    if libc is not None and not any(name in os.environ for name in USER_SETTINGS):
        libc.mallopt(M_MMAP_THRESHOLD, GLIBC_DEFAULT_THRESHOLD)
        libc.mallopt(M_TRIM_THRESHOLD, GLIBC_DEFAULT_THRESHOLD)
        libc.malloc_trim(0)


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
    this runs before ``import torch`` (``cnn_lightning.process.configure_process`` calls it first).

    The activations above the 32 MiB that glibc keeps are mapped fresh every step; in 2 MiB pages that is 1/512 of
    the faults (ResNet-18's figures: docs/measurements.md, "Host memory"; LeNet, whose blocks glibc keeps, gains
    nothing).
    """
    if "torch" in sys.modules:
        return False
    os.environ.setdefault(HUGE_PAGES_SETTING, "1")
    return os.environ[HUGE_PAGES_SETTING] == "1"
