"""Memory knobs for the book's batch in a small budget: memory-efficient dense layers (Pleiss et al. 2017),
gradient accumulation with AutoMicroBatch, the effective-batch line, and the two DenseNet configs."""

from __future__ import annotations

import gc
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.optim.optimizer import register_optimizer_step_post_hook

from cnn_lightning.callbacks.effective_batch import EffectiveBatchSize
from cnn_lightning.callbacks.micro_batch import AutoMicroBatch, power_of_two_divisor
from cnn_lightning.data.datamodule import FashionMNISTDataModule
from cnn_lightning.memory.host_memory import release_freed_memory
from cnn_lightning.memory.resident_memory import GiB, rss_bytes
from cnn_lightning.models import DenseBlock, DenseNet, LeNet
from tests.conftest import run_cli

TINY = {"input_size": 48, "growth_rate": 8, "convs_per_block": (2, 2)}


def _pair(**kwargs) -> tuple[DenseNet, DenseNet]:
    torch.manual_seed(0)
    plain = DenseNet(**kwargs)
    efficient = DenseNet(**kwargs, memory_efficient=True)
    efficient.load_state_dict(plain.state_dict())
    return plain, efficient


@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16"])
def test_memory_efficient_matches_plain(autocast: bool) -> None:
    plain, efficient = _pair(**TINY)
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (plain, efficient)]
    generator = torch.Generator().manual_seed(1)
    for _ in range(2):  # two steps: the second runs on weights and running statistics the first updated
        images = torch.rand(8, 1, 48, 48, generator=generator)
        labels = torch.randint(0, 10, (8,), generator=generator)
        outputs = []
        for model in (plain, efficient):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                logits = model(images)
            F.cross_entropy(logits.float(), labels).backward()
            outputs.append(logits)
        torch.testing.assert_close(outputs[1], outputs[0], rtol=0, atol=0)
        for (name, p), q in zip(plain.named_parameters(), efficient.parameters(), strict=True):
            # The concatenation's gradient may sum its parts in another order: equal up to rounding.
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}")
        for optimizer in optimizers:
            optimizer.step()
            optimizer.zero_grad()
    # Running statistics, including num_batches_tracked: updated once per step, not again by the recomputation.
    expected = plain.state_dict()
    for name, value in efficient.state_dict().items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=0, msg=lambda m, n=name: f"{n}: {m}")
    assert expected["net.block1.net.0.0.num_batches_tracked"] == 2


def test_memory_efficient_backward_outside_functional_call() -> None:
    """Recomputation runs in backward, after ``functional_call`` (here: meta tensors, as FLOP counting uses) has
    put the module's own weights back: it must recompute with the weights of the forward."""
    _, efficient = _pair(**TINY)
    state = {
        name: torch.empty_like(t, device="meta").requires_grad_(t.requires_grad)
        for name, t in [*efficient.named_parameters(), *efficient.named_buffers()]
    }
    logits = torch.func.functional_call(efficient, state, (torch.empty(2, 1, 48, 48, device="meta"),))
    logits.sum().backward()
    assert state["net.block1.net.0.2.weight"].grad.shape == efficient.net.block1.net[0][2].weight.shape
    assert efficient.net[1].net[0][0].num_batches_tracked == 0  # the real statistics were not touched


