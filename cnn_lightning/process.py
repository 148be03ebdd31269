"""Settings that hold for the whole process, made in one place: by the entry point (``python -m cnn_lightning`` and the
``cnn-lightning`` script) before any command runs, and by :func:`configure_process` for a Python user who builds a
``Trainer`` directly (call it first, before ``import torch`` for the huge pages to take effect).

* Huge pages for CPU tensors of 2 MiB or more: PyTorch's ``THP_MEM_ALLOC_ENABLE``, read once when torch loads
  (:func:`cnn_lightning.memory.host_memory.huge_pages_for_large_tensors`).
* Freed CPU memory kept in the process for the next step instead of handed back to the kernel (glibc ``mallopt``:
  :func:`cnn_lightning.memory.host_memory.retain_freed_memory`); ``CNN_LIGHTNING_RETAIN_HOST_MEMORY=0`` in the
  environment (or ``configure_process(retain_host_memory=False)``) keeps glibc's thresholds.
* TF32 tensor cores for float32 matrix products on CUDA GPUs (``torch.set_float32_matmul_precision("high")``):
  cuDNN already runs float32 convolutions on them by default; this lets the linear layers use them too. Set only on
  a machine with a CUDA GPU and only where the precision is PyTorch's default ``highest`` (a user's choice stays).
* The libraries' known-harmless messages silenced by message and module, never all warnings (:func:`quiet_known_noise`),
  and Lightning's notes that the project says better (a signal it handled, a fit's end).
* A process started for another (a ``tune`` trial: ``CNN_LIGHTNING_PARENT_PID`` set) ends with it: SIGTERM, which
  stops a fit after its batch with ``last.ckpt`` saved, when that parent dies, even by ``kill -9``.

A user's own environment wins: ``THP_MEM_ALLOC_ENABLE`` and glibc's ``MALLOC_*``/``GLIBC_TUNABLES`` variables, when
set, are left as they are.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import warnings
from dataclasses import dataclass

from cnn_lightning.memory.host_memory import glibc, huge_pages_for_large_tensors, retain_freed_memory

PARENT_SETTING = "CNN_LIGHTNING_PARENT_PID"
RETAIN_SETTING = "CNN_LIGHTNING_RETAIN_HOST_MEMORY"
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


def configure_process(*, retain_host_memory: bool | None = None, quiet: bool = True) -> ProcessSettings:
    """Make the process-wide settings above; safe to call more than once.

    Args:
        retain_host_memory: keep freed CPU memory in the process (false leaves glibc's defaults); unset, what
            ``CNN_LIGHTNING_RETAIN_HOST_MEMORY`` says (``0`` or ``false``: no), else yes.
        quiet: silence the libraries' known-harmless messages.
    """
    if retain_host_memory is None:
        retain_host_memory = os.environ.get(RETAIN_SETTING, "1").strip().lower() not in ("0", "false", "no")
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
        quiet_known_noise()
    return ProcessSettings(huge_pages=huge_pages, retained_host_memory=retained, tf32_matmul=tf32)


# (message regex, category, module regex): each harmless and printed on every run.
KNOWN_NOISE = (
    (".*args parameter is intended to run from within Python.*", Warning, ""),
    # predict's batches carry their own index (the CSV writer reads it): Lightning need not infer it.
    ("Couldn't infer the batch indices fetched from your dataloader", Warning, "lightning"),
    # validate/test/predict log into a subfolder of the checkpoint's run; its checkpoints stay where they are.
    ("The dirpath has changed from", Warning, "lightning"),
    # TensorBoard's graph needs torch.jit.trace (SummaryWriter.add_graph); no supported replacement exists yet.
    (".*torch.jit.trace.*deprecated", FutureWarning, ""),
    ("`torch.jit.trace` is not supported", Warning, ""),
    # bf16 runs: the summary's size estimate counts float32 parameters, which is what they are.
    ("Precision bf16-mixed is not supported by the model summary", Warning, "lightning"),
    # Lightning 2.6 on torch >= 2.10: its own pytree helper, fixed upstream.
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", Warning, "lightning"),
    # predict, test or validate on a checkpoint another Trainer wrote (a plain Trainer's): its checkpoint callbacks'
    # state matters only to resume training, which the project's own callbacks do.
    ("Be aware that when using `ckpt_path`, callbacks used to create the checkpoint", Warning, "lightning"),
    # A short run (--trainer.limit_train_batches 20): the project logs its curves once per epoch, whatever the interval.
    ("The number of training batches .* is smaller than the logging interval", Warning, "lightning"),
)


# Lightning's notes that the project says better or that leave the user nothing to do: the closing line says how a fit
# ended (Lightning's own note would land on the bar's line); GracefulInterrupt and cnn_lightning.stopping say that and
# how a signal stops a command; its tips advertise cloud services (litlogger, litmodels); the model table (ModelTable)
# replaces Lightning's, which it notes on every fit; a machine without a TPU is told so on every fit.
DROPPED_NOTES = (
    "💡 Tip:",
    "litlogger",
    "`Trainer.fit` stopped:",
    "Received SIGTERM:",
    "Detected KeyboardInterrupt",
    "Skipping setting a default `ModelSummary` callback",
    "TPU available: False",  # on every machine without one
)
# Loggers a record is filtered at: a logger's filter sees only the records logged to it, not its children's.
NOTE_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.pytorch",
    "lightning.pytorch.trainer.connectors.signal_connector",
)


class _DropLightningNotes(logging.Filter):
    """Lightning advertises optional cloud services at the start and the end of every fit, says why a fit stopped
    on the progress bar's line, notes every signal it handles (``[rank: 0] Received SIGTERM: 15``) and that a model
    table it did not add is there."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(note in message for note in DROPPED_NOTES)


def quiet_known_noise() -> None:
    """Silence exactly the messages in :data:`KNOWN_NOISE` and Lightning's two notes (:class:`_DropLightningNotes`)."""
    for message, category, module in KNOWN_NOISE:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    for name in NOTE_LOGGERS:
        logging.getLogger(name).addFilter(_DropLightningNotes())
