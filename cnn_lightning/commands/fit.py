"""``fit``, ``validate``, ``test``, ``predict``, ``summary`` and ``export``: the Lightning CLI over the book's models
and Fashion-MNIST, with the callbacks every run gets, crash-safe checkpoints, resumes in place and the book's
closing line."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from jsonargparse import ArgumentError, Namespace
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelSummary, ProgressBar
from lightning.pytorch.cli import LightningCLI, instantiate_class
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_only

from cnn_lightning.callbacks import ConfigPerRun, PredictionCSV, RunCheckpoint, StopAtAccuracy
from cnn_lightning.commands import MODEL_COMMANDS
from cnn_lightning.commands.checkpoint_fit import check_checkpoint_fits
from cnn_lightning.commands.cli_defaults import optimizer_hparams, settle_strategy, trainer_defaults
from cnn_lightning.commands.closing_line import closing_line, final_metrics
from cnn_lightning.commands.config_files import CONFIG_DIRS, resolve_config_args
from cnn_lightning.commands.messages import explain_trainer_error, option_names, unknown_option
from cnn_lightning.commands.preflight import check_before_run
from cnn_lightning.commands.run_folders import (
    DEFAULT_LOGGER_NAME,
    LOGGING_COMMANDS,
    check_run_place,
    continue_in_run_folder,
    is_tensorboard,
    log_into,
    logger_root,
    named_runs,
    run_name,
)
from cnn_lightning.commands.trainer import Trainer
from cnn_lightning.data.datamodule import FashionMNISTDataModule
from cnn_lightning.errors import ConfigError, UserFacingError, require_positive
from cnn_lightning.legacy import upgrade_hyperparameters
from cnn_lightning.lightning_contract import ConfigFromUnnamedCheckpoints, stop_logging_graph, subcommand_parser
from cnn_lightning.loggers.tensorboard import user_settings
from cnn_lightning.models import MODELS
from cnn_lightning.runs import (
    COMMAND_FOLDERS,
    checkpoint_model,
    checkpoint_overrides,
    load_checkpoint,
    next_version,
    release_unused_folders,
    reserve_run_folder,
    resolve_checkpoint,
    run_folder,
    same_model,
)
from cnn_lightning.training.classifier import Classifier
from cnn_lightning.training.optimization import configure_schedule, regroup
from cnn_lightning.training.precision import default_precision


class CNNLightningCLI(ConfigFromUnnamedCheckpoints, LightningCLI):
    """LightningCLI whose data module always resizes to the model's ``input_size``, which checkpoints every run
    crash-safely and resumes it in place, and whose ``fit`` ends like the book's: a test pass on the final
    weights and one closing line, also stored as TensorBoard hparams."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return MODEL_COMMANDS

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.link_arguments("model.init_args.input_size", "data.resize")
        parser.add_lightning_class_args(RunCheckpoint, "checkpoint")
        parser.add_lightning_class_args(PredictionCSV, "predictions")
        parser.add_lightning_class_args(StopAtAccuracy, "stop_at")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        trainer, model = config.trainer, config.get("model")
        if isinstance(model, Namespace) and model.get("dict_kwargs"):  # a checkpoint's hyperparameters, read as today's
            model.dict_kwargs = upgrade_hyperparameters(model.dict_kwargs)
        if trainer.max_epochs not in (None, -1):
            require_positive(trainer.max_epochs, name="max_epochs", flag="--trainer.max_epochs (or -1 for no limit)")
        if self.subcommand:  # what would fail only once the run began, refused before its folder exists
            check_before_run(self.config[self.subcommand], self.subcommand)
        self._reserve_run_folder(trainer)
        if self.subcommand in ("predict", "export") and not self.config[self.subcommand].get("ckpt_path"):
            raise ConfigError(
                f"{self.subcommand} needs trained weights: pass --ckpt_path (a run folder, a .ckpt, best or last); "
                "without one it would use an untrained model. Train first: python -m cnn_lightning fit --config ..."
            )
        if trainer.precision is None:  # unset: bf16-mixed where the device computes it natively (training/precision.py)
            trainer.precision = default_precision(trainer.accelerator)
        settle_strategy(trainer)
        if trainer.sync_batchnorm and (trainer.accelerator == "cpu" or not torch.cuda.is_available()):
            raise ConfigError(
                "--trainer.sync_batchnorm needs GPUs: PyTorch's SyncBatchNorm runs on CUDA only. "
                "Drop it on CPU (each process then normalizes over its own batch)."
            )

    def _reserve_run_folder(self, trainer: Namespace) -> None:
        """The run's ``NAME/version_N`` folder, reserved before anything is written (runs.reserve_run_folder) by the
        commands that write one; without a logger Lightning would write config.yaml and checkpoints/ into the working
        directory, so such a run gets a folder of its own too. Other processes of a distributed run use rank 0's."""
        writes = self.subcommand in LOGGING_COMMANDS and not trainer.fast_dev_run and rank_zero_only.rank == 0
        if writes:  # a read-only disk, a file or a link loop in the way: one line before anything is written
            check_run_place(trainer)
        config = self.config[self.subcommand] if self.subcommand else self.config
        logger, name = trainer.logger, run_name(config, CONFIG_DIRS)
        if logger is False and not trainer.default_root_dir:
            root = Path(DEFAULT_LOGGER_NAME) / name
            trainer.default_root_dir = str(reserve_run_folder(root) if writes else next_version(root))
        if not is_tensorboard(logger) or logger.init_args.get("version") is not None:
            return
        if named_runs(logger) and rank_zero_only.rank == 0:  # other ranks: rank 0's folder, broadcast by Lightning
            root = logger_root(logger) / name  # in Python (no subcommand): the next free one, made when the fit begins
            logger.init_args.version = f"{name}/{(reserve_run_folder(root) if writes else next_version(root)).name}"
        elif writes:  # the user's logger name: its runs straight under it, as Lightning's
            logger.init_args.version = int(reserve_run_folder(logger_root(logger)).name[8:])

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        """The Trainer, or one line naming the setting it refused (accelerator, devices, strategy, ...). A progress
        bar in the config replaces the default one, and ``enable_progress_bar: false`` drops it (Lightning refuses
        two bars, and a bar when bars are off)."""
        trainer = (self.config_init[self.subcommand] if self.subcommand else self.config_init).trainer
        for kind, enabled in ((ProgressBar, trainer.enable_progress_bar), (ModelSummary, trainer.enable_model_summary)):
            if enabled is False or any(isinstance(callback, kind) for callback in trainer.callbacks or []):
                defaults = self.trainer_defaults["callbacks"]  # the config's own, or none: Lightning takes one
                self.trainer_defaults["callbacks"] = [cb for cb in defaults if not isinstance(cb, kind)]
        try:
            return super().instantiate_trainer(**kwargs)
        except UserFacingError:
            raise
        except (MisconfigurationException, ValueError, ImportError, RuntimeError) as error:
            raise ConfigError(explain_trainer_error(str(error))) from None

    def configure_optimizers(
        self, lightning_module: Any, optimizer: torch.optim.Optimizer, lr_scheduler: Any = None
    ) -> Any:
        """A config's ``optimizer:`` (and ``lr_scheduler:``) in place of the model's SGD, with the model's
        weight-decay groups and per-step schedule, and a line saying which model settings it leaves unused."""
        if not isinstance(lightning_module, Classifier):
            return LightningCLI.configure_optimizers(lightning_module, optimizer, lr_scheduler)
        hp = lightning_module.hparams
        lightning_module.optimizer_source = "cli"
        regrouped = regroup(optimizer, lightning_module, decay_norm_and_bias=hp.decay_norm_and_bias)
        if regrouped is not optimizer and lr_scheduler is not None:  # the scheduler must drive the new groups
            lr_scheduler = instantiate_class(regrouped, self._get(self.config_init, "lr_scheduler"))
        name, settings = type(optimizer).__name__, optimizer.defaults
        unused = f"lr {hp.lr:g}, momentum {hp.momentum:g}, weight_decay {hp.weight_decay:g}"
        used = ", ".join(f"{key} {settings[key]:g}" for key in ("lr", "momentum", "weight_decay") if key in settings)
        rank_zero_info(
            f"optimizer: {name} replaces the model's SGD, so its {unused}{', nesterov' * hp.nesterov} "
            f"(--model.init_args.*) are unused: {name} runs with {used} (set them with --optimizer.*)."
        )
        return configure_schedule(lightning_module, regrouped, lr_scheduler)

    def parse_arguments(self, parser: Any, args: Any) -> None:
        try:
            super().parse_arguments(parser, args)
        except ArgumentError as error:  # a near miss of an option: name the options it may have meant
            command = args[0] if args and args[0] in MODEL_COMMANDS else "fit"
            if (message := unknown_option(str(error), option_names(subcommand_parser(self, command)), command)) is None:
                raise
            raise ConfigError(message) from None
        subcommand = self.config.get("subcommand")
        # Before LightningCLI reads the checkpoint's hyperparameters into the config: it takes files only.
        if subcommand and self.config[subcommand].get("ckpt_path"):
            config = self.config[subcommand]
            config.ckpt_path = self._resolve_checkpoint(config, subcommand)

    def _resolve_checkpoint(self, config: Namespace, subcommand: str) -> str:
        """The checkpoint ``--ckpt_path`` means (``runs.resolve_checkpoint``), checked to load and to hold the
        configured architecture; ``fit`` continues logging in that run, the other commands log into a
        subfolder of it named after the command instead of starting a new run."""
        if config.ckpt_path in ("hpc", "registry"):
            return config.ckpt_path
        wanted = config.model.class_path if isinstance(config.get("model"), Namespace) else None
        log_root = logger_root(config.trainer.get("logger"))
        path = resolve_checkpoint(config.ckpt_path, subcommand=subcommand, class_path=wanted, log_root=log_root)
        checkpoint = load_checkpoint(path)
        held = checkpoint_model(checkpoint)
        if not same_model(held, wanted):
            raise ConfigError(
                f"Checkpoint {path} holds a {held.rsplit('.', 1)[-1]}, but this run builds a "
                f"{wanted.rsplit('.', 1)[-1]}. Use that model's config, or drop --config/--model to take the "
                "model from the checkpoint."
            )
        if wanted and wanted.rsplit(".", 1)[-1] in MODELS:
            asked = config.model.get("init_args")
            asked = asked.as_dict() if isinstance(asked, Namespace) else dict(asked or {})
            for name, (value, stored) in checkpoint_overrides(
                MODELS[wanted.rsplit(".", 1)[-1]], asked, checkpoint
            ).items():
                rank_zero_info(f"The checkpoint's {name} {stored} replaces --model.init_args.{name} {value}.")
        check_checkpoint_fits(path, checkpoint, config.get("model"))  # before Lightning loads it, or a folder exists
        run = run_folder(path)
        if subcommand == "fit":
            continue_in_run_folder(config, path, log_root)
        elif run is not None and subcommand in COMMAND_FOLDERS:
            log_into(config, run, subcommand)
        rank_zero_info(f"Checkpoint: {path}")
        return str(path)

    def after_fit(self) -> None:
        trainer = self.trainer
        if trainer.interrupted or trainer.state.status.value != "finished":
            return
        fit_metrics = dict(trainer.callback_metrics)
        stop_logging_graph(trainer.logger)  # the run has its graph from fit: one per run
        trainer.test(self.model, datamodule=self.datamodule, verbose=False)
        trainer.callback_metrics.update({k: v for k, v in fit_metrics.items() if k not in trainer.callback_metrics})
        metrics = final_metrics(trainer)
        if trainer.logger is not None:
            final = {f"final/{name.replace('/', '_')}": value for name, value in metrics.items()}
            # The data module's settings too (data.batch_size...), named by their CLI keys: a study over them
            # shows them as HParams columns.
            data = {f"data.{key}": value for key, value in getattr(self.datamodule, "hparams", {}).items()}
            settings = user_settings(self.model.hparams | data | optimizer_hparams(trainer))
            trainer.logger.log_hyperparams(settings, final)
            trainer.logger.save()
        if trainer.is_global_zero:
            devices = trainer.strategy.root_device.type + (f" x{trainer.world_size}" if trainer.world_size > 1 else "")
            print(closing_line(metrics, devices), flush=True)


