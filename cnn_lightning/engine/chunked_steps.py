"""The speed engine: several optimizer steps per Lightning batch, as a Lightning ``Strategy``.

Lightning's loop pays its per-batch work (fetching, a call into every callback for each hook, logging, progress)
once per batch it fetches: for a small network that costs more than the step itself (docs/measurements.md, "Chunked
steps"). ``ChunkedSteps`` is Lightning's single-device strategy with three of its extension points filled in:

* ``process_dataloader`` hands the fit loop a training loader that delivers up to K consecutive batches of the same
  epoch at once (a :class:`Chunk`), ending on multiples of K optimizer steps, so that anything due every N steps
  (K divides N) falls on a chunk's end; its length, samplers and state stay the loader's (Lightning counts batches);
* ``batch_to_device`` leaves a chunk as it is: each of its batches goes through the transfer hooks
  (``transfer_batch_to_device``, ``on_after_batch_transfer``: the resize and augmentation) as it is reached;
* ``training_step`` trains the chunk's batches one after the other as Lightning's automatic optimization does: the
  model's own ``training_step`` under the precision's autocast, ``zero_grad``, backward outside it, the optimizer's
  step, the per-step schedules and weight averaging. Lightning takes the last step's loss, detached from the network,
  through its own optimizer step, which finds no gradient and counts that step; the steps before it are counted
  through the contract module.

So one batch goes: ``Chunk`` → :meth:`ChunkedSteps.training_step` → the model's ``training_step`` →
``loss.backward()`` → ``optimizer.step()``. Where anyone could see the difference (a hook the user overrides, a
setting that counts batches), the fit runs Lightning's own loop and one line names why (engine/exactness.py). The
fit's start also keeps Python's collector off the objects that outlive it (``gc.freeze``, undone at teardown).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from itertools import chain, islice
from typing import Any

import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.pytorch.callbacks import WeightAveraging
from lightning.pytorch.strategies import SingleDeviceStrategy, StrategyRegistry
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.data import extract_batch_size
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from cnn_lightning.engine.chunk_graph import ChunkGraph, schedulers_stepped_every, why_not_graphed
from cnn_lightning.engine.exactness import chunk_length, direct_transfer
from cnn_lightning.errors import require_positive
from cnn_lightning.lightning_contract import completed_train_batches, count_extra_batches, count_optimizer_step

# Optimizer steps per Lightning batch unless asked otherwise: Lightning's per-batch cost falls as 1/K
# (docs/measurements.md, "Chunked steps"), and 25 divides last.ckpt's default interval (100).
DEFAULT_STEPS_PER_BATCH = 25


class Chunk:
    """Up to K consecutive training batches of one epoch, delivered as one Lightning batch; drawn from the loader as
    they are trained, so that one batch at a time is in memory."""

    def __init__(self, batches: Iterator[Any], size: int) -> None:
        self.batches, self.size = batches, size
        self.first: Any = None  # its first batch as the model saw it (after the transfer hooks), once trained
        self.examples = 0  # examples trained so far

    def __repr__(self) -> str:
        return f"Chunk(size={self.size}, examples trained={self.examples})"


def examples_in(batch: Any) -> int:
    """Examples a training batch, or a chunk of them, trained (Lightning's rule for a batch's size)."""
    return batch.examples if isinstance(batch, Chunk) else extract_batch_size(batch)


def passed_multiple(previous_step: int, step: int, every: int) -> bool:
    """Whether a multiple of ``every`` lies in ``(previous_step, step]``: something due every N optimizer steps is due
    at a batch's end even when a chunk of steps passed the multiple rather than ended on it (``every`` 0: never)."""
    return bool(every) and step // every > previous_step // every


