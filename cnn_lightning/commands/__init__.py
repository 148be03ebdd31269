"""The table of commands of ``python -m cnn_lightning``: each command, the module that holds it, how it is parsed.

* ``fit``, ``validate``, ``test``, ``predict``, ``summary`` and ``export`` act on a model: LightningCLI parses them
  (:mod:`cnn_lightning.commands.fit`), with ``--config``, ``--model``, ``--data.*``, ``--trainer.*`` and each
  command's own typed options, and calls the ``Trainer`` method of that name (:mod:`cnn_lightning.commands.trainer`
  adds ``summary`` and ``export``; their work is in :mod:`~cnn_lightning.commands.summary` and
  :mod:`~cnn_lightning.commands.export`).
* ``report`` and ``tune`` act on finished runs or start runs of their own: jsonargparse reads ``report``'s options
  from its function's signature and docstring, with ``--help`` and ``--config`` as for the others; ``tune`` passes
  every option it does not know on to its trials' ``fit``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser

from cnn_lightning.commands.trainer import Trainer

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
    "report": ("cnn_lightning.commands.report:report", ("logdir",)),
    # tune passes every option it does not know on to fit, so it takes the raw arguments (None: no parser here).
    "tune": ("cnn_lightning.commands.tune:tune", None),
}


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
    # A bool option is a flag (``--overwrite``), which also takes a value (``--overwrite false``).
    flags = {name: p for name, p in inspect.signature(function).parameters.items() if p.annotation in (bool, "bool")}
    for name, parameter in flags.items():
        parser.add_argument(f"--{name}", nargs="?", const=True, default=parameter.default, type=bool)
    parser.add_function_arguments(function, skip=set(positional) | set(flags))
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


def run(args: Sequence[str]) -> None:
    """Run the command ``args`` name: the usage without one, a run command, or a model command through the CLI."""
    args = list(args)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
    elif args[0] in RUN_COMMANDS:
        run_command(args[0], args[1:])
    else:
        from cnn_lightning.commands.fit import make_cli

        make_cli(args)


__all__ = ["MODEL_COMMANDS", "RUN_COMMANDS", "Trainer", "run", "run_command", "run_function", "run_parser", "usage"]
