"""Data sets for spatiotemporal forecasting: real gridded data and the Moving MNIST generator.

Every loader returns Darts objects: a gridded ``TimeSeries`` (see :mod:`darts_mim.grid`) wrapped in
:class:`GriddedData` together with its covariates, or a plain multivariate ``TimeSeries`` for CSV files.

Where the data comes from
-------------------------
* :func:`load_bike_flows` reads the NYC Citi Bike grid bundled with the package (``darts_mim/data``).
* :func:`load_taxi_flows`, :func:`load_radar` and :func:`load_temperature` read the larger files of the
  project's shared data directory, found by :func:`default_data_dir` (the ``DARTS_MIM_DATA`` environment
  variable, else ``<repo>/../shared/data``), or a file / directory you pass.
* :func:`load_grid_npz`, :func:`load_grid_array`, :func:`load_netcdf` and :func:`load_csv_series` read
  your own data.
* :func:`moving_mnist` generates Moving MNIST (Srivastava et al., 2015) from MNIST digits read by
  :func:`load_mnist_digits`.
"""

from __future__ import annotations

import gzip
import os
import struct
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from darts import TimeSeries

from .grid import GridSpec, grid_spec_of, grid_to_series, series_to_grid

__all__ = [
    "DATA_ENV_VAR",
    "DataNotFoundError",
    "GriddedData",
    "crowd_flow_covariate_names",
    "default_data_dir",
    "load_bike_flows",
    "load_csv_series",
    "load_grid_array",
    "load_grid_npz",
    "load_mnist_digits",
    "load_netcdf",
    "load_radar",
    "load_taxi_flows",
    "load_temperature",
    "moving_mnist",
]

DATA_ENV_VAR = "DARTS_MIM_DATA"
"""Environment variable naming the data directory (the layout of ``shared/data``)."""

BIKE_FILE = "nycbike_2016-08-01_2016-10-29.npz"
BIKE_SHARED_FILE = "nycbike_dsan_2016-08-01_2016-10-29_T4320x2x14x8.npz"
TAXI_FILE = "nyctaxi_dsan_2016-01-01_2016-03-30_T4320x2x16x12.npz"
RADAR_FILE = "radar_knmi_2010-08-26_T92x128x128_mmh.npz"
TEMPERATURE_FILE = "era5_t2m_uk_2019-03_T744x33x49_K.npz"

_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_WEATHER_NAMES = (
    "holiday",
    "temp_max",
    "temp_min",
    "temp_avg",
    "precipitation",
    "snowfall",
    "snow_depth",
    "precipitation_trace",
    "snowfall_trace",
    "snow_depth_trace",
)
_TIME_DIM_NAMES = ("time", "valid_time", "datetime", "date", "t")
_SPATIAL_DIM_NAMES = frozenset(
    {
        "y",
        "x",
        "lat",
        "lon",
        "latitude",
        "longitude",
        "rlat",
        "rlon",
        "row",
        "col",
        "rows",
        "cols",
        "height",
        "width",
        "south_north",
        "west_east",
        "northing",
        "easting",
    }
)
_CHANNEL_DIM_NAMES = ("channel", "channels", "variable", "band", "component")


class DataNotFoundError(FileNotFoundError, ValueError):
    """A data file or directory does not exist.

    It is both a ``FileNotFoundError`` and a ``ValueError``, so either can be caught.
    """


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
# locating files


def default_data_dir() -> Path:
    """The directory holding the project's shared data (layout of ``shared/data``).

    Resolved from the environment variable ``DARTS_MIM_DATA`` first, then ``<repo>/../shared/data``
    (next to the repository this package lives in).

    Returns
    -------
    pathlib.Path
        An existing directory.

    Raises
    ------
    DataNotFoundError
        When neither exists.
    """
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if path.is_dir():
            return path
        raise DataNotFoundError(
            f"{DATA_ENV_VAR}={env!r} is not a directory. Point it at a copy of the shared data "
            "(with gridded/, mnist/, series/) or unset it."
        )
    candidate = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if candidate.is_dir():
        return candidate
    raise DataNotFoundError(
        f"No data directory found: {DATA_ENV_VAR} is not set and {candidate} does not exist. "
        f"Set {DATA_ENV_VAR}=/path/to/data or pass the file's path explicitly."
    )


