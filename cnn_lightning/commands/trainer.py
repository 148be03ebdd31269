"""The CLI's ``Trainer``: Lightning's, with the model commands ``summary`` and ``export`` as methods, so LightningCLI
parses them as it parses ``fit``, and its defaults made cheaper and plainer where Lightning's cost or mislead."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import lightning as L

from cnn_lightning.training.profiler import NoOpProfiler


def evaluation(method: str, split: str) -> Any:
    """Lightning's ``validate`` or ``test``, described as the CLI means their options (one definition for both)."""

    def evaluate(
        self: L.Trainer,
        model: L.LightningModule | None = None,
        dataloaders: Any = None,
        ckpt_path: str | Path | None = None,
        verbose: bool = True,
        datamodule: L.LightningDataModule | None = None,
        weights_only: bool | None = None,
    ) -> list[Mapping[str, float]]:
        return getattr(L.Trainer, method)(self, model, dataloaders, ckpt_path, verbose, datamodule, weights_only)

    evaluate.__name__ = evaluate.__qualname__ = method
    evaluate.__doc__ = f"""Perform one evaluation epoch over the {split} set.

        Args:
            model: the model the checkpoint holds.
            dataloaders: unused: the data module gives them.
            ckpt_path: a run folder (``lightning_logs/lenet/version_0``: its best checkpoint), a ``.ckpt`` file,
                or ``best`` / ``last`` (of the newest run of this model).
            verbose: print the results table.
            datamodule: the data (``--data.*``).
            weights_only: how the checkpoint is unpickled (Lightning's).
        """
    return evaluate


class Trainer(L.Trainer):
    """Lightning's Trainer: devices, precision, epochs, engine, callbacks, logger.

    The project's model commands are its methods, so that LightningCLI parses ``summary`` and ``export`` as it parses
    ``fit``; ``fit``, ``validate``, ``test`` and ``predict`` are Lightning's, described as the CLI means them.

    Args:
        limit_train_batches: training batches per epoch: an int is a count, a float a fraction (``1.0``: all).
        limit_val_batches: validation batches, as ``limit_train_batches``.
        limit_test_batches: test batches, as ``limit_train_batches``.
        limit_predict_batches: prediction batches, as ``limit_train_batches``.
        overfit_batches: train (and validate) on this many training batches (int) or this fraction (float).
        **kwargs: the rest of Lightning's ``Trainer`` arguments; ``profiler`` unset is a no-op one cheaper than
            Lightning's (training/profiler.py).
    """

    # Lightning annotates these float-first, so the command line's ``1`` parsed as 1.0: every batch instead of one,
    # unlike ``Trainer(limit_val_batches=1)`` in Python. Int first restores the documented meaning.
    def __init__(
        self,
        *,
        limit_train_batches: int | float | None = None,
        limit_val_batches: int | float | None = None,
        limit_test_batches: int | float | None = None,
        limit_predict_batches: int | float | None = None,
        overfit_batches: int | float = 0.0,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("profiler") is None:
            kwargs["profiler"] = NoOpProfiler()
        super().__init__(
            limit_train_batches=limit_train_batches,
            limit_val_batches=limit_val_batches,
            limit_test_batches=limit_test_batches,
            limit_predict_batches=limit_predict_batches,
            overfit_batches=overfit_batches,
            **kwargs,
        )

    def fit(
        self,
        model: L.LightningModule,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        datamodule: L.LightningDataModule | None = None,
        ckpt_path: str | Path | None = None,
        weights_only: bool | None = None,
    ) -> None:
        """Train the model, then test it; checkpoints and logs go to a new run folder.

        Each epoch is validated; the test of the final weights ends with the book's closing line.

        Args:
            model: the model to train (``--model``, or the config's).
            train_dataloaders: unused: the data module gives them.
            val_dataloaders: unused, as ``train_dataloaders``.
            datamodule: the data (``--data.*``).
            ckpt_path: resume a stopped or finished run in place: its run folder
                (``lightning_logs/lenet/version_0``: its ``last.ckpt``), a ``.ckpt`` file, or ``last`` (the newest run
                of this model).
            weights_only: how the checkpoint is unpickled (Lightning's; the project's checkpoints need no more).
        """
        return super().fit(model, train_dataloaders, val_dataloaders, datamodule, ckpt_path, weights_only)

    validate = evaluation("validate", "validation")
    test = evaluation("test", "test")

    def predict(
        self,
        model: L.LightningModule | None = None,
        dataloaders: Any = None,
        datamodule: L.LightningDataModule | None = None,
        return_predictions: bool | None = None,
        ckpt_path: str | Path | None = None,
        weights_only: bool | None = None,
    ) -> Any:
        """Run inference on your data.

        Args:
            model: the model the checkpoint holds.
            dataloaders: unused: the data module gives them (``--data.predict_path`` for your own pictures).
            datamodule: the data (``--data.*``).
            return_predictions: keep the predictions in memory too (they are written to a CSV in the run).
            ckpt_path: a run folder (``lightning_logs/lenet/version_0``: its best checkpoint), a ``.ckpt`` file,
                or ``best`` / ``last`` (of the newest run of this model).
            weights_only: how the checkpoint is unpickled (Lightning's).
        """
        return super().predict(model, dataloaders, datamodule, return_predictions, ckpt_path, weights_only)

    def summary(
        self,
        model: L.LightningModule,
        datamodule: L.LightningDataModule | None = None,
        batch_size: int = 1,
        depth: int = 0,
        input_size: int | None = None,
        ckpt_path: str | None = None,
        weights_only: bool | None = None,
    ) -> None:
        """Print each layer's output shape, parameters, FLOPs and activation memory (no data, no GPU).

        Args:
            model: the configured model, built as ``fit`` would build it.
            datamodule: unused; the table needs no data.
            batch_size: images in the inspected pass.
            depth: levels of named blocks opened (plain Sequentials always are).
            input_size: image side to inspect instead of the model's own.
            ckpt_path: unused (the table needs no weights); accepted so that a run's saved config.yaml works here.
            weights_only: unused, as ``ckpt_path``.
        """
        from cnn_lightning.commands.summary import print_summary

        print_summary(model, batch_size=batch_size, depth=depth, input_size=input_size, precision=self.precision_plugin)

    def export(
        self,
        model: L.LightningModule,
        datamodule: L.LightningDataModule | None = None,
        ckpt_path: str | None = None,
        format: Literal["onnx", "torchscript"] = "onnx",
        output: str | None = None,
        weights_only: bool | None = None,
    ) -> None:
        """Write a trained model to one ONNX or TorchScript file, preprocessing and class names inside, checked
        against PyTorch on test images.

        Args:
            model: the model the checkpoint holds.
            datamodule: gives the test images the file is checked on.
            ckpt_path: a checkpoint, a run folder (its best checkpoint), ``best`` or ``last``.
            format: ``onnx`` (run with onnxruntime) or ``torchscript``.
            output: the file to write (never overwritten), or a folder; default: the run's ``export`` folder.
            weights_only: unused: checkpoints are always loaded with ``weights_only`` (accepted for saved configs).
        """
        from cnn_lightning.commands.export import export_model

        export_model(model, datamodule, ckpt_path, format=format, output=output)
