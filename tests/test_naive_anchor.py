"""``naive_anchor``: the network forecasts the change from the naive forecast (issue 17, item 1).

An untrained anchored model (weights frozen with a zero learning rate) must be exactly the persistence
forecast, through every path a user takes: predict beyond the output chunk, likelihoods, covariates,
always-missing cells, instance norm, historical forecasts and ONNX.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_grid_series, tiny_kwargs
from darts import TimeSeries
from darts.utils.likelihood_models.torch import (
    GaussianLikelihood,
    PoissonLikelihood,
    QuantileRegression,
)

from darts_mim import MIMModel, TrainingRecipe, grid_to_series, series_to_grid

FROZEN = {"optimizer_kwargs": {"lr": 0.0}}  # the weights stay at their initial values


def _untrained(tmp_path, series, **overrides) -> MIMModel:
    model = MIMModel(**tiny_kwargs(tmp_path, naive_anchor=True, **FROZEN, **overrides))
    return model.fit(series)


def _persistence(series, n: int) -> np.ndarray:
    return np.repeat(series.values()[-1:], n, axis=0)


@pytest.mark.parametrize("n", [3, 7])
def test_untrained_model_is_the_persistence_forecast(tmp_path, grid_series, n):
    model = _untrained(tmp_path, grid_series, patch_size=2)
    np.testing.assert_allclose(model.predict(n).values(), _persistence(grid_series, n), atol=1e-6)


def test_without_anchor_the_untrained_model_is_not(tmp_path, grid_series):
    model = MIMModel(**tiny_kwargs(tmp_path, naive_anchor=False, **FROZEN)).fit(grid_series)
    assert model.anchor_lag == 0
    assert not np.allclose(model.predict(3).values(), _persistence(grid_series, 3), atol=1e-3)


def test_instance_norm_and_covariates(tmp_path, grid_series):
    covariates = make_grid_series(channels=1, seed=4)
    model = _untrained(
        tmp_path,
        grid_series,
        use_reversible_instance_norm=True,
        training_recipe=TrainingRecipe(input_window_loss=True),
    )
    np.testing.assert_allclose(model.predict(3).values(), _persistence(grid_series, 3), atol=1e-5)
    with_cov = MIMModel(**tiny_kwargs(tmp_path / "cov", naive_anchor=True, **FROZEN))
    with_cov.fit(grid_series[:-6], past_covariates=covariates, future_covariates=covariates)
    forecast = with_cov.predict(3, past_covariates=covariates, future_covariates=covariates)
    np.testing.assert_allclose(forecast.values(), _persistence(grid_series[:-6], 3), atol=1e-6)


def test_gaussian_anchors_the_mean_not_the_scale(tmp_path, grid_series):
    model = _untrained(tmp_path, grid_series, likelihood=GaussianLikelihood())
    params = model.predict(3, predict_likelihood_parameters=True).values().reshape(3, -1, 2)
    np.testing.assert_allclose(params[..., 0], _persistence(grid_series, 3), atol=1e-6)
    np.testing.assert_allclose(params[..., 1], np.log1p(np.e**0), atol=1e-5)  # softplus(0)
    samples = model.predict(3, num_samples=200).all_values()
    assert np.abs(samples.mean(axis=2) - _persistence(grid_series, 3)).mean() < 0.2


def test_every_quantile_is_anchored(tmp_path, grid_series):
    quantiles = [0.1, 0.5, 0.9]
    model = _untrained(tmp_path, grid_series, likelihood=QuantileRegression(quantiles))
    params = model.predict(3, predict_likelihood_parameters=True).values().reshape(3, -1, 3)
    # the median (the point forecast fed back) starts at the naive forecast; the other quantiles
    # start around it from the head's random initialisation, so that they are not tied
    np.testing.assert_allclose(params[..., 1], _persistence(grid_series, 3), atol=1e-6)
    assert not np.allclose(params[..., 0], params[..., 2])
    spread = np.abs(params[..., [0, 2]] - params[..., [1]])
    assert np.isfinite(spread).all() and spread.max() < 10 * np.std(grid_series.values())


def test_likelihood_without_a_location_is_refused():
    for anchor in (True, 24, "seasonal"):
        with pytest.raises(ValueError, match=r"naive_anchor .* needs .* PoissonLikelihood"):
            MIMModel(24, 3, naive_anchor=anchor, likelihood=PoissonLikelihood())


def test_auto_leaves_a_likelihood_without_a_location_unanchored(tmp_path, grid_series):
    model = MIMModel(**tiny_kwargs(tmp_path, likelihood=PoissonLikelihood(), **FROZEN))
    assert model.model_params["naive_anchor"] == "auto"  # the default
    grid = series_to_grid(grid_series)
    positive = grid_to_series(np.abs(grid) + 0.1, grid_series.time_index, ["ch0", "ch1"])
    assert model.fit(positive).anchor_lag == 0


def test_always_missing_cells(tmp_path, grid_series):
    values = series_to_grid(grid_series)
    values[:, 1, 2, 3] = np.nan
    series = grid_to_series(values, grid_series.time_index, ["ch0", "ch1"])
    model = _untrained(tmp_path, series)
    forecast = series_to_grid(model.predict(3))
    assert np.isnan(forecast[:, 1, 2, 3]).all()
    expected = np.repeat(values[-1:], 3, axis=0)
    keep = ~np.isnan(expected)
    np.testing.assert_allclose(forecast[keep], expected[keep], atol=1e-6)


def test_historical_forecasts_are_persistence(tmp_path, grid_series):
    model = _untrained(tmp_path, grid_series)
    forecasts = model.historical_forecasts(
        grid_series, start=40, forecast_horizon=3, retrain=False, last_points_only=False
    )
    for forecast in forecasts:
        last = grid_series.drop_after(forecast.start_time())
        np.testing.assert_allclose(forecast.values(), _persistence(last, 3), atol=1e-6)


def test_training_learns_a_correction(tmp_path, grid_series):
    trained = MIMModel(**tiny_kwargs(tmp_path, naive_anchor=True, n_epochs=3)).fit(grid_series)
    assert not np.allclose(trained.predict(3).values(), _persistence(grid_series, 3), atol=1e-4)
    assert trained.model_params["naive_anchor"] is True


def test_onnx_serves_the_anchored_model(tmp_path, grid_series):
    pytest.importorskip("onnxruntime")
    from darts_mim.onnx.runtime import OnnxForecaster

    model = MIMModel(**tiny_kwargs(tmp_path, naive_anchor=True, n_epochs=2)).fit(grid_series)
    path = model.to_onnx(str(tmp_path / "anchored.onnx"))
    forecaster = OnnxForecaster(path)
    np.testing.assert_allclose(
        forecaster.predict(7, grid_series).values(), model.predict(7).values(), atol=1e-4
    )


def _seasonal_grid(n_steps: int, period: int, trend: float = 0.0, seed: int = 0):
    """A grid with a strong cycle of ``period`` steps (plus an optional random walk): the seasonal
    naive forecast beats persistence on it unless the walk dominates."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps)[:, None, None, None]
    cycle = np.sin(2 * np.pi * t / period) * np.ones((1, 1, 3, 4))
    walk = trend * np.cumsum(rng.standard_normal((n_steps, 1, 3, 4)), axis=0)
    times = pd.date_range("2024-01-01", periods=n_steps, freq="h")
    return grid_to_series((cycle + walk).astype(np.float32), times, ["v"])