def _check_file(path: str | os.PathLike) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataNotFoundError(
            f"No such file: {p}. Check the path"
            + (" (it is a directory; pass a file inside it)." if p.is_dir() else ".")
        )
    return p


def _find_data_file(path: str | os.PathLike | None, names: Sequence[str], subdir: str) -> Path:
    """``path`` if it is a file, else the first of ``names`` inside ``path`` (or the data dir)."""
    if path is not None:
        p = Path(path).expanduser()
        if p.is_file():
            return p
        if not p.is_dir():
            raise DataNotFoundError(f"No such file or directory: {p}.")
        base = p
    else:
        base = default_data_dir()
    tried = []
    for directory in (base / subdir, base):
        for name in names:
            candidate = directory / name
            tried.append(str(candidate))
            if candidate.is_file():
                return candidate
    raise DataNotFoundError(
        f"Could not find {names[0]} in {base}; tried {', '.join(tried)}. Pass the file's path "
        f"explicitly or set {DATA_ENV_VAR}."
    )


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


def crowd_flow_covariate_names(n: int = 65, slots_per_day: int = 48) -> list[str]:
    """Component names of the crowd-flow ``external_knowledge`` covariates (STSAN / DSAN files).

    The 65 columns are, in order: a day-of-week one-hot ``dow_sun`` ... ``dow_sat`` (column 0 is
    Sunday); a time-of-day one-hot ``slot_00`` ... ``slot_47`` (slot ``2 * hour + minute // 30``); the
    public-holiday flag ``holiday``; the daily weather ``temp_max``, ``temp_min``, ``temp_avg``,
    ``precipitation``, ``snowfall``, ``snow_depth`` (each min-max scaled to [0, 1] over the file's
    days); and ``precipitation_trace``, ``snowfall_trace``, ``snow_depth_trace``, flags for days whose
    amount was only a trace (``T`` in the source weather table). This decoding was checked column by
    column against the daily weather tables of the source repository.

    Parameters
    ----------
    n
        Number of columns; must be ``7 + slots_per_day + 10``.
    slots_per_day
        Number of time slots per day.

    Returns
    -------
    list of str
    """
    names = [f"dow_{d}" for d in _DOW_NAMES]
    names += [f"slot_{i:02d}" for i in range(slots_per_day)]
    names += list(_WEATHER_NAMES)
    if len(names) != n:
        raise ValueError(f"Crowd-flow covariates have {len(names)} columns, got {n}.")
    return names


def _is_one_hot(block: np.ndarray) -> bool:
    return bool(np.isin(block, (0.0, 1.0)).all() and (block.sum(axis=1) == 1).all())


def _covariate_names(values: np.ndarray, index: pd.DatetimeIndex) -> list[str]:
    """Meaningful names for crowd-flow external knowledge, ``ek0 ..`` when the layout is not sure."""
    k = values.shape[1]
    slots = k - 7 - len(_WEATHER_NAMES)
    generic = [f"ek{i}" for i in range(k)]
    if slots < 1 or (24 * 60) % slots:
        return generic
    dow, tod = values[:, :7], values[:, 7 : 7 + slots]
    if not (_is_one_hot(dow) and _is_one_hot(tod)):
        return generic
    # The one-hots must agree with the calendar, or we cannot be sure of the layout.
    minutes = 24 * 60 // slots
    sunday_first = (index.day_of_week.to_numpy() + 1) % 7
    slot = (index.hour.to_numpy() * 60 + index.minute.to_numpy()) // minutes
    if (dow.argmax(axis=1) != sunday_first).any() or (tod.argmax(axis=1) != slot).any():
        return generic
    return crowd_flow_covariate_names(k, slots)


