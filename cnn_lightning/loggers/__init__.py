"""The run's loggers: TensorBoard with its lists in reading order."""

from cnn_lightning.loggers.tags import dashboard_tag, metric_name
from cnn_lightning.loggers.tensorboard import TensorBoardLogger, user_settings

__all__ = ["TensorBoardLogger", "dashboard_tag", "metric_name", "user_settings"]
