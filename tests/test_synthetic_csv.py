"""The plain synthetic series of the benchmarks: a newcomer's hourly CSV and an SOI-like monthly index."""

from __future__ import annotations

import numpy as np
import pytest

from darts_mim.datasets import load_csv_series
from darts_mim.datasets.synthetic import synthetic_hourly_csv, synthetic_mean_reverting_monthly


def _autocorr(x: np.ndarray, lag: int) -> float:
    x = x - x.mean()
    return float(np.dot(x[:-lag], x[lag:]) / np.dot(x, x))


def test_hourly_csv_shape_seed_and_round_trip(tmp_path) -> None:
    series = synthetic_hourly_csv()
    assert len(series) == 90 * 24 and series.freq_str == "h"
    assert list(series.components) == ["load", "temperature", "price"]
    assert series.dtype == np.float32 and np.isfinite(series.values()).all()
    same, other = synthetic_hourly_csv(seed=0), synthetic_hourly_csv(seed=1)
    np.testing.assert_array_equal(series.values(), same.values())
    assert not np.allclose(series.values(), other.values())
    # as a CSV a newcomer would write and read back
    path = tmp_path / "mine.csv"
    series.to_dataframe().to_csv(path, index_label="time")
    back = load_csv_series(path)
    assert list(back.components) == ["load", "temperature", "price"] and len(back) == len(series)
    np.testing.assert_allclose(back.values(), series.values(), rtol=1e-6)


def test_hourly_csv_has_its_cycles() -> None:
    load, temperature, price = synthetic_hourly_csv(days=84, seed=0).values().T  # 12 weeks
    assert _autocorr(load, 24) > 0.5 and _autocorr(load, 12) < 0  # daily cycle
    assert _autocorr(load, 168) > _autocorr(load, 72)  # weekly cycle
    weekday, weekend = load.reshape(-1, 7 * 24)[:, :120], load.reshape(-1, 7 * 24)[:, 120:]
    assert weekend.mean() < 0.85 * weekday.mean()
    assert load[-24 * 7 :].mean() > load[: 24 * 7].mean()  # upward trend
    # temperature: daily cycle on a random walk (differences of a day apart stay small)
    assert _autocorr(np.diff(temperature), 24) > 0.0
    by_hour = temperature.reshape(-1, 24).mean(axis=0)
    assert 12 <= int(np.argmax(by_hour)) <= 18
    # price: mean-reverting with spikes well above the usual spread
    deviation = price - np.median(price)
    assert _autocorr(price, 1) > 0.7 and abs(_autocorr(price, 240)) < 0.3
    assert (deviation > 4 * np.std(deviation[deviation < 10])).sum() >= 5


def test_mean_reverting_monthly_has_no_season() -> None:
    series = synthetic_mean_reverting_monthly()
    values = series.univariate_values()
    assert len(series) == 840 and series.freq_str == "MS" and series.n_components == 1
    assert abs(values.mean()) < 0.3 and 0.8 < values.std() < 1.4
    assert _autocorr(values, 1) > 0.4 and abs(_autocorr(values, 12)) < 0.15
    by_month = values.reshape(-1, 12).mean(axis=0)
    assert by_month.std() < 0.25  # no yearly season
    np.testing.assert_array_equal(
        values, synthetic_mean_reverting_monthly(seed=0).univariate_values()
    )


@pytest.mark.parametrize(
    ("make", "bad"),
    [(synthetic_hourly_csv, {"days": 1}), (synthetic_mean_reverting_monthly, {"years": 1.5})],
)
def test_bad_lengths(make, bad) -> None:
    with pytest.raises(ValueError, match="integer >= 2"):
        make(**bad)
