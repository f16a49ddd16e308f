"""Out-of-core normalisation statistics of a lazy grid: :class:`GridStats` and :func:`grid_stats`.

One dask pass over the store gives the per-channel mean and standard deviation and the cells that are
NaN at every step; :class:`GridStats` holds them (small enough for JSON) and normalises windows as the
datasets read them. :func:`_as_frames`, which arranges a DataArray as ``(time, channel, row,
column)``, lives here because the statistics need it first; the datasets' window machinery in
:mod:`darts_mim.datasets.lazy.windows` reuses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from darts_mim.grid import dataarray_to_grid, grid_dims


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
