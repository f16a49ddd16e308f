"""Gridded arrays <-> Darts ``TimeSeries``.

Darts has no spatial type: a grid of ``C`` channels on ``H x W`` cells is stored as one ``TimeSeries``
with ``C * H * W`` components in channel-major order (all cells of channel 0, then channel 1, ...), and
the grid's shape and channel names travel in ``TimeSeries.metadata`` under :data:`GRID_KEY`, which
Darts keeps through slicing, ``predict()`` and ``historical_forecasts()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from darts import TimeSeries

GRID_KEY = "darts_mim_grid"


@dataclass(frozen=True)
class GridSpec:
    """Shape of a gridded series: channel names and the spatial size ``height x width``."""

    channels: tuple[str, ...]
    height: int
    width: int

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def n_cells(self) -> int:
        return self.height * self.width

    @property
    def n_components(self) -> int:
        return self.n_channels * self.n_cells

    def to_metadata(self) -> dict:
        return {"channels": list(self.channels), "height": self.height, "width": self.width}

    @classmethod
    def from_metadata(cls, meta: dict) -> GridSpec:
        return cls(tuple(str(c) for c in meta["channels"]), int(meta["height"]), int(meta["width"]))

    def component_names(self) -> list[str]:
        """Component names ``"<channel>_r<row>_c<col>"`` in channel-major order."""
        return [
            f"{ch}_r{r}_c{c}"
            for ch in self.channels
            for r in range(self.height)
            for c in range(self.width)
        ]


def grid_spec_of(series: TimeSeries) -> GridSpec | None:
    """The grid stored in ``series.metadata``, or ``None`` for a plain series."""
    meta = series.metadata or {}
    if GRID_KEY not in meta:
        return None
    spec = GridSpec.from_metadata(meta[GRID_KEY])
    if spec.n_components != series.n_components:
        raise ValueError(
            f"The series' grid metadata says {spec.n_channels} channel(s) on "
            f"{spec.height}x{spec.width} = {spec.n_components} components, but the series has "
            f"{series.n_components}. The metadata was probably kept after selecting or stacking "
            "components; rebuild the series with darts_mim.grid_to_series()."
        )
    return spec


def _as_time_index(times, n: int) -> pd.Index:
    if times is None:
        return pd.RangeIndex(n)
    if isinstance(times, pd.RangeIndex):
        index = times
    else:
        index = pd.Index(times)
        if not isinstance(index, pd.DatetimeIndex | pd.RangeIndex):
            try:
                index = pd.DatetimeIndex(pd.to_datetime(index))
            except (ValueError, TypeError) as err:
                raise ValueError(
                    "`times` must be a pandas DatetimeIndex, RangeIndex or something "
                    f"pandas.to_datetime() can parse; got {type(times).__name__}: {err}"
                ) from err
    if len(index) != n:
        raise ValueError(f"`times` has {len(index)} entries but the array has {n} time steps.")
    if index.has_duplicates:
        first = index[index.duplicated()][0]
        raise ValueError(
            f"The time index has duplicated timestamps (the first: {first}). Aggregate or drop the "
            "duplicates before building the series."
        )
    if not index.is_monotonic_increasing:
        raise ValueError("The time index must be sorted in increasing order.")
    return index


def grid_to_series(
    array: np.ndarray | xr.DataArray,
    times: pd.DatetimeIndex | pd.RangeIndex | Sequence | None = None,
    channels: Sequence[str] | None = None,
    freq: str | None = None,
) -> TimeSeries:
    """Build a gridded ``TimeSeries`` from a ``(T, C, H, W)`` or ``(T, H, W)`` array.

    Parameters
    ----------
    array
        Values of shape ``(T, C, H, W)`` or ``(T, H, W)`` (one channel), or an ``xarray.DataArray``
        with those dimensions, time first. A DataArray's ``time`` coordinate is used when ``times``
        is not given, and a ``channel`` (or ``variable``) coordinate names the channels.
    times
        The time index (length ``T``). Defaults to a ``RangeIndex``.
    channels
        Channel names, one per channel. Defaults to ``"ch0", "ch1", ...``.
    freq
        Optional frequency passed to Darts when the index is a ``DatetimeIndex`` whose frequency cannot be
        inferred.

    Returns
    -------
    TimeSeries
        ``C * H * W`` components in channel-major order, with the grid in ``metadata``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from darts_mim import grid_to_series, series_to_grid
    >>> arr = np.random.rand(48, 2, 4, 3).astype("float32")
    >>> s = grid_to_series(arr, pd.date_range("2024", periods=48, freq="30min"), ["in", "out"])
    >>> bool((series_to_grid(s) == arr).all())
    True
    """
    if isinstance(array, xr.DataArray):
        da = array
        if times is None and da.dims and da.dims[0] in da.coords:
            times = da.coords[da.dims[0]].values
        if channels is None and da.ndim == 4 and da.dims[1] in da.coords:
            channels = [str(c) for c in da.coords[da.dims[1]].values]
        array = da.values
    values = np.asarray(array)
    if (
        values.dtype == object
        or not np.issubdtype(values.dtype, np.number)
        or np.issubdtype(values.dtype, np.complexfloating)
    ):
        raise ValueError(
            f"Grid values must be numeric (real), got dtype {values.dtype}. Convert with "
            "array.astype('float32') first."
        )
    if values.ndim == 3:
        values = values[:, None]
    if values.ndim != 4:
        raise ValueError(
            f"Expected a (T, C, H, W) or (T, H, W) array, got shape {values.shape}. "
            "Move the time axis first and the two spatial axes last."
        )
    if values.dtype not in (np.float32, np.float64):
        # Darts supports only float32 / float64: integers, float16 and long doubles become float32.
        values = values.astype(np.float32)
    t, c, h, w = values.shape
    if channels is None:
        channels = [f"ch{i}" for i in range(c)]
    channels = tuple(str(ch) for ch in channels)
    if len(channels) != c:
        raise ValueError(f"Got {len(channels)} channel names for {c} channels.")
    spec = GridSpec(channels, h, w)
    index = _as_time_index(times, t)
    flat = values.reshape(t, c * h * w)
    kwargs = dict(columns=spec.component_names(), metadata={GRID_KEY: spec.to_metadata()})
    if isinstance(index, pd.DatetimeIndex):
        if index.freq is None and freq is None and len(index) >= 3:
            freq = pd.infer_freq(index)
        return TimeSeries.from_times_and_values(index, flat, freq=freq, **kwargs)
    return TimeSeries.from_times_and_values(index, flat, **kwargs)


def series_to_grid(series: TimeSeries, grid: GridSpec | None = None) -> np.ndarray:
    """Give back the grid of a gridded series.

    Parameters
    ----------
    series
        A series built by :func:`grid_to_series` (or a forecast of such a series).
    grid
        The grid to use when the series carries no grid metadata.

    Returns
    -------
    numpy.ndarray
        ``(T, C, H, W)`` for a deterministic series, ``(T, C, H, W, samples)`` for a probabilistic one.
    """
    spec = grid or grid_spec_of(series)
    if spec is None:
        raise ValueError(
            "This series carries no grid metadata; pass `grid=GridSpec(...)` or build it with "
            "darts_mim.grid_to_series()."
        )
    if series.n_components != spec.n_components:
        raise ValueError(
            f"The series has {series.n_components} components, the grid needs {spec.n_components}."
        )
    values = series.all_values(copy=False)  # (T, components, samples)
    t, _, s = values.shape
    out = values.reshape(t, spec.n_channels, spec.height, spec.width, s)
    return out[..., 0].copy() if s == 1 else out.copy()


def with_grid(series: TimeSeries, spec: GridSpec) -> TimeSeries:
    """Attach grid metadata to a series whose components are already in channel-major order."""
    if series.n_components != spec.n_components:
        raise ValueError(
            f"The series has {series.n_components} components but a {spec.n_channels}x"
            f"{spec.height}x{spec.width} grid needs {spec.n_components}."
        )
    meta = dict(series.metadata or {})
    meta[GRID_KEY] = spec.to_metadata()
    return series.with_metadata(meta)


def always_missing_cells(series: Sequence[TimeSeries]) -> np.ndarray:
    """Boolean mask over components that are NaN at every time step of every series.

    Such components (land in a sea-surface grid, cells outside a radar's range) are masked out of the
    loss and forecast as NaN instead of making training fail.
    """
    mask = None
    for s in series:
        values = s.all_values(copy=False)
        nan_all = np.isnan(values).all(axis=(0, 2))
        mask = nan_all if mask is None else (mask & nan_all)
    return mask if mask is not None else np.zeros(0, dtype=bool)
