"""Raw values in, raw values out: the fitted Darts ``Scaler`` written into the ONNX graph.

A model trained on scaled values and exported with ``to_onnx(..., scaler=scaler)`` forecasts from raw
series what ``scaler.inverse_transform(model.predict(n, series=scaler.transform(raw)))`` does, for
MinMax and Standard scalers, grids and plain multivariate series, samples and quantiles; the file
says so in its metadata; the runtime and the service do not scale again; what cannot be an affine
map in the graph is refused before the export; ``darts-mim export`` writes the scaler in by default.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from conftest import tiny_kwargs
from darts import TimeSeries
from darts.dataprocessing.transformers import Scaler
from darts.utils.likelihood_models.torch import QuantileRegression
from sklearn.preprocessing import MinMaxScaler, PowerTransformer, StandardScaler

from darts_mim import MIMModel, grid_to_series
from darts_mim.onnx import scaling
from darts_mim.onnx.runtime import OnnxForecaster
from darts_mim.onnx.service import ForecastService

RTOL = 1e-4


def _close(got: np.ndarray, want: np.ndarray) -> None:
    """Within RTOL of the forecasts' scale (NaN where the reference is NaN)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    scale = np.nanmax(np.abs(want))
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL * scale, equal_nan=True)


def _scalers(train: TimeSeries) -> dict[str, Scaler]:
    return {
        "minmax": Scaler().fit(train),  # Darts' default: MinMaxScaler
        "standard": Scaler(StandardScaler()).fit(train),
    }


def _reference(model: MIMModel, scaler: Scaler, n: int, series: TimeSeries, **kwargs):
    """What the torch model forecasts in raw units."""
    return scaler.inverse_transform(
        model.predict(n, series=scaler.transform(series), verbose=False, **kwargs)
    )


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """A 1x3x3 grid in raw units (about 500 +- 80) with an always-missing cell and future
    covariates, the model trained on its min-max scaled values."""
    tmp = tmp_path_factory.mktemp("scaler_grid")
    rng = np.random.default_rng(0)
    times = pd.date_range("2024-01-01", periods=50, freq="h")
    steps = np.arange(50)[:, None, None, None]
    values = 500 + 80 * np.sin(steps / 3.0) + 20 * rng.random((50, 1, 3, 3))
    values[:, 0, 2, 2] = np.nan
    raw = grid_to_series(values.astype(np.float32), times, ["flow"])
    future = TimeSeries.from_times_and_values(
        pd.date_range(times[0], periods=70, freq="h"),
        (1000 + 300 * np.sin(np.arange(70.0)))[:, None].astype(np.float32),
        columns=["load"],
    )
    train = raw[:40]
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        # sklearn's fit warns about the always-missing cell (its parameters are NaN, as its values)
        warnings.simplefilter("ignore", RuntimeWarning)
        scalers = _scalers(train)
    future_scaler = Scaler(StandardScaler()).fit(future[:40])
    model = MIMModel(**tiny_kwargs(tmp, input_chunk_length=4, output_chunk_length=2))
    model.fit(
        scalers["minmax"].transform(train),
        future_covariates=future_scaler.transform(future),
    )
    return {
        "tmp": tmp,
        "model": model,
        "raw": raw,
        "future": future,
        "scalers": scalers,
        "future_scaler": future_scaler,
    }


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """A plain series of 3 components on different scales (float32), deterministic model."""
    tmp = tmp_path_factory.mktemp("scaler_plain")
    rng = np.random.default_rng(1)
    t = np.arange(60.0)[:, None]
    values = np.array([10.0, 1000.0, -5.0]) + np.array([2.0, 300.0, 0.5]) * np.sin(
        t / np.array([3.0, 5.0, 7.0])
    )
    values += rng.normal(0, 0.05, values.shape) * np.array([2.0, 300.0, 0.5])
    raw = TimeSeries.from_times_and_values(
        pd.date_range("2024-01-01", periods=60, freq="D"),
        values.astype(np.float32),
        columns=["a", "b", "c"],
    )
    train = raw[:50]
    scalers = _scalers(train)
    model = MIMModel(**tiny_kwargs(tmp, input_chunk_length=4, output_chunk_length=2))
    model.fit(scalers["standard"].transform(train))
    return {"tmp": tmp, "model": model, "raw": raw, "scalers": scalers}


