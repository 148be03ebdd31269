"""The process's CPU memory: glibc's and PyTorch's host-memory settings, and resident memory measured. Nothing here
imports torch: the huge-page setting must be made before it loads."""

from cnn_lightning.memory.host_memory import (
    huge_pages_for_large_tensors,
    page_faults,
    release_freed_memory,
    retain_freed_memory,
    return_freed_memory,
)
from cnn_lightning.memory.resident_memory import CPUBudgetExceeded, GiB, peak_rss_bytes, reset_peak_rss, rss_bytes

__all__ = [
    "CPUBudgetExceeded",
    "GiB",
    "huge_pages_for_large_tensors",
    "page_faults",
    "peak_rss_bytes",
    "release_freed_memory",
    "reset_peak_rss",
    "retain_freed_memory",
    "return_freed_memory",
    "rss_bytes",
]
