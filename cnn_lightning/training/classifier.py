"""The training logic shared by every architecture: the book's ``train_ch6`` as one LightningModule."""

from __future__ import annotations

import gc
import inspect
from typing import Any, ClassVar, Literal

import lightning as L
import torch
from lightning.pytorch.cli import LightningCLI
from torch import nn

from cnn_lightning.errors import ConfigError, DivergenceError, InputSizeError, require_positive
from cnn_lightning.lightning_contract import HOOK_NAME_ATTRIBUTE
from cnn_lightning.scratch.shapes import output_shape, training_flops
from cnn_lightning.training import chunked_steps, saved_checkpoints
from cnn_lightning.training.epoch_metrics import EpochMetrics
from cnn_lightning.training.finite_loss_guard import SCALER_SKIPS_ALLOWED, FiniteLossGuard
from cnn_lightning.training.optimization import (
    Schedule,
    describe_schedule,
    divergence_message,
    parameter_groups,
    trainer_schedule,
)


class Classifier(L.LightningModule):
    """Image classifier trained like D2L's ``train_ch6``: cross-entropy, plain SGD, Xavier-uniform init.

    Subclasses implement :meth:`build_network` from ``self.hparams``; ``input_size`` is the image side the
    network is built for and the data module resizes to it.

    Args:
        lr: SGD learning rate (the peak of a schedule). The optimizer is the book's SGD unless the config names
            another (LightningCLI's ``optimizer:`` and ``lr_scheduler:`` keys, e.g. ``--optimizer AdamW``), which
            replaces it with its own lr, momentum and weight decay (the CLI says so).
        momentum: SGD momentum (the book uses none).
        nesterov: Nesterov momentum (needs ``momentum`` > 0).
        weight_decay: L2 penalty (the book uses none).
        decay_norm_and_bias: apply ``weight_decay`` to normalization weights and biases too, as plain SGD does;
            ``false`` exempts them (training/optimization.py), also for an optimizer the config names.
        lr_schedule: ``constant`` (the book), ``cosine`` (decay to 0) or ``onecycle``, stepped after every optimizer
            step over the run's ``trainer.estimated_stepping_batches``; used with any optimizer unless the config
            names an ``lr_scheduler`` of its own.
        warmup_epochs: linear warm-up from 1 % of ``lr`` over this many epochs (fractions allowed) first.
        input_size: image side length the network is built for.
        num_classes: output classes.
        in_channels: image channels.
        channels_last: NHWC memory format for convolutions; ``None`` (default) turns it on where it pays: on
            CUDA (tensor cores read NHWC) and on CPU unless the class says ``channels_last_pays_on_cpu = False``.
        compile: ``torch.compile`` the network at fit start (compiles in place: checkpoints stay compatible);
            a string picks the mode, e.g. ``reduce-overhead`` (CUDA graphs: fewer kernel launches per step).
        label_smoothing: of the cross-entropy criterion shared by training, validation and test (the book: 0).
        steps_per_batch: optimizer steps per Lightning batch (chunked steps, the same arithmetic with Lightning's
            per-batch loop paid once per chunk: training/chunked_steps.py); ``None``: the measured default, 1: off.
        cuda_graph: on CUDA, replay each full chunk of steps from one captured CUDA graph (training/chunk_graph.py;
            where it cannot, the fit says why and runs the chunks eagerly).
        init: weight initialization: ``xavier`` (the book's), ``kaiming`` or ``default`` (models/weight_init.py).
    """

    #: The network's facts (book section, size, parameters, accuracy, classes): each architecture's models.record
    #: ModelRecord (named, not imported: the models build on this class).
    record: ClassVar[Any] = None

    # oneDNN's NHWC kernels train every book network faster on a CPU except LeNetBN, whose batch norm on tiny maps
    # runs slower (docs/measurements.md, "channels_last").
    channels_last_pays_on_cpu: bool = True

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
        steps_per_batch: int | None = None,
        cuda_graph: bool = False,
        init: Literal["xavier", "kaiming", "default"] = "xavier",
    ) -> None:
        super().__init__()
        require_positive(lr, name="The learning rate", flag="--model.init_args.lr")
        require_positive(momentum, name="Momentum", flag="--model.init_args.momentum", allow_zero=True)
        require_positive(weight_decay, name="Weight decay", flag="--model.init_args.weight_decay", allow_zero=True)
        require_positive(input_size, name="The input size", flag="--model.init_args.input_size")
        require_positive(steps_per_batch, name="Steps per batch", flag="--model.init_args.steps_per_batch")
        require_positive(warmup_epochs, name="The warm-up", flag="--model.init_args.warmup_epochs", allow_zero=True)
        if nesterov and not momentum:
            raise ConfigError("Nesterov momentum needs momentum > 0. Set --model.init_args.momentum (e.g. 0.9).")
        if not 0 <= label_smoothing < 1:
            raise ConfigError(
                f"label_smoothing must be in [0, 1), got {label_smoothing}. Set --model.init_args.label_smoothing."
            )
        self.save_hyperparameters()
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.input_size = input_size
        self.net = self._build_checked()
        self.init_weights()
        self.channels_last = bool(channels_last)
        self.example_input_array = torch.zeros(1, in_channels, input_size, input_size)
        self.flops_per_example: int | None = None  # one example's forward and backward, for FLOPs/s and MFU
        self.loss_guard = FiniteLossGuard(self._diverged)
        self.optimizer_source = "model"  # "cli" once LightningCLI's optimizer: replaced the model's SGD
        self.schedule_source: str | None = None  # "model" (lr_schedule), "cli" (lr_scheduler:) or None
        self._compiled = False
        self.steps_per_batch, self.chunk_graph = 1, None  # what the fit runs (on_fit_start decides)
        self.train_metrics, self.val_metrics, self.test_metrics = (EpochMetrics(num_classes) for _ in range(3))

    def __setattr__(self, name: str, value: Any) -> None:
        # Set around every hook call, dozens of times a step: skip nn.Module's Parameter/Module/buffer type checks.
        if name == HOOK_NAME_ATTRIBUTE:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Any, *args: Any, **kwargs: Any) -> Classifier:  # type: ignore[override]
        """Lightning's; called on ``Classifier`` itself, it builds the class the checkpoint names (``LeNet``, ...)."""
        if cls is Classifier:
            return saved_checkpoints.checkpoint_class(checkpoint_path).load_from_checkpoint(
                checkpoint_path, *args, **kwargs
            )
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

    def build_network(self) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__} must implement build_network()")

    def _build_checked(self) -> nn.Module:
        """Build the network and prove on the meta device that it maps ``input_size`` images to class scores."""
        hp, name, size = self.hparams, type(self).__name__, self.input_size
        try:
            net = self.build_network()
            shape = output_shape(net, (2, hp.in_channels, size, size))
        except RuntimeError as error:
            problem = str(error).splitlines()[0]
        else:
            if tuple(shape) == (2, hp.num_classes):
                return net
            problem = f"they give outputs of shape {tuple(shape)[1:]}, not ({hp.num_classes},)"
        from cnn_lightning.models.sizes import size_advice  # the size that works; the models build on this class

        raise InputSizeError(f"{name} cannot take {size}x{size} images: {problem}. {size_advice(self)}") from None

    @property
    def flops_per_batch(self) -> int | None:
        """FLOPs of one training step at the data module's current batch size, as Lightning's ``ThroughputMonitor``
        reads them: a micro-batch ``AutoMicroBatch`` chose counts, not the configured batch."""
        batch = getattr(self.trainer.datamodule, "batch_size", None) if self._trainer else None
        return None if self.flops_per_example is None or batch is None else self.flops_per_example * batch

    @property
    def categories(self) -> list[str]:
        """The class names, in label order: the record's, else numbered."""
        return list(self.record.categories) if self.record else [str(i) for i in range(self.hparams.num_classes)]

    @classmethod
    def book_input_size(cls) -> int:
        """The image side the book trains this architecture at."""
        return cls.record.input_size if cls.record else inspect.signature(cls.__init__).parameters["input_size"].default

    def init_weights(self) -> None:
        """The configured ``init`` of every convolution and linear weight; ``xavier`` is the book's ``init_weights``."""
        from cnn_lightning.models.weight_init import init_weights  # the models package builds on this class

        init_weights(self.net, self.hparams.init)

    def setup(self, stage: str) -> None:
        on_cuda = self.trainer.strategy.root_device.type == "cuda"
        auto = on_cuda or self.channels_last_pays_on_cpu
        self.channels_last = auto if self.hparams.channels_last is None else self.hparams.channels_last
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)
        if stage == "fit":  # under 16-mixed an infinite loss may be a step the gradient scaler skips
            self.loss_guard.skips_allowed = SCALER_SKIPS_ALLOWED if str(self.trainer.precision) == "16-mixed" else 0
            if self.flops_per_example is None:
                # Two images: batch norm refuses to train on one value per channel, even on the meta device.
                pair = training_flops(self.net, (2, self.hparams.in_channels, *[self.input_size] * 2))
                self.flops_per_example = pair // 2
        if self.hparams.compile and not self._compiled:
            self.net.compile(mode=None if self.hparams.compile is True else self.hparams.compile)
            self._compiled = True

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        # TensorBoard's graph traces the model, which a compiled module refuses; its plain forward traces.
        return self.net.forward(images) if torch.jit.is_tracing() else self.net(images)

    def upgrade_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``state`` with the network's keys as this version names them (:func:`renamed_network_keys`)."""
        return saved_checkpoints.renamed_network_keys(state, self.state_dict(), model_name=type(self).__name__)

    def _shared_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        """Loss of one batch; its outcome joins the stage's epoch metrics, logged at the epoch's end."""
        images, labels = batch
        logits = self(images)
        loss = self.criterion(logits, labels)
        getattr(self, f"{stage}_metrics").add(logits, labels, loss)
        return loss

    def _log_epoch(self, stage: str) -> None:
        """Log the stage's epoch loss and accuracy and start afresh."""
        for name, value in getattr(self, f"{stage}_metrics").compute().items():
            self.log(f"{stage}/{name}", value, prog_bar=True)

    def on_fit_start(self) -> None:
        # After the callbacks' (AutoMicroBatch's search, its accumulation set) and before the progress bar starts.
        self.steps_per_batch = chunked_steps.start_chunked_steps(self, self.hparams.steps_per_batch)
        self.chunk_graph = chunked_steps.start_chunk_graph(self, self.hparams.get("cuda_graph", False))

    def on_train_start(self) -> None:
        chunked_steps.resume_chunked_steps(self)
        # Torch's, Lightning's and the CLI's objects outlive the run: out of the collector's sight (measurements.md)
        gc.freeze()

    def on_train_end(self) -> None:
        gc.unfreeze()
        chunked_steps.stop_chunked_steps(self)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        if not self.automatic_optimization:  # a chunk: several optimizer steps (training/chunked_steps.py)
            return chunked_steps.train_chunk(self, batch, batch_idx)
        loss = self._shared_step(batch, "train")
        self.loss_guard.check(loss, batch_idx, epoch=self.current_epoch, step=self.global_step)
        return loss

    def _diverged(self, loss: float, epoch: int, step: int, batch_idx: int) -> None:
        """Stop the run, naming where the loss went non-finite; the checkpoints on disk predate it."""
        raise DivergenceError(divergence_message(self, loss, epoch=epoch, step=step, batch_idx=batch_idx))

    def on_train_epoch_end(self) -> None:
        self.loss_guard.flush()
        self._log_epoch("train")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.loss_guard.flush()  # never write weights a non-finite step has touched
        # The class names travel with the weights: prediction and export need no dataset to name the outputs.
        datamodule = self.trainer.datamodule if self._trainer else None
        checkpoint["categories"] = list(getattr(datamodule, "classes", None) or self.categories)
        saved_checkpoints.save_random_state(checkpoint, self.device)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["state_dict"] = self.upgrade_state_dict(checkpoint["state_dict"])
        saved_checkpoints.restore_random_state(checkpoint, self.device)

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
        probabilities = self(images).float().softmax(dim=1)
        result = {"prediction": probabilities.argmax(dim=1), "probability": probabilities, "label": labels}
        return result | ({"index": index[0]} if index else {})

    def configure_optimizers(self) -> Any:
        """The book's SGD (momentum, Nesterov and weight-decay groups as configured) with the model's schedule."""
        hp = self.hparams
        groups = parameter_groups(self, weight_decay=hp.weight_decay, decay_norm_and_bias=hp.decay_norm_and_bias)
        optimizer = torch.optim.SGD(groups, lr=hp.lr, momentum=hp.momentum, nesterov=hp.nesterov)
        return self.schedule(optimizer)

    def schedule(self, optimizer: torch.optim.Optimizer, lr_scheduler: Any = None) -> Any:
        """``optimizer`` with the configured per-step schedule, or with ``lr_scheduler`` (LightningCLI's
        ``lr_scheduler:``, stepped per epoch as LightningCLI does) when the config names one."""
        hp = self.hparams
        if lr_scheduler is not None:
            if hp.lr_schedule != "constant" or hp.warmup_epochs:
                raise ConfigError(
                    f"Two learning-rate schedules: lr_scheduler {type(lr_scheduler).__name__} and the model's "
                    f"{describe_schedule(hp.lr_schedule, hp.warmup_epochs)}. Keep one: drop lr_scheduler, or set "
                    "--model.init_args.lr_schedule constant --model.init_args.warmup_epochs 0."
                )
            self.schedule_source = "cli"
            return LightningCLI.configure_optimizers(self, optimizer, lr_scheduler)  # ReduceLROnPlateau's monitor
        scheduler = trainer_schedule(optimizer, self._trainer, schedule=hp.lr_schedule, warmup_epochs=hp.warmup_epochs)
        self.schedule_source = "model" if scheduler is not None else None
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
