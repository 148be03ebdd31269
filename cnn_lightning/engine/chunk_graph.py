"""A chunk of optimizer steps as one CUDA graph: captured once (``torch.cuda.graph``) and replayed per chunk, so that K
steps (resize, forward, loss, backward, SGD) cost one launch from Python instead of thousands.

What a replay needs to equal the chunk trained eagerly (engine/chunked_steps.py): static inputs (every full chunk
is copied into the same buffers; a short chunk, the epoch's last or one ``max_steps`` cuts, trains eagerly), each
step's learning rate read from a device table that the host fills from the schedule before each replay (SGD's fused
step takes it as a tensor), dropout's draws from the graph-registered generator, and the same weights, buffers and
momentum: a replay first checks that their storage is still the captured one and captures again when not (after a
checkpoint is loaded, its optimizer state is new tensors). The first full chunk of a fit trains eagerly on a side
stream (allocations, cuDNN's choice, the momentum buffers) before the capture, as PyTorch's whole-network capture
recipe does. Outcomes come back as device tensors: each step's predicted classes and loss, for the epoch metrics and
the divergence guard, with no host read. CUDA only; opt-in (``--trainer.strategy.cuda_graph true``) until a GPU run
measures it. What cannot be captured trains its chunks eagerly, saying why (:func:`why_not_graphed`).
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.callbacks import WeightAveraging
from lightning.pytorch.utilities.rank_zero import rank_zero_warn

from cnn_lightning.lightning_contract import count_extra_batches, count_optimizer_step


def why_not_graphed(trainer: Any) -> str | None:
    """Why this fit's chunks cannot be replayed as one CUDA graph, or ``None`` when they can (chunked steps already
    ruled out the per-step hooks and plugins that do more than autocast)."""
    model, optimizer = trainer.lightning_module, trainer.optimizers[0]
    if type(optimizer) is not torch.optim.SGD:
        return f"the optimizer {type(optimizer).__name__} (a graph takes SGD, whose step keeps no count)"
    if model.hparams.get("compile"):
        return "torch.compile runs its own graphs"
    if getattr(getattr(trainer.datamodule, "augmentation", None), "is_random", True):
        return "random augmentation (Kornia draws its parameters on the host)"
    if any(isinstance(callback, WeightAveraging) for callback in trainer.callbacks):
        return "WeightAveraging averages the weights in Python after every step"
    if trainer.strategy.root_device.type != "cuda":
        return f"training on {trainer.strategy.root_device.type}, not on a CUDA device"
    return None


def schedulers_stepped_every(trainer: Any, interval: str) -> list[Any]:
    """The learning-rate schedulers Lightning steps every ``"step"`` or every ``"epoch"``."""
    return [config.scheduler for config in trainer.lr_scheduler_configs if config.interval == interval]


def scheduled_rates(trainer: Any, optimizer: torch.optim.Optimizer, steps: int) -> list[list[float]]:
    """Each of the next ``steps`` optimizer steps' learning rate per parameter group, the per-step schedules stepped
    between them as the engine steps them (Lightning steps them after the last)."""
    schedulers = schedulers_stepped_every(trainer, "step")
    rates = []
    for step in range(steps):
        rates.append([float(group["lr"]) for group in optimizer.param_groups])
        for scheduler in schedulers if step + 1 < steps else ():
            scheduler.step()
    return rates


class ChunkGraph:
    """The fit's full chunks of ``steps`` optimizer steps, replayed from one capture on the device of ``strategy``
    (the engine's ``ChunkedSteps``: its ``train_chunk`` trains a chunk eagerly, its ``batch_to_device`` prepares a
    batch; chunks are its ``Chunk`` s)."""

    def __init__(self, strategy: Any, steps: int) -> None:
        self.strategy, self.steps = strategy, steps
        self.replay: torch.cuda.CUDAGraph | None = None
        self.captured_storage: tuple[int, ...] = ()
        self.warmed_up = False
        self._shapes: tuple[tuple[int, ...], ...] = ()
        self._uploaded: list[list[float]] = []
        self._host_rates: list[tuple[torch.Tensor, torch.cuda.Event | None]] = []

    def takes(self, chunk: Any) -> bool:
        """Whether this chunk is a full one the graph can replay (a short one, or one past ``max_steps``: eager)."""
        trainer = self.strategy.lightning_module.trainer
        return chunk.size == self.steps and (
            trainer.max_steps < 0 or trainer.global_step + chunk.size <= trainer.max_steps
        )

    def train(self, chunk: Any, batch_idx: int) -> torch.Tensor:
        """Train one full chunk: eagerly on a side stream the first time (the warm-up), from the graph after;
        returns the last step's loss for Lightning's own step, detached from the network."""
        strategy = self.strategy
        if not self.warmed_up:
            self.warmed_up = True
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                loss = strategy.train_chunk(chunk, batch_idx)
            torch.cuda.current_stream().wait_stream(side)
            return loss
        raw = list(chunk.batches)
        shapes = {tuple(tuple(tensor.shape) for tensor in batch) for batch in raw}
        if len(shapes) != 1 or (self.replay is not None and shapes != {self._shapes}):  # the epoch's short batch
            return strategy.train_chunk(type(chunk)(iter(raw), chunk.size), batch_idx)
        if self.replay is None or self.captured_storage != self._storage():
            try:
                self._capture(raw)
            except RuntimeError as error:  # nothing of the chunk has trained: it trains eagerly, and the fit goes on
                rank_zero_warn(f"CUDA graph off from here (chunks run eagerly): its capture failed: {error}")
                strategy.graph = None
                return strategy.train_chunk(type(chunk)(iter(raw), chunk.size), batch_idx)
        for static, batch in zip(self._inputs, raw, strict=True):
            for into, tensor in zip(static, batch, strict=True):
                into.copy_(tensor)
        self._upload_learning_rates()
        self.replay.replay()
        self._hand_over(chunk, batch_idx)
        return self.losses[-1].clone().requires_grad_()

    def _optimizer(self) -> torch.optim.Optimizer:
        return self.strategy.optimizers[0]

    def _storage(self) -> tuple[int, ...]:
        """Where the weights, buffers and optimizer state live: a replay writes to the addresses it captured."""
        model, state = self.strategy.lightning_module, self._optimizer().state
        tensors = [*model.parameters(), *model.buffers()]
        tensors += [value for per_param in state.values() for value in per_param.values() if torch.is_tensor(value)]
        return tuple(tensor.data_ptr() for tensor in tensors)

    def _capture(self, raw: list[Any]) -> None:
        strategy, model, optimizer = self.strategy, self.strategy.lightning_module, self._optimizer()
        groups, device = optimizer.param_groups, strategy.root_device
        self._inputs = [tuple(torch.empty_like(tensor) for tensor in batch) for batch in raw]
        self._shapes = tuple(tuple(tensor.shape) for tensor in raw[0])
        self.learning_rates = torch.empty(self.steps, len(groups), device=device)
        self._uploaded = []
        self.predicted = [torch.empty_like(batch[1]) for batch in raw]
        self.losses = torch.empty(self.steps, device=device)
        settings = [(group["lr"], group["fused"], group["foreach"]) for group in groups]
        optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                for step, static in enumerate(self._inputs):
                    images, labels = strategy.batch_to_device(static)  # the transfer hooks, captured
                    for index, group in enumerate(groups):  # fused SGD reads a tensor learning rate on the device
                        group["lr"], group["fused"], group["foreach"] = self.learning_rates[step, index], True, False
                    with strategy.precision_plugin.train_step_context():
                        logits = model(images)
                        loss = model.criterion(logits, labels)
                    self.predicted[step].copy_(logits.detach().argmax(dim=1))
                    self.losses[step].copy_(loss.detach())
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
        finally:  # the groups get their own settings back, as the schedule and a checkpoint read them
            for group, (lr, fused, foreach) in zip(groups, settings, strict=True):
                group["lr"], group["fused"], group["foreach"] = lr, fused, foreach
        self.replay, self.captured_storage = graph, self._storage()

    def _upload_learning_rates(self) -> None:
        """The chunk's rates (:func:`scheduled_rates`), copied to the device only when they changed (never, at a
        constant rate), through two pinned buffers in turn, each rewritten only once its last copy has run."""
        rates = scheduled_rates(self.strategy.lightning_module.trainer, self._optimizer(), self.steps)
        if rates == self._uploaded:
            return
        if not self._host_rates:
            self._host_rates = [(torch.empty(self.learning_rates.shape, pin_memory=True), None) for _ in range(2)]
        host, copied = self._host_rates.pop(0)
        if copied is not None:
            copied.synchronize()
        host.copy_(torch.tensor(rates))
        self.learning_rates.copy_(host, non_blocking=True)
        copied = torch.cuda.Event()
        copied.record()
        self._host_rates.append((host, copied))
        self._uploaded = rates

    def _hand_over(self, chunk: Any, batch_idx: int) -> None:
        """The replay's outcomes to the epoch metrics and the divergence guard, and its steps to Lightning (which
        counts the last)."""
        model, trainer = self.strategy.lightning_module, self.strategy.lightning_module.trainer
        losses = self.losses.clone()  # the next replay overwrites them
        for step, (static, predicted) in enumerate(zip(self._inputs, self.predicted, strict=True)):
            model.train_metrics.add_predicted(predicted.clone(), static[1].clone(), losses[step])
        model.loss_guard.check(losses, batch_idx, epoch=model.current_epoch, step=model.global_step)
        chunk.first, chunk.examples = None, sum(len(static[1]) for static in self._inputs)
        for _ in range(self.steps - 1):
            count_optimizer_step(trainer)
        count_extra_batches(trainer, self.steps - 1)
