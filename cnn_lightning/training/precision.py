"""Everything the project knows about a run's precision, in one place: the precision a run gets when its config sets
none (bf16-mixed where the device computes bfloat16 natively, float32 elsewhere; ``--trainer.precision 32-true`` is
always the book's exact numerics), the dtype each precision computes in (for the device's peak FLOP/s), and which
spellings mean float32 (for ``summary``'s note).

* CUDA GPUs: compute capability 8.0 or newer (Ampere onwards) run bf16 on tensor cores at twice the TF32 rate;
  7.x (V100, T4) has fp16 tensor cores but no bf16, and gets ``16-mixed`` with Lightning's gradient scaler.
* CPUs: those reporting ``avx512_bf16`` or ``amx_bf16`` (Linux ``/proc/cpuinfo``), whose oneDNN kernels run bf16
  convolutions and matrix products natively, faster than float32. Without those instructions bf16 is emulated and
  slower than float32, which is then kept. The measurements: docs/measurements.md, "Precision".
"""

from __future__ import annotations

from pathlib import Path

import torch

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
FP16_TENSOR_CORES = (7, 0)  # Volta onwards; bf16 from 8.0 (Ampere)
# Compute dtype of each Trainer precision, for the device's peak FLOP/s (MFU); anything else counts as float32.
PRECISION_DTYPES = {
    "bf16-mixed": torch.bfloat16,
    "bf16-true": torch.bfloat16,
    "16-mixed": torch.float16,
    "16-true": torch.float16,
    "64-true": torch.float64,
}
FLOAT32_PRECISIONS = ("None", "32", "32-true")  # Lightning's spellings of its default


def compute_dtype(precision: object) -> torch.dtype:
    """The dtype a run with Trainer ``precision`` computes its convolutions and matrix products in."""
    return PRECISION_DTYPES.get(str(precision), torch.float32)


def is_float32(precision: object) -> bool:
    """Whether Trainer ``precision`` is plain float32 (Lightning's default, in any of its spellings)."""
    return str(precision) in FLOAT32_PRECISIONS


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
    """``bf16-mixed`` where :func:`native_bf16`; ``16-mixed`` (float16 with Lightning's gradient scaler) on CUDA GPUs
    with tensor cores but no bf16 (compute capability 7.x: V100, T4, the RTX 20 series); else ``32-true``."""
    if native_bf16(accelerator, flags):
        return "bf16-mixed"
    if runs_on_cuda(accelerator) and torch.cuda.get_device_capability() >= FP16_TENSOR_CORES:
        return "16-mixed"
    return "32-true"