def _covariate_series(
    values, index: pd.DatetimeIndex, names: Sequence[str] | None, what: str
) -> TimeSeries:
    cov = np.asarray(values)
    if cov.ndim == 1:
        cov = cov[:, None]
    if cov.ndim != 2 or cov.shape[0] != len(index):
        raise ValueError(
            f"{what}: covariates must be a (T, K) array with T = {len(index)}, got shape {cov.shape}."
        )
    if not np.issubdtype(cov.dtype, np.number):
        raise ValueError(f"{what}: covariates must be numeric, got dtype {cov.dtype}.")
    if not np.issubdtype(cov.dtype, np.floating):
        cov = cov.astype(np.float32)
    if names is None:
        names = _covariate_names(cov, index)
    names = [str(n) for n in names]
    if len(names) != cov.shape[1]:
        raise ValueError(f"{what}: {len(names)} covariate names for {cov.shape[1]} columns.")
    return TimeSeries.from_times_and_values(index, cov, columns=names)


# ---------------------------------------------------------------------------------------------------
# generic gridded loaders


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


def _time_dim(da: xr.DataArray) -> str | None:
    for dim in da.dims:
        if str(dim).lower() in _TIME_DIM_NAMES:
            return str(dim)
    for dim in da.dims:
        if dim in da.coords and np.issubdtype(da.coords[dim].dtype, np.datetime64):
            return str(dim)
    return None


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
    datetime coordinate), two spatial dimensions and optionally one channel dimension. Spatial
    dimensions are recognised by name (``y``/``x``, ``lat``/``lon``, ``latitude``/``longitude``, ...);
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
        var_name = str(da.name) if da.name is not None else name
        tdim = _time_dim(da)
        if tdim is None:
            raise ValueError(
                f"{p}: variable {var_name!r} has no time dimension (dims {tuple(da.dims)}). Rename "
                "it to 'time' (dataset.rename({'t': 'time'})) and give it datetime values."
            )
        others = [str(d) for d in da.dims if d != tdim]
        if len(others) not in (2, 3):
            raise ValueError(
                f"{p}: variable {var_name!r} has dims {tuple(da.dims)}; expected time, two spatial "
                "dimensions and at most one channel dimension. Select or squeeze the others first "
                "(e.g. dataset.isel(level=0))."
            )
        if len(others) == 3:
            spatial = [d for d in others if d.lower() in _SPATIAL_DIM_NAMES]
            if len(spatial) == 2:
                channel_dim = next(d for d in others if d not in spatial)
            else:
                named = [d for d in others if d.lower() in _CHANNEL_DIM_NAMES]
                channel_dim = named[0] if named else others[0]
            spatial = [d for d in others if d != channel_dim]
            da = da.transpose(tdim, channel_dim, *spatial)
            if stacked_names is not None:
                channels = stacked_names
            elif channel_dim in da.coords:
                channels = [str(c) for c in da.coords[channel_dim].values]
            else:
                channels = [f"{var_name}{i}" for i in range(da.sizes[channel_dim])]
        else:
            spatial = others
            da = da.transpose(tdim, *spatial)
            channels = [var_name]
        extras = {d: np.asarray(da.coords[d].values) for d in spatial if d in da.coords}
        values = np.asarray(da.values)
        times = np.asarray(da.coords[tdim].values) if tdim in da.coords else None
    if times is None:
        raise ValueError(
            f"{p}: the time dimension {tdim!r} has no coordinate values. Store the dates as a "
            f"'{tdim}' coordinate."
        )
    return load_grid_array(values, times, channels, freq=freq, name=name, extras=extras)


# ---------------------------------------------------------------------------------------------------
# the real data sets


