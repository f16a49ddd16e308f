"""Tests of darts_mim.datasets on the small fixtures in tests/data (no access to shared/data)."""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from darts import TimeSeries
from pandas.tseries.frequencies import to_offset

from darts_mim.datasets import (
    DATA_ENV_VAR,
    RADAR_FILE,
    DataNotFoundError,
    GriddedData,
    crowd_flow_covariate_names,
    default_data_dir,
    load_bike_flows,
    load_csv_series,
    load_grid_array,
    load_grid_npz,
    load_mnist_digits,
    load_netcdf,
    load_radar,
    load_taxi_flows,
    moving_mnist,
)
from darts_mim.grid import GridSpec, grid_spec_of, series_to_grid

DATA = Path(__file__).parent / "data"
RADAR_CROP = DATA / "radar_knmi_2010-08-26_T24x64x64_mmh.npz"
ETTH1 = DATA / "ETTh1_first2000.csv"


@pytest.fixture(scope="module")
def mnist():
    return load_mnist_digits(DATA)


# ---------------------------------------------------------------------------------------------------
# MNIST


def test_load_mnist_digits(mnist):
    images, labels = mnist
    assert images.shape == (200, 28, 28)
    assert images.dtype == np.uint8
    assert labels.shape == (200,)
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the MNIST test set
    assert images.max() == 255 and images.min() == 0
    images2, _ = load_mnist_digits(DATA / "t10k-images-idx3-ubyte.gz")  # the file itself
    np.testing.assert_array_equal(images2, images)


def test_load_mnist_uncompressed(tmp_path, mnist):
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(gzip.decompress((DATA / f"{name}.gz").read_bytes()))
    images, labels = load_mnist_digits(tmp_path)
    np.testing.assert_array_equal(images, mnist[0])
    np.testing.assert_array_equal(labels, mnist[1])


def test_load_mnist_missing(tmp_path):
    with pytest.raises(ValueError, match="No MNIST directory"):
        load_mnist_digits(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="No MNIST images file"):
        load_mnist_digits(tmp_path)
    shutil.copy(DATA / "t10k-images-idx3-ubyte.gz", tmp_path)
    with pytest.raises(ValueError, match="No MNIST labels file"):
        load_mnist_digits(tmp_path)


def _write_gz(path: Path, payload: bytes) -> None:
    with gzip.open(path, "wb") as f:
        f.write(payload)


def test_load_mnist_corrupt(tmp_path):
    shutil.copy(DATA / "t10k-labels-idx1-ubyte.gz", tmp_path)
    images = tmp_path / "t10k-images-idx3-ubyte.gz"
    good = gzip.decompress((DATA / "t10k-images-idx3-ubyte.gz").read_bytes())
    images.write_bytes(b"\x1f\x8b" + b"garbage" * 10)  # gzip magic, broken stream
    with pytest.raises(ValueError, match="is corrupt"):
        load_mnist_digits(tmp_path)
    _write_gz(images, good[:-100])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_mnist_digits(tmp_path)
    _write_gz(images, b"PK\x03\x04" + good[4:])
    with pytest.raises(ValueError, match="bad magic number"):
        load_mnist_digits(tmp_path)
    _write_gz(images, b"\x00\x00\x08\x01" + good[4:])  # claims one dimension
    with pytest.raises(ValueError, match="with 1 dimensions; expected"):
        load_mnist_digits(tmp_path)
    _write_gz(images, good[:4] + struct.pack(">3I", 100, 28, 28) + good[16 : 16 + 100 * 784])
    with pytest.raises(ValueError, match="100 images but .* 200 labels"):
        load_mnist_digits(tmp_path)


# ---------------------------------------------------------------------------------------------------
# Moving MNIST


