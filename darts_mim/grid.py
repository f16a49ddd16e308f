"""The one grid type, :class:`GridSpec`, and gridded arrays <-> Darts ``TimeSeries`` <-> xarray.

Darts has no spatial type: a grid of ``C`` channels on ``H x W`` cells is stored as one ``TimeSeries``
with ``C * H * W`` components in channel-major order (all cells of channel 0, then channel 1, ...), and
the grid's shape, channel names and (when known) spatial coordinates travel in ``TimeSeries.metadata``
under :data:`GRID_KEY`, which Darts keeps through slicing, ``predict()`` and ``historical_forecasts()``.

This module imports no torch: the model and the ONNX runtime share its checks.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from darts import TimeSeries

GRID_KEY = "darts_mim_grid"

# Dimension names recognised in an xarray.DataArray (case-insensitive). A dimension with a datetime
# coordinate is the time dimension whatever its name.
TIME_DIM_NAMES = ("time", "valid_time", "datetime", "date", "t")
SPATIAL_DIM_NAMES = frozenset(
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
CHANNEL_DIM_NAMES = ("channel", "channels", "variable", "band", "component")
# Spatial names of rows (north-south): such a dimension becomes the grid's height whatever its place.
ROW_DIM_NAMES = frozenset(
    {"y", "lat", "latitude", "rlat", "row", "rows", "height", "south_north", "northing"}
)


@dataclass(frozen=True)
class GridSpec:
    """Shape of a gridded series: channel names, the spatial size ``height x width`` and, optionally,
    the names and coordinates of the two spatial dimensions.

    Two specs are equal when their channels and sizes are; coordinates are carried along for the way
    back to xarray (:func:`series_to_xarray`) but do not take part in comparisons.

    Parameters
    ----------
    channels
        One name per channel.
    height, width
        The grid's number of rows and columns.
    dims
        Names of the row and column dimensions, e.g. ``("lat", "lon")``. Default: ``("y", "x")``.
    coords
        The row and column coordinate values (``height`` and ``width`` of them), or ``None``.
    """

    channels: tuple[str, ...]
    height: int
    width: int
    dims: tuple[str, str] = field(default=("y", "x"), compare=False)
    coords: tuple[tuple, tuple] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(str(c) for c in self.channels))
        if self.coords is not None:
            rows, cols = (tuple(c) for c in self.coords)
            if (len(rows), len(cols)) != (self.height, self.width):
                raise ValueError(
                    f"Grid coordinates have {len(rows)}x{len(cols)} values for a "
                    f"{self.height}x{self.width} grid."
                )
            object.__setattr__(self, "coords", (rows, cols))

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def n_cells(self) -> int:
        return self.height * self.width

    @property
    def n_components(self) -> int:
        return self.n_channels * self.n_cells

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)``: the shape of one frame."""
        return (self.n_channels, self.height, self.width)

    def describe(self) -> str:
        """``"2x14x8 grid (channels ['in', 'out'])"``, or ``"plain series of 3 components"`` for a
        1x1 grid (how a plain multivariate series is laid out), for messages after "a"."""
        if self.n_cells == 1:
            n = self.n_channels
            return f"plain series of {n} component{'s' if n != 1 else ''}"
        return f"{self.n_channels}x{self.height}x{self.width} grid (channels {list(self.channels)})"

    def to_metadata(self) -> dict:
        """A JSON-serialisable dict (stored in ``TimeSeries.metadata`` and ONNX files)."""
        meta: dict[str, Any] = {
            "channels": list(self.channels),
            "height": self.height,
            "width": self.width,
        }
        if self.coords is not None or self.dims != ("y", "x"):
            meta["dims"] = list(self.dims)
        if self.coords is not None:
            meta["coords"] = [[_json_value(v) for v in axis] for axis in self.coords]
        return meta

    @classmethod
    def from_metadata(cls, meta: dict) -> GridSpec:
        coords = meta.get("coords")
        return cls(
            tuple(str(c) for c in meta["channels"]),
            int(meta["height"]),
            int(meta["width"]),
            dims=tuple(meta.get("dims", ("y", "x"))),
            coords=None if coords is None else (tuple(coords[0]), tuple(coords[1])),
        )

    def component_names(self) -> list[str]:
        """Component names ``"<channel>_r<row>_c<col>"`` in channel-major order."""
        return [
            f"{ch}_r{r}_c{c}"
            for ch in self.channels
            for r in range(self.height)
            for c in range(self.width)
        ]


