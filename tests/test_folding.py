"""Period folding of plain series (issue 12): period inference, the fold and its inverse, chunk
lengths that are not whole periods, covariates, likelihoods, ONNX, and the seasonal naive anchor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_kwargs
from darts import TimeSeries
from darts.utils.data.torch_datasets.utils import ModuleStage
from darts.utils.likelihood_models.torch import GaussianLikelihood
from darts.utils.timeseries_generation import datetime_attribute_timeseries

from darts_mim import MIMModel
from darts_mim.folding import infer_period, resolve_fold


def _daily_cycle(n: int = 240, components: int = 3, freq: str = "h", period: int = 24, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    phase = np.arange(components)[None, :]
    values = (
        np.sin(2 * np.pi * t / period + phase)
        + 0.01 * t
        + 0.05 * rng.standard_normal((n, components))
    )
    times = pd.date_range("2024-01-01", periods=n, freq=freq)
    return TimeSeries.from_times_and_values(
        times, values.astype(np.float32), columns=[f"x{i}" for i in range(components)]
    )


@pytest.mark.parametrize(
    "freq, period",
    [
        ("h", 24),
        ("30min", 48),
        ("15min", 96),
        ("D", 7),
        ("B", 5),
        ("W", 52),
        ("MS", 12),
        ("ME", 12),
        ("QS", 4),
        ("min", 60),
        ("YS", None),
        ("2D", None),
        ("7min", None),
    ],
)
def test_periods_inferred_from_the_frequency(freq, period):
    index = pd.date_range("2020-01-01", periods=10, freq=freq)
    assert infer_period(index.freq) == period


def test_integer_index_has_no_period():
    series = TimeSeries.from_values(np.zeros((30, 1), dtype=np.float32))
    assert infer_period(series.freq) is None


def test_auto_folds_only_plain_series_with_two_periods_of_input():
    assert resolve_fold("auto", "h", 48, gridded=False) == 24
    assert resolve_fold("auto", "h", 47, gridded=False) == 1  # under two periods: no folding
    assert resolve_fold("auto", "h", 96, gridded=True) == 1  # grids are already spatial
    assert resolve_fold(None, "h", 96, gridded=False) == 1
    assert resolve_fold(12, None, 30, gridded=False) == 12


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"fold_period": 1}, "fold_period"),
        ({"fold_period": 0}, "fold_period"),
        ({"fold_period": 2.5}, "fold_period"),
        ({"fold_period": 7}, "longer than input_chunk_length=6"),
    ],
)
def test_bad_periods_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MIMModel(6, 3, **kwargs)


def test_explicit_period_on_a_grid_is_an_error(tmp_path, grid_series):
    with pytest.raises(ValueError, match="folds plain series, but the target is a grid"):
        MIMModel(**tiny_kwargs(tmp_path, fold_period=3)).fit(grid_series)


def test_fold_and_unfold_are_exact_inverses(tmp_path):
    series = _daily_cycle()
    model = MIMModel(**tiny_kwargs(tmp_path, input_chunk_length=48, output_chunk_length=24))
    model.fit(series)
    module = model.model
    assert module.fold == 24 and model.layout.fold == 24
    assert module.frame_shape == (3, 1, 24)
    x = torch.randn(5, 48, 3)
    frames = module._frames(x)  # (B, 2, 3, 1, 24): frame k, component c = steps 24k..24k+23
    assert frames.shape == (5, 2, 3, 1, 24)
    torch.testing.assert_close(frames[:, 1, 2, 0], x[:, 24:48, 2])
    back = module._to_components(frames.unsqueeze(3))  # a one-parameter network output
    torch.testing.assert_close(back[..., 0], x)


def _seasonal_naive(series: TimeSeries, n: int, period: int) -> np.ndarray:
    last = series.values()[-period:]
    return np.concatenate([last] * (-(-n // period)))[:n]


@pytest.mark.parametrize(
    "icl, ocl, n, period",
    [(48, 24, 24, 24), (30, 5, 5, 12), (30, 5, 13, 12), (48, 24, 60, 24)],
)
def test_untrained_anchored_folded_model_is_the_seasonal_naive(tmp_path, icl, ocl, n, period):
    # chunk lengths that are not whole periods (30 = 2 periods + 6, 5 < 12) and n > ocl
    series = _daily_cycle()
    model = MIMModel(
        **tiny_kwargs(
            tmp_path,
            input_chunk_length=icl,
            output_chunk_length=ocl,
            fold_period=period,
            naive_anchor=True,
            optimizer_kwargs={"lr": 0.0},
        )
    )
    model.fit(series)
    forecast = model.predict(n)
    assert forecast.start_time() == series.end_time() + series.freq
    assert len(forecast) == n and list(forecast.components) == list(series.components)
    # the first output_chunk_length steps are the seasonal naive of the input's last period
    np.testing.assert_allclose(
        forecast.values()[:ocl], _seasonal_naive(series, n, period)[:ocl], atol=1e-5
    )


def test_univariate_multivariate_and_likelihood(tmp_path):
    series = _daily_cycle(components=1)
    model = MIMModel(**tiny_kwargs(tmp_path, input_chunk_length=48, output_chunk_length=24))
    forecast = model.fit(series).predict(30)
    assert (
        forecast.n_components == 1 and len(forecast) == 30 and np.isfinite(forecast.values()).all()
    )
    probabilistic = MIMModel(
        **tiny_kwargs(
            tmp_path / "p",
            input_chunk_length=48,
            output_chunk_length=24,
            likelihood=GaussianLikelihood(),
            naive_anchor=True,
        )
    ).fit(_daily_cycle())
    samples = probabilistic.predict(24, num_samples=5)
    assert samples.all_values().shape == (24, 3, 5)


def test_covariates_and_static_covariates(tmp_path):
    series = _daily_cycle(n=300)
    # one row per component: per-channel values along each folded strip
    series = series.with_static_covariates(
        pd.DataFrame({"size": [1.0, 2.0, 3.0]}, index=series.components)
    )
    calendar = datetime_attribute_timeseries(
        series.time_index.union(pd.date_range(series.end_time(), periods=50, freq="h")),
        "hour",
        cyclic=True,
    ).astype(np.float32)
    past = series["x0"].with_columns_renamed("x0", "lagged")
    model = MIMModel(
        **tiny_kwargs(tmp_path, input_chunk_length=48, output_chunk_length=30, fold_period=24)
    )
    model.fit(series, past_covariates=past, future_covariates=calendar)
    assert model.model.fold == 24 and model.model.static_cov_layout == ("per_component", 1)
    forecast = model.predict(30, past_covariates=past, future_covariates=calendar)
    assert len(forecast) == 30 and np.isfinite(forecast.values()).all()


def test_input_window_loss_and_historical_forecasts(tmp_path):
    series = _daily_cycle()
    model = MIMModel(
        **tiny_kwargs(tmp_path, input_chunk_length=72, output_chunk_length=24, n_epochs=2)
    )
    model.fit(series)
    # frames 2 and 3 of the three input periods are scored: 48 steps
    assert model.model._window_steps(72, ModuleStage.TRAIN) == 48
    assert np.isfinite(float(model.trainer.callback_metrics["train_loss"]))
    forecasts = model.historical_forecasts(
        series, start=180, forecast_horizon=24, stride=12, retrain=False, last_points_only=False
    )
    assert len(forecasts) == 4
    assert forecasts[0].start_time() == series.time_index[180]


def test_folded_training_is_faster_than_one_value_per_step(tmp_path):
    # not a timing assertion: the folded network runs 1/P as many recurrent steps
    series = _daily_cycle()
    folded = MIMModel(**tiny_kwargs(tmp_path, input_chunk_length=96, output_chunk_length=24))
    flat = MIMModel(
        **tiny_kwargs(
            tmp_path / "flat", input_chunk_length=96, output_chunk_length=24, fold_period=None
        )
    )
    folded.fit(series)
    flat.fit(series)
    calls = {"folded": 0, "flat": 0}
    for name, model in (("folded", folded), ("flat", flat)):
        step = model.model.net._step

        def counting(*args, _step=step, _name=name, **kwargs):
            calls[_name] += 1
            return _step(*args, **kwargs)

        model.model.net._step = counting
        model.predict(24)
    assert calls == {"folded": 4 + 1 - 1, "flat": 96 + 24 - 1}


def test_onnx_parity_for_a_folded_model(tmp_path):
    pytest.importorskip("onnxruntime")
    from darts_mim.onnx.runtime import OnnxForecaster

    series = _daily_cycle()
    model = MIMModel(
        **tiny_kwargs(
            tmp_path, input_chunk_length=48, output_chunk_length=20, naive_anchor=True, n_epochs=2
        )
    ).fit(series)
    assert model.layout.fold == 24
    forecaster = OnnxForecaster(model.to_onnx(str(tmp_path / "folded.onnx")))
    for n in (20, 50):
        np.testing.assert_allclose(
            forecaster.predict(n, series).values(), model.predict(n).values(), atol=1e-4
        )


def test_channel_independence_keeps_components_apart(tmp_path):
    series = _daily_cycle()
    model = MIMModel(
        **tiny_kwargs(
            tmp_path, input_chunk_length=48, output_chunk_length=24, channel_independent=True
        )
    ).fit(series)
    assert model.model.frame_shape == (1, 1, 24)
    base = model.predict(24)
    values = series.values().copy()
    values[:, 1] += np.linspace(0, 5, len(values))  # change another component's history
    other = model.predict(24, series=series.with_values(values))
    np.testing.assert_allclose(other.values()[:, 0], base.values()[:, 0], atol=1e-6)
    assert not np.allclose(other.values()[:, 1], base.values()[:, 1])
    coupled = MIMModel(
        **tiny_kwargs(tmp_path / "c", input_chunk_length=48, output_chunk_length=24)
    ).fit(series)
    moved = coupled.predict(24, series=series.with_values(values)).values()[:, 0]
    assert not np.allclose(moved, coupled.predict(24).values()[:, 0], atol=1e-6)


# unfolded, short chunks: the exporter unrolls every step, which takes minutes for 72 steps
@pytest.mark.parametrize("fold_period, icl, ocl", [("auto", 48, 24), (None, 6, 3)])
def test_channel_independence_with_covariates_static_and_onnx(tmp_path, fold_period, icl, ocl):
    pytest.importorskip("onnxruntime")
    from darts_mim.onnx.runtime import OnnxForecaster

    series = _daily_cycle(n=300).with_static_covariates(
        pd.DataFrame({"size": [1.0, 2.0, 3.0]}, index=["x0", "x1", "x2"])
    )
    calendar = datetime_attribute_timeseries(
        pd.date_range(series.start_time(), periods=400, freq="h"), "hour", cyclic=True
    ).astype(np.float32)
    model = MIMModel(
        **tiny_kwargs(
            tmp_path,
            input_chunk_length=icl,
            output_chunk_length=ocl,
            channel_independent=True,
            fold_period=fold_period,
            naive_anchor=True,
            n_epochs=2,
        )
    ).fit(series, future_covariates=calendar)
    forecast = model.predict(ocl, future_covariates=calendar)
    assert np.isfinite(forecast.values()).all()
    forecaster = OnnxForecaster(model.to_onnx(str(tmp_path / "ci.onnx")))
    np.testing.assert_allclose(
        forecaster.predict(ocl, series, future_covariates=calendar).values(),
        forecast.values(),
        atol=1e-4,
    )


def test_channel_independence_refuses_grids(tmp_path, grid_series):
    with pytest.raises(ValueError, match="channel_independent=True forecasts each component"):
        MIMModel(**tiny_kwargs(tmp_path, channel_independent=True)).fit(grid_series)
