"""Lazy gridded datasets over a small Zarr store: the same samples as Darts' in-memory datasets,
training from them, forecasts written to Zarr, out-of-core statistics and their errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from conftest import tiny_kwargs
from darts import TimeSeries
from darts.utils.data import SequentialTorchInferenceDataset, SequentialTorchTrainingDataset

from darts_mim import MIMModel, grid_to_series, series_to_grid
from darts_mim.datasets import (
    LazyGridInferenceDataset,
    LazyGridTrainingDataset,
    grid_stats,
    open_grid,
    predict_to_zarr,
)

pytest.importorskip("zarr")
pytest.importorskip("dask")

N_STEPS, HEIGHT, WIDTH = 60, 4, 6


def write_era5_like_store(path, n_steps: int = N_STEPS, missing_cell: bool = False) -> str:
    """An ERA5-like store: t2m on (time, lat, lon), a gridded u10 and a plain hour-of-day signal,
    chunked along time as a big store would be."""
    rng = np.random.default_rng(0)
    times = pd.date_range("2024-01-01", periods=n_steps, freq="h")
    t = np.arange(n_steps)[:, None, None]
    lat = np.linspace(50.0, 51.5, HEIGHT)
    lon = np.linspace(-2.0, 0.5, WIDTH)
    t2m = 280 + 5 * np.sin(0.3 * t + 0.5 * np.arange(WIDTH) + 0.2 * np.arange(HEIGHT)[:, None])
    t2m = t2m + 0.1 * rng.standard_normal(t2m.shape)
    if missing_cell:
        t2m[:, 0, 0] = np.nan
    u10 = np.cos(0.2 * t + 0.3 * np.arange(WIDTH)) + 0 * t2m
    hour = np.sin(2 * np.pi * times.hour.to_numpy() / 24)
    ds = xr.Dataset(
        {
            "t2m": (("time", "lat", "lon"), t2m.astype("float32")),
            "u10": (("time", "lat", "lon"), u10.astype("float32")),
            "hour": (("time",), hour.astype("float32")),
        },
        coords={"time": times, "lat": lat, "lon": lon},
    )
    store = str(path / "era5.zarr")
    ds.chunk({"time": 8}).to_zarr(store, mode="w")
    return store


@pytest.fixture
def store(tmp_path):
    return write_era5_like_store(tmp_path)


def _series(da: xr.DataArray) -> TimeSeries:
    return grid_to_series(da.load())


def _assert_same_samples(lazy, darts_ds):
    assert len(lazy) == len(darts_ds)
    for i in (0, 1, len(lazy) // 2, len(lazy) - 1):
        a, b = lazy[i], darts_ds[i]
        for field in (
            "past_target",
            "past_covariates",
            "historic_future_covariates",
            "future_covariates",
            "future_target",
        ):
            x, y = getattr(a, field), getattr(b, field)
            assert (x is None) == (y is None), field
            if x is not None:
                assert x.dtype == y.dtype, field
                np.testing.assert_array_equal(x, y, err_msg=field)


def test_open_grid_is_lazy_and_names_the_variable(store):
    da = open_grid(store, "t2m")
    assert da.chunks is not None  # dask-backed: nothing read yet
    assert dict(da.sizes) == {"time": N_STEPS, "lat": HEIGHT, "lon": WIDTH}
    with pytest.raises(ValueError, match="choose one"):
        open_grid(store)
    with pytest.raises(ValueError, match="no variable"):
        open_grid(store, "sst")
    both = open_grid(store, ["t2m", "u10"])
    assert both.dims == ("channel", "time", "lat", "lon")


def test_training_samples_equal_darts_in_memory_samples(store):
    t2m, u10, hour = (open_grid(store, v) for v in ("t2m", "u10", "hour"))
    target, grid_cov = _series(t2m), _series(u10)
    plain_cov = TimeSeries.from_times_and_values(target.time_index, hour.values)
    for kwargs in (dict(), dict(output_chunk_shift=2, stride=3)):
        lazy = LazyGridTrainingDataset(
            t2m,
            6,
            3,
            past_covariates=[hour, u10],  # gridded first, whatever the order given
            future_covariates=hour,
            **kwargs,
        )
        darts_ds = SequentialTorchTrainingDataset(
            target,
            past_covariates=grid_cov.stack(plain_cov),
            future_covariates=plain_cov,
            input_chunk_length=6,
            output_chunk_length=3,
            **kwargs,
        )
        _assert_same_samples(lazy, darts_ds)
        assert lazy.grid_layout.past_grid_channels == 1
        assert lazy.grid_layout.future_grid_channels == 0
        assert lazy.grid_layout.grid.dims == ("lat", "lon")


def test_inference_samples_equal_darts_in_memory_samples(store):
    t2m, hour = open_grid(store, "t2m"), open_grid(store, "hour")
    target = _series(t2m)
    plain_cov = TimeSeries.from_times_and_values(target.time_index, hour.values)
    lazy = LazyGridInferenceDataset(
        t2m.isel(time=slice(0, 50)), 5, 6, 3, past_covariates=hour, future_covariates=hour
    )
    darts_ds = SequentialTorchInferenceDataset(
        target[:50],
        past_covariates=plain_cov,
        future_covariates=plain_cov,
        n=5,
        input_chunk_length=6,
        output_chunk_length=3,
    )
    a, b = lazy[0], darts_ds[0]
    for field in (
        "past_target",
        "past_covariates",
        "future_past_covariates",
        "historic_future_covariates",
        "future_covariates",
    ):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    assert a.pred_time == b.pred_time
    assert list(a.series_schema["columns"]) == list(b.series_schema["columns"])


def test_grid_stats_out_of_core_equal_numpy(tmp_path):
    store = write_era5_like_store(tmp_path, missing_cell=True)
    da = open_grid(store, "t2m")
    stats = grid_stats(da)
    values = da.values.astype(np.float64)
    assert stats.channels == ("t2m",)
    assert stats.mean[0] == pytest.approx(np.nanmean(values), rel=1e-12)
    assert stats.std[0] == pytest.approx(np.nanstd(values), rel=1e-9)
    assert stats.missing == (0,)  # lat 0, lon 0: NaN at every step
    # a NaN that is not at every step is refused, with the fix
    with pytest.raises(ValueError, match="ffill"):
        grid_stats(da.where(da.time != da.time[3]))


def test_fit_from_lazy_dataset_trains_as_from_the_series_in_memory(tmp_path, store):
    # With the same seed, training from the Zarr store and from the series in memory (Darts' own
    # dataset) must give the same weights: same samples, same seeded shuffling, same layout.
    t2m = open_grid(store, "t2m")
    stats = grid_stats(t2m)
    kwargs = tiny_kwargs(tmp_path, n_epochs=2, naive_anchor=True, batch_size=8)
    lazy_model = MIMModel(**kwargs)
    lazy_model.fit_from_dataset(LazyGridTrainingDataset(t2m, 6, 3, stats=stats))
    series = grid_to_series(stats.normalise(t2m.values[:, None]), t2m.time.values, ["t2m"])
    memory_model = MIMModel(**kwargs)
    memory_model.fit_from_dataset(
        SequentialTorchTrainingDataset(series, input_chunk_length=6, output_chunk_length=3)
    )
    # a lazy layout leaves the component names to the grid (a big grid has millions of them)
    assert lazy_model.layout == dataclasses.replace(memory_model.layout, components=None)
    assert lazy_model.layout.component_names() == memory_model.layout.component_names()
    assert lazy_model.grid.dims == ("lat", "lon")  # the store's coordinates travel with the model
    for (name, a), b in zip(
        lazy_model.model.state_dict().items(), memory_model.model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, msg=name, rtol=0, atol=0)
    # and a different seed shuffles (and initialises) differently
    other = MIMModel(**{**kwargs, "random_state": 1})
    other.fit_from_dataset(LazyGridTrainingDataset(t2m, 6, 3, stats=stats))
    assert not torch.equal(lazy_model.model.net.head.weight, other.model.net.head.weight)


def test_forecasts_written_to_zarr_equal_predict(tmp_path, store):
    t2m, u10 = open_grid(store, "t2m"), open_grid(store, "u10")
    stats = grid_stats(t2m)
    model = MIMModel(**tiny_kwargs(tmp_path))
    model.fit_from_dataset(
        LazyGridTrainingDataset(t2m, 6, 3, past_covariates=u10, stats=stats),
        dataloader_kwargs={"num_workers": 2},  # loader workers read the store in their processes
    )
    assert model.layout.past_grid_channels == 1
    # n > output_chunk_length: autoregression, which reads the past covariates of 2 forecast steps
    ends = [t2m.time.values[40], t2m.time.values[50]]
    out = predict_to_zarr(
        model, t2m, 5, tmp_path / "fc.zarr", input_ends=ends, past_covariates=u10, stats=stats
    )
    assert out.dims == ("forecast_start", "lead", "channel", "lat", "lon")
    np.testing.assert_allclose(out.lat.values, t2m.lat.values)
    assert pd.Timestamp(out.forecast_start.values[0]) == pd.Timestamp(t2m.time.values[41])
    assert pd.Timestamp(out.time.values[1, 4]) == pd.Timestamp(t2m.time.values[55])
    # the same forecasts by predict() on the series in memory (normalised the same way)
    series = grid_to_series(stats.normalise(t2m.values[:, None]), t2m.time.values, ["t2m"])
    cov = grid_to_series(u10.load())
    for i, end in enumerate((41, 51)):
        expected = model.predict(5, series[:end], past_covariates=cov)
        expected = stats.denormalise(series_to_grid(expected))
        np.testing.assert_allclose(out.values[i], expected, rtol=1e-5, atol=1e-4)


def test_bad_input_is_refused_with_the_fix(store):
    t2m, u10 = open_grid(store, "t2m"), open_grid(store, "u10")
    with pytest.raises(ValueError, match="needs input_chunk_length"):
        LazyGridTrainingDataset(t2m.isel(time=slice(0, 5)), 6, 3)
    with pytest.raises(ValueError, match="gridded on 2x3"):
        LazyGridTrainingDataset(
            t2m, 6, 3, past_covariates=u10.isel(lat=slice(0, 2), lon=slice(0, 3))
        )
    with pytest.raises(ValueError, match="must start at or before"):
        LazyGridTrainingDataset(t2m, 6, 3, past_covariates=u10.isel(time=slice(5, None)))
    with pytest.raises(TypeError, match="xarray.DataArray"):
        LazyGridTrainingDataset(t2m.values, 6, 3)
    with pytest.raises(ValueError, match="not a time of the target"):
        LazyGridInferenceDataset(t2m, 3, 6, 3, input_ends=["1999-01-01"])
    short_future = LazyGridTrainingDataset(t2m, 6, 3, future_covariates=u10.isel(time=slice(0, 30)))
    with pytest.raises(ValueError, match="must cover target steps"):
        short_future[0]


def test_docs_big_grids_example_runs(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    guide = Path(__file__).resolve().parents[1] / "docs" / "guides" / "big-grids.md"
    blocks = re.findall(r"```python\n(.*?)```", guide.read_text(), flags=re.S)
    (code,) = [b for b in blocks if "predict_to_zarr(" in b]  # the example; the other makes a store
    code = code.replace("random_state=0)", f"random_state=0, work_dir={str(tmp_path)!r})")
    write_era5_like_store(tmp_path)  # era5.zarr, in the working directory of the example
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "docs/guides/big-grids.md", "exec"), namespace)
    forecasts = namespace["forecasts"]
    assert forecasts.sizes["forecast_start"] == 3 and forecasts.sizes["lead"] == 6
    assert 270 < float(forecasts.mean()) < 290


def test_netcdf_reads_as_zarr(tmp_path, store):
    nc = tmp_path / "era5.nc"
    xr.open_zarr(store).load().to_netcdf(nc)  # netCDF4 or, without it, scipy's netCDF3 writer
    from_nc, from_zarr = open_grid(nc, "t2m"), open_grid(store, "t2m")
    assert from_nc.chunks is not None
    a, b = LazyGridTrainingDataset(from_nc, 6, 3), LazyGridTrainingDataset(from_zarr, 6, 3)
    np.testing.assert_array_equal(a[5].past_target, b[5].past_target)


def test_auto_anchor_ranks_naive_forecasts_on_a_recent_window(tmp_path, store):
    t2m = open_grid(store, "t2m")
    dataset = LazyGridTrainingDataset(t2m, 24, 3)
    recent = dataset.recent_values()
    assert recent.shape == (N_STEPS, HEIGHT * WIDTH)
    np.testing.assert_array_equal(recent, t2m.values.reshape(N_STEPS, -1))
    model = MIMModel(**tiny_kwargs(tmp_path, input_chunk_length=24))
    # the same lag as from the series in memory (hourly: persistence or the daily seasonal naive)
    memory = SequentialTorchTrainingDataset(
        _series(t2m), input_chunk_length=24, output_chunk_length=3
    )
    lag = model._resolve_config(dataset, dataset.grid_layout).anchor_lag
    assert lag in (1, 24)
    assert lag == model._resolve_config(memory, dataset.grid_layout).anchor_lag


@pytest.mark.parametrize(
    "times, match",
    [
        (pd.date_range("2024-01-01", periods=20, freq="h")[::-1], "increasing"),
        (np.r_[0:3, 4:21], "evenly spaced"),
        (np.arange(20)[::-1].copy(), "evenly spaced and increasing"),
        (np.arange(20) * 0.5, "neither datetimes nor integers"),
        (
            xr.date_range("2000-01-01", periods=20, freq="D", calendar="noleap", use_cftime=True),
            "neither datetimes nor integers",
        ),
    ],
    ids=["descending-dates", "uneven-integers", "descending-integers", "floats", "cftime"],
)
def test_a_time_coordinate_the_loader_cannot_read_is_refused(times, match):
    # these were read as a plain 0, 1, 2... axis (or backwards in time): the model trained on
    # and forecast the wrong time steps, and covariates were aligned by position, silently
    da = xr.DataArray(
        np.zeros((len(times), 2, 3), dtype="float32"),
        dims=("time", "lat", "lon"),
        name="t2m",
        coords={"time": times},
    ).chunk({"time": 5})
    with pytest.raises(ValueError, match=match):
        LazyGridTrainingDataset(da, 4, 2)


def test_predict_to_zarr_refuses_to_replace_the_input_store_or_other_files(tmp_path, store):
    # to_zarr(mode="w") empties the directory it is given: predict_to_zarr(path=<the input store>)
    # deleted the data being forecast, and a path naming a folder of other files deleted them
    t2m = open_grid(store, "t2m")
    model = MIMModel(**tiny_kwargs(tmp_path))
    model.fit_from_dataset(LazyGridTrainingDataset(t2m, 6, 3))
    before = t2m.values.copy()
    with pytest.raises(FileExistsError, match="not a forecast store written by predict_to_zarr"):
        predict_to_zarr(model, t2m, 3, store)
    np.testing.assert_array_equal(open_grid(store, "t2m").values, before)
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="Choose a new path"):
        predict_to_zarr(model, t2m, 3, folder)
    assert (folder / "notes.txt").read_text() == "keep me"
    # its own forecast store (and an empty folder) is still replaced, as documented
    out = tmp_path / "fc.zarr"
    predict_to_zarr(model, t2m, 3, out)
    again = predict_to_zarr(model, t2m, 3, out, input_ends=t2m.time.values[-4:-2])
    assert again.sizes["forecast_start"] == 2
    (tmp_path / "empty").mkdir()
    assert predict_to_zarr(model, t2m, 3, tmp_path / "empty").sizes["forecast_start"] == 1
