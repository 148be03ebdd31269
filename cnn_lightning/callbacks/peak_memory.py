"""Peak training memory, measured by every ``fit``: what D2L's exercises ask to observe (§8.1 ex. 6, "observe ...
GPU memory"; §8.7 ex. 3.1, DenseNet's "actual GPU memory" at 224 px) with nothing else to run."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from cnn_lightning.memory.resident_memory import peak_rss_bytes, reset_peak_rss, rss_bytes

TAG = "train/peak_memory_mib"
MiB = 1 << 20


class PeakMemory(Callback):
    """Logs ``train/peak_memory_mib`` at the end of every training epoch: the most memory training has held since the
    fit started (validation inside the epoch included), which the closing line and ``report`` show.

    On CUDA it is ``torch.cuda.max_memory_allocated``: the tensors' peak on the device (weights, optimizer state,
    the resident dataset, activations), the caching allocator's reserve excluded. On the CPU it is the growth of the
    process's resident set over training: the peak (``VmHWM``, reset when training starts) less the resident
    memory at that start, so the imports, the dataset and the weights already loaded do not count but everything
    training adds does (activations, gradients, optimizer state, the allocator's cache). Where the kernel refuses
    the reset, the peak is the process's since it started: an upper bound. Under DDP the largest rank's figure.

    Only epoch-level hooks: it adds nothing to a step, and the engine's chunks (cnn_lightning.engine) stay on.
    """

    def __init__(self) -> None:
        super().__init__()
        self.start_bytes = 0
        self.peak_bytes: int | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        device = trainer.strategy.root_device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            self.start_bytes = 0
        else:
            reset_peak_rss()
            self.start_bytes = rss_bytes()
        self.peak_bytes = None

    def measure(self, device: torch.device) -> int:
        """Bytes at the peak so far: CUDA's allocated peak, or the resident set's growth since training started."""
        if device.type == "cuda":
            return torch.cuda.max_memory_allocated(device)
        return max(0, peak_rss_bytes() - self.start_bytes)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.peak_bytes = self.measure(trainer.strategy.root_device)
        pl_module.log(TAG, self.peak_bytes / MiB, sync_dist=trainer.world_size > 1, reduce_fx="max")