def load_bike_flows(path: str | os.PathLike | None = None) -> GriddedData:
    """NYC Citi Bike inflow / outflow on a 14 x 8 grid, every 30 minutes, 2016-08-01 to 2016-10-29.

    4320 time steps, channels ``inflow`` and ``outflow`` (224 components), values 0..323, with the 65
    calendar and weather covariates described in :func:`crowd_flow_covariate_names`. Source: the
    STSAN / DSAN data sets (Lin et al., KDD 2020), repository haoxingl/STSAN (MIT licence); Citi Bike
    open data.

    Parameters
    ----------
    path
        ``None`` for the copy bundled with the package; or a file, or a directory holding it.

    Returns
    -------
    GriddedData
    """
    if path is None:
        resource = resources.files(__package__ or "darts_mim") / "data" / BIKE_FILE
        with resources.as_file(resource) as p:
            return load_grid_npz(p, name="nycbike")
    return load_grid_npz(
        _find_data_file(path, (BIKE_FILE, BIKE_SHARED_FILE), "gridded"), name="nycbike"
    )


def load_taxi_flows(path: str | os.PathLike | None = None) -> GriddedData:
    """NYC yellow-taxi inflow / outflow on a 16 x 12 grid, every 30 minutes, 2016-01-01 to 2016-03-30.

    4320 time steps, values 0..1518, with the same 65 covariates as :func:`load_bike_flows`. Source:
    repository haoxingl/STSAN (MIT licence); NYC TLC open data.

    Parameters
    ----------
    path
        A file, a directory holding it, or ``None`` for :func:`default_data_dir`.

    Returns
    -------
    GriddedData
    """
    return load_grid_npz(_find_data_file(path, (TAXI_FILE,), "gridded"), name="nyctaxi")


def load_radar(path: str | os.PathLike | None = None) -> GriddedData:
    """KNMI radar rain rate (mm/h), 5-minute composites of 2010-08-26 on 128 x 128 cells of 2 km.

    One channel, ``rain_rate``. Source: repository pySTEPS/pysteps-data; KNMI open data.

    Parameters
    ----------
    path
        A file (any crop in the same layout), a directory holding the full file, or ``None`` for
        :func:`default_data_dir`.

    Returns
    -------
    GriddedData
    """
    return load_grid_npz(
        _find_data_file(path, (RADAR_FILE,), "gridded"), ["rain_rate"], name="radar_knmi"
    )


def load_temperature(path: str | os.PathLike | None = None) -> GriddedData:
    """ERA5 2-m air temperature (K) over the UK, hourly, March 2019, on a 33 x 49 grid of 0.25 deg.

    One channel, ``t2m``; ``extras`` holds ``lat`` and ``lon``. Contains modified Copernicus Climate
    Change Service information 2019.

    Parameters
    ----------
    path
        A file, a directory holding it, or ``None`` for :func:`default_data_dir`.

    Returns
    -------
    GriddedData
    """
    return load_grid_npz(
        _find_data_file(path, (TEMPERATURE_FILE,), "gridded"), ["t2m"], name="era5_t2m_uk"
    )


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


# ---------------------------------------------------------------------------------------------------
# MNIST and Moving MNIST

_IDX_DTYPES = {0x08: np.uint8}


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an idx file (optionally gzipped) of unsigned bytes with ``ndim`` dimensions."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path} is corrupt ({err}); replace it with a fresh copy.") from err
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise ValueError(f"{path} is not an idx file (bad magic number); replace it.")
    code, file_ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES or file_ndim != ndim:
        raise ValueError(
            f"{path}: idx header says type 0x{code:02x} with {file_ndim} dimensions; expected "
            f"unsigned bytes (0x08) with {ndim}. Is it the right file?"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated (incomplete header); replace it.")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise ValueError(
            f"{path} is truncated or corrupt: header says {dims} = {expected} values, found "
            f"{len(raw) - header}. Replace it with a fresh copy."
        )
    return np.frombuffer(raw, dtype=_IDX_DTYPES[code], offset=header).reshape(dims).copy()


def _find_idx(directory: Path, kind: str, ndim: int) -> Path | None:
    for prefix in ("t10k", "train"):
        for sep in ("-", "."):
            for ext in (".gz", ""):
                candidate = directory / f"{prefix}-{kind}{sep}idx{ndim}-ubyte{ext}"
                if candidate.is_file():
                    return candidate
    matches = sorted(directory.glob(f"*{kind}*idx{ndim}*"))
    return matches[0] if matches else None


