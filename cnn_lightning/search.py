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
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import yaml

from cnn_lightning.errors import ConfigError
from cnn_lightning.search_space import Space, load_space

PRUNED_ATTR, BEST_ATTR, SPACE_ATTR = "pruned_at_epoch", "best_val_acc", "space"


class ReportToStudy(L.Callback):
    """Reports each validation's ``val/acc`` to trial ``trial_number`` of an Optuna study (the validation split,
    never the test set); stops the fit when the study's pruner says so. Added to trials by ``tune``."""

    def __init__(self, storage: str, study_name: str, trial_number: int) -> None:
        self.storage, self.study_name, self.trial_number = storage, study_name, trial_number
        self._trial: Any = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        import optuna

        if not trainer.is_global_zero or self._trial is not None:  # one reporter per trial: rank 0, loaded once
            return
        study = optuna.load_study(study_name=self.study_name, storage=self.storage, pruner=make_pruner())
        trial_id = next(t._trial_id for t in study.get_trials(deepcopy=False) if t.number == self.trial_number)
        self._trial = optuna.trial.Trial(study, trial_id)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or "val/acc" not in trainer.callback_metrics:
            return
        prune = False
        if trainer.is_global_zero:
            accuracy, epoch = float(trainer.callback_metrics["val/acc"]), trainer.current_epoch
            self._trial.report(accuracy, epoch)
            best = max(accuracy, self._trial.user_attrs.get(BEST_ATTR, 0.0))
            self._trial.set_user_attr(BEST_ATTR, best)
            if prune := self._trial.should_prune():
                self._trial.set_user_attr(PRUNED_ATTR, epoch)
        # Lightning does not reduce should_stop across processes: every rank must stop together, or DDP hangs.
        trainer.should_stop = trainer.should_stop or trainer.strategy.broadcast(prune)


def make_pruner() -> Any:
    """The study's pruner, built alike in the parent and in each trial (Optuna keeps pruners out of storage): a
    trial below the median of the finished trials at the same epoch stops, once two trials have finished."""
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)


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
    return parser