@dataclass(frozen=True)
class GridLayout:
    """How a model's inputs sit on its grid: the target grid, the gridded covariate channels, the
    always-missing components and the training series' component names.

    Derived from the training data when the network is built, saved with the network's
    hyper-parameters, and written into exported ONNX files.

    Parameters
    ----------
    grid
        The target grid.
    past_grid_channels, future_grid_channels
        Channels of the covariates that are gridded like the target (fed per cell); the other
        covariate components are plain and broadcast to every cell.
    missing
        Indices of target components that are NaN at every step of the training data (masked).
    components
        The training target's component names, when known.
    fold
        Period folding of a plain series: the network's frames hold ``fold`` consecutive steps of
        each component as a ``1 x fold`` strip (see :mod:`darts_mim.folding`); 1 for none.
    fold_rows
        Rows of a folded frame: its ``fold`` steps laid out row-major as ``fold_rows x
        fold / fold_rows`` (a 2-D fold); 1 for a strip.
    """

    grid: GridSpec
    past_grid_channels: int = 0
    future_grid_channels: int = 0
    missing: tuple[int, ...] = ()
    components: tuple[str, ...] | None = None
    fold: int = 1
    fold_rows: int = 1

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (saved in the network's hyper-parameters and ONNX files)."""
        return {
            "grid": self.grid.to_metadata(),
            "past_grid_channels": self.past_grid_channels,
            "future_grid_channels": self.future_grid_channels,
            "missing": list(self.missing),
            "components": None if self.components is None else list(self.components),
            "fold": self.fold,
            "fold_rows": self.fold_rows,
        }

    @classmethod
    def from_dict(cls, d: dict) -> GridLayout:
        components = d.get("components")
        return cls(
            GridSpec.from_metadata(d["grid"]),
            int(d.get("past_grid_channels", 0)),
            int(d.get("future_grid_channels", 0)),
            tuple(int(i) for i in d.get("missing") or ()),
            None if components is None else tuple(str(c) for c in components),
            int(d.get("fold", 1)),
            int(d.get("fold_rows", 1)),  # 1 in layouts saved before 2-D folds existed
        )

    def component_names(self) -> list[str]:
        """The training components' names, else the grid's ``"<channel>_r<row>_c<col>"`` names."""
        return list(self.components) if self.components else self.grid.component_names()


def _json_value(value: Any) -> Any:
    """A coordinate value as JSON can hold it: numbers stay numbers, anything else is a string."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


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
            "components (e.g. series[components]); rebuild the series with "
            "darts_mim.grid_to_series()."
        )
    _check_component_order(series, spec)
    return spec


@functools.lru_cache(maxsize=64)
def _grid_names(channels: tuple[str, ...], height: int, width: int) -> tuple[pd.Index, frozenset]:
    """The grid's component names in order and as a set: cached, since :func:`grid_spec_of` runs
    on every conversion and check, and a large grid has millions of names."""
    names = GridSpec(channels, height, width).component_names()
    return pd.Index(names), frozenset(names)


def _check_component_order(series: TimeSeries, spec: GridSpec) -> None:
    """Refuse a gridded series whose components are the grid's names in another order.

    Darts keeps the metadata through ``series[names]``, so ``series[v_names + u_names]`` still says
    ``u`` comes first and every conversion would read ``v``'s values as ``u``'s. Names that do not
    follow the grid's ``"<channel>_r<row>_c<col>"`` pattern (renamed by the user) cannot be checked
    and pass, as before.
    """
    components = series.components
    expected, names = _grid_names(spec.channels, spec.height, spec.width)
    if components.equals(expected) or not names.issuperset(components):
        return
    # the count matched (checked before) and every name is the grid's: a permutation of them
    first = next(
        i for i, (got, want) in enumerate(zip(components, expected, strict=True)) if got != want
    )
    raise ValueError(
        "The series' components are not in its grid's order (channel-major, then row, then "
        f"column): component {first} is {components[first]!r} where the grid has "
        f"{expected[first]!r}, so the grid would read values under the wrong channel or cell. "
        "This happens after selecting components in another order (e.g. series[names]). Put them "
        "back in order with "
        '`series[darts_mim.GridSpec.from_metadata(series.metadata["darts_mim_grid"])'
        ".component_names()]`, or rebuild the series with darts_mim.grid_to_series()."
    )


def check_series_grid(series: TimeSeries, expected: GridSpec, what: str = "series") -> None:
    """Check that ``series`` can be forecast by a model fitted on the grid ``expected``.

    The one check shared by ``MIMModel.predict`` and ``OnnxForecaster.predict``. A gridded series
    must have the training grid's shape and channel count (channel names may differ, as component
    names may for Darts' own models); a plain series (no grid metadata) must have as many components.

    Parameters
    ----------
    series
        The series to forecast from.
    expected
        The grid the model was fitted on.
    what
        How to name the series in the message, e.g. ``"`series` at index 2"``.

    Raises
    ------
    ValueError
        Naming what differs and how to fix it.
    """
    spec = grid_spec_of(series)
    if spec is not None:
        if spec.shape == expected.shape:
            return
    elif series.n_components == expected.n_components:
        return
    if spec is not None and spec.n_cells > 1:
        got = f"a {spec.describe()}"
    else:  # a plain series, or one with the metadata of a 1x1 grid
        got = f"{series.n_components} component{'s' if series.n_components != 1 else ''}"
    if expected.n_cells == 1:  # a plain series: its components are the whole story
        fitted, fix = expected.describe(), "as many components as the training series"
    else:
        fitted = f"{expected.describe()}, {expected.n_components} components"
        fix = "the training grid's shape and channel count"
    raise ValueError(
        f"The model was fitted on a {fitted}, but {what} has {got}. Forecast series with {fix}."
    )


def _time_dim(da: xr.DataArray) -> str | None:
    """The dimension with a datetime coordinate, else the one named like time, else ``None``."""
    for dim in da.dims:
        if dim in da.coords and np.issubdtype(da.coords[dim].dtype, np.datetime64):
            return str(dim)
    for dim in da.dims:
        if str(dim).lower() in TIME_DIM_NAMES:
            return str(dim)
    return None


def _is_default_dim(dim: Any) -> bool:
    return str(dim).startswith("dim_") and str(dim)[4:].isdigit()


def grid_dims(da: xr.DataArray) -> tuple[str, str | None, list[str]]:
    """The time, channel (``None`` when there is none) and ``[row, column]`` dimensions of a gridded
    DataArray, found by name as :func:`dataarray_to_grid` describes; reads no values, so it works on
    lazy (dask-backed) arrays."""
    if da.ndim not in (3, 4):
        raise ValueError(
            f"The DataArray has dims {tuple(da.dims)}; expected time, two spatial dimensions and at "
            "most one channel dimension. Select or squeeze the others first (e.g. da.isel(level=0))."
        )
    if all(_is_default_dim(d) for d in da.dims):
        tdim = str(da.dims[0])
    else:
        tdim = _time_dim(da)
    if tdim is None:
        raise ValueError(
            f"The DataArray has no time dimension (dims {tuple(da.dims)}). Rename it to 'time' "
            "(da.rename({'t': 'time'})) or give it datetime coordinates."
        )
    others = [str(d) for d in da.dims if d != tdim]
    channel_dim = None
    if len(others) == 3:
        spatial = [d for d in others if d.lower() in SPATIAL_DIM_NAMES]
        named = [d for d in others if d.lower() in CHANNEL_DIM_NAMES]
        if len(spatial) == 2:
            channel_dim = next(d for d in others if d not in spatial)
        elif named:
            channel_dim = named[0]
        else:
            channel_dim = others[0]  # unnamed dims: (time, channel, y, x) read by position
    spatial = [d for d in others if d != channel_dim]
    if spatial[1].lower() in ROW_DIM_NAMES and spatial[0].lower() not in ROW_DIM_NAMES:
        spatial.reverse()  # rows first: (lon, lat) data still makes a lat x lon grid
    return tdim, channel_dim, spatial


def dataarray_to_grid(
    da: xr.DataArray, channels: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray | None, GridSpec]:
    """Split a gridded ``xarray.DataArray`` into ``(T, C, H, W)`` values, times and a :class:`GridSpec`.

    Dimensions are found by name, whatever their order: the time dimension is the one with a datetime
    coordinate (else one named ``time``, ``valid_time``, ``date``...), an optional channel dimension is
    named ``channel``, ``variable``, ``band``... (or is the one left over when the two others are
    spatial names such as ``lat``/``lon``, ``y``/``x``), and of the two spatial dimensions the one
    named like rows (``lat``, ``y``, ``row``...) gives the grid's height; others keep their order in
    the array. Only an array with xarray's default names (``dim_0``, ...) is read by position,
    time first.

    Parameters
    ----------
    da
        A 3-d (time and two spatial dimensions) or 4-d (plus a channel dimension) DataArray.
    channels
        Channel names; default: the channel coordinate, else the DataArray's name (one channel), else
        ``"ch0", "ch1", ...``.

    Returns
    -------
    tuple
        The values (time, channel, row, column), the time coordinate values (``None`` when the time
        dimension has no coordinate) and the grid with its spatial dimension names and coordinates.
    """
    tdim, channel_dim, spatial = grid_dims(da)
    order = [tdim] + ([channel_dim] if channel_dim else []) + spatial
    da = da.transpose(*order)
    values = np.asarray(da.values)
    if channel_dim is None:
        values = values[:, None]
    if channels is None:
        if channel_dim is not None and channel_dim in da.coords:
            channels = [str(c) for c in da.coords[channel_dim].values]
        elif channel_dim is None and da.name is not None:
            channels = [str(da.name)]
        elif channel_dim is not None and da.name is not None:
            channels = [f"{da.name}{i}" for i in range(da.sizes[channel_dim])]
    if channels is None:
        channels = [f"ch{i}" for i in range(values.shape[1])]
    coords = None
    if all(d in da.coords for d in spatial):
        coords = tuple(tuple(np.asarray(da.coords[d].values).tolist()) for d in spatial)
    spec = GridSpec(
        tuple(channels), values.shape[2], values.shape[3], dims=tuple(spatial), coords=coords
    )
    times = np.asarray(da.coords[tdim].values) if tdim in da.coords else None
    return values, times, spec


def _as_time_index(times, n: int) -> pd.Index:
    if times is None:
        return pd.RangeIndex(n)
    if isinstance(times, pd.RangeIndex):
        index = times
    else:
        index = pd.Index(times)
        if not isinstance(index, pd.DatetimeIndex | pd.RangeIndex):
            if pd.api.types.is_integer_dtype(index.dtype):
                index = _integer_index(index)
            else:
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


def _integer_index(index: pd.Index) -> pd.RangeIndex:
    """Evenly spaced integers as the RangeIndex Darts needs for an integer time axis."""
    values = np.asarray(index, dtype=np.int64)
    step = int(values[1] - values[0]) if len(values) > 1 else 1
    if len(values) > 1 and (step <= 0 or (np.diff(values) != step).any()):
        raise ValueError(
            "An integer time index must be evenly spaced and increasing, e.g. 0, 1, 2, ...; got "
            f"{values[:5].tolist()}..."
        )
    start = int(values[0]) if len(values) else 0
    return pd.RangeIndex(start, start + step * len(values), step)


def grid_to_series(
    array: np.ndarray | xr.DataArray,
    times: pd.DatetimeIndex | pd.RangeIndex | Sequence | None = None,
    channels: Sequence[str] | None = None,
    freq: str | None = None,
) -> TimeSeries:
    """Build a gridded ``TimeSeries`` from a ``(T, C, H, W)`` or ``(T, H, W)`` array or a DataArray.

    Parameters
    ----------
    array
        Values of shape ``(T, C, H, W)`` or ``(T, H, W)`` (one channel), or an ``xarray.DataArray``
        whose dimensions are read by name in any order (see :func:`dataarray_to_grid`): its time
        coordinate is used when ``times`` is not given, its channel coordinate (or, with one channel,
        its name) names the channels, and its spatial dimension names and coordinates are kept in the
        grid metadata, so :func:`series_to_xarray` gives them back.
    times
        The time index (length ``T``). Defaults to a ``RangeIndex``.
    channels
        Channel names, one per channel, all different (a string names the one channel). Defaults
        to ``"ch0", "ch1", ...``.
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
    dims: tuple[str, str] = ("y", "x")
    coords = None
    if isinstance(channels, str):
        # one name, not its letters: channels="temp" named 4 channels "t", "e", "m", "p" (or, on
        # one channel, failed with "Got 4 channel names for 1 channels")
        channels = [channels]
    if isinstance(array, xr.DataArray):
        array, da_times, da_spec = dataarray_to_grid(array, channels)
        channels, dims, coords = da_spec.channels, da_spec.dims, da_spec.coords
        if times is None:
            times = da_times
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
        raise ValueError(
            f"Got {len(channels)} channel names for {c} channels ({list(channels)} for axis 1 "
            f"of the (T, C, H, W) array of shape {values.shape}); give one name per channel."
        )
    # Darts would rename the repeated components ("a_r0_c0_1") and series_to_xarray label two
    # channels alike: one name, one channel.
    repeated = sorted({ch for ch in channels if channels.count(ch) > 1})
    if repeated:
        raise ValueError(
            f"Channel names must be unique, got {list(channels)} ({repeated} more than once). "
            "Give each channel its own name, e.g. 'u' and 'v', or leave `channels` out for "
            "'ch0', 'ch1', ..."
        )
    spec = GridSpec(channels, h, w, dims=dims, coords=coords)
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


def series_to_xarray(series: TimeSeries, grid: GridSpec | None = None) -> xr.DataArray:
    """Give back a gridded series (or a forecast of one) as an ``xarray.DataArray`` with coordinates.

    Parameters
    ----------
    series
        A series built by :func:`grid_to_series`, or a forecast of one.
    grid
        The grid to use when the series carries no grid metadata.

    Returns
    -------
    xarray.DataArray
        Dims ``(time, channel, <row dim>, <column dim>)`` (plus ``sample`` for a probabilistic series),
        with the time index, the channel names and the spatial coordinates the grid was built with
        (e.g. ``lat``/``lon``). A one-channel grid is named after its channel.
    """
    spec = grid or grid_spec_of(series)
    values = series_to_grid(series, spec)
    dims = ["time", "channel", *spec.dims] + (["sample"] if values.ndim == 5 else [])
    coords: dict[str, Any] = {"time": series.time_index, "channel": list(spec.channels)}
    if spec.coords is not None:
        coords.update({d: list(c) for d, c in zip(spec.dims, spec.coords, strict=True)})
    name = spec.channels[0] if spec.n_channels == 1 else None
    return xr.DataArray(values, dims=dims, coords=coords, name=name)


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
