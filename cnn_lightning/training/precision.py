"""Everything the project knows about a run's precision, in one place: the precision a run gets when its config sets
none (bf16-mixed where the device computes bfloat16 natively, float32 elsewhere; ``--trainer.precision 32-true`` is
always the book's exact numerics), and what a run's precision plugin does, read from the plugin itself (Lightning's
source of truth): the dtype it computes in (for the device's peak FLOP/s and ``summary``'s note), whether it keeps a
gradient scaler, and whether it does nothing but autocast (what the engine's steps can take).

* CUDA GPUs: compute capability 8.0 or newer (Ampere onwards) run bf16 on tensor cores at twice the TF32 rate;
  7.x (V100, T4) has fp16 tensor cores but no bf16, and gets ``16-mixed`` with Lightning's gradient scaler.
* CPUs: those reporting ``avx512_bf16`` or ``amx_bf16`` (Linux ``/proc/cpuinfo``), whose oneDNN kernels run bf16
  convolutions and matrix products natively, faster than float32. Without those instructions bf16 is emulated and
  slower than float32, which is then kept. The measurements: docs/measurements.md, "Precision".
"""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch.plugins.precision import MixedPrecision, Precision

from cnn_lightning.lightning_contract import plugin_compute_dtype

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
FP16_TENSOR_CORES = (7, 0)  # Volta onwards; bf16 from 8.0 (Ampere)


def compute_dtype(plugin: Precision) -> torch.dtype:
    """The dtype a run with this precision plugin (``trainer.precision_plugin``) computes its convolutions and matrix
    products in."""
    return plugin_compute_dtype(plugin)


def is_float32(plugin: Precision) -> bool:
    """Whether the plugin computes in plain float32 (Lightning's default)."""
    return compute_dtype(plugin) == torch.float32


def has_gradient_scaler(plugin: Precision) -> bool:
    """Whether the plugin scales the loss and may skip a step (``16-mixed``'s gradient scaler)."""
    return getattr(plugin, "scaler", None) is not None


def only_autocasts(plugin: Precision) -> bool:
    """Whether the plugin does nothing around a step but autocast its forward: ``32-true`` and ``bf16-mixed``, not a
    gradient scaler's ``16-mixed`` or a plugin of another kind (which converts inputs or wraps the optimizer)."""
    if type(plugin) is MixedPrecision:
        return not has_gradient_scaler(plugin)
    return type(plugin) is Precision


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
