"""``tune``: real Optuna studies over real fits (SQLite, and PostgreSQL where a server can run), seeds, bad input."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from tests.conftest import SmallDisk, run_cli

SHORT = ["--trainer.max_epochs", "2", "--trainer.limit_train_batches", "12", "--trainer.limit_val_batches", "4",
         "--trainer.limit_test_batches", "2", "--data.batch_size", "64",
         "--trainer.enable_progress_bar", "false"]  # fmt: skip
SPACE = "model.init_args.lr: {choices: [1.0, 1.0e-6]}\n"


def _setup(tmp_path: Path, data_dir: Path) -> list[str]:
    (tmp_path / "space.yaml").write_text(SPACE)
    return ["--config", "lenet_bn.yaml", "--space", "space.yaml", "--data.data_dir", str(data_dir), *SHORT]


def _trials(storage: str, name: str = "lenet_bn") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=storage).get_trials()


def _hparams_columns(events: EventAccumulator) -> set[str]:
    """The hyper-parameter names of a run as TensorBoard's HParams dashboard lists them."""
    found: set[str] = set()
    for content in events.PluginTagToContent("hparams").values():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        if data.HasField("session_start_info"):
            found |= set(data.session_start_info.hparams)
    return found


@pytest.mark.slow
@pytest.mark.slow
def test_a_tiny_study_prunes_writes_the_best_config_and_logs_every_trial(data_dir: Path, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/lightning_logs/tune-lenet_bn/study.db"
    (tmp_path / "lightning_logs" / "tune-lenet_bn").mkdir(parents=True)
    study = optuna.create_study(study_name="lenet_bn", storage=storage, direction="maximize")
    for lr in (1.0, 1.0, 1.0e-6, 1.0):  # a hopeless trial after two good ones: the median pruner must stop it
        study.enqueue_trial({"model.init_args.lr": lr})
    result = run_cli("tune", *_setup(tmp_path, data_dir), "--trials", "4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    trials = _trials(storage)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2 + [TrialState.PRUNED, TrialState.COMPLETE]
    assert trials[2].params["model.init_args.lr"] == 1.0e-6 and trials[0].value > 0.3
    folder = tmp_path / "lightning_logs" / "tune-lenet_bn"
    assert {"optimization_history.png", "best.yaml"} <= {p.name for p in folder.iterdir()}
    for number in (0, 3):  # each trial is an ordinary run, hparams with final metrics included
        events = EventAccumulator(str(folder / f"trial_{number:04d}" / "version_0"))
        events.Reload()
        assert "verdict/val_acc" in events.Tags()["scalars"]
        assert {"lr", "data.batch_size"} <= _hparams_columns(events)  # what HParams shows: sampled and data settings
    rerun = run_cli("fit", "--config", str(folder / "best.yaml"), "--trainer.fast_dev_run", "true", cwd=tmp_path)
    assert rerun.returncode == 0 and "test acc" in rerun.stdout, rerun.stderr[-2000:]
    best = (folder / "best.yaml").read_text()
    assert "Best trial 0: val/acc" in result.stdout and "with lr 1." in result.stdout and "lr: 1.0" in best
    # The trials' budget is named, not kept: the README's follow-up trains lenet_bn.yaml's 10 full epochs.
    assert "# Its trials trained with --trainer.max_epochs 2 --trainer.limit_train_batches 12" in best
    assert "  max_epochs: 10\n" in best and "  limit_train_batches: null\n" in best
    assert "\r" not in (folder / "trial_0000.log").read_text()  # no progress-bar frames in a trial's log


@pytest.mark.slow
@pytest.mark.slow
def test_a_killed_study_continues_and_never_counts_the_interrupted_trial(data_dir: Path, tmp_path: Path) -> None:
    args = [sys.executable, "-m", "cnn_lightning", "tune", *_setup(tmp_path, data_dir), "--trials", "3",
            "--heartbeat", "1"]  # fmt: skip
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    first = subprocess.Popen(args, cwd=tmp_path, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)  # fmt: skip
    log = tmp_path / "lightning_logs" / "tune-lenet_bn" / "trial_0001.log"
    deadline = time.time() + 300
    while not (log.is_file() and "Effective batch size" in log.read_text()) and time.time() < deadline:
        time.sleep(0.5)
    os.killpg(first.pid, signal.SIGKILL)  # the terminal's whole process group, trial included
    first.wait()
    time.sleep(4)  # past the grace period of three missed heartbeats
    result = run_cli("tune", *_setup(tmp_path, data_dir), "--trials", "3", "--heartbeat", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    states = [t.state for t in _trials(f"sqlite:///{tmp_path}/lightning_logs/tune-lenet_bn/study.db")]
    assert states[1] == TrialState.FAIL  # the interrupted trial: marked, not a result
    assert sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states) == 3


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database: CNN_LIGHTNING_TEST_POSTGRES (.ci/run starts one), else a throwaway server here."""
    if url := os.environ.get("CNN_LIGHTNING_TEST_POSTGRES"):
        yield url  # a generator fixture must yield: ``return url`` here errors with "did not yield a value"
        return
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not binaries:
        pytest.skip("no PostgreSQL server: set CNN_LIGHTNING_TEST_POSTGRES or install Debian's postgresql")
    bin_dir, data = binaries[-1].parent, Path(tempfile.mkdtemp(prefix="pgdata-"))  # pytest's tmp is root-only
    as_postgres = []  # PostgreSQL refuses to run as root: root runs it as Debian's postgres user, others as themselves
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:  # a free port, so that two test runs on one machine do not collide
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    steps = ([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
             [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1",
              "-l", str(data / "log"), "-w", "start"])  # fmt: skip
    for step in steps:
        done = subprocess.run([*as_postgres, *step], capture_output=True, text=True)
        if done.returncode != 0:
            shutil.rmtree(data, ignore_errors=True)
            pytest.skip(f"PostgreSQL could not be started here: {(done.stderr or done.stdout).strip()[-300:]}")
    yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
    shutil.rmtree(data, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.slow
def test_two_workers_share_one_study_in_postgresql(data_dir: Path, tmp_path: Path, postgres_url: str) -> None:
    name = f"two_workers_{os.getpid()}"
    args = [sys.executable, "-m", "cnn_lightning", "tune", *_setup(tmp_path, data_dir), "--trials", "4",
            "--storage", postgres_url, "--study_name", name]  # fmt: skip
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    workers = [subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True) for _ in range(2)]  # fmt: skip
    outputs = [worker.communicate(timeout=600)[0] for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), outputs
    trials = _trials(postgres_url, name)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 4 and len({t.number for t in trials}) == len(trials)  # together 4, none twice
    ran = [
        {int(line.split()[1].rstrip(":")) for line in out.splitlines() if line.startswith("Trial ")} for out in outputs
    ]
    assert ran[0] and ran[1] and not ran[0] & ran[1], ran  # both workers ran trials, no trial ran in both
    assert {t.number for t in finished} <= ran[0] | ran[1]


@pytest.mark.slow
def test_seeds_give_a_mean_and_std_row(data_dir: Path, tmp_path: Path) -> None:
    result = run_cli("tune", "--config", "lenet_bn.yaml", "--seeds", "0", "1", "2",
                     "--data.data_dir", str(data_dir), *SHORT, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    repeated = result.stdout.split("Repeated settings")[1]
    row = next(line for line in repeated.splitlines() if line.startswith("| seed_0/version_0 "))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1:4] == ["LeNetBN", "3", "0"] and all("±" in cell and "–" in cell for cell in cells[4:])
    assert (tmp_path / "lightning_logs" / "seeds-lenet_bn" / "report" / "report.md").is_file()
    other = run_cli("tune", "--config", "lenet_bn.yaml", "--seeds", "5", "--model.init_args.lr", "0.5",
                    "--data.data_dir", str(data_dir), *SHORT, cwd=tmp_path)  # fmt: skip
    assert other.returncode == 2 and "holds seeds of another setting" in other.stderr  # never mixed into the row
    assert not (tmp_path / "lightning_logs" / "seeds-lenet_bn" / "seed_5").exists()


@pytest.mark.slow  # a subprocess per space, about 8 s each: the full suite runs them
@pytest.mark.parametrize(
    ("space", "message"),
    [
        ("model.init_args.lrr: {low: 0.1, high: 1}\n", "Unknown key model.init_args.lrr"),
        ("model.init_args.lr: {low: 1.0, high: 0.1}\n", "empty or inverted"),
        ("model.init_args.lr: {low: 0, high: 1, log: true}\n", "log range needs low > 0"),
        ("data.batch_size: {choices: []}\n", "choices is empty"),
        ("model.init_args.lr: {choices: [0.1, 0.2}\n", "space.yaml:1:40 is not valid YAML: while parsing a flow"),
    ],
)
def test_bad_spaces_are_one_line_and_exit_2(space: str, message: str, tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text(space)
    result = run_cli("tune", "--config", "lenet.yaml", "--space", "space.yaml", cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "lightning_logs" / "tune-lenet" / "study.db").exists()  # nothing started


def test_seeds_and_a_space_together_are_refused(tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text(SPACE)
    result = run_cli("tune", "--config", "lenet.yaml", "--space", "space.yaml", "--seeds", "0", "1", cwd=tmp_path)
    assert result.returncode == 2 and "give one of them" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_bad_storage_and_another_space_leave_the_study_untouched(tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text(SPACE)
    result = run_cli("tune", "--config", "lenet.yaml", "--space", "space.yaml",
                     "--storage", "postgresql://nobody@127.0.0.1:1/none", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2 and "Cannot open the storage" in result.stderr and "Traceback" not in result.stderr
    storage = f"sqlite:///{tmp_path}/other.db"
    optuna.create_study(study_name="lenet", storage=storage).set_user_attr("space", '{"other": 1}')
    result = run_cli("tune", "--config", "lenet.yaml", "--space", "space.yaml", "--storage", storage, cwd=tmp_path)
    assert result.returncode == 2 and "searches another space" in result.stderr
    study = optuna.load_study(study_name="lenet", storage=storage)
    assert study.user_attrs["space"] == '{"other": 1}' and not study.trials


@pytest.mark.slow  # whole CLI processes or fits, about 10 s: the full suite runs it
def test_a_study_on_a_full_disk_is_one_line(tmp_path: Path, small_disk: SmallDisk) -> None:
    (tmp_path / "space.yaml").write_text(SPACE)
    small_disk.fill()
    storage = f"sqlite:///{small_disk.root}/study.db"
    result = run_cli("tune", "--config", "lenet.yaml", "--space", "space.yaml", "--storage", storage, cwd=tmp_path)
    assert result.returncode == 4, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"error: No space left on device: the study's storage could not be written to {small_disk.root}"
    )
    assert "Traceback" not in result.stderr


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the trial's process through /proc")
def test_a_trial_ends_with_its_study_when_the_study_is_killed(data_dir: Path, tmp_path: Path) -> None:
    """``kill -9`` of ``tune`` alone: its trial's ``fit`` must not train on as an orphan."""
    args = [sys.executable, "-m", "cnn_lightning", "tune", *_setup(tmp_path, data_dir), "--trials", "1",
            "--trainer.max_epochs", "200"]  # fmt: skip
    study = subprocess.Popen(args, cwd=tmp_path, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    log = tmp_path / "lightning_logs" / "tune-lenet_bn" / "trial_0000.log"
    deadline = time.time() + 300
    while not (log.is_file() and "Effective batch size" in log.read_text()) and time.time() < deadline:
        time.sleep(0.5)
    stats = (path.read_text() for path in Path("/proc").glob("[0-9]*/stat") if _alive(int(path.parent.name)))
    trials = [int(stat.split()[0]) for stat in stats if int(stat.rsplit(")", 1)[1].split()[1]) == study.pid]
    assert trials, "the trial's fit was not found"
    study.kill()
    study.wait()
    deadline = time.time() + 60
    while any(_alive(pid) for pid in trials) and time.time() < deadline:
        time.sleep(0.5)
    assert not any(_alive(pid) for pid in trials), "the trial trains on without its study"
