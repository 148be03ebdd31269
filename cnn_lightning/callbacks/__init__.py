"""Every Lightning callback of the project, one per file, named by its job (as ``lightning.pytorch.callbacks``)."""

from cnn_lightning.callbacks.activation_images import ActivationImages
from cnn_lightning.callbacks.config_per_run import ConfigPerRun
from cnn_lightning.callbacks.dashboards import Dashboards
from cnn_lightning.callbacks.effective_batch import EffectiveBatchSize
from cnn_lightning.callbacks.graceful_interrupt import GracefulInterrupt
from cnn_lightning.callbacks.lr_logger import LearningRateLogger
from cnn_lightning.callbacks.micro_batch import AutoMicroBatch
from cnn_lightning.callbacks.model_table import ModelTable
from cnn_lightning.callbacks.peak_memory import PeakMemory
from cnn_lightning.callbacks.prediction_writer import PredictionCSV
from cnn_lightning.callbacks.progress import NotebookProgressBar, ResumedEpochProgress, SteadyProgressBar
from cnn_lightning.callbacks.report_to_study import ReportToStudy
from cnn_lightning.callbacks.run_checkpoint import RunCheckpoint
from cnn_lightning.callbacks.stop_at_accuracy import StopAtAccuracy
from cnn_lightning.callbacks.throughput import ExamplesPerSecond
from cnn_lightning.legacy import package_getattr

__getattr__ = package_getattr(__name__)  # 0.1.0's cnn_lightning.callbacks module held a few helpers too

__all__ = [
    "ActivationImages",
    "AutoMicroBatch",
    "ConfigPerRun",
    "Dashboards",
    "EffectiveBatchSize",
    "ExamplesPerSecond",
    "GracefulInterrupt",
    "LearningRateLogger",
    "ModelTable",
    "NotebookProgressBar",
    "PeakMemory",
    "PredictionCSV",
    "ReportToStudy",
    "ResumedEpochProgress",
    "RunCheckpoint",
    "SteadyProgressBar",
    "StopAtAccuracy",
]
