"""The precision a run gets when its config sets none."""

from __future__ import annotations

import torch

from cnn_lightning.commands.fit import make_cli
from cnn_lightning.training.precision import default_precision


def test_precision_is_bf16_where_the_hardware_computes_it() -> None:
    assert default_precision("cpu", flags={"avx512f", "avx512_bf16"}) == "bf16-mixed"
    assert default_precision("cpu", flags={"amx_bf16", "amx_tile"}) == "bf16-mixed"
    assert default_precision("cpu", flags={"avx512f", "avx2"}) == "32-true"
    assert default_precision("mps", flags={"avx512_bf16"}) == "32-true"
    if not torch.cuda.is_available():
        assert default_precision("auto", flags=set()) == "32-true"
    explicit = make_cli(["--config", "lenet.yaml", "--trainer.precision", "32-true"], run=False)
    assert str(explicit.trainer.precision) == "32-true"  # the book's numerics stay one flag away
