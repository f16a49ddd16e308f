"""Period folding of plain series (issue 12): period inference, the fold and its inverse, chunk
lengths that are not whole periods, covariates, likelihoods, ONNX, and the seasonal naive anchor."""

from __future__ import annotations

import warnings

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
        ("7D", 52),  # weekly data read without an anchored offset (ILINet)
        ("MS", 12),
        ("ME", 12),
        ("SMS", 24),  # semi-monthly: 24 steps a year (was 12, half a year)
        ("SME", 24),
        ("BMS", 12),
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


def _monthly_ar1(n: int = 840, seed: int = 0) -> np.ndarray:
    """A mean-reverting monthly index without a yearly season (like the Southern Oscillation)."""
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    for i in range(1, n):
        x[i] = 0.7 * x[i - 1] + rng.standard_normal()
    return x


def test_auto_folds_only_by_a_season_the_data_show():
    """Issue 24: the calendar proposes the period, Darts' autocorrelation test on the training data
    decides."""
    from darts_mim.folding import shows_season

    rng = np.random.default_rng(0)
    index = _monthly_ar1()[:, None]
    t = np.arange(840)
    yearly = (np.sin(2 * np.pi * t / 12) + 0.3 * rng.standard_normal(840))[:, None]
    assert not shows_season([index], 12)
    assert shows_season([yearly], 12)
    assert resolve_fold("auto", "MS", 36, gridded=False, values=[index]) == 1
    assert resolve_fold("auto", "MS", 36, gridded=False, values=[yearly]) == 12
    assert resolve_fold(12, "MS", 36, gridded=False, values=[index]) == 12  # asked for: folded
    # half of the components decide; gaps are interpolated, constant columns are not tested
    mixed = np.column_stack([yearly[:, 0], yearly[:, 0] + 1, index[:, 0], np.ones(840)])
    mixed[100:110, 0] = np.nan
    assert shows_season([mixed], 12)
    assert not shows_season([np.column_stack([yearly[:, 0], index[:, 0], index[:, 0]])], 12)
    assert shows_season([np.ones((100, 1))], 12)  # nothing to test: the calendar stands
    # a trend hides a season from the autocorrelation test; it is removed first
    trend = (np.arange(101) + 5 * np.sin(2 * np.pi * np.arange(101) / 12))[:, None]
    assert shows_season([trend], 12)


def test_model_does_not_fold_a_series_without_its_season(tmp_path):
    times = pd.date_range("1950-01-01", periods=400, freq="MS")
    index = TimeSeries.from_times_and_values(times, _monthly_ar1(400)[:, None].astype(np.float32))
    model = MIMModel(**tiny_kwargs(tmp_path, input_chunk_length=24, output_chunk_length=12))
    assert model.fit(index).layout.fold == 1
    yearly = index.with_values(
        (np.sin(2 * np.pi * np.arange(400) / 12) + 0.1 * index.values()[:, 0]).astype(np.float32)[
            :, None, None
        ]
    )
    model = MIMModel(**tiny_kwargs(tmp_path, input_chunk_length=24, output_chunk_length=12))
    assert model.fit(yearly).layout.fold == 12


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
    # all components in one frame (the "auto" default would make each its own sample)
    kwargs = dict(input_chunk_length=48, output_chunk_length=24, channel_independent=False)
    model = MIMModel(**tiny_kwargs(tmp_path, **kwargs))
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


def test_two_dimensional_fold_is_row_major_and_exact(tmp_path):
    # fold_rows=4: a day as 4 rows of 6 hours; step s of a frame sits at row s // 6, column s % 6
    series = _daily_cycle()
    model = MIMModel(
        **tiny_kwargs(
            tmp_path,
            input_chunk_length=48,
            output_chunk_length=24,
            fold_rows=4,
            channel_independent=False,
        )
    )
    model.fit(series)
    module = model.model
    assert model.layout.fold_rows == 4 and module.frame_shape == (3, 4, 6)
    x = torch.randn(5, 48, 3)
    frames = module._frames(x)
    assert frames.shape == (5, 2, 3, 4, 6)
    torch.testing.assert_close(frames[:, 1, 2, 2, 3], x[:, 24 + 2 * 6 + 3, 2])
    torch.testing.assert_close(module._to_components(frames.unsqueeze(3))[..., 0], x)
    # the layout is saved with the model: a loaded model predicts the same
    model.save(str(tmp_path / "m.pt"))
    loaded = MIMModel.load(str(tmp_path / "m.pt"))
    assert loaded.layout.fold_rows == 4
    np.testing.assert_allclose(loaded.predict(30).values(), model.predict(30).values())