def test_moving_mnist_shape_dtype_range():
    arr = moving_mnist(DATA, n_sequences=5, n_frames=20, seed=0)
    assert arr.shape == (5, 20, 1, 64, 64)
    assert arr.dtype == np.float32
    assert arr.min() == 0.0 and arr.max() == 1.0
    assert (arr.reshape(5, 20, -1).max(axis=2) > 0.5).all()  # every frame shows digits
    small = moving_mnist(DATA, n_sequences=2, n_frames=7, n_digits=3, canvas=40, seed=1)
    assert small.shape == (2, 7, 1, 40, 40)


def test_moving_mnist_determinism():
    a = moving_mnist(DATA, n_sequences=4, n_frames=10, seed=3)
    b = moving_mnist(DATA, n_sequences=4, n_frames=10, seed=3)
    c = moving_mnist(DATA, n_sequences=4, n_frames=10, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    for i in range(4):  # every sequence differs
        assert not np.array_equal(a[i], c[i])
    # the first sequences do not depend on how many are asked for
    np.testing.assert_array_equal(moving_mnist(DATA, n_sequences=2, n_frames=10, seed=3), a[:2])


def _reference_moving_mnist(images, n_sequences, n_frames, n_digits, canvas, seed):
    """Scalar transcription of Srivastava et al.'s generator, with the documented draw order."""
    rng = np.random.default_rng(seed)
    size = images.shape[1]
    free = canvas - size
    out = np.zeros((n_sequences, n_frames, canvas, canvas), dtype=np.float32)
    for s in range(n_sequences):
        index = rng.integers(0, len(images), size=n_digits)
        start = rng.random((n_digits, 2))
        theta = rng.random(n_digits) * 2 * np.pi
        for d in range(n_digits):
            digit = images[index[d]].astype(np.float32) / 255
            y, x = start[d]
            v_y, v_x = 0.1 * np.sin(theta[d]), 0.1 * np.cos(theta[d])
            for f in range(n_frames):
                y += v_y
                x += v_x
                if y <= 0:
                    y, v_y = 0.0, -v_y
                if y >= 1.0:
                    y, v_y = 1.0, -v_y
                if x <= 0:
                    x, v_x = 0.0, -v_x
                if x >= 1.0:
                    x, v_x = 1.0, -v_x
                top, left = int(free * y), int(free * x)
                patch = out[s, f, top : top + size, left : left + size]
                out[s, f, top : top + size, left : left + size] = np.maximum(patch, digit)
    return out


def test_moving_mnist_matches_reference_recipe(mnist):
    images = mnist[0]
    got = moving_mnist(images, n_sequences=3, n_frames=30, n_digits=2, seed=11)
    ref = _reference_moving_mnist(images, 3, 30, 2, 64, 11)
    np.testing.assert_array_equal(got[:, :, 0], ref)


def test_moving_mnist_bounce_physics(mnist):
    digit = mnist[0][0]  # one known digit, so its centre of mass inside its 28x28 box is known
    seqs = moving_mnist(mnist[0][:1], n_sequences=6, n_frames=100, n_digits=1, seed=7)[:, :, 0]
    d = digit.astype(np.float64) / 255
    mass = d.sum()
    com_digit = (
        np.array([(d.sum(1) * np.arange(28)).sum(), (d.sum(0) * np.arange(28)).sum()]) / mass
    )
    grid = np.arange(64)
    flips = 0
    for seq in seqs.astype(np.float64):
        # The digit stays entirely inside the canvas: nothing is clipped, the mass is conserved.
        np.testing.assert_allclose(seq.sum(axis=(1, 2)), mass, rtol=1e-5)
        com = np.stack([(seq.sum(2) * grid).sum(1), (seq.sum(1) * grid).sum(1)], axis=1) / mass
        offsets = com - com_digit  # (frames, 2): the pixel offset of the digit
        np.testing.assert_allclose(offsets, np.round(offsets), atol=1e-3)
        offsets = np.round(offsets).astype(int)
        assert offsets.min() >= 0 and offsets.max() <= 64 - 28
        for f, (oy, ox) in enumerate(offsets):  # exactly the digit, at that offset
            np.testing.assert_array_equal(seq[f, oy : oy + 28, ox : ox + 28], d.astype(np.float32))
        for axis in range(2):
            pos = offsets[:, axis]
            vel = np.diff(pos)
            moving = np.flatnonzero(vel)
            for i, j in zip(moving[:-1], moving[1:], strict=True):
                if np.sign(vel[i]) != np.sign(vel[j]):
                    flips += 1
                    # the velocity flips only at an edge, and in the right direction
                    edge = pos[i + 1 : j + 1]
                    if vel[i] < 0:
                        assert (edge == 0).any(), (axis, i, j, pos[i : j + 2])
                    else:
                        assert (edge == 64 - 28).any(), (axis, i, j, pos[i : j + 2])
            # at the edges the digit always turns back
            for f in np.flatnonzero((pos == 0) | (pos == 64 - 28))[:-1]:
                later = vel[f:][vel[f:] != 0]
                if later.size:
                    assert np.sign(later[0]) == (1 if pos[f] == 0 else -1)
    assert flips >= len(seqs)  # 100 frames of 0.1 steps: every digit bounces


def test_moving_mnist_as_series():
    series = moving_mnist(DATA, n_sequences=3, n_frames=8, seed=2, as_series=True)
    arr = moving_mnist(DATA, n_sequences=3, n_frames=8, seed=2)
    assert isinstance(series, list) and len(series) == 3
    s = series[0]
    assert isinstance(s, TimeSeries)
    assert isinstance(s.time_index, pd.RangeIndex) and len(s) == 8
    assert grid_spec_of(s) == GridSpec(("intensity",), 64, 64)
    assert s.n_components == 64 * 64
    for i in range(3):
        np.testing.assert_array_equal(series_to_grid(series[i]), arr[i])
    dated = moving_mnist(
        DATA, n_sequences=1, n_frames=5, seed=2, as_series=True, start="2001-02-03", freq="h"
    )[0]
    assert dated.start_time() == pd.Timestamp("2001-02-03")
    assert dated.freq == to_offset("h")


def test_moving_mnist_errors(mnist):
    with pytest.raises(ValueError, match="n_digits must be an integer >= 1"):
        moving_mnist(DATA, n_digits=0)
    with pytest.raises(ValueError, match=r"canvas \(20\) must be at least the digit size"):
        moving_mnist(DATA, n_sequences=1, canvas=20)
    with pytest.raises(ValueError, match="Float digit images must lie in"):
        moving_mnist(mnist[0].astype(np.float32), n_sequences=1)
    with pytest.raises(ValueError, match="No MNIST directory"):
        moving_mnist(DATA / "missing", n_sequences=1)


# ---------------------------------------------------------------------------------------------------
# gridded files


def test_bundled_bike_flows():
    data = load_bike_flows()
    assert isinstance(data, GriddedData)
    assert data.name == "nycbike"
    s = data.series
    assert (len(s), s.n_components) == (4320, 224)
    assert s.freq == to_offset("30min")
    assert isinstance(s.time_index, pd.DatetimeIndex)
    assert s.start_time() == pd.Timestamp("2016-08-01 00:00")
    assert s.end_time() == pd.Timestamp("2016-10-29 23:30")
    assert data.grid == GridSpec(("inflow", "outflow"), 14, 8)
    arr = data.to_array()
    assert arr.shape == (4320, 2, 14, 8) and arr.dtype == np.float32
    assert arr.min() == 0 and arr.max() == 323
    cov = data.covariates
    assert cov is not None and cov.n_components == 65
    assert cov.time_index.equals(s.time_index)
    assert list(cov.components) == crowd_flow_covariate_names()
    day = cov.slice(pd.Timestamp("2016-09-05"), pd.Timestamp("2016-09-05 23:30"))
    assert (day["holiday"].values() == 1).all()  # Labor Day
    assert (day["dow_mon"].values() == 1).all()
    assert cov["slot_13"].values()[13, 0] == 1  # 06:30
    np.testing.assert_array_equal(data.extras["split_sizes_in_repo"], [2784, 672, 864])


def test_radar_fixture():
    data = load_radar(RADAR_CROP)
    assert data.name == "radar_knmi"
    assert data.grid == GridSpec(("rain_rate",), 64, 64)
    assert len(data.series) == 24
    assert data.series.freq == to_offset("5min")
    assert data.series.start_time() == pd.Timestamp("2010-08-26 00:00")
    assert data.covariates is None
    raw = np.load(RADAR_CROP)["data"]
    np.testing.assert_array_equal(data.to_array()[:, 0], raw)
    generic = load_grid_npz(RADAR_CROP)
    assert generic.grid.channels == ("ch0",)
    assert generic.name == RADAR_CROP.stem


def test_default_data_dir_from_env(tmp_path, monkeypatch):
    (tmp_path / "gridded").mkdir()
    shutil.copy(RADAR_CROP, tmp_path / "gridded" / RADAR_FILE)
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path))
    assert default_data_dir() == tmp_path
    assert len(load_radar(tmp_path).series) == 24  # a directory works
    assert len(load_radar().series) == 92  # without a path the bundled copy comes first
    with pytest.raises(FileNotFoundError, match="Could not find nyctaxi"):
        load_taxi_flows()
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=f"{DATA_ENV_VAR}=.* is not a directory"):
        default_data_dir()


