"""The book's batch size inside a small memory budget: micro-batches plus gradient accumulation.

``AutoMicroBatch`` reuses Lightning's batch-size finder (``BatchSizeFinder``, power mode) to find the largest
micro-batch that fits the device, then sets ``trainer.accumulate_grad_batches`` so that micro-batch ×
accumulation × devices stays the configured effective batch — what Lightning's own finder does not do
(Lightning issue #17393). ``EffectiveBatchSize`` prints and logs that product at fit start.

Caveat: batch norm normalizes each micro-batch with its own statistics and updates its running averages once
per micro-batch, so 64 × 4 is not bit-identical to 256 × 1 for the book's BN networks (see docs/memory.md).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import BatchSizeFinder, Callback
from lightning.pytorch.strategies import ParallelStrategy
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.parsing import lightning_getattr, lightning_hasattr, lightning_setattr
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch.optim.optimizer import register_optimizer_step_post_hook

from cnn_lightning.lightning_contract import rebuild_train_loader
from cnn_lightning.memory.host_memory import release_freed_memory
from cnn_lightning.memory.resident_memory import CPUBudgetExceeded, GiB, peak_rss_bytes, reset_peak_rss


def power_of_two_divisor(n: int, at_most: int | None = None) -> int:
    """Largest power of two dividing ``n`` and not above ``at_most``: the micro-batches that split ``n`` evenly."""
    divisor = n & -n
    while at_most is not None and divisor > at_most:
        divisor //= 2
    return divisor


class AutoMicroBatch(Callback):
    """Largest micro-batch that fits the device, with gradient accumulation keeping the effective batch.

    At fit start the micro-batch candidates are the powers of two dividing the per-device effective batch, up
    to the configured micro-batch (``data.batch_size``, and ``max_micro_batch``); Lightning's ``BatchSizeFinder``
    in ``power`` mode tries them upwards from 1 until one runs out of memory, with Lightning's ``is_oom_error``
    deciding what counts as out of memory. Then ``data.batch_size`` becomes the micro-batch and
    ``trainer.accumulate_grad_batches`` the rest, and one line says what was chosen. A model whose
    ``memory_efficient`` hyperparameter is ``"auto"`` (DenseNet) is tried on the whole micro-batch without
    recomputation first, and recomputes in backward only if that does not fit: on a GPU recomputation costs
    less than splitting the batch.

    Where the search runs:

    * CUDA: always, against ``max_memory`` GiB (default: the memory this process can get, free plus what it
      holds) less ``headroom``, enforced with ``torch.cuda.set_per_process_memory_fraction`` during the search
      so the run keeps room for fragmentation and cuDNN workspaces. With ``max_memory`` the cap stays for the
      fit, so a large GPU behaves like a small one.
    * CPU: only with ``max_memory`` (GiB of the process's resident memory, imports and data included); a trial
      fails when a step's peak resident memory goes over it. Without it the configured batch is kept (capped by
      ``max_micro_batch``): a CPU does not fail cleanly when memory runs out, the kernel kills the process.
    * Not with ``fast_dev_run`` or distributed strategies (Lightning's finder supports neither): the largest
      candidate is used.

    Args:
        effective_batch_size: examples per optimizer step over all devices; ``None`` keeps the configuration's
            (``data.batch_size`` × ``trainer.accumulate_grad_batches`` × devices).
        max_micro_batch: upper bound on the micro-batch (e.g. 64 for a fixed 64 × 4 without searching on CPU).
        max_memory: memory budget in GiB (see above).
        headroom: fraction of the budget the search leaves free.
        steps_per_trial: training steps per candidate micro-batch.
        batch_arg_name: the data module's (or model's) batch-size attribute.
    """

    def __init__(
        self,
        effective_batch_size: int | None = None,
        max_micro_batch: int | None = None,
        max_memory: float | None = None,
        headroom: float = 0.1,
        steps_per_trial: int = 2,
        batch_arg_name: str = "batch_size",
    ) -> None:
        super().__init__()
        for name, value in (("effective_batch_size", effective_batch_size), ("max_micro_batch", max_micro_batch)):
            if value is not None and value < 1:
                raise ValueError(f"AutoMicroBatch: {name} must be at least 1, got {value}.")
        if max_memory is not None and max_memory <= 0:
            raise ValueError(f"AutoMicroBatch: max_memory must be positive (GiB), got {max_memory}.")
        if not 0 <= headroom < 1:
            raise ValueError(f"AutoMicroBatch: headroom must be in [0, 1), got {headroom}.")
        self.effective_batch_size, self.max_micro_batch = effective_batch_size, max_micro_batch
        self.max_memory, self.headroom = max_memory, headroom
        self.steps_per_trial, self.batch_arg_name = steps_per_trial, batch_arg_name
        self.micro_batch_size: int | None = None
        self._per_device = self._largest = 0
        self._search = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str | None = None) -> None:
        if stage != "fit":
            return
        if not lightning_hasattr(pl_module, self.batch_arg_name):
            raise MisconfigurationException(f"AutoMicroBatch: no `{self.batch_arg_name}` in the model or data.")
        micro = lightning_getattr(pl_module, self.batch_arg_name)
        effective = self.effective_batch_size or micro * trainer.accumulate_grad_batches * trainer.world_size
        if effective % trainer.world_size:
            raise MisconfigurationException(
                f"AutoMicroBatch: effective batch {effective} does not split over {trainer.world_size} devices."
            )
        self._per_device = effective // trainer.world_size
        # The configured micro-batch is the largest tried: a user who asked for 64 × 4 gets no more than 64.
        self._largest = power_of_two_divisor(self._per_device, min(micro, self.max_micro_batch or micro))
        self._search = self._largest > 1 and self._can_search(trainer)
        # Apply the no-search split now, before configure_optimizers, so a scheduler that reads
        # ``trainer.estimated_stepping_batches`` sees the accumulation whenever no search changes it.
        self._apply(trainer, pl_module, self._largest)

    def _why_not(self, trainer: L.Trainer) -> str | None:
        """Why no search runs, or None when it can."""
        if trainer.fast_dev_run:
            return "no search with fast_dev_run"
        if isinstance(trainer.strategy, ParallelStrategy):
            return "no search when distributed: Lightning's batch-size finder does not run there"
        device = trainer.strategy.root_device.type
        if device == "cuda" or (device == "cpu" and self.max_memory is not None and reset_peak_rss()):
            return None
        return f"no search on {device} without max_memory"

    def _can_search(self, trainer: L.Trainer) -> bool:
        why = self._why_not(trainer)
        if why and why.startswith("no search when distributed"):
            rank_zero_warn(f"AutoMicroBatch: {why}.")
        return why is None

    def _apply(self, trainer: L.Trainer, pl_module: L.LightningModule, micro: int) -> None:
        lightning_setattr(pl_module, self.batch_arg_name, micro)
        trainer.accumulate_grad_batches = self._per_device // micro
        self.micro_batch_size = micro

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        device = trainer.strategy.root_device
        if not self._search:
            if self._largest == 1:
                why = f"1 is the only power of two dividing {self._per_device}"
            else:
                why = self._why_not(trainer) or "no search"
            self._report(trainer, f"largest candidate kept, {why}")
            return
        trainer.accumulate_grad_batches = 1  # a trial's steps_per_trial optimizer steps = as many micro-batches
        if device.type == "cuda":
            budget = self._search_cuda(trainer, pl_module, device)
        else:
            budget = self._search_cpu(trainer, pl_module)
        self._report(trainer, f"largest to fit {budget / GiB:.2f} GiB on {device} after {self.headroom:.0%} headroom")

    def _report(self, trainer: L.Trainer, why: str) -> None:
        if trainer.is_global_zero:
            micro, accumulation = self.micro_batch_size, trainer.accumulate_grad_batches
            module = trainer.lightning_module
            if getattr(module.hparams, "memory_efficient", None) == "auto":
                why += f"; recomputation in backward {'on' if module.memory_efficient else 'off'}"
            print(f"AutoMicroBatch: micro-batch {micro} × {accumulation} accumulated ({why})", flush=True)

    def _find_split(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The micro-batch search; a model with ``memory_efficient='auto'`` recomputes in backward only if the
        whole micro-batch does not fit without it."""
        if getattr(pl_module.hparams, "memory_efficient", None) != "auto":
            self._find(trainer, pl_module, start=1)
            return
        pl_module.set_memory_efficient(False)
        if self._find(trainer, pl_module, start=self._largest) == 0:
            pl_module.set_memory_efficient(True)
            self._find(trainer, pl_module, start=1, again=True)

    def _find(self, trainer: L.Trainer, pl_module: L.LightningModule, *, start: int, again: bool = False) -> int:
        """Lightning's power-mode finder over the powers of two from ``start`` to ``self._largest``; returns the
        largest that ran, or 0 when a single trial at ``self._largest`` did not fit."""
        finder = BatchSizeFinder(
            mode="power",
            steps_per_trial=self.steps_per_trial,
            init_val=start,
            max_trials=(self._largest // start).bit_length(),  # never past the configured batch
            batch_arg_name=self.batch_arg_name,
            max_val=self._largest + 1,  # the finder stops before trying a size >= max_val
        )
        # The finder builds its first loader before it sets init_val: set it first, or trial 1 runs the full batch;
        # a loader an earlier search built is rebuilt, or trial 1 runs that search's last size.
        lightning_setattr(pl_module, self.batch_arg_name, start)
        if again:
            rebuild_train_loader(trainer)
        checkpoints = set(Path(trainer.default_root_dir).glob(".scale_batch_size_*.ckpt"))
        try:
            finder.scale_batch_size(trainer, pl_module)
        except Exception:
            # The finder's own cleanup fails after an error; do not leave its checkpoint behind.
            for leftover in set(Path(trainer.default_root_dir).glob(".scale_batch_size_*.ckpt")) - checkpoints:
                leftover.unlink(missing_ok=True)
            # Power mode halves a failing size 1 to 0, which no data loader can take.
            if lightning_getattr(pl_module, self.batch_arg_name) == 0:
                raise MemoryError("AutoMicroBatch: not even a micro-batch of 1 fits the memory budget.") from None
            raise
        micro = min(finder.optimal_batch_size or 1, self._largest)
        if start == self._largest and micro < start:  # the finder halved a failed single trial without trying it
            return 0
        self._apply(trainer, pl_module, micro)  # the finder's loader already holds this size: its last trial's
        return micro

    def _search_cuda(self, trainer: L.Trainer, pl_module: L.LightningModule, device: torch.device) -> int:
        free, total = torch.cuda.mem_get_info(device)
        previous = torch.cuda.get_per_process_memory_fraction(device)
        # What this process can get: the device's free memory plus its own cache, within any cap already set.
        budget = min(free + torch.cuda.memory_reserved(device), int(previous * total))
        if self.max_memory is not None:
            budget = min(budget, int(self.max_memory * GiB))
        search_budget = int(budget * (1 - self.headroom))
        # The caching allocator raises a regular CUDA OOM above this fraction, which the finder recognizes.
        torch.cuda.set_per_process_memory_fraction(search_budget / total, device)
        try:
            self._find_split(trainer, pl_module)
        finally:
            kept = budget / total if self.max_memory is not None else previous
            torch.cuda.set_per_process_memory_fraction(kept, device)
            torch.cuda.empty_cache()
        return search_budget

    def _search_cpu(self, trainer: L.Trainer, pl_module: L.LightningModule) -> int:
        search_budget = int(self.max_memory * GiB * (1 - self.headroom))
        steps = 0

        def check_peak(optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
            # Lightning runs forward and backward inside optimizer.step(closure): after it, the peak since the
            # last reset covers one whole training step. The first step is not judged: it also pays one-off
            # initialization (oneDNN kernels, lazily built buffers) that does not grow with the batch.
            nonlocal steps
            steps += 1
            peak = peak_rss_bytes()
            release_freed_memory()  # what a smaller trial kept must not count against the next, larger one
            reset_peak_rss()
            if steps > 1 and peak > search_budget:
                raise CPUBudgetExceeded(peak, search_budget)

        handle = register_optimizer_step_post_hook(check_peak)
        release_freed_memory()
        reset_peak_rss()
        try:
            self._find_split(trainer, pl_module)
        finally:
            handle.remove()
            release_freed_memory()  # the trial that ran out of budget
        return search_budget
