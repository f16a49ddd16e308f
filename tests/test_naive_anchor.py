"""``naive_anchor``: the network forecasts the change from the naive forecast (issue 17, item 1).

An untrained anchored model (weights frozen with a zero learning rate) must be exactly the persistence
forecast, through every path a user takes: predict beyond the output chunk, likelihoods, covariates,
always-missing cells, instance norm, historical forecasts and ONNX.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_grid_series, tiny_kwargs
from darts.utils.likelihood_models.torch import (
    GaussianLikelihood,
    PoissonLikelihood,
    QuantileRegression,
)

from darts_mim import MIMModel, grid_to_series, series_to_grid

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
    model = MIMModel(**tiny_kwargs(tmp_path, **FROZEN)).fit(grid_series)
    assert not np.allclose(model.predict(3).values(), _persistence(grid_series, 3), atol=1e-3)


def test_instance_norm_and_covariates(tmp_path, grid_series):
    covariates = make_grid_series(channels=1, seed=4)
    model = _untrained(
        tmp_path,
        grid_series,
        use_reversible_instance_norm=True,
        input_window_loss=True,
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
    for q in range(3):
        np.testing.assert_allclose(params[..., q], _persistence(grid_series, 3), atol=1e-6)


def test_likelihood_without_a_location_is_refused():
    with pytest.raises(ValueError, match=r"naive_anchor=True needs .* PoissonLikelihood"):
        MIMModel(6, 3, naive_anchor=True, likelihood=PoissonLikelihood())


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