# ---------------------------------------------------------------------- raw units, like torch
@pytest.mark.parametrize("kind", ["minmax", "standard"])
def test_grid_forecasts_in_raw_units(grid, kind):
    g = grid
    scaler = g["scalers"][kind]
    path = g["model"].to_onnx(
        str(g["tmp"] / f"{kind}.onnx"),
        scaler=scaler,
        future_covariates_scaler=g["future_scaler"],
    )
    forecaster = OnnxForecaster(path)
    assert forecaster.scaling == {
        "in_graph": True,
        "units": "raw",
        "target": {
            "transformer": "MinMaxScaler" if kind == "minmax" else "StandardScaler",
            "n_components": 9,
        },
        "past_covariates": None,
        "future_covariates": {"transformer": "StandardScaler", "n_components": 1},
    }
    series = g["raw"]
    future_scaled = g["future_scaler"].transform(g["future"])
    for n in (2, 5):  # one call, and autoregressive
        got = forecaster.predict(n, series, future_covariates=g["future"])
        want = _reference(g["model"], scaler, n, series, future_covariates=future_scaled)
        assert got.time_index.equals(want.time_index)
        assert list(got.components) == list(want.components)
        values = got.values()
        assert np.isnan(values[:, 8]).all() and not np.isnan(values[:, :8]).any()
        assert np.nanmean(values) > 100  # raw units, not [0, 1]
        _close(values, want.values())


@pytest.mark.parametrize("kind", ["minmax", "standard"])
def test_plain_multivariate_forecasts_in_raw_units(plain, kind):
    p = plain
    scaler = p["scalers"][kind]
    forecaster = OnnxForecaster(p["model"].to_onnx(str(p["tmp"] / f"{kind}.onnx"), scaler=scaler))
    series = [p["raw"], p["raw"][:55]]
    got = forecaster.predict(5, series)
    for s, g in zip(series, got, strict=True):
        _close(g.values(), _reference(p["model"], scaler, 5, s).values())
    # Arrays too: the same raw values in, raw values out.
    window = p["raw"].values()[-4:][None]
    _close(forecaster.predict_array(window, 5)[0], got[0].values())


def test_a_file_without_scaler_is_unchanged(plain):
    p = plain
    scaler = p["scalers"]["standard"]
    path = p["model"].to_onnx(str(p["tmp"] / "unscaled.onnx"))
    forecaster = OnnxForecaster(path)
    assert forecaster.scaling is None
    assert "darts_mim.scaling" not in {e.key for e in onnx.load(path).metadata_props}
    scaled = scaler.transform(p["raw"])
    _close(
        forecaster.predict(3, scaled).values(),
        p["model"].predict(3, series=scaled, verbose=False).values(),
    )


def test_quantiles_and_samples_in_raw_units(tmp_path):
    rng = np.random.default_rng(2)
    raw = TimeSeries.from_times_and_values(
        pd.date_range("2024", periods=50, freq="h"),
        (200 + 50 * rng.random((50, 2))).astype(np.float32),
        columns=["x", "y"],
    )
    scaler = Scaler().fit(raw[:40])
    quantiles = [0.1, 0.5, 0.9]
    model = MIMModel(
        **tiny_kwargs(
            tmp_path,
            input_chunk_length=3,
            output_chunk_length=2,
            filter_size=1,
            likelihood=QuantileRegression(quantiles),
        )
    )
    model.fit(scaler.transform(raw[:40]))
    scaled_file = OnnxForecaster(model.to_onnx(str(tmp_path / "raw.onnx"), scaler=scaler))
    plain_file = OnnxForecaster(model.to_onnx(str(tmp_path / "scaled.onnx")))
    # Quantiles: the torch model's, each mapped back like a forecast.
    params = scaled_file.predict(2, raw, predict_likelihood_parameters=True)
    torch_params = model.predict(
        2, series=scaler.transform(raw), predict_likelihood_parameters=True, verbose=False
    )
    assert list(params.components) == list(torch_params.components)
    values = torch_params.values().reshape(2, 2, len(quantiles))  # (n, components, quantiles)
    want = np.stack(
        [
            scaler.inverse_transform(
                TimeSeries.from_times_and_values(torch_params.time_index, values[:, :, q])
            ).values()
            for q in range(len(quantiles))
        ],
        axis=-1,
    )
    _close(params.values().reshape(want.shape), want)
    # Samples (autoregressive beyond output_chunk_length): the same draws as from the file on
    # scaled values, mapped back.
    got = scaled_file.predict(5, raw, num_samples=20, random_state=0)
    ref = scaler.inverse_transform(
        plain_file.predict(5, scaler.transform(raw), num_samples=20, random_state=0)
    )
    assert got.n_samples == 20
    _close(got.all_values(), ref.all_values())


