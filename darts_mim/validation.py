"""Input checks shared by the model, the ONNX runtime and the command line.

Each check raises a ``ValueError`` that says what is wrong, where, and how to fix it: bad data must fail
loudly here rather than become a confident forecast.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from darts import TimeSeries

from darts_mim.grid import GridSpec, grid_spec_of


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
