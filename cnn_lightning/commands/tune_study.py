"""The study behind ``tune``: opened or resumed in any Optuna storage, its trials asked, run as ``fit`` children with
heartbeats and told, until the wanted number is finished over every worker sharing it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import yaml

from cnn_lightning.callbacks.report_to_study import BEST_ATTR, PRUNED_ATTR, SPACE_ATTR, ReportToStudy, make_pruner
from cnn_lightning.commands.report_studies import check_study_file
from cnn_lightning.commands.tune_space import Space, for_people
from cnn_lightning.errors import ConfigError, DiskFullError, disk_full_cause, disk_full_message
from cnn_lightning.process import PARENT_SETTING


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

    if url.startswith("sqlite:///"):
        check_study_file(Path(url.removeprefix("sqlite:///")))
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat, grace_period=3 * heartbeat)
        except Exception as error:
            if disk_full_cause(error) is not None:
                where = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
                raise DiskFullError(disk_full_message("the study's storage", where)) from None
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


def run_study(
    study: Any, space: Space, fit_args: list[str], folder: Path, url: str, *, trials: int, max_refused: int = 3
) -> None:
    """Ask, run and tell trials until ``trials`` are finished over every process sharing the study. A worker whose
    remaining slots are all running elsewhere waits for them rather than leaving: such a trial may still fail, or
    belong to a killed process whose heartbeat has not lapsed yet, and the study must end with ``trials`` finished.
    Failed trials never count, so a space whose settings fit refuses (exit 2) would start trials forever: the study
    stops after ``max_refused`` of them in a row, with fit's reason."""
    import optuna
    from optuna.trial import TrialState

    refused: list[int] = []  # the trials refused in a row, latest last
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
        callback = {"class_path": f"{ReportToStudy.__module__}.{ReportToStudy.__qualname__}", "init_args": reporter}
        extra = [f"--trainer.callbacks+={json.dumps(callback)}"]
        try:
            code = run_fit(study, trial, [*fit_args, *space.overrides(trial.params), *extra], folder, run_name)
        except KeyboardInterrupt:
            study.tell(trial, state=TrialState.FAIL)
            raise
        attrs = _attrs(study, trial.number)
        if code == DiskFullError.exit_code:  # every further trial would fail alike
            study.tell(trial, state=TrialState.FAIL)
            raise DiskFullError(
                disk_full_message(
                    f"trial {trial.number}'s run", folder / run_name, "The study's finished trials are kept."
                )
            )
        refused = [*refused, trial.number] if code == ConfigError.exit_code else []
        if len(refused) >= max_refused:
            study.tell(trial, state=TrialState.FAIL)
            raise ConfigError(
                f"Trials {refused[0]} to {refused[-1]} were all refused by fit (exit 2), so the study stops: "
                f"{_refusal(folder / f'{run_name}.log')} Fix the space {space.source} and run again under "
                "--study_name NEW_NAME (this study keeps its space)."
            )
        if code != 0:
            study.tell(trial, state=TrialState.FAIL)
            print(f"Trial {trial.number} failed (exit {code}); see {folder / run_name}.", flush=True)
        elif PRUNED_ATTR in attrs:
            study.tell(trial, state=TrialState.PRUNED)
            print(f"Trial {trial.number} pruned after epoch {attrs[PRUNED_ATTR]}.", flush=True)
        else:
            study.tell(trial, attrs.get(BEST_ATTR, 0.0))
            accuracy = attrs.get(BEST_ATTR, 0.0)
            print(f"Trial {trial.number}: val/acc {accuracy:.4f} with {for_people(trial.params)}.", flush=True)


def _refusal(log: Path) -> str:
    """The ``error:`` line a refused trial's fit printed, as it printed it."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return f"see {log}."
    found = next((line for line in reversed(lines) if line.startswith("error: ")), None)
    return f"trial {log.stem.removeprefix('trial_').lstrip('0') or '0'} said: {found}" if found else f"see {log}."


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
        env = {**os.environ, PARENT_SETTING: str(os.getpid())}  # the trial ends with the study (process.py)
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    for run in (folder / run_name).glob("version_*"):
        (run / "status.yaml").write_text(yaml.safe_dump({"exit_code": code, "diverged": code == 3}))
    return code