def _saved_bytes(module: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd keeps for backward after ``module(x)``."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        module(x)
    return sum(storages.values())


def test_memory_efficient_saves_memory() -> None:
    # The book's first dense block at 96 px: 4 layers, 64 → 192 channels at 24 × 24.
    torch.manual_seed(0)
    x = torch.rand(4, 64, 24, 24, requires_grad=True)
    blocks = [DenseBlock(num_convs=4, in_channels=64, growth_rate=32, memory_efficient=m) for m in (False, True)]
    plain, efficient = (_saved_bytes(block, x) for block in blocks)
    # Plain: every layer keeps its concatenation and normalized copies (quadratic in depth). Checkpointed: only
    # the layers' inputs, i.e. the block input and the new feature maps (linear).
    assert efficient < 0.25 * plain
    plain_net, efficient_net = _pair()  # the whole book DenseNet, stem and transitions included
    image = torch.rand(4, 1, 96, 96)
    assert _saved_bytes(efficient_net, image) < 0.6 * _saved_bytes(plain_net, image)


def test_power_of_two_divisor() -> None:
    assert [power_of_two_divisor(n) for n in (256, 96, 100, 7)] == [256, 32, 4, 1]
    assert power_of_two_divisor(256, at_most=64) == 64
    assert power_of_two_divisor(256, at_most=100) == 64


def _datamodule(data_dir: Path, batch_size: int, resize: int = 28) -> FashionMNISTDataModule:
    return FashionMNISTDataModule(data_dir=str(data_dir), batch_size=batch_size, resize=resize, download=False)


def _fit(model: L.LightningModule, data: FashionMNISTDataModule, callbacks: list, batches: int, tmp_path: Path):
    """Fit ``batches`` micro-batches; return the trainer and the optimizer steps PyTorch itself saw."""
    steps = []
    handle = register_optimizer_step_post_hook(lambda *_: steps.append(1))
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=batches,
        limit_val_batches=0,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    try:
        trainer.fit(model, datamodule=data)
    finally:
        handle.remove()
    return trainer, len(steps)


def test_accumulated_micro_batches_equal_one_big_batch(data_dir: Path, tmp_path: Path, capsys) -> None:
    """LeNet has no batch norm, so 16 × 4 accumulated must give the weights of one step on the 64 examples."""
    torch.manual_seed(0)
    big, small = LeNet(), LeNet()
    small.load_state_dict(big.state_dict())
    _, big_steps = _fit(big, _datamodule(data_dir, 64), [], 1, tmp_path)
    data = _datamodule(data_dir, 64)
    trainer, small_steps = _fit(small, data, [AutoMicroBatch(max_micro_batch=16), EffectiveBatchSize()], 4, tmp_path)
    assert (data.batch_size, trainer.accumulate_grad_batches) == (16, 4)
    assert big_steps == small_steps == trainer.global_step == 1
    for p, q in zip(big.parameters(), small.parameters(), strict=True):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6)
    out = capsys.readouterr().out
    assert "AutoMicroBatch: micro-batch 16 × 4 accumulated" in out
    assert out.count("Effective batch size 64 = micro-batch 16 × 4 accumulated × 1 device") == 1


def test_auto_micro_batch_counts_optimizer_steps(data_dir: Path, tmp_path: Path) -> None:
    data = _datamodule(data_dir, 32)  # no effective_batch_size: keeps data.batch_size 32 as the effective batch
    callback = AutoMicroBatch(max_micro_batch=8)
    trainer, steps = _fit(LeNet(), data, [callback], 12, tmp_path)
    assert callback.micro_batch_size * trainer.accumulate_grad_batches == 32
    assert steps == trainer.global_step == 12 // 4


def test_cpu_search_with_ample_budget_reaches_the_effective_batch(data_dir: Path, tmp_path: Path, capsys) -> None:
    callback = AutoMicroBatch(effective_batch_size=16, max_memory=1024.0, steps_per_trial=2)
    trainer, _ = _fit(LeNet(), _datamodule(data_dir, 256), [callback], 1, tmp_path)
    assert (callback.micro_batch_size, trainer.accumulate_grad_batches) == (16, 1)
    assert "largest to fit" in capsys.readouterr().out
    assert not list(tmp_path.glob(".scale_batch_size_*"))  # Lightning's finder removed its checkpoint


def test_cpu_search_fails_clearly_when_nothing_fits(data_dir: Path, tmp_path: Path) -> None:
    callback = AutoMicroBatch(effective_batch_size=16, max_memory=0.01)  # below the interpreter's own memory
    with pytest.raises(MemoryError, match="not even a micro-batch of 1"):
        _fit(LeNet(), _datamodule(data_dir, 16), [callback], 1, tmp_path)
    assert not list(tmp_path.glob(".scale_batch_size_*"))