@pytest.mark.filterwarnings("ignore:Could not infer format")
def test_load_grid_npz_errors(tmp_path):
    with pytest.raises(ValueError, match="No such file"):
        load_grid_npz(tmp_path / "missing.npz")
    with pytest.raises(DataNotFoundError, match="No such file or directory"):
        load_radar(tmp_path / "missing")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_grid_npz(bad)
    times = pd.date_range("2020", periods=4, freq="h").strftime("%Y-%m-%dT%H:%M")
    np.savez(tmp_path / "objects.npz", data=np.zeros((4, 2, 2)), time=times.to_numpy(dtype=object))
    with pytest.raises(ValueError, match="holds Python objects.*dtype=str"):
        load_grid_npz(tmp_path / "objects.npz")
    times = times.to_numpy(dtype=str)
    np.savez(tmp_path / "notime.npz", data=np.zeros((4, 2, 2)))
    with pytest.raises(ValueError, match="has no `time` array .* load_grid_array"):
        load_grid_npz(tmp_path / "notime.npz")
    np.savez(tmp_path / "nodata.npz", grid=np.zeros((4, 2, 2)), time=times)
    with pytest.raises(ValueError, match=r"has no `data` array \(found \['grid', 'time'\]\)"):
        load_grid_npz(tmp_path / "nodata.npz")
    np.savez(tmp_path / "flat.npz", data=np.zeros((4, 2)), time=times)
    with pytest.raises(ValueError, match=r"expected a \(T, C, H, W\) or \(T, H, W\) array"):
        load_grid_npz(tmp_path / "flat.npz")
    gappy = np.array(
        ["2020-01-01T00:00", "2020-01-01T01:00", "2020-01-01T03:00", "2020-01-01T04:00"]
    )
    np.savez(tmp_path / "gappy.npz", data=np.zeros((4, 2, 2)), time=gappy)
    with pytest.raises(ValueError, match="not evenly spaced .* Fill the gaps"):
        load_grid_npz(tmp_path / "gappy.npz")
    np.savez(tmp_path / "badtime.npz", data=np.zeros((4, 2, 2)), time=np.array(["x"] * 4))
    with pytest.raises(ValueError, match="cannot be parsed as dates"):
        load_grid_npz(tmp_path / "badtime.npz")
    # Unix seconds were read as nanoseconds since 1970: 1800 ns steps in January 1970
    unix = pd.date_range("2024", periods=4, freq="30min").asi8 // 10**9
    np.savez(tmp_path / "unix.npz", data=np.zeros((4, 2, 2)), time=unix)
    with pytest.raises(ValueError, match=r"time stamps are numbers \(e.g. \[1704067200\]\)"):
        load_grid_npz(tmp_path / "unix.npz")


