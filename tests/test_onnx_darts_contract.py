"""Darts' own ONNX code on darts-mim files: ``darts.utils.onnx`` (Darts 0.48) reads the spec that
``MIMModel.to_onnx`` writes, and ``run_onnx_prediction`` forecasts with the file where Darts'
contract can describe the model; where it cannot, the exact behaviour is pinned here and
docs/guides/onnx.md ("Darts' ONNX contract") says why.

Four tiny models, trained and exported once for the module (a few seconds each).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from conftest import tiny_kwargs
from darts import TimeSeries
from darts.dataprocessing.transformers import Scaler
from darts.utils.likelihood_models.torch import GaussianLikelihood
from darts.utils.onnx import prepare_onnx_inputs, run_onnx_prediction
from darts.utils.onnx.inference import ONNX_SPEC_METADATA_KEY, OnnxModelSpec
from darts.utils.timeseries_generation import datetime_attribute_timeseries

from darts_mim import MIMModel, grid_to_series
from darts_mim.integrity import write_checksums
from darts_mim.onnx import format as fmt
from darts_mim.onnx import runtime
from darts_mim.onnx.runtime import OnnxForecaster

TOL = 1e-4


def _model(work_dir, **kwargs) -> MIMModel:
    return MIMModel(**tiny_kwargs(work_dir, input_chunk_length=3, output_chunk_length=2, **kwargs))


def _session(path: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _darts(n: int, path: str, series, **kwargs):
    """Darts' documented user code: a session on the file, then ``run_onnx_prediction``."""
    return run_onnx_prediction(n=n, session=_session(path), series=series, verbose=False, **kwargs)


