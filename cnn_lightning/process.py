"""Settings that hold for the whole process, made in one place: by the entry point (``python -m cnn_lightning`` and the
``cnn-lightning`` script) before any command runs, and by :func:`configure_process` for a Python user who builds a
``Trainer`` directly (call it first, before ``import torch`` for the huge pages to take effect).

* Huge pages for CPU tensors of 2 MiB or more: PyTorch's ``THP_MEM_ALLOC_ENABLE``, read once when torch loads
  (:func:`cnn_lightning.memory.host_memory.huge_pages_for_large_tensors`).
* Freed CPU memory kept in the process for the next step instead of handed back to the kernel (glibc ``mallopt``:
  :func:`cnn_lightning.memory.host_memory.retain_freed_memory`); a run's ``--trainer.retain_host_memory false``
  returns to glibc's thresholds.
* TF32 tensor cores for float32 matrix products on CUDA GPUs (``torch.set_float32_matmul_precision("high")``):
  cuDNN already runs float32 convolutions on them by default; this lets the linear layers use them too. Set only on
  a machine with a CUDA GPU and only where the precision is PyTorch's default ``highest`` (a user's choice stays).
* The libraries' known-harmless messages silenced by message and module (:mod:`cnn_lightning.commands.messages`).
* A process started for another (a ``tune`` trial: ``CNN_LIGHTNING_PARENT_PID`` set) ends with it: SIGTERM, which
  stops a fit after its batch with ``last.ckpt`` saved, when that parent dies, even by ``kill -9``.

A user's own environment wins: ``THP_MEM_ALLOC_ENABLE`` and glibc's ``MALLOC_*``/``GLIBC_TUNABLES`` variables, when
set, are left as they are.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass

from cnn_lightning.memory.host_memory import glibc, huge_pages_for_large_tensors, retain_freed_memory

PARENT_SETTING = "CNN_LIGHTNING_PARENT_PID"
PR_SET_PDEATHSIG = 1  # <sys/prctl.h>


def end_with_parent(parent: int) -> None:
    """SIGTERM this process when ``parent`` dies: Linux's parent-death signal (through glibc), elsewhere a thread
    that watches."""
    if (libc := glibc()) is not None:  # Linux
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    else:

        def watch() -> None:
            while os.getppid() == parent:
                threading.Event().wait(1.0)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch, daemon=True, name="end-with-parent").start()
    if os.getppid() != parent:  # it died before the signal was asked for
        os.kill(os.getpid(), signal.SIGTERM)


@dataclass(frozen=True)
class ProcessSettings:
    """Which of the process-wide settings took effect."""

    huge_pages: bool
    retained_host_memory: bool
    tf32_matmul: bool


def configure_process(*, retain_host_memory: bool = True, quiet: bool = True) -> ProcessSettings:
    """Make the process-wide settings above; safe to call more than once.

    Args:
        retain_host_memory: keep freed CPU memory in the process (false leaves glibc's defaults).
        quiet: silence the libraries' known-harmless messages.
    """
    huge_pages = huge_pages_for_large_tensors()  # first: it must come before torch loads
    if PARENT_SETTING in os.environ:
        end_with_parent(int(os.environ[PARENT_SETTING]))
    import torch
    from lightning.fabric.accelerators.cuda import num_cuda_devices  # NVML: no CUDA context, safe before a fork

    retained = retain_host_memory and retain_freed_memory()
    tf32 = num_cuda_devices() > 0 and torch.get_float32_matmul_precision() == "highest"
    if tf32:
        torch.set_float32_matmul_precision("high")
    if quiet:
        from cnn_lightning.commands.messages import quiet_known_noise

        quiet_known_noise()
    return ProcessSettings(huge_pages=huge_pages, retained_host_memory=retained, tf32_matmul=tf32)
