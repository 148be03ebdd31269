"""Where a command's run writes, set in the CLI's config before anything is built: a new run in
``lightning_logs/NAME/version_N``, NAME its config's (``lenet``, ``exercises-7.6-2.2-channels``) or its model's, so
that TensorBoard's run list tells LeNet from DenseNet; a fit resumed from a run's
checkpoint goes on in that run's folder; validate and test on a checkpoint log into its run under tags of their own;
predict and export write only their files, into the run's ``predict/`` and ``export/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jsonargparse import Namespace

from cnn_lightning.loggers.tensorboard import TensorBoardLogger
from cnn_lightning.output_places import check_folder
from cnn_lightning.runs import run_folder

DEFAULT_LOGGER_NAME = "lightning_logs"  # the TensorBoard logger's name the CLI sets; another one is the user's
# The commands whose runs write a run folder (logs, checkpoints, config.yaml); summary and export write none.
LOGGING_COMMANDS = ("fit", "validate", "test", "predict")


def run_name(config: Namespace, config_dirs: tuple[Path, ...]) -> str:
    """A new run's name: its configs' names (``recipes-densenet`` for configs/recipes/densenet.yaml, joined by ``+``
    when several stack), else its model's class in lower case, else ``run``."""
    names = [_config_name(Path(str(path)), config_dirs) for path in config.get("config") or []]
    if names:
        return "+".join(dict.fromkeys(names))
    model = config.get("model")
    class_path = model.get("class_path") if isinstance(model, Namespace) else None
    return str(class_path).rsplit(".", 1)[-1].lower() if class_path else "run"


def _config_name(path: Path, config_dirs: tuple[Path, ...]) -> str:
    for folder in config_dirs:
        try:
            return path.resolve().relative_to(folder.resolve()).with_suffix("").as_posix().replace("/", "-")
        except ValueError:
            continue
    return path.stem


def named_runs(logger: Namespace) -> bool:
    """Whether new runs go into a folder named after them: under the CLI's own logger name, not one the user set."""
    return logger.init_args.get("name") == DEFAULT_LOGGER_NAME


def logger_root(logger: Any) -> Path:
    """``save_dir/name`` of the configured TensorBoard logger: the folder holding the runs."""
    if isinstance(logger, Namespace) and logger.get("init_args"):
        return Path(logger.init_args.get("save_dir") or ".") / (logger.init_args.get("name") or DEFAULT_LOGGER_NAME)
    return Path(DEFAULT_LOGGER_NAME)


NEW_RUN_FIX = (
    "Run the command from a writable folder, or set --trainer.logger.init_args.save_dir (without a logger: "
    "--trainer.default_root_dir) to one."
)


def run_place(trainer: Namespace) -> Path:
    """Where a command's run writes its logs, checkpoints and config: the logger's ``version_N`` (its root while the
    version is still to be reserved), else the trainer's ``default_root_dir``."""
    logger = trainer.get("logger")
    if is_tensorboard(logger):
        args = logger.init_args
        root = Path(args.get("save_dir") or ".") / (args.get("name") if args.get("name") is not None else "")
        version = args.get("version")
        return root if version is None else root / (f"version_{version}" if isinstance(version, int) else version)
    return Path(trainer.get("default_root_dir") or DEFAULT_LOGGER_NAME)


def check_run_place(trainer: Namespace) -> None:
    """Refuse, before anything is written, a run place that cannot take the run's files (output_places)."""
    place = run_place(trainer)
    # A run resumed or evaluated in its own folder, or predicted into its predict/ (a new run's place is no run).
    run = next((folder for folder in (place, place.parent) if (folder / "checkpoints").is_dir()), None)
    fix = f"Copy the run to a writable place (cp -r {run} DIR) and pass --ckpt_path DIR." if run else NEW_RUN_FIX
    check_folder(place, what="the run's logs and checkpoints", fix=fix)


def continue_in_run_folder(config: Namespace, checkpoint: Path, log_root: Path) -> None:
    """A checkpoint inside ``log_root/NAME/version_N/checkpoints`` (or an earlier version's
    ``log_root/version_N``) resumes that run: same folder, continuous curves."""
    run = checkpoint.resolve().parent.parent
    logger = config.trainer.get("logger")
    if logger is False and not config.trainer.get("default_root_dir") and run_folder(checkpoint) is not None:
        config.trainer.default_root_dir = str(run_folder(checkpoint))  # no logger: continue in the run's folder
    if not is_tensorboard(logger):
        return
    if not (run.name.startswith("version_") and run.name[8:].isdigit()):
        return
    if run.parent == log_root.resolve():
        logger.init_args.version = int(run.name[8:])
    elif run.parent.parent == log_root.resolve():
        logger.init_args.version = f"{run.parent.name}/{run.name}"


def log_into(config: Namespace, run: Path, subcommand: str) -> None:
    """Where a command on a run's checkpoint writes: validate and test log into the run itself, under tags of their
    own (``verdict_eval_test/acc``: :mod:`cnn_lightning.loggers.tags`), so that TensorBoard shows one run with its
    evaluations beside its curves and no second graph; predict and export write their files into ``run/predict``
    and ``run/export`` and log nothing."""
    logger = config.trainer.get("logger")
    if subcommand in ("validate", "test") and is_tensorboard(logger):
        logger.init_args.save_dir, logger.init_args.name, logger.init_args.version = str(run.parent), "", run.name
        # The project's logger names the evaluation's tags, whichever TensorBoardLogger the run's config names.
        logger.class_path = f"{TensorBoardLogger.__module__}.{TensorBoardLogger.__name__}"
        logger.init_args.evaluation, logger.init_args.log_graph = True, False
        return
    config.trainer.logger = False
    if not config.trainer.get("default_root_dir"):
        config.trainer.default_root_dir = str(run / subcommand)


def is_tensorboard(logger: Any) -> bool:
    return isinstance(logger, Namespace) and str(logger.get("class_path", "")).endswith("TensorBoardLogger")
