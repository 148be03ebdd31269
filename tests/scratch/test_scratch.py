"""The book's from-scratch operators (cnn_lightning.scratch) against their PyTorch counterparts."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnn_lightning.data.fashion_mnist import load_split
from cnn_lightning.data.resident_batches import resize_batch
from cnn_lightning.models import LeNetBN
from cnn_lightning.scratch.arithmetic import (
    conv_flops,
    conv_multiply_adds,
    conv_output_size,
    conv_output_size_symmetric,
)
from cnn_lightning.scratch.batch_norm import BatchNorm, batch_norm
from cnn_lightning.scratch.convolution import Conv2D, corr2d, corr2d_multi_in, corr2d_multi_in_out, pool2d

CONV_CASES = [  # (h, w, k_h, k_w, stride, padding)
    (3, 3, 2, 2, 1, 0),
    (8, 6, 3, 3, 1, 1),
    (9, 11, 3, 5, (2, 1), (0, 2)),
    (7, 7, 1, 1, 2, 0),
    (10, 8, 4, 2, 3, (1, 0)),
]


def test_corr2d_book_example() -> None:
    X = torch.arange(9.0).reshape(3, 3)
    K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    assert torch.equal(corr2d(X, K), torch.tensor([[19.0, 25.0], [37.0, 43.0]]))


@pytest.mark.parametrize(("h", "w", "k_h", "k_w", "stride", "padding"), CONV_CASES)
def test_corr2d_matches_conv2d(h: int, w: int, k_h: int, k_w: int, stride, padding) -> None:
    generator = torch.Generator().manual_seed(h * w + k_h)
    X = torch.randn(2, 3, h, w, generator=generator)
    K = torch.randn(4, 3, k_h, k_w, generator=generator)
    expected = F.conv2d(X, K, stride=stride, padding=padding)
    torch.testing.assert_close(corr2d_multi_in_out(X, K, stride=stride, padding=padding), expected)
    # Single channel: corr2d on the 2-D image, and on a batch through the leading dimensions.
    single = F.conv2d(X[:, :1], K[:1, :1], stride=stride, padding=padding)[:, 0]
    torch.testing.assert_close(corr2d(X[0, 0], K[0, 0], stride=stride, padding=padding), single[0])
    torch.testing.assert_close(corr2d(X[:, 0], K[0, 0], stride=stride, padding=padding), single)
    torch.testing.assert_close(
        corr2d_multi_in(X[1], K[2], stride=stride, padding=padding), expected[1, 2], rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(("h", "w", "k_h", "k_w", "stride", "padding"), CONV_CASES)
def test_conv2d_module_matches_conv2d_with_gradients(h: int, w: int, k_h: int, k_w: int, stride, padding) -> None:
    torch.manual_seed(h + w)
    conv = Conv2D((k_h, k_w), in_channels=3, out_channels=4, stride=stride, padding=padding)
    X = torch.randn(2, 3, h, w, requires_grad=True)
    ours = conv(X)
    theirs = F.conv2d(X, conv.weight, conv.bias, stride=stride, padding=padding)
    torch.testing.assert_close(ours, theirs)
    grads = torch.autograd.grad(ours.square().sum(), (X, conv.weight, conv.bias))
    expected = torch.autograd.grad(theirs.square().sum(), (X, conv.weight, conv.bias))
    for ours_grad, their_grad in zip(grads, expected, strict=True):
        torch.testing.assert_close(ours_grad, their_grad, rtol=1e-4, atol=1e-4)


def test_conv2d_module_is_the_books_single_channel_layer() -> None:
    conv = Conv2D((1, 2))
    assert conv.weight.shape == (1, 2) and conv.bias.shape == (1,)
    X = torch.randn(6, 8)
    torch.testing.assert_close(conv(X), corr2d(X, conv.weight) + conv.bias)
    with pytest.raises(ValueError, match="both"):
        Conv2D(3, in_channels=2)


def test_conv2d_learns_the_books_edge_kernel() -> None:
    """D2L §7.2.4: learn K = [1, -1] from the striped image and its edge map, lr 3e-2, 10 steps of summed
    squared error. The book leaves the bias out here; with its scalar bias this learning rate diverges."""
    torch.manual_seed(0)
    X = torch.ones(6, 8)
    X[:, 2:6] = 0
    Y = corr2d(X, torch.tensor([[1.0, -1.0]]))
    assert Y.shape == (6, 7) and Y[:, 1].eq(1).all() and Y[:, 5].eq(-1).all()
    conv = Conv2D((1, 2), bias=False)
    losses = []
    for _ in range(10):
        loss = (conv(X) - Y).square().sum()
        conv.zero_grad()
        loss.backward()
        with torch.no_grad():
            conv.weight -= 3e-2 * conv.weight.grad
        losses.append(loss.item())
    torch.testing.assert_close(conv.weight.detach(), torch.tensor([[1.0, -1.0]]), rtol=0, atol=0.1)
    assert losses[-1] < losses[0] / 10


def test_pool2d_book_example() -> None:
    X = torch.arange(9.0).reshape(3, 3)
    assert torch.equal(pool2d(X, (2, 2)), torch.tensor([[4.0, 5.0], [7.0, 8.0]]))
    assert torch.equal(pool2d(X, (2, 2), "avg"), torch.tensor([[2.0, 3.0], [5.0, 6.0]]))
    with pytest.raises(ValueError, match="mode"):
        pool2d(X, 2, "min")


@pytest.mark.parametrize(("size", "stride", "padding"), [(2, 2, 0), (3, 1, 1), (3, 2, 1), ((3, 2), (2, 1), (1, 0))])
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_pool2d_matches_torch(size, stride, padding, count_include_pad: bool) -> None:
    X = torch.randn(2, 3, 9, 8, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        pool2d(X, size, "max", stride=stride, padding=padding), F.max_pool2d(X, size, stride, padding)
    )
    torch.testing.assert_close(
        pool2d(X, size, "avg", stride=stride, padding=padding, count_include_pad=count_include_pad),
        F.avg_pool2d(X, size, stride, padding, count_include_pad=count_include_pad),
    )


@pytest.mark.parametrize(("num_dims", "shape"), [(2, (16, 5)), (4, (4, 3, 5, 6))])
def test_batch_norm_matches_torch_in_train_and_eval(num_dims: int, shape: tuple[int, ...]) -> None:
    torch.manual_seed(num_dims)
    ours = BatchNorm(shape[1], num_dims=num_dims)
    theirs = (nn.BatchNorm1d if num_dims == 2 else nn.BatchNorm2d)(shape[1])
    with torch.no_grad():  # a non-trivial scale and shift, the same in both
        theirs.weight.uniform_(0.5, 1.5)
        theirs.bias.uniform_(-1, 1)
        ours.gamma.copy_(theirs.weight.view_as(ours.gamma))
        ours.beta.copy_(theirs.bias.view_as(ours.beta))
    for step in range(4):
        X = (torch.randn(shape) * (step + 1) + step).requires_grad_()
        y_ours, y_theirs = ours(X), theirs(X)
        torch.testing.assert_close(y_ours, y_theirs, rtol=1e-4, atol=1e-5)
        upstream = torch.randn(shape)
        grads = torch.autograd.grad(y_ours, (X, ours.gamma, ours.beta), upstream)
        expected = torch.autograd.grad(y_theirs, (X, theirs.weight, theirs.bias), upstream)
        for ours_grad, their_grad in zip(grads, expected, strict=True):
            torch.testing.assert_close(ours_grad.flatten(), their_grad.flatten(), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(ours.moving_mean.flatten(), theirs.running_mean)
        torch.testing.assert_close(ours.moving_var.flatten(), theirs.running_var)
    ours.eval()
    theirs.eval()
    X = torch.randn(shape) * 3 + 1
    torch.testing.assert_close(ours(X), theirs(X), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ours.moving_mean.flatten(), theirs.running_mean)  # eval leaves them alone


def test_batch_norm_function_follows_the_book() -> None:
    """The function alone: grad mode picks the statistics (the book's rule) and ``correction=0`` stores the
    biased variance as the book does."""
    X = torch.randn(8, 3) * 2 + 1
    gamma, beta = torch.ones(1, 3), torch.zeros(1, 3)
    mean, var = torch.zeros(1, 3), torch.ones(1, 3)
    Y, new_mean, new_var = batch_norm(X, gamma, beta, mean, var, eps=1e-5, momentum=0.1, correction=0)
    torch.testing.assert_close(Y.mean(dim=0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(new_mean, 0.9 * mean + 0.1 * X.mean(dim=0, keepdim=True))
    torch.testing.assert_close(new_var, 0.9 * var + 0.1 * X.var(dim=0, correction=0, keepdim=True))
    _, _, unbiased = batch_norm(X, gamma, beta, mean, var, eps=1e-5, momentum=0.1)
    torch.testing.assert_close(unbiased, 0.9 * var + 0.1 * X.var(dim=0, keepdim=True))
    with torch.no_grad():
        Y, same_mean, _ = batch_norm(X, gamma, beta, new_mean, new_var, eps=1e-5, momentum=0.1)
    torch.testing.assert_close(Y, (X - new_mean) / torch.sqrt(new_var + 1e-5))
    assert torch.equal(same_mean, new_mean)


def _shape_cases() -> list[tuple[int, int, int, int]]:
    return [
        (n, k, p, s)
        for n, k, s in itertools.product(range(5, 13), range(1, 6), range(1, 4))
        for p in range(k // 2 + 1)  # PyTorch's pools take at most half the window as padding
    ]


def test_output_size_formulas_match_torch_layers() -> None:
    x = {n: torch.empty(1, 1, n, n, device="meta") for n in range(5, 13)}
    for n, k, p, s in _shape_cases():
        book = conv_output_size(n, k, 2 * p, s)
        assert conv_output_size_symmetric(n, k, p, s) == book
        for layer in (
            nn.Conv2d(1, 1, k, stride=s, padding=p, device="meta"),
            nn.MaxPool2d(k, stride=s, padding=p),
            nn.AvgPool2d(k, stride=s, padding=p),
        ):
            assert layer(x[n]).shape[-1] == book, (layer, n)
        for d in (2, 3):
            if d * (k - 1) + 1 <= n + 2 * p:
                conv = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d, device="meta")
                assert conv(x[n]).shape[-1] == conv_output_size_symmetric(n, k, p, s, dilation=d)
        pool = nn.MaxPool2d(k, stride=s, padding=p, ceil_mode=True)
        assert pool(x[n]).shape[-1] == conv_output_size_symmetric(n, k, p, s, ceil_mode=True), (n, k, p, s)


def test_output_size_book_convention_and_errors() -> None:
    # §7.3: an 8×8 input, 3×3 kernel and one row/column of padding on each side keeps 8; stride 2 halves it.
    assert conv_output_size(8, 3, padding=2) == 8
    assert conv_output_size(8, 3, padding=2, stride=2) == 4
    # LeNet's first convolution: 28 + 2·2 padding, 5×5 kernel.
    assert conv_output_size(28, 5, padding=4) == conv_output_size_symmetric(28, 5, padding=2) == 28
    with pytest.raises(ValueError, match="does not fit"):
        conv_output_size(3, 5)
    with pytest.raises(ValueError, match="does not fit"):
        conv_output_size_symmetric(3, 3, dilation=2)


def test_conv_cost_formula() -> None:
    # LeNet's first convolution on one image: 1·6·5·5·28·28 multiply-adds.
    macs = conv_multiply_adds(in_channels=1, out_channels=6, kernel_size=5, output_size=28)
    assert macs == 117_600
    assert conv_flops(in_channels=1, out_channels=6, kernel_size=5, output_size=28) == 2 * macs
    assert conv_flops(in_channels=1, out_channels=6, kernel_size=5, output_size=28, bias=True) == 2 * macs + 6 * 784
    assert conv_flops(
        in_channels=4, out_channels=6, kernel_size=(3, 1), output_size=(7, 5), batch_size=3, groups=2
    ) == (3 * 2 * 2 * 6 * 3 * 7 * 5)


@pytest.fixture(scope="module")
def small_batches(data_dir) -> list[tuple[torch.Tensor, torch.Tensor]]:
    images, labels = load_split(data_dir / "FashionMNIST" / "raw", train=True)
    x = resize_batch(images[:768], 28)
    return list(zip(x.split(64), labels[:768].split(64), strict=True))


def _train(model: LeNetBN, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> list[float]:
    optimizer = model.configure_optimizers()
    losses = []
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_lenet_bn_scratch_has_the_same_parameters_and_trains_alike(small_batches) -> None:
    torch.manual_seed(0)
    library = LeNetBN()
    torch.manual_seed(0)
    scratch = LeNetBN(scratch_batch_norm=True)
    assert sum(p.numel() for p in scratch.parameters()) == 44_878
    assert sum(isinstance(m, BatchNorm) for m in scratch.modules()) == 4
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in scratch.modules())
    assert scratch.hparams.scratch_batch_norm and not library.hparams.scratch_batch_norm

    # The normalization layers draw no random numbers, so one seed gives both variants the same weights;
    # trained on the same real batches at the book's lr 1.0 they must follow the same loss curve.
    losses = {name: _train(model, small_batches) for name, model in (("nn", library), ("scratch", scratch))}
    assert sum(losses["scratch"][-3:]) < 0.8 * sum(losses["scratch"][:3]), losses["scratch"]
    torch.testing.assert_close(losses["scratch"], losses["nn"], rtol=2e-3, atol=2e-3)
    library.eval()
    scratch.eval()
    x = small_batches[0][0]
    torch.testing.assert_close(scratch(x), library(x), rtol=1e-3, atol=1e-3)