def test_two_dimensional_fold_of_two_periods_anchors_on_the_frame_before(tmp_path):
    # fold_period=48, fold_rows=2: frames of two days, one per row; anchored and untrained, the
    # forecast repeats the last two days
    series = _daily_cycle()
    model = MIMModel(
        **tiny_kwargs(
            tmp_path,
            input_chunk_length=96,
            output_chunk_length=48,
            fold_period=48,
            fold_rows=2,
            naive_anchor=True,
            optimizer_kwargs={"lr": 0.0},
        )
    )
    model.fit(series)
    np.testing.assert_allclose(
        model.predict(48).values(), _seasonal_naive(series, 48, 48), atol=1e-5
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"fold_rows": 5}, "does not divide the period 24"),
        ({"fold_rows": 2, "fold_period": None}, "this series is not folded"),
        ({"fold_rows": 0}, "`fold_rows` must be an integer >= 1"),
        ({"fold_rows": True}, "`fold_rows` must be an integer >= 1"),
    ],
)
def test_bad_fold_rows_are_clear_errors(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        MIMModel(
            **tiny_kwargs(tmp_path, input_chunk_length=48, output_chunk_length=24, **kwargs)
        ).fit(_daily_cycle())


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


@pytest.mark.parametrize("fold_rows", [1, 4])
def test_onnx_parity_for_a_folded_model(tmp_path, fold_rows):
    pytest.importorskip("onnxruntime")
    from darts_mim.onnx.runtime import OnnxForecaster

    series = _daily_cycle()
    model = MIMModel(
        **tiny_kwargs(
            tmp_path,
            input_chunk_length=48,
            output_chunk_length=20,
            naive_anchor=True,
            n_epochs=2,
            fold_rows=fold_rows,
        )
    ).fit(series)
    assert model.layout.fold == 24 and model.layout.fold_rows == fold_rows
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
        **tiny_kwargs(
            tmp_path / "c", input_chunk_length=48, output_chunk_length=24, channel_independent=False
        )
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
    with warnings.catch_warnings():  # the fast looped export, not the unrolled fallback
        warnings.filterwarnings("error", message="The fast \\(looped\\) ONNX export")
        forecaster = OnnxForecaster(model.to_onnx(str(tmp_path / "ci.onnx")))
    np.testing.assert_allclose(
        forecaster.predict(ocl, series, future_covariates=calendar).values(),
        forecast.values(),
        atol=1e-4,
    )


def test_channel_independence_refuses_grids(tmp_path, grid_series):
    with pytest.raises(ValueError, match="channel_independent=True forecasts each component"):
        MIMModel(**tiny_kwargs(tmp_path, channel_independent=True)).fit(grid_series)


@pytest.mark.parametrize(
    "rin, independent, components, gridded, expected",
    [
        ("auto", "auto", 7, False, (True, True)),  # ETTh1-like: both on
        ("auto", "auto", 1, False, (False, False)),  # univariate: off
        ("auto", "auto", 4, True, (False, False)),  # a grid's channels: off
        ("auto", "auto", 33, False, (True, False)),  # too many components to split cheaply
        (False, "auto", 7, False, (False, True)),  # the user's choice is kept
        ({"eps": 1e-3}, False, 7, False, ({"eps": 1e-3}, False)),
    ],
)
def test_multivariate_options_resolved_from_the_series(
    rin, independent, components, gridded, expected
):
    from darts_mim.folding import resolve_multivariate_options

    assert resolve_multivariate_options(rin, independent, components, gridded) == expected
    # a likelihood's scale parameters must not go through the instance norm's inverse
    no_norm = resolve_multivariate_options("auto", independent, components, gridded, False)
    assert no_norm[0] is False


def test_auto_instance_norm_stays_off_with_a_likelihood_but_not_with_quantiles(tmp_path):
    from darts.utils.likelihood_models.torch import GaussianLikelihood, QuantileRegression

    series = _daily_cycle()
    kwargs = tiny_kwargs(tmp_path, input_chunk_length=48, output_chunk_length=24)
    gaussian = MIMModel(**kwargs, likelihood=GaussianLikelihood()).fit(series)
    assert gaussian.model.rin is None and gaussian.model.channel_independent
    quantiles = MIMModel(**kwargs, likelihood=QuantileRegression([0.1, 0.5, 0.9])).fit(series)
    assert quantiles.model.rin is not None


def test_auto_options_on_a_multivariate_series_and_after_loading_weights(tmp_path, grid_series):
    series = _daily_cycle()
    kwargs = tiny_kwargs(tmp_path, input_chunk_length=48, output_chunk_length=24)
    model = MIMModel(**kwargs).fit(series)
    assert model.model.channel_independent and model.model.rin is not None
    uni = MIMModel(**tiny_kwargs(tmp_path / "u", input_chunk_length=48, output_chunk_length=24))
    uni.fit(series["x0"])
    assert not uni.model.channel_independent and uni.model.rin is None
    grid = MIMModel(**tiny_kwargs(tmp_path / "g")).fit(grid_series)
    assert not grid.model.channel_independent and grid.model.rin is None
    # a fresh "auto" model takes the choice from the checkpoint
    path = str(tmp_path / "mim.pt")
    model.save(path)
    fresh = MIMModel(**kwargs)
    fresh.load_weights(path)
    assert fresh.model.channel_independent and fresh.model.rin is not None
    np.testing.assert_allclose(
        fresh.predict(30, series=series).values(), model.predict(30).values()
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"channel_independent": "yes"}, "`channel_independent` must be 'auto', True or False"),
        ({"use_reversible_instance_norm": "on"}, "`use_reversible_instance_norm` must be 'auto'"),
    ],
)
def test_bad_multivariate_options_are_clear_errors(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        MIMModel(**tiny_kwargs(tmp_path, **kwargs))
