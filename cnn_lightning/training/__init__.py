"""How every network trains: the shared classifier LightningModule, its optimizer and schedules, epoch metrics, the
divergence guard, atomic checkpoint files, the default precision and the no-op profiler."""

from cnn_lightning.training.checkpoint_io import AtomicCheckpointIO
from cnn_lightning.training.classifier import Classifier
from cnn_lightning.training.epoch_metrics import EpochMetrics
from cnn_lightning.training.finite_loss_guard import FiniteLossGuard
from cnn_lightning.training.optimization import parameter_groups, per_step_schedule, trainer_schedule
from cnn_lightning.training.precision import PRECISION_DTYPES, default_precision
from cnn_lightning.training.profiler import NoOpProfiler

__all__ = [
    "PRECISION_DTYPES",
    "AtomicCheckpointIO",
    "Classifier",
    "EpochMetrics",
    "FiniteLossGuard",
    "NoOpProfiler",
    "default_precision",
    "parameter_groups",
    "per_step_schedule",
    "trainer_schedule",
]