def _torch(model: MIMModel, n: int, series, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Darts' autoregression notice
        return model.predict(n, series, verbose=False, **kwargs)


def _hourly(length: int, values: np.ndarray, **kwargs) -> TimeSeries:
    times = pd.date_range("2024-01-01", periods=length, freq="h")
    return TimeSeries.from_times_and_values(times, values, **kwargs)


def _hours(series: TimeSeries, n: int) -> TimeSeries:
    """The encoding of ``add_encoders={"datetime_attribute": {"future": ["hour"]}}``, by hand."""
    index = pd.date_range(series.start_time(), periods=len(series) + n, freq=series.freq)
    return datetime_attribute_timeseries(index, "hour", dtype=np.float32)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """float32, 3 components, past and future covariates, a static covariate."""
    tmp = tmp_path_factory.mktemp("plain")
    rng = np.random.default_rng(0)
    series = _hourly(60, rng.random((60, 3)).astype("float32"), columns=list("abc"))
    series = series.with_static_covariates(pd.DataFrame({"site": [2.0]}))
    past = _hourly(70, rng.random((70, 2)).astype("float32"))
    future = _hourly(70, np.sin(np.arange(70.0))[:, None].astype("float32"), columns=["f"])
    model = _model(tmp, filter_size=1)
    model.fit(series, past_covariates=past, future_covariates=future)
    path = model.to_onnx(str(tmp / "plain.onnx"))
    covs = dict(past_covariates=past, future_covariates=future)
    return {"model": model, "path": path, "series": series, "covs": covs}


@pytest.fixture(scope="module")
def gridded(tmp_path_factory):
    """float64 2x4x4 grid with an always-missing cell, patch 2, Gaussian likelihood, shift 1."""
    tmp = tmp_path_factory.mktemp("grid")
    rng = np.random.default_rng(1)
    values = rng.random((60, 2, 4, 4))
    values[:, 0, 0, 0] = np.nan
    series = grid_to_series(
        values, pd.date_range("2024-01-01", periods=60, freq="30min"), ["in", "out"]
    )
    model = _model(tmp, patch_size=2, likelihood=GaussianLikelihood(), output_chunk_shift=1)
    model.fit(series)
    path = model.to_onnx(str(tmp / "grid.onnx"))
    return {"model": model, "path": path, "series": series}


@pytest.fixture(scope="module")
def shifted(tmp_path_factory):
    """output_chunk_shift=1 with future covariates."""
    tmp = tmp_path_factory.mktemp("shifted")
    rng = np.random.default_rng(2)
    series = _hourly(60, rng.random((60, 2)).astype("float32"), columns=list("ab"))
    future = _hourly(70, np.cos(np.arange(70.0))[:, None].astype("float32"), columns=["f"])
    model = _model(tmp, filter_size=1, output_chunk_shift=1)
    model.fit(series, future_covariates=future)
    path = model.to_onnx(str(tmp / "shifted.onnx"))
    return {"model": model, "path": path, "series": series, "future": future}


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    """Future covariates from ``add_encoders`` only (the hour of day)."""
    tmp = tmp_path_factory.mktemp("encoded")
    rng = np.random.default_rng(3)
    series = _hourly(60, rng.random((60, 2)).astype("float32"), columns=list("ab"))
    model = _model(tmp, filter_size=1, add_encoders={"datetime_attribute": {"future": ["hour"]}})
    model.fit(series)
    path = model.to_onnx(str(tmp / "encoded.onnx"))
    return {"model": model, "path": path, "series": series, "tmp": tmp}


# ---------------------------------------------------------------------- what Darts reads
def test_darts_reads_the_spec(plain, gridded):
    assert fmt.DARTS_SPEC_KEY == ONNX_SPEC_METADATA_KEY
    spec = OnnxModelSpec.from_session(_session(plain["path"]))
    features = ["past_target", "past_covariates", "historic_future_covariates", "future_covariates"]
    features.append("static_covariates")
    assert spec == OnnxModelSpec(
        input_chunk_length=3,
        output_chunk_length=2,
        output_chunk_shift=0,
        uses_past_covariates=True,
        uses_future_covariates=True,
        uses_static_covariates=True,
        likelihood_parameter_names=None,
        feature_input_names=features,
        input_names=features,
        output_names=["prediction"],
    )
    session = _session(plain["path"])
    assert [i.name for i in session.get_inputs()] == spec.input_names
    assert [o.name for o in session.get_outputs()] == spec.output_names
    grid_spec = OnnxModelSpec.from_session(_session(gridded["path"]))
    assert grid_spec.likelihood_parameter_names == ["mu", "sigma"]
    assert grid_spec.feature_input_names == ["past_target"]
    # The darts-mim entries are unchanged beside it, and the runtime reads only those.
    meta = OnnxForecaster(plain["path"]).metadata
    assert fmt.darts_spec(meta) == dataclasses.asdict(spec)


def test_runtime_slices_with_darts(plain):
    """OnnxForecaster's windows come from Darts' own prepare_onnx_inputs, not a copy of it."""
    assert runtime.prepare_onnx_inputs is prepare_onnx_inputs
    assert not hasattr(OnnxForecaster, "_window")


# ---------------------------------------------------------------------- where Darts' code runs
@pytest.mark.parametrize("n", [1, 2, 5])
def test_run_onnx_prediction_matches_predict(plain, n):
    """Covariates, static covariates, two series, and n > output_chunk_length: Darts'
    autoregression around the looped (ONNX ``Loop``) graph."""
    p = plain
    assert OnnxForecaster(p["path"]).metadata["export_method"] == "loop"
    series = [p["series"], p["series"][:-7]]
    covs = {k: [v, v] for k, v in p["covs"].items()}
    expected = _torch(p["model"], n, series, **covs)
    got = _darts(n, p["path"], series, **covs)
    ours = OnnxForecaster(p["path"]).predict(n, series, **covs)
    for e, g, o in zip(expected, got, ours, strict=True):
        assert g.time_index.equals(e.time_index)
        assert list(g.components) == list(e.components)
        assert g.static_covariates.equals(e.static_covariates)
        np.testing.assert_allclose(g.values(), e.values(), atol=TOL, rtol=0)
        np.testing.assert_allclose(o.values(), g.values(), atol=1e-6, rtol=0)


def test_scaler_in_the_graph(plain, tmp_path):
    """A file exported with ``scaler=`` takes and returns raw values with Darts' code too."""
    p = plain
    raw = p["series"] * 40.0 + 3.0
    scaler = Scaler().fit(raw)
    path = p["model"].to_onnx(str(tmp_path / "raw.onnx"), scaler=scaler)
    scaled = _torch(p["model"], 5, scaler.transform(raw), **p["covs"])
    expected = scaler.inverse_transform(scaled)
    got = _darts(5, path, raw, **p["covs"])
    np.testing.assert_allclose(got.values(), expected.values(), atol=40 * TOL, rtol=0)


def test_grid_likelihood_parameters(gridded):
    """A grid is a plain TimeSeries of C*H*W components to Darts: the parameters (softplus applied
    in the graph) with the grid metadata and the masked cell's NaN, shifted, in float32 only."""
    g = gridded
    series32 = g["series"].astype("float32")
    for n in (1, 2):
        expected = _torch(g["model"], n, g["series"], predict_likelihood_parameters=True)
        got = _darts(n, g["path"], series32)
        assert list(got.components) == list(expected.components)
        assert got.components[:2].tolist() == ["in_r0_c0_mu", "in_r0_c0_sigma"]
        assert got.metadata == expected.metadata
        assert got.time_index.equals(expected.time_index)
        assert got.start_time() == g["series"].end_time() + 2 * g["series"].freq  # shift 1
        assert got.dtype == np.float32 and expected.dtype == np.float64
        np.testing.assert_allclose(got.values(), expected.values(), atol=TOL, equal_nan=True)
    assert np.isnan(got.values()[:, :2]).all()
    # The graph is float32 whatever the training dtype: Darts feeds the series' dtype.
    with pytest.raises(
        Exception, match=r"Unexpected input data type\. Actual: \(tensor\(double\)\)"
    ):
        _darts(2, g["path"], g["series"])
    # Darts draws no samples and feeds no parameters back.
    with pytest.raises(ValueError, match=r"Cannot generate auto-regressive predictions `n > "):
        _darts(3, g["path"], series32)
    assert "num_samples" not in inspect.signature(run_onnx_prediction).parameters


# ---------------------------------------------------------------------- where it cannot
def test_shift_with_future_covariates(shifted):
    """Darts' prepare_onnx_inputs ends the future covariates ``max(n, ocl)`` steps after the series
    whatever the shift: ``ocl - shift`` steps for a graph that takes ``ocl``."""
    s = shifted
    expected = _torch(s["model"], 2, s["series"], future_covariates=s["future"])
    with pytest.raises(
        Exception, match=r"invalid dimensions for input: future_covariates.*\n index: 1 Got: 1"
    ):
        _darts(2, s["path"], s["series"], future_covariates=s["future"])
    # Workaround with Darts' own preparation: ask for shift more steps.
    session = _session(s["path"])
    spec = OnnxModelSpec.from_session(session)
    feeds = prepare_onnx_inputs(s["series"], spec, future_covariates=s["future"], n=2 + 1)
    (raw,) = session.run(["prediction"], {k: feeds[k] for k in spec.feature_input_names})
    np.testing.assert_allclose(raw[0, :, :, 0], expected.values(), atol=TOL, rtol=0)
    got = OnnxForecaster(s["path"]).predict(2, s["series"], future_covariates=s["future"])
    assert got.time_index.equals(expected.time_index)
    np.testing.assert_allclose(got.values(), expected.values(), atol=TOL, rtol=0)


def test_darts_checks_no_input(plain):
    """Covariates that do not cover the window: Darts' indexing error, not predict's message."""
    p = plain
    short = dict(p["covs"], past_covariates=p["covs"]["past_covariates"][58:])
    with pytest.raises(ValueError, match="Timestamp must be between"):
        _darts(2, p["path"], p["series"], **short)
    with pytest.raises(ValueError, match="do not extend far enough into the past"):
        OnnxForecaster(p["path"]).predict(2, p["series"], **short)


def test_shifted_covariate_errors_match_torch(shifted):
    """The runtime's checks (kept: Darts' own live in its torch dataset) say what torch says."""
    s = shifted
    cases = {
        "future": dict(future_covariates=s["future"][:62]),
        "past": dict(future_covariates=s["future"][58:]),
    }
    for name, kwargs in cases.items():
        messages = []
        for predict in (
            lambda kw=kwargs: _torch(s["model"], 2, s["series"], **kw),
            lambda kw=kwargs: OnnxForecaster(s["path"]).predict(2, s["series"], **kw),
        ):
            with pytest.raises(ValueError) as err:
                predict()
            messages.append(str(err.value))
        assert messages[0] == messages[1], name
        assert re.search(f"do not extend far enough into the {name}", messages[0])


def test_static_covariates_of_another_width_get_torchs_error(plain):
    """Two static columns for a model fitted with one: Darts' ValueError from both paths, word for
    word (onnxruntime's raw InvalidArgument before), and a shape error from predict_array."""
    p = plain
    wide = p["series"].with_static_covariates(pd.DataFrame({"site": [2.0], "extra": [1.0]}))
    forecaster = OnnxForecaster(p["path"])
    messages = []
    for predict in (
        lambda: p["model"].predict(2, wide, verbose=False, **p["covs"]),
        lambda: forecaster.predict(2, wide, **p["covs"]),
    ):
        with pytest.raises(ValueError) as err:
            predict()
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert "Received number of components: `2`, expected: `1`" in messages[0]
    window = p["series"].values()[None, -3:]
    past = p["covs"]["past_covariates"].values()[None, :3]
    future = p["covs"]["future_covariates"].values()[None, :5]
    with pytest.raises(ValueError, match=r"must have shape \(1, 1, 1\): .* 1 static covariate"):
        forecaster.predict_array(window, 2, past, future, static_covariates=np.ones((1, 1, 2)))
    forecaster.predict_array(window, 2, past, future, static_covariates=np.ones((1, 1, 1)))


def test_static_covariates_of_another_shape_are_refused_by_both_paths(tmp_path):
    """Per-component static covariates (2 rows x 1 column) for a model fitted with one row of two
    columns: Darts compares counts only, and torch read the second component's value as the
    first's second covariate, silently, where the ONNX runtime refused them; now both refuse
    them, word for word."""
    rng = np.random.default_rng(4)
    series = _hourly(40, rng.random((40, 2)).astype("float32"), columns=list("ab"))
    series = series.with_static_covariates(pd.DataFrame({"site": [2.0], "height": [1.0]}))
    model = _model(tmp_path, filter_size=1)
    model.fit(series)
    forecaster = OnnxForecaster(model.to_onnx(str(tmp_path / "static.onnx")))
    per_component = series.with_static_covariates(
        pd.DataFrame({"site": [2.0, 1.0]}, index=["a", "b"])
    )
    messages = []
    for predict in (
        lambda: model.predict(2, per_component, verbose=False),
        lambda: model.historical_forecasts(
            per_component, start=30, forecast_horizon=2, retrain=False, verbose=False
        ),
        lambda: forecaster.predict(2, per_component),
    ):
        with pytest.raises(ValueError) as err:
            predict()
        messages.append(str(err.value))
    assert messages[0] == messages[1] == messages[2]
    assert "2 row(s) x 1 column(s)" in messages[0] and "1 row(s) x 2 column(s)" in messages[0]
    # the training shape still forecasts, with the same numbers on both paths
    expected = model.predict(2, series, verbose=False)
    got = forecaster.predict(2, series)
    np.testing.assert_allclose(got.values(), expected.values(), atol=TOL)
    # a model saved with clean=True keeps no static values: its file still knows their shape, and
    # a third column gets Darts' words, not onnxruntime's "Got invalid dimensions"
    model.save(str(tmp_path / "clean.pt"), clean=True)
    cleaned = MIMModel.load(str(tmp_path / "clean.pt"))
    clean_forecaster = OnnxForecaster(cleaned.to_onnx(str(tmp_path / "clean.onnx")))
    wider = series.with_static_covariates(
        pd.DataFrame({"site": [2.0], "height": [1.0], "z": [0.0]})
    )
    with pytest.raises(ValueError, match=r"Received number of components: `3`, expected: `2`"):
        clean_forecaster.predict(2, wider)
    np.testing.assert_allclose(
        clean_forecaster.predict(2, series).values(), expected.values(), atol=TOL
    )


def test_encoders_are_the_users_job(encoded):
    """Darts' runtime computes no encodings: the graph's future covariates are missing, unless the
    user computes the same encodings and passes them as covariates."""
    e = encoded
    with pytest.raises(Exception, match=r"Required inputs .*'future_covariates'.* are missing"):
        _darts(2, e["path"], e["series"])
    expected = _torch(e["model"], 5, e["series"])
    got = _darts(5, e["path"], e["series"], future_covariates=_hours(e["series"], 5))
    np.testing.assert_allclose(got.values(), expected.values(), atol=TOL, rtol=0)


def test_fp16_file_is_not_for_darts(encoded):
    """A TimeSeries holds float32 or float64, never the float16 such a graph takes."""
    e = encoded
    path = e["model"].to_onnx(str(e["tmp"] / "half.onnx"), fp16=True)
    assert OnnxModelSpec.from_session(_session(path)) == OnnxModelSpec.from_session(
        _session(e["path"])
    )
    with pytest.raises(
        Exception, match=r"Unexpected input data type\. Actual: \(tensor\(float\)\)"
    ):
        _darts(2, path, e["series"], future_covariates=_hours(e["series"], 2))


def test_files_without_the_darts_entry_are_served(plain, tmp_path):
    """Files exported before the entry existed: the runtime never reads it."""
    proto = onnx.load(plain["path"])
    kept = {p.key: p.value for p in proto.metadata_props if p.key != fmt.DARTS_SPEC_KEY}
    onnx.helper.set_model_props(proto, kept)
    path = str(tmp_path / "old.onnx")
    onnx.save(proto, path)
    write_checksums([path])
    p = plain
    old = OnnxForecaster(path).predict(5, p["series"], **p["covs"])
    new = OnnxForecaster(p["path"]).predict(5, p["series"], **p["covs"])
    np.testing.assert_array_equal(old.values(), new.values())