def load_mnist_digits(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read MNIST digits and labels from idx files (gzipped or not).

    Parameters
    ----------
    path
        A directory holding ``t10k-images-idx3-ubyte(.gz)`` and ``t10k-labels-idx1-ubyte(.gz)`` (or the
        ``train-`` files, or any ``*images*idx3*`` / ``*labels*idx1*`` pair), or the images file
        itself.

    Returns
    -------
    images : numpy.ndarray
        ``(N, 28, 28)`` uint8.
    labels : numpy.ndarray
        ``(N,)`` uint8 digit classes.

    Raises
    ------
    DataNotFoundError
        When the directory or a file is missing (also a ``ValueError``).
    ValueError
        When a file is corrupt or images and labels disagree in number.
    """
    p = Path(path).expanduser()
    if p.is_file():
        images_file = p
        labels_name = p.name.replace("images", "labels").replace("idx3", "idx1")
        labels_file = p.with_name(labels_name) if labels_name != p.name else None
        if labels_file is not None and not labels_file.is_file():
            labels_file = None
    elif p.is_dir():
        images_file = _find_idx(p, "images", 3)
        labels_file = _find_idx(p, "labels", 1)
    else:
        raise DataNotFoundError(
            f"No MNIST directory {p}. Pass the directory holding t10k-images-idx3-ubyte.gz and "
            "t10k-labels-idx1-ubyte.gz."
        )
    if images_file is None:
        raise DataNotFoundError(
            f"No MNIST images file (t10k-images-idx3-ubyte.gz or similar) in {p}."
        )
    if labels_file is None:
        raise DataNotFoundError(
            f"No MNIST labels file matching {images_file.name} (e.g. t10k-labels-idx1-ubyte.gz) "
            f"next to it in {images_file.parent}."
        )
    images = _read_idx(images_file, 3)
    labels = _read_idx(labels_file, 1)
    if len(images) != len(labels):
        raise ValueError(
            f"{images_file.name} has {len(images)} images but {labels_file.name} has {len(labels)} "
            "labels; use files of the same set."
        )
    return images, labels


def _bounce_trajectories(
    positions: np.ndarray, theta: np.ndarray, n_frames: int, step: float
) -> np.ndarray:
    """Positions in ``[0, 1]`` after each of ``n_frames`` steps, shape ``(n_frames, *positions.shape)``.

    ``positions[..., 0]`` is y (rows), ``positions[..., 1]`` is x; the velocity is
    ``step * (sin(theta), cos(theta))``. Each frame first moves, then bounces: a coordinate at or past
    an edge is clamped to it and that velocity component is negated.
    """
    pos = np.array(positions, dtype=np.float64)
    vel = step * np.stack([np.sin(theta), np.cos(theta)], axis=-1)
    out = np.empty((n_frames, *pos.shape))
    for f in range(n_frames):
        pos += vel
        low = pos <= 0.0
        pos[low] = 0.0
        vel[low] = -vel[low]
        high = pos >= 1.0
        pos[high] = 1.0
        vel[high] = -vel[high]
        out[f] = pos
    return out


def moving_mnist(
    mnist_dir: str | os.PathLike | np.ndarray | None = None,
    n_sequences: int = 100,
    n_frames: int = 20,
    n_digits: int = 2,
    canvas: int = 64,
    seed: int = 0,
    as_series: bool = False,
    start: str | pd.Timestamp | int = "2000-01-01",
    freq: str | None = None,
    step: float = 0.1,
) -> np.ndarray | list[TimeSeries]:
    """Generate Moving MNIST sequences (Srivastava et al., 2015) with the standard recipe.

    For each sequence, ``n_digits`` digits are drawn uniformly from the MNIST set. Each starts at a
    uniform position in ``[0, 1)^2`` (in units of the free range ``canvas - 28``) with a uniform random
    direction; before every frame it moves ``step`` (0.1) along its direction, and a coordinate that
    reaches an edge is clamped to it and that velocity component negated (elastic bounce). A digit is
    drawn at pixel offset ``int(free * position)`` and digits are combined by pixel-wise maximum.

    Random draws use ``numpy.random.default_rng(seed)``, per sequence in this order: the digit indices,
    the ``(y, x)`` start of each digit, the directions. So the first sequences do not depend on
    ``n_sequences``.

    Parameters
    ----------
    mnist_dir
        A directory with MNIST idx files (see :func:`load_mnist_digits`), an ``(N, h, w)`` array of digit
        images (uint8 0..255 or floats in [0, 1]), or ``None`` for ``default_data_dir() / "mnist"``.
    n_sequences, n_frames, n_digits, canvas
        Number of sequences, frames per sequence, digits per sequence, canvas side in pixels.
    seed
        Seed of the random generator.
    as_series
        Return a list of gridded ``TimeSeries`` (one channel ``"intensity"``) instead of an array.
    start
        First time stamp of each series (used with ``freq``; an int starts a ``RangeIndex``).
    freq
        ``None`` for a ``RangeIndex``, else a pandas frequency for a date index from ``start``.
    step
        Distance moved per frame, as a fraction of the free range.

    Returns
    -------
    numpy.ndarray or list of TimeSeries
        ``(n_sequences, n_frames, 1, canvas, canvas)`` float32 in ``[0, 1]``, or ``n_sequences`` series
        of ``n_frames`` steps and ``canvas * canvas`` components.
    """
    for label, value, low in (
        ("n_sequences", n_sequences, 1),
        ("n_frames", n_frames, 1),
        ("n_digits", n_digits, 1),
    ):
        if int(value) != value or value < low:
            raise ValueError(f"{label} must be an integer >= {low}, got {value!r}.")
    if isinstance(mnist_dir, np.ndarray):
        images = mnist_dir
    else:
        directory = default_data_dir() / "mnist" if mnist_dir is None else mnist_dir
        images, _ = load_mnist_digits(directory)
    if images.ndim != 3 or len(images) == 0:
        raise ValueError(f"Digit images must be a non-empty (N, h, w) array, got {images.shape}.")
    if images.dtype == np.uint8:
        digits = images.astype(np.float32) / np.float32(255.0)
    else:
        digits = np.asarray(images, dtype=np.float32)
        if digits.min() < 0 or digits.max() > 1:
            raise ValueError("Float digit images must lie in [0, 1]; pass uint8 images or rescale.")
    size_y, size_x = digits.shape[1:]
    if canvas < max(size_y, size_x):
        raise ValueError(f"canvas ({canvas}) must be at least the digit size {digits.shape[1:]}.")

    rng = np.random.default_rng(seed)
    index = np.empty((n_sequences, n_digits), dtype=np.int64)
    start_pos = np.empty((n_sequences, n_digits, 2))
    theta = np.empty((n_sequences, n_digits))
    for i in range(n_sequences):
        index[i] = rng.integers(0, len(digits), size=n_digits)
        start_pos[i] = rng.random((n_digits, 2))
        theta[i] = rng.random(n_digits) * 2 * np.pi
    traj = _bounce_trajectories(start_pos, theta, n_frames, step)  # (F, S, D, 2)
    free = np.array([canvas - size_y, canvas - size_x], dtype=np.float64)
    offsets = (traj * free).astype(np.int32)

    out = np.zeros((n_sequences, n_frames, 1, canvas, canvas), dtype=np.float32)
    for s in range(n_sequences):
        for d in range(n_digits):
            digit = digits[index[s, d]]
            for f in range(n_frames):
                y, x = offsets[f, s, d]
                view = out[s, f, 0, y : y + size_y, x : x + size_x]
                np.maximum(view, digit, out=view)
    if not as_series:
        return out
    if freq is None:
        first = start if isinstance(start, int | np.integer) else 0
        times = pd.RangeIndex(first, first + n_frames)
    else:
        times = pd.date_range(start, periods=n_frames, freq=freq)
    return [grid_to_series(seq, times, ["intensity"]) for seq in out]
