"""Readers of gridded and tabular files in generic formats, and the :class:`GriddedData` they return.

* :func:`load_grid_array` wraps an in-memory ``(T, C, H, W)`` array and its time stamps,
* :func:`load_grid_npz` reads a gridded ``.npz`` file (the layout of ``shared/data/gridded``),
* :func:`load_netcdf` reads a gridded variable of a netCDF file with xarray,
* :func:`load_csv_series` reads a CSV file (e.g. ETTh1) as a plain multivariate ``TimeSeries``.

The loaders of the real data sets (crowd flows, radar, climate) are built on :func:`load_grid_npz`.
"""

from __future__ import annotations

import csv
import os
import re
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from darts import TimeSeries
from pandas.tseries.api import guess_datetime_format

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
    raw = np.asarray(times)
    if raw.dtype.kind in "biuf":
        # pandas reads numbers as nanoseconds since 1970: Unix seconds (1704067200, 1704069000)
        # became a series of 1800 ns steps in January 1970, without a word
        raise ValueError(
            f"{what}: the time stamps are numbers (e.g. {raw.reshape(-1)[:1].tolist()}), not "
            "dates. Convert them first, e.g. pandas.to_datetime(times, unit='s') for Unix seconds, "
            "and store ISO strings or datetime64 values."
        )
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


_TIME_COLUMN_NAMES = ("date", "time", "datetime", "timestamp", "month")
# "12,5" or "-0,75": a number written with a decimal comma
_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d+,\d+\s*$")


def _as_names(columns: str | Sequence[str] | None) -> list:
    if columns is None:
        return []
    return [columns] if isinstance(columns, str) else list(columns)


def _data_lines(path: Path, sep: str) -> list[int] | None:
    """The file line on which each data row of ``pandas.read_csv(path, sep=sep)`` starts.

    Blank lines are skipped as pandas skips them; a quoted field may span lines. ``None`` for a
    separator the ``csv`` module cannot split on (more than one character).
    """
    if len(sep) != 1:
        return None
    lines: list[int] = []
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh, delimiter=sep)
        header_seen, first_line = False, 1
        for record in reader:
            if any(field.strip() for field in record):
                if header_seen:
                    lines.append(first_line)
                header_seen = True
            first_line = reader.line_num + 1
    return lines


class _CsvRows:
    """Names the place of a data row in the file, for error messages: line number and time stamp."""

    def __init__(self, path: Path, sep: str, frame: pd.DataFrame):
        self.path, self.sep, self.frame = path, sep, frame
        self.time_col = None
        self._lines: list[int] | None | bool = False  # computed on the first error only

    def line(self, row: int) -> str:
        if self._lines is False:
            try:
                self._lines = _data_lines(self.path, self.sep)
            except OSError:
                self._lines = None
        lines = self._lines
        if lines is not None and len(lines) == len(self.frame):
            return f"line {lines[row]}"
        return f"data row {row + 1}"

    def where(self, row: int) -> str:
        """``"line 7 (date 2016-07-01 05:00:00)"``."""
        text = self.line(row)
        if self.time_col is not None:
            stamp = self.frame[self.time_col].iloc[row]
            text += f" ({self.time_col} {'(empty)' if pd.isna(stamp) else stamp})"
        return text


