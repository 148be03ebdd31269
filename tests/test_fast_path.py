"""The fast data path learns exactly what the book's pipeline learns (same batches, same steps, same weights),
and a training step costs no more than it must: no tensor value read back into Python in steady state."""

from __future__ import annotations

import collections
import copy
import os
import subprocess
import sys
import traceback
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils.data import DataLoader, Subset
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy
from torchvision import transforms
from torchvision.datasets import FashionMNIST

from cnn_lightning.cli import make_cli
from cnn_lightning.data import FashionMNISTDataModule, TensorBatchLoader
from cnn_lightning.host_memory import HUGE_PAGES_SETTING, USER_SETTINGS, glibc, page_faults
from cnn_lightning.models import LeNet, ResNet
from cnn_lightning.shapes import training_flops


def train_steps(model: torch.nn.Module, batches: list, lr: float) -> torch.nn.Module:
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for images, labels in batches:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
    return model


@pytest.mark.parametrize(("model_class", "size", "steps"), [(LeNet, 28, 5), (ResNet, 40, 2)])
def test_same_batches_same_weights(data_dir: Path, model_class: type, size: int, steps: int) -> None:
    torch.manual_seed(0)
    model = model_class(input_size=size)
    batch = 32
    book_data = FashionMNIST(
        str(data_dir), transform=transforms.Compose([transforms.Resize(size), transforms.ToTensor()])
    )
    book_batches = list(DataLoader(Subset(book_data, range(batch * steps)), batch_size=batch, num_workers=2))

    dm = FashionMNISTDataModule(data_dir=str(data_dir), batch_size=batch, resize=size, val_on_test=True)
    dm.setup("fit")
    images, labels = dm.split("train")
    loader = TensorBatchLoader(images[: batch * steps], labels[: batch * steps], batch_size=batch, shuffle=False)
    our_batches = [dm.on_after_batch_transfer(b, 0) for b in loader]

    book = train_steps(copy.deepcopy(model.net), book_batches, lr=0.05)
    ours = train_steps(copy.deepcopy(model.net), our_batches, lr=0.05)
    for (name, a), b in zip(book.state_dict().items(), ours.state_dict().values(), strict=True):
        assert torch.equal(a, b), name  # bit-identical: the resized batches are bit-identical


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
    """Records host reads from the start of batch ``first`` to the end of batch ``last``, hooks included."""

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last, self.mode = first, last, HostReads()

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if batch_idx == self.first:
            self.mode.__enter__()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        if args[-1] == self.last:
            self.mode.__exit__(None, None, None)


