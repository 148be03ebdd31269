"""How every network trains: the shared classifier LightningModule (the book's ``train_ch6`` step), its optimizer and
schedules, epoch metrics, the divergence guard, the network's size check, atomic checkpoint files, precision (the
default, and what a run's plugin computes in) and the no-op profiler. How fast it runs is the engine's
(:mod:`cnn_lightning.engine`)."""

from cnn_lightning.training.checkpoint_io import AtomicCheckpointIO
from cnn_lightning.training.classifier import Classifier
from cnn_lightning.training.epoch_metrics import EpochMetrics
from cnn_lightning.training.finite_loss_guard import FiniteLossGuard
from cnn_lightning.training.network_check import book_input_size, checked_network
from cnn_lightning.training.optimization import (
    configure_schedule,
    parameter_groups,
    per_step_schedule,
    trainer_schedule,
)
from cnn_lightning.training.precision import compute_dtype, default_precision
from cnn_lightning.training.profiler import NoOpProfiler

__all__ = [
    "AtomicCheckpointIO",
    "Classifier",
    "EpochMetrics",
    "FiniteLossGuard",
    "NoOpProfiler",
    "book_input_size",
    "checked_network",
    "compute_dtype",
    "configure_schedule",
    "default_precision",
    "parameter_groups",
    "per_step_schedule",
    "trainer_schedule",
]
