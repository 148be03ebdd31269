"""TensorBoard dashboards: the pictures the book draws by hand, logged while a run trains.

Tags written. The pictures are tagged ``views/…``: Time Series sorts its groups by name and opens the first two,
which are then ``train`` and ``val``, the curves (``inputs`` and ``test`` sorted before them: pictures opened).

- ``views/inputs_train_batch``: the first training batch of the fit, after the on-device resize, as a grid; with
  augmentation on (``--data.random_crop_padding`` etc.) the tag is ``views/inputs_train_batch_augmented`` and the
  grid shows the augmented images (normalized ones mapped back to [0, 1] for display).
- ``views/val_confusion_matrix`` and ``views/test_confusion_matrix``: row-normalized, the rate in percent in each cell,
  drawn at the height Time Series shows image cards at, so that its text is not shrunk.
- ``val_class_acc/<class>`` and ``test_class_acc/<class>``: per-class accuracy (recall), one scalar per class.
- ``views/test_misclassified``: up to ``max_misclassified`` wrong test predictions, true label green, predicted red.
- ``run/setup``: model, parameters, device, world size, strategy, precision, batch sizes (``report`` reads it).

The model graph comes from ``TensorBoardLogger(log_graph=True)``, the hyper-parameters and final metrics from the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch.utils.hooks import RemovableHandle
from torchmetrics.classification import MulticlassConfusionMatrix
from torchvision.utils import make_grid

from cnn_lightning.data.datamodule import INPUT_GRID_IMAGES
from cnn_lightning.engine import Chunk

SETUP_TAG = "run/setup"
PICTURES = "views"  # the pictures' group: after train, val and the other scalars' groups in Time Series


def picture_tag(name: str) -> str:
    """The tag of a picture named ``name``, in the group Time Series lists after the curves."""
    return f"{PICTURES}/{name}"


def figure_to_array(figure: Figure) -> np.ndarray:
    """Render ``figure`` with Agg into an ``[H, W, 3]`` uint8 array (no pyplot, so no global backend state)."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def confusion_figure(matrix: torch.Tensor, class_names: Sequence[str], title: str) -> Figure:
    """Confusion matrix ``[true, predicted]``: colour and number the row-normalized rate in percent (of the true class's
    images, blank for none). Drawn at the height Time Series shows an image card at (about 210 px), so that nothing is
    shrunk: class names down the side, their numbers along the bottom."""
    counts = matrix.cpu().long()
    rates = counts / counts.sum(dim=1, keepdim=True).clamp(min=1)
    figure = Figure(figsize=(3.6, 2.1), dpi=100)
    # Fixed margins: a constrained layout would take a third of the drawing time, which is paid every epoch.
    figure.subplots_adjust(left=0.3, bottom=0.1, right=0.99, top=0.9)
    ax = figure.add_subplot()
    ax.imshow(rates.numpy(), cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    ticks = range(len(class_names))
    ax.set_xticks(ticks, [str(i) for i in ticks], fontsize=6)
    ax.set_yticks(ticks, [f"{name} {i}" for i, name in enumerate(class_names)], fontsize=6)
    ax.tick_params(length=0, pad=1)
    ax.set_title(f"{title}; % of each true class", fontsize=6, pad=2)
    for (row, col), rate in np.ndenumerate(rates.numpy()):
        if counts[row, col]:
            color = "white" if rate > 0.5 else "black"
            ax.text(col, row, f"{100 * rate:.0f}", ha="center", va="center", fontsize=5.5, color=color)
    return figure


def misclassified_figure(
    images: torch.Tensor, true: torch.Tensor, predicted: torch.Tensor, class_names: Sequence[str], columns: int = 8
) -> Figure:
    """One ``make_grid`` of ``images`` ``[N, C, H, W]`` with each cell's true (green) and predicted (red) class."""
    padding = 2
    grid = make_grid(images.float().cpu(), nrow=columns, padding=padding, pad_value=1.0)
    rows = -(-len(images) // columns)
    cell = images.shape[-1] + padding
    figure = Figure(figsize=(1.3 * min(columns, len(images)), 1.3 * rows + 0.4), dpi=100)
    ax = figure.add_axes((0.01, 0.01, 0.98, 0.98 - 0.4 / (1.3 * rows + 0.4)))
    ax.imshow(grid.permute(1, 2, 0).clamp(0, 1).numpy())
    ax.set_axis_off()
    ax.set_title("misclassified: true (green) / predicted (red)", fontsize=9)
    box = {"facecolor": "white", "alpha": 0.7, "pad": 0.5, "linewidth": 0}
    for i, (t, p) in enumerate(zip(true.tolist(), predicted.tolist(), strict=True)):
        x, y = (i % columns) * cell + padding, (i // columns) * cell + padding
        ax.text(x, y, class_names[t], color="green", fontsize=7, va="top", bbox=box)
        ax.text(x, y + cell - padding, class_names[p], color="red", fontsize=7, va="bottom", bbox=box)
    return figure


class Dashboards(Callback):
    """Log input samples, confusion matrices, per-class accuracy and misclassified test images to TensorBoard.

    Predictions are taken from the model's own forward pass through a forward hook on the LightningModule, so
    nothing is recomputed; the hook exists only during validation and test epochs. Per step the cost is an argmax
    and a confusion-matrix update on the device; the pictures are drawn once per validation epoch and once per
    test run. Under DDP the confusion matrix is summed over ranks by torchmetrics and rank 0 draws; the
    misclassified grid shows rank 0's shard of the test set.

    Does nothing when the run has no logger; images need a ``TensorBoardLogger``. A chunk of optimizer steps
    (cnn_lightning.engine) shows its first batch, as the model saw it.

    Args:
        num_images: training images in the ``views/inputs_train_batch`` grid.
        max_misclassified: misclassified test images in the ``views/test_misclassified`` grid.
    """

    handles_chunks = True  # its per-batch hook logs the fit's first training images, from a batch or a chunk

    def __init__(self, num_images: int = INPUT_GRID_IMAGES, max_misclassified: int = 32) -> None:
        super().__init__()
        self.num_images, self.max_misclassified = num_images, max_misclassified
        self.class_names: list[str] = []
        self._confusion: MulticlassConfusionMatrix | None = None
        self._hook: RemovableHandle | None = None
        self._logits: torch.Tensor | None = None
        self._inputs_logged = False
        self._wrong: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    @staticmethod
    def _tensorboard(trainer: L.Trainer) -> Any | None:
        """The ``SummaryWriter`` of the run's TensorBoardLogger, on rank 0 only."""
        if not trainer.is_global_zero:
            return None
        return next((lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        names = getattr(trainer.datamodule, "classes", None)
        num_classes = getattr(pl_module.hparams, "num_classes", None) or (len(names) if names else None)
        if not num_classes:  # neither the model nor the data says how many classes: no matrices
            self._confusion = None
            return
        named = names is not None and len(names) == num_classes
        self.class_names = [str(name) for name in names] if named else [str(i) for i in range(num_classes)]
        self._confusion = MulticlassConfusionMatrix(num_classes=num_classes)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._release_hook()

    # --- capture the logits of the step's own forward pass -----------------------------------------------------

    def _keep_logits(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        # Only class scores: under DDP, Lightning redirects the step itself through the module's __call__, so
        # this hook also sees the step's return value (None) right after the inner forward's logits.
        if isinstance(output, torch.Tensor) and output.ndim == 2:
            self._logits = output.detach()

    def _start_eval_epoch(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.loggers or self._confusion is None:
            return
        self._confusion = self._confusion.to(pl_module.device)
        self._confusion.reset()
        self._release_hook()
        self._hook = pl_module.register_forward_hook(self._keep_logits)

    def _release_hook(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook, self._logits = None, None

    def _predictions(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """``(images, labels, predicted)`` of the batch just evaluated, or None if no usable logits were seen."""
        logits, self._logits = self._logits, None
        images, labels = batch
        if logits is None or logits.ndim != 2 or len(logits) != len(labels):
            return None
        predicted = logits.argmax(dim=1)
        self._confusion.update(predicted, labels)
        return images, labels, predicted

    def _log_confusion(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Per-class accuracy scalars and the confusion-matrix image; every rank calls this (torchmetrics syncs)."""
        self._release_hook()
        if self._confusion is None or self._confusion.update_count == 0:
            return
        matrix = self._confusion.compute()
        self._confusion.reset()
        support = matrix.sum(dim=1)
        per_class = matrix.diag() / support.clamp(min=1)
        # Classes absent from the evaluated batches have no accuracy; logging 0 would read as "always wrong".
        scalars = {
            f"{stage}_class_acc/{name}": acc
            for name, acc, n in zip(self.class_names, per_class, support, strict=True)
            if n > 0
        }
        pl_module.log_dict(scalars, sync_dist=True)  # identical on every rank already; sync only silences warnings
        if (writer := self._tensorboard(trainer)) is not None:
            accuracy = float(matrix.diag().sum() / matrix.sum().clamp(min=1))
            title = f"{stage}, epoch {trainer.current_epoch}, accuracy {accuracy:.3f}"
            image = figure_to_array(confusion_figure(matrix, self.class_names, title))
            writer.add_image(picture_tag(f"{stage}_confusion_matrix"), image, trainer.global_step, dataformats="HWC")

    # --- fit -------------------------------------------------------------------------------------------------

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._inputs_logged = False
        if (writer := self._tensorboard(trainer)) is not None:
            writer.add_text(SETUP_TAG, setup_markdown(trainer, pl_module), trainer.global_step)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # The batch has been through on_after_batch_transfer: these are the resized images the model saw. A chunk of
        # steps (cnn_lightning.engine) keeps its first batch as the model saw it (none from a CUDA graph's replay).
        first = batch.first if isinstance(batch, Chunk) else batch
        if not self._inputs_logged and first is not None:
            self._log_inputs(trainer, first[0])

    def _log_inputs(self, trainer: L.Trainer, images: torch.Tensor) -> None:
        self._inputs_logged = True
        if (writer := self._tensorboard(trainer)) is not None:
            images = images[: self.num_images].detach().float().cpu().contiguous()
            augmentation = getattr(trainer.datamodule, "augmentation", None)
            if augmentation is not None:
                images = augmentation.denormalize(images)
            grid = make_grid(images, nrow=8, padding=2, pad_value=1.0)
            augmented = augmentation is not None and augmentation.is_random
            writer.add_image(picture_tag("inputs_train_batch" + "_augmented" * augmented), grid, trainer.global_step)

    # --- validation ------------------------------------------------------------------------------------------

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start_eval_epoch(trainer, pl_module)

    def on_validation_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int, *_: Any
    ) -> None:
        if self._hook is not None:
            self._predictions(batch)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:  # two sanity batches make a meaningless matrix
            self._release_hook()
            return
        self._log_confusion(trainer, pl_module, "val")

    # --- test ------------------------------------------------------------------------------------------------

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._wrong = []
        self._start_eval_epoch(trainer, pl_module)

    def on_test_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int, *_: Any
    ) -> None:
        if self._hook is None or (found := self._predictions(batch)) is None:
            return
        room = self.max_misclassified - sum(len(labels) for _, labels, _ in self._wrong)
        if room > 0 and trainer.is_global_zero:
            images, labels, predicted = found
            wrong = (predicted != labels).nonzero().squeeze(1)[:room]
            if len(wrong):
                self._wrong.append((images[wrong].cpu(), labels[wrong].cpu(), predicted[wrong].cpu()))

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log_confusion(trainer, pl_module, "test")
        if self._wrong and (writer := self._tensorboard(trainer)) is not None:
            images, true, predicted = (torch.cat(parts) for parts in zip(*self._wrong, strict=True))
            figure = misclassified_figure(images, true, predicted, self.class_names)
            writer.add_image(
                picture_tag("test_misclassified"), figure_to_array(figure), trainer.global_step, dataformats="HWC"
            )
        self._wrong = []


def setup_markdown(trainer: L.Trainer, pl_module: L.LightningModule) -> str:
    """The run's resolved setup as a two-column Markdown table (what the Trainer chose, not what was asked)."""
    device = trainer.strategy.root_device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    batch = getattr(trainer.datamodule, "batch_size", None)
    rows = {
        "model": type(pl_module).__name__,
        "parameters": sum(p.numel() for p in pl_module.parameters()),
        "device": name,
        "world_size": trainer.world_size,
        "num_nodes": trainer.num_nodes,
        "strategy": type(trainer.strategy).__name__,
        "precision": trainer.precision,
        "batch_per_device": batch,
        "global_batch": None if batch is None else batch * trainer.world_size * trainer.accumulate_grad_batches,
        "augmentation": augmentation.describe()
        if (augmentation := getattr(trainer.datamodule, "augmentation", None))
        else "none",
    }
    return "| setting | value |\n|---|---|\n" + "\n".join(f"| {key} | {value} |" for key, value in rows.items())


def parse_setup_markdown(text: str) -> dict[str, str]:
    """Inverse of :func:`setup_markdown`: ``{setting: value}`` as strings."""
    cells = (line.strip().strip("|").split("|") for line in text.splitlines() if line.startswith("|"))
    pairs = {key.strip(): value.strip() for key, value, *_ in (c for c in cells if len(c) >= 2)}
    pairs.pop("setting", None)
    return {key: value for key, value in pairs.items() if not set(key) <= {"-"}}
