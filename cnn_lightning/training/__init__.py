"""How every network trains: the shared classifier LightningModule, its optimizer and schedules, chunks of optimizer
steps (eager, or replayed as one CUDA graph), epoch metrics, the divergence guard, atomic checkpoint files, the
default precision and the no-op profiler."""

from cnn_lightning.training.checkpoint_io import AtomicCheckpointIO
from cnn_lightning.training.chunk_graph import ChunkGraph, why_not_graphed
from cnn_lightning.training.chunked_steps import DEFAULT_STEPS_PER_BATCH, why_not_chunked
from cnn_lightning.training.classifier import Classifier
from cnn_lightning.training.epoch_metrics import EpochMetrics
from cnn_lightning.training.finite_loss_guard import FiniteLossGuard
from cnn_lightning.training.optimization import parameter_groups, per_step_schedule, trainer_schedule
from cnn_lightning.training.precision import PRECISION_DTYPES, default_precision
from cnn_lightning.training.profiler import NoOpProfiler
from cnn_lightning.training.step_hooks import plain_steps

__all__ = [
    "DEFAULT_STEPS_PER_BATCH",
    "PRECISION_DTYPES",
    "AtomicCheckpointIO",
    "ChunkGraph",
    "Classifier",
    "EpochMetrics",
    "FiniteLossGuard",
    "NoOpProfiler",
    "default_precision",
    "parameter_groups",
    "per_step_schedule",
    "plain_steps",
    "trainer_schedule",
    "why_not_chunked",
    "why_not_graphed",
]