def test_load_grid_array_and_covariate_names():
    times = pd.date_range("2021-05-02", periods=96, freq="30min")  # a Sunday, two days
    arr = np.random.default_rng(0).random((96, 2, 3, 3)).astype(np.float32)
    dow = np.eye(7)[(times.day_of_week + 1) % 7]
    slot = np.eye(48)[times.hour * 2 + times.minute // 30]
    ek = np.concatenate([dow, slot, np.zeros((96, 10))], axis=1)
    data = load_grid_array(arr, times.strftime("%Y-%m-%dT%H:%M"), ["in", "out"], covariates=ek)
    assert data.series.freq == to_offset("30min")
    assert list(data.covariates.components[:2]) == ["dow_sun", "dow_mon"]
    assert data.covariates["dow_sun"].values()[:48].sum() == 48
    np.testing.assert_array_equal(data.to_array(), arr)
    # one-hots that disagree with the calendar: names cannot be trusted
    shifted = np.concatenate([np.roll(dow, 48, axis=0), slot, np.zeros((96, 10))], axis=1)
    generic = load_grid_array(arr, times, covariates=shifted)
    assert list(generic.covariates.components[:3]) == ["ek0", "ek1", "ek2"]
    named = load_grid_array(arr, times, covariates=ek[:, :2], covariate_names=["a", "b"])
    assert list(named.covariates.components) == ["a", "b"]
    with pytest.raises(ValueError, match="no time stamps given"):
        load_grid_array(arr, None)
    with pytest.raises(ValueError, match="got shape \\(96, 18\\) \\(2 dimensions\\)"):
        load_grid_array(arr.reshape(96, -1), times)
    with pytest.raises(ValueError, match="covariates must be a \\(T, K\\) array"):
        load_grid_array(arr, times, covariates=ek[:10])
    with pytest.raises(ValueError, match="do not follow freq='h'"):
        load_grid_array(arr, times, freq="h")
    with pytest.raises(ValueError, match="cannot infer a frequency"):
        load_grid_array(arr[:2], times[:2])
    assert load_grid_array(arr[:2], times[:2], freq="30min").series.freq == to_offset("30min")


# ---------------------------------------------------------------------------------------------------
# netCDF


def _netcdf_engine() -> str:
    for module, engine in (("netCDF4", "netcdf4"), ("h5netcdf", "h5netcdf"), ("scipy", "scipy")):
        try:
            __import__(module)
            return engine
        except ImportError:
            continue
    pytest.skip("no netCDF engine (netCDF4, h5netcdf or scipy) installed")


def test_netcdf_round_trip(tmp_path):
    engine = _netcdf_engine()
    times = pd.date_range("2019-03-01", periods=10, freq="h")
    values = np.random.default_rng(5).random((10, 2, 4, 6)).astype(np.float32)
    da = xr.DataArray(
        values,
        dims=("time", "channel", "lat", "lon"),
        coords={
            "time": times,
            "channel": ["u10", "v10"],
            "lat": np.linspace(58, 57.25, 4),
            "lon": np.linspace(-10, -8.75, 6),
        },
        name="wind",
    )
    path = tmp_path / "wind.nc"
    da.to_dataset().to_netcdf(path, engine=engine)
    data = load_netcdf(path)
    assert data.name == "wind"
    assert data.grid == GridSpec(("u10", "v10"), 4, 6)
    assert data.series.freq == to_offset("h")
    assert data.series.time_index.equals(pd.DatetimeIndex(times))
    np.testing.assert_array_equal(data.to_array(), values)
    np.testing.assert_array_equal(data.extras["lat"], da.lat.values)

    # dims in another order, channel recognised by the spatial names
    da.transpose("time", "lat", "lon", "channel").to_dataset().to_netcdf(
        tmp_path / "t.nc", engine=engine
    )
    np.testing.assert_array_equal(load_netcdf(tmp_path / "t.nc").to_array(), values)

    # two (time, y, x) variables: pick one, or stack them as channels
    ds = xr.Dataset(
        {"u": da.isel(channel=0, drop=True), "v": da.isel(channel=1, drop=True)}
    ).rename({"lat": "y", "lon": "x"})
    ds.to_netcdf(tmp_path / "uv.nc", engine=engine)
    with pytest.raises(ValueError, match="has 2 data variables \\(u, v\\); choose one"):
        load_netcdf(tmp_path / "uv.nc")
    one = load_netcdf(tmp_path / "uv.nc", variable="v")
    assert one.grid == GridSpec(("v",), 4, 6)
    np.testing.assert_array_equal(one.to_array()[:, 0], values[:, 1])
    both = load_netcdf(tmp_path / "uv.nc", variable=["u", "v"])
    assert both.grid.channels == ("u", "v")
    np.testing.assert_array_equal(both.to_array(), values)
    with pytest.raises(ValueError, match="no data variable 'w'"):
        load_netcdf(tmp_path / "uv.nc", variable="w")


def test_netcdf_errors(tmp_path):
    engine = _netcdf_engine()
    with pytest.raises(ValueError, match="No such file"):
        load_netcdf(tmp_path / "missing.nc")
    xr.Dataset({"a": (("step", "y", "x"), np.zeros((3, 2, 2)))}).to_netcdf(
        tmp_path / "notime.nc", engine=engine
    )
    with pytest.raises(ValueError, match="has no time dimension .* Rename"):
        load_netcdf(tmp_path / "notime.nc")
    times = pd.date_range("2020", periods=3, freq="D")
    xr.Dataset({"a": (("time", "x"), np.zeros((3, 2)))}, coords={"time": times}).to_netcdf(
        tmp_path / "flat.nc", engine=engine
    )
    with pytest.raises(ValueError, match="expected time, two spatial dimensions"):
        load_netcdf(tmp_path / "flat.nc")
    (tmp_path / "junk.nc").write_bytes(b"junk" * 10)
    with pytest.raises(ValueError, match="Cannot open .* as netCDF"):
        load_netcdf(tmp_path / "junk.nc")


# ---------------------------------------------------------------------------------------------------
# CSV


def test_load_csv_series_etth1():
    s = load_csv_series(ETTH1)
    assert len(s) == 2000
    assert list(s.components) == ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    assert s.freq == to_offset("h")
    assert s.start_time() == pd.Timestamp("2016-07-01")
    df = pd.read_csv(ETTH1)
    np.testing.assert_array_equal(s.values(), df.iloc[:, 1:].to_numpy())
    ot = load_csv_series(ETTH1, time_col="date", value_cols="OT")
    assert list(ot.components) == ["OT"]
    with pytest.raises(ValueError, match="has no column\\(s\\) \\['XX'\\]"):
        load_csv_series(ETTH1, value_cols=["OT", "XX"])
    with pytest.raises(ValueError, match="has no column 'when'"):
        load_csv_series(ETTH1, time_col="when")
    with pytest.raises(ValueError, match="No such file"):
        load_csv_series(DATA / "missing.csv")


def test_load_csv_series_without_time_and_with_gaps(tmp_path):
    path = tmp_path / "plain.csv"
    pd.DataFrame({"0": [1.0, 2.0, 3.0], "1": [4.0, 5.0, 6.0]}).to_csv(path, index=False)
    s = load_csv_series(path)
    assert isinstance(s.time_index, pd.RangeIndex) and s.n_components == 2
    gappy = tmp_path / "weekly.csv"
    dates = ["1997-10-12", "1997-10-19", "1997-11-02", "1997-11-09"]
    pd.DataFrame({"DATE": dates, "ili": [1.0, 2.0, 3.0, 4.0]}).to_csv(gappy, index=False)
    with pytest.raises(ValueError, match="not evenly spaced"):
        load_csv_series(gappy)
    filled = load_csv_series(gappy, fill_missing_dates=True)
    assert len(filled) == 5 and filled.freq == to_offset("7D")
    assert np.isnan(filled.values()[2, 0]) and filled.values()[3, 0] == 3.0
