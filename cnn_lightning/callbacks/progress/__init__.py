"""The progress bars: Lightning's tqdm bar redrawn by time, the same in a Jupyter notebook's output, and the epoch
after a mid-epoch resume."""

from cnn_lightning.callbacks.progress.notebook_bar import NotebookProgressBar
from cnn_lightning.callbacks.progress.resumed_epoch import ResumedEpochProgress
from cnn_lightning.callbacks.progress.steady_bar import SteadyProgressBar

__all__ = ["NotebookProgressBar", "ResumedEpochProgress", "SteadyProgressBar"]
