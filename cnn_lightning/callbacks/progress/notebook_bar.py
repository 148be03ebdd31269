"""The progress bar for Jupyter notebooks: each bar one output of the cell, redrawn in place."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from typing import Any

import lightning as L
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm
from tqdm.std import tqdm

from cnn_lightning.callbacks.progress.steady_bar import SteadyProgressBar


def in_jupyter_kernel() -> bool:
    """Whether this process is a Jupyter kernel, where a cell's output is not a terminal (tqdm.autonotebook's test)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class DisplayedTqdm(tqdm):
    """tqdm's bar drawn into one output of the notebook cell (IPython's ``display`` with a ``display_id``, updated in
    place), with no widget library: tqdm's terminal bar sends each redraw as a new piece of output, carriage returns
    and all, and its nested bars' cursor moves show as stray ``[A``. Only ``display`` differs from tqdm's (tqdm's own
    extension point, as ``tqdm.notebook`` uses it); the text is tqdm's ``format_meter``.

    Args:
        handle: an output to draw into (a later bar of the same kind reuses its predecessor's, so that a fit's
            validation bars take one output, not one per epoch); a new one is displayed when none is given.
        *args, **kwargs: tqdm's.
    """

    format_num = staticmethod(Tqdm.format_num)  # Lightning's: numbers padded to a steady width

    def __init__(self, *args: Any, handle: Any = None, **kwargs: Any) -> None:
        self.handle = handle
        super().__init__(*args, file=io.StringIO(), **kwargs)  # tqdm's own writes (newlines, clears) go nowhere

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        from IPython.display import display

        content = {"text/plain": self.__str__() if msg is None else msg}
        if self.handle is None:
            self.handle = display(content, raw=True, display_id=True)
        else:
            self.handle.update(content, raw=True)
        return True


class NotebookProgressBar(SteadyProgressBar):
    """:class:`SteadyProgressBar` for a Jupyter notebook: in a kernel each bar is one output of the cell, redrawn in
    place at most every ``min_interval`` seconds (training keeps its last state, evaluation bars clear when done);
    elsewhere it is the terminal's bar. It counts a chunk of optimizer steps (cnn_lightning.engine) as its batches,
    so ``Trainer(strategy=ChunkedSteps(), callbacks=[NotebookProgressBar()])`` keeps the engine's chunks.

    Args:
        refresh_rate: redraw on every ``refresh_rate``-th batch at most (0 turns the bar off), as Lightning's.
        min_interval: seconds between two redraws of the same bar, at least.
    """

    def __init__(self, refresh_rate: int = 1, min_interval: float = 0.1) -> None:
        super().__init__(refresh_rate=refresh_rate, min_interval=min_interval)
        self._outputs: dict[str, Any] = {}  # kind → the output its bars draw into, for this stage

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self._outputs = {}  # a new cell's run: new outputs there, never an update of an earlier cell's

    def _bar(self, terminal: Callable[[], Any], kind: str, description: str, *, leave: bool) -> Any:
        """In a kernel, a bar of ``kind`` drawn into that kind's output of this stage (a new one for its first bar);
        elsewhere ``terminal``'s, the terminal bar."""
        if not in_jupyter_kernel():
            return terminal()
        bar = DisplayedTqdm(
            desc=description,
            disable=self.is_disabled,
            leave=leave,
            smoothing=0,
            bar_format=self.BAR_FORMAT,
            handle=self._outputs.get(kind),
        )
        if bar.handle is not None:
            self._outputs[kind] = bar.handle
        return bar

    def init_sanity_tqdm(self) -> Any:
        return self._bar(super().init_sanity_tqdm, "validation", self.sanity_check_description, leave=False)

    def init_train_tqdm(self) -> Any:
        return self._bar(super().init_train_tqdm, "train", self.train_description, leave=True)

    def init_validation_tqdm(self) -> Any:
        # Alone (validate) it stays; inside a fit it clears, as the terminal's does.
        alone = self.trainer.state.fn == "validate"
        return self._bar(super().init_validation_tqdm, "validation", self.validation_description, leave=alone)

    def init_test_tqdm(self) -> Any:
        return self._bar(super().init_test_tqdm, "test", self.test_description, leave=False)

    def init_predict_tqdm(self) -> Any:
        return self._bar(super().init_predict_tqdm, "predict", self.predict_description, leave=False)
