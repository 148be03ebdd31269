"""A chunk of optimizer steps as one CUDA graph: captured once (``torch.cuda.graph``) and replayed per chunk, so
that K steps (resize, forward, loss, backward, SGD) cost one launch from Python instead of thousands.

What a replay needs to equal the chunk run eagerly (training/chunked_steps.py): static inputs (every full chunk is
copied into the same buffers; a short chunk, the epoch's last or one ``max_steps`` cuts, runs eagerly), each step's
learning rate read from a device table that the host fills from the schedule before each replay (SGD's fused step
takes it as a tensor), dropout's draws from the graph-registered generator, and the same weights, buffers and
momentum: a replay first checks that their storage is still the captured one and captures again when not (after a
checkpoint is loaded, its optimizer state is new tensors). The first full chunk of a fit runs eagerly on a side
stream (allocations, cuDNN's choice, the momentum buffers) before the capture, as PyTorch's whole-network capture
recipe does. Outcomes come back as device tensors: each step's predicted classes and loss, for the epoch metrics and
the divergence guard, with no host read. What cannot be captured keeps the eager chunk, saying why
(:func:`why_not_graphed`). On by ``--model.init_args.cuda_graph true``: not the default until a GPU run measures it
(the GPU issue's campaign).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import WeightAveraging
from lightning.pytorch.utilities.rank_zero import rank_zero_warn

from cnn_lightning.lightning_contract import count_direct_steps
from cnn_lightning.training.step_hooks import (
    hook_run_per_step,
    outside_autocast,
    plain_precision,
    schedulers_stepped_every,
)

Recorder = Callable[[Callable[[], None]], Callable[[], None]]


def record_cuda_graph(steps: Callable[[], None]) -> Callable[[], None]:
    """Capture ``steps`` (its kernels recorded, not run) and return the graph's replay."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        steps()
    return graph.replay


def why_not_graphed(model: L.LightningModule) -> str | None:
    """Why this fit's chunks cannot be replayed as one CUDA graph, or ``None`` when they can."""
    trainer = model.trainer
    optimizer = trainer.optimizers[0]
    if not plain_precision(trainer):
        return f"precision {trainer.precision} (its plugin does more than autocast: a gradient scaler reads its flag)"
    if type(optimizer) is not torch.optim.SGD:
        return f"the optimizer {type(optimizer).__name__} (a graph takes SGD, whose step keeps no count)"
    if model.hparams.get("compile"):
        return "torch.compile runs its own graphs"
    if getattr(getattr(trainer.datamodule, "augmentation", None), "is_random", True):
        return "random augmentation (Kornia draws its parameters on the host)"
    if any(isinstance(callback, WeightAveraging) for callback in trainer.callbacks):
        return "WeightAveraging averages the weights in Python after every step"
    hook = hook_run_per_step(model)
    if hook:
        return f"{hook} at every optimizer step"
    if model.device.type != "cuda":
        return f"training on {model.device.type}, not on a CUDA device"
    return None


