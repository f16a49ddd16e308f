"""ONNX export and the torch-free OnnxForecaster: forecasts equal MIMModel.predict, clear errors.

Each export takes about a second (the looped export, see test_onnx_loop.py), but the models are
still tiny, trained once per module, and each covers several cases.
"""

from __future__ import annotations

import json
import logging
import re
import warnings

import numpy as np
import onnx
import pandas as pd
import pytest
from conftest import tiny_kwargs
from darts import TimeSeries
from darts.utils.likelihood_models.torch import GaussianLikelihood, QuantileRegression

from darts_mim import MIMModel, grid_to_series
from darts_mim.onnx.export import _quiet_exporter
from darts_mim.onnx.runtime import OnnxForecaster

TOL = 1e-4


def _model(work_dir, **kwargs) -> MIMModel:
    return MIMModel(**tiny_kwargs(work_dir, input_chunk_length=3, output_chunk_length=2, **kwargs))


def _close(torch_fc: TimeSeries, onnx_fc: TimeSeries) -> None:
    assert onnx_fc.time_index.equals(torch_fc.time_index)
    assert list(onnx_fc.components) == list(torch_fc.components)
    assert onnx_fc.metadata == torch_fc.metadata
    assert onnx_fc.dtype == torch_fc.dtype
    np.testing.assert_allclose(onnx_fc.values(), torch_fc.values(), atol=TOL, rtol=0)


@pytest.fixture(scope="module")
def gridded(tmp_path_factory):
    """float64, 2x4x4 grid with a masked cell, patch 2, gridded past and plain future covariates."""
    tmp = tmp_path_factory.mktemp("gridded")
    rng = np.random.default_rng(0)
    times = pd.date_range("2024-01-01", periods=60, freq="30min")
    values = rng.random((60, 2, 4, 4))
    values[:, 0, 0, 0] = np.nan  # an always-missing cell: masked, forecast as NaN
    series = grid_to_series(values, times, ["in", "out"])
    past = grid_to_series(
        rng.random((70, 1, 4, 4)), pd.date_range(times[0], periods=70, freq="30min")
    )
    future_times = pd.date_range(times[0], periods=70, freq="30min")
    future = TimeSeries.from_times_and_values(
        future_times, np.sin(np.arange(70.0))[:, None], columns=["hour"]
    )
    model = _model(tmp, patch_size=2)
    model.fit(series, past_covariates=past, future_covariates=future)
    path = model.to_onnx(str(tmp / "gridded.onnx"))
    return {
        "model": model,
        "path": path,
        "forecaster": OnnxForecaster(path),
        "series": series,
        "past": past,
        "future": future,
    }


@pytest.fixture(scope="module")
def gaussian(tmp_path_factory):
    """Multivariate (1x1 grid), Gaussian likelihood, output_chunk_shift=2."""
    tmp = tmp_path_factory.mktemp("gaussian")
    rng = np.random.default_rng(1)
    series = TimeSeries.from_times_and_values(
        pd.RangeIndex(50), rng.random((50, 3)).astype("float32"), columns=["a", "b", "c"]
    )
    model = _model(tmp, filter_size=1, output_chunk_shift=2, likelihood=GaussianLikelihood())
    model.fit(series)
    path = model.to_onnx(str(tmp / "gaussian.onnx"))
    return {"model": model, "path": path, "forecaster": OnnxForecaster(path), "series": series}


@pytest.fixture(scope="module")
def quantile(tmp_path_factory):
    """Multivariate (1x1 grid), quantile regression, reversible instance norm."""
    tmp = tmp_path_factory.mktemp("quantile")
    rng = np.random.default_rng(2)
    series = TimeSeries.from_times_and_values(
        pd.date_range("2024", periods=50, freq="h"),
        (rng.random((50, 2)) * 10).astype("float32"),
        columns=["x", "y"],
    )
    model = _model(
        tmp,
        filter_size=1,
        likelihood=QuantileRegression([0.1, 0.5, 0.9]),
        use_reversible_instance_norm=True,
    )
    model.fit(series)
    path = model.to_onnx(str(tmp / "quantile.onnx"))
    return {"model": model, "path": path, "forecaster": OnnxForecaster(path), "series": series}