PROG = "python -m cnn_lightning"
COMMAND_USAGES = {
    command: {"usage": f"{PROG} {command} [--config FILE] [--model CLASS]\n         [--model.init_args.NAME VALUE] "
              "[--data.NAME VALUE]\n         [--trainer.NAME VALUE] [--ckpt_path RUN|FILE|best|last] [options below]"}
    for command in MODEL_COMMANDS
}  # fmt: skip


def make_cli(args: Sequence[str], *, run: bool = True, resolve_configs: bool = True) -> CNNLightningCLI:
    """The CLI over ``args`` (config names resolved); ``run=False`` only parses and instantiates. A run folder
    reserved for a command that then fails before writing into it is removed again."""
    quiet = args[0] in ("summary", "export") if args else False  # no training: no seed, precision or device notes
    levels = {name: logging.getLogger(name).level for name in ("lightning.pytorch", "lightning.fabric")}
    try:
        for name in levels if quiet else ():
            logging.getLogger(name).setLevel(logging.WARNING)
        return CNNLightningCLI(
            Classifier,
            FashionMNISTDataModule,
            trainer_class=Trainer,
            subclass_mode_model=True,
            seed_everything_default=0,
            trainer_defaults=trainer_defaults(),
            save_config_callback=ConfigPerRun,
            # --trainer.max_epoch is a mistake; each command's usage is its one line, not argparse's ~80 of options.
            parser_kwargs={"exit_on_error": False, "allow_abbrev": False, "prog": PROG, **COMMAND_USAGES},
            args=resolve_config_args(args) if resolve_configs else list(args),
            run=run,
        )
    except BaseException:
        release_unused_folders()
        raise
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