def _seasonal_naive(series, n: int, period: int) -> np.ndarray:
    last = series.values()[-period:]
    return np.concatenate([last] * (-(-n // period)))[:n]


@pytest.mark.parametrize("n", [3, 8, 13])
def test_integer_lag_is_the_seasonal_naive_forecast(tmp_path, n):
    series = _seasonal_grid(80, period=5, trend=1.0)
    model = MIMModel(**tiny_kwargs(tmp_path, naive_anchor=5, **FROZEN)).fit(series)
    assert model.anchor_lag == 5
    np.testing.assert_allclose(model.predict(n).values(), _seasonal_naive(series, n, 5), atol=1e-5)


def test_auto_chooses_the_better_naive_forecast_on_the_training_series(tmp_path):
    seasonal = _seasonal_grid(120, period=24)
    model = MIMModel(**tiny_kwargs(tmp_path, input_chunk_length=24, **FROZEN)).fit(seasonal)
    assert model.anchor_lag == 24  # hourly: the daily period
    np.testing.assert_allclose(
        model.predict(6).values(), _seasonal_naive(seasonal, 6, 24), atol=1e-5
    )
    walk = _seasonal_grid(120, period=24, trend=2.0)
    model = MIMModel(**tiny_kwargs(tmp_path / "walk", input_chunk_length=24, **FROZEN))
    assert model.fit(walk).anchor_lag == 1  # the random walk dominates: persistence
    short = MIMModel(**tiny_kwargs(tmp_path / "short", **FROZEN))  # an input of 6 < 24 steps
    assert short.fit(seasonal).anchor_lag == 1
    seasonal_arg = MIMModel(
        **tiny_kwargs(tmp_path / "s", input_chunk_length=24, naive_anchor="seasonal", **FROZEN)
    )
    assert seasonal_arg.fit(walk).anchor_lag == 24


def test_auto_anchors_an_unfolded_plain_series_on_persistence_or_its_mean(tmp_path):
    """An unfolded plain series ranks persistence and the window's mean only: its season, where the
    data show one, is used by folding (anchored on the seasonal naive unfolded, the network learned
    less than from persistence on NYC taxi passengers)."""
    times = pd.date_range("2024-01-01", periods=200, freq="h")
    cycle = np.sin(2 * np.pi * np.arange(200) / 24).astype(np.float32)  # seasonal naive is exact
    series = TimeSeries.from_times_and_values(times, cycle)
    kwargs = tiny_kwargs(tmp_path, input_chunk_length=24, fold_period=None, **FROZEN)
    assert MIMModel(**kwargs).fit(series).anchor_lag == 1
    assert MIMModel(**dict(kwargs, naive_anchor="seasonal")).fit(series).anchor_lag == 24
    folded = MIMModel(**dict(kwargs, input_chunk_length=48, fold_period="auto")).fit(series)
    assert (folded.layout.fold, folded.anchor_lag) == (24, 24)  # the season, by folding


def test_anchor_lag_survives_save_load_and_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    from darts_mim.onnx.runtime import OnnxForecaster

    series = _seasonal_grid(80, period=5, trend=0.3)
    model = MIMModel(**tiny_kwargs(tmp_path, naive_anchor=5, n_epochs=2)).fit(series)
    path = str(tmp_path / "m.pt")
    model.save(path)
    loaded = MIMModel.load(path)
    assert loaded.anchor_lag == 5
    np.testing.assert_allclose(loaded.predict(8).values(), model.predict(8).values(), atol=1e-6)
    fresh = MIMModel(**tiny_kwargs(tmp_path, naive_anchor=5, n_epochs=2))
    fresh.load_weights(path)
    assert fresh.anchor_lag == 5
    np.testing.assert_allclose(
        fresh.predict(8, series=series).values(), model.predict(8).values(), atol=1e-6
    )
    forecaster = OnnxForecaster(model.to_onnx(str(tmp_path / "m.onnx")))
    np.testing.assert_allclose(
        forecaster.predict(8, series).values(), model.predict(8).values(), atol=1e-4
    )


@pytest.mark.parametrize(
    ("anchor", "match"),
    [
        (0, "naive_anchor` must be"),
        (-3, "naive_anchor` must be"),
        ("last", "naive_anchor` must be"),
        (2.5, "naive_anchor` must be"),
    ],
)
def test_bad_naive_anchor_is_a_clear_error(anchor, match):
    with pytest.raises(ValueError, match=match):
        MIMModel(6, 3, naive_anchor=anchor)


def test_lags_the_input_cannot_hold_are_clear_errors(tmp_path, grid_series):
    with pytest.raises(ValueError, match="reaches further back than the input"):
        MIMModel(**tiny_kwargs(tmp_path, naive_anchor=7)).fit(grid_series)
    integer_index = grid_series.with_times_and_values(
        pd.RangeIndex(len(grid_series)), grid_series.values()
    )
    with pytest.raises(ValueError, match="no natural period"):
        MIMModel(**tiny_kwargs(tmp_path, naive_anchor="seasonal")).fit(integer_index)


def test_folded_series_anchor_on_whole_periods(tmp_path):
    times = pd.date_range("2024-01-01", periods=24 * 12, freq="h")
    values = np.sin(2 * np.pi * np.arange(len(times)) / 24) + 0.01 * np.arange(len(times))
    series = TimeSeries.from_times_and_values(times, values.astype(np.float32))
    kwargs = tiny_kwargs(tmp_path, input_chunk_length=48, output_chunk_length=24, **FROZEN)
    model = MIMModel(**kwargs).fit(series)
    assert (model.layout.fold, model.anchor_lag) == (24, 24)  # "auto": the period before, in steps
    assert model.config.anchor_lag == 1  # one folded frame
    np.testing.assert_allclose(model.predict(24).values()[:, 0], values[-24:], atol=1e-5)
    assert MIMModel(**dict(kwargs, naive_anchor=48)).fit(series).config.anchor_lag == 2
    with pytest.raises(ValueError, match="not a whole number of the folded periods"):
        MIMModel(**dict(kwargs, naive_anchor=12)).fit(series)


def _noisy_level(n: int = 200, seed: int = 0) -> TimeSeries:
    rng = np.random.default_rng(seed)
    times = pd.date_range("2024-01-01", periods=n, freq="h")
    return TimeSeries.from_times_and_values(
        times, (0.5 + 0.1 * rng.standard_normal(n)).astype(np.float32)
    )


def test_auto_leaves_a_mean_reverting_series_unanchored(tmp_path):
    """Noise around a level: the series' mean forecasts it better in-sample than any naive
    forecast, so "auto" starts from no anchor rather than from the last noisy value."""
    series = _noisy_level()
    kwargs = tiny_kwargs(tmp_path, input_chunk_length=12, output_chunk_length=3)
    model = MIMModel(**kwargs).fit(series)
    assert model.anchor_lag == 0 and not model.config.window_mean
    assert "no naive anchor (the series' mean forecast it better" in str(model.config)
    walk = np.cumsum(np.random.default_rng(0).standard_normal(200)).astype(np.float32)
    walked = MIMModel(**kwargs).fit(series.with_values(walk[:, None, None]))
    assert walked.anchor_lag == 1  # a random walk: persistence


def test_mean_starts_from_the_input_windows_mean(tmp_path):
    """naive_anchor="mean": instance norm and a head at zero; the untrained model forecasts the
    mean of the input window exactly (issue 24)."""
    series = _noisy_level()
    kwargs = tiny_kwargs(
        tmp_path, input_chunk_length=12, output_chunk_length=3, naive_anchor="mean"
    )
    model = MIMModel(**kwargs, **FROZEN).fit(series)
    assert model.anchor_lag == 0
    assert model.config.window_mean and model.config.instance_norm
    assert "anchored on the input window's mean" in str(model.config)
    window_mean = series.values()[-12:].mean()
    np.testing.assert_allclose(model.predict(3).values()[:, 0], window_mean, atol=1e-5)


def test_mean_needs_instance_norm(tmp_path):
    kwargs = tiny_kwargs(
        tmp_path, input_chunk_length=12, output_chunk_length=3, naive_anchor="mean"
    )
    with pytest.raises(ValueError, match="use_reversible_instance_norm=False turns off"):
        MIMModel(**kwargs, use_reversible_instance_norm=False).fit(_noisy_level())
    with pytest.raises(ValueError, match="cannot map a GaussianLikelihood's parameters back"):
        MIMModel(**kwargs, likelihood=GaussianLikelihood()).fit(_noisy_level())


def test_window_mean_model_survives_save_load_and_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    from darts_mim.onnx.runtime import OnnxForecaster

    series = _noisy_level()
    kwargs = tiny_kwargs(
        tmp_path, input_chunk_length=12, output_chunk_length=3, naive_anchor="mean"
    )
    model = MIMModel(**kwargs).fit(series)
    assert model.config.window_mean
    path = str(tmp_path / "m.pt")
    model.save(path)
    loaded = MIMModel.load(path)
    assert loaded.config == model.config
    np.testing.assert_allclose(loaded.predict(5).values(), model.predict(5).values(), atol=1e-6)
    forecaster = OnnxForecaster(model.to_onnx(str(tmp_path / "m.onnx")))
    np.testing.assert_allclose(
        forecaster.predict(5, series).values(), model.predict(5).values(), atol=1e-4
    )


def test_zero_starts_from_zero_and_survives_save_load_and_onnx(tmp_path, grid_series):
    """naive_anchor="zero": no anchor, the head at zero, so the untrained model forecasts zero on
    every cell and step: for a residual target (the radar recipe) that is the base forecast."""
    pytest.importorskip("onnxruntime")
    from darts_mim.onnx.runtime import OnnxForecaster

    model = MIMModel(**tiny_kwargs(tmp_path, naive_anchor="zero", **FROZEN)).fit(grid_series)
    assert model.anchor_lag == 0 and model.config.zero_start and not model.config.window_mean
    assert "no naive anchor (the outputs start from zero)" in str(model.config)
    np.testing.assert_array_equal(model.predict(5).values(), 0.0)  # beyond the output chunk too
    path = str(tmp_path / "m.pt")
    model.save(path)
    loaded = MIMModel.load(path)
    assert loaded.config == model.config and loaded.config.zero_start
    forecaster = OnnxForecaster(model.to_onnx(str(tmp_path / "m.onnx")))
    np.testing.assert_array_equal(forecaster.predict(5, grid_series).values(), 0.0)
    trained = MIMModel(**tiny_kwargs(tmp_path / "t", naive_anchor="zero")).fit(grid_series)
    assert np.abs(trained.predict(3).values()).max() > 0  # training moves it off zero


def test_zero_refuses_a_likelihood_without_location(tmp_path):
    with pytest.raises(ValueError, match="needs outputs on the target's scale"):
        MIMModel(**tiny_kwargs(tmp_path, naive_anchor="zero", likelihood=PoissonLikelihood()))
    with pytest.raises(ValueError, match="'mean', 'zero' or a lag"):
        MIMModel(**tiny_kwargs(tmp_path, naive_anchor="zeros"))


def test_auto_errors_rank_the_candidates():
    from darts_mim.anchor import WINDOW_MEAN, auto_anchor_errors, window_mean_mse

    t = np.arange(500.0)
    cycle = np.sin(2 * np.pi * t / 24)[:, None]
    errors = auto_anchor_errors("h", 48, 6, 1, [cycle])  # a grid
    assert set(errors) == {1, 24, WINDOW_MEAN}
    assert errors[24] < 1e-12 < errors[1]
    plain = auto_anchor_errors("h", 48, 6, 1, [cycle], gridded=False)
    assert set(plain) == {1, WINDOW_MEAN}
    assert set(auto_anchor_errors("h", 48, 6, 24, [cycle], gridded=False)) == {1, WINDOW_MEAN}
    # the window's mean by hand, horizon 1, one origin at a time
    v = np.random.default_rng(0).standard_normal((60, 2))
    v[5, 1] = np.nan
    by_hand = np.nanmean(
        [(v[t + 1] - np.nanmean(v[t - 9 : t + 1], axis=0)) ** 2 for t in range(9, 59)]
    )
    assert window_mean_mse([v], 10, [1]) == pytest.approx(by_hand)
    assert window_mean_mse([v[:5]], 10, [1]) == float("inf")  # too short
