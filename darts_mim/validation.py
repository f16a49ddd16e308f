"""Input checks shared by the model, the ONNX runtime and the command line.

Each check raises a ``ValueError`` that says what is wrong, where, and how to fix it: bad data must fail
loudly here rather than become a confident forecast.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from darts import TimeSeries

from darts_mim.grid import GridSpec, grid_spec_of
from darts_mim.nn.network import CELL_TYPES, DIFF_MODES

SAMPLING_SCHEDULES = ("linear", "teacher_forcing", "free_running")


def check_target_grid(series: Sequence[TimeSeries], grid_shape: Sequence[int] | None) -> GridSpec:
    """The grid shared by all target series: from ``grid_shape``, else their metadata, else 1x1.

    Parameters
    ----------
    series
        The target series (at least one).
    grid_shape
        ``(C, H, W)`` or ``(H, W)`` given by the user, or ``None``.
    """
    if not series:
        raise ValueError("Got no target series.")
    first = series[0]
    n_comp = first.n_components
    if grid_shape is not None:
        dims = [int(g) for g in grid_shape]
        height, width = dims[-2], dims[-1]
        if n_comp % (height * width):
            raise ValueError(
                f"The series has {n_comp} components, which is not a multiple of the {height}x{width} "
                f"grid's {height * width} cells. Check `grid_shape` (components must be channel-major: "
                "all cells of channel 0, then channel 1, ...)."
            )
        channels = n_comp // (height * width)
        if len(dims) == 3 and dims[0] != channels:
            raise ValueError(
                f"grid_shape={tuple(dims)} needs {dims[0] * height * width} components, the series has "
                f"{n_comp}."
            )
        meta_spec = grid_spec_of(first)
        names = (
            meta_spec.channels
            if meta_spec is not None and meta_spec.n_channels == channels
            else tuple(f"ch{i}" for i in range(channels))
        )
        spec = GridSpec(names, height, width)
    else:
        spec = grid_spec_of(first) or GridSpec(tuple(first.components), 1, 1)
    for s in series[1:]:
        other = grid_spec_of(s)
        if s.n_components != n_comp or (other is not None and grid_shape is None and other != spec):
            raise ValueError(
                f"All target series must share one grid: got {n_comp} and {s.n_components} components"
                f" ({spec} vs {other})."
            )
    return spec


def check_series_values(
    series: TimeSeries, name: str, allowed_nan_components: Sequence[int] | None = None
) -> None:
    """Reject non-float dtypes, NaN (outside always-missing components) and infinite values."""
    values = series.all_values(copy=False)
    if values.dtype not in (np.float32, np.float64):
        raise ValueError(
            f"`{name}` has dtype {values.dtype}; MIMModel takes float32 or float64 series. Convert with "
            "series.astype(np.float32)."
        )
    bad_inf = np.isinf(values)
    bad_nan = np.isnan(values)
    if allowed_nan_components:
        bad_nan[:, list(allowed_nan_components), :] = False
    for bad, what, fix in (
        (
            bad_nan,
            "NaN",
            "Fill the gaps first (e.g. darts.utils.missing_values.fill_missing_values); components that "
            "are NaN at every step of the training series (such as land cells) are supported and masked",
        ),
        (bad_inf, "infinite values", "Replace or clip them before fitting or predicting"),
    ):
        if bad.any():
            t_idx, c_idx, _ = np.argwhere(bad)[0]
            raise ValueError(
                f"`{name}` contains {what}: {int(bad.sum())} value(s), the first at time "
                f"{series.time_index[t_idx]} in component {series.components[c_idx]!r}. {fix}."
            )


def check_hyper_parameters(params: dict) -> None:
    """Clear errors for hyper-parameters that would fail deep inside the network."""

    def positive_int(name: str, value, minimum: int = 1) -> None:
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
            raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")

    positive_int("input_chunk_length", params["input_chunk_length"])
    positive_int("output_chunk_length", params["output_chunk_length"])
    positive_int("output_chunk_shift", params.get("output_chunk_shift", 0), minimum=0)
    num_hidden = params.get("num_hidden", (64, 64, 64, 64))
    if isinstance(num_hidden, int | np.integer) or not len(num_hidden):
        raise ValueError(
            f"`num_hidden` must be a sequence of layer widths, e.g. (64, 64, 64, 64); got {num_hidden!r}."
        )
    for width in num_hidden:
        positive_int("num_hidden entries", width)
    filter_size = params.get("filter_size", 5)
    positive_int("filter_size", filter_size)
    if filter_size % 2 == 0:
        raise ValueError(f"`filter_size` must be odd (same padding), got {filter_size}.")
    positive_int("patch_size", params.get("patch_size", 1))
    if params.get("sampling_decay_steps") is not None:
        positive_int("sampling_decay_steps", params["sampling_decay_steps"])
    if params.get("diff_mode", "cascade") not in DIFF_MODES:
        raise ValueError(f"`diff_mode` must be one of {DIFF_MODES}, got {params['diff_mode']!r}.")
    if params.get("cell_type", "mim") not in CELL_TYPES:
        raise ValueError(f"`cell_type` must be one of {CELL_TYPES}, got {params['cell_type']!r}.")
    if params.get("sampling_schedule", "linear") not in SAMPLING_SCHEDULES:
        raise ValueError(
            f"`sampling_schedule` must be one of {SAMPLING_SCHEDULES}, got "
            f"{params['sampling_schedule']!r}."
        )
    start = params.get("sampling_start", 1.0)
    if not 0.0 <= float(start) <= 1.0:
        raise ValueError(f"`sampling_start` is a probability in [0, 1], got {start!r}.")
    grid_shape = params.get("grid_shape")
    if grid_shape is not None and (
        len(grid_shape) not in (2, 3) or any(int(g) < 1 for g in grid_shape)
    ):
        raise ValueError(
            f"`grid_shape` must be (C, H, W) or (H, W) of positive sizes, got {grid_shape}."
        )