class ChunkedLoader:
    """A training loader whose batches come as :class:`Chunk` s of up to ``strategy.chunk_steps`` while training."""

    def __init__(self, loader: Any, strategy: ChunkedSteps) -> None:
        self.loader, self.strategy = loader, strategy

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:
        # What Lightning reads of a loader: its samplers (set_epoch) and its state (a mid-epoch resume).
        if name in ("sampler", "batch_sampler", "dataset", "state_dict", "load_state_dict"):
            return getattr(self.loader, name)
        raise AttributeError(name)

    def __iter__(self) -> Iterator[Any]:
        batches = iter(self.loader)
        trainer = self.strategy.lightning_module.trainer
        steps, end = self.strategy.chunk_steps, trainer.num_training_batches
        if steps == 1 or not trainer.training or end == float("inf"):
            yield from batches
            return
        position, step = completed_train_batches(trainer), trainer.global_step
        while position < end:
            size = int(min(steps - step % steps, end - position))
            first = next(batches, None)
            if first is None:
                return
            yield Chunk(chain([first], islice(batches, size - 1)), size)
            position, step = position + size, step + size


class ChunkedSteps(SingleDeviceStrategy):
    """Lightning's single-device strategy, running ``steps_per_batch`` optimizer steps of the model's own
    ``training_step`` per Lightning batch where that changes nothing any hook sees (the module docstring).

    Args:
        steps_per_batch: optimizer steps per Lightning batch at most (1: Lightning's loop, one step per batch); the
            fit takes the largest that divides every checkpoint interval.
        cuda_graph: on CUDA, replay each full chunk of steps from one captured CUDA graph (engine/chunk_graph.py;
            where it cannot, the fit says why and runs the chunks eagerly).
    """

    strategy_name = "chunked_steps"

    def __init__(self, steps_per_batch: int = DEFAULT_STEPS_PER_BATCH, cuda_graph: bool = False) -> None:
        super().__init__()
        require_positive(steps_per_batch, name="Steps per batch", flag="--trainer.strategy.steps_per_batch")
        self.steps_per_batch, self.cuda_graph = steps_per_batch, cuda_graph
        self.chunk_steps = 1  # what the current fit runs (decided in setup)
        self.graph: ChunkGraph | None = None
        self._said: set[str] = set()
        self._own_transfer: Callable[[Any, int], Any] | None = None  # after the move (exactness.direct_transfer)
        self._parallel_devices: list[torch.device] | None = None

    @property
    def parallel_devices(self) -> list[torch.device] | None:
        """The device Lightning's accelerator connector chose (it sets a strategy's ``parallel_devices``)."""
        return self._parallel_devices

    @parallel_devices.setter
    def parallel_devices(self, devices: list[torch.device]) -> None:
        if len(devices) != 1:
            raise MisconfigurationException(
                f"The chunked_steps strategy trains on one device, not {len(devices)}: set --trainer.strategy ddp "
                "(or auto) for several, or --trainer.devices 1."
            )
        self._parallel_devices, self._root_device = list(devices), torch.device(devices[0])

    def setup(self, trainer: Any) -> None:
        super().setup(trainer)  # the optimizers and schedulers exist from here on
        self.chunk_steps, self.graph, self._said = 1, None, set()
        if trainer.state.fn != TrainerFn.FITTING:
            return
        self.chunk_steps, reason = chunk_length(trainer, self.steps_per_batch)
        self._own_transfer = direct_transfer(trainer)
        if reason:
            self._say(f"Chunked steps off (one optimizer step per Lightning batch): {reason}.")
        elif self.chunk_steps > 1:
            # One line within 80 columns; --trainer.strategy auto is Lightning's own loop, one step per batch.
            self._say(f"Chunked steps: {self.chunk_steps} optimizer steps per batch (one: --trainer.strategy auto).")
        if self.cuda_graph:
            self._start_graph(trainer)

    def _start_graph(self, trainer: Any) -> None:
        reason = why_not_graphed(trainer) if self.chunk_steps > 1 else "it replays a chunk of steps, and they are off"
        if reason:
            self._say(f"CUDA graph off (chunks run eagerly): {reason}.")
        else:
            self._say(f"CUDA graph: each full chunk of {self.chunk_steps} steps replays one capture.")
            self.graph = ChunkGraph(self, self.chunk_steps)

    def _say(self, line: str, *, above_bar: bool = False) -> None:
        """One line, once per fit; once training has started, above the progress bar if one is drawn."""
        if line in self._said:
            return
        self._said.add(line)
        bar = self.lightning_module.trainer.progress_bar_callback
        if above_bar and bar is not None:
            bar.print(line)
        else:
            rank_zero_info(line)

    def on_train_start(self) -> None:
        trainer = self.lightning_module.trainer
        if self.chunk_steps > 1 and trainer.accumulate_grad_batches != 1:  # a micro-batch search chose to split
            self.chunk_steps, self.graph = 1, None
            self._say(
                "Chunked steps off (one optimizer step per Lightning batch): gradient accumulation "
                f"(accumulate_grad_batches={trainer.accumulate_grad_batches}) steps per batches.",
                above_bar=True,
            )
        # Torch's, Lightning's and the CLI's objects outlive the run: out of the collector's sight (measurements.md)
        gc.freeze()

    def teardown(self) -> None:
        gc.unfreeze()
        self.graph = None  # and the graph's memory pool
        super().teardown()

    def process_dataloader(self, dataloader: object) -> object:
        # The training loader may be built before the fit decides (a schedule counting the stepping batches builds
        # it while the optimizers are configured): the wrapper reads the decision as each epoch starts.
        return ChunkedLoader(dataloader, self) if self.lightning_module.trainer.training else dataloader

    def batch_to_device(self, batch: Any, device: torch.device | None = None, dataloader_idx: int = 0) -> Any:
        if isinstance(batch, Chunk):
            return batch  # each of its batches goes through the transfer hooks as it is trained
        return super().batch_to_device(batch, device, dataloader_idx)

    def training_step(self, *args: Any, **kwargs: Any) -> Any:
        chunk = args[0] if args else kwargs.get("batch")
        if not isinstance(chunk, Chunk):
            return super().training_step(*args, **kwargs)
        batch_idx = args[1] if len(args) > 1 else kwargs["batch_idx"]
        if self.graph is not None and self.graph.takes(chunk):
            return self.graph.train(chunk, batch_idx)
        return self.train_chunk(chunk, batch_idx)

    def prepare(self, chunk: Chunk, raw: Any) -> Any:
        """A chunk's next batch through the transfer hooks, as Lightning's loop passes each batch: through
        Lightning's dispatch where the model or the data module moves batches its own way, else straight to what
        that dispatch would call (a move to the device, the data module's ``on_after_batch_transfer``)."""
        if self._own_transfer is None:
            batch = super().batch_to_device(raw)
        else:
            batch = self._own_transfer(move_data_to_device(raw, self.root_device), 0)
        chunk.first = batch if chunk.first is None else chunk.first
        chunk.examples += extract_batch_size(batch)
        return batch

    def train_chunk(self, chunk: Chunk, batch_idx: int) -> torch.Tensor:
        """The chunk's optimizer steps; returns the last loss for Lightning's own step, detached from the network."""
        trainer, model, optimizer = self.lightning_module.trainer, self.lightning_module, self.optimizers[0]
        per_step = schedulers_stepped_every(trainer, "step")
        averaging = [callback for callback in trainer.callbacks if isinstance(callback, WeightAveraging)]
        for index, raw in enumerate(chunk.batches):
            batch = self.prepare(chunk, raw)
            with self.precision_plugin.train_step_context():  # backward outside it, as Lightning runs it
                loss = model.training_step(batch, batch_idx + index)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if self.chunk_ends(index, chunk):
                break
            count_optimizer_step(trainer)  # Lightning counts the chunk's last step itself
            for scheduler in per_step:
                scheduler.step()
            for callback in averaging:  # after every step: Lightning's own call at the chunk's end finds it done
                callback.on_train_batch_end(trainer, model, None, None, batch_idx + index)
        count_extra_batches(trainer, index)
        return loss.detach().requires_grad_()

    def chunk_ends(self, index: int, chunk: Chunk) -> bool:
        """Whether step ``index`` of the chunk is its last: the chunk's end, ``max_steps``, or a SIGTERM (Ctrl+C)."""
        trainer = self.lightning_module.trainer
        return index + 1 >= chunk.size or trainer.received_sigterm or 0 <= trainer.max_steps <= trainer.global_step + 1


StrategyRegistry.register(
    ChunkedSteps.strategy_name, ChunkedSteps, description="several optimizer steps per Lightning batch, on one device"
)