# ---------------------------------------------------------------------- agreement with torch
@pytest.mark.parametrize("n", [1, 2, 5])
def test_gridded_with_covariates_matches_torch(gridded, n):
    g = gridded
    kwargs = dict(past_covariates=g["past"], future_covariates=g["future"])
    expected = g["model"].predict(n, g["series"], verbose=False, **kwargs)
    got = g["forecaster"].predict(n, g["series"], **kwargs)
    assert expected.dtype == np.float64  # float64-trained model, float32 graph
    assert np.isnan(got.values()[:, 0]).all() and not np.isnan(got.values()[:, 1:]).any()
    _close(expected, got)


def test_gridded_list_of_32_series_in_batches(gridded):
    g = gridded
    series = [g["series"][: 60 - k] for k in range(32)]
    kwargs = dict(past_covariates=[g["past"]] * 32, future_covariates=[g["future"]] * 32)
    expected = g["model"].predict(5, series, verbose=False, **kwargs)
    got = g["forecaster"].predict(5, series, batch_size=10, **kwargs)
    assert isinstance(got, list) and len(got) == 32
    for e, o in zip(expected, got, strict=True):
        _close(e, o)


def test_predict_array_takes_frames(gridded):
    g = gridded
    f: OnnxForecaster = g["forecaster"]
    n = 5
    expected = f.predict(n, g["series"], past_covariates=g["past"], future_covariates=g["future"])
    icl = f.input_chunk_length
    frames = g["series"].values()[-icl:].reshape(1, icl, 2, 4, 4)
    past = g["past"].values()[60 - icl : 60 + n - 2][None]
    future = g["future"].values()[60 - icl : 60 + n][None]
    out = f.predict_array(frames, n, past_covariates=past, future_covariates=future)
    assert out.shape == (1, n, 2, 4, 4)
    np.testing.assert_allclose(out.reshape(n, -1), expected.values(), atol=1e-6)


def test_predict_array_refuses_nan_in_what_the_graph_reads(gridded):
    """NaN in the window (outside the always-missing cell) or in the covariates is named as
    predict names it, not forecast and then blamed on the weights; the masked cell may be NaN."""
    g = gridded
    f: OnnxForecaster = g["forecaster"]
    n, icl = 2, f.input_chunk_length
    frames = g["series"].values()[-icl:].reshape(1, icl, 2, 4, 4)
    past = g["past"].values()[60 - icl : 60][None]
    future = g["future"].values()[60 - icl : 60 + n][None]
    assert np.isnan(frames[0, :, 0, 0, 0]).all()  # the masked cell: no error
    out = f.predict_array(frames, n, past_covariates=past, future_covariates=future)
    assert np.isfinite(out[:, :, :, 1:]).all()
    gap = frames.copy()
    gap[0, 1, 1, 2, 3] = np.nan
    gap[0, 2, 0, 1, 1] = np.inf
    pattern = (
        r"^`past_target` contains NaN or infinite values in the window the forecast reads: "
        r"2 value\(s\), the first at step 1 \(of 3, 0 the oldest\) of series 0, component "
        r"'out_r2_c3'\. Fill the gaps first"
    )
    with pytest.raises(ValueError, match=pattern):
        f.predict_array(gap, n, past_covariates=past, future_covariates=future)
    with pytest.raises(ValueError, match=pattern):  # (B, icl, D) as well
        f.predict_array(gap.reshape(1, icl, -1), n, past_covariates=past, future_covariates=future)
    bad_future = future.copy()
    bad_future[0, -1, 0] = np.nan
    with pytest.raises(
        ValueError, match=r"^`future_covariates` contains NaN .* at step 4 \(of 5, .*'hour'"
    ):
        f.predict_array(frames, n, past_covariates=past, future_covariates=bad_future)


