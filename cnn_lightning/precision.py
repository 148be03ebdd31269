"""The precision a run gets when its config sets none: bf16-mixed where the device computes bfloat16 natively,
float32 elsewhere. ``--trainer.precision 32-true`` is always the book's exact numerics.

* CUDA GPUs: compute capability 8.0 or newer (Ampere onwards) run bf16 on tensor cores at twice the TF32 rate.
* CPUs: those reporting ``avx512_bf16`` or ``amx_bf16`` (Linux ``/proc/cpuinfo``), whose oneDNN kernels run bf16
  convolutions and matrix products natively: on a Zen 4 EPYC ResNet-18 trained 1.9× faster in bf16-mixed. Without
  those instructions bf16 is emulated and slower (20 % on an AVX-512 Xeon without them), so float32 is kept.
"""

from __future__ import annotations

from pathlib import Path

import torch

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The instruction-set flags the kernel reports for the first CPU (empty where there is no /proc/cpuinfo)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def runs_on_cuda(accelerator: object) -> bool:
    """Whether ``--trainer.accelerator`` puts the run on a CUDA GPU."""
    wanted = accelerator if isinstance(accelerator, str) else type(accelerator).__name__.lower()
    return (wanted in ("auto", "gpu", "cuda") or wanted.startswith("cuda")) and torch.cuda.is_available()


def native_bf16(accelerator: object, flags: set[str] | None = None) -> bool:
    """Whether the device a run with this accelerator lands on computes bfloat16 natively."""
    if runs_on_cuda(accelerator):
        return torch.cuda.is_bf16_supported(including_emulation=False)
    wanted = accelerator if isinstance(accelerator, str) else type(accelerator).__name__.lower()
    if wanted not in ("auto", "cpu"):
        return False  # other accelerators (MPS, XLA): keep float32
    return bool((cpu_flags() if flags is None else flags) & set(CPU_BF16_FLAGS))


def default_precision(accelerator: object, flags: set[str] | None = None) -> str:
    """``bf16-mixed`` where :func:`native_bf16`, else ``32-true``."""
    return "bf16-mixed" if native_bf16(accelerator, flags) else "32-true"
