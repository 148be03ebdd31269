"""The training logic shared by every architecture: the book's ``train_ch6`` as one LightningModule."""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar, Literal

import lightning as L
import torch
from torch import nn

from cnn_lightning.errors import require_positive
from cnn_lightning.scratch.shapes import training_flops
from cnn_lightning.training import model_input, saved_checkpoints
from cnn_lightning.training.epoch_metrics import EpochMetrics
from cnn_lightning.training.finite_loss_guard import SCALER_SKIPS_ALLOWED, FiniteLossGuard
from cnn_lightning.training.network_check import checked_network
from cnn_lightning.training.optimization import (
    Schedule,
    check_optimization_settings,
    configure_schedule,
    parameter_groups,
    raise_divergence,
)
from cnn_lightning.training.precision import has_gradient_scaler
from cnn_lightning.training.test_time_flip import flip_averaged_logits
from cnn_lightning.training.weight_init import init_weights


class Classifier(L.LightningModule):
    """Image classifier trained like D2L's ``train_ch6``: cross-entropy, plain SGD, Xavier-uniform init.

    Subclasses implement :meth:`build_network` from ``self.hparams``; ``input_size`` is the image side the
    network is built for and the data module resizes to it.

    Args:
        lr: SGD learning rate (the peak of a schedule). A config's ``optimizer:`` (``--optimizer AdamW``) replaces
            the book's SGD with its own lr, momentum and weight decay (the CLI says so).
        momentum: SGD momentum (the book uses none).
        nesterov: Nesterov momentum (needs ``momentum`` > 0).
        weight_decay: L2 penalty (the book uses none).
        decay_norm_and_bias: apply ``weight_decay`` to normalization weights and biases too, as plain SGD does;
            ``false`` exempts them (training/optimization.py), also for an optimizer the config names.
        lr_schedule: ``constant`` (the book), ``cosine`` (decay to 0) or ``onecycle``, stepped after every optimizer
            step over ``trainer.estimated_stepping_batches``, for any optimizer unless the config names a scheduler.
        warmup_epochs: linear warm-up from 1 % of ``lr`` over this many epochs (fractions allowed) first.
        input_size: image side length the network is built for.
        num_classes: output classes.
        in_channels: image channels.
        channels_last: NHWC memory format for convolutions; ``None`` (default) turns it on where it pays: on
            CUDA (tensor cores read NHWC) and on CPU unless the class says ``channels_last_pays_on_cpu = False``.
        compile: ``torch.compile`` the network at fit start (compiles in place: checkpoints stay compatible);
            a string picks the mode, e.g. ``reduce-overhead`` (CUDA graphs: fewer kernel launches per step).
        label_smoothing: of the cross-entropy criterion shared by training, validation and test (the book: 0).
        init: weight initialization: ``xavier`` (the book's), ``kaiming`` or ``default`` (training/weight_init.py).
        test_time_flip: validation, test, predict and export average each image's class probabilities with its
            left-right mirror's (training/test_time_flip.py); the book evaluates each image once.
    """

    record: ClassVar[Any] = None  # the network's facts (book section, size, accuracy, classes): a ModelRecord
    channels_last_pays_on_cpu: bool = True  # oneDNN's NHWC: faster on a CPU but for LeNetBN (docs/measurements.md)

    def __init__(
        self,
        lr: float = 0.1,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        decay_norm_and_bias: bool = True,
        lr_schedule: Schedule = "constant",
        warmup_epochs: float = 0.0,
        input_size: int = 28,
        num_classes: int = 10,
        in_channels: int = 1,
        channels_last: bool | None = None,
        compile: bool | Literal["default", "reduce-overhead", "max-autotune"] = False,
        label_smoothing: float = 0.0,
        init: Literal["xavier", "kaiming", "default"] = "xavier",
        test_time_flip: bool = False,
    ) -> None:
        super().__init__()
        check_optimization_settings(lr, momentum, weight_decay, nesterov, warmup_epochs, label_smoothing)
        require_positive(input_size, name="The input size", flag="--model.init_args.input_size")
        self.save_hyperparameters()
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.input_size = input_size
        self.net = checked_network(self)
        self.init_weights()
        self.channels_last = bool(channels_last)
        self.example_input_array = torch.zeros(1, in_channels, input_size, input_size)
        self.flops_per_example: int | None = None  # one example's forward and backward, for FLOPs/s and MFU
        self.loss_guard = FiniteLossGuard(partial(raise_divergence, self))
        self._compiled = False
        self.train_metrics, self.val_metrics, self.test_metrics = (EpochMetrics(num_classes) for _ in range(3))

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Any, *args: Any, **kwargs: Any) -> Classifier:  # type: ignore[override]
        """Lightning's, for a checkpoint of any version; on ``Classifier`` itself, of the class it names."""
        return saved_checkpoints.load_classifier(cls, Classifier, checkpoint_path, *args, **kwargs)

    def build_network(self) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__} must implement build_network()")

    @property
    def flops_per_batch(self) -> int | None:
        """FLOPs of one training step at the data module's current batch size (Lightning's ThroughputMonitor's)."""
        batch = getattr(self.trainer.datamodule, "batch_size", None) if self._trainer else None
        return None if self.flops_per_example is None or batch is None else self.flops_per_example * batch

    @property
    def categories(self) -> list[str]:
        """The class names, in label order: the loaded checkpoint's (its dataset's), else the record's, or numbers."""
        return saved_checkpoints.class_names(self)

    def init_weights(self) -> None:
        """The configured ``init``; ``xavier`` is the book's ``init_weights``."""
        init_weights(self.net, self.hparams.init)

    def setup(self, stage: str) -> None:
        auto = self.trainer.strategy.root_device.type == "cuda" or self.channels_last_pays_on_cpu
        self.channels_last = auto if self.hparams.channels_last is None else self.hparams.channels_last
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)
        if stage == "fit":  # under 16-mixed an infinite loss may be a step the gradient scaler skips
            scaled = has_gradient_scaler(self.trainer.precision_plugin)
            self.loss_guard.skips_allowed = SCALER_SKIPS_ALLOWED if scaled else 0
            if self.flops_per_example is None:  # two images: batch norm refuses one value per channel, even on meta
                pair = (2, self.hparams.in_channels, self.input_size, self.input_size)
                self.flops_per_example = training_flops(self.net, pair) // 2
        if self.hparams.compile and not self._compiled:
            self.net.compile(mode=None if self.hparams.compile is True else self.hparams.compile)
            self._compiled = True

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = model_input.prepared(self, images)  # a data module's batch, or its loader's uint8 images (notebooks)
        # TensorBoard's graph traces the model, which a compiled module refuses; its plain forward traces.
        return self.net.forward(images) if torch.jit.is_tracing() else self.net(images)

    def evaluation_logits(self, images: torch.Tensor) -> torch.Tensor:
        """The logits validation, test and predict judge by: the network's, or with ``test_time_flip`` the log of
        the image's and its mirror's mean probabilities."""
        return flip_averaged_logits(self, images) if self.hparams.get("test_time_flip") else self(images)

    def _shared_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        """Loss of one batch; its outcome joins the stage's epoch metrics, logged at the epoch's end."""
        images, labels = batch
        logits = self(images) if stage == "train" else self.evaluation_logits(images)
        loss = self.criterion(logits, labels)
        getattr(self, f"{stage}_metrics").add(logits, labels, loss)
        return loss

    def _log_epoch(self, stage: str) -> None:
        """Log the stage's epoch loss and accuracy and start afresh."""
        for name, value in getattr(self, f"{stage}_metrics").compute().items():
            self.log(f"{stage}/{name}", value, prog_bar=True)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """The book's step: one batch's loss, its outcome kept for the epoch's metrics, stopped if not finite."""
        loss = self._shared_step(batch, "train")
        self.loss_guard.check(loss, batch_idx, epoch=self.current_epoch, step=self.global_step)
        return loss

    def on_train_epoch_end(self) -> None:
        self.loss_guard.flush()
        self._log_epoch("train")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.loss_guard.flush()  # never write weights a non-finite step has touched
        # The class names travel with the weights: prediction and export need no dataset to name the outputs.
        datamodule = self.trainer.datamodule if self._trainer else None
        checkpoint["categories"] = list(getattr(datamodule, "classes", None) or self.categories)
        saved_checkpoints.save_random_state(checkpoint, self.device)
        saved_checkpoints.record_class(checkpoint, self)  # so that a plain Trainer's checkpoint names its class too

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["state_dict"] = self.upgrade_state_dict(checkpoint["state_dict"])
        self.loaded_categories = checkpoint.get("categories")  # an MNIST run's predict names digits
        saved_checkpoints.restore_random_state(checkpoint, self.device)

    def upgrade_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``state`` with the network's keys as this version names them (checkpoints of any version)."""
        return saved_checkpoints.renamed_network_keys(state, self.state_dict(), model_name=type(self).__name__)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def predict_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> dict[str, torch.Tensor]:
        """Class probabilities of ``(images, labels[, index])``; labels of unlabeled images are -1."""
        images, labels, *index = batch
        probabilities = self.evaluation_logits(images).float().softmax(dim=1)
        result = {"prediction": probabilities.argmax(dim=1), "probability": probabilities, "label": labels}
        return result | ({"index": index[0]} if index else {})

    def configure_optimizers(self) -> Any:
        """The book's SGD (momentum, Nesterov and weight-decay groups as configured) with the model's schedule."""
        hp = self.hparams
        groups = parameter_groups(self, weight_decay=hp.weight_decay, decay_norm_and_bias=hp.decay_norm_and_bias)
        optimizer = torch.optim.SGD(groups, lr=hp.lr, momentum=hp.momentum, nesterov=hp.nesterov)
        return configure_schedule(self, optimizer)