def test_metadata_describes_the_model(gridded):
    props = {p.key: json.loads(p.value) for p in onnx.load(gridded["path"]).metadata_props}
    assert props["darts_mim.grid"] == {"channels": ["in", "out"], "height": 4, "width": 4}
    assert props["darts_mim.input_chunk_length"] == 3
    assert props["darts_mim.output_chunk_length"] == 2
    assert props["darts_mim.inputs"] == [
        "past_target",
        "past_covariates",
        "historic_future_covariates",
        "future_covariates",
    ]
    assert props["darts_mim.past_covariates"]["grid_channels"] == 1
    assert props["darts_mim.future_covariates"]["components"] == ["hour"]
    assert props["darts_mim.freq"] == "30min"
    assert props["darts_mim.dtype"] == "float32"
    assert props["darts_mim.training_dtype"] == "float64"
    assert props["darts_mim.likelihood"] is None
    assert props["darts_mim.missing_components"] == [0]
    model = onnx.load(gridded["path"])
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param  # symbolic batch axis


def test_gaussian_parameters_with_output_shift(gaussian):
    g = gaussian
    for n in (1, 2):
        expected = g["model"].predict(
            n, g["series"], predict_likelihood_parameters=True, verbose=False
        )
        got = g["forecaster"].predict(n, g["series"])
        assert list(got.components)[:2] == ["a_mu", "a_sigma"]
        assert got.start_time() == g["series"].end_time() + 3  # shift 2
        _close(expected, got)
    assert (got.values()[:, 1::2] > 0).all()  # softplus applied in the graph
    with pytest.raises(ValueError, match="smaller than or equal to `output_chunk_length`"):
        g["forecaster"].predict(3, g["series"])


def test_quantile_parameters_list(quantile):
    q = quantile
    series = [q["series"], q["series"][:-7]]
    expected = q["model"].predict(2, series, predict_likelihood_parameters=True, verbose=False)
    got = q["forecaster"].predict(2, series)
    assert list(got[0].components) == [
        "x_q0.100",
        "x_q0.500",
        "x_q0.900",
        "y_q0.100",
        "y_q0.500",
        "y_q0.900",
    ]
    for e, o in zip(expected, got, strict=True):
        _close(e, o)


def test_fp16_export_runs_close(quantile, tmp_path):
    path = quantile["model"].to_onnx(str(tmp_path / "half.onnx"), fp16=True)
    half = OnnxForecaster(path)
    assert half.session.get_inputs()[0].type == "tensor(float16)"
    assert half.metadata["dtype"] == "float16"
    full = quantile["forecaster"].predict(2, quantile["series"])
    got = half.predict(2, quantile["series"])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got.values(), full.values(), atol=0.05 * np.abs(full.values()).max())


# ---------------------------------------------------------------------- input errors
def test_wrong_grid_or_components(gridded):
    f, s = gridded["forecaster"], gridded["series"]
    kwargs = dict(past_covariates=gridded["past"], future_covariates=gridded["future"])
    values = s.values().reshape(60, 2, 4, 4)
    # Channel names may differ, as component names may for Darts' own models and MIMModel.predict.
    renamed = grid_to_series(values, s.time_index, ["a", "b"])
    np.testing.assert_array_equal(
        f.predict(2, renamed, **kwargs).values(), f.predict(2, s, **kwargs).values()
    )
    with pytest.raises(ValueError, match=r"fitted on a 2x4x4 grid .* has a 1x4x4 grid"):
        f.predict(2, grid_to_series(values[:, 1:], s.time_index, ["out"]), **kwargs)
    with pytest.raises(ValueError, match=r"fitted on a 2x4x4 grid .* has 5 components"):
        f.predict(2, s.with_metadata(None)[s.components[:5].tolist()], **kwargs)
    # Grid metadata kept after selecting components: said so, not "grids differ" with two equal grids.
    with pytest.raises(ValueError, match=r"grid metadata says .* but the series has 5"):
        f.predict(2, s[s.components[:5].tolist()], **kwargs)


def test_too_short_series(gridded):
    with pytest.raises(ValueError, match="too short .* Expected min length: `3`"):
        gridded["forecaster"].predict(
            2,
            gridded["series"][:2],
            past_covariates=gridded["past"],
            future_covariates=gridded["future"],
        )


