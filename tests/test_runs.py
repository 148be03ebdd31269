"""Run folders: each run reserves its own before writing anything, even when many start at the same instant."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from jsonargparse import Namespace

from cnn_lightning.commands.config_files import CONFIG_DIRS, resolve_config
from cnn_lightning.commands.run_folders import run_name
from cnn_lightning.errors import ConfigError
from cnn_lightning.runs import load_checkpoint, reserve_run_folder, runs_under
from tests.conftest import REPO


def test_processes_released_at_once_reserve_one_folder_each(tmp_path: Path) -> None:
    """Eight processes wait for one signal, then each reserves a run folder under the same root."""
    start = tmp_path / "start"
    code = (
        "import sys, time; from pathlib import Path; from cnn_lightning.runs import reserve_run_folder\n"
        f"while not Path({str(start)!r}).exists(): time.sleep(0.001)\n"
        f"print(reserve_run_folder(Path({str(tmp_path / 'lightning_logs')!r})).name)"
    )
    workers = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(8)]
    time.sleep(2)  # every worker has imported and is waiting
    start.touch()
    names = [worker.communicate(timeout=60)[0].strip() for worker in workers]
    assert sorted(names) == [f"version_{n}" for n in range(8)]


@pytest.mark.slow
def test_fits_started_together_get_a_folder_each(tmp_path: Path, data_dir: Path) -> None:
    """Three ``fit`` runs launched at once, as a shell loop in the background does: three folders, each with its own
    config.yaml and checkpoint, and no run that takes another's config.yaml for a resume."""
    args = ["fit", "--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.max_steps", "2",
            "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1",
            "--trainer.enable_progress_bar", "false"]  # fmt: skip
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO)}
    runs = [
        subprocess.Popen([sys.executable, "-m", "cnn_lightning", *args], cwd=tmp_path, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]  # fmt: skip
    for run in runs:
        assert run.wait(timeout=300) == 0, run.stderr.read()[-2000:]
    folders = sorted((tmp_path / "lightning_logs" / "lenet").iterdir())
    assert [folder.name for folder in folders] == ["version_0", "version_1", "version_2"]
    for folder in folders:
        assert sorted(path.name for path in folder.glob("config*.yaml")) == ["config.yaml"]
        assert (folder / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize(
    ("configs", "model", "name"),
    [
        (["lenet.yaml"], None, "lenet"),
        (["exercises/7.6-2.2-channels"], None, "exercises-7.6-2.2-channels"),
        (["densenet.yaml", "recipes/densenet.yaml"], None, "densenet+recipes-densenet"),
        ([], "cnn_lightning.models.DenseNet", "densenet"),
        ([], None, "run"),
    ],
)
def test_a_run_is_named_by_its_configs_or_its_model(
    configs: list[str], model: str | None, name: str, tmp_path: Path
) -> None:
    paths = [resolve_config(config) for config in configs]
    config = Namespace(config=paths, model=Namespace(class_path=model) if model else None)
    assert run_name(config, CONFIG_DIRS) == name
    own = tmp_path / "my experiment.yaml"  # a config of the user's own, anywhere: its file name
    assert run_name(Namespace(config=[str(own)], model=None), CONFIG_DIRS) == "my experiment"


def test_runs_of_this_and_earlier_versions_are_found(tmp_path: Path) -> None:
    """``lightning_logs/NAME/version_N`` and an earlier version's ``lightning_logs/version_N`` alike."""
    for run in ("version_0", "lenet/version_0", "densenet/version_3", "tune-x/trial_0000"):
        (tmp_path / run).mkdir(parents=True)
    found = sorted(path.relative_to(tmp_path).as_posix() for path in runs_under(tmp_path))
    assert found == ["densenet/version_3", "lenet/version_0", "version_0"]
    assert reserve_run_folder(tmp_path / "lenet").relative_to(tmp_path).as_posix() == "lenet/version_1"


def test_a_checkpoint_that_would_run_code_is_refused_as_such(tmp_path: Path) -> None:
    """Not called corrupt, and no hint to load it unchecked (torch's own ends "set weights_only to False")."""
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hook": print}, path)
    with pytest.raises(ConfigError) as refused:
        load_checkpoint(path)
    message = str(refused.value)
    assert "holds a Python object beyond tensors and plain values (print)" in message
    assert "corrupt" not in message and "weights_only" not in message
