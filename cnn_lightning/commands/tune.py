"""``python -m cnn_lightning tune``: an Optuna study over any fit setting, or one setting over several seeds.

Each trial is an ordinary ``fit`` in a child process (its own TensorBoard run, checkpoints and hparams under the
study's folder), so whatever a trial sets — a GPU memory cap, signal handlers, module state — dies with it, and a
trial that diverges or runs out of memory fails alone. The child reports ``val/acc`` to the study after every
validation (:class:`ReportToStudy`), where Optuna's pruner may stop it. The parent holds the trial: it records
heartbeats, so a study whose process was killed marks that trial failed when the command runs again.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from cnn_lightning.commands.tune_space import Space, for_people, load_space
from cnn_lightning.commands.tune_study import fit_child, open_study, run_study
from cnn_lightning.errors import ConfigError
from cnn_lightning.output_places import check_folder
from cnn_lightning.stopping import install_stop_handlers, stop_announced, stop_exit_code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cnn_lightning tune",
        allow_abbrev=False,
        description="Search fit settings with Optuna (--space), or repeat one setting over seeds (--seeds). Any "
        "other option (--config NAME.yaml, --trainer.max_epochs 2, ...) goes to every trial's fit.",
    )
    parser.add_argument("--space", help="YAML: CLI key → {low, high[, log][, step]} or {choices: [...]}")
    parser.add_argument("--trials", type=int, default=20, help="finished (complete or pruned) trials wanted")
    parser.add_argument("--storage", help="Optuna storage URL (default: sqlite in the study folder)")
    parser.add_argument("--study_name", help="default: the config's name")
    parser.add_argument("--seeds", type=int, nargs="+", help="run the setting once per seed (seed_everything)")
    parser.add_argument("--seed", type=int, help="the TPE sampler's seed (offset by the study's trial count)")
    parser.add_argument("--heartbeat", type=int, default=10, help="seconds; a trial silent 3× this long is dead")
    parser.add_argument("--full_dashboards", action="store_true", help="keep the model graph in every trial")
    parser.add_argument("--max_refused", type=int, default=3, help="stop after this many trials in a row refused")
    return parser


def tune(argv: list[str]) -> None:
    """Search fit settings with Optuna, or repeat one setting over several seeds; one run per trial."""
    args, fit_args = _parser().parse_known_args(argv)
    configs = [fit_args[i + 1] for i, arg in enumerate(fit_args[:-1]) if arg in ("--config", "-c")]
    name = args.study_name or (Path(configs[-1]).stem if configs else "study")
    if args.trials < 1 or args.max_refused < 1:
        flag, value = ("--trials", args.trials) if args.trials < 1 else ("--max_refused", args.max_refused)
        raise ConfigError(f"{flag} must be at least 1, got {value}.")
    if args.seeds and args.space:
        raise ConfigError(
            "--seeds repeats one setting and --space searches many: give one of them (tune the "
            "space first, then repeat best.yaml: tune --config .../best.yaml --seeds 0 1 2 3 4)."
        )
    if importlib.util.find_spec("optuna") is None:
        raise ConfigError("tune needs Optuna. Install it with: pip install -e '.[tune]'")
    # A plain kill (SIGTERM) takes the Ctrl+C path: the running trial is stopped and marked failed, never orphaned.
    install_stop_handlers()
    # Trials skip the model graph (a trace per run); the other dashboards are per epoch and cheap.
    light = [] if args.full_dashboards else ["--trainer.logger.init_args.log_graph", "false"]
    if not any(arg.startswith("--trainer.enable_progress_bar") for arg in fit_args):
        light += ["--trainer.enable_progress_bar", "false"]  # a trial's log is read as text, not redrawn
    if args.seeds and not args.space:
        return repeat_seeds([*fit_args, *light], args.seeds, Path("lightning_logs") / f"seeds-{name}")
    if not args.space:
        raise ConfigError("tune needs --space SPACE.yaml (the settings to search) or --seeds (one setting, repeated).")
    space = load_space(args.space, known_keys(fit_args))
    folder = Path("lightning_logs") / f"tune-{name}"
    check_folder(folder, what="the study", fix="Run tune from a writable folder.")
    folder.mkdir(parents=True, exist_ok=True)
    storage_url = args.storage or f"sqlite:///{folder / 'study.db'}"
    study = open_study(storage_url, name, space, seed=args.seed, heartbeat=args.heartbeat)
    try:
        trial_args = [*fit_args, *light]
        run_study(study, space, trial_args, folder, storage_url, trials=args.trials, max_refused=args.max_refused)
    except KeyboardInterrupt:
        print("\nInterrupted: the running trial is marked failed. Run the same command to continue.", file=sys.stderr)
        stop_announced()
        sys.exit(stop_exit_code() or 130)
    finish(study, space, fit_args, folder)


def known_keys(fit_args: list[str]) -> set[str]:
    """Every dotted key fit accepts with these arguments (the chosen model's own ``init_args`` included)."""
    from cnn_lightning.commands.fit import make_cli

    cli = make_cli([*fit_args, "--trainer.logger", "false"], run=False)
    return set(cli.config.keys())


def repeat_seeds(fit_args: list[str], seeds: list[int], folder: Path) -> None:
    """One setting once per seed (``--seed_everything``: the validation split, ``data.seed``, stays fixed). The
    folder holds one setting: seeds run before are kept only when they ran these same arguments."""
    from cnn_lightning.commands.report import report

    check_folder(folder, what="the seeds' runs", fix="Run tune from a writable folder.")
    folder.mkdir(parents=True, exist_ok=True)
    setting = folder / "setting.json"
    if setting.is_file() and json.loads(setting.read_text()) != fit_args:
        raise ConfigError(
            f"{folder} holds seeds of another setting ({' '.join(json.loads(setting.read_text()))}). Use "
            "--study_name NEW_NAME for this one."
        )
    setting.write_text(json.dumps(fit_args))
    for seed in seeds:
        run_name = f"seed_{seed}"
        if (folder / run_name / "version_0" / "status.yaml").is_file():
            print(f"Seed {seed}: done before, kept ({folder / run_name}).", flush=True)
            continue
        code = fit_child([*fit_args, "--seed_everything", str(seed)], folder, run_name)
        print(f"Seed {seed}: exit {code}.", flush=True)
    report(str(folder), overwrite=True)


# How long a trial trains, not what it trains: best.yaml leaves these out (the config's own length applies).
BUDGET_KEYS = ("max_epochs", "max_steps", "max_time", "limit_train_batches", "limit_val_batches", "limit_test_batches")


def split_budget(fit_args: list[str]) -> tuple[list[str], list[str]]:
    """``fit_args`` parted into the setting and the trials' budget (``--trainer.max_epochs 1`` and the like)."""
    setting, budget, rest = [], [], list(fit_args)
    while rest:
        arg = rest.pop(0)
        key = arg.split("=", 1)[0].removeprefix("--trainer.")
        if key in BUDGET_KEYS:
            budget += [arg] if "=" in arg else [arg, rest.pop(0)] if rest else [arg]
        else:
            setting.append(arg)
    return setting, budget


def finish(study: Any, space: Space, fit_args: list[str], folder: Path) -> None:
    """Print the best trial, write best.yaml (re-runs it with fit --config) and the study's plots."""
    from cnn_lightning.commands.report_studies import write_study_plots

    completed = [t for t in study.get_trials(deepcopy=False) if t.value is not None]
    if not completed:
        print("No trial completed: nothing to write (see the trials' .log files).", flush=True)
        return
    best = study.best_trial
    target = folder / "best.yaml"
    setting, budget = split_budget(fit_args)
    command = [sys.executable, "-m", "cnn_lightning", "fit", *setting, *space.overrides(best.params), "--print_config"]
    printed = subprocess.run(command, capture_output=True, text=True)  # the whole resolved config, as fit saves it
    if printed.returncode != 0:
        raise ConfigError(f"Could not write {target}: {(printed.stderr.strip().splitlines() or ['?'])[-1]}")
    found = for_people(best.params)
    header = f"# Best of study {study.study_name}: trial {best.number}, val/acc {best.value:.4f}, {found}.\n"
    if budget:
        header += f"# Its trials trained with {' '.join(budget)}; not kept here: this file trains at full length.\n"
    target.write_text(header + printed.stdout)
    print(f"Best trial {best.number}: val/acc {best.value:.4f} with {found}.")
    print(f"Re-run it: python -m cnn_lightning fit --config {target}")
    written = write_study_plots(study, folder)
    print(f"Study plots: {', '.join(str(folder / name) for name in written) or 'none'}.", flush=True)