def test_missing_or_short_covariates(gridded):
    f, s = gridded["forecaster"], gridded["series"]
    with pytest.raises(ValueError, match="trained with `past_covariates`"):
        f.predict(2, s, future_covariates=gridded["future"])
    with pytest.raises(ValueError, match="trained with `future_covariates`"):
        f.predict(2, s, past_covariates=gridded["past"])
    with pytest.raises(ValueError, match="do not extend far enough into the future"):
        f.predict(5, s, past_covariates=gridded["past"], future_covariates=gridded["future"][:62])
    with pytest.raises(ValueError, match="do not extend far enough into the past"):
        f.predict(2, s, past_covariates=gridded["past"][58:], future_covariates=gridded["future"])
    with pytest.raises(ValueError, match="equal number of components"):
        f.predict(2, s, past_covariates=gridded["future"], future_covariates=gridded["future"])


def test_left_out_covariates_are_refused_saying_why_torch_differs(gridded):
    """MIMModel.predict (Darts) reuses the covariates given to fit, for another series too; the
    ONNX file holds none, so the ONNX paths refuse, and now say so (they claimed to answer as
    MIMModel.predict)."""
    f, s = gridded["forecaster"], gridded["series"]
    other = s * 3 + 1
    kept = gridded["model"].predict(2, other, verbose=False)
    given = gridded["model"].predict(
        2,
        other,
        past_covariates=gridded["past"],
        future_covariates=gridded["future"],
        verbose=False,
    )
    np.testing.assert_array_equal(kept.values(), given.values())
    why = (
        r"MIMModel\.predict would reuse the `past_covariates` given to fit; the ONNX file holds "
        r"no covariates, so pass them\.$"
    )
    with pytest.raises(ValueError, match=r"^This model has been trained with `past_covariates`.*"):
        f.predict(2, other)
    with pytest.raises(ValueError, match=why):
        f.predict(2, other, future_covariates=gridded["future"])
    icl = f.input_chunk_length
    with pytest.raises(ValueError, match=why):  # predict_array and the service alike
        f.predict_array(
            other.values()[-icl:][None],
            2,
            future_covariates=gridded["future"].values()[54:62][None],
        )


def test_predict_array_refuses_an_empty_batch(gridded):
    """No window: numpy's "need at least one array to concatenate" before."""
    f: OnnxForecaster = gridded["forecaster"]
    for shape in ((0, 3, 32), (0, 3, 2, 4, 4)):
        with pytest.raises(
            ValueError,
            match=r"^`past_target` holds no window \(shape \(0, 3, .*\)\): pass at least one, "
            r"\(B, 3, 32\) or \(B, 3, 2, 4, 4\) with B >= 1\.$",
        ):
            f.predict_array(np.zeros(shape, "float32"), 2)


def test_nan_in_input_window(gridded):
    s = gridded["series"]
    values = s.values().copy()
    values[-1, 3] = np.nan
    bad = s.with_values(values)
    with pytest.raises(ValueError, match="NaN or infinite values"):
        gridded["forecaster"].predict(
            2, bad, past_covariates=gridded["past"], future_covariates=gridded["future"]
        )


def test_bad_n(gridded):
    with pytest.raises(ValueError, match="positive integer"):
        gridded["forecaster"].predict(0, gridded["series"])


# ---------------------------------------------------------------------- file errors
def test_garbage_file(tmp_path):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"this is not an onnx model" * 10)
    with pytest.raises(ValueError, match="could not be read as an ONNX model"):
        OnnxForecaster(path)


def test_truncated_file(gridded, tmp_path):
    data = open(gridded["path"], "rb").read()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="could not be read as an ONNX model"):
        OnnxForecaster(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="No ONNX file"):
        OnnxForecaster(tmp_path / "nope.onnx")