def test_fp16_graph_takes_raw_values_beyond_float16(tmp_path):
    """The scaling runs in float32 around a float16 network: inputs of 1e5 and more are served."""
    rng = np.random.default_rng(3)
    raw = TimeSeries.from_times_and_values(
        pd.RangeIndex(50), (1e5 + 3e4 * rng.random((50, 2))).astype(np.float32)
    )
    scaler = Scaler().fit(raw)
    model = MIMModel(**tiny_kwargs(tmp_path, input_chunk_length=3, output_chunk_length=2))
    model.fit(scaler.transform(raw))
    half = OnnxForecaster(model.to_onnx(str(tmp_path / "half.onnx"), fp16=True, scaler=scaler))
    assert half.metadata["dtype"] == "float16"
    assert half.session.get_inputs()[0].type == "tensor(float)"
    assert half.session.get_outputs()[0].type == "tensor(float)"
    got = half.predict(2, raw).values()
    want = _reference(model, scaler, 2, raw).values()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=2e-3)


def test_int8_graph_calibrates_on_raw_values(plain):
    p = plain
    scaler = p["scalers"]["standard"]
    path = p["model"].to_onnx(
        str(p["tmp"] / "int8.onnx"), scaler=scaler, int8_calibration=p["raw"][:50]
    )
    forecaster = OnnxForecaster(path)
    assert forecaster.scaling["target"]["transformer"] == "StandardScaler"
    # The error against the float32 network, on calibration windows it saw scaled as in training.
    assert forecaster.metadata["quantization"]["relative_rmse"] < 0.05
    got = forecaster.predict(2, p["raw"]).values()
    want = _reference(p["model"], scaler, 2, p["raw"]).values()
    # Per component, within a tenth of its forecasts' scale (components range from 5 to 1300).
    assert (np.abs(got - want) < 0.1 * np.abs(want).max(axis=0)).all()


def test_int8_error_in_metadata_is_in_the_units_served(plain):
    """With the scaler in the graph the saved int8 error is the one the file serves (raw units),
    not the network's error in scaled units (0.018 said where 2 bikes were served)."""
    p = plain
    scaler = p["scalers"]["standard"]
    calibration = p["raw"][:50]
    int8 = OnnxForecaster(
        p["model"].to_onnx(
            str(p["tmp"] / "int8_units.onnx"), scaler=scaler, int8_calibration=calibration
        )
    )
    f32 = OnnxForecaster(p["model"].to_onnx(str(p["tmp"] / "f32_units.onnx"), scaler=scaler))
    # the calibration windows as the export cuts them (every window of 4 steps: 47 < 64)
    values = calibration.values()
    windows = np.stack([values[end - 4 : end] for end in range(4, len(values) + 1)])
    diff = int8.predict_array(windows, n=2).astype(np.float64) - f32.predict_array(windows, n=2)
    quantization = int8.metadata["quantization"]
    assert quantization["units"] == "raw"
    assert quantization["calibration_windows"] == len(windows)
    served = np.abs(diff).max()
    assert served > 0
    np.testing.assert_allclose(quantization["max_abs_diff"], served, rtol=1e-3)
    np.testing.assert_allclose(quantization["rmse"], np.sqrt(np.mean(diff**2)), rtol=1e-3)


# ---------------------------------------------------------------------- the service
def test_service_answers_in_raw_units(plain):
    p = plain
    scaler = p["scalers"]["minmax"]
    path = p["model"].to_onnx(str(p["tmp"] / "service.onnx"), scaler=scaler)
    service = ForecastService(path, intra_op_num_threads=1)
    assert service.info()["scaling"]["target"] == {"transformer": "MinMaxScaler", "n_components": 3}
    window = p["raw"].values()[-4:][None].tolist()
    status, body = service.answer(json.dumps({"n": 3, "past_target": window}).encode())
    assert status == 200 and body["kind"] == "forecast"
    _close(np.array(body["forecast"])[0], _reference(p["model"], scaler, 3, p["raw"]).values())