class ChunkGraph:
    """The fit's full chunks of ``steps`` optimizer steps, replayed from one capture.

    Args:
        model: the classifier being fit, its single SGD optimizer configured.
        steps: optimizer steps in a full chunk.
        record: turns the chunk's steps into their replay; :func:`record_cuda_graph` (tests on the CPU pass a
            recorder that replays the same steps eagerly, to check everything around the capture).
    """

    def __init__(self, model: Any, steps: int, record: Recorder = record_cuda_graph) -> None:
        self.model, self.steps, self.record = model, steps, record
        self.replay: Callable[[], None] | None = None
        self.captured_storage: tuple[int, ...] = ()
        self.warmed_up = False
        self.replays = 0
        self._uploaded: list[list[float]] = []
        self._host_lr: list[tuple[torch.Tensor, torch.cuda.Event | None]] = []

    def takes(self, labels: torch.Tensor) -> bool:
        """Whether this chunk is a full one the graph can replay (a short one, or one past ``max_steps``: eager)."""
        trainer = self.model.trainer
        full = len(labels) == self.steps * trainer.datamodule.batch_size
        return full and (trainer.max_steps < 0 or trainer.global_step + self.steps <= trainer.max_steps)

    def train(self, images: torch.Tensor, labels: torch.Tensor, batch_idx: int, eager: Callable[[], int]) -> int:
        """Train one full chunk: eagerly on a side stream the first time (the warm-up), from the graph after;
        returns the optimizer steps taken."""
        if not self.warmed_up:
            self.warmed_up = True
            if not images.is_cuda:
                return eager()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                done = eager()
            torch.cuda.current_stream().wait_stream(side)
            return done
        if self.replay is None or self.captured_storage != self._storage():
            try:
                self._capture(images, labels)
            except RuntimeError as error:  # the chunk's steps have not run: it trains eagerly, as the fit goes on
                rank_zero_warn(f"CUDA graph off from here (chunks run eagerly): its capture failed: {error}")
                self.model.chunk_graph = None
                return eager()
        self._inputs[0].copy_(images)
        self._inputs[1].copy_(labels)
        self._upload_learning_rates()
        self.replay()
        self.replays += 1
        self._hand_over(labels, batch_idx)
        return self.steps

    def _optimizer(self) -> torch.optim.Optimizer:
        return self.model.optimizers().optimizer

    def _storage(self) -> tuple[int, ...]:
        """Where the weights, buffers and optimizer state live: a replay writes to the addresses it captured."""
        state = self._optimizer().state
        tensors = [*self.model.parameters(), *self.model.buffers()]
        tensors += [value for per_param in state.values() for value in per_param.values() if torch.is_tensor(value)]
        return tuple(tensor.data_ptr() for tensor in tensors)

    def _capture(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        model, optimizer = self.model, self._optimizer()
        groups = optimizer.param_groups
        self._inputs = inputs = (torch.empty_like(images), torch.empty_like(labels))
        batch = model.trainer.datamodule.batch_size
        self.learning_rates = torch.empty(self.steps, len(groups), device=images.device)
        self._uploaded = []
        self.predicted = torch.empty_like(labels)
        self.losses = torch.empty(self.steps, device=images.device)
        backward_context = outside_autocast(images.device.type)

        def chunk_of_steps() -> None:
            # Python runs this once, at the capture (the CPU's eager recorder: at every replay); the groups get
            # their own settings back at its end, as the schedule and a checkpoint read them.
            settings = [(group["lr"], group["fused"], group["foreach"]) for group in groups]
            try:
                for step, (batch_images, batch_labels) in enumerate(model.trainer.datamodule.mini_batches(*inputs)):
                    for index, group in enumerate(groups):  # fused SGD reads a tensor learning rate on the device
                        group["lr"], group["fused"], group["foreach"] = self.learning_rates[step, index], True, False
                    logits = model(batch_images)
                    loss = model.criterion(logits, batch_labels)
                    self.predicted[step * batch : (step + 1) * batch].copy_(logits.detach().argmax(dim=1))
                    self.losses[step].copy_(loss.detach())
                    optimizer.zero_grad(set_to_none=True)
                    with backward_context:
                        loss.backward()
                    optimizer.step()
            finally:
                for group, (lr, fused, foreach) in zip(groups, settings, strict=True):
                    group["lr"], group["fused"], group["foreach"] = lr, fused, foreach

        optimizer.zero_grad(set_to_none=True)
        self.replay = self.record(chunk_of_steps)
        self.captured_storage = self._storage()

    def _upload_learning_rates(self) -> None:
        """Each step's learning rate as the schedule gives it, stepped as Lightning would after every step; copied
        to the device only when they changed (never, at a constant rate), through pinned memory."""
        trainer, groups = self.model.trainer, self._optimizer().param_groups
        schedulers = schedulers_stepped_every(trainer, "step")
        rates = []
        for _ in range(self.steps):
            rates.append([float(group["lr"]) for group in groups])
            for scheduler in schedulers:
                scheduler.step()
        if rates == self._uploaded:
            return
        if not self.learning_rates.is_cuda:
            self.learning_rates.copy_(torch.tensor(rates))
        else:  # two pinned buffers in turn, each rewritten only once its last copy has run
            if not self._host_lr:
                self._host_lr = [(torch.empty(self.learning_rates.shape, pin_memory=True), None) for _ in range(2)]
            host, copied = self._host_lr.pop(0)
            if copied is not None:
                copied.synchronize()
            host.copy_(torch.tensor(rates))
            self.learning_rates.copy_(host, non_blocking=True)
            copied = torch.cuda.Event()
            copied.record()
            self._host_lr.append((host, copied))
        self._uploaded = rates

    def _hand_over(self, labels: torch.Tensor, batch_idx: int) -> None:
        """The replay's outcomes to the epoch metrics and the divergence guard, and its steps to Lightning."""
        model, batch = self.model, self.model.trainer.datamodule.batch_size
        predicted, losses = self.predicted.clone(), self.losses.clone()  # the next replay overwrites them
        for step in range(self.steps):
            span = slice(step * batch, (step + 1) * batch)
            model.train_metrics.add_predicted(predicted[span], labels[span], losses[step])
        model.loss_guard.check(losses, batch_idx, epoch=model.current_epoch, step=model.global_step)
        count_direct_steps(model.trainer, self.steps)
