"""The Lightning CLI: config names, model choice, the resize link, fast_dev_run of every config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnn_lightning.commands.config_files import available_configs, resolve_config, resolve_config_args
from cnn_lightning.commands.fit import make_cli
from cnn_lightning.errors import ConfigError
from tests.conftest import REPO, run_cli
from tests.test_errors import fails

BOOK_CONFIGS = ["lenet", "lenet_bn", "alexnet", "vgg", "nin", "googlenet", "resnet", "densenet"]


def test_config_names_resolve_to_the_repo_configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert Path(resolve_config("densenet.yaml")) == REPO / "configs" / "densenet.yaml"
    assert Path(resolve_config("densenet")) == REPO / "configs" / "densenet.yaml"
    (tmp_path / "densenet.yaml").write_text("trainer: {max_epochs: 1}\n")
    assert resolve_config("densenet.yaml") == "densenet.yaml"  # a file in the working directory wins
    assert resolve_config_args(["fit", "--config=lenet"])[1] == "--config=" + str(REPO / "configs" / "lenet.yaml")
    assert set(BOOK_CONFIGS) <= {name.removesuffix(".yaml") for name in available_configs()}


def test_unknown_config_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"densenet\.yaml.*lenet\.yaml"):
        resolve_config("densnet.yaml")
    result = run_cli("fit", "--config", "densnet.yaml")
    assert result.returncode == 2
    assert "Config 'densnet.yaml' not found" in result.stderr and "densenet.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_print_config_shows_the_book_settings() -> None:
    result = run_cli("fit", "--config", "densenet.yaml", "--print_config")
    assert result.returncode == 0, result.stderr
    for expected in ("class_path: cnn_lightning.models.DenseNet", "lr: 0.1", "input_size: 96", "max_epochs: 10"):
        assert expected in result.stdout


def test_resize_follows_the_model(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cli = make_cli(["--config", "densenet.yaml", "--data.data_dir", str(data_dir)], run=False)
    assert cli.datamodule.resize == cli.model.input_size == 96
    cli = make_cli(["--model", "LeNet", "--model.input_size", "32", "--data.data_dir", str(data_dir)], run=False)
    assert type(cli.model).__name__ == "LeNet" and cli.model.hparams.lr == 0.9  # the book's lr is the default
    assert cli.datamodule.resize == 32


@pytest.mark.parametrize("config", BOOK_CONFIGS)
def test_fast_dev_run_every_config(
    config: str, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """One training and one validation batch of each book config (batch 16 to keep CI short), then the test pass."""
    monkeypatch.chdir(tmp_path)
    make_cli(
        [
            "fit",
            "--config",
            f"{config}.yaml",
            "--trainer.fast_dev_run",
            "true",
            "--data.batch_size",
            "16",
            "--data.data_dir",
            str(data_dir),
            "--trainer.accelerator",
            "cpu",
        ]
    )
    closing, speed = capsys.readouterr().out.strip().splitlines()[-2:]
    assert closing.startswith("loss ") and "train acc" in closing and "test acc" in closing
    assert "examples/sec on cpu" in speed


@pytest.mark.parametrize(
    "config",
    [  # the DenseNets' steps at 96 px take about 10 s each: the full suite runs them
        pytest.param("densenet", marks=pytest.mark.slow),
        pytest.param("densenet_book", marks=pytest.mark.slow),
        "lenet_bn_scratch",
    ],
)
def test_configs_start_a_logged_run(
    config: str, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fast_dev_run turns the logger off; a real start also traces the graph for TensorBoard and saves hparams."""
    monkeypatch.chdir(tmp_path)
    make_cli(["fit", "--config", f"{config}.yaml", "--trainer.max_steps", "1", "--data.batch_size", "8",
              "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1",
              "--trainer.num_sanity_val_steps", "0",
              "--data.data_dir", str(data_dir), "--trainer.accelerator", "cpu"])  # fmt: skip
    (run,) = (tmp_path / "lightning_logs").glob("*/version_*")
    assert run.relative_to(tmp_path).as_posix() == f"lightning_logs/{config}/version_0"  # named by its config
    assert (run / "checkpoints" / "last.ckpt").is_file() and list(run.glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_compiled_model_starts_a_logged_run(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A compiled network cannot be traced for TensorBoard's graph; the graph takes its plain forward."""
    monkeypatch.chdir(tmp_path)
    make_cli(["fit", "--config", "lenet.yaml", "--model.init_args.compile", "true", "--trainer.max_steps", "2",
              "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1", "--data.data_dir",
              str(data_dir), "--trainer.accelerator", "cpu"])  # fmt: skip
    run = next((tmp_path / "lightning_logs").glob("lenet/version_*"))
    assert (run / "checkpoints" / "last.ckpt").is_file()


def test_one_command_system_lists_and_parses_every_command(capsys, tmp_path: Path) -> None:
    from cnn_lightning.__main__ import main
    from cnn_lightning.commands import MODEL_COMMANDS, RUN_COMMANDS

    main(["--help"])
    listing = capsys.readouterr().out
    assert all(f"  {command} " in listing for command in [*MODEL_COMMANDS, *RUN_COMMANDS])
    for command, option in (
        ("summary", "--depth"),
        ("report", "--overwrite"),
        ("fit", "--ckpt_path"),
        ("tune", "--space"),
    ):
        with pytest.raises(SystemExit) as stop:
            main([command, "--help"])
        assert stop.value.code == 0 and option in capsys.readouterr().out, command
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    shown = capsys.readouterr().out
    usage, summary = shown.split("\n\n")[:2]
    assert usage.startswith("usage: python -m cnn_lightning fit [--config FILE]") and "--ckpt_path" in usage
    assert all(len(line) <= 80 for line in usage.splitlines()) and summary.startswith("Train the model, then test it")
    assert "resume a stopped or finished run in place" in shown and "hpc" not in shown  # the project's ckpt_path
    assert "Lightning's Trainer: devices, precision, epochs" in shown and "LightningCLI parses" not in shown
    options = tmp_path / "report.yaml"  # every command takes --config, the run commands too
    options.write_text(f"out: {tmp_path / 'out'}\n")
    with pytest.raises(SystemExit) as stop:
        main(["report", str(tmp_path / "no-runs"), "--config", str(options)])
    assert stop.value.code == 2 and "No folder" in capsys.readouterr().err


def test_limit_batches_count_as_on_the_trainer(data_dir: Path) -> None:
    """``--trainer.limit_val_batches 1`` is one batch, as ``Trainer(limit_val_batches=1)`` is (Lightning's
    annotation put float first, so the command line read it as 1.0: every batch); ``1.0`` and ``0.5`` stay fractions."""
    args = ["--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.limit_train_batches", "0.5"]
    cli = make_cli([*args, "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1.0"], run=False)
    limits = (cli.trainer.limit_train_batches, cli.trainer.limit_val_batches, cli.trainer.limit_test_batches)
    assert limits == (0.5, 1, 1.0)
    assert [type(limit) for limit in limits] == [float, int, float]


SHORT = ("--trainer.max_steps", "2", "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1")


@pytest.mark.parametrize(
    ("flag", "value", "named"),
    [
        ("--trainer.accelerator", "gpu", "--trainer.accelerator cpu"),
        ("--trainer.devices", "0", "--trainer.devices"),
        ("--trainer.num_nodes", "0", "--trainer.num_nodes"),
    ],
)
def test_trainer_settings_lightning_refuses_are_one_line(capsys, flag: str, value: str, named: str) -> None:
    if value == "gpu" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    message = fails(capsys, "fit", "--config", "lenet.yaml", flag, value)
    assert message.startswith("error: Lightning refused the trainer settings:") and named in message


@pytest.mark.slow
def test_a_checkpoint_never_silently_overrides_a_setting(data_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    make_cli(["fit", "--config", "lenet.yaml", "--data.data_dir", str(data_dir), *SHORT])
    capsys.readouterr()
    base = (
        "test",
        "--config",
        "lenet.yaml",
        "--ckpt_path",
        "lightning_logs/lenet/version_0",
        "--data.data_dir",
        str(data_dir),
    )
    message = fails(capsys, *base, "--model.init_args.input_size", "32")
    assert "--model.init_args.input_size 32 (checkpoint: 28)" in message and "other shapes" in message
    done = run_cli(*base, "--model.init_args.lr", "0.3", "--trainer.limit_test_batches", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "The checkpoint's lr 0.9 replaces --model.init_args.lr 0.3." in done.stdout + done.stderr


def test_runs_without_a_logger_keep_their_files_in_a_run_folder(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        make_cli(
            ["fit", "--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.logger", "false", *SHORT]
        )
    make_cli(["fit", "--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.fast_dev_run", "true"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lightning_logs"]  # nothing in the working directory
    for run in ("version_0", "version_1"):  # one folder each; neither calls itself a resume
        files = sorted(p.name for p in (tmp_path / "lightning_logs" / "lenet" / run).iterdir())
        assert files == ["checkpoints", "config.yaml"], files
    assert len(list((tmp_path / "lightning_logs" / "lenet").iterdir())) == 2  # fast_dev_run left nothing


@pytest.mark.slow
def test_the_first_screen_carries_no_known_noise(data_dir: Path, tmp_path: Path) -> None:
    done = run_cli("fit", "--config", "lenet.yaml", "--data.data_dir", str(data_dir), *SHORT, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    for noise in ("torch.jit.trace", "LeafSpec", "litlogger", "not supported by the model summary"):
        assert noise not in done.stdout + done.stderr, noise


@pytest.mark.parametrize(
    ("option", "named"),
    [
        ("--trainer.max_epoch", "Unknown option --trainer.max_epoch for fit. Did you mean --trainer.max_epochs"),
        ("--data.batchsize", "Did you mean --data.batch_size"),
        ("--model.init_args.lrr", "Did you mean --model.init_args.lr?"),
    ],
)
def test_a_near_miss_is_refused_and_the_option_named(option: str, named: str, capsys) -> None:
    """No prefix matching (``--trainer.max_epoch 3`` once trained 3 epochs silently): the nearest options instead."""
    assert named in fails(capsys, "fit", "--config", "lenet.yaml", option, "3")
