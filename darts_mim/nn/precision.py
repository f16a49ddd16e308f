"""The automatic training precision (``MIMModel(precision="auto")``): bf16 autocast on CPUs that
compute in bf16 natively.

On a CPU with AVX512-BF16 or AMX, bf16 autocast makes a training step of MIM about 1.4x (bike grid) to
1.8x (Moving MNIST) faster than float32 (``benchmarks/train_speed.py``). It is opt-in: on the bike
validation split its RMSE was within 0.5 % of float32 over eight seeds, but it was worse on all seven
grids of the robustness benchmark's validation parts (``benchmarks/bf16_accuracy.py``). Elsewhere (older CPUs emulate bf16 and are slower with it, GPUs
have their own mixed precision that the user chooses) training stays in the model's dtype.

Only training steps are autocast: validation, prediction and ONNX export keep float32, so forecasts
and exported graphs do not depend on the machine that trained the model beyond the weights.
"""

from __future__ import annotations

import contextlib
import functools

import torch


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic in hardware (AVX512-BF16 or AMX tiles).

    ``torch.ops.mkldnn._is_mkldnn_bf16_supported`` is not the test: it is also true on AVX-512 CPUs
    without BF16, where oneDNN emulates bf16 and is slower than float32.
    """
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    for name in checks:
        check = getattr(torch.cpu, name, None)  # private helpers: absent in some builds
        try:
            if check is not None and check():
                return True
        except RuntimeError:
            continue
    return False


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