def test_a_file_that_is_not_onnx_gets_no_checksum_warning_first(gridded, tmp_path):
    """A CSV passed for the graph was first warned about as an ONNX file without a checksum file,
    then refused; the one error now says it is not ONNX. A real graph without its checksum file
    still loads with that warning (once read)."""
    from darts_mim.onnx.service import ForecastService

    data = tmp_path / "data.csv"
    data.write_text("date,sales\n2024-01-01,3\n")
    for load in (OnnxForecaster, ForecastService):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(ValueError, match="could not be read as an ONNX model"):
                load(data)
        assert not [str(w.message) for w in caught if "checksum" in str(w.message)]
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(open(gridded["path"], "rb").read())  # without its .sha256
    with pytest.warns(UserWarning, match="has no checksum file"):
        OnnxForecaster(bare)


def test_foreign_onnx_file(tmp_path):
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "foreign.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ValueError, match="not written by darts-mim"):
        OnnxForecaster(path)


# ---------------------------------------------------------------------- export refusals
def test_export_refuses_unfitted(tmp_path):
    # Models with add_encoders export: see test_onnx_encoders.py.
    with pytest.raises(ValueError, match="not fitted"):
        _model(tmp_path).to_onnx(str(tmp_path / "x.onnx"))


def test_onnx_forecast_does_not_depend_on_batch(gridded):
    """A sequence's ONNX forecast is the same alone or among 1, 7 or 64 others, in any order."""
    forecaster, series = gridded["forecaster"], gridded["series"]
    past, future = gridded["past"], gridded["future"]
    windows = [series[: 20 + i] for i in range(64)]
    target = 30
    alone = forecaster.predict(
        2, windows[target], past_covariates=past, future_covariates=future
    ).values()
    rng = np.random.default_rng(1)
    for size in (1, 7, 64):
        others = [w for i, w in enumerate(windows) if i != target][: size - 1]
        batch = [*others, windows[target]]
        order = rng.permutation(len(batch))
        shuffled = [batch[i] for i in order]
        preds = forecaster.predict(
            2,
            shuffled,
            past_covariates=[past] * len(batch),
            future_covariates=[future] * len(batch),
            batch_size=64,
        )
        position = int(np.flatnonzero(order == len(batch) - 1)[0])
        np.testing.assert_allclose(preds[position].values(), alone, atol=1e-5, equal_nan=True)


