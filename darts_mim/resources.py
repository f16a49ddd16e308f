"""Memory estimates, so that a configuration that cannot fit fails before training starts; CPU
threads, so that training never runs more threads than the process has CPUs.

The estimate counts the activations autograd keeps per time step (gate convolutions, their layer norms,
gate non-linearities and states) for each layer type; it is deliberately rough (within ~2x of measured
peaks on CPU) and is only used to refuse configurations that are clearly out of reach.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

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


# Share of the free memory one training step may take before a lighter configuration is suggested:
# the estimate is within ~2x of measured peaks, and the data, the loader workers, the optimizer state
# and the rest of the process need room too.
COMFORTABLE_SHARE = 0.25
# Smallest side the suggested patch size may shrink the grid to: the 3x3 / 5x5 gate convolutions
# need room, and the paper's own patched grids (Moving MNIST 64 / 4, radar 100 / 4) keep >= 16.
MIN_PATCHED_SIDE = 8


@dataclass(frozen=True)
class MemorySuggestion:
    """A patch size and batch size whose training step fits the budget, and its estimate."""

    patch_size: int
    batch_size: int
    needed_bytes: int


def suggest_patch_and_batch(
    num_hidden: Sequence[int],
    cell_type: str,
    height: int,
    width: int,
    patch_size: int,
    batch_size: int,
    n_steps: int,
    budget_bytes: int,
    bytes_per_value: int = 4,
    activation_checkpointing: bool = False,
) -> MemorySuggestion | None:
    """The lightest change of ``patch_size`` and ``batch_size`` whose training step fits a budget.

    A larger patch is tried first (it divides both sides of the grid and leaves at least
    :data:`MIN_PATCHED_SIDE` cells a side where the grid allows), keeping the batch; when even
    the largest such patch does not fit, the batch is halved at that patch. Estimates come from
    :func:`estimate_training_bytes`.

    Parameters
    ----------
    num_hidden, cell_type, height, width, patch_size, batch_size, n_steps, bytes_per_value, activation_checkpointing
        As for :func:`estimate_training_bytes`: the configuration to start from.
    budget_bytes
        Memory one training step may take.

    Returns
    -------
    MemorySuggestion or None
        The configuration unchanged when it fits, the suggestion otherwise, ``None`` when nothing
        fits (not even batch 1 at the largest patch).
    """

    def needed(p: int, b: int) -> int:
        return estimate_training_bytes(
            num_hidden,
            cell_type,
            height,
            width,
            p,
            b,
            n_steps,
            bytes_per_value,
            activation_checkpointing,
        )

    min_side = min(height, width)
    patches = [
        p
        for p in range(patch_size, min_side + 1)
        if height % p == 0
        and width % p == 0
        and (p == patch_size or min_side // p >= MIN_PATCHED_SIDE)
    ]
    # the patches at the starting batch, then halved batches at the largest patch
    candidates = [(p, batch_size) for p in patches]
    b = batch_size
    while b > 1:
        b //= 2
        candidates.append((patches[-1], b))
    for p, b in candidates:
        n = needed(p, b)
        if n <= budget_bytes:
            return MemorySuggestion(p, b, n)
    return None


def check_training_memory(
    num_hidden: Sequence[int],
    cell_type: str,
    height: int,
    width: int,
    patch_size: int,
    batch_size: int,
    n_steps: int,
    available: int,
    bytes_per_value: int = 4,
    activation_checkpointing: bool = False,
) -> MemorySuggestion | None:
    """Before training: fail when a training step cannot fit in ``available`` bytes, warn when it
    takes more than :data:`COMFORTABLE_SHARE` of them, and in both cases name a patch size and
    batch size that fit (:func:`suggest_patch_and_batch`).

    Parameters are those of :func:`estimate_training_bytes`, plus ``available``: the free memory
    of the device that trains. Returns the suggestion when one was made, else ``None``.
    """
    config = dict(
        num_hidden=num_hidden,
        cell_type=cell_type,
        height=height,
        width=width,
        n_steps=n_steps,
        bytes_per_value=bytes_per_value,
        activation_checkpointing=activation_checkpointing,
    )
    needed = estimate_training_bytes(patch_size=patch_size, batch_size=batch_size, **config)
    budget = int(available * COMFORTABLE_SHARE)
    if needed <= budget:
        return None
    suggestion = suggest_patch_and_batch(
        patch_size=patch_size, batch_size=batch_size, budget_bytes=budget, **config
    )
    if suggestion is None:
        advice = (
            "No patch size or batch size alone brings it within a quarter of that: use fewer or "
            "narrower layers (num_hidden), shorter chunks, or activation_checkpointing=True."
        )
    else:
        cells = (height // suggestion.patch_size) * (width // suggestion.patch_size)
        advice = (
            f"patch_size={suggestion.patch_size} (the cells run on a "
            f"{height // suggestion.patch_size}x{width // suggestion.patch_size} grid, {cells} "
            f"cells) with batch_size={suggestion.batch_size} needs about "
            f"{suggestion.needed_bytes / 2**30:.2f} GiB, within a quarter of the free memory; "
            "activation_checkpointing=True, fewer or narrower layers, or shorter chunks also help."
        )
    what = (
        f"One training step of this configuration ({height}x{width} grid, "
        f"patch_size={patch_size}, batch_size={batch_size})"
    )
    check_fits_in_memory(needed, available, what, advice)
    warnings.warn(
        f"{what} needs about {needed / 2**30:.1f} GiB, more than a quarter of the "
        f"{available / 2**30:.1f} GiB free: training will be slow and may run out of memory. "
        f"{advice}",
        UserWarning,
        stacklevel=3,
    )
    return suggestion


# ---------------------------------------------------------------------- CPU threads
def available_cpus() -> int:
    """The CPUs this process may run on: its affinity mask, within a cgroup (v2) CPU quota.

    ``os.cpu_count()`` and torch's default thread count count the machine's cores, also those a
    container's quota or ``taskset`` does not give the process.

    Returns
    -------
    int
        At least 1.
    """
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as fh:
            quota, period = fh.read().split()[:2]
        if quota != "max":
            n = min(n, int(quota) // int(period))
    except (OSError, ValueError):
        pass
    return max(1, n)


def default_threads() -> int:
    """The torch threads of the command line and the demo without ``--threads``.

    ``OMP_NUM_THREADS`` when it is set to a positive integer, else 1: MIM's per-step convolutions on
    small grids and plain series are tiny, so intra-op threads gain little on an idle machine and
    cost much as soon as other work shares the cores (the measured figures are in the benchmarks
    docs).
    """
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else 1


@contextlib.contextmanager
def torch_threads(threads: int | None = None) -> Iterator[int]:
    """Run the block with ``threads`` torch threads (default :func:`default_threads`), never more
    than :func:`available_cpus`; torch's setting is restored afterwards.

    Yields
    ------
    int
        The threads the block runs with.
    """
    before = torch.get_num_threads()
    n = min(threads or default_threads(), available_cpus())
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def capped_threads() -> Iterator[None]:
    """Run the block with torch's thread setting, but at most :func:`available_cpus` threads: torch
    counts the machine's cores, and more threads than CPUs only wait on each other. A no-op where
    torch's setting already fits."""
    before = torch.get_num_threads()
    cap = available_cpus()
    if before <= cap:
        yield
        return
    torch.set_num_threads(cap)
    try:
        yield
    finally:
        torch.set_num_threads(before)
