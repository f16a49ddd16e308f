"""The training's bf16 autocast (``TrainingRecipe(bf16_autocast=True)``, ``precision="auto"`` before
0.6): bf16 autocast on CPUs that compute in bf16 natively.

On a CPU with AVX512-BF16 or AMX the convolutions of a training step run faster in bf16 than in
float32; what that gains and costs in speed and accuracy is in the benchmarks docs
(``benchmarks/train_speed.py``, ``benchmarks/bf16_accuracy.py``). It is opt-in. Elsewhere (older CPUs
emulate bf16 and are slower with it, GPUs have their own mixed precision that the user chooses)
training stays in the model's dtype.

Only training steps are autocast: validation, prediction and ONNX export keep float32, so forecasts
and exported graphs do not depend on the machine that trained the model beyond the weights.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping

import torch

# CPU features that compute in bf16 in hardware (x86): the names of torch.cpu.get_capabilities() and
# of the flags of Linux's /proc/cpuinfo alike.
NATIVE_BF16_FEATURES = ("avx512_bf16", "amx_bf16")
CPUINFO = "/proc/cpuinfo"


def _cpu_capabilities() -> Mapping[str, object] | None:
    """torch's public CPU capability map (``torch.cpu.get_capabilities``), or ``None`` where this
    torch has none or cannot read the CPU."""
    capabilities = getattr(torch.cpu, "get_capabilities", None)  # public in recent torch releases
    if capabilities is None:
        return None
    try:
        return capabilities()
    except RuntimeError:
        return None


def _cpuinfo_flags() -> frozenset[str]:
    """The feature flags Linux lists for the CPU (empty where there is no ``/proc/cpuinfo``)."""
    try:
        with open(CPUINFO, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "flags":
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic in hardware (AVX512-BF16 or AMX).

    Read from ``torch.cpu.get_capabilities()`` where torch has it, else from the flags of Linux's
    ``/proc/cpuinfo``; elsewhere (an older torch off Linux) the answer is ``False`` and training
    stays in float32. oneDNN's own bf16 support is not the test: it is also true on AVX-512 CPUs
    without BF16, where oneDNN emulates bf16 and is slower than float32.
    """
    capabilities = _cpu_capabilities()
    if capabilities is not None:
        return any(bool(capabilities.get(name)) for name in NATIVE_BF16_FEATURES)
    return any(name in _cpuinfo_flags() for name in NATIVE_BF16_FEATURES)


def use_auto_bf16(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether the automatic precision trains in bf16 autocast here: float32 weights on a CPU with
    native bf16."""
    return device.type == "cpu" and dtype == torch.float32 and cpu_has_native_bf16()


def training_autocast(device: torch.device, dtype: torch.dtype, auto: bool):
    """The context a training step runs in: bf16 autocast when ``auto`` and :func:`use_auto_bf16`
    say so, else nothing.

    An autocast the user set up (Lightning's ``precision="bf16-mixed"``) is left alone: ``auto`` is
    only true when no precision was given.
    """
    if auto and use_auto_bf16(device, dtype) and not torch.is_autocast_enabled("cpu"):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


__all__ = ["cpu_has_native_bf16", "use_auto_bf16", "training_autocast"]
