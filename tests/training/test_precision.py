"""The precision a run gets when its config sets none."""

from __future__ import annotations

import pytest
import torch
import yaml

from cnn_lightning.commands.fit import make_cli
from cnn_lightning.training.finite_loss_guard import SCALER_SKIPS_ALLOWED, FiniteLossGuard
from cnn_lightning.training.precision import default_precision
from tests.conftest import REPO

CONFIGS = REPO / "configs"


def test_precision_is_bf16_where_the_hardware_computes_it() -> None:
    assert default_precision("cpu", flags={"avx512f", "avx512_bf16"}) == "bf16-mixed"
    assert default_precision("cpu", flags={"amx_bf16", "amx_tile"}) == "bf16-mixed"
    assert default_precision("cpu", flags={"avx512f", "avx2"}) == "32-true"
    assert default_precision("mps", flags={"avx512_bf16"}) == "32-true"
    if not torch.cuda.is_available():
        assert default_precision("auto", flags=set()) == "32-true"
    explicit = make_cli(["--config", "lenet.yaml", "--trainer.precision", "32-true"], run=False)
    assert str(explicit.trainer.precision) == "32-true"  # the book's numerics stay one flag away


@pytest.mark.parametrize("config", sorted(str(path.relative_to(CONFIGS)) for path in CONFIGS.rglob("*.yaml")))
def test_no_config_forces_a_precision_the_device_may_emulate(config: str) -> None:
    """A config leaves the precision to the device (bf16 only where native) or asks for the book's float32."""
    assert yaml.safe_load((CONFIGS / config).read_text()).get("trainer", {}).get("precision") in (None, "32-true")


@pytest.mark.parametrize(
    ("capability", "bf16", "expected"),
    [
        ((8, 0), True, "bf16-mixed"),
        ((7, 5), False, "16-mixed"),
        ((7, 0), False, "16-mixed"),
        ((6, 1), False, "32-true"),
    ],
)
def test_gpus_get_their_tensor_cores(capability: tuple[int, int], bf16: bool, expected: str, monkeypatch) -> None:
    """A100/H100: bf16-mixed; V100 and Colab's T4 (7.x, fp16 tensor cores, no bf16): 16-mixed; older: float32."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert default_precision("auto", flags=set()) == expected
    assert default_precision("cpu", flags=set()) == "32-true"  # the CPU of that machine keeps float32


def test_the_guard_tells_a_skipped_step_from_a_divergence() -> None:
    """Under 16-mixed a few infinite losses in a row are steps the gradient scaler skips; more is a divergence."""
    seen = []
    guard = FiniteLossGuard(lambda loss, epoch, step, batch: seen.append(step), skips_allowed=SCALER_SKIPS_ALLOWED)
    inf, one = torch.tensor(float("inf")), torch.tensor(1.0)
    for step in range(SCALER_SKIPS_ALLOWED):
        guard.check(inf, step, step=step)
    guard.check(one, 20, step=20)  # the scaler found a scale that fits: training goes on
    assert seen == [] and guard.skipped_in_a_row == 0
    for step in range(21, 22 + SCALER_SKIPS_ALLOWED):
        guard.check(inf, step, step=step)
    assert seen == [21 + SCALER_SKIPS_ALLOWED]  # one more than the scaler's skipping explains
    strict = FiniteLossGuard(lambda loss, epoch, step, batch: seen.append(("strict", step)))
    strict.check(inf, 0, step=0)
    assert seen[-1] == ("strict", 0)  # any other precision: the first non-finite loss
