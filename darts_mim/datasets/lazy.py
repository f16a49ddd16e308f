"""Grids larger than memory: Darts datasets over Zarr / netCDF read lazily through dask.

A ``TimeSeries`` holds all its values in memory, so a decade of hourly ERA5 cannot be one. The
datasets here stand in for Darts' ``SequentialTorchTrainingDataset`` and
``SequentialTorchInferenceDataset`` over an ``xarray.DataArray`` opened lazily (:func:`open_grid`):
each sample reads only its own window of time steps from the store, so memory holds one batch, not
the cube. They yield exactly the samples Darts' datasets yield for the same data held in memory
(components in the channel-major order of :func:`darts_mim.grid_to_series`), so
``MIMModel.fit_from_dataset`` and ``predict_from_dataset`` use them unchanged, with shuffling (seeded
by the model's ``random_state``), loader workers (``dataloader_kwargs={"num_workers": k}``) and
multi-process / multi-node training.

* :func:`open_grid`: a variable (or several, as channels) of a Zarr store or netCDF file, lazily;
* :func:`grid_stats` / :class:`GridStats`: per-channel mean and standard deviation and the
  always-missing cells, computed out of core by dask in one pass over the store;
* :class:`LazyGridTrainingDataset`, :class:`LazyGridInferenceDataset`: the datasets;
* :func:`predict_to_zarr`: forecasts from a lazy grid, written block by block to a Zarr store with
  their coordinates.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from math import ceil
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from darts.utils.data.torch_datasets.inference_dataset import TorchInferenceDataset
from darts.utils.data.torch_datasets.training_dataset import TorchTrainingDataset
from darts.utils.data.torch_datasets.utils import TorchInferenceSample, TorchTrainingSample

from darts_mim.grid import GridLayout, GridSpec, dataarray_to_grid, grid_dims, grid_to_series

__all__ = [
    "GridStats",
    "LazyGridInferenceDataset",
    "LazyGridTrainingDataset",
    "grid_stats",
    "open_grid",
    "predict_to_zarr",
]

# Steps and cells of the target that ``recent_values`` hands to ``naive_anchor="auto"``: enough to
# rank persistence against the seasonal naive forecast, small enough for any grid.
_ANCHOR_STEPS = 336
_ANCHOR_CELLS = 4096


def open_grid(
    path: str | os.PathLike,
    variable: str | Sequence[str] | None = None,
    chunks: dict | str | None = None,
) -> xr.DataArray:
    """Open a gridded variable of a Zarr store or a netCDF file lazily, as a dask-backed DataArray.

    Nothing is read but the metadata and coordinates; values are read when a dataset asks for a
    window (or when you compute something).

    Parameters
    ----------
    path
        A Zarr store (a directory, usually ``*.zarr``) or a netCDF file (``*.nc``, ``*.nc4``; needs
        the ``netCDF4`` or ``scipy`` engine).
    variable
        The data variable; a list of variables is stacked into a ``channel`` dimension (they must
        share their dimensions). Default: the only data variable.
    chunks
        dask chunks, e.g. ``{"time": 24}``. Default: ``{}``, the store's own chunks (Zarr) or the
        file's (netCDF), which is what reading a window at a time wants.

    Returns
    -------
    xarray.DataArray
        A lazy DataArray, e.g. dims ``(time, lat, lon)`` or ``(time, channel, lat, lon)``.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No Zarr store or netCDF file at {path}.")
    chunks = {} if chunks is None else chunks
    is_zarr = os.path.isdir(path) or path.rstrip("/").endswith(".zarr")
    if is_zarr:
        # consolidated metadata only where the store has it: asking for it on a store without
        # makes xarray warn on every open (every loader worker would)
        ds = xr.open_zarr(path, chunks=chunks, consolidated=_is_consolidated(path))
    else:
        ds = xr.open_dataset(path, chunks=chunks)
    names = list(ds.data_vars)
    if variable is None:
        if len(names) != 1:
            raise ValueError(
                f"{path} holds the variables {names}; choose one (variable='t2m') or several, "
                "stacked as channels (variable=['u10', 'v10'])."
            )
        variable = names[0]
    wanted = [variable] if isinstance(variable, str) else list(variable)
    unknown = [v for v in wanted if v not in ds.data_vars]
    if unknown:
        raise ValueError(f"{path} has no variable {unknown}; it holds {names}.")
    if isinstance(variable, str):
        return ds[variable]
    return ds[wanted].to_dataarray("channel")


