"""The table of commands of ``python -m cnn_lightning``: each command, the module that holds it, how it is parsed.

* ``fit``, ``validate``, ``test``, ``predict``, ``summary`` and ``export`` act on a model: LightningCLI parses them
  (:mod:`cnn_lightning.commands.fit`), with ``--config``, ``--model``, ``--data.*``, ``--trainer.*`` and each
  command's own typed options, and calls the ``Trainer`` method of that name (:mod:`cnn_lightning.commands.trainer`
  adds ``summary`` and ``export``; their work is in :mod:`~cnn_lightning.commands.summary` and
  :mod:`~cnn_lightning.commands.export`).
* ``report``, ``activations`` and ``tune`` act on finished runs or start runs of their own: jsonargparse reads
  ``report``'s and ``activations``' options from their function's signature and docstring, with ``--help`` and
  ``--config`` as for the others; ``tune`` passes every option it does not know on to its trials' ``fit``.
"""

from __future__ import annotations

import importlib
import inspect
import textwrap
import types
import typing
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser

# Model commands: the Trainer method LightningCLI calls, with the arguments it fills in itself.
MODEL_COMMANDS: dict[str, set[str]] = {
    "fit": {"model", "train_dataloaders", "val_dataloaders", "datamodule"},
    "validate": {"model", "dataloaders", "datamodule"},
    "test": {"model", "dataloaders", "datamodule"},
    "predict": {"model", "dataloaders", "datamodule"},
    "summary": {"model", "datamodule"},
    "export": {"model", "datamodule"},
}
# What --help says of each command: the first sentence of its method's or function's docstring (tested to agree),
# kept here so that the list answers at once, before torch and Lightning load.
DESCRIPTIONS: dict[str, str] = {
    "fit": "Train the model, then test it; checkpoints and logs go to a new run folder",
    "validate": "Perform one evaluation epoch over the validation set",
    "test": "Perform one evaluation epoch over the test set",
    "predict": "Run inference on your data",
    "summary": "Print each layer's output shape, parameters, FLOPs and activation memory (no data, no GPU)",
    "export": "Write a trained model to one ONNX or TorchScript file, preprocessing and class names inside, checked "
    "against PyTorch on test images",
    "report": "Write a Markdown table (report.md) and PNG plots over every TensorBoard run in a folder",
    "tune": "Search fit settings with Optuna, or repeat one setting over several seeds; one run per trial",
    "activations": "Write PNG grids of chosen layers' activations for a few images, and of the first convolution's "
    "filters",
}
# Other tools' words for a command (the book's train_ch6, Keras's evaluate), answered with ours.
SYNONYMS = {"train": "fit", "evaluate": "test", "eval": "test", "infer": "predict", "inference": "predict"}
# Run commands: "module:function", and the parameters that are positional on the command line (loaded when run:
# fit needs neither report's nor tune's modules).
RUN_COMMANDS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "report": ("cnn_lightning.commands.report:report", ("logdir",)),
    # tune passes every option it does not know on to fit, so it takes the raw arguments (None: no parser here).
    "tune": ("cnn_lightning.commands.tune:tune", None),
    "activations": ("cnn_lightning.commands.activations:activations", ()),
}


def run_function(command: str) -> Callable[..., Any]:
    module, _, name = RUN_COMMANDS[command][0].partition(":")
    return getattr(importlib.import_module(module), name)


def run_parser(command: str) -> ArgumentParser:
    """The jsonargparse parser of a run command: its function's signature, positional where registered."""
    from jsonargparse import ActionConfigFile, ArgumentParser

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
    # A list of words is typed as words (``--layers features.1 features.4``), as argparse users expect.
    hints = typing.get_type_hints(function)
    lists = {name for name, hint in hints.items() if name != "return" and list in _types(hint)}
    for name in lists:
        default = inspect.signature(function).parameters[name].default
        parser.add_argument(f"--{name}", nargs="+", default=default, help=_argument_help(function, name))
    parser.add_function_arguments(function, skip=set(positional) | set(flags) | lists)
    return parser


def _types(hint: Any) -> set[Any]:
    """The classes a type hint allows: ``list[str] | None`` → ``{list, NoneType}``."""
    arguments = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin is typing.Union or isinstance(hint, types.UnionType):
        return {t for argument in arguments for t in _types(argument)}
    return {origin or hint}


def _argument_help(function: Callable[..., Any], name: str) -> str:
    """The docstring's text for the parameter ``name``, as jsonargparse shows the other options'."""
    from docstring_parser import parse  # jsonargparse[signatures]'s own docstring reader

    described = {param.arg_name: param.description or "" for param in parse(function.__doc__ or "").params}
    return described.get(name, "").replace("%", "%%")


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
    width = max(map(len, DESCRIPTIONS))
    for command, description in DESCRIPTIONS.items():  # wrapped to an 80-column terminal
        lines += textwrap.wrap(
            description, 80, initial_indent=f"  {command:{width}s} ", subsequent_indent=" " * (width + 3)
        )
    lines += ["", "python -m cnn_lightning COMMAND --help lists a command's options."]
    return "\n".join(lines)


def unknown_command(name: str) -> Exception:
    """The refusal of a first word that is no command: every command named, the nearest first."""
    import difflib

    from cnn_lightning.errors import ConfigError

    commands = f"The commands: {', '.join(DESCRIPTIONS)} (python -m cnn_lightning --help says what each does)."
    if name.startswith("-"):
        return ConfigError(f"{name} comes after a command (python -m cnn_lightning fit {name} ...). {commands}")
    near = SYNONYMS.get(name.lower()) or next(iter(difflib.get_close_matches(name, DESCRIPTIONS, n=1)), None)
    return ConfigError(f"{name!r} is not a command. {f'Did you mean {near}? ' if near else ''}{commands}")


def first_sentence(function: Callable[..., Any]) -> str:
    """The first sentence of ``function``'s docstring, as DESCRIPTIONS holds it."""
    paragraph = (function.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(paragraph.split()).split(". ")[0].rstrip(".")


def run(args: Sequence[str], *, configs_resolved: bool = False) -> None:
    """Run the command ``args`` name: the usage without one, a run command, or a model command through the CLI."""
    args = list(args)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
    elif args[0] in RUN_COMMANDS:
        run_command(args[0], args[1:])
    elif args[0] not in MODEL_COMMANDS:
        raise unknown_command(args[0])
    else:
        from cnn_lightning.commands.fit import make_cli

        make_cli(args, resolve_configs=not configs_resolved)


def __getattr__(name: str) -> Any:
    # The CLI's Trainer on first use: importing it loads Lightning, which --help and the table need not wait for.
    if name == "Trainer":
        from cnn_lightning.commands.trainer import Trainer

        return Trainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["MODEL_COMMANDS", "RUN_COMMANDS", "Trainer", "run", "run_command", "run_function", "run_parser", "usage"]
