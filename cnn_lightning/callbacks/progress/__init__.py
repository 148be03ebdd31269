"""The progress bar: Lightning's tqdm bar redrawn by time, and its epoch after a mid-epoch resume."""

from cnn_lightning.callbacks.progress.resumed_epoch import ResumedEpochProgress
from cnn_lightning.callbacks.progress.steady_bar import SteadyProgressBar

__all__ = ["ResumedEpochProgress", "SteadyProgressBar"]
