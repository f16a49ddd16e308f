"""Property-based tests: random grids, channels, patches, chunk lengths, covariate layouts and dtypes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_kwargs
from darts import TimeSeries
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from darts_mim import MIMModel, grid_to_series, series_to_grid


@st.composite
def configurations(draw):
    patch = draw(st.sampled_from([1, 2]))
    height = patch * draw(st.integers(1, 3))
    width = patch * draw(st.integers(1, 3))
    return dict(
        channels=draw(st.integers(1, 3)),
        height=height,
        width=width,
        patch=patch,
        icl=draw(st.integers(1, 4)),
        ocl=draw(st.integers(1, 3)),
        n=draw(st.integers(1, 5)),
        covariates=draw(st.sampled_from(["none", "plain_past", "gridded_future", "both"])),
        dtype=draw(st.sampled_from([np.float32, np.float64])),
        seed=draw(st.integers(0, 2**16)),
    )


def _build(cfg):
    rng = np.random.default_rng(cfg["seed"])
    length = cfg["icl"] + cfg["ocl"] + 4
    times = pd.date_range("2024-01-01", periods=length + 8, freq="h")
    shape = (length, cfg["channels"], cfg["height"], cfg["width"])
    target = grid_to_series(rng.random(shape).astype(cfg["dtype"]), times[:length])
    past = future = None
    if cfg["covariates"] in ("plain_past", "both"):
        past = TimeSeries.from_times_and_values(
            times[:length], rng.random((length, 2)).astype(cfg["dtype"]), columns=["p0", "p1"]
        )
    if cfg["covariates"] in ("gridded_future", "both"):
        future = grid_to_series(
            rng.random((len(times), 1, cfg["height"], cfg["width"])).astype(cfg["dtype"]),
            times,
            ["f"],
        )
    return target, past, future


def _fit(tmp_path, cfg):
    target, past, future = _build(cfg)
    model = MIMModel(
        **tiny_kwargs(
            tmp_path,
            input_chunk_length=cfg["icl"],
            output_chunk_length=cfg["ocl"],
            patch_size=cfg["patch"],
            num_hidden=(3, 2),
            batch_size=4,
        )
    )
    model.fit(target, past_covariates=past, future_covariates=future)
    return model, target, past, future


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cfg=configurations())
def test_fit_predict_shapes_index_and_names(tmp_path_factory, cfg):
    tmp_path = tmp_path_factory.mktemp("prop")
    model, target, past, future = _fit(tmp_path, cfg)
    n = cfg["n"]
    if past is not None and n > cfg["ocl"]:
        n = cfg["ocl"]  # past covariates are not known beyond the series' end
    pred = model.predict(n, series=target, past_covariates=past, future_covariates=future)
    assert pred.n_timesteps == n
    assert pred.start_time() == target.end_time() + target.freq
    assert list(pred.components) == list(target.components)
    assert pred.dtype == cfg["dtype"]
    assert series_to_grid(pred).shape == (n, cfg["channels"], cfg["height"], cfg["width"])
    assert np.isfinite(pred.values()).all()


@settings(max_examples=10, deadline=None)
@given(
    height=st.integers(1, 9),
    width=st.integers(1, 9),
    patch=st.integers(2, 5),
)
def test_patch_size_that_does_not_divide_the_grid_is_refused(
    tmp_path_factory, height, width, patch
):
    if height % patch == 0 and width % patch == 0:
        return
    tmp_path = tmp_path_factory.mktemp("patch")
    times = pd.date_range("2024", periods=12, freq="h")
    series = grid_to_series(np.zeros((12, 1, height, width), dtype=np.float32), times)
    model = MIMModel(**tiny_kwargs(tmp_path, patch_size=patch, input_chunk_length=3))
    with pytest.raises(ValueError, match=f"patch_size={patch} does not divide"):
        model.fit(series)


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cfg=configurations())
def test_onnx_agrees_with_torch_on_random_configurations(tmp_path_factory, cfg):
    from darts_mim.onnx.runtime import OnnxForecaster

    tmp_path = tmp_path_factory.mktemp("onnx")
    model, target, past, future = _fit(tmp_path, cfg)
    n = cfg["ocl"]
    expected = model.predict(n, series=target, past_covariates=past, future_covariates=future)
    forecaster = OnnxForecaster(model.to_onnx(str(tmp_path / "m.onnx")))
    got = forecaster.predict(n, series=target, past_covariates=past, future_covariates=future)
    assert list(got.components) == list(expected.components)
    assert got.time_index.equals(expected.time_index)
    np.testing.assert_allclose(got.values(), expected.values(), atol=1e-4)
