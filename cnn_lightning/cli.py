"""``python -m cnn_lightning``: the Lightning CLI over the book's models and Fashion-MNIST."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.cli import LightningCLI

from cnn_lightning.callbacks import closing_line, default_callbacks, final_metrics
from cnn_lightning.classifier import Classifier
from cnn_lightning.data import FashionMNISTDataModule
from cnn_lightning.errors import ConfigError, UserFacingError

CONFIG_DIRS = (Path("configs"), Path(__file__).resolve().parent.parent / "configs")
DEBUG_ENV = "CNN_LIGHTNING_DEBUG"
# Subcommands beside the Lightning CLI's fit/validate/test/predict: module whose ``main(argv)`` runs them.
EXTRA_COMMANDS = {"summary": "cnn_lightning.summary", "report": "cnn_lightning.report"}


def available_configs() -> list[str]:
    """Names of the bundled configs (``configs/*.yaml``)."""
    return sorted({path.name for folder in CONFIG_DIRS if folder.is_dir() for path in folder.glob("*.yaml")})


def resolve_config(name: str) -> str:
    """``name`` if it is a file, else ``configs/name`` (``.yaml`` optional) in the working directory or the repo."""
    if Path(name).is_file():
        return name
    for folder in CONFIG_DIRS:
        for candidate in (folder / name, folder / f"{name}.yaml"):
            if candidate.is_file():
                return str(candidate)
    raise ConfigError(
        f"Config '{name}' not found in the working directory or in configs/. "
        f"Available: {', '.join(available_configs()) or 'none'}."
    )


def resolve_config_args(argv: Sequence[str]) -> list[str]:
    """Rewrite every ``--config NAME`` / ``--config=NAME`` to the path of the config it names."""
    resolved, args = [], list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("--config", "-c") and args:
            resolved += [arg, resolve_config(args.pop(0))]
        elif arg.startswith("--config="):
            resolved.append("--config=" + resolve_config(arg.split("=", 1)[1]))
        else:
            resolved.append(arg)
    return resolved


class CNNLightningCLI(LightningCLI):
    """LightningCLI whose data module always resizes to the model's ``input_size``, and whose ``fit`` ends like
    the book's: a test pass on the final weights and one closing line, also stored as TensorBoard hparams."""

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.link_arguments("model.init_args.input_size", "data.resize")

    def after_fit(self) -> None:
        trainer = self.trainer
        if trainer.interrupted or trainer.state.status.value != "finished":
            return
        fit_metrics = dict(trainer.callback_metrics)
        trainer.test(self.model, datamodule=self.datamodule, verbose=False)
        trainer.callback_metrics.update({k: v for k, v in fit_metrics.items() if k not in trainer.callback_metrics})
        metrics = final_metrics(trainer)
        if trainer.logger is not None:
            final = {f"final/{name.replace('/', '_')}": value for name, value in metrics.items()}
            trainer.logger.log_hyperparams(self.model.hparams, final)
            trainer.logger.save()
        if trainer.is_global_zero:
            print(closing_line(metrics, trainer.strategy.root_device), flush=True)


def trainer_defaults() -> dict[str, Any]:
    return {
        "callbacks": default_callbacks(),
        "logger": {
            "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
            "init_args": {"save_dir": ".", "name": "lightning_logs", "default_hp_metric": False, "log_graph": True},
        },
    }


def make_cli(args: Sequence[str], *, run: bool = True) -> CNNLightningCLI:
    """The CLI over ``args`` (config names resolved); ``run=False`` only parses and instantiates."""
    return CNNLightningCLI(
        Classifier,
        FashionMNISTDataModule,
        subclass_mode_model=True,
        seed_everything_default=0,
        trainer_defaults=trainer_defaults(),
        args=resolve_config_args(args),
        run=run,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m cnn_lightning`` and the ``cnn-lightning`` script."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in EXTRA_COMMANDS:
            importlib.import_module(EXTRA_COMMANDS[args[0]]).main(resolve_config_args(args[1:]))
            return
        make_cli(args)
    except UserFacingError as error:
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