def _separator_hint(path: Path, sep: str) -> str:
    """A hint naming the separator of a file whose header holds ``;``, a tab or ``|``, not ``sep``."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            header = next((line for line in fh if line.strip()), "")
    except OSError:
        return ""
    for other, shown in ((";", ";"), ("\t", "\\t"), ("|", "|")):
        if other != sep and other in header and sep not in header:
            return (
                f' Its header looks separated by "{shown}", not "{sep}": pass sep="{shown}" '
                f"(darts-mim: --sep '{shown}')."
            )
    return ""


def _check_header(path: Path, sep: str) -> None:
    """Refuse repeated column names (pandas renames the second ``OT`` to ``OT.1`` silently)."""
    try:
        header = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str).iloc[0]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, IndexError):
        return
    names = [str(n).strip() for n in header.tolist() if not pd.isna(n)]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(
            f"{path.name}: the column name {repeated[0]!r} appears more than once in the header; "
            f"pandas would rename the second one {repeated[0] + '.1'!r} and load both. Rename or "
            "remove the repeated column."
        )


def _numbers(column: pd.Series, name, decimal: str, rows: _CsvRows, path: Path) -> np.ndarray:
    """A column's values as float64, or a ``ValueError`` naming the first cell that is not a number.

    An empty cell or a missing-value marker (``n/a``, ``NA``, ...) is NaN, not an error.
    """
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=np.float64)
    cells = [None if pd.isna(v) else str(v).strip() for v in column]
    if decimal == ".":
        text = cells
        wrong_mark = [False] * len(cells)
    else:  # with decimal=",", "1.5" is not a number of this file (pandas leaves it as text)
        text = [None if v is None else v.replace(decimal, ".") for v in cells]
        wrong_mark = [v is not None and "." in v for v in cells]
    values = pd.to_numeric(pd.Series(text, dtype=object), errors="coerce").to_numpy(np.float64)
    bad = np.flatnonzero(
        [
            (v is not None and np.isnan(x)) or w
            for v, x, w in zip(cells, values, wrong_mark, strict=True)
        ]
    )
    if not len(bad):
        return values
    row, cell = int(bad[0]), cells[int(bad[0])]
    drop_hint = f"drop=[{str(name)!r}] (darts-mim: --drop {name})"
    comma_hint = (
        'If the file writes decimals with a comma, load it with decimal="," (darts-mim: '
        "--decimal ,); otherwise "
        if decimal == "." and _DECIMAL_COMMA.match(cell)
        else ""
    )
    group = "," if decimal == "." else "."
    if re.match(rf"^\s*[+-]?\d{{1,3}}(\{group}\d{{3}})+(\{decimal}\d+)?\s*$", cell):
        # "1,200" read with the decimal="," the hint above advised is 1.2, not 1200, without a
        # word: name the thousands separator before that reading
        comma_hint = (
            f"If {group!r} separates thousands ({cell.strip()!r} meaning "
            f"{cell.strip().replace(group, '')}), remove the separators first (e.g. "
            f"pandas.read_csv(path, thousands={group!r}, decimal={decimal!r}) and save it again): "
            + (
                f'decimal="," would read {cell.strip()!r} as {cell.strip().replace(",", ".")}. '
                'If the comma is the decimal mark, load it with decimal="," (darts-mim: '
                "--decimal ,). Otherwise "
                if group == ","
                else "otherwise "
            )
        )
    if len(bad) == sum(v is not None for v in cells):
        todo = "leave it out" if comma_hint else "Leave it out"
        raise ValueError(
            f"{path.name}: column {name!r} holds text, not numbers (e.g. {cell!r} on "
            f"{rows.where(row)}). {comma_hint}{todo} explicitly with {drop_hint}, or choose the "
            "columns to load with value_cols."
        )
    more = f" (and {len(bad) - 1} more such cells)" if len(bad) > 1 else ""
    todo = "fix" if comma_hint else "Fix"
    raise ValueError(
        f"{path.name}: column {name!r} holds a value that is not a number: {cell!r} on "
        f"{rows.where(row)}{more}. {comma_hint}{todo} that cell, or leave the column out "
        f"explicitly with {drop_hint}."
    )


def _day_month_formats(column: pd.Series) -> tuple[str, str] | None:
    """The month-first and day-first formats of a time column whose first date reads both ways
    (``01/02/2020``, ``01.02.2020 10:00``), else ``None`` (ISO dates, year first, never are)."""
    first = column.dropna()
    if first.empty or not isinstance(first.iloc[0], str):
        return None
    with warnings.catch_warnings():
        # pandas warns "Parsing dates in %d/%m/%Y format when dayfirst=False (the default) was
        # specified" while guessing, even for ISO dates: a user saw that advice about an argument
        # of a function they never called, for a column read correctly
        warnings.simplefilter("ignore", UserWarning)
        formats = tuple(
            guess_datetime_format(first.iloc[0].strip(), dayfirst=d) for d in (False, True)
        )
    if None in formats or formats[0] == formats[1] or any(f.startswith("%Y") for f in formats):
        return None
    return formats


def _read_dates(column: pd.Series, fmt: str) -> pd.DatetimeIndex | None:
    try:
        return pd.DatetimeIndex(pd.to_datetime(column.str.strip(), format=fmt))
    except (ValueError, TypeError, OverflowError, AttributeError):
        return None


def _parse_day_month(
    column: pd.Series, name, path: Path, dayfirst: bool | None
) -> pd.DatetimeIndex | None:
    """Dates like ``01/02/2020``: read day first or month first as the whole column allows.

    pandas reads them month first unless told, so a day-first file whose days are all 12 or less
    (monthly data: ``01/02/2020``, ``01/03/2020``, ...) became days in January without a word, and
    a longer one failed on its 13th day with an error about that cell. Returns ``None`` for other
    columns (or one that parses neither way: the caller names its bad cell).
    """
    formats = _day_month_formats(column)
    if formats is None:
        return None
    readings = {
        order: _read_dates(column, fmt) for order, fmt in zip((False, True), formats, strict=True)
    }
    readings = {order: stamps for order, stamps in readings.items() if stamps is not None}
    if dayfirst is not None:
        if bool(dayfirst) in readings:
            return readings[bool(dayfirst)]
        # the order asked for does not read every date: NaT where not, named by the caller
        fmt = formats[int(bool(dayfirst))]
        return pd.DatetimeIndex(pd.to_datetime(column.str.strip(), format=fmt, errors="coerce"))
    if len(readings) == 2 and not readings[False].equals(readings[True]):
        # one reading evenly spaced (hourly over 1-2 March), the other with jumps (3 January,
        # then 3 February): the even one
        even = [order for order, stamps in readings.items() if _evenly_spaced(stamps)]
        if len(even) == 1:
            return readings[even[0]]
        row = int(np.argmax(np.asarray(readings[False] != readings[True])))
        month, day = readings[False][row], readings[True][row]
        raise ValueError(
            f"{path.name}: the dates of column {name!r} read day first or month first alike "
            f"({str(column.iloc[row]).strip()!r} is {month:%d %B %Y} month first, "
            f"{day:%d %B %Y} day first). Say which: dayfirst=True or False (darts-mim: "
            "--date-order day-first or month-first)."
        )
    return next(iter(readings.values()), None)


def _evenly_spaced(stamps: pd.DatetimeIndex) -> bool:
    """Whether pandas finds a frequency in the stamps (calendar steps like months included)."""
    try:
        return len(stamps) >= 3 and pd.infer_freq(stamps) is not None
    except (TypeError, ValueError):
        return False


def _parse_times(
    column: pd.Series, name, rows: _CsvRows, path: Path, dayfirst: bool | None = None
) -> pd.DatetimeIndex:
    """Parse a time column, or raise a ``ValueError`` naming the first cell that is not a date."""
    if pd.api.types.is_numeric_dtype(column):
        # pandas reads numbers as nanoseconds after 1970: years (2000, 2001) and Unix seconds
        # became time stamps a few microseconds into 1970 without a word
        row = int(np.argmax(column.notna().to_numpy())) if len(column) else 0
        example = column.iloc[row] if len(column) else "no value"
        raise ValueError(
            f"{path.name}: the time column {name!r} holds numbers (e.g. {example} on "
            f"{rows.line(row)}), not dates; pandas would read them as nanoseconds after 1970. Write "
            f"the times as dates (2020-01-01), convert the column first (years: "
            f"pd.to_datetime(df[{str(name)!r}].astype(str), format='%Y'); Unix seconds: "
            f"pd.to_datetime(df[{str(name)!r}], unit='s')), or, for step numbers, leave it out "
            f"with drop=[{str(name)!r}] (darts-mim: --drop {name}) to index the steps 0, 1, 2..."
        )
    stamps = _parse_day_month(column, name, path, dayfirst)
    if stamps is not None:
        return _check_dates(stamps, column, name, rows, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format" for odd cells
        # "parsing datetimes with mixed time zones will raise an error unless utc=True": pandas'
        # note on an attempt that _utc_stamps below makes right, not something the user can act on
        warnings.simplefilter("ignore", FutureWarning)
        for fmt in (None, "ISO8601"):
            try:
                stamps = pd.DatetimeIndex(pd.to_datetime(column, format=fmt))
                break
            except (ValueError, TypeError, OverflowError):
                stamps = None
        if stamps is None:
            # several UTC offsets in one column (local time across a daylight saving change:
            # +01:00 then +02:00): pandas parses them only into UTC, and refused the column with
            # "Tz-aware datetime.datetime cannot be converted to datetime64 unless utc=True"
            stamps = _utc_stamps(column)
        if stamps is None:
            try:
                stamps = pd.DatetimeIndex(pd.to_datetime(column, errors="coerce"))
            except (ValueError, TypeError, OverflowError) as err:
                raise ValueError(
                    f"{path.name}: column {name!r} does not parse as dates ({err})."
                ) from err
    return _check_dates(stamps, column, name, rows, path)


def _utc_stamps(column: pd.Series) -> pd.DatetimeIndex | None:
    """Time stamps with mixed UTC offsets as one UTC index, else ``None``.

    Like a column of one offset, the index keeps its time zone here and Darts removes it (with its
    warning), so the series' times are UTC wall-clock times, evenly spaced across the change.
    """
    for fmt in (None, "ISO8601"):
        try:
            stamps = pd.DatetimeIndex(pd.to_datetime(column, format=fmt, utc=True))
        except (ValueError, TypeError, OverflowError):
            continue
        if not stamps.isna().any():
            return stamps
    return None


def _check_dates(
    stamps: pd.DatetimeIndex, column: pd.Series, name, rows: _CsvRows, path: Path
) -> pd.DatetimeIndex:
    """Refuse a time column with cells that did not parse (NaT), naming the first."""
    bad = np.flatnonzero(np.asarray(stamps.isna()))
    if len(bad):
        row = int(bad[0])
        cell = column.iloc[row]
        value = "an empty cell" if pd.isna(cell) else f"{str(cell)!r}"
        more = f" ({len(bad)} such cells)" if len(bad) > 1 else ""
        raise ValueError(
            f"{path.name}: the time column {name!r} has {value} on {rows.line(row)}{more} that is "
            "not a date like the others: the row cannot be placed in time. Fix or delete that row."
        )
    return stamps


def _check_time_order(stamps: pd.DatetimeIndex, rows: _CsvRows, path: Path, sort: bool) -> None:
    """Refuse repeated time stamps, and rows out of time order unless they are sorted anyway."""
    if stamps.has_duplicates:
        first = stamps[stamps.duplicated()][0]
        where = np.flatnonzero(stamps == first)
        one, two = rows.line(int(where[0])), rows.line(int(where[1]))
        lines = f"lines {one[5:]} and {two[5:]}" if one.startswith("line ") else f"{one} and {two}"
        n_dup = int(stamps.duplicated().sum())
        raise ValueError(
            f"{path.name}: the time stamp {first} appears on {lines} ({n_dup} repeated time "
            f"stamp{'s' if n_dup > 1 else ''} in column {rows.time_col!r}); a series has one row "
            "per time step. Remove or merge the repeated rows (e.g. average them with "
            "DataFrame.groupby(time column).mean()) before loading."
        )
    if not sort and not stamps.is_monotonic_increasing:
        row = int(np.flatnonzero(np.diff(stamps.asi8) < 0)[0]) + 1
        raise ValueError(
            f"{path.name}: the rows are not in time order: {rows.where(row)} comes after "
            f"{rows.where(row - 1)}. Sort the file by {rows.time_col!r} first."
        )


def load_csv_series(
    path: str | os.PathLike,
    time_col: str | None = None,
    value_cols: str | Sequence[str] | None = None,
    *,
    drop: str | Sequence[str] | None = None,
    decimal: str = ".",
    sep: str = ",",
    freq: str | None = None,
    fill_missing_dates: bool = False,
    dayfirst: bool | None = None,
) -> TimeSeries:
    """Load a CSV file (e.g. ETTh1) as a plain multivariate ``TimeSeries``.

    Nothing is left out silently: every column but the time column becomes a component unless
    ``value_cols`` or ``drop`` says otherwise, and a cell that is not a number (``"12,5"`` in a file
    with decimal points, a word), a time stamp that does not parse, a repeated time stamp or a
    repeated column name is refused with the file line, the time stamp and the value. An empty
    cell or a missing-value marker (``NA``, ``n/a``, ``null``, ... as pandas reads them) is NaN.

    Parameters
    ----------
    path
        The CSV file.
    time_col
        The column of time stamps. By default a column named ``date``, ``time``, ``datetime``,
        ``timestamp`` or ``month`` (any case), else the first column if it is not numeric and most
        of its cells parse as dates; without one the series gets a ``RangeIndex``. A time column of
        numbers (years, Unix seconds) is refused: pandas would read them as nanoseconds. Time
        stamps whose UTC offset changes (local time across daylight saving) are read as UTC.
    value_cols
        Columns to load; default: every column but the time column and ``drop``.
    drop
        Columns to leave out (e.g. a station name or a second date column); each must exist. Give
        ``value_cols`` or ``drop``, not both.
    decimal
        The decimal mark of the file: ``","`` for a file that writes ``12,5``. Default: ``"."``.
    sep
        The field separator, e.g. ``";"`` (usual with decimal commas) or ``"\\t"``. Default:
        ``","``.
    freq
        Time step; inferred from the time stamps when not given.
    fill_missing_dates
        Insert rows of NaN for missing time stamps (e.g. ILINet's missing weeks), at ``freq`` or else
        the most common step; the rows are sorted by time first. A time stamp off that step's grid
        is refused (reindexing would drop its row).
    dayfirst
        For dates written day and month first alike (``01/02/2020``): ``True`` reads 1 February,
        ``False`` 2 January. Default ``None``: the order the whole column allows (``13/02/2020``
        is day first), and an error when both orders read every date (all days 12 or less, as in
        monthly data). ISO dates (``2020-02-01``) are never ambiguous and ignore it.

    Returns
    -------
    TimeSeries
        float64 values, one component per loaded column.

    Raises
    ------
    DataNotFoundError
        When the file does not exist.
    ValueError
        For an unknown column, a cell that is not a number in a loaded column, a time stamp that
        does not parse, a time column of numbers, a header without data rows, repeated time
        stamps or column names, a column without a name in the
        header (a row index written by ``DataFrame.to_csv()``) unless ``drop`` or ``value_cols``
        names it, rows out of time order (without ``fill_missing_dates``), uneven time steps, or
        dates that read day first and month first alike without ``dayfirst``.

    Examples
    --------
    >>> series = load_csv_series("sensors.csv", drop=["station"])  # doctest: +SKIP
    >>> series = load_csv_series("messwerte.csv", sep=";", decimal=",")  # doctest: +SKIP
    """
    p = _check_file(path)
    try:
        df = pd.read_csv(p, sep=sep, decimal=decimal)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        hint = _separator_hint(p, sep)
        raise ValueError(
            f"{p} is not a readable CSV file ({' '.join(str(err).split())}).{hint}"
        ) from err
    except ValueError as err:  # e.g. the same character as sep and decimal
        raise ValueError(
            f"{p}: cannot read it with sep={sep!r}, decimal={decimal!r} ({err})."
        ) from err
    rows = _CsvRows(p, sep, df)
    _check_header(p, sep)
    if df.empty and len(df.columns):
        # a header and no rows asked for freq= ("cannot infer a frequency from 0 time stamps"),
        # and with it gave an empty series
        raise ValueError(
            f"{p.name} has a header ({', '.join(map(str, df.columns))}) but no data rows; check "
            "that it is the file you meant and that it was written completely."
        )
    if len(df.columns) == 1 and _separator_hint(p, sep):
        raise ValueError(
            f"{p.name} has one column {str(df.columns[0])!r}.{_separator_hint(p, sep)}"
        )
    drop = _as_names(drop)
    unknown = [c for c in drop if c not in df.columns]
    if unknown:
        raise ValueError(f"{p} has no column(s) {unknown} to drop; columns are {list(df.columns)}.")
    if drop and value_cols is not None:
        raise ValueError(
            "give value_cols (the columns to load) or drop (the ones to leave out), not both."
        )
    columns = [c for c in df.columns if c not in drop]
    if time_col is None:
        for col in columns:
            if str(col).strip().lower() in _TIME_COLUMN_NAMES:
                time_col = col
                break
    if time_col is None and columns and not pd.api.types.is_numeric_dtype(df[columns[0]]):
        first = df[columns[0]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            try:
                parsed = pd.to_datetime(first, errors="coerce")
            except (ValueError, TypeError, OverflowError):
                parsed = None
        # mostly dates: the time column (its odd cells are refused below); else a text column,
        # refused below unless dropped
        formats = _day_month_formats(first) or ()
        # day-first dates past the 12th do not parse month first: still the time column
        if (parsed is not None and parsed.notna().sum() * 2 > first.notna().sum()) or any(
            _read_dates(first, fmt) is not None for fmt in formats
        ):
            time_col = columns[0]
    if time_col is not None and time_col not in df.columns:
        raise ValueError(f"{p} has no column {time_col!r}; columns are {list(df.columns)}.")
    rows.time_col = time_col
    if value_cols is None:
        value_cols = [c for c in columns if c != time_col]
        if not value_cols:
            raise ValueError(f"{p} has no value columns to load (columns {list(df.columns)}).")
        # pandas names a column with an empty header cell "Unnamed: <position>": mostly the row
        # index that DataFrame.to_csv() writes without index=False, which would become a
        # component (the row number as a feature) without a word
        unnamed = [c for i, c in enumerate(df.columns) if c in value_cols and c == f"Unnamed: {i}"]
        if unnamed:
            col = unnamed[0]
            raise ValueError(
                f"{p.name}: column {df.columns.get_loc(col) + 1} has no name in the header (pandas "
                f"calls it {col!r}); it is likely a row index written by DataFrame.to_csv() "
                f"without index=False. Leave it out with drop=[{col!r}] (darts-mim: --drop "
                f"'{col}'), or give it a name in the header to load it."
            )
    else:
        value_cols = _as_names(value_cols)
        missing = [c for c in value_cols if c not in df.columns]
        if missing:
            raise ValueError(f"{p} has no column(s) {missing}; columns are {list(df.columns)}.")
    values = np.column_stack([_numbers(df[c], c, decimal, rows, p) for c in value_cols])
    names = [str(c) for c in value_cols]
    if time_col is None:
        return TimeSeries.from_values(values, columns=names)
    stamps = _parse_times(df[time_col], time_col, rows, p, dayfirst)
    _check_time_order(stamps, rows, p, sort=fill_missing_dates)
    times = stamps
    if fill_missing_dates:
        order = np.argsort(stamps.asi8, kind="stable")
        stamps, values = stamps[order], values[order]
        step = freq
        if step is None:
            common = pd.Series(stamps[1:] - stamps[:-1]).mode().iloc[0]
            whole_days = common % pd.Timedelta(days=1) == pd.Timedelta(0)
            step = pd.offsets.Day(common.days) if whole_days else common
        times = pd.date_range(stamps[0], stamps[-1], freq=step)
        off_grid = np.flatnonzero(~stamps.isin(times))
        if len(off_grid):
            row = int(order[off_grid[0]])
            raise ValueError(
                f"{p.name}: the time stamp {stamps[off_grid[0]]} on {rows.line(row)} is not on the "
                f"grid of steps of {times.freqstr} from {stamps[0]} ({len(off_grid)} such "
                "row(s)); filling the missing dates would drop it. Pass the right freq=, or "
                "resample the data first."
            )
        values = pd.DataFrame(values, index=stamps).reindex(times).to_numpy()
        freq = times.freq
    index = _datetime_index(times, len(values), p.name, freq)
    return TimeSeries.from_times_and_values(index, values, columns=names)
