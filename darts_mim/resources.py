"""Memory estimates, so that a configuration that cannot fit fails before training starts.

The estimate counts the activations autograd keeps per time step (gate convolutions, their layer norms,
gate non-linearities and states) for each layer type; it is deliberately rough (within ~2x of measured
peaks on CPU) and is only used to refuse configurations that are clearly out of reach.
"""

from __future__ import annotations

from collections.abc import Sequence

import psutil
import torch

# Floats kept for the backward pass per hidden channel, per cell position and time step (counted from
# the cells: 3 gate convolutions of 4*nh with their norms and non-linearities for an ST-LSTM; MIM-N and
# MIM-S add two such peephole cells in a MIM block).
_FLOATS_PER_CHANNEL = {"stlstm": 32, "mim": 80}
# States kept per hidden channel when each time step is recomputed (activation checkpointing).
_STATES_PER_CHANNEL = {"stlstm": 3, "mim": 6}


def estimate_training_bytes(
    num_hidden: Sequence[int],
    cell_type: str,
    height: int,
    width: int,
    patch_size: int,
    batch_size: int,
    n_steps: int,
    bytes_per_value: int = 4,
    activation_checkpointing: bool = False,
) -> int:
    """Rough peak memory of one training step in bytes.

    Parameters
    ----------
    num_hidden
        Width of each layer.
    cell_type
        ``"mim"`` or ``"stlstm"``; the first layer is always an ST-LSTM.
    height, width
        Grid size before patching.
    patch_size
        Space-to-depth factor.
    batch_size
        Sequences per training step.
    n_steps
        Recurrent steps per sequence (``input_chunk_length + output_chunk_length - 1`` plus any shift).
    bytes_per_value
        4 for float32, 8 for float64, 2 for half precision.
    activation_checkpointing
        Whether each step is recomputed in the backward pass (keeps only the states).
    """
    cells = (height // patch_size) * (width // patch_size)
    table = _STATES_PER_CHANNEL if activation_checkpointing else _FLOATS_PER_CHANNEL
    per_step = 0
    for layer, hidden in enumerate(num_hidden):
        kind = "stlstm" if layer == 0 or cell_type == "stlstm" else "mim"
        per_step += table[kind] * hidden
    total = per_step * cells * n_steps * batch_size
    if activation_checkpointing:
        # One step's full activations are alive while it is recomputed.
        total += sum(_FLOATS_PER_CHANNEL["mim"] * h for h in num_hidden) * cells * batch_size
    return int(total * bytes_per_value)


def available_bytes(accelerator: str | None = None) -> int:
    """Free memory of the device that will train: the current CUDA device for a GPU run, RAM otherwise."""
    if accelerator in ("gpu", "cuda", "auto", None) and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info()
        return int(free)
    return int(psutil.virtual_memory().available)


def check_fits_in_memory(
    needed: int,
    available: int,
    what: str = "Training this configuration",
    advice: str = (
        "Reduce batch_size, use a larger patch_size, fewer or narrower layers (num_hidden), shorter "
        "chunks, or activation_checkpointing=True."
    ),
) -> None:
    """Raise a ``ValueError`` saying how much memory ``what`` needs when it cannot fit."""
    if needed > available:
        raise ValueError(
            f"{what} needs about {needed / 2**30:.1f} GiB, but only {available / 2**30:.1f} GiB is "
            f"available. {advice}"
        )
