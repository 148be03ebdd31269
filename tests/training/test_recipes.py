"""The modern training pieces: weight-decay groups, label smoothing, per-step schedules, EMA, and the recipes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import EMAWeightAveraging

from cnn_lightning.commands.fit import make_cli
from cnn_lightning.data.datamodule import FashionMNISTDataModule
from cnn_lightning.errors import ConfigError
from cnn_lightning.models import LeNetBN, ResNet
from cnn_lightning.runs import load_checkpoint
from cnn_lightning.training.optimization import WARMUP_START_FACTOR, divergence_message

RECIPES = ["recipes/lenet_bn", "recipes/resnet", "recipes/densenet", "recipes/googlenet"]


def test_weight_decay_skips_normalization_weights_and_biases() -> None:
    model = ResNet(weight_decay=5e-4, decay_norm_and_bias=False)
    decayed, exempt = model.configure_optimizers().param_groups
    assert decayed["weight_decay"] == 5e-4 and exempt["weight_decay"] == 0.0
    norms = {id(p) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters()}
    biases = {id(p) for name, p in model.named_parameters() if name.endswith(".bias")}
    assert {id(p) for p in exempt["params"]} == norms | biases
    assert all(p.ndim == 4 or p.ndim == 2 for p in decayed["params"])  # convolution and linear weights only
    assert sum(p.numel() for p in decayed["params"] + exempt["params"]) == sum(p.numel() for p in model.parameters())
    (single,) = ResNet(weight_decay=5e-4).configure_optimizers().param_groups  # plain SGD's rule: decay them all
    assert single["weight_decay"] == 5e-4 and len(single["params"]) == len(list(model.parameters()))


def test_label_smoothing_is_the_smoothed_cross_entropy() -> None:
    torch.manual_seed(0)
    logits, labels = torch.randn(8, 10), torch.randint(0, 10, (8,))
    smoothing = 0.1
    loss = LeNetBN(label_smoothing=smoothing).criterion(logits, labels)
    log_p = logits.log_softmax(dim=1)
    target = torch.full_like(log_p, smoothing / 10).scatter_(1, labels[:, None], 1 - smoothing + smoothing / 10)
    assert loss.item() == pytest.approx(-(target * log_p).sum(dim=1).mean().item(), rel=1e-6)
    assert LeNetBN().criterion.label_smoothing == 0.0  # the book's plain cross-entropy by default


class LearningRates(L.Callback):
    """The learning rate each batch starts with (a chunk of steps is one batch) and each optimizer step uses."""

    def __init__(self) -> None:
        self.rates: list[float] = []
        self.step_rates: list[float] = []

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])

    def on_before_optimizer_step(self, trainer: L.Trainer, *args: Any) -> None:
        self.step_rates.append(trainer.optimizers[0].param_groups[0]["lr"])


def _fit(data_dir: Path, tmp_path: Path, model: L.LightningModule, *, epochs: int, batches: int, **trainer: Any):
    rates = LearningRates()
    settings = {"accelerator": "cpu", "logger": False, "enable_progress_bar": False, "num_sanity_val_steps": 0,
                "limit_val_batches": 1, "default_root_dir": tmp_path} | trainer  # fmt: skip
    settings["callbacks"] = [rates, *settings.get("callbacks", [])]
    fit = L.Trainer(max_epochs=epochs, limit_train_batches=batches, **settings)
    fit.fit(model, datamodule=FashionMNISTDataModule(data_dir=str(data_dir), batch_size=32))
    return fit, rates


def test_warmup_then_cosine_steps_after_every_optimizer_step(data_dir: Path, tmp_path: Path) -> None:
    peak, epochs, batches = 0.4, 3, 4
    model = LeNetBN(lr=peak, momentum=0.9, lr_schedule="cosine", warmup_epochs=1)
    _, rates = _fit(data_dir, tmp_path, model, epochs=epochs, batches=batches)
    rates = rates.step_rates
    warmup, total = batches, epochs * batches
    expected = [peak * (WARMUP_START_FACTOR + (1 - WARMUP_START_FACTOR) * step / warmup) for step in range(warmup)]
    expected += [peak * (1 + math.cos(math.pi * (s - warmup) / (total - warmup))) / 2 for s in range(warmup, total)]
    assert rates == pytest.approx(expected, rel=1e-6)  # one value per step, never flat within an epoch


def test_onecycle_counts_optimizer_steps_not_batches(data_dir: Path, tmp_path: Path) -> None:
    """With accumulation 2 the schedule spans the optimizer steps (estimated_stepping_batches), not batches."""
    model = LeNetBN(lr=0.5, lr_schedule="onecycle")
    trainer, rates = _fit(data_dir, tmp_path, model, epochs=2, batches=8, accumulate_grad_batches=2)
    rates = rates.rates
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.total_steps == 8 and trainer.global_step == 8
    assert 0.45 < max(rates) <= 0.5 and rates[0] < 0.05 and rates[-1] < 0.05  # up to the peak lr and down
    assert rates[0] == rates[1]  # the second micro-batch of an accumulated step sees the same rate


def test_a_schedule_needs_a_known_length_and_room_after_warmup(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="warm-up"):
        _fit(data_dir, tmp_path, LeNetBN(lr_schedule="cosine", warmup_epochs=2), epochs=2, batches=2)
    with pytest.raises(ConfigError, match="Nesterov"):
        LeNetBN(nesterov=True)
    with pytest.raises(ConfigError, match=r"is sized to the run, which has no end \(--trainer.max_epochs -1"):
        _fit(data_dir, tmp_path, LeNetBN(lr_schedule="cosine"), epochs=-1, batches=2)  # was an OverflowError


def test_ema_weights_are_what_evaluation_and_checkpoints_use(data_dir: Path, tmp_path: Path) -> None:
    ema = EMAWeightAveraging(decay=0.9)
    model = LeNetBN(lr=0.5, momentum=0.9)
    trainer, _ = _fit(data_dir, tmp_path, model, epochs=1, batches=6, callbacks=[ema], enable_checkpointing=True)
    path = trainer.checkpoint_callback.best_model_path or trainer.checkpoint_callback.last_model_path
    checkpoint = load_checkpoint(path)
    averaged = {name[len("module.") :]: value for name, value in ema._average_model.state_dict().items()}
    stored, trained = checkpoint["state_dict"], checkpoint["current_model_state"]
    weight = "net.conv1.weight" if "net.conv1.weight" in stored else next(k for k in stored if k.endswith("weight"))
    assert torch.equal(stored[weight], averaged[weight])  # the checkpoint's weights are the average ...
    assert not torch.equal(stored[weight], trained[weight])  # ... not the last step's
    assert torch.equal(model.state_dict()[weight], averaged[weight])  # and the model after fit is the average


def test_divergence_advice_names_the_optimizer_and_schedule_in_use(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    base = ["fit", "--config", "lenet_bn.yaml", "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "3",
            "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1", "--trainer.logger", "false",
            "--data.data_dir", str(data_dir), "--trainer.accelerator", "cpu"]  # fmt: skip
    cli = make_cli([*base, "--model.init_args.lr_schedule", "cosine", "--model.init_args.warmup_epochs", "1"])
    advice = divergence_message(cli.model, float("nan"), epoch=1, step=5, batch_idx=2)
    assert "epoch 1, global step 5 (batch 2)" in advice
    assert "--model.init_args.lr 0.1" in advice and "warm-up (1 epochs) then cosine decay" in advice
    assert "--model.init_args.warmup_epochs 2" in advice
    cli = make_cli([*base, "--optimizer", "AdamW", "--optimizer.lr", "0.003"])
    advice = divergence_message(cli.model, float("nan"), epoch=1, step=5, batch_idx=2)
    assert "AdamW" in advice and "--optimizer.lr 0.0003" in advice and "--model.init_args.lr" not in advice


def test_a_config_optimizer_says_what_it_leaves_unused_and_keeps_the_decay_groups(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    cli = make_cli(["fit", "--config", "resnet.yaml", "--optimizer", "AdamW", "--optimizer.weight_decay", "0.05",
                    "--model.init_args.decay_norm_and_bias", "false", "--model.init_args.input_size", "32",
                    "--trainer.max_steps", "1", "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1",
                    "--data.batch_size", "8", "--trainer.logger", "false", "--data.data_dir", str(data_dir),
                    "--trainer.accelerator", "cpu"])  # fmt: skip
    assert "AdamW replaces the model's SGD, so its lr 0.05, momentum 0, weight_decay 0" in caplog.text
    decayed, exempt = cli.trainer.optimizers[0].param_groups
    assert decayed["weight_decay"] == 0.05 and exempt["weight_decay"] == 0.0
    assert type(cli.trainer.optimizers[0]) is torch.optim.AdamW


def test_stacking_a_recipe_keeps_the_first_configs_callbacks(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cli = make_cli(["--config", "densenet.yaml", "--config", "recipes/densenet.yaml",
                    "--data.data_dir", str(data_dir), "--trainer.accelerator", "cpu"], run=False)  # fmt: skip
    names = [type(callback).__name__ for callback in cli.trainer.callbacks]
    assert "AutoMicroBatch" in names and "EMAWeightAveraging" in names


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipes_train_the_books_architecture_unchanged(
    recipe: str, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each recipe builds the book's network (same parameter count as its book config) and runs a step."""
    monkeypatch.chdir(tmp_path)
    book = recipe.split("/")[1]
    parameters = sum(p.numel() for p in make_cli(["--config", book], run=False).model.parameters())
    args = ["fit", "--config", recipe, "--trainer.fast_dev_run", "true", "--data.batch_size", "8",
            "--data.data_dir", str(data_dir), "--trainer.accelerator", "cpu"]  # fmt: skip
    cli = make_cli(args)
    assert sum(p.numel() for p in cli.model.parameters()) == parameters
    assert cli.datamodule.augmentation.is_random and cli.model.hparams.lr_schedule != "constant"
    assert any(isinstance(callback, EMAWeightAveraging) for callback in cli.trainer.callbacks)