def test_steady_state_steps_read_nothing_back_to_python(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """Between logged steps and checkpoints a training step, with every default callback, the logger and the
    progress bar, reads no tensor value into Python (on a GPU each read would wait for it) and updates no metric.
    The one read is the divergence guard's check on the CPU, where it costs nothing; on CUDA it reads its flags late."""
    monkeypatch.chdir(tmp_path)
    updates = collections.Counter()
    for metric in (MulticlassAccuracy, MeanMetric):  # patched before the model binds them
        monkeypatch.setattr(metric, "update", counted(metric.update, updates))
    cli = make_cli(["--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.max_steps", "32",
                    "--trainer.limit_val_batches", "0", "--data.batch_size", "32"], run=False)  # fmt: skip
    watch = WatchSteps(5, 30)
    cli.trainer.callbacks.append(watch)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    reads = [read for read in watch.mode.reads if "(check)" not in read or "reliability.py" not in read]
    assert not reads, reads
    assert sum("reliability.py" in read for read in watch.mode.reads) == 26  # one guard check a step, no more
    # torchmetrics takes the epoch's 32 batches in one update each at its end, not one per step (0.5 ms a step)
    assert updates == {"MulticlassAccuracy": 1, "MeanMetric": 1}, updates


def counted(update, calls: collections.Counter):
    """``update`` that counts its calls in ``calls`` under its class's name."""

    def update_counted(self, *args, **kwargs):
        calls[type(self).__name__] += 1
        return update(self, *args, **kwargs)

    return update_counted


class CountRedraws(L.Callback):
    """Counts redraws of the training bar from the start of batch ``first`` to the end of batch ``last``."""

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last, self.redraws, self.counting = first, last, 0, False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        bar = trainer.progress_bar_callback.train_progress_bar
        refresh = bar.refresh

        def counted(*args, **kwargs):
            self.redraws += self.counting
            return refresh(*args, **kwargs)

        bar.refresh = counted

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self.counting = self.counting or batch_idx == self.first

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        self.counting = self.counting and args[-1] != self.last


@pytest.mark.parametrize("min_interval", [3600.0, 0.0])
def test_steps_build_no_profiler_context_and_redraw_the_bar_by_time(
    data_dir: Path, tmp_path: Path, monkeypatch, min_interval: float
) -> None:
    """Lightning wraps each hook call in ``trainer.profiler.profile``: the default one hands out one shared
    context; the bar redraws by elapsed time, not every batch, and still ends showing the batches trained."""
    monkeypatch.chdir(tmp_path)
    cli = make_cli(["--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.max_steps", "40",
                    "--trainer.limit_val_batches", "0", "--data.batch_size", "32"], run=False)  # fmt: skip
    profiler, bar = cli.trainer.profiler, cli.trainer.progress_bar_callback
    assert profiler.profile("[Callback]A.on_train_batch_end") is profiler.profile("[Strategy]B.training_step")
    bar.min_interval = min_interval
    count = CountRedraws(5, 34)
    cli.trainer.callbacks.append(count)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert count.redraws == (0 if min_interval else 60)  # as Lightning draws: count, then metrics, every batch
    assert bar.train_progress_bar.n == 40


class CountPageFaults(L.Callback):
    """The process's minor page faults (fresh pages from the kernel) from the start of batch ``first`` to the end
    of batch ``last``."""

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last, self.faults = first, last, 0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if batch_idx == self.first:
            self.faults = -page_faults()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        if args[-1] == self.last:
            self.faults += page_faults()


@pytest.mark.skipif(glibc() is None, reason="glibc's malloc only")
def test_steady_state_steps_reuse_the_memory_they_free(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """Each step's activations reuse the memory the previous step freed (host_memory.py). With glibc's defaults a
    LeNet step at batch 256 faulted 1,000-5,000 fresh pages in (6-15 ms of kernel time on a 2-core AMD EPYC); with
    freed memory kept, 0-40."""
    for name in USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    cli = make_cli(["--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.max_steps", "30",
                    "--trainer.limit_val_batches", "0"], run=False)  # fmt: skip
    count = CountPageFaults(10, 29)
    cli.trainer.callbacks.append(count)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert count.faults / 20 < 300, f"{count.faults / 20:.0f} page faults a step"


@pytest.mark.parametrize(("user_setting", "expected"), [(None, "1"), ("0", "0")])
def test_entry_point_asks_for_huge_pages_before_torch_loads(user_setting: str | None, expected: str) -> None:
    """PyTorch reads THP_MEM_ALLOC_ENABLE once, when it loads: the entry point must set it first, and keep the
    user's own value. A fresh interpreter, as ``python -m cnn_lightning`` and the ``cnn-lightning`` script start."""
    env = {key: value for key, value in os.environ.items() if key != HUGE_PAGES_SETTING}
    env.update({HUGE_PAGES_SETTING: user_setting} if user_setting else {})
    code = (
        "import os, sys, cnn_lightning.host_memory; loaded_early = 'torch' in sys.modules; "
        "import cnn_lightning.__main__; "
        f"print(loaded_early, 'torch' in sys.modules, os.environ.get({HUGE_PAGES_SETTING!r}))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "True", expected], done.stderr[-2000:]
