"""Tests of darts_mim.evaluation: the error metrics shared by the demo, the CLI and benchmarks."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from darts import TimeSeries

from darts_mim.evaluation import forecast_windows, mae, rmse, rmse_by_step


def _arrays(seed: int = 0, shape=(3, 4, 5)):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape), rng.normal(size=shape)


def test_metrics_match_the_formulas_the_demo_used():
    pred, true = _arrays()
    diff = pred - true
    assert rmse(pred, true) == pytest.approx(np.sqrt(np.mean(diff**2)))
    assert mae(pred, true) == pytest.approx(np.mean(np.abs(diff)))
    np.testing.assert_allclose(rmse_by_step(pred, true), np.sqrt(np.mean(diff**2, axis=(0, 2))))
    assert isinstance(rmse(pred, true), float) and isinstance(mae(pred, true), float)
    np.testing.assert_allclose(mae(pred, true, axis=0), np.mean(np.abs(diff), axis=0))


def test_nan_positions_are_left_out_like_the_cli_did():
    pred, true = _arrays()
    pred[:, :, 1] = np.nan  # an always-missing cell, forecast as NaN
    true[0, 0, 0] = np.nan  # a missing observation
    diff = pred - true
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rmse(pred, true) == pytest.approx(np.sqrt(np.nanmean(diff**2)))
        assert mae(pred, true) == pytest.approx(np.nanmean(np.abs(diff)))
        np.testing.assert_allclose(
            rmse_by_step(pred, true), np.sqrt(np.nanmean(diff**2, axis=(0, 2)))
        )


def test_no_observation_gives_nan_without_warning():
    pred, true = _arrays(shape=(1, 2, 2))
    true[:] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "Mean of empty slice" would fail here
        assert np.isnan(rmse(pred, true)) and np.isnan(mae(pred, true))
        assert np.all(np.isnan(rmse_by_step(pred, true)))


def test_a_diverged_forecast_is_not_hidden():
    pred, true = _arrays(shape=(1, 2, 2))
    pred[0, 0, 0] = np.inf
    assert rmse(pred, true) == np.inf and mae(pred, true) == np.inf


def test_shape_errors():
    with pytest.raises(ValueError, match="same shape"):
        rmse(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"\(windows, horizon, components\)"):
        rmse_by_step(np.zeros((2, 3)), np.zeros((2, 3)))


def _series(n: int = 10, components: int = 2) -> TimeSeries:
    values = np.arange(n * components, dtype=np.float32).reshape(n, components)
    return TimeSeries.from_times_and_values(pd.date_range("2024", periods=n, freq="h"), values)


def test_forecast_windows_stacks_forecasts_and_truth():
    series = _series()
    forecasts = [series[4:7] + 1.0, series[7:10] - 2.0]
    pred, true = forecast_windows(forecasts, series)
    assert pred.shape == true.shape == (2, 3, 2) and pred.dtype == true.dtype == np.float64
    np.testing.assert_array_equal(true[1], series[7:10].values())
    np.testing.assert_array_equal(pred - true, np.stack([np.ones((3, 2)), -2 * np.ones((3, 2))]))
    assert mae(pred, true) == pytest.approx(1.5)


def test_forecast_windows_errors():
    series = _series()
    with pytest.raises(ValueError, match="empty"):
        forecast_windows([], series)
    beyond = TimeSeries.from_times_and_values(
        pd.date_range(series.end_time(), periods=3, freq="h"), np.zeros((3, 2), dtype=np.float32)
    )
    with pytest.raises(ValueError, match="covers 1 of the 3 steps"):
        forecast_windows([beyond], series)
    stochastic = TimeSeries.from_times_and_values(series.time_index[:3], np.zeros((3, 2, 5)))
    with pytest.raises(ValueError, match="5 samples"):
        forecast_windows([stochastic], series)
    with pytest.raises(ValueError, match="forecast 1 has 2 steps, forecast 0 3"):  # was numpy's
        forecast_windows([series[4:7], series[7:9]], series)
    positions = TimeSeries.from_values(series[4:7].values())  # a RangeIndex: Darts' IndexError
    with pytest.raises(ValueError, match="forecast 0 is indexed by integer positions, the series"):
        forecast_windows([positions], series)


def test_forecast_windows_refuses_components_in_another_order():
    """A forecast of ["b", "a"] was scored column by column against ["a", "b"] (b against a)."""
    series = _series().with_columns_renamed(["0", "1"], ["a", "b"])
    swapped = series[4:7][["b", "a"]]
    with pytest.raises(ValueError, match=r"component 'b' is at another position"):
        forecast_windows([swapped], series)
    pred, true = forecast_windows([swapped], series[["b", "a"]])
    assert rmse(pred, true) == 0.0
    # other names altogether (forecast.quantile(0.5) names them "a_q0.500") are compared in order
    median = series[4:7].with_columns_renamed(["a", "b"], ["a_q0.500", "b_q0.500"])
    assert rmse(*forecast_windows([median], series)) == 0.0


def test_evaluation_imports_no_torch():
    code = "import sys, darts_mim.evaluation; print('torch' in sys.modules)"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
