"""The layer inspector (cnn_lightning.summary): shapes, parameters, FLOPs and activation memory per layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnn_lightning.commands.summary import layer_table, summarize
from cnn_lightning.models import MODELS, DenseNet, LeNet, LeNetBN, ResNet
from cnn_lightning.scratch.arithmetic import conv_flops
from tests.conftest import run_cli

FLOAT = 4  # bytes


def test_lenet_rows_match_the_book() -> None:
    stages = layer_table(LeNet())
    assert [r.name for r in stages if r.expanded] == ["features", "head"]  # the stages' names, then their layers
    rows = [r for r in stages if not r.expanded]
    assert [r.name for r in rows] == [f"features.{i}" for i in range(6)] + [f"head.{i}" for i in range(6)]
    assert [r.type for r in rows[:4]] == ["Conv2d", "Sigmoid", "AvgPool2d", "Conv2d"]
    assert [r.output_shape for r in rows if r.type != "Sigmoid"] == [
        (1, 6, 28, 28),
        (1, 6, 14, 14),
        (1, 16, 10, 10),
        (1, 16, 5, 5),
        (1, 400),
        (1, 120),
        (1, 84),
        (1, 10),
    ]
    assert [r.params for r in rows if r.params] == [156, 2416, 48120, 10164, 850]
    # Saved for backward, counted once, charged to the first module that saves each tensor: the conv keeps
    # the image, each sigmoid its output (the next pool or conv saves that same tensor again), the first
    # linear the pooled map its Flatten views.
    expected = {
        "features.0": 28 * 28,
        "features.1": 6 * 28 * 28,
        "features.3": 6 * 14 * 14,
        "features.4": 16 * 10 * 10,
        "head.1": 400,
        "head.2": 120,
        "head.4": 84,
    }
    assert {r.name: r.activation_bytes for r in rows if r.activation_bytes} == {
        name: FLOAT * n for name, n in expected.items()
    }


def test_batch_size_scales_shapes_flops_and_memory() -> None:
    one, four = summarize(LeNet()), summarize(LeNet(), batch_size=4)
    assert four.rows[1].output_shape == (4, 6, 28, 28)  # rows[0] is the features stage
    assert four.forward_flops == 4 * one.forward_flops
    assert four.activation_bytes == 4 * one.activation_bytes
    assert four.params == one.params


@pytest.mark.parametrize("name", list(MODELS))
def test_totals_add_up(name: str) -> None:
    model = MODELS[name]()
    summary = summarize(model)
    assert summary.params == sum(p.numel() for p in model.parameters())
    assert summary.param_bytes == FLOAT * summary.params
    top = [r for r in summary.rows if r.level == 0]
    leaves = [r for r in summary.rows if not r.expanded]
    for rows in (top, leaves):
        assert sum(r.params for r in rows) == summary.params
        assert sum(r.flops for r in rows) == summary.forward_flops
        assert sum(r.activation_bytes for r in rows) == summary.activation_bytes
    assert all(r.output_shape is not None for r in summary.rows)
    assert summary.rows[-1].output_shape == (1, 10) or summary.rows[-1].type == "Flatten"
    assert 2 * summary.forward_flops < summary.training_flops < 4 * summary.forward_flops


@pytest.mark.parametrize("model_class", [LeNet, DenseNet])
def test_conv_flops_follow_the_cost_formula(model_class: type) -> None:
    model = model_class()
    rows = [r for r in layer_table(model, depth=99) if r.type == "Conv2d"]
    convs = [m for m in model.net.modules() if isinstance(m, nn.Conv2d)]
    assert len(rows) == len(convs) > 0
    for row in rows:
        conv = model.net.get_submodule(row.name)
        expected = conv_flops(
            in_channels=conv.in_channels,
            out_channels=conv.out_channels,
            kernel_size=conv.kernel_size,
            output_size=row.output_shape[-2:],
        )
        assert row.flops == expected, row


def test_forward_flops_equal_a_real_forward_pass() -> None:
    model = DenseNet()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 1, 96, 96))
    assert summarize(model).forward_flops == counter.get_total_flops()


@pytest.mark.parametrize("model_class", [LeNetBN, DenseNet])
def test_meta_pass_saves_what_a_real_pass_saves(model_class: type) -> None:
    """The meta-device measurement against a real CPU forward on zeros, storages told apart by data pointer."""
    model = model_class()
    net = model.net.train()
    seen = {t.untyped_storage().data_ptr() for t in [*net.parameters(), *net.buffers()]}
    kept, total = [], 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        if t.untyped_storage().data_ptr() not in seen:
            seen.add(t.untyped_storage().data_ptr())
            kept.append(t)
            total += t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(torch.zeros(2, 1, model.input_size, model.input_size))
    assert summarize(model, batch_size=2).activation_bytes == total


def test_depth_opens_named_blocks() -> None:
    model = ResNet()
    by_depth = {depth: {r.name: r for r in layer_table(model, depth=depth)} for depth in (0, 1)}
    # Plain Sequentials (the stem and the stages) are always opened; Residual blocks only from depth 1.
    assert by_depth[0]["b2.0"].type == "Residual" and not by_depth[0]["b2.0"].expanded
    assert "b2.0.conv1" not in by_depth[0]
    assert [n for n in by_depth[1] if n.startswith("b3.0.")] == [
        f"b3.0.{n}" for n in ("conv1", "bn1", "conv2", "bn2", "conv3")
    ]
    assert by_depth[1]["b3.0.conv3"].output_shape == (1, 128, 12, 12)

    dense = {r.name: r for r in layer_table(DenseNet(), depth=1)}
    assert dense["block1.net.0"].type == "DenseLayer" and "block1.net.0.2" not in dense
    assert dense["block1"].output_shape == (1, 64 + 4 * 32, 24, 24)


def test_summary_leaves_the_model_as_it_was() -> None:
    model = LeNetBN()  # batch norm on one value per channel at batch 1: runs in eval mode for the pass
    model.eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    summarize(model)
    assert not any(m.training for m in model.modules())
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_scratch_batch_norm_and_checkpointing_are_measured() -> None:
    library, scratch = summarize(LeNetBN()), summarize(LeNetBN(scratch_batch_norm=True))
    assert scratch.params == library.params == 44_878
    assert scratch.forward_flops == library.forward_flops
    # The hand-written normalization keeps its intermediate tensors; the fused kernel keeps only its input.
    assert scratch.activation_bytes > library.activation_bytes

    plain, efficient = summarize(DenseNet()), summarize(DenseNet(memory_efficient=True))
    assert efficient.forward_flops == plain.forward_flops
    assert efficient.activation_bytes < 0.7 * plain.activation_bytes


@pytest.mark.slow  # whole CLI processes or fits, about 10 s: the full suite runs it
def test_cli_prints_the_table_for_a_config() -> None:
    result = run_cli("summary", "--config", "densenet.yaml", timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("DenseNet (cnn_lightning.models.densenet.DenseNet): input [1, 1, 96, 96]")
    assert any(line.startswith("block1 ") and "DenseBlock" in line and "[1, 192, 24, 24]" in line for line in lines)
    assert any(line.startswith("Total") for line in lines)
    assert "Parameters: 758,226" in result.stdout


def test_cli_rejects_an_unknown_model_in_one_line() -> None:
    result = run_cli("summary", "--model", "Nope", timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert f"Valid models: {', '.join(MODELS)}." in result.stderr
