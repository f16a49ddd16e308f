"""The window-reading machinery the lazy training and inference datasets share.

:class:`_LazyGrid` arranges the target and the covariates of a lazily opened grid for reads of a
window of steps (:func:`_read`, one :class:`_Covariate` per covariate), aligns their time axes
(:func:`_time_index`, :func:`_time_dim_of_plain`, :func:`_offset`) and hands ``naive_anchor="auto"``
a recent window of the target (``_ANCHOR_STEPS`` steps on at most about ``_ANCHOR_CELLS`` cells).
It is kept in one module so that :mod:`~darts_mim.datasets.lazy.training` and
:mod:`~darts_mim.datasets.lazy.inference` each hold only what their Darts dataset adds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from darts_mim.grid import GridLayout, GridSpec, _integer_index, dataarray_to_grid

from .stats import GridStats, _as_frames

# Steps and cells of the target that ``recent_values`` hands to ``naive_anchor="auto"``: enough to
# rank persistence against the seasonal naive forecast, small enough for any grid.
_ANCHOR_STEPS = 336
_ANCHOR_CELLS = 4096


def _read(data: Any, start: int, stop: int, dtype: np.dtype) -> np.ndarray:
    """Steps ``start:stop`` of a (time, ...) array as ``(steps, components)``, read from the store.

    dask's synchronous scheduler: each loader worker reads its own window in its own process, so a
    thread pool per read would only compete with training for the cores.
    """
    window = data[start:stop]
    if hasattr(window, "compute"):
        window = window.compute(scheduler="synchronous")
    window = np.asarray(window)
    return window.reshape(len(window), -1).astype(dtype, copy=False)


@dataclass
class _Covariate:
    """A covariate arranged for reading: its lazy values, its step offset from the target's first
    step, its number of components and whether it is gridded like the target."""

    data: Any
    offset: int
    length: int
    n_components: int
    gridded: bool
    n_channels: int


class _LazyGrid:
    """What both datasets share: the target and covariates arranged for window reads, the grid, the
    time axis, and the reads themselves."""

    def _setup(
        self,
        series: xr.DataArray,
        past_covariates: xr.DataArray | Sequence[xr.DataArray] | None,
        future_covariates: xr.DataArray | Sequence[xr.DataArray] | None,
        stats: GridStats | None,
        dtype: str | np.dtype,
    ) -> None:
        frames, tdim = _as_frames(series, "`series`")
        self._tdim = tdim
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"`dtype` must be float32 or float64 (Darts' dtypes), got {dtype}.")
        # The grid (channel names, spatial dims and coordinates) from one frame: no more is read.
        _, _, spec = dataarray_to_grid(series.isel({tdim: slice(0, 1)}))
        self.spec: GridSpec = spec
        self.times = _time_index(series, tdim)
        self.freq = self.times.freq if isinstance(self.times, pd.DatetimeIndex) else self.times.step
        self._target = frames.data
        self.n_steps = frames.sizes[tdim]
        if stats is not None and (
            len(stats.channels) != spec.n_channels
            or max(stats.missing, default=-1) >= spec.n_components
        ):
            raise ValueError(
                f"`stats` are for the channels {list(stats.channels)}; the series is a "
                f"{spec.describe()}. Compute them on this grid with grid_stats()."
            )
        self.stats = stats
        self._past = self._arrange(past_covariates, "past_covariates")
        self._future = self._arrange(future_covariates, "future_covariates")
        self.grid_layout = GridLayout(
            spec,
            past_grid_channels=sum(c.n_channels for c in self._past or []),
            future_grid_channels=sum(c.n_channels for c in self._future or []),
            missing=() if stats is None else tuple(stats.missing),
        )

    def _arrange(self, covariates, what: str) -> list[_Covariate] | None:
        if covariates is None:
            return None
        covs = [covariates] if isinstance(covariates, xr.DataArray) else list(covariates)
        arranged = []
        for i, cov in enumerate(covs):
            name = what if len(covs) == 1 else f"{what}[{i}]"
            if not isinstance(cov, xr.DataArray):
                raise TypeError(f"{name} must be an xarray.DataArray, got {type(cov).__name__}.")
            if cov.ndim >= 3:  # gridded: channels per cell, on the target's grid
                frames, tdim = _as_frames(cov, name)
                h, w = frames.shape[2:]
                if (h, w) != (self.spec.height, self.spec.width):
                    raise ValueError(
                        f"{name} is gridded on {h}x{w} but the target grid is "
                        f"{self.spec.height}x{self.spec.width}; regrid it (e.g. cov.interp_like(da)) "
                        "or pass a plain covariate with dims (time,) or (time, component)."
                    )
                n_channels = frames.shape[1]
            else:  # plain: broadcast to every cell by the model
                tdim = _time_dim_of_plain(cov, name)
                others = [d for d in cov.dims if d != tdim]
                frames = cov.transpose(tdim, *others)
                n_channels = 0
            times = _time_index(cov, tdim)
            offset = _offset(times, self.times, name)
            n_components = int(np.prod(frames.shape[1:], dtype=np.int64))
            arranged.append(
                _Covariate(
                    frames.data,
                    offset,
                    frames.sizes[tdim],
                    n_components,
                    n_channels > 0,
                    n_channels,
                )
            )
        # MIMModel reads the gridded channels first (channel-major), then the plain components
        arranged.sort(key=lambda c: not c.gridded)
        return arranged

    def _read_target(self, start: int, stop: int) -> np.ndarray:
        if start < 0 or stop > self.n_steps:
            raise IndexError(
                f"Steps {start}..{stop - 1} are outside the target's {self.n_steps} steps."
            )
        window = _read(self._target, start, stop, self.dtype)
        if self.stats is not None:
            shaped = window.reshape(len(window), *self.spec.shape)
            window = self.stats.normalise(shaped).reshape(len(window), -1)
        return window

    @staticmethod
    def _read_covariates(
        covs: list[_Covariate] | None, start: int, stop: int, what: str, dtype
    ) -> np.ndarray | None:
        if not covs:
            return None
        parts = []
        for cov in covs:
            a, b = start + cov.offset, stop + cov.offset
            if a < 0 or b > cov.length:
                raise ValueError(
                    f"{what} must cover target steps {start}..{stop - 1} (positions {a}..{b - 1} "
                    f"of the covariate), but the covariate has {cov.length} steps there. Extend "
                    "the covariate (future covariates must reach the end of the forecast)."
                )
            parts.append(_read(cov.data, a, b, dtype))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def recent_values(self) -> np.ndarray:
        """The last steps of the target on a subsample of cells, ``(T, D)``: what
        ``naive_anchor="auto"`` ranks persistence and the seasonal naive forecast on (a TimeSeries
        would give all of them; a grid larger than memory gives a window)."""
        steps = min(self.n_steps, _ANCHOR_STEPS)
        cells = self.spec.n_cells
        every = max(1, int(np.ceil(np.sqrt(cells / _ANCHOR_CELLS))))
        window = self._target[self.n_steps - steps :, :, ::every, ::every]
        if hasattr(window, "compute"):
            window = window.compute(scheduler="synchronous")
        return np.asarray(window, dtype=np.float64).reshape(steps, -1)


def _time_index(da: xr.DataArray, tdim: str) -> pd.Index:
    """The time axis of ``da`` as Darts needs it, read from its coordinate (positions without one).

    The same rules as for a series in memory (:func:`darts_mim.grid_to_series`): increasing,
    evenly spaced datetimes or integers. Anything else is refused rather than read as the steps
    0, 1, 2...: the model would train on and forecast other times than the store's, and the
    covariates would be aligned by position.
    """
    if tdim not in da.coords:
        return pd.RangeIndex(da.sizes[tdim])
    index = pd.Index(da.coords[tdim].values)
    if isinstance(index, pd.DatetimeIndex):
        # a descending axis has a frequency too ("-1h"): the model would learn time backwards
        if not (index.is_monotonic_increasing and index.is_unique):
            raise ValueError(
                f"The time coordinate '{tdim}' of the DataArray must be increasing without "
                f"repeats (it starts {list(index[:3])}); sort it lazily first, e.g. "
                f"da.sortby('{tdim}'), and drop repeated steps."
            )
        if len(index) >= 3:
            freq = pd.infer_freq(index)
            if freq is None:
                raise ValueError(
                    f"The time coordinate of the DataArray is not evenly spaced (starts "
                    f"{list(index[:3])}); Darts needs a regular time axis. Resample it "
                    "lazily first, e.g. da.resample(time='1h').mean()."
                )
            return pd.DatetimeIndex(index, freq=freq)
        return index
    if pd.api.types.is_integer_dtype(index.dtype):
        return _integer_index(index)  # refuses uneven or decreasing steps, as in memory
    raise ValueError(
        f"The time coordinate '{tdim}' of the DataArray holds {index.dtype} values (e.g. "
        f"{index[0]!r}), neither datetimes nor integers, which are the time axes Darts knows. "
        "Convert a cftime calendar to datetimes (da.convert_calendar('standard', "
        "use_cftime=False), or da.indexes['time'].to_datetimeindex()), or drop the coordinate "
        f"(da.drop_vars('{tdim}')) to index the steps 0, 1, 2..."
    )


def _time_dim_of_plain(cov: xr.DataArray, what: str) -> str:
    if cov.ndim not in (1, 2):
        raise ValueError(
            f"{what} has dims {cov.dims}; a plain covariate has (time,) or (time, component)."
        )
    for dim in cov.dims:
        if dim in cov.coords and np.issubdtype(cov.coords[dim].dtype, np.datetime64):
            return str(dim)
    return str(cov.dims[0])


def _offset(cov_times: pd.Index, target_times: pd.Index, what: str) -> int:
    """Position of the target's first step in the covariate's time axis."""
    if isinstance(cov_times, pd.RangeIndex) and isinstance(target_times, pd.RangeIndex):
        if cov_times.step != target_times.step:
            raise ValueError(
                f"{what} has a step of {cov_times.step}, the target {target_times.step}."
            )
        offset = (target_times.start - cov_times.start) // cov_times.step
    else:
        if target_times[0] not in cov_times:
            raise ValueError(
                f"{what} does not contain the target's first time {target_times[0]} (it spans "
                f"{cov_times[0]} to {cov_times[-1]}); covariates must start at or before the target "
                "and share its time steps."
            )
        offset = int(cov_times.get_loc(target_times[0]))
        n = min(len(cov_times) - offset, len(target_times))
        if not cov_times[offset : offset + n].equals(target_times[:n]):
            raise ValueError(f"{what}'s time steps differ from the target's; resample it to them.")
    if offset < 0:
        raise ValueError(f"{what} starts after the target; covariates must start at or before it.")
    return int(offset)