def tune(argv: list[str]) -> None:
    """Search fit settings with Optuna, or repeat one setting over several seeds; one run per trial."""
    args, fit_args = _parser().parse_known_args(argv)
    configs = [fit_args[i + 1] for i, arg in enumerate(fit_args[:-1]) if arg in ("--config", "-c")]
    name = args.study_name or (Path(configs[-1]).stem if configs else "study")
    if args.trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {args.trials}.")
    if args.seeds and args.space:
        raise ConfigError(
            "--seeds repeats one setting and --space searches many: give one of them (tune the "
            "space first, then repeat best.yaml: tune --config .../best.yaml --seeds 0 1 2 3 4)."
        )
    if importlib.util.find_spec("optuna") is None:
        raise ConfigError("tune needs Optuna. Install it with: pip install -e '.[tune]'")
    # A plain kill (SIGTERM) takes the Ctrl+C path: the running trial is stopped and marked failed, never orphaned.
    signal.signal(signal.SIGTERM, _interrupt)
    # Trials skip the model graph (a trace per run); the other dashboards are per epoch and cheap.
    light = [] if args.full_dashboards else ["--trainer.logger.init_args.log_graph", "false"]
    if args.seeds and not args.space:
        return repeat_seeds([*fit_args, *light], args.seeds, Path("lightning_logs") / f"seeds-{name}")
    if not args.space:
        raise ConfigError("tune needs --space SPACE.yaml (the settings to search) or --seeds (one setting, repeated).")
    space = load_space(args.space, fit_args)
    folder = Path("lightning_logs") / f"tune-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    storage_url = args.storage or f"sqlite:///{folder / 'study.db'}"
    study = open_study(storage_url, name, space, seed=args.seed, heartbeat=args.heartbeat)
    try:
        run_study(study, space, [*fit_args, *light], folder, storage_url, trials=args.trials)
    except KeyboardInterrupt:
        print("\nInterrupted: the running trial is marked failed. Run the same command to continue.", file=sys.stderr)
        sys.exit(130)
    finish(study, space, fit_args, folder)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def open_study(url: str, name: str, space: Space, *, seed: int | None, heartbeat: int) -> Any:
    """The study ``name`` in ``url`` (created if new), refused when it was made with another space."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # The heartbeat API is marked experimental and meant for study.optimize; ask/tell around a child needs it too.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    storage = _connect(url, heartbeat)
    names = {summary.study_name for summary in optuna.get_all_study_summaries(storage)}
    existing = 0
    if name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        stored = study.user_attrs.get(SPACE_ATTR)
        if stored is not None and stored != space.as_json():
            raise ConfigError(
                f"Study '{name}' in {url} searches another space ({stored}). Use --study_name NEW_NAME, or the "
                "space it was made with."
            )
        existing = len(study.trials)
    # Offset by the trials so far: a resumed study, or a second worker joining, does not redraw the same points.
    sampler = optuna.samplers.TPESampler(seed=None if seed is None else seed + existing)
    pruner = make_pruner()
    study = optuna.create_study(
        study_name=name, storage=storage, direction="maximize", sampler=sampler, pruner=pruner, load_if_exists=True
    )
    study.set_user_attr(SPACE_ATTR, space.as_json())
    return study


def _connect(url: str, heartbeat: int, attempts: int = 3) -> Any:
    """Optuna's RDBStorage at ``url``; workers starting together on a new database race to create its tables,
    so a failure is retried before it is reported."""
    import optuna

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat, grace_period=3 * heartbeat)
        except Exception as error:
            if attempt == attempts - 1:
                reason = str(error).strip().splitlines()[0][:200]
                raise ConfigError(
                    f"Cannot open the storage {url}: {reason}. Check --storage (host, port, user)."
                ) from None
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")


def _counts(study: Any) -> tuple[int, int]:
    """(finished, running) trials: finished means complete or pruned; failed ones never count."""
    from optuna.trial import TrialState

    states = [trial.state for trial in study.get_trials(deepcopy=False)]
    finished = sum(state in (TrialState.COMPLETE, TrialState.PRUNED) for state in states)
    return finished, states.count(TrialState.RUNNING)


def _ahead_of(study: Any, number: int) -> int:
    """Trials that hold a slot before trial ``number``: finished ones, and running ones asked for earlier."""
    from optuna.trial import TrialState

    return sum(
        t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (t.state == TrialState.RUNNING and t.number < number)
        for t in study.get_trials(deepcopy=False)
    )


def run_study(study: Any, space: Space, fit_args: list[str], folder: Path, url: str, *, trials: int) -> None:
    """Ask, run and tell trials until ``trials`` are finished over every process sharing the study. A worker whose
    remaining slots are all running elsewhere waits for them rather than leaving: such a trial may still fail, or
    belong to a killed process whose heartbeat has not lapsed yet, and the study must end with ``trials`` finished."""
    import optuna
    from optuna.trial import TrialState

    while True:
        optuna.storages.fail_stale_trials(study)  # a killed process's trial: FAIL, never a result
        finished, running = _counts(study)
        if finished >= trials:
            break
        if finished + running >= trials:
            time.sleep(2)  # one query per pause: cheap next to any trial
            continue
        trial = study.ask(space.distributions)
        if _ahead_of(study, trial.number) >= trials:  # workers asked at once for the last slots: lower numbers win
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=TrialState.FAIL)
            continue
        run_name = f"trial_{trial.number:04d}"
        reporter = {"storage": url, "study_name": study.study_name, "trial_number": trial.number}
        callback = {"class_path": f"{__name__}.ReportToStudy", "init_args": reporter}
        extra = [f"--trainer.callbacks+={json.dumps(callback)}"]
        try:
            code = run_fit(study, trial, [*fit_args, *space.overrides(trial.params), *extra], folder, run_name)
        except KeyboardInterrupt:
            study.tell(trial, state=TrialState.FAIL)
            raise
        attrs = _attrs(study, trial.number)
        if code != 0:
            study.tell(trial, state=TrialState.FAIL)
            print(f"Trial {trial.number} failed (exit {code}); see {folder / run_name}.", flush=True)
        elif PRUNED_ATTR in attrs:
            study.tell(trial, state=TrialState.PRUNED)
            print(f"Trial {trial.number} pruned after epoch {attrs[PRUNED_ATTR]}.", flush=True)
        else:
            study.tell(trial, attrs.get(BEST_ATTR, 0.0))
            print(f"Trial {trial.number}: val/acc {attrs.get(BEST_ATTR, 0.0):.4f} with {trial.params}.", flush=True)


def _attrs(study: Any, number: int) -> dict[str, Any]:
    return next(t.user_attrs for t in study.get_trials(deepcopy=True) if t.number == number)


def run_fit(study: Any, trial: Any, args: list[str], folder: Path, run_name: str) -> int:
    """One ``fit`` child into ``folder/run_name/version_0``, its heartbeat recorded while it runs."""
    stop = threading.Event()
    storage, trial_id = study._storage, trial._trial_id

    def beat() -> None:
        while not stop.wait(storage.get_heartbeat_interval() or 10):
            storage.record_heartbeat(trial_id)

    storage.record_heartbeat(trial_id)
    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        return fit_child(args, folder, run_name)
    finally:
        stop.set()


def fit_child(args: list[str], folder: Path, run_name: str) -> int:
    """Run ``python -m cnn_lightning fit ARGS`` logging into ``folder/run_name``; write its exit code beside it."""
    logger = ["--trainer.logger.init_args.save_dir", str(folder), "--trainer.logger.init_args.name", run_name]
    command = [sys.executable, "-m", "cnn_lightning", "fit", *args, *logger]
    with open(folder / f"{run_name}.log", "w") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy()).returncode
    for run in (folder / run_name).glob("version_*"):
        (run / "status.yaml").write_text(yaml.safe_dump({"exit_code": code, "diverged": code == 3}))
    return code


def repeat_seeds(fit_args: list[str], seeds: list[int], folder: Path) -> None:
    """One setting once per seed (``--seed_everything``: the validation split, ``data.seed``, stays fixed). The
    folder holds one setting: seeds run before are kept only when they ran these same arguments."""
    from cnn_lightning.report import report

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


def finish(study: Any, space: Space, fit_args: list[str], folder: Path) -> None:
    """Print the best trial, write best.yaml (re-runs it with fit --config) and the study's plots."""
    from cnn_lightning.study_report import write_study_plots

    completed = [t for t in study.get_trials(deepcopy=False) if t.value is not None]
    if not completed:
        print("No trial completed: nothing to write (see the trials' .log files).", flush=True)
        return
    best = study.best_trial
    target = folder / "best.yaml"
    command = [sys.executable, "-m", "cnn_lightning", "fit", *fit_args, *space.overrides(best.params), "--print_config"]
    printed = subprocess.run(command, capture_output=True, text=True)  # the whole resolved config, as fit saves it
    if printed.returncode != 0:
        raise ConfigError(f"Could not write {target}: {(printed.stderr.strip().splitlines() or ['?'])[-1]}")
    header = f"# Best of study {study.study_name}: trial {best.number}, val/acc {best.value:.4f}, {best.params}\n"
    target.write_text(header + printed.stdout)
    print(f"Best trial {best.number}: val/acc {best.value:.4f} with {best.params}.")
    print(f"Re-run it: python -m cnn_lightning fit --config {target}")
    written = write_study_plots(study, folder)
    print(f"Study plots: {', '.join(str(folder / name) for name in written) or 'none'}.", flush=True)
