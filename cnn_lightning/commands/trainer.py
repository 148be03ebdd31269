"""The CLI's ``Trainer``: Lightning's, with the model commands ``summary`` and ``export`` as methods, so LightningCLI
parses them as it parses ``fit``, and its defaults made cheaper and plainer where Lightning's cost or mislead."""

from __future__ import annotations

from typing import Any, Literal

import lightning as L

from cnn_lightning.training.profiler import NoOpProfiler


class Trainer(L.Trainer):
    """Lightning's ``Trainer`` with the project's model commands as methods, so LightningCLI parses them as it
    parses ``fit``.

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