# ---------------------------------------------------------------------- refusals
def test_refused_scalers(plain, tmp_path):
    p = plain
    model, raw = p["model"], p["raw"]
    path = str(tmp_path / "x.onnx")
    per_series = Scaler().fit([raw[:30], raw[30:]])
    with pytest.raises(ValueError, match="one per series.*global_fit=True"):
        model.to_onnx(path, scaler=per_series)
    with pytest.raises(ValueError, match="PowerTransformer is not an affine scaler.*Supported"):
        model.to_onnx(path, scaler=Scaler(PowerTransformer()).fit(raw))
    with pytest.raises(ValueError, match="clips"):
        model.to_onnx(path, scaler=Scaler(MinMaxScaler(clip=True)).fit(raw))
    with pytest.raises(ValueError, match="not fitted"):
        model.to_onnx(path, scaler=Scaler())
    with pytest.raises(ValueError, match="not a darts Scaler"):
        model.to_onnx(path, scaler=StandardScaler().fit(raw.values()))
    with pytest.raises(ValueError, match="fitted on 2 components.*have 3"):
        model.to_onnx(path, scaler=Scaler().fit(raw[["a", "b"]]))
    with pytest.raises(ValueError, match="`columns`"):
        model.to_onnx(path, scaler=Scaler(columns=["a"]).fit(raw))
    with pytest.raises(ValueError, match="trained without `past_covariates`"):
        model.to_onnx(path, scaler=p["scalers"]["minmax"], past_covariates_scaler=Scaler().fit(raw))
    assert not Path(path).exists()  # refused before anything is written


def test_covariate_maps_leave_the_encoded_columns_alone():
    affine = scaling.Affine(np.array([1.0]), np.array([2.0]), np.array([3.0]), "StandardScaler")
    padded = affine.padded(3)
    np.testing.assert_array_equal(padded.apply(np.array([[2.0, 5.0, 7.0]])), [[5.0, 5.0, 7.0]])


def test_likelihoods_that_cannot_follow_a_change_of_units():
    affine = scaling.Affine(np.zeros(2), np.full(2, 0.5), np.ones(2), "MinMaxScaler")
    poisson = {"name": "PoissonLikelihood", "parameter_names": ["lambda"]}
    with pytest.raises(ValueError, match="PoissonLikelihood cannot take the scaler"):
        scaling.output_affine(affine, poisson, 1)
    gaussian = {"name": "GaussianLikelihood", "parameter_names": ["mu", "sigma"]}
    offset, factor, center = scaling.output_affine(affine, gaussian, 2)
    # mu: (y - 1) * 2 + 0; sigma: y * 2
    np.testing.assert_array_equal(offset, [[1.0, 0.0]] * 2)
    np.testing.assert_array_equal(factor, [[2.0, 2.0]] * 2)
    np.testing.assert_array_equal(center, [[0.0, 0.0]] * 2)


# ---------------------------------------------------------------------- the command line
def _write_grid(path: Path) -> Path:
    rng = np.random.default_rng(0)
    steps = np.arange(48)[:, None, None, None]
    data = (300 + 50 * np.sin(steps / 3.0) + 10 * rng.random((48, 1, 3, 3))).astype(np.float32)
    times = pd.date_range("2024-01-01", periods=48, freq="30min").strftime("%Y-%m-%dT%H:%M")
    np.savez_compressed(
        path, data=data, time=np.asarray(times, dtype=str), channels=np.asarray(["flow"])
    )
    return path


def test_cli_fit_and_export_give_raw_unit_forecasts(tmp_path, capsys):
    from darts_mim.cli import load_scaler, main
    from darts_mim.datasets import load_grid_npz

    data = _write_grid(tmp_path / "grid.npz")
    model_path = tmp_path / "mim.pt"
    fit = ["--icl", "4", "--ocl", "2", "--hidden", "4,4", "--epochs", "1", "--quiet"]
    assert main(["fit", "--data", str(data), "--out", str(model_path), *fit]) == 0
    raw = load_grid_npz(data).series.astype(np.float32)
    scaler = load_scaler(str(model_path) + ".scaler")
    want = _reference(MIMModel.load(str(model_path)), scaler, 3, raw).values()

    # --no-scaler: the old file, on scaled values, with the scaler beside it.
    out = tmp_path / "m.onnx"
    assert main(["export", "--model", str(model_path), "--out", str(out), "--no-scaler"]) == 0
    assert Path(str(out) + ".scaler").is_file()
    old = OnnxForecaster(out)
    assert old.scaling is None
    _close(scaler.inverse_transform(old.predict(3, scaler.transform(raw))).values(), want)

    # Default: the scaler in the graph, raw values in and out; the scaler file beside it is gone.
    capsys.readouterr()
    assert main(["export", "--model", str(model_path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "pass raw values" in printed and "removed m.onnx.scaler" in printed
    assert not Path(str(out) + ".scaler").exists()
    assert not Path(str(out) + ".scaler.sha256").exists()
    forecaster = OnnxForecaster(out)
    assert forecaster.scaling["target"] == {"transformer": "MinMaxScaler", "n_components": 9}
    _close(forecaster.predict(3, raw).values(), want)
