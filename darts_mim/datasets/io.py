"""Readers of gridded and tabular files in generic formats, and the :class:`GriddedData` they return.

* :func:`load_grid_array` wraps an in-memory ``(T, C, H, W)`` array and its time stamps,
* :func:`load_grid_npz` reads a gridded ``.npz`` file (the layout of ``shared/data/gridded``),
* :func:`load_netcdf` reads a gridded variable of a netCDF file with xarray,
* :func:`load_csv_series` reads a CSV file (e.g. ETTh1) as a plain multivariate ``TimeSeries``.

The loaders of the real data sets (crowd flows, radar, climate) are built on :func:`load_grid_npz`.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from darts import TimeSeries

from ..grid import (
    GridSpec,
    dataarray_to_grid,
    grid_spec_of,
    grid_to_series,
    series_to_grid,
    with_grid,
)
from .covariates import _covariate_series
from .paths import _check_file


@dataclass
class GriddedData:
    """A gridded series with its covariates.

    Attributes
    ----------
    series
        The gridded target ``TimeSeries`` (``C * H * W`` components, grid in ``metadata``).
    covariates
        Per-time-step covariates on the same time index (e.g. calendar and weather), or ``None``.
    name
        Short name of the data set.
    extras
        Any other arrays of the source file (e.g. ``lat`` / ``lon`` coordinates).
    """

    series: TimeSeries
    covariates: TimeSeries | None = None
    name: str = ""
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def grid(self) -> GridSpec:
        """The grid of :attr:`series`."""
        spec = grid_spec_of(self.series)
        assert spec is not None  # every loader attaches one
        return spec

    def to_array(self) -> np.ndarray:
        """The values as a ``(T, C, H, W)`` array."""
        return series_to_grid(self.series)


# ---------------------------------------------------------------------------------------------------
# time index helpers


def _datetime_index(times, n: int, what: str, freq: str | None = None) -> pd.DatetimeIndex:
    """Parse ``times`` into a ``DatetimeIndex`` of length ``n`` with a frequency."""
    try:
        index = pd.DatetimeIndex(pd.to_datetime(np.asarray(times)))
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{what}: the time stamps cannot be parsed as dates ({err}). Give ISO strings such as "
            "'2016-08-01T00:00' or datetime64 values."
        ) from err
    if len(index) != n:
        raise ValueError(f"{what}: {len(index)} time stamps for {n} time steps.")
    if index.has_duplicates or not index.is_monotonic_increasing:
        raise ValueError(
            f"{what}: the time stamps must be strictly increasing (sort the data by time and drop "
            "duplicates first)."
        )
    if freq is not None:
        try:
            return pd.DatetimeIndex(index, freq=freq)
        except ValueError as err:
            raise ValueError(
                f"{what}: the time stamps do not follow freq={freq!r} ({err}). Resample or fill the "
                "gaps first."
            ) from err
    if n < 3:
        raise ValueError(
            f"{what}: cannot infer a frequency from {n} time stamp(s); pass freq= (e.g. '30min')."
        )
    inferred = pd.DatetimeIndex(index, freq="infer")
    if inferred.freq is None:
        steps = pd.Series(index[1:] - index[:-1])
        common = steps.mode().iloc[0]
        first_gap = int(np.flatnonzero(steps.to_numpy() != common)[0])
        raise ValueError(
            f"{what}: the time stamps are not evenly spaced (most steps are {common}, but "
            f"{index[first_gap]} -> {index[first_gap + 1]}). Fill the gaps (e.g. reindex to a full "
            "pandas.date_range with NaN) before loading."
        )
    return inferred


# ---------------------------------------------------------------------------------------------------
# gridded loaders: arrays, .npz, netCDF


def load_grid_array(
    array: np.ndarray,
    times: Sequence | np.ndarray | pd.DatetimeIndex,
    channels: Sequence[str] | None = None,
    *,
    covariates: np.ndarray | None = None,
    covariate_names: Sequence[str] | None = None,
    freq: str | None = None,
    name: str = "grid",
    extras: dict[str, np.ndarray] | None = None,
) -> GriddedData:
    """Wrap an in-memory grid and its time stamps as :class:`GriddedData`.

    Parameters
    ----------
    array
        Values of shape ``(T, C, H, W)`` or ``(T, H, W)`` (one channel).
    times
        ``T`` time stamps (ISO strings, datetime64 or a ``DatetimeIndex``), evenly spaced.
    channels
        Channel names; default ``"ch0", "ch1", ...``.
    covariates
        Optional ``(T, K)`` array of per-time-step covariates.
    covariate_names
        Names of the ``K`` covariates; by default the crowd-flow names of
        :func:`crowd_flow_covariate_names` when the columns match that layout, else ``ek0 ..``.
    freq
        The time step (e.g. ``"30min"``); inferred from ``times`` when not given.
    name
        Name of the data set.
    extras
        Extra arrays to keep with the data (coordinates, ...).

    Returns
    -------
    GriddedData
        With a ``DatetimeIndex`` that has a frequency.

    Raises
    ------
    ValueError
        For a wrong number of dimensions, missing or unparsable time stamps, or uneven time steps.
    """
    values = np.asarray(array)
    if values.ndim not in (3, 4):
        raise ValueError(
            f"{name}: expected a (T, C, H, W) or (T, H, W) array, got shape {values.shape} "
            f"({values.ndim} dimensions). Put time first and the two spatial axes last "
            "(numpy.moveaxis), and add a channel axis with array[:, None] if needed."
        )
    if times is None:
        raise ValueError(
            f"{name}: no time stamps given. Pass `times` with one date per time step, e.g. "
            "pandas.date_range('2016-08-01', periods=T, freq='30min')."
        )
    index = _datetime_index(times, values.shape[0], name, freq)
    series = grid_to_series(values, index, channels)
    cov = None
    if covariates is not None:
        cov = _covariate_series(covariates, series.time_index, covariate_names, name)
    return GriddedData(series=series, covariates=cov, name=name, extras=dict(extras or {}))


def load_grid_npz(
    path: str | os.PathLike,
    channels: Sequence[str] | None = None,
    *,
    name: str | None = None,
    freq: str | None = None,
) -> GriddedData:
    """Load a gridded ``.npz`` file (the layout of ``shared/data/gridded``).

    The file holds ``data`` of shape ``(T, C, H, W)`` or ``(T, H, W)``, ``time`` (``T`` ISO strings,
    the start of each interval), and optionally ``channels`` (``C`` names) and ``external_knowledge``
    (``(T, K)`` covariates). Any other arrays (``lat``, ``lon``, ...) go to :attr:`GriddedData.extras`.

    For the crowd-flow files (STSAN / DSAN) the 65 ``external_knowledge`` columns are day-of-week and
    time-slot one-hots, a holiday flag and daily weather; they are named as described in
    :func:`crowd_flow_covariate_names` after checking the one-hots against the calendar. Covariates of
    any other layout are named ``ek0``, ``ek1``, ...

    Parameters
    ----------
    path
        The ``.npz`` file.
    channels
        Channel names, overriding the file's ``channels`` (needed to name the channel of a
        ``(T, H, W)`` file; default ``"ch0", ...``).
    name
        Name of the data set; default: the file name without extension.
    freq
        Time step; inferred from ``time`` when not given.

    Returns
    -------
    GriddedData

    Raises
    ------
    DataNotFoundError
        When the file does not exist (also a ``ValueError``).
    ValueError
        When the file is not a readable ``.npz`` or lacks ``data`` / ``time``.
    """
    p = _check_file(path)
    name = name or p.stem
    try:
        with np.load(p, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        hint = (
            " It holds Python objects, which are not loaded for safety: save strings as fixed-width "
            "arrays, e.g. time=numpy.asarray(times, dtype=str)."
            if "allow_pickle" in str(err)
            else " Save grids with numpy.savez_compressed(path, data=..., time=...)."
        )
        raise ValueError(f"{p} is not a readable .npz file ({err}).{hint}") from err
    if "data" not in arrays:
        raise ValueError(
            f"{p} has no `data` array (found {sorted(arrays)}). Store the grid as "
            "numpy.savez_compressed(path, data=array, time=iso_strings)."
        )
    if "time" not in arrays:
        raise ValueError(
            f"{p} has no `time` array (found {sorted(arrays)}). Add one ISO time string per time "
            "step (key `time`), or load the array with load_grid_array(array, times)."
        )
    data, times = arrays.pop("data"), arrays.pop("time")
    file_channels = arrays.pop("channels", None)
    if channels is None and file_channels is not None:
        channels = [str(c) for c in np.atleast_1d(file_channels)]
    covariates = arrays.pop("external_knowledge", None)
    return load_grid_array(
        data, times, channels, covariates=covariates, freq=freq, name=name, extras=arrays
    )


def _select_variable(ds: xr.Dataset, variable: str | Sequence[str] | None, where: str):
    names = [str(v) for v in ds.data_vars]
    if variable is None:
        if len(names) != 1:
            raise ValueError(
                f"{where} has {len(names)} data variables ({', '.join(names) or 'none'}); choose one "
                "with variable='...' (or a list of them, stacked as channels)."
            )
        return ds[names[0]], None
    wanted = [variable] if isinstance(variable, str) else list(variable)
    missing = [v for v in wanted if v not in ds.data_vars]
    if missing:
        raise ValueError(
            f"{where} has no data variable {', '.join(map(repr, missing))}; it has {', '.join(names)}."
        )
    if isinstance(variable, str):
        return ds[variable], None
    stacked = xr.concat([ds[v] for v in wanted], dim="channel")
    return stacked.assign_coords(channel=wanted), wanted


def load_netcdf(
    path: str | os.PathLike,
    variable: str | Sequence[str] | None = None,
    *,
    name: str | None = None,
    freq: str | None = None,
) -> GriddedData:
    """Load a gridded variable from a netCDF file with xarray.

    The variable must have a time dimension (``time``, ``valid_time``, ... or any dimension with a
    datetime coordinate), two spatial dimensions and optionally one channel dimension, read by name
    in any order (see :func:`darts_mim.grid.dataarray_to_grid`). Spatial dimensions are recognised by
    name (``y``/``x``, ``lat``/``lon``, ``latitude``/``longitude``, ...);
    otherwise the last two dimensions are taken as spatial, in the file's order.

    Parameters
    ----------
    path
        The netCDF file (any engine xarray has: netCDF4, h5netcdf or scipy).
    variable
        The data variable; picked automatically when the file has exactly one. A list of variables
        (each ``(time, y, x)``) is stacked as channels.
    name
        Name of the data set; default: the file name without extension.
    freq
        Time step; inferred from the time coordinate when not given.

    Returns
    -------
    GriddedData
        Channels are named by the channel coordinate, else by the variable. The spatial coordinates
        are kept in :attr:`GriddedData.extras`.

    Raises
    ------
    DataNotFoundError
        When the file does not exist (also a ``ValueError``).
    ValueError
        When the file cannot be read, the variable is ambiguous or missing, there is no time
        dimension, or the number of dimensions is wrong.
    """
    p = _check_file(path)
    name = name or p.stem
    try:
        ds = xr.open_dataset(p)
    except (OSError, ValueError) as err:
        raise ValueError(
            f"Cannot open {p} as netCDF ({err}). Install netCDF4 or h5netcdf "
            "(pip install 'darts-mim[netcdf]') or check the file."
        ) from err
    with ds:
        da, stacked_names = _select_variable(ds, variable, str(p))
        try:
            values, times, spec = dataarray_to_grid(da, stacked_names)
        except ValueError as err:
            raise ValueError(f"{p}: variable {da.name!r}: {err}") from err
    if times is None:
        raise ValueError(
            f"{p}: the time dimension has no coordinate values. Store the dates as a 'time' "
            "coordinate."
        )
    extras = (
        {}
        if spec.coords is None
        else dict(zip(spec.dims, map(np.asarray, spec.coords), strict=True))
    )
    data = load_grid_array(values, times, spec.channels, freq=freq, name=name, extras=extras)
    # the grid metadata keeps the spatial dimension names and coordinates (series_to_xarray)
    data.series = with_grid(data.series, spec)
    return data


# ---------------------------------------------------------------------------------------------------
# tabular series


def load_csv_series(
    path: str | os.PathLike,
    time_col: str | None = None,
    value_cols: str | Sequence[str] | None = None,
    *,
    freq: str | None = None,
    fill_missing_dates: bool = False,
) -> TimeSeries:
    """Load a CSV file (e.g. ETTh1) as a plain multivariate ``TimeSeries``.

    Parameters
    ----------
    path
        The CSV file.
    time_col
        The column of time stamps. By default a column named ``date``, ``time``, ``datetime``,
        ``timestamp`` or ``month`` (any case), else the first column if it parses as dates; without
        one the series gets a ``RangeIndex``.
    value_cols
        Columns to keep; default: every numeric column but the time column.
    freq
        Time step; inferred from the time stamps when not given.
    fill_missing_dates
        Insert rows of NaN for missing time stamps (e.g. ILINet's missing weeks), at ``freq`` or else
        the most common step.

    Returns
    -------
    TimeSeries

    Raises
    ------
    DataNotFoundError
        When the file does not exist.
    ValueError
        For an unknown column or no numeric columns.
    """
    p = _check_file(path)
    try:
        df = pd.read_csv(p)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise ValueError(f"{p} is not a readable CSV file ({err}).") from err
    if time_col is None:
        for col in df.columns:
            if str(col).strip().lower() in ("date", "time", "datetime", "timestamp", "month"):
                time_col = col
                break
    if time_col is None and len(df.columns) and not pd.api.types.is_numeric_dtype(df.iloc[:, 0]):
        try:
            pd.to_datetime(df.iloc[:, 0])
            time_col = df.columns[0]
        except (ValueError, TypeError):
            pass
    if time_col is not None and time_col not in df.columns:
        raise ValueError(f"{p} has no column {time_col!r}; columns are {list(df.columns)}.")
    if value_cols is None:
        value_cols = [
            c for c in df.columns if c != time_col and pd.api.types.is_numeric_dtype(df[c])
        ]
        if not value_cols:
            raise ValueError(f"{p} has no numeric columns to load (columns {list(df.columns)}).")
    else:
        value_cols = [value_cols] if isinstance(value_cols, str) else list(value_cols)
        missing = [c for c in value_cols if c not in df.columns]
        if missing:
            raise ValueError(f"{p} has no column(s) {missing}; columns are {list(df.columns)}.")
    if time_col is None:
        values = df[value_cols].to_numpy(dtype=np.float64)
        return TimeSeries.from_values(values, columns=[str(c) for c in value_cols])
    values = df[value_cols].to_numpy(dtype=np.float64)
    times = df[time_col]
    if fill_missing_dates:
        try:
            stamps = pd.DatetimeIndex(pd.to_datetime(times))
        except (ValueError, TypeError) as err:
            raise ValueError(
                f"{p.name}: column {time_col!r} does not parse as dates ({err})."
            ) from err
        if stamps.has_duplicates:
            raise ValueError(f"{p.name}: duplicate time stamps in column {time_col!r}.")
        order = np.argsort(stamps.asi8, kind="stable")
        stamps, values = stamps[order], values[order]
        step = freq
        if step is None:
            common = pd.Series(stamps[1:] - stamps[:-1]).mode().iloc[0]
            whole_days = common % pd.Timedelta(days=1) == pd.Timedelta(0)
            step = pd.offsets.Day(common.days) if whole_days else common
        times = pd.date_range(stamps[0], stamps[-1], freq=step)
        values = pd.DataFrame(values, index=stamps).reindex(times).to_numpy()
        freq = times.freq
    index = _datetime_index(times, len(values), p.name, freq)
    return TimeSeries.from_times_and_values(index, values, columns=[str(c) for c in value_cols])
