"""Each network's structure as settings (issue 34): the defaults are the book's networks exactly, and the settings
build the variants the book's exercises ask for (checked against the papers' layouts through torchvision); what a
variant says of itself: test_variant_labels.py."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from cnn_lightning.errors import ConfigError
from cnn_lightning.models import (
    MODELS,
    AlexNet,
    Bottleneck,
    BottleneckDenseLayer,
    ConvBN,
    DenseNet,
    GoogLeNet,
    InceptionV3,
    LeNet,
    LeNetBN,
    LiteBatchNorm,
    NiN,
    NiNBlock,
    PreActResidual,
    ResidualInception,
    ResNet,
)
from cnn_lightning.models.densenet import TABLE_1 as DENSENET_TABLE_1
from cnn_lightning.models.resnet import TABLE_1 as RESNET_TABLE_1
from cnn_lightning.models.variants import differences_from_book, record_line
from cnn_lightning.scratch.shapes import output_shape


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv_biases(module: nn.Module) -> int:
    return sum(m.bias.numel() for m in module.modules() if isinstance(m, nn.Conv2d) and m.bias is not None)


def seeded_output(model_or_net: nn.Module, size: int) -> torch.Tensor:
    torch.manual_seed(1)
    with torch.no_grad():
        return model_or_net.eval()(torch.rand(2, 1, size, size))


# --- The defaults are the book's networks: written out here as the book writes them (D2L §7.6, §8.5, §8.1). ---


def book_lenet() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10),
    )  # fmt: skip


def book_lenet_bn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5), nn.BatchNorm2d(6), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.BatchNorm2d(16), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(), nn.Linear(256, 120), nn.BatchNorm1d(120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.BatchNorm1d(84), nn.Sigmoid(), nn.Linear(84, 10),
    )  # fmt: skip


def book_alexnet() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 96, kernel_size=11, stride=4, padding=1), nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(96, 256, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(), nn.Conv2d(384, 384, kernel_size=3, padding=1),
        nn.ReLU(), nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Flatten(), nn.Linear(6400, 4096), nn.ReLU(), nn.Dropout(p=0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(p=0.5), nn.Linear(4096, 10),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("model_class", "book"), [(LeNet, book_lenet), (LeNetBN, book_lenet_bn), (AlexNet, book_alexnet)]
)
def test_the_default_network_is_the_books_with_the_same_seeded_weights(model_class: type, book) -> None:
    """Built from settings, the default draws the same initial weights as the book's code under a seed (the same
    layers in the same order, Xavier-uniform on top) and computes the same outputs."""
    torch.manual_seed(0)
    model = model_class()
    torch.manual_seed(0)
    reference = book()
    for module in reference.modules():  # the book's init_weights
        if type(module) in (nn.Linear, nn.Conv2d):
            nn.init.xavier_uniform_(module.weight)
    ours = nn.Sequential(*model.net.features, *model.net.head)
    assert repr(ours) == repr(reference)
    for (name, a), b in zip(ours.state_dict().items(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    size = model.input_size
    assert torch.equal(seeded_output(model, size), seeded_output(reference, size))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_book_network_claims_the_book_record_and_no_difference(name: str) -> None:
    model = MODELS[name]()
    assert differences_from_book(model) == []
    assert record_line(model).startswith(f"Book: D2L §{model.record.book_section} {model.record.title}")
    assert all(setting in model.hparams for setting in model.record.structure)  # the record names real settings


# --- Parameter counts of the papers' layouts, through torchvision. ---


@pytest.mark.parametrize("depth", ["resnet34", "resnet50"])
def test_resnet_from_settings_has_he_et_al_layout(depth: str) -> None:
    """ResNet-34 / -50 of He et al.'s Table 1 for 1-channel 96 px images and 10 classes, against torchvision's.

    torchvision's blocks follow the paper's layer for layer but differ from the book's conventions, which our
    blocks keep: the book's convolutions (stem included) have a bias, and its projection shortcut is a bare 1×1
    convolution where torchvision's adds batch norm. So ours = torchvision's (first convolution for 1 channel)
    + one bias per output channel of every convolution − the weight and bias of each projection's batch norm.
    """
    block, blocks_per_stage = RESNET_TABLE_1[depth]
    ours = ResNet(block=block, blocks_per_stage=blocks_per_stage)
    with torch.device("meta"):
        reference = getattr(torchvision.models, depth)(num_classes=10)
        reference.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    projection_norms = sum(count(m.downsample[1]) for m in reference.modules() if getattr(m, "downsample", None))
    assert count(ours) == count(reference) + conv_biases(ours) - projection_norms
    stages = [getattr(ours.net, f"b{i}") for i in range(2, 6)]
    assert [len(stage) for stage in stages] == list(blocks_per_stage) == [3, 4, 6, 3]


def test_densenet121_from_settings_has_huang_et_al_layout() -> None:
    """DenseNet-121 of Huang et al.'s Table 1 (growth 32, bottleneck layers, compression 0.5, average pooling) for
    1-channel images and 10 classes against torchvision's: the same layers, and ours keep the book's convolution
    biases (torchvision's have none), so ours = torchvision's + one bias per output channel of every convolution."""
    ours = DenseNet(convs_per_block=DENSENET_TABLE_1["densenet121"], bottleneck=True, final_pooling="avg")
    with torch.device("meta"):
        reference = torchvision.models.densenet121(num_classes=10)
        reference.features.conv0 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    assert count(ours) == count(reference) + conv_biases(ours)
    assert [len(getattr(ours.net, f"block{i}").net) for i in range(1, 5)] == [6, 12, 24, 16]
    assert isinstance(ours.net.block1.net[0], BottleneckDenseLayer)
    assert isinstance(ours.net.head[2], nn.AdaptiveAvgPool2d)
    assert ours.net.transition1[2].out_channels == (64 + 6 * 32) // 2


def test_bottleneck_and_preactivation_blocks() -> None:
    bottleneck = Bottleneck(in_channels=64, out_channels=256, use_1x1conv=True)
    assert [c.kernel_size for c in (bottleneck.conv1, bottleneck.conv2, bottleneck.conv3)] == [(1, 1), (3, 3), (1, 1)]
    assert bottleneck.conv2.out_channels == 64 and bottleneck(torch.rand(2, 64, 8, 8)).shape == (2, 256, 8, 8)
    strided = Bottleneck(in_channels=256, out_channels=512, use_1x1conv=True, stride=2)
    assert strided.conv2.stride == (2, 2) and strided(torch.rand(2, 256, 8, 8)).shape == (2, 512, 4, 4)
    resnet50 = ResNet(block="bottleneck", blocks_per_stage=(3, 4, 6, 3))
    assert resnet50.net.b2[0].shortcut is not None  # 64 → 256 channels: projected even without downsampling
    assert resnet50.net.b2[1].shortcut is None and resnet50.net.head[-1].in_features == 2048

    preact = PreActResidual(in_channels=8, out_channels=8)
    preact.eval()
    x = torch.randn(2, 8, 6, 6)
    residual = preact.conv2(torch.relu(preact.bn2(preact.conv1(torch.relu(preact.bn1(x))))))
    torch.testing.assert_close(preact(x), x + residual)  # nothing after the addition: the identity path is clean
    model = ResNet(block="preact")
    assert isinstance(model.net.b3[0], PreActResidual)
    assert [type(m) for m in model.net.head[:2]] == [nn.BatchNorm2d, nn.ReLU]  # the last block's activation


def test_googlenet_variants() -> None:
    book = GoogLeNet()
    bn = GoogLeNet(batch_norm=True)
    convs = [m for m in bn.net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == len([m for m in book.net.modules() if isinstance(m, nn.Conv2d)])
    assert all(m.bias is None for m in convs)  # each convolution's bias replaced by its batch norm's shift
    assert sum(isinstance(m, ConvBN) for m in bn.net.modules()) == len(convs)
    v3 = GoogLeNet(inception="v3")
    block = v3.net.b3[0]
    assert isinstance(block, InceptionV3) and [m.kernel_size for m in block.p3_2 if isinstance(m, nn.Conv2d)] == [
        (3, 3),
        (3, 3),
    ]
    residual = GoogLeNet(residual=True)
    assert isinstance(residual.net.b4[1], ResidualInception) and isinstance(residual.net.b4[1].shortcut, nn.Identity)
    assert isinstance(residual.net.b4[0].shortcut, nn.Conv2d)  # 480 → 512 channels
    x = torch.rand(2, 192, 6, 6)
    inner = residual.net.b3[0]
    torch.testing.assert_close(inner(x), torch.relu(inner.block(x) + inner.shortcut(x)))
    small = GoogLeNet(stem="small", input_size=28)  # built: it maps 28 px images to 10 scores (_build_checked)
    assert small.net.b1[0].kernel_size == (3, 3) and small.net.b1[0].stride == (1, 1)
    body = nn.Sequential(*list(small.net.children())[:4])
    assert output_shape(body, (2, 1, 28, 28)) == (2, 832, 4, 4)  # 28 → 14 → 7 → 4, then the global pool


def test_lenet_settings_build_the_exercises_layers() -> None:
    model = LeNet(activation="relu", pooling="max")
    assert {type(m) for m in model.net.modules()} >= {nn.ReLU, nn.MaxPool2d}
    assert not any(isinstance(m, (nn.Sigmoid, nn.AvgPool2d)) for m in model.net.modules())
    deeper = LeNet(channels=(8, 16, 32), kernel_sizes=(3, 3, 3), paddings=(1, 1, 1), hidden_units=(64,), dropout=0.5)
    convs = [m for m in deeper.net.features if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (8, (3, 3), (1, 1)),
        (16, (3, 3), (1, 1)),
        (32, (3, 3), (1, 1)),
    ]
    linears = [m for m in deeper.net.head if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(32 * 3 * 3, 64), (64, 10)]
    assert sum(isinstance(m, nn.Dropout) for m in deeper.net.head) == 1


def test_lenet_bn_placement_and_kinds() -> None:
    some = LeNetBN(batch_norm_layers=("conv1", "fc2"))
    norms = [m for m in some.net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert [m.num_features for m in norms] == [6, 84]
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in LeNetBN(batch_norm_layers=()).modules())
    fixed = LeNetBN(batch_norm="fixed")
    assert all(not m.affine for m in fixed.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
    assert count(fixed) == count(LeNetBN()) - 2 * (6 + 16 + 120 + 84)  # γ and β are no parameters
    for kind in ("center", "scale"):
        lite = [m for m in LeNetBN(batch_norm=kind).modules() if isinstance(m, LiteBatchNorm)]
        assert len(lite) == 4 and all(m.mode == kind for m in lite)


def test_lenet_bn_takes_lenets_layout() -> None:
    """The speedrun's network: LeNet's layout settings on LeNetBN, batch norm after the layers named, conv3 too."""
    wide = LeNetBN(
        activation="relu",
        pooling="max",
        channels=(16, 64, 128),
        kernel_sizes=(3, 3, 3),
        paddings=(1, 1, 1),
        hidden_units=(256,),
        batch_norm_layers=("conv1", "conv2", "conv3", "fc1"),
    )
    kinds = [type(m).__name__ for m in wide.net.features]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"] * 3
    widths = [m.num_features for m in wide.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert widths == [16, 64, 128, 256]
    assert wide(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert "channels [16, 64, 128] (book: [6, 16])" in differences_from_book(wide)
    with pytest.raises(ConfigError, match="names no layer fc2: choose among conv1, conv2, conv3, fc1 "):
        LeNetBN(channels=(8, 8, 8), kernel_sizes=(3, 3, 3), paddings=(1, 1, 1), hidden_units=(32,),
                batch_norm_layers=("fc2",))  # fmt: skip


def test_lite_batch_norm_only_centres_or_only_scales() -> None:
    torch.manual_seed(0)
    x = 3 + 2 * torch.randn(64, 4, 5, 5)
    centre, scale = LiteBatchNorm(4, mode="center"), LiteBatchNorm(4, mode="scale")
    with torch.no_grad():
        centre.bias.fill_(0.5)
        scale.weight.fill_(2.0)
    y = centre(x)
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.full((4,), 0.5), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(dim=(0, 2, 3)), x.std(dim=(0, 2, 3)))  # the spread is untouched
    z = scale(x)
    torch.testing.assert_close(z.std(dim=(0, 2, 3), correction=0), torch.full((4,), 2.0), atol=1e-3, rtol=0)
    torch.testing.assert_close(z.mean(dim=(0, 2, 3)), 2 * x.mean(dim=(0, 2, 3)) / x.std(dim=(0, 2, 3), correction=0))
    # Running statistics as nn.BatchNorm keeps them, used in evaluation.
    reference = nn.BatchNorm2d(4)
    reference(x)
    torch.testing.assert_close(centre.running_mean, reference.running_mean)
    torch.testing.assert_close(scale.running_var, reference.running_var)
    centre.eval()
    torch.testing.assert_close(centre(x), x - reference.running_mean.view(1, -1, 1, 1) + 0.5)


def test_alexnet_and_nin_variants() -> None:
    small = AlexNet(stem="small", input_size=28)
    assert small.net.features[0].kernel_size == (3, 3) and output_shape(small.net, (2, 1, 28, 28)) == (2, 10)
    narrow = AlexNet(width=0.25, batch_norm=True, dropout=0.0)
    assert [m.out_channels for m in narrow.net.features if isinstance(m, nn.Conv2d)] == [24, 64, 96, 96, 64]
    assert narrow.net.head[1].out_features == 1024 and sum(isinstance(m, nn.BatchNorm1d) for m in narrow.modules()) == 2
    for convs in (1, 3):
        block = NiN(pointwise_convs=convs).net.features[0]
        assert sum(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in block) == convs
    three = NiN(pointwise_kernel_size=3).net.features[2]
    assert isinstance(three, NiNBlock) and three[2].kernel_size == (3, 3) and three[2].padding == (1, 1)
    fc = NiN(head="fc")
    assert not any(isinstance(m, nn.AdaptiveAvgPool2d) for m in fc.modules())
    assert fc.net.head[-1].in_features == 10 * 5 * 5
    deep = NiN(blocks_per_stage=(2, 2, 3))
    assert sum(isinstance(m, NiNBlock) for m in deep.net.features) == 7


def test_weight_initialization_schemes() -> None:
    """Xavier bounds the fc1 weights of LeNet by √(6 / (400 + 120)) ≈ 0.107, PyTorch's default by 1/√400 = 0.05;
    Kaiming draws a normal of std √(2 / 400) ≈ 0.071 with zero biases."""
    fc = {}
    for scheme in ("xavier", "kaiming", "default"):
        torch.manual_seed(0)
        fc[scheme] = LeNet(init=scheme, activation="relu").net.head[1]
    assert 0.05 < fc["xavier"].weight.abs().max() <= (6 / 520) ** 0.5
    assert fc["default"].weight.abs().max() <= 1 / 400**0.5
    assert fc["kaiming"].weight.std().item() == pytest.approx((2 / 400) ** 0.5, rel=0.05)
    assert not fc["kaiming"].bias.any() and fc["default"].bias.any()
    with pytest.raises(ConfigError, match="init takes one of xavier, kaiming, default"):
        LeNet(init="he")