# ---------------------------------------------------------------------- torch and ONNX agree on bad input
def _bad_inputs(gridded, quantile) -> dict:
    """name -> (fixture, n, predict kwargs, pattern both messages must match)."""
    s, past, future = gridded["series"], gridded["past"], gridded["future"]
    covs = dict(past_covariates=past, future_covariates=future)
    values = s.values().reshape(60, 2, 4, 4)
    nan = s.values().copy()
    nan[-1, 3] = np.nan
    plain = TimeSeries.from_times_and_values(
        s.time_index, np.random.rand(60, 3), columns=list("abc")
    )
    fast_past = grid_to_series(
        np.random.rand(70, 1, 4, 4), pd.date_range(s.start_time(), periods=70, freq="15min")
    )

    other_grid_past = grid_to_series(
        np.random.rand(70, 1, 2, 8), pd.date_range(s.start_time(), periods=70, freq="30min")
    )

    def stochastic(ts: TimeSeries) -> TimeSeries:  # e.g. an ensemble fed back in
        noise = np.random.default_rng(0).normal(size=ts.all_values().shape[:2] + (4,))
        return ts.with_values(ts.all_values() + noise)

    huge_values = past.values().copy()  # float64: finite, but beyond what float32 holds
    huge_values[59, 0] = 1e39  # the last step of the input window
    huge_past = past.with_values(huge_values)

    q = quantile["series"]
    # Long enough for any use: Darts checks the time span before whether the model takes them.
    q_cov = TimeSeries.from_times_and_values(
        pd.date_range(q.start_time(), periods=len(q) + 10, freq=q.freq),
        np.ones((len(q) + 10, 1), dtype="float32"),
    )
    return {
        "other grid": (
            gridded,
            2,
            dict(series=grid_to_series(values[:, 1:], s.time_index, ["out"]), **covs),
            r"fitted on a 2x4x4 grid .*, but `series` has a 1x4x4 grid",
        ),
        "components of a gridded series": (
            gridded,
            2,
            dict(series=s[list(s.components[:5])], **covs),
            r"grid metadata says 2 channel\(s\) on 4x4 = 32 components, but the series has 5",
        ),
        "components of a gridded series, reordered": (
            gridded,
            2,
            dict(series=s[list(s.components[16:]) + list(s.components[:16])], **covs),
            r"components are not in its grid's order \(channel-major, then row, then column\)",
        ),
        "plain series, wrong size": (
            gridded,
            2,
            dict(series=plain, **covs),
            r"fitted on a 2x4x4 grid .*, but `series` has 3 components",
        ),
        "too short": (
            gridded,
            2,
            dict(series=s[:2], **covs),
            r"too short to extract the model input for prediction. Expected min length: `3`",
        ),
        "NaN in the window": (gridded, 2, dict(series=s.with_values(nan), **covs), r"contains NaN"),
        "stochastic series": (
            gridded,
            2,
            dict(series=stochastic(s), **covs),
            r"^`series` is stochastic: it has 4 samples, .* such as `series.mean\(\)`",
        ),
        "stochastic past covariates": (
            gridded,
            2,
            dict(
                series=[s, s],
                past_covariates=[past, stochastic(past)],
                future_covariates=[future] * 2,
            ),
            r"^`past_covariates` at index 1 is stochastic: it has 4 samples",
        ),
        "n = 0": (gridded, 0, dict(series=s, **covs), r"`n` must be a positive integer, got 0"),
        "past covariates, wrong size": (
            gridded,
            2,
            dict(series=s, past_covariates=future, future_covariates=future),
            r"provided `past_covariates` must have equal number of components .* `1`, expected: `16`",
        ),
        "future covariates too short": (
            gridded,
            5,
            dict(series=s, past_covariates=past, future_covariates=future[:62]),
            r"`future_covariates` at series sequence index `0` do not extend far enough into the "
            r"future",
        ),
        "past covariates start late": (
            gridded,
            2,
            dict(series=s, past_covariates=past[58:], future_covariates=future),
            r"`past_covariates` at series sequence index `0` do not extend far enough into the past",
        ),
        "past covariates at another frequency": (
            gridded,
            2,
            dict(series=s, past_covariates=fast_past, future_covariates=future),
            r"`past_covariates` frequency `<15 \* Minutes>` does not match the target `series`",
        ),
        # as many components (16) as the 4x4 grid fitted on, but on other cells: fit refuses it
        "past covariates on another grid": (
            gridded,
            2,
            dict(
                series=[s, s],
                past_covariates=[past, other_grid_past],
                future_covariates=[future] * 2,
            ),
            r"^`past_covariates` at index 1 are gridded on 2x8 but the target grid is 4x4; "
            r"regrid them onto the 4x4 target grid",
        ),
        "one covariate series for two": (
            gridded,
            2,
            dict(series=[s, s], past_covariates=[past], future_covariates=[future, future]),
            r"sequence of `past_covariates` must have the same length as the sequence of target "
            r"`series`",
        ),
        "past covariates for a model without": (
            quantile,
            2,
            dict(series=q, past_covariates=q_cov),
            r"trained without `past_covariates`; No `past_covariates` should be provided",
        ),
        "future covariates for a model without": (
            quantile,
            2,
            dict(series=q, future_covariates=q_cov),
            r"trained without `future_covariates`; No `future_covariates` should be provided",
        ),
        # a JSON client's "false" is truthy: both paths refuse it rather than return parameters
        "predict_likelihood_parameters as a string": (
            quantile,
            2,
            dict(series=q, predict_likelihood_parameters="false"),
            r"^`predict_likelihood_parameters` must be a boolean .* got 'false'",
        ),
        # numpy's TypeError (ONNX) and sklearn's message (torch) before the shared check
        "random_state as a float": (
            quantile,
            2,
            dict(series=q, num_samples=3, random_state=1.5),
            r"^`random_state` must be None or an integer seed in \[0, 2\*\*32 - 1\], got 1\.5\.$",
        ),
        "random_state as a list": (
            quantile,
            2,
            dict(series=q, num_samples=3, random_state=[1, 2]),
            r"^`random_state` must be None or an integer seed .* got \[1, 2\]\.$",
        ),
        "negative random_state": (
            quantile,
            2,
            dict(series=q, num_samples=3, random_state=-1),
            r"^`random_state` must be None or an integer seed .* got -1\.$",
        ),
        # torch: an IndexError, an AttributeError, and a TypeError from tile()
        "no series": (quantile, 2, dict(series=[]), r"^Got no series to forecast\.$"),
        "None among the series": (
            quantile,
            2,
            dict(series=[q, None]),
            r"^`series` must be a TimeSeries or a sequence of TimeSeries\.$",
        ),
        "series as an array": (
            quantile,
            2,
            dict(series=q.values()),
            r"^`series` must be a TimeSeries or a sequence of TimeSeries\.$",
        ),
        "num_samples as a float": (
            quantile,
            2,
            dict(series=q, num_samples=2.0),
            r"^`num_samples` must be a positive integer, got 2\.0\.$",
        ),
        "num_samples as a boolean": (
            quantile,
            2,
            dict(series=q, num_samples=True),
            r"^`num_samples` must be a positive integer, got True\.$",
        ),
        # ONNX read it after Darts' slicing cast it to float32: an infinite "gap" to fill
        "past covariates beyond float32": (
            gridded,
            2,
            dict(series=s, past_covariates=huge_past, future_covariates=future),
            r"^`past_covariates` at index 0 reaches \|x\| = 1e\+39 at time .* in component "
            r"'.*', beyond what float32 arithmetic holds .* Scale the series",
        ),
    }


