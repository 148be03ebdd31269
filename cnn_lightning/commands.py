"""Every subcommand of ``python -m cnn_lightning``, registered here, each parsed by jsonargparse.

* ``fit``, ``validate``, ``test``, ``predict``, ``summary`` and ``export`` act on a model: LightningCLI parses them,
  with ``--config``, ``--model``, ``--data.*``, ``--trainer.*`` and each command's own typed options (``summary``'s
  are :meth:`Trainer.summary`'s arguments).
* ``report`` acts on finished runs only: jsonargparse reads its options from the function's signature and
  docstring, with ``--help`` and ``--config`` as for the others.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any, Literal

import lightning as L
from jsonargparse import ActionConfigFile, ArgumentParser

from cnn_lightning.host_memory import retain_freed_memory
from cnn_lightning.step_overhead import NoOpProfiler

# Model commands: the Trainer method LightningCLI calls, with the arguments it fills in itself.
MODEL_COMMANDS: dict[str, set[str]] = {
    "fit": {"model", "train_dataloaders", "val_dataloaders", "datamodule"},
    "validate": {"model", "dataloaders", "datamodule"},
    "test": {"model", "dataloaders", "datamodule"},
    "predict": {"model", "dataloaders", "datamodule"},
    "summary": {"model", "datamodule"},
    "export": {"model", "datamodule"},
}
# Run commands: "module:function", and the parameters that are positional on the command line.
RUN_COMMANDS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "report": ("cnn_lightning.report:report", ("logdir",)),
    # tune passes every option it does not know on to fit, so it takes the raw arguments (None: no parser here).
    "tune": ("cnn_lightning.search:tune", None),
}


class Trainer(L.Trainer):
    """Lightning's ``Trainer`` with the project's model commands as methods, so LightningCLI parses them as it
    parses ``fit``.

    Args:
        limit_train_batches: training batches per epoch: an int is a count, a float a fraction (``1.0``: all).
        limit_val_batches: validation batches, as ``limit_train_batches``.
        limit_test_batches: test batches, as ``limit_train_batches``.
        limit_predict_batches: prediction batches, as ``limit_train_batches``.
        overfit_batches: train (and validate) on this many training batches (int) or this fraction (float).
        retain_host_memory: keep the CPU memory each step frees in the process for the next step instead of
            handing it back to the kernel (host_memory.py: a LeNet step on 2 CPU cores spent up to a third of its
            time faulting fresh pages in). Process-wide once on; false leaves glibc's defaults.
        **kwargs: the rest of Lightning's ``Trainer`` arguments; ``profiler`` unset is a no-op one cheaper than
            Lightning's (step_overhead.py).
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
        retain_host_memory: bool = True,
        **kwargs: Any,
    ) -> None:
        if retain_host_memory:
            retain_freed_memory()
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
        from cnn_lightning.summary import print_summary

        print_summary(model, batch_size=batch_size, depth=depth, input_size=input_size, precision=self.precision)

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
        from cnn_lightning.export import export_model

        export_model(model, datamodule, ckpt_path, format=format, output=output)


def run_function(command: str) -> Callable[..., Any]:
    module, _, name = RUN_COMMANDS[command][0].partition(":")
    return getattr(importlib.import_module(module), name)


def run_parser(command: str) -> ArgumentParser:
    """The jsonargparse parser of a run command: its function's signature, positional where registered."""
    function, positional = run_function(command), RUN_COMMANDS[command][1]
    description = (function.__doc__ or "").strip().splitlines()[0]
    parser = ArgumentParser(prog=f"python -m cnn_lightning {command}", description=description, exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile, help="a YAML file of these options")
    for name in positional:
        default = inspect.signature(function).parameters[name].default
        parser.add_argument(name, nargs="?", default=default, help="(default: %(default)s)")
    parser.add_function_arguments(function, skip=set(positional))
    return parser


def run_command(command: str, argv: Sequence[str]) -> Any:
    if RUN_COMMANDS[command][1] is None:
        return run_function(command)(list(argv))
    parser = run_parser(command)
    config = parser.parse_args(list(argv))
    arguments = {key: value for key, value in config.items() if key != "config"}
    return run_function(command)(**arguments)


def usage() -> str:
    """``python -m cnn_lightning --help``: every command with its one-line description."""
    lines = ["usage: python -m cnn_lightning COMMAND [--help] [options]", "", "commands:"]
    functions = {command: getattr(Trainer, command) for command in MODEL_COMMANDS}
    functions |= {command: run_function(command) for command in RUN_COMMANDS}
    for command, function in functions.items():
        first_sentence = (function.__doc__ or "").strip().split(". ")[0].splitlines()[0].rstrip(".")
        lines.append(f"  {command:10s} {first_sentence}")
    lines += ["", "python -m cnn_lightning COMMAND --help lists a command's options."]
    return "\n".join(lines)
