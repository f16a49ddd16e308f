"""Opening a gridded variable of a Zarr store or netCDF file lazily, as a dask-backed DataArray.

:func:`open_grid` is the entry point of :mod:`darts_mim.datasets.lazy`: it reads only metadata and
coordinates, leaving the values in the store for the datasets to read a window at a time. It is kept
apart from the datasets because it needs nothing of Darts or of the grid layout, only xarray.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import xarray as xr

from darts_mim._optional import require


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

    Raises
    ------
    darts_mim._optional.MissingExtraError
        When dask (or zarr, for a store) is not installed: ``pip install "darts-mim[lazy]"``.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No Zarr store or netCDF file at {path}.")
    chunks = {} if chunks is None else chunks
    require("dask", extra="lazy")  # xarray reads lazily through dask
    is_zarr = os.path.isdir(path) or path.rstrip("/").endswith(".zarr")
    if is_zarr:
        require("zarr", extra="lazy")
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
