"""Forecasts from a lazy grid written to Zarr: :func:`predict_to_zarr`.

It forecasts block by block from :class:`~darts_mim.datasets.lazy.LazyGridInferenceDataset` and
writes each block into its region of a Zarr store with the forecasts' coordinates, so memory holds
one block of forecasts, never all of them. It is kept apart from the dataset because it drives a
fitted model and writes a store, which the dataset itself never does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from darts_mim._optional import require

from .inference import LazyGridInferenceDataset
from .stats import GridStats

# Group attribute that marks a store as forecasts written by predict_to_zarr, the only kind of
# existing path it replaces.
FORECAST_STORE_ATTR = "darts_mim_forecasts"


def _check_replaceable(path: str) -> None:
    """Refuse a ``path`` that holds anything but a forecast store written by :func:`predict_to_zarr`.

    ``to_zarr(mode="w")`` empties the directory it is given: ``path`` naming the store the series
    is read from (``predict_to_zarr(model, open_grid("era5.zarr"), 6, "era5.zarr")``) or a folder
    of other files deleted them without a word. A missing path or an empty directory is fine; a
    store of this function's (marked by :data:`FORECAST_STORE_ATTR`, or, written before the mark,
    with only ``(forecast_start, lead, ...)`` variables) is replaced as documented.
    """
    if not os.path.exists(path) or (os.path.isdir(path) and not os.listdir(path)):
        return
    zarr = require("zarr", extra="lazy")
    try:
        if zarr.open_group(path, mode="r").attrs.get(FORECAST_STORE_ATTR):
            return
        variables = list(xr.open_zarr(path, consolidated=False).data_vars.values())
    except (zarr.errors.BaseZarrError, OSError, ValueError, KeyError):
        variables = []  # not a Zarr store: a file or a folder of other things
    if variables and all(v.dims[:2] == ("forecast_start", "lead") for v in variables):
        return
    raise FileExistsError(
        f"{path} exists and is not a forecast store written by predict_to_zarr (it may be the "
        "store the series is read from, or other files); writing the forecasts there would "
        "delete what it holds. Choose a new path, e.g. 'forecasts.zarr', or delete it yourself "
        "first."
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
        The Zarr store to write. An existing forecast store of this function's is replaced; any
        other existing path (the input store, a folder of other files) is refused with a
        ``FileExistsError``, since writing there would delete its contents.
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
    _check_replaceable(path)  # before any work: nothing is written to a path that is refused
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
    dsa = require("dask.array", extra="lazy")
    require("zarr", extra="lazy")

    chunks = [1, n, *spec.shape] + ([num_samples] if num_samples > 1 else [])
    template = xr.DataArray(
        dsa.zeros(shape, chunks=chunks, dtype=np.float32), dims=dims, coords=coords, name=name
    ).to_dataset()
    template.attrs[FORECAST_STORE_ATTR] = 1  # what _check_replaceable lets a later call replace
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
