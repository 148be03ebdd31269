"""What every run of the Lightning CLI gets, whatever its config: the callbacks, the Trainer's defaults (the engine
on one device, tqdm's bar, TensorBoard, atomic checkpoint files), the strategy settled against the devices asked
for, and the optimizer's settings for TensorBoard's HParams."""

from __future__ import annotations

from typing import Any

from jsonargparse import Namespace
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from cnn_lightning.callbacks import (
    Dashboards,
    EffectiveBatchSize,
    ExamplesPerSecond,
    GracefulInterrupt,
    LearningRateLogger,
    ModelTable,
    PeakMemory,
    ResumedEpochProgress,
    SteadyProgressBar,
)
from cnn_lightning.engine import ChunkedSteps
from cnn_lightning.engine.exactness import one_device
from cnn_lightning.errors import require_positive
from cnn_lightning.loggers.tensorboard import TensorBoardLogger
from cnn_lightning.training.checkpoint_io import AtomicCheckpointIO


def optimizer_hparams(trainer: Any) -> dict[str, Any]:
    """The optimizer that actually ran, for TensorBoard's HParams beside the model's own settings."""
    if not trainer.optimizers:
        return {}
    optimizer = trainer.optimizers[0]
    settings = {f"optimizer_{key}": optimizer.defaults.get(key) for key in ("lr", "momentum", "weight_decay")}
    return {"optimizer": type(optimizer).__name__} | {k: v for k, v in settings.items() if v is not None}


def is_engine(strategy: Any) -> bool:
    """Whether ``--trainer.strategy`` (as parsed) names the engine, by class path or by its registered name."""
    named = strategy.get("class_path") if isinstance(strategy, Namespace) else strategy
    return named == ChunkedSteps.strategy_name or str(named).rsplit(".", 1)[-1] == ChunkedSteps.__name__


def default_callbacks() -> list[Callback]:
    """Callbacks every CLI run gets, whatever its config (Lightning keeps them beside the config's own)."""
    return [
        LearningRateLogger(logging_interval="epoch"),
        ExamplesPerSecond(),
        EffectiveBatchSize(),  # micro-batch × accumulation × devices, printed and logged at fit start
        Dashboards(),
        GracefulInterrupt(),  # Ctrl+C stops after the batch and saves last.ckpt
        ResumedEpochProgress(),
        ModelTable(),  # the network's rows only
        PeakMemory(),  # train/peak_memory_mib, in the closing line and report
    ]


def trainer_defaults() -> dict[str, Any]:
    return {
        "plugins": [{"class_path": f"{AtomicCheckpointIO.__module__}.{AtomicCheckpointIO.__name__}"}],
        # The engine (cnn_lightning/engine): Lightning's single-device strategy with chunks of optimizer steps;
        # --trainer.strategy auto is Lightning's own loop, ddp (or several devices) Lightning's DDP.
        "strategy": {"class_path": f"{ChunkedSteps.__module__}.{ChunkedSteps.__name__}"},
        # tqdm's bar, whatever is installed: Lightning picks Rich's where rich is, whose per-step rendering slows a
        # small model (docs/measurements.md); redrawn 10 times a second at most. A bar in the config replaces it
        # (instantiate_trainer).
        "callbacks": [*default_callbacks(), SteadyProgressBar()],
        "logger": {
            "class_path": f"{TensorBoardLogger.__module__}.{TensorBoardLogger.__name__}",
            "init_args": {"save_dir": ".", "name": "lightning_logs", "default_hp_metric": False, "log_graph": True},
        },
    }


def settle_strategy(trainer: Namespace) -> None:
    """``--trainer.strategy`` as parsed, settled: the engine's chunk length checked here (inside jsonargparse a
    refusal would be buried), and Lightning's strategy where several devices are asked for (the engine trains on
    one), said in one line."""
    if not is_engine(trainer.strategy):
        return
    if isinstance(trainer.strategy, Namespace):
        steps = (trainer.strategy.get("init_args") or Namespace()).get("steps_per_batch")
        require_positive(steps, name="Steps per batch", flag="--trainer.strategy.steps_per_batch")
    if not one_device(trainer.accelerator, trainer.devices, trainer.num_nodes):
        rank_zero_info("Chunked steps off: they train on one device; Lightning's strategy runs several.")
        trainer.strategy = "auto"