@pytest.mark.slow
def test_cpu_search_splits_the_batch_under_a_tight_budget(data_dir: Path, tmp_path: Path) -> None:
    model_args = {"input_size": 96, "growth_rate": 8, "convs_per_block": (2, 2)}
    data = _datamodule(data_dir, 64, resize=96)
    _fit(DenseNet(**model_args), data, [], 1, tmp_path)  # loads the data and warms the kernels up
    gc.collect()
    release_freed_memory()  # resident memory is then what is in use
    # About 3 MiB of activations per 96 px example: 64 take ~300 MiB more, 100 MiB fits a micro-batch of 8 to 16.
    callback = AutoMicroBatch(effective_batch_size=64, max_memory=(rss_bytes() + 100 * 2**20) / GiB, headroom=0)
    data.batch_size = 64
    trainer, _ = _fit(DenseNet(**model_args), data, [callback], 8, tmp_path)  # PyTorch's count includes trials
    assert callback.micro_batch_size < 64
    assert callback.micro_batch_size * trainer.accumulate_grad_batches == 64
    assert trainer.global_step == 8 // trainer.accumulate_grad_batches


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_search_splits_the_book_batch_in_a_small_budget(data_dir: Path, tmp_path: Path) -> None:
    callback = AutoMicroBatch(effective_batch_size=256, max_memory=1.0)
    model = DenseNet(memory_efficient=True)
    trainer = L.Trainer(accelerator="cuda", devices=1, max_steps=2, limit_val_batches=0, logger=False,
                        callbacks=[callback], enable_checkpointing=False, default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(model, datamodule=_datamodule(data_dir, 256, resize=96))
    assert callback.micro_batch_size < 256
    assert callback.micro_batch_size * trainer.accumulate_grad_batches == 256
    assert torch.cuda.max_memory_allocated() <= 1.0 * GiB


@pytest.mark.slow
@pytest.mark.parametrize("config", ["densenet.yaml", "densenet_book.yaml"])
@pytest.mark.slow
def test_densenet_configs_fast_dev_run(config: str, data_dir: Path, tmp_path: Path) -> None:
    done = run_cli(
        *("fit", "--config", config, "--trainer.fast_dev_run", "true"),
        *("--data.data_dir", str(data_dir), "--data.download", "false", "--trainer.logger", "false"),
        *("--data.eval_batch_size", "16"),  # the training batch is the one under test; evaluation only has to run
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Effective batch size 256 = micro-batch 256 × 1 accumulated × 1 device" in done.stdout
    if config == "densenet.yaml":  # with its savings; on CPU without max_memory the batch stays whole
        assert "AutoMicroBatch: micro-batch 256 × 1 accumulated" in done.stdout


class LimitedDenseNet(DenseNet):
    """A DenseNet whose device "holds" ``plain`` examples per step without recomputation and ``recomputed`` with
    it: larger micro-batches fail as PyTorch's allocator does, so the search's decisions can be checked exactly."""

    def __init__(self, plain: int, recomputed: int) -> None:
        super().__init__(input_size=28, growth_rate=4, convs_per_block=(1, 1), memory_efficient="auto")
        self.plain, self.recomputed = plain, recomputed
        self.batch_sizes: list[int] = []

    def _shared_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        if stage == "train":  # each optimizer step's batch, inside a chunk of steps too
            self.batch_sizes.append(len(batch[1]))
            if len(batch[1]) > (self.recomputed if self.memory_efficient else self.plain):
                raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes")
        return super()._shared_step(batch, stage)


@pytest.mark.parametrize(
    ("plain", "recomputed", "split", "recompute"),
    [(64, 64, (64, 1), False), (32, 64, (64, 1), True), (8, 16, (16, 4), True)],
)
def test_recomputation_only_where_the_whole_batch_does_not_fit_without_it(
    plain: int, recomputed: int, split: tuple[int, int], recompute: bool, data_dir: Path, tmp_path: Path, capsys
) -> None:
    model = LimitedDenseNet(plain, recomputed)
    callback = AutoMicroBatch(max_memory=1024.0, steps_per_trial=1)
    trainer, _ = _fit(model, _datamodule(data_dir, 64), [callback], 4, tmp_path)
    assert (callback.micro_batch_size, trainer.accumulate_grad_batches) == split
    assert model.batch_sizes[-4:] == [split[0]] * 4  # the training itself ran the chosen micro-batch
    assert model.memory_efficient is recompute
    assert f"recomputation in backward {'on' if recompute else 'off'}" in capsys.readouterr().out


def test_explicit_micro_batch_is_the_largest_candidate(data_dir: Path, tmp_path: Path, capsys) -> None:
    """``--data.batch_size 16 --trainer.accumulate_grad_batches 4`` asks for 16 × 4: never 64 × 1."""
    data = _datamodule(data_dir, 16)
    trainer = L.Trainer(max_steps=1, limit_val_batches=0, accumulate_grad_batches=4, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, default_root_dir=tmp_path,
                        callbacks=[AutoMicroBatch(max_memory=1024.0, steps_per_trial=1)])  # fmt: skip
    trainer.fit(LeNet(), datamodule=data)
    assert (data.batch_size, trainer.accumulate_grad_batches) == (16, 4)
    assert "AutoMicroBatch: micro-batch 16 × 4 accumulated" in capsys.readouterr().out
