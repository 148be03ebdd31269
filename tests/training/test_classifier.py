"""A real LeNet training on the real data through the CLI: it learns, and TensorBoard gets every scalar."""

from __future__ import annotations

import collections
import copy
import traceback
from pathlib import Path

import lightning as L
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.overrides import TorchFunctionMode
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from cnn_lightning.commands.fit import make_cli
from cnn_lightning.data.resident_batches import resize_batch
from cnn_lightning.models import LeNet, ResNet
from cnn_lightning.scratch.shapes import training_flops

EXPECTED_SCALARS = {
    "train/loss",
    "train/acc",
    "val/loss",
    "val/acc",
    "verdict_test/acc",
    "train/lr-SGD",
    "train/epoch",
    "train/device/samples_per_sec",
}


@pytest.mark.slow
@pytest.mark.slow
def test_lenet_learns_and_logs(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    cli = make_cli(
        [
            "fit",
            "--config",
            "lenet.yaml",
            "--trainer.max_epochs",
            "3",
            "--data.data_dir",
            str(data_dir),
            "--trainer.accelerator",
            "cpu",
        ]
    )
    closing = capsys.readouterr().out.strip().splitlines()[-2]  # the book's two lines: accuracies, then speed
    test_acc = float(closing.split("test acc ")[1].split(",")[0])
    assert test_acc > 0.6, closing  # chance is 0.1; the book's LeNet reaches ~0.8 after 10 epochs
    assert cli.trainer.callback_metrics["train/loss"] < 1.0

    runs = list((tmp_path / "lightning_logs").glob("*/version_*"))
    assert len(runs) == 1 and (runs[0] / "config.yaml").is_file()
    events = EventAccumulator(str(runs[0]), size_guidance={"scalars": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert scalars >= EXPECTED_SCALARS, EXPECTED_SCALARS - scalars
    assert {
        "verdict/test_acc",
        "verdict/val_acc",
        "verdict/train_loss",
        "verdict/examples_per_sec",
    } <= scalars  # hyper-parameters' final metrics
    assert len(events.Scalars("val/acc")) == 3
    assert events.Scalars("verdict/test_acc")[-1].value == pytest.approx(test_acc, abs=5e-4)


def test_optimizer_and_scheduler_come_from_the_config(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """The book's SGD is the default; a config's optimizer/lr_scheduler (LightningCLI) replaces it, and the
    criterion's label smoothing is a model setting."""
    monkeypatch.chdir(tmp_path)
    base = ["--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.accelerator", "cpu"]
    optimizer = make_cli(base, run=False).model.configure_optimizers()
    assert type(optimizer) is torch.optim.SGD and optimizer.defaults["lr"] == 0.9
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "optimizer:\n  class_path: torch.optim.AdamW\n  init_args: {lr: 0.002, weight_decay: 0.05}\n"
        "lr_scheduler:\n  class_path: torch.optim.lr_scheduler.CosineAnnealingLR\n  init_args: {T_max: 2}\n"
        "model:\n  init_args: {label_smoothing: 0.1}\n"
    )
    cli = make_cli(["fit", *base, "--config", str(recipe), "--trainer.max_epochs", "2",
                    "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
                    "--trainer.limit_test_batches", "1"])  # fmt: skip
    optimizer = cli.trainer.optimizers[0]
    assert type(optimizer) is torch.optim.AdamW and optimizer.defaults["weight_decay"] == 0.05
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0)  # cosine to 0 over T_max = 2 epochs
    assert cli.model.criterion.label_smoothing == 0.1


@pytest.mark.slow  # whole-epoch fits, about 15 s: the full suite runs it
def test_epoch_metrics_weigh_every_example_once(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The logged loss and accuracy of an epoch are the book's: over every example it saw, the last, smaller batch
    (55,000 = 214 × 256 + 216) weighing its size. A learning rate of 1e-12 keeps the weights those of the first
    step, so one pass of the final model over each split must give the same figures (in float32, as the pass is:
    bf16-mixed, the default where the CPU has bf16, would differ by its rounding)."""
    monkeypatch.chdir(tmp_path)
    cli = make_cli(["fit", "--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.max_epochs", "1",
                    "--model.init_args.lr", "1e-12", "--trainer.precision", "32-true", "--trainer.logger", "false",
                    "--trainer.enable_progress_bar", "false"])  # fmt: skip
    model, metrics = cli.model.eval(), cli.trainer.callback_metrics
    for stage in ("train", "val"):
        images, labels = cli.datamodule.split(stage)
        with torch.no_grad():
            logits = torch.cat([model(resize_batch(part, 28)) for part in images.split(2048)])
        accuracy = (logits.argmax(dim=1) == labels).double().mean().item()
        assert float(metrics[f"{stage}/acc"]) == pytest.approx(accuracy, abs=1e-6), stage
        loss = torch.nn.functional.cross_entropy(logits.double(), labels).item()
        assert float(metrics[f"{stage}/loss"]) == pytest.approx(loss, rel=1e-5), stage


def test_channels_last_computes_the_same() -> None:
    """NHWC changes the order of float sums, not the function: outputs agree with a float64 reference to float32
    rounding, and so does every weight gradient, measured over the whole tensor (relative L2). Not element-wise: a
    BatchNorm output within rounding of 0 may land on the other side of the ReLU after it in one layout, and that
    one unit's gradient then differs whole (seen on an AVX2 AMD EPYC: b4.0.conv1's gradient off by 1.3e-3 in L2
    and 1.3 % in its largest element in NHWC, 2.5e-6 in NCHW, with every value before that ReLU within 3e-6)."""
    torch.manual_seed(0)
    net = ResNet(input_size=40).net
    images, labels = torch.rand(16, 1, 40, 40), torch.randint(0, 10, (16,))
    reference, plain = copy.deepcopy(net).double(), copy.deepcopy(net)
    nhwc = copy.deepcopy(net).to(memory_format=torch.channels_last)
    runs = [(reference, images.double()), (plain, images), (nhwc, images.contiguous(memory_format=torch.channels_last))]
    outputs = [model(x) for model, x in runs]
    torch.testing.assert_close(outputs[2].double(), outputs[0], rtol=1e-4, atol=1e-5)
    for output in outputs:
        torch.nn.functional.cross_entropy(output, labels).backward()
    for (name, exact), a, b in zip(reference.named_parameters(), plain.parameters(), nhwc.parameters(), strict=True):
        if name.endswith("weight"):
            errors = [((g.grad.double() - exact.grad).norm() / exact.grad.norm()).item() for g in (a, b)]
            assert max(errors) < 1e-2, (name, errors)  # a wrong layout or kernel is off by O(1); rounding by 1e-6


def test_flops_per_batch_counts_forward_and_backward() -> None:
    net = LeNet().net
    # Conv and linear multiply-adds of one 28x28 image, twice for FLOPs, three passes (forward, two backward).
    macs = 6 * 25 * 28 * 28 + 16 * 6 * 25 * 10 * 10 + 400 * 120 + 120 * 84 + 84 * 10
    first_conv_input_grad = 6 * 25 * 28 * 28  # no gradient flows to the images
    assert training_flops(net, (8, 1, 28, 28)) == 8 * 2 * (3 * macs - first_conv_input_grad)


class HostReads(TorchFunctionMode):
    """Records every read of a tensor's value into Python (``item``, ``bool``, ``tolist``, ...): on a GPU each is
    a host synchronization that stalls the step."""

    READS = ("item", "__bool__", "__float__", "__int__", "__index__", "tolist", "numpy")

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in self.READS:
            caller = next(f for f in reversed(traceback.extract_stack()[:-1]) if "torch/" not in f.filename)
            self.reads.append(f"{name} at {Path(caller.filename).name}:{caller.lineno} ({caller.name})")
        return func(*args, **(kwargs or {}))


class WatchSteps(L.Callback):
    """Records host reads from the first batch starting at or past optimizer step ``first`` to the first ending at or
    past ``last``, hooks included (a chunk of steps holds several; ``steps`` says how many were watched)."""

    handles_chunks = True  # it reads the step counters, so the engine keeps its chunks

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last, self.mode = first, last, HostReads()
        self.started: int | None = None
        self.steps = 0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if self.started is None and trainer.global_step >= self.first:
            self.started = trainer.global_step
            self.mode.__enter__()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        if self.started is not None and not self.steps and trainer.global_step >= self.last:
            self.steps = trainer.global_step - self.started
            self.mode.__exit__(None, None, None)


@pytest.mark.parametrize("steps_per_batch", [1, 4], ids=["one-step", "chunked"])
def test_steady_state_steps_read_nothing_back_to_python(
    data_dir: Path, tmp_path: Path, monkeypatch, steps_per_batch: int
) -> None:
    """Between logged steps and checkpoints a training step, with every default callback, the logger and the
    progress bar, reads no tensor value into Python (on a GPU each read would wait for it) and updates no metric.
    The one read is the divergence guard's check on the CPU, where it costs nothing; on CUDA it reads its flags late."""
    monkeypatch.chdir(tmp_path)
    updates = collections.Counter()
    for metric in (MulticlassAccuracy, MeanMetric):  # patched before the model binds them
        monkeypatch.setattr(metric, "update", counted(metric.update, updates))
    cli = make_cli(["--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.max_steps", "32",
                    "--trainer.limit_val_batches", "0", "--data.batch_size", "32",
                    "--trainer.strategy.steps_per_batch", str(steps_per_batch)], run=False)  # fmt: skip
    watch = WatchSteps(5, 30)
    cli.trainer.callbacks.append(watch)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    reads = [read for read in watch.mode.reads if "(check)" not in read or "finite_loss_guard.py" not in read]
    assert not reads, reads
    assert watch.steps >= 20 and cli.trainer.strategy.chunk_steps == steps_per_batch
    # one guard check a step, no more
    assert sum("finite_loss_guard.py" in read for read in watch.mode.reads) == watch.steps
    # torchmetrics takes the epoch's 32 batches in one update each at its end, not one per step (0.5 ms a step)
    assert updates == {"MulticlassAccuracy": 1, "MeanMetric": 1}, updates


def counted(update, calls: collections.Counter):
    """``update`` that counts its calls in ``calls`` under its class's name."""

    def update_counted(self, *args, **kwargs):
        calls[type(self).__name__] += 1
        return update(self, *args, **kwargs)

    return update_counted