def _is_consolidated(path: str) -> bool:
    if os.path.exists(os.path.join(path, ".zmetadata")):  # Zarr v2
        return True
    meta = os.path.join(path, "zarr.json")  # Zarr v3 keeps it in the root's metadata
    if os.path.exists(meta):
        with open(meta) as f:
            return json.load(f).get("consolidated_metadata") is not None
    return False


@dataclass(frozen=True)
class GridStats:
    """Per-channel normalisation statistics of a grid, and its always-missing cells.

    Computed out of core by :func:`grid_stats`; small enough to save as JSON (:meth:`to_dict`).

    Parameters
    ----------
    channels
        The channel names.
    mean, std
        One value per channel (NaN cells left out).
    missing
        Indices of the components (channel-major, as in :func:`darts_mim.grid_to_series`) that are
        NaN at every step: masked out of MIMModel's loss and forecast as NaN.
    """

    channels: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    missing: tuple[int, ...] = ()

    def _per_channel(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # in the values' own float dtype: no float64 copy of a big float32 array
        dtype = values.dtype if np.issubdtype(values.dtype, np.floating) else np.float64
        mean = np.asarray(self.mean, dtype=dtype)[:, None, None]
        std = np.asarray(self.std, dtype=dtype)[:, None, None]
        if values.ndim < 3 or values.shape[-3] != len(self.channels):
            raise ValueError(
                f"Expected values shaped (..., {len(self.channels)}, H, W), got {values.shape}."
            )
        return mean, std

    def normalise(self, values: np.ndarray) -> np.ndarray:
        """``(x - mean) / std`` per channel of ``(..., C, H, W)`` values, in their dtype."""
        mean, std = self._per_channel(values)
        return ((values - mean) / std).astype(values.dtype, copy=False)

    def denormalise(self, values: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`normalise`."""
        mean, std = self._per_channel(values)
        return (values * std + mean).astype(values.dtype, copy=False)

    def to_dict(self) -> dict:
        return {
            "channels": list(self.channels),
            "mean": list(self.mean),
            "std": list(self.std),
            "missing": list(self.missing),
        }

    @classmethod
    def from_dict(cls, d: dict) -> GridStats:
        return cls(
            tuple(str(c) for c in d["channels"]),
            tuple(float(v) for v in d["mean"]),
            tuple(float(v) for v in d["std"]),
            tuple(int(i) for i in d.get("missing") or ()),
        )


def _as_frames(da: xr.DataArray, what: str) -> tuple[xr.DataArray, str]:
    """``da`` lazily transposed to ``(time, channel, row, column)`` (a channel dim added if absent)."""
    if not isinstance(da, xr.DataArray):
        raise TypeError(
            f"{what} must be an xarray.DataArray (e.g. from darts_mim.datasets.open_grid), got "
            f"{type(da).__name__}."
        )
    tdim, cdim, spatial = grid_dims(da)
    if cdim is None:
        da = da.expand_dims("channel", axis=1)
        cdim = "channel"
    return da.transpose(tdim, cdim, *spatial), tdim


def grid_stats(series: xr.DataArray, check_finite: bool = True) -> GridStats:
    """Per-channel mean and standard deviation of a (lazy) grid, computed out of core by dask.

    One pass over the store computes the moments, the cells that are NaN at every step and the
    count of other non-finite values; memory holds a few chunks at a time, never the cube.

    Parameters
    ----------
    series
        A gridded DataArray, usually from :func:`open_grid` (time, optional channel, two spatial
        dimensions; see :func:`darts_mim.grid.dataarray_to_grid`). Compute the statistics on the
        training period only: ``grid_stats(da.sel(time=slice(None, "2019")))``.
    check_finite
        Refuse a grid with infinite values, or NaN at cells that are not NaN at every step (MIMModel
        cannot train on them). Default: ``True``.

    Returns
    -------
    GridStats
        The statistics, with the always-missing components.
    """
    frames, tdim = _as_frames(series, "`series`")
    dims = frames.dims
    reduce_dims = [dims[0], dims[2], dims[3]]
    values = frames.astype(np.float64)  # float64 sums: a float32 mean over 1e10 values drifts
    all_nan = frames.isnull().all(tdim)
    parts = xr.Dataset(
        {
            "mean": values.mean(reduce_dims, skipna=True),
            "std": values.std(reduce_dims, skipna=True),
            "all_nan": all_nan,
            "nan": frames.isnull().sum(tdim),
            "inf": np.isinf(frames).sum(),
        }
    ).compute()
    n_steps = frames.sizes[tdim]
    all_nan_v = parts["all_nan"].values
    partial_nan = int(np.sum(np.where(all_nan_v, 0, parts["nan"].values)))
    n_inf = int(parts["inf"].values)
    if check_finite and (partial_nan or n_inf):
        raise ValueError(
            f"The grid has {partial_nan} NaN value(s) at cells that are not NaN at every one of its "
            f"{n_steps} steps, and {n_inf} infinite value(s); MIMModel cannot train on them (cells "
            "NaN at every step are masked). Fill them first, lazily, e.g. "
            "da.ffill('time').fillna(0) or da.interpolate_na('time'), or pass check_finite=False."
        )
    channels = _channel_names(series, frames)
    std = parts["std"].values
    if np.any(~np.isfinite(std)) or np.any(std == 0):
        bad = [channels[i] for i in np.flatnonzero(~np.isfinite(std) | (std == 0))]
        raise ValueError(
            f"Channel(s) {bad} are constant or entirely NaN: they cannot be normalised. Drop them."
        )
    return GridStats(
        tuple(channels),
        tuple(float(v) for v in parts["mean"].values),
        tuple(float(v) for v in std),
        tuple(int(i) for i in np.flatnonzero(all_nan_v.reshape(-1))),
    )


def _channel_names(original: xr.DataArray, frames: xr.DataArray) -> list[str]:
    """The channel names :func:`darts_mim.grid.dataarray_to_grid` gives, read from one frame."""
    _, _, spec = dataarray_to_grid(original.isel({frames.dims[0]: slice(0, 1)}))
    return list(spec.channels)


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
    if tdim in da.coords:
        index = pd.Index(da.coords[tdim].values)
        if isinstance(index, pd.DatetimeIndex):
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
        if pd.api.types.is_integer_dtype(index.dtype) and len(index) >= 1:
            step = int(index[1] - index[0]) if len(index) > 1 else 1
            return pd.RangeIndex(int(index[0]), int(index[0]) + step * len(index), step)
    return pd.RangeIndex(da.sizes[tdim])


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


class LazyGridTrainingDataset(_LazyGrid, TorchTrainingDataset):
    def __init__(
        self,
        series: xr.DataArray,
        input_chunk_length: int,
        output_chunk_length: int,
        output_chunk_shift: int = 0,
        past_covariates: xr.DataArray | Sequence[xr.DataArray] | None = None,
        future_covariates: xr.DataArray | Sequence[xr.DataArray] | None = None,
        stride: int = 1,
        max_samples_per_ts: int | None = None,
        stats: GridStats | None = None,
        dtype: str | np.dtype = "float32",
    ):
        """Training dataset over a lazily opened grid: each sample reads its own window from the store.

        The samples are those of Darts' ``SequentialTorchTrainingDataset`` for the same data in memory
        (``grid_to_series(series)`` and the covariates as series): sample ``i`` is the window whose
        output chunk ends ``i * stride`` steps before the end of the target, the past target and
        past covariates cover its ``input_chunk_length`` input steps, the future covariates the input
        and output steps, all components in channel-major order. Train with
        ``MIMModel.fit_from_dataset(dataset)``; shuffling (Darts' default) and loader workers
        (``dataloader_kwargs={"num_workers": k}``) work as with any dataset.

        Parameters
        ----------
        series
            The target grid as a (lazy) ``xarray.DataArray``: time, an optional channel dimension and
            two spatial dimensions, found by name (see :func:`darts_mim.grid.dataarray_to_grid`).
            Open it with :func:`open_grid`; select the training period lazily
            (``da.sel(time=slice("2010", "2019"))``).
        input_chunk_length
            The model's ``input_chunk_length``.
        output_chunk_length
            The model's ``output_chunk_length``.
        output_chunk_shift
            The model's ``output_chunk_shift``. Default: ``0``.
        past_covariates
            Optionally, one DataArray or a list: gridded ones (on the target's grid, e.g. other
            variables of the same store) are fed per cell, plain ones (dims ``(time,)`` or
            ``(time, component)``) are broadcast to every cell. Each must share the target's time
            steps and start at or before it. Default: ``None``.
        future_covariates
            Optionally, the same for future-known covariates; they must also cover the output chunk.
            Default: ``None``.
        stride
            Steps between consecutive windows, counted from the end. Default: ``1``.
        max_samples_per_ts
            At most this many windows, the most recent ones. Default: ``None`` (all).
        stats
            Optionally, normalise the target per channel with these statistics (from
            :func:`grid_stats`) as it is read; their always-missing cells are masked by the model.
            Default: ``None`` (values as stored; nothing has checked them for NaN, which
            :func:`grid_stats` does in the same pass).
        dtype
            ``"float32"`` (default) or ``"float64"``: the samples' dtype, which the model trains in.

        Examples
        --------
        >>> from darts_mim import MIMModel
        >>> from darts_mim.datasets.lazy import LazyGridTrainingDataset, grid_stats, open_grid
        >>> da = open_grid("era5.zarr", "t2m")  # lazy: nothing read yet
        >>> train = da.sel(time=slice(None, "2019"))
        >>> stats = grid_stats(train)  # out of core, one pass
        >>> dataset = LazyGridTrainingDataset(train, 12, 6, stats=stats)
        >>> model = MIMModel(12, 6, patch_size=4, n_epochs=1)
        >>> model.fit_from_dataset(dataset, dataloader_kwargs={"num_workers": 2})
        """
        TorchTrainingDataset.__init__(self)
        for name, value, low in (
            ("input_chunk_length", input_chunk_length, 1),
            ("output_chunk_length", output_chunk_length, 1),
            ("output_chunk_shift", output_chunk_shift, 0),
            ("stride", stride, 1),
        ):
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
                raise ValueError(f"`{name}` must be an integer >= {low}, got {value!r}.")
        self._setup(series, past_covariates, future_covariates, stats, dtype)
        self.input_chunk_length = int(input_chunk_length)
        self.output_chunk_length = int(output_chunk_length)
        self.output_chunk_shift = int(output_chunk_shift)
        self.stride = int(stride)
        size = self.input_chunk_length + self.output_chunk_shift + self.output_chunk_length
        n_windows = ceil((self.n_steps - size + 1) / self.stride)
        if n_windows < 1:
            raise ValueError(
                f"The target has {self.n_steps} steps; one training window needs input_chunk_length + "
                f"output_chunk_shift + output_chunk_length = {size}. Use a longer period or shorter "
                "chunks."
            )
        if max_samples_per_ts is not None and max_samples_per_ts < 1:
            raise ValueError(f"`max_samples_per_ts` must be >= 1, got {max_samples_per_ts}.")
        self.n_windows = n_windows
        self.n_samples = min(n_windows, max_samples_per_ts or n_windows)

    def __len__(self) -> int:
        return self.n_samples

    def __getitem__(self, index: int) -> TorchTrainingSample:
        if not 0 <= index < self.n_samples:
            raise IndexError(f"Sample {index} of a dataset of {self.n_samples}.")
        icl, ocl, ocs = self.input_chunk_length, self.output_chunk_length, self.output_chunk_shift
        # as Darts counts: the first sample is the last window
        end = self.n_steps - index * self.stride
        start = end - ocl - ocs - icl
        # one read of the whole window, split into input and output chunks
        window = self._read_target(start, end)
        past_cov = self._read_covariates(
            self._past, start, start + icl, "past_covariates", self.dtype
        )
        hist_future, future = None, None
        if self._future:
            fut = self._read_covariates(self._future, start, end, "future_covariates", self.dtype)
            hist_future, future = fut[:icl], fut[icl + ocs :]
        return TorchTrainingSample(
            past_target=window[:icl],
            past_covariates=past_cov,
            historic_future_covariates=hist_future,
            future_covariates=future,
            static_covariates=None,
            future_target=window[icl + ocs :],
            sample_weight=None,
        )


class LazyGridInferenceDataset(_LazyGrid, TorchInferenceDataset):
    def __init__(
        self,
        series: xr.DataArray,
        n: int,
        input_chunk_length: int,
        output_chunk_length: int,
        output_chunk_shift: int = 0,
        past_covariates: xr.DataArray | Sequence[xr.DataArray] | None = None,
        future_covariates: xr.DataArray | Sequence[xr.DataArray] | None = None,
        input_ends: Sequence | None = None,
        stats: GridStats | None = None,
        dtype: str | np.dtype = "float32",
    ):
        """Inference dataset over a lazily opened grid: one forecast per input end, read on demand.

        Sample ``i`` is what Darts' ``SequentialTorchInferenceDataset`` gives for the target cut
        after ``input_ends[i]``: the ``input_chunk_length`` steps up to it, the covariates of the
        input and of the ``n`` forecast steps, the forecast's schema (grid metadata with
        coordinates) and its first time. ``MIMModel.predict_from_dataset(n, dataset)`` forecasts
        from it; :func:`predict_to_zarr` does so block by block and writes the forecasts to Zarr.

        Parameters
        ----------
        series
            The target grid as a (lazy) ``xarray.DataArray`` (see :class:`LazyGridTrainingDataset`).
        n
            Forecast horizon in steps.
        input_chunk_length, output_chunk_length, output_chunk_shift
            The model's chunk lengths.
        past_covariates, future_covariates
            As for training; past covariates must reach ``n - output_chunk_length`` steps past each
            input end when ``n > output_chunk_length``, future covariates the end of each forecast.
        input_ends
            Times (or positions, for an integer time axis) of the last input step of each forecast;
            each forecast begins the step after (plus ``output_chunk_shift``). Default: the target's
            last step (one forecast of its future, as ``MIMModel.predict(n, series)``).
        stats
            Normalise the target with these statistics as it is read (as for training).
        dtype
            The samples' dtype. Default: ``"float32"``.
        """
        TorchInferenceDataset.__init__(self)
        if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
            raise ValueError(f"`n` must be a positive integer, got {n!r}.")
        if output_chunk_shift and n > output_chunk_length:
            raise ValueError(
                "Cannot forecast n > output_chunk_length autoregressively with a shifted output "
                "chunk (output_chunk_shift > 0)."
            )
        self._setup(series, past_covariates, future_covariates, stats, dtype)
        self.n = int(n)
        self.input_chunk_length = int(input_chunk_length)
        self.output_chunk_length = int(output_chunk_length)
        self.output_chunk_shift = int(output_chunk_shift)
        if input_ends is None:
            positions = [self.n_steps]
        else:
            positions = [self._position_after(t) for t in input_ends]
        self.positions = positions
        # the schema of every forecast: built once from three frames (the grid metadata and
        # coordinates, the frequency), shared by all samples
        head = series.isel({self._tdim: slice(0, min(3, self.n_steps))}).load()
        self._schema = grid_to_series(head).schema(copy=False)

    def _position_after(self, t) -> int:
        """The position just after the input end ``t``: the sample's ``series_end_idx``."""
        if isinstance(self.times, pd.RangeIndex) and isinstance(t, int | np.integer):
            if t not in self.times:
                raise ValueError(f"Input end {t} is not a step of the target ({self.times}).")
            pos = self.times.get_loc(int(t)) + 1
        else:
            ts = pd.Timestamp(t)
            if ts not in self.times:
                raise ValueError(
                    f"Input end {t} is not a time of the target (it spans {self.times[0]} to "
                    f"{self.times[-1]} every {self.freq})."
                )
            pos = int(self.times.get_loc(ts)) + 1
        if pos < self.input_chunk_length:
            raise ValueError(
                f"A forecast from {t} needs input_chunk_length={self.input_chunk_length} steps up to "
                f"it; the target has {pos}."
            )
        return int(pos)

    def _time_at(self, pos: int):
        if pos < self.n_steps:
            return self.times[pos]
        return self.times[-1] + (pos - self.n_steps + 1) * self.freq

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int) -> TorchInferenceSample:
        if not 0 <= index < len(self.positions):
            raise IndexError(f"Sample {index} of a dataset of {len(self.positions)}.")
        icl, ocl, ocs, n = (
            self.input_chunk_length,
            self.output_chunk_length,
            self.output_chunk_shift,
            self.n,
        )
        end = self.positions[index]  # the input ends just before this position
        start = end - icl
        past_target = self._read_target(start, end)
        past_cov = future_past_cov = None
        if self._past:
            past_cov = self._read_covariates(self._past, start, end, "past_covariates", self.dtype)
            if n > ocl:  # autoregression reads past covariates of the forecast steps
                future_past_cov = self._read_covariates(
                    self._past, end, end + n - ocl, "past_covariates", self.dtype
                )
        hist_future = future = None
        if self._future:
            hist_future = self._read_covariates(
                self._future, start, end, "future_covariates", self.dtype
            )
            future = self._read_covariates(
                self._future, end + ocs, end + ocs + max(n, ocl), "future_covariates", self.dtype
            )
        return TorchInferenceSample(
            past_target=past_target,
            past_covariates=past_cov,
            future_past_covariates=future_past_cov,
            historic_future_covariates=hist_future,
            future_covariates=future,
            static_covariates=None,
            series_schema=self._schema,
            pred_time=self._time_at(end + ocs),
        )


def predict_to_zarr(
    model,
    series: xr.DataArray,
    n: int,
    path: str | os.PathLike,
    input_ends: Sequence | None = None,
    past_covariates: xr.DataArray | Sequence[xr.DataArray] | None = None,
    future_covariates: xr.DataArray | Sequence[xr.DataArray] | None = None,
    stats: GridStats | None = None,
    block_size: int = 64,
    batch_size: int | None = None,
    num_samples: int = 1,
    dataloader_kwargs: dict | None = None,
) -> xr.DataArray:
    """Forecast from a lazy grid and write the forecasts, with coordinates, to a Zarr store.

    Forecasts are made ``block_size`` input ends at a time (with
    ``model.predict_from_dataset``, on one device) and each block is written into its region of the
    store, so memory holds one block of forecasts, never all of them.

    Parameters
    ----------
    model
        A fitted :class:`darts_mim.MIMModel`.
    series
        The target grid (lazy DataArray), as for :class:`LazyGridInferenceDataset`.
    n
        Forecast horizon in steps.
    path
        The Zarr store to write (replaced if it exists).
    input_ends
        The last input step of each forecast. Default: the target's last step.
    past_covariates, future_covariates
        As for training.
    stats
        The statistics the model was trained with: inputs are normalised with them and forecasts
        written back in the data's units. Default: ``None``.
    block_size
        Forecasts per block. Default: ``64``.
    batch_size
        Prediction batch size. Default: the model's.
    num_samples
        Samples of a probabilistic model; more than one adds a ``sample`` dimension.
    dataloader_kwargs
        Passed to ``predict_from_dataset``, e.g. ``{"num_workers": 2}``.

    Returns
    -------
    xarray.DataArray
        The store, opened lazily: dims ``(forecast_start, lead, channel, <row>, <column>)`` (plus
        ``sample``), with ``forecast_start`` the time of each forecast's first step, ``lead`` the
        steps after it and a 2-d ``time`` coordinate (the valid time of each value); named after
        the target (or ``"forecast"``).
    """
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"`block_size` must be a positive integer, got {block_size!r}.")
    path = os.fspath(path)
    common = dict(
        n=n,
        input_chunk_length=model.input_chunk_length,
        output_chunk_length=model.output_chunk_length,
        output_chunk_shift=model.output_chunk_shift,
        past_covariates=past_covariates,
        future_covariates=future_covariates,
        stats=stats,
    )
    full = LazyGridInferenceDataset(series, input_ends=input_ends, **common)
    spec = full.spec
    starts = pd.Index([full._time_at(p + full.output_chunk_shift) for p in full.positions])
    leads = np.arange(n)
    row_dim, col_dim = spec.dims
    dims = ["forecast_start", "lead", "channel", row_dim, col_dim]
    shape = [len(starts), n, *spec.shape]
    if num_samples > 1:
        dims.append("sample")
        shape.append(num_samples)
    coords: dict[str, Any] = {
        "forecast_start": starts,
        "lead": leads,
        "channel": list(spec.channels),
    }
    if spec.coords is not None:
        coords[row_dim], coords[col_dim] = list(spec.coords[0]), list(spec.coords[1])
    valid = np.array(
        [[full._time_at(p + full.output_chunk_shift + k) for k in leads] for p in full.positions]
    )
    coords["time"] = (("forecast_start", "lead"), valid)
    name = str(series.name) if series.name is not None else "forecast"
    import dask.array as dsa

    chunks = [1, n, *spec.shape] + ([num_samples] if num_samples > 1 else [])
    template = xr.DataArray(
        dsa.zeros(shape, chunks=chunks, dtype=np.float32), dims=dims, coords=coords, name=name
    )
    # the metadata and coordinates first, then each block into its region
    template.to_zarr(path, mode="w", compute=False)
    for first in range(0, len(full.positions), block_size):
        ends = [full.times[p - 1] for p in full.positions[first : first + block_size]]
        block = LazyGridInferenceDataset(series, input_ends=ends, **common)
        values, _, _ = model.predict_from_dataset(
            n,
            block,
            batch_size=batch_size,
            num_samples=num_samples,
            dataloader_kwargs=dataloader_kwargs,
            values_only=True,
        )  # (forecasts, n, components, samples)
        values = values.reshape(len(ends), n, *spec.shape, num_samples)
        values = np.moveaxis(values, -1, 2)  # samples next to the forecasts for denormalising
        if stats is not None:
            values = stats.denormalise(values)
        values = np.moveaxis(values, 2, -1).astype(np.float32)
        if num_samples == 1:
            values = values[..., 0]
        region = {d: slice(None) for d in dims}
        region["forecast_start"] = slice(first, first + len(ends))
        xr.DataArray(values, dims=dims, name=name).to_dataset().to_zarr(path, region=region)
    return xr.open_zarr(path)[name]
