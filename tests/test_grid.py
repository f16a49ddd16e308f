"""Tests of the grid <-> TimeSeries conversion in darts_mim.grid."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from darts import TimeSeries
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from darts_mim.grid import (
    GRID_KEY,
    GridSpec,
    always_missing_cells,
    check_series_grid,
    grid_spec_of,
    grid_to_series,
    series_to_grid,
    series_to_xarray,
    with_grid,
)


@pytest.fixture
def grid4() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.random((12, 2, 3, 4)).astype(np.float32)


@pytest.fixture
def times() -> pd.DatetimeIndex:
    return pd.date_range("2024-01-01", periods=12, freq="30min")


def test_round_trip_tchw(grid4, times):
    s = grid_to_series(grid4, times, ["in", "out"])
    assert s.n_components == 2 * 3 * 4
    assert len(s) == 12
    assert s.freq == pd.tseries.frequencies.to_offset("30min")
    assert s.metadata[GRID_KEY] == {"channels": ["in", "out"], "height": 3, "width": 4}
    back = series_to_grid(s)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, grid4)


def test_component_order_is_channel_major(grid4):
    s = grid_to_series(grid4)
    names = list(s.components)
    assert names[0] == "ch0_r0_c0"
    assert names[1] == "ch0_r0_c1"
    assert names[4] == "ch0_r1_c0"
    assert names[12] == "ch1_r0_c0"
    values = s.values()
    assert values[3, 12 + 4 * 2 + 1] == grid4[3, 1, 2, 1]


def test_round_trip_thw():
    arr = np.arange(5 * 3 * 2, dtype=np.float64).reshape(5, 3, 2)
    s = grid_to_series(arr)
    assert isinstance(s.time_index, pd.RangeIndex)
    assert grid_spec_of(s) == GridSpec(("ch0",), 3, 2)
    back = series_to_grid(s)
    assert back.shape == (5, 1, 3, 2)
    assert back.dtype == np.float64
    np.testing.assert_array_equal(back[:, 0], arr)


@pytest.mark.parametrize("dtype", ["uint8", "int64", "float16"])
def test_other_numeric_dtypes_become_float32(dtype):
    arr = (np.arange(4 * 2 * 2) % 7).astype(dtype).reshape(4, 1, 2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Darts warns on dtypes other than float32/64
        s = grid_to_series(arr)
    assert s.dtype == np.float32
    np.testing.assert_array_equal(series_to_grid(s), arr.astype(np.float32))


def test_xarray_input_4d():
    t = pd.date_range("2020-01-01", periods=6, freq="D")
    values = np.random.default_rng(1).random((6, 2, 3, 5))
    da = xr.DataArray(
        values,
        dims=("time", "band", "y", "x"),
        coords={"time": t, "band": ["rain", "wind"]},
    )
    s = grid_to_series(da)
    assert grid_spec_of(s) == GridSpec(("rain", "wind"), 3, 5)
    assert s.freq == pd.tseries.frequencies.to_offset("D")
    assert (s.time_index == t).all()
    np.testing.assert_array_equal(series_to_grid(s), values)


def test_xarray_input_3d():
    t = pd.date_range("2020-01-01", periods=4, freq="h")
    values = np.random.default_rng(2).random((4, 3, 2)).astype(np.float32)
    da = xr.DataArray(values, dims=("time", "lat", "lon"), coords={"time": t})
    s = grid_to_series(da, channels=["t2m"])
    assert grid_spec_of(s).channels == ("t2m",)
    np.testing.assert_array_equal(series_to_grid(s)[:, 0], values)


def test_probabilistic_round_trip(times):
    rng = np.random.default_rng(3)
    spec = GridSpec(("a", "b"), 2, 3)
    samples = rng.random((12, 2, 2, 3, 7)).astype(np.float32)  # (T, C, H, W, S)
    flat = samples.reshape(12, spec.n_components, 7)
    s = TimeSeries.from_times_and_values(times, flat, columns=spec.component_names())
    s = with_grid(s, spec)
    assert s.n_samples == 7
    back = series_to_grid(s)
    assert back.shape == (12, 2, 2, 3, 7)
    np.testing.assert_array_equal(back, samples)


def test_grid_argument_for_plain_series(grid4):
    spec = GridSpec(("in", "out"), 3, 4)
    plain = TimeSeries.from_values(grid4.reshape(12, -1))
    assert grid_spec_of(plain) is None
    np.testing.assert_array_equal(series_to_grid(plain, spec), grid4)
    with pytest.raises(ValueError, match="no grid metadata"):
        series_to_grid(plain)


def test_metadata_survives_slicing(grid4, times):
    s = grid_to_series(grid4, times, ["in", "out"])
    pieces = {
        "slice": (s[3:9], slice(3, 9)),
        "time_slice": (s.slice(times[2], times[5]), slice(2, 6)),
        "drop_before": (s.drop_before(times[4]), slice(5, None)),
        "split": (s.split_after(times[6])[1], slice(7, None)),
        "head": (s.head(4), slice(0, 4)),
    }
    for label, (piece, sl) in pieces.items():
        assert grid_spec_of(piece) == GridSpec(("in", "out"), 3, 4), label
        np.testing.assert_array_equal(series_to_grid(piece), grid4[sl], err_msg=label)


def test_with_grid_attaches_metadata(grid4):
    plain = TimeSeries.from_values(grid4.reshape(12, -1))
    spec = GridSpec(("x", "y"), 3, 4)
    s = with_grid(plain, spec)
    assert grid_spec_of(s) == spec
    np.testing.assert_array_equal(series_to_grid(s), grid4)


def test_always_missing_cells():
    arr = np.random.default_rng(4).random((5, 1, 2, 2))
    arr[:, 0, 0, 1] = np.nan  # always missing
    arr[2, 0, 1, 1] = np.nan  # missing once only
    s1 = grid_to_series(arr)
    s2 = grid_to_series(arr[:3])
    mask = always_missing_cells([s1, s2])
    np.testing.assert_array_equal(mask, [False, True, False, False])
    assert always_missing_cells([]).shape == (0,)


# ---------------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    "array",
    [
        np.array([["a", "b"], ["c", "d"]] * 6).reshape(3, 2, 2, 2),
        np.ones((3, 1, 2, 2), dtype=bool),
        np.ones((3, 1, 2, 2), dtype=object),
        np.ones((3, 1, 2, 2), dtype=np.complex64),
    ],
    ids=["str", "bool", "object", "complex"],
)
def test_non_numeric_dtype(array):
    with pytest.raises(ValueError, match=r"must be numeric .* got dtype"):
        grid_to_series(array)


@pytest.mark.parametrize("shape", [(5,), (5, 4), (5, 1, 2, 3, 4)])
def test_wrong_ndim(shape):
    with pytest.raises(ValueError, match=r"Expected a \(T, C, H, W\) or \(T, H, W\) array"):
        grid_to_series(np.zeros(shape, dtype=np.float32))


def test_wrong_channel_count(grid4):
    with pytest.raises(ValueError, match="Got 3 channel names for 2 channels"):
        grid_to_series(grid4, channels=["a", "b", "c"])


def test_one_channel_name_as_a_string_is_one_name_not_its_letters():
    # channels="temp" was iterated: 4 channels "t", "e", "m", "p", or on one channel the error
    # "Got 4 channel names for 1 channels"
    one = grid_to_series(np.zeros((5, 3, 4), dtype=np.float32), channels="temp")
    assert grid_spec_of(one).channels == ("temp",)
    with pytest.raises(ValueError, match=r"Got 1 channel names for 4 channels \(\['temp'\]"):
        grid_to_series(np.zeros((5, 4, 3, 4), dtype=np.float32), channels="temp")
    da = xr.DataArray(np.zeros((5, 3, 4), dtype=np.float32), dims=("time", "lat", "lon"))
    assert grid_spec_of(grid_to_series(da, channels="t2m")).channels == ("t2m",)


def test_duplicate_channel_names_are_refused(grid4):
    """Darts renamed the second channel's components (a_r0_c0_1) and series_to_xarray gave two
    channels labelled 'a'."""
    with pytest.raises(ValueError, match=r"Channel names must be unique, got \['a', 'a'\]"):
        grid_to_series(grid4, channels=["a", "a"])
    da = xr.DataArray(grid4, dims=("time", "channel", "y", "x"), coords={"channel": ["a", "a"]})
    with pytest.raises(ValueError, match=r"Channel names must be unique"):
        grid_to_series(da)


def test_wrong_times_length(grid4):
    with pytest.raises(ValueError, match="`times` has 5 entries but the array has 12"):
        grid_to_series(grid4, pd.date_range("2024", periods=5, freq="h"))


@pytest.mark.filterwarnings("ignore:Could not infer format")
def test_unparsable_times(grid4):
    with pytest.raises(ValueError, match="`times` must be"):
        grid_to_series(grid4, ["not a date"] * 12)


def test_metadata_component_mismatch(grid4):
    s = grid_to_series(grid4)
    subset = s[["ch0_r0_c0", "ch0_r0_c1"]]  # Darts keeps the metadata
    with pytest.raises(ValueError, match="grid metadata says 2 channel"):
        grid_spec_of(subset)
    with pytest.raises(ValueError, match="grid metadata says"):
        series_to_grid(subset)
    with pytest.raises(ValueError, match="grid metadata says"):
        grid_spec_of(s.stack(s))


def test_with_grid_mismatch(grid4):
    plain = TimeSeries.from_values(grid4.reshape(12, -1))
    with pytest.raises(ValueError, match="has 24 components but a 1x3x4 grid needs 12"):
        with_grid(plain, GridSpec(("a",), 3, 4))


def test_series_to_grid_wrong_spec(grid4):
    plain = TimeSeries.from_values(grid4.reshape(12, -1))
    with pytest.raises(ValueError, match="24 components, the grid needs 12"):
        series_to_grid(plain, GridSpec(("a",), 3, 4))


# ---------------------------------------------------------------------------------------------------
# property test


@st.composite
def grids(draw):
    shape = (
        draw(st.integers(1, 6)),
        draw(st.integers(1, 3)),
        draw(st.integers(1, 4)),
        draw(st.integers(1, 4)),
    )
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    elements = st.floats(
        allow_nan=True, allow_infinity=False, width=32 if dtype is np.float32 else 64
    )
    arr = draw(hnp.arrays(dtype, shape, elements=elements))
    three_d = shape[1] == 1 and draw(st.booleans())
    return arr[:, 0] if three_d else arr


@settings(max_examples=40, deadline=None)
@given(arr=grids(), dated=st.booleans())
def test_round_trip_property(arr, dated):
    t = arr.shape[0]
    times = pd.date_range("2021-03-01", periods=t, freq="15min") if dated else None
    s = grid_to_series(arr, times)
    spec = grid_spec_of(s)
    expected = arr if arr.ndim == 4 else arr[:, None]
    assert (spec.n_channels, spec.height, spec.width) == expected.shape[1:]
    assert s.n_components == spec.n_components == len(set(s.components))
    back = series_to_grid(s)
    assert back.dtype == arr.dtype
    np.testing.assert_array_equal(back, expected)
    if t > 1:
        np.testing.assert_array_equal(series_to_grid(s[1:]), expected[1:])


def _era5_like() -> xr.DataArray:
    t = pd.date_range("2020-01-01", periods=300, freq="h")
    lat, lon = np.linspace(50, 57, 8), np.linspace(-3, 4, 5)
    values = np.random.default_rng(3).random((300, 8, 5)).astype(np.float32)
    return xr.DataArray(
        values,
        dims=("time", "lat", "lon"),
        coords={"time": t, "lat": lat, "lon": lon},
        name="t2m",
    )


@pytest.mark.parametrize(
    "order", [("time", "lat", "lon"), ("lat", "lon", "time"), ("lat", "time", "lon")]
)
def test_xarray_dims_are_read_by_name_in_any_order(order):
    da = _era5_like()
    s = grid_to_series(da.transpose(*order))
    assert len(s) == 300  # not an 8-step series on an 8x300 grid
    spec = grid_spec_of(s)
    assert spec == GridSpec(("t2m",), 8, 5)  # the DataArray's name names the channel
    assert spec.dims == ("lat", "lon")
    np.testing.assert_allclose(spec.coords[0], da.lat.values)
    np.testing.assert_allclose(spec.coords[1], da.lon.values)
    np.testing.assert_array_equal(series_to_grid(s)[:, 0], da.values)


def test_xarray_channel_dim_found_by_name_anywhere():
    da = _era5_like()
    both = xr.concat([da, da + 1], dim="variable").assign_coords(variable=["t2m", "t2m_plus"])
    s = grid_to_series(both.transpose("lat", "variable", "lon", "time"))
    assert grid_spec_of(s).channels == ("t2m", "t2m_plus")
    np.testing.assert_allclose(series_to_grid(s)[:, 1], da.values + 1)


def test_xarray_without_a_time_dimension_is_refused():
    da = xr.DataArray(np.zeros((4, 3, 2)), dims=("step", "lat", "lon"))
    with pytest.raises(ValueError, match=r"has no time dimension .* Rename it to 'time'"):
        grid_to_series(da)


def test_round_trip_to_xarray_keeps_coordinates_and_name():
    da = _era5_like()
    s = grid_to_series(da.transpose("lon", "time", "lat"))
    back = series_to_xarray(s)
    assert back.dims == ("time", "channel", "lat", "lon")
    assert back.name == "t2m"
    xr.testing.assert_allclose(
        back.isel(channel=0, drop=True).drop_vars([]), da, check_dim_order=False
    )
    # a forecast keeps the metadata, so it converts back with coordinates too
    tail = series_to_xarray(s[-5:])
    np.testing.assert_allclose(tail.lat.values, da.lat.values)
    assert (tail.time.values == da.time.values[-5:]).all()


def test_integer_time_coordinates_become_a_range_index():
    arr = np.zeros((4, 1, 2, 2), dtype=np.float32)
    s = grid_to_series(arr, times=[10, 12, 14, 16])
    assert isinstance(s.time_index, pd.RangeIndex)
    assert list(s.time_index) == [10, 12, 14, 16]


def test_describe_names_a_grid_by_its_shape_and_a_plain_series_by_its_components():
    assert GridSpec(("in", "out"), 14, 8).describe() == "2x14x8 grid (channels ['in', 'out'])"
    assert GridSpec(("a", "b", "c"), 1, 1).describe() == "plain series of 3 components"
    assert GridSpec(("a",), 1, 1).describe() == "plain series of 1 component"
    assert GridSpec(("rain",), 1, 5).describe() == "1x1x5 grid (channels ['rain'])"


def test_plain_series_mismatch_reads_as_components(times):
    plain = GridSpec(("a", "b", "c"), 1, 1)  # what a model fitted on a 3-component series keeps
    two = TimeSeries.from_times_and_values(times, np.zeros((12, 2), dtype=np.float32))
    with pytest.raises(ValueError) as err:
        check_series_grid(two, plain)
    assert str(err.value) == (
        "The model was fitted on a plain series of 3 components, but series has 2 components. "
        "Forecast series with as many components as the training series."
    )
    assert "1x1" not in str(err.value) and "grid" not in str(err.value)
    gridded = grid_to_series(np.zeros((12, 2, 3, 4), dtype=np.float32), times)
    with pytest.raises(
        ValueError,
        match=r"fitted on a plain series of 3 components, but series "
        r"has a 2x3x4 grid \(channels",
    ):
        check_series_grid(gridded, plain)
    one_cell = grid_to_series(np.zeros((12, 4, 1, 1), dtype=np.float32), times)
    with pytest.raises(ValueError, match=r"a plain series of 3 components, but series has 4 comp"):
        check_series_grid(one_cell, plain)
    # a grid's message keeps its shape and component count
    with pytest.raises(
        ValueError,
        match=r"fitted on a 2x3x4 grid \(channels .*\), 24 components, but "
        r"series has 2 components\. Forecast series with the training grid's shape",
    ):
        check_series_grid(two, GridSpec(("c0", "c1"), 3, 4))


def test_covariates_on_other_cells_are_refused_as_fit_refuses_them(times):
    """check_covariate_grid (MIMModel.predict and OnnxForecaster.predict): an 8x14 covariate for
    a 14x8 target has as many components and was read on the wrong cells without a word."""
    from darts_mim.validation import check_covariate_grid

    target = GridSpec(("in", "out"), 3, 4)
    transposed = grid_to_series(np.zeros((12, 2, 4, 3), dtype=np.float32), times)
    with pytest.raises(ValueError) as err:
        check_covariate_grid(transposed, target, 2, "`future_covariates`")
    assert str(err.value) == (
        "`future_covariates` are gridded on 4x3 but the target grid is 3x4; regrid them onto "
        "the 3x4 target grid, as at fit."
    )
    # a model fitted with plain covariates: the advice says so
    with pytest.raises(ValueError, match=r"gridded on 4x3 .* fitted with plain \(non-gridded\)"):
        check_covariate_grid(transposed, target, 0, "`past_covariates` at index 1")
    # the target's cells, plain covariates and 1x1 grids pass (counted elsewhere)
    check_covariate_grid(grid_to_series(np.zeros((12, 1, 3, 4)), times), target, 1, "c")
    check_covariate_grid(
        TimeSeries.from_times_and_values(times, np.zeros((12, 24))), target, 2, "c"
    )
    check_covariate_grid(grid_to_series(np.zeros((12, 5, 1, 1)), times), target, 0, "c")


def test_components_out_of_grid_order_are_refused(times):
    """series[v_names + u_names] keeps the grid metadata: series_to_grid and series_to_xarray read
    v's values as u's without a word, and predict forecast them so."""
    arr = np.random.default_rng(0).random((12, 2, 3, 4)).astype(np.float32)
    s = grid_to_series(arr, times, ["u", "v"])
    v_first = s[list(s.components[12:]) + list(s.components[:12])]
    pattern = (
        r"components are not in its grid's order \(channel-major, then row, then column\): "
        r"component 0 is 'v_r0_c0' where the grid has 'u_r0_c0'.*series\[darts_mim\.GridSpec"
    )
    for convert in (series_to_grid, series_to_xarray, grid_spec_of):
        with pytest.raises(ValueError, match=pattern):
            convert(v_first)
    with pytest.raises(ValueError, match=pattern):
        check_series_grid(v_first, GridSpec(("u", "v"), 3, 4))
    # cells swapped within a channel too
    with pytest.raises(ValueError, match=r"component 0 is 'u_r0_c1' where the grid has 'u_r0_c0'"):
        series_to_grid(s[[s.components[1], s.components[0], *s.components[2:]]])
    # the expression the message gives puts them back
    fixed = v_first[GridSpec.from_metadata(v_first.metadata[GRID_KEY]).component_names()]
    np.testing.assert_array_equal(series_to_grid(fixed), arr)
    # names the user chose (not the grid's pattern) cannot be checked and pass, as before
    renamed = s.with_columns_renamed(list(s.components), [f"k{i}" for i in range(24)])
    np.testing.assert_array_equal(series_to_grid(renamed), arr)
