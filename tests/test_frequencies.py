"""Backtests on the time indexes users have: daily, hourly, 30-minute, weekly, monthly, integer.

Darts' ``historical_forecasts``/``backtest`` do time-index arithmetic (``n_steps_between``, start
positions, forecast indexes) that depends on the pandas offset of the series. pandas 3 changed
``Day`` from a fixed ``Tick`` into a calendar offset and Darts 0.48.1 then fails on every daily
series (``TypeError: unsupported operand type(s) for //: 'Timedelta' and ... Day``), for Darts' own
models as well as ours. These tests run a tiny :class:`~darts_mim.MIMModel` and a Darts baseline
through that path on each frequency, so a pandas or Darts upgrade that breaks one fails here.

The models are fitted once per layout (a plain univariate series and a small grid) on a daily series
and then backtested, without retraining, on series of every frequency: a global model does not
depend on the time index, and fitting once keeps the module at a few seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_grid_series, tiny_kwargs
from darts import TimeSeries
from darts.metrics import mae, rmse
from darts.models import NaiveDrift

from darts_mim import MIMModel
from darts_mim.grid import GRID_KEY

N_STEPS = 30
START_POS = 20  # the first forecast starts at this position: >= input_chunk_length (6)
HORIZON = 4  # > output_chunk_length (3), so the autoregressive path runs too

# (test id, pandas freq or None for a RangeIndex, first timestamp)
FREQUENCIES = [
    ("daily", "D", "2024-01-01"),
    ("hourly", "h", "2024-01-01"),
    ("30min", "30min", "2024-01-01 00:30"),
    ("weekly", "W", "2024-01-07"),
    ("month-start", "MS", "2020-01-01"),
    ("month-end", "ME", "2020-01-31"),
    ("range-index", None, None),
]
FREQ_PARAMS = [pytest.param(freq, start, id=name) for name, freq, start in FREQUENCIES]
LAYOUTS = ["univariate", "grid"]


def make_series(layout: str, freq: str | None, start: str | None) -> TimeSeries:
    """A ``N_STEPS`` long series of ``layout`` on the given time index.

    Parameters
    ----------
    layout
        ``"univariate"`` (one plain component) or ``"grid"`` (2 channels on 2 x 3 cells).
    freq, start
        pandas frequency and first timestamp; ``freq=None`` gives a ``RangeIndex``.
    """
    grid = make_grid_series(n_steps=N_STEPS, channels=2, height=2, width=3)
    if layout == "univariate":
        values = grid.values(copy=False)[:, :1]
        series = TimeSeries.from_values(values, columns=["y"])
    else:
        series = grid
    if freq is None:
        return series.with_times_and_values(pd.RangeIndex(N_STEPS), series.values(copy=False))
    times = pd.date_range(start, periods=N_STEPS, freq=freq)
    return series.with_times_and_values(times, series.values(copy=False))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One tiny MIMModel per layout, fitted on the daily series (fitting is the slow part)."""
    models = {}
    for layout in LAYOUTS:
        model = MIMModel(**tiny_kwargs(tmp_path_factory.mktemp(layout)))
        model.fit(make_series(layout, "D", "2024-01-01"), verbose=False)
        models[layout] = model
    return models


def check_forecasts(forecasts: list[TimeSeries], series: TimeSeries) -> None:
    """Every forecast of a stride-1 backtest from ``START_POS`` has the right index and values."""
    n_expected = N_STEPS - START_POS - HORIZON + 1
    assert len(forecasts) == n_expected, f"{len(forecasts)} forecasts, expected {n_expected}"
    for i, fc in enumerate(forecasts):
        expected_index = series.time_index[START_POS + i : START_POS + i + HORIZON]
        assert len(fc) == HORIZON
        assert fc.time_index.equals(expected_index), (
            f"forecast {i} has index {list(fc.time_index)}, expected {list(expected_index)}"
        )
        assert fc.freq == series.freq, f"forecast {i} has freq {fc.freq}, series {series.freq}"
        assert fc.components.equals(series.components)
        assert np.isfinite(fc.values(copy=False)).all(), f"forecast {i} has non-finite values"
    assert forecasts[-1].end_time() == series.end_time()


def check_metrics(scores) -> None:
    """``backtest(metric=[mae, rmse])`` gives one finite, non-negative score per metric."""
    scores = np.asarray(scores, dtype=float)
    assert scores.shape == (2,), scores
    assert np.isfinite(scores).all() and (scores >= 0).all(), scores
    # the RMSE of the same errors is never below their MAE
    assert scores[1] >= scores[0] - 1e-6, scores


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("freq", "start"), FREQ_PARAMS)
def test_mim_backtest(fitted, layout, freq, start):
    model = fitted[layout]
    series = make_series(layout, freq, start)
    start_time = series.time_index[START_POS]
    kwargs = dict(start=start_time, forecast_horizon=HORIZON, retrain=False, verbose=False)

    forecasts = model.historical_forecasts(series, last_points_only=False, **kwargs)
    check_forecasts(forecasts, series)
    if layout == "grid":
        # the grid travels with the forecasts, so they convert back with series_to_grid()
        assert all(GRID_KEY in (fc.metadata or {}) for fc in forecasts)

    # last_points_only=True: one series of the last point of each forecast, at the series' freq
    last = model.historical_forecasts(series, last_points_only=True, **kwargs)
    assert last.time_index.equals(series.time_index[START_POS + HORIZON - 1 :])
    assert last.freq == series.freq

    check_metrics(model.backtest(series, metric=[mae, rmse], **kwargs))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("freq", "start"), FREQ_PARAMS)
def test_darts_baseline_backtest(layout, freq, start):
    # Darts' own model on the same path: tells a Darts/pandas problem apart from one of ours.
    # NaiveDrift is a local model, which Darts backtests only with retrain=True.
    series = make_series(layout, freq, start)
    kwargs = dict(
        start=series.time_index[START_POS], forecast_horizon=HORIZON, retrain=True, verbose=False
    )
    forecasts = NaiveDrift().historical_forecasts(series, last_points_only=False, **kwargs)
    check_forecasts(forecasts, series)
    check_metrics(NaiveDrift().backtest(series, metric=[mae, rmse], **kwargs))