def test_torch_and_onnx_refuse_the_same_inputs(gridded, quantile):
    """Each bad input: a ValueError from both MIMModel.predict and OnnxForecaster.predict, saying the
    same thing (the grid checks are shared code, so those messages are equal word for word)."""
    failures = []
    for name, (fixture, n, kwargs, pattern) in _bad_inputs(gridded, quantile).items():
        messages = {}
        for who, predict in (
            ("torch", lambda f=fixture, n=n, kw=kwargs: f["model"].predict(n, verbose=False, **kw)),
            ("onnx", lambda f=fixture, n=n, kw=kwargs: f["forecaster"].predict(n, **kw)),
        ):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # Darts' autoregression notice
                    predict()
                messages[who] = "no error"
            except ValueError as err:
                messages[who] = str(err)
        if not all(re.search(pattern, m) for m in messages.values()):
            failures.append(f"{name}: {messages}")
        if name.startswith(
            (
                "other grid",
                "components of",
                "plain series",
                "NaN",
                "stochastic",
                "past covariates on",
                "past covariates beyond",
                "predict_likelihood_parameters",
                "no series",
                "None among",
                "series as",
                "num_samples",
            )
        ):
            if messages["torch"] != messages["onnx"]:
                failures.append(f"{name}: messages differ: {messages}")
    assert not failures, "\n".join(failures)


def test_covariates_on_another_grid_refused_without_series_too(gridded):
    """MIMModel.predict(n, past_covariates=...) forecasts the training series: the covariates' grid
    is checked there as well (it was checked nowhere)."""
    other = grid_to_series(
        np.random.rand(70, 1, 8, 2), pd.date_range("2024-01-01", periods=70, freq="30min")
    )
    with pytest.raises(ValueError, match=r"^`past_covariates` are gridded on 8x2 but the target"):
        gridded["model"].predict(
            2, past_covariates=other, future_covariates=gridded["future"], verbose=False
        )


