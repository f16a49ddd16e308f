"""``naive_anchor="combined"``: a per-lead least-squares combination of naive forecasts as the start."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_grid_series, tiny_kwargs
from darts import TimeSeries
from darts.utils.likelihood_models.torch import PoissonLikelihood, QuantileRegression

from darts_mim import MIMModel
from darts_mim.naive_combination import (
    NaiveCombination,
    candidate_rows,
    fit_naive_combination,
    seasonal_rows,
)


def _hourly(values: np.ndarray) -> TimeSeries:
    index = pd.date_range("2024-01-01", periods=len(values), freq="h")
    return TimeSeries.from_times_and_values(index, values.astype(np.float32))


def _frozen(tmp_path, **overrides) -> dict:
    """A model whose weights stay where they start (lr 0): its forecast is its start."""
    return tiny_kwargs(tmp_path, naive_anchor="combined", optimizer_kwargs={"lr": 0.0}, **overrides)


def test_candidate_rows_are_the_naive_forecasts():
    window = np.array([1.0, 2.0, 4.0, 3.0, 5.0, 6.0])
    rows = candidate_rows(6, 4, periods=[2])
    np.testing.assert_array_equal(rows["persistence"] @ window, [6, 6, 6, 6])
    np.testing.assert_array_equal(rows["the seasonal naive (2 steps)"] @ window, [5, 6, 5, 6])
    np.testing.assert_allclose(rows["the window's mean"] @ window, np.full(4, 3.5))
    np.testing.assert_allclose(rows["drift"] @ window, [7, 8, 9, 10])  # slope (6 - 1) / 5
    # a period the window cannot hold is no candidate
    assert "the seasonal naive (8 steps)" not in candidate_rows(6, 4, periods=[8])


def test_fit_forecasts_a_daily_cycle_from_persistence():
    # a pure daily cycle, anchored on persistence: the combination makes it the seasonal naive
    t = np.arange(400)
    values = np.sin(2 * np.pi * t / 24)[:, None] + 2.0
    fitted = fit_naive_combination([values[:300]], 48, 12, anchor_lag=1, periods=[24])
    window, truth = values[300:348, 0], values[348:360, 0]
    persistence = seasonal_rows(48, 12, 1) @ window
    combined = persistence + fitted.matrix @ window + fitted.offset[:, 0]
    np.testing.assert_allclose(combined, truth, atol=0.02)
    assert np.abs(persistence - truth).max() > 1.0  # what the anchor alone forecasts


def test_fit_round_trips_through_a_dict():
    rng = np.random.default_rng(0)
    fitted = fit_naive_combination([rng.normal(size=(200, 3))], 12, 4, anchor_lag=1)
    again = NaiveCombination.from_dict(fitted.to_dict())
    np.testing.assert_array_equal(again.matrix, fitted.matrix)
    np.testing.assert_array_equal(again.offset, fitted.offset)
    assert again.candidates == fitted.candidates


def test_fit_skips_missing_values_and_refuses_short_series():
    values = np.sin(np.arange(300) / 5.0)[:, None] + 1.0
    values[50:60] = np.nan
    fitted = fit_naive_combination([values], 12, 4, anchor_lag=1)
    assert np.isfinite(fitted.matrix).all() and np.isfinite(fitted.offset).all()
    with pytest.raises(ValueError, match="none has the 16 steps"):
        fit_naive_combination([values[:10]], 12, 4, anchor_lag=1)


def test_untrained_model_forecasts_the_combination(tmp_path):
    # a straight line: the drift line is exact, and the untrained model is the combination
    series = _hourly(0.01 * np.arange(300) + 1.0)
    model = MIMModel(**_frozen(tmp_path, input_chunk_length=48, output_chunk_length=12))
    model.fit(series[:250])
    assert "least-squares combination" in str(model.config)
    forecast = model.predict(12, series=series[:250]).values()[:, 0]
    np.testing.assert_allclose(forecast, series.values()[250:262, 0], atol=1e-3)


def test_untrained_model_matches_a_numpy_combination_on_a_grid(tmp_path):
    grid = make_grid_series(n_steps=80, channels=1, height=3, width=4)
    model = MIMModel(**_frozen(tmp_path))
    model.fit(grid)
    fitted = NaiveCombination.from_dict(model.config.naive_combination)
    window = grid.values()[-6:]  # (icl, D)
    persistence = np.repeat(window[-1:], 3, axis=0)  # "auto" anchors this grid on persistence
    expected = persistence + fitted.matrix @ window + fitted.offset
    forecast = model.predict(3, series=grid).values()
    np.testing.assert_allclose(forecast, expected, rtol=1e-4, atol=1e-4)


def test_combination_without_climatology_under_instance_norm(tmp_path):
    rng = np.random.default_rng(1)
    series = _hourly(np.cumsum(rng.normal(size=(200, 3)), axis=0))
    model = MIMModel(**_frozen(tmp_path, use_reversible_instance_norm=True))
    model.fit(series)
    # the training mean is not a function of the normalised window: left out
    assert "training mean" not in model.config.naive_combination["candidates"]
    assert np.isfinite(model.predict(3, series=series).values()).all()


def test_combined_round_trips_save_load_and_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    from darts_mim.onnx import OnnxForecaster

    series = _hourly(np.sin(np.arange(200) / 4.0) + 0.01 * np.arange(200))
    model = MIMModel(**tiny_kwargs(tmp_path, n_epochs=2, naive_anchor="combined"))
    model.fit(series)
    expected = model.predict(5, series=series)
    path = tmp_path / "model.pt"
    model.save(path)
    loaded = MIMModel.load(path)
    assert loaded.config.naive_combination == model.config.naive_combination
    np.testing.assert_array_equal(loaded.predict(5, series=series).values(), expected.values())
    model.to_onnx(tmp_path / "model.onnx")
    served = OnnxForecaster(tmp_path / "model.onnx").predict(5, series=series)
    np.testing.assert_allclose(served.values(), expected.values(), atol=1e-4)


def test_combined_moves_every_quantile(tmp_path):
    series = _hourly(np.sin(np.arange(120) / 3.0))
    likelihood = QuantileRegression([0.1, 0.5, 0.9])
    model = MIMModel(**tiny_kwargs(tmp_path, naive_anchor="combined", likelihood=likelihood))
    model.fit(series)
    assert model.model._location_mask.tolist() == [1.0, 1.0, 1.0]


def test_combined_refuses_a_likelihood_without_location(tmp_path):
    with pytest.raises(ValueError, match="PoissonLikelihood"):
        MIMModel(**tiny_kwargs(tmp_path, naive_anchor="combined", likelihood=PoissonLikelihood()))


def test_fit_thins_origins_to_its_value_budget():
    rng = np.random.default_rng(2)
    values = [rng.normal(size=(2000, 5))]
    full = fit_naive_combination(values, 24, 6, anchor_lag=1)
    thinned = fit_naive_combination(values, 24, 6, anchor_lag=1, max_values=30 * 5 * 30)
    assert thinned.matrix.shape == full.matrix.shape and np.isfinite(thinned.matrix).all()
    assert not np.allclose(thinned.matrix, full.matrix)  # fewer origins, other weights


def test_fit_refuses_no_values():
    with pytest.raises(ValueError, match="exposes none"):
        fit_naive_combination([], 12, 4, anchor_lag=1)