def test_gaps_outside_the_steps_read_are_no_error(gridded):
    """NaN long before the input window, and in covariate steps the forecast does not read: both
    paths forecast, alike (torch refused the whole series before)."""
    s, past, future = gridded["series"], gridded["past"], gridded["future"]
    values = s.values().copy()
    values[:10, 3] = np.nan  # the window is the last 3 steps
    past_values = past.values().copy()
    past_values[:5] = np.nan
    past_values[-5:] = np.nan  # steps after the series' end: read only beyond output_chunk_length
    kwargs = dict(
        series=s.with_values(values),
        past_covariates=past.with_values(past_values),
        future_covariates=future,
    )
    torch_fc = gridded["model"].predict(2, verbose=False, **kwargs)
    _close(torch_fc, gridded["forecaster"].predict(2, **kwargs))
    _close(gridded["model"].predict(2, s, past, future, verbose=False), torch_fc)


def test_predict_array_refuses_covariates_the_model_does_not_use(quantile):
    f = quantile["forecaster"]
    window = quantile["series"].values()[None, -3:]
    for name in ("past_covariates", "future_covariates", "static_covariates"):
        with pytest.raises(ValueError, match=f"trained without `{name}`; No `{name}` should"):
            f.predict_array(window, 2, **{name: np.zeros((1, 5, 1), dtype=np.float32)})
    assert f.predict_array(window, 2).shape == (1, 2, 2, 3)


def test_values_in_always_missing_cells_warn(gridded):
    """The cell that was NaN in all training data has values now: warned, still forecast as NaN."""
    s = gridded["series"]
    values = s.values().copy()
    values[:, 0] = 1.0
    filled = s.with_values(values)
    kwargs = dict(past_covariates=gridded["past"], future_covariates=gridded["future"])
    with pytest.warns(UserWarning, match="missing at every step of the training data"):
        forecast = gridded["forecaster"].predict(2, filled, **kwargs)
    assert np.isnan(forecast.values()[:, 0]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for the series as trained
        gridded["forecaster"].predict(2, s, **kwargs)


# ---------------------------------------------------------------------- a quiet export
def test_export_prints_no_exporter_noise(quantile, tmp_path, capfd, caplog):
    """No "torchvision is not installed" nor "Skipping constant folding" lines, the same graph."""
    capfd.readouterr()
    with caplog.at_level(logging.WARNING), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = quantile["model"].to_onnx(str(tmp_path / "quiet.onnx"))
    out, err = capfd.readouterr()
    text = out + err + caplog.text
    # The exporter's warnings about its own internals are gone too (reversible instance norm here).
    assert [str(w.message) for w in caught] == []
    assert "torchvision is not installed" not in text
    assert "Skipping constant folding" not in text
    for name in (
        "torch.onnx._internal.exporter._registration",
        "onnxscript.optimizer._constant_folding",
    ):
        assert logging.getLogger(name).filters == []  # removed after the export
    expected = quantile["model"].predict(
        2, quantile["series"], predict_likelihood_parameters=True, verbose=False
    )
    _close(expected, OnnxForecaster(path).predict(2, quantile["series"]))


def test_quiet_exporter_drops_only_the_noise(caplog):
    name = "onnxscript.optimizer._constant_folding"
    logger = logging.getLogger(name)
    noise = "Skipping constant folding for op %s with multiple outputs."
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with caplog.at_level(logging.WARNING, logger=name):
            with _quiet_exporter():
                logger.warning(noise, "Split")
                logger.warning("Evaluation failed: %s", "a real problem")
                warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated", FutureWarning, 1)
                warnings.warn("a real warning", UserWarning, 1)
            logger.warning(noise, "Split")
    assert [r.getMessage() for r in caplog.records] == [
        "Evaluation failed: a real problem",
        "Skipping constant folding for op Split with multiple outputs.",
    ]
    assert [str(w.message) for w in caught] == ["a real warning"]


def test_export_creates_the_folder_of_its_path(quantile, tmp_path):
    # as MIMModel.save does; the write used to fail after the whole export, on the name of a
    # hidden temporary file ('.x.onnx.<pid>.<hex>.tmp.onnx') the user never gave
    path = quantile["model"].to_onnx(str(tmp_path / "new" / "folder" / "x.onnx"))
    assert path == str(tmp_path / "new" / "folder" / "x.onnx")
    got = OnnxForecaster(path).predict(2, quantile["series"])
    _close(quantile["forecaster"].predict(2, quantile["series"]), got)
