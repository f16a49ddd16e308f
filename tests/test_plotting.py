"""Tests of darts_mim.plotting: figure layout, files written, clear errors."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from darts import TimeSeries

from darts_mim.grid import grid_to_series
from darts_mim.plotting import plot_cell_series, plot_error_by_horizon, plot_frames


def _frames(t=4, c=2, h=5, w=3, seed=0):
    return np.random.default_rng(seed).random((t, c, h, w)).astype(np.float32)


def test_plot_frames_layout_and_file(tmp_path):
    true, pred = _frames(seed=0), _frames(seed=1)
    path = tmp_path / "sub" / "frames.png"
    fig = plot_frames(true, pred, channel=1, path=path, title="t")
    # 3 rows (true, forecast, error) x 4 steps, plus one colour bar for the shared scale and one for
    # the error.
    assert len(fig.axes) == 3 * 4 + 2
    assert path.is_file() and path.stat().st_size > 1000
    images = [ax.images[0] for ax in fig.axes[:12]]
    # true and forecast share one colour scale, the truth's; the error row has its own, from 0.
    assert images[0].get_clim() == images[4].get_clim()
    assert images[0].get_clim() == (true[:, 1].min(), true[:, 1].max())
    assert images[8].get_clim()[0] == 0.0
    np.testing.assert_allclose(images[8].get_array(), np.abs(true[0, 1] - pred[0, 1]), rtol=1e-6)


def _shared_colorbar(fig):
    bars = [im.colorbar for ax in fig.axes for im in ax.images if im.colorbar is not None]
    assert len(bars) == 2  # true/forecast, error
    return bars[0]


def test_plot_frames_colour_scale_comes_from_the_truth():
    """A forecast far outside the observed range must not wash the truth out."""
    true = _frames(t=3, c=1) * 10.0  # in [0, 10)
    pred = true.copy()
    pred[0, 0, 0, 0] = -50.0  # a wild negative flow
    pred[1, 0, 0, 0] = 40.0
    fig = plot_frames(true, pred)
    images = [ax.images[0] for ax in fig.axes[:9]]
    lo, hi = float(true.min()), float(true.max())
    for im in images[:6]:  # the true row and the forecast row
        assert im.norm.vmin == pytest.approx(lo) and im.norm.vmax == pytest.approx(hi)
    # the clipped forecast values are flagged by pointed ends of the shared colour bar
    assert _shared_colorbar(fig).extend == "both"
    # the forecast row still holds the forecast's own values (clipped only in colour)
    assert images[3].get_array().min() == -50.0
    # the error row keeps its own scale, up to the largest error
    assert images[6].get_clim() == (0.0, pytest.approx(float(np.abs(true - pred).max())))


def test_plot_frames_extend_only_where_the_forecast_leaves_the_range():
    true = _frames(t=2, c=1)
    assert _shared_colorbar(plot_frames(true, true)).extend == "neither"
    assert _shared_colorbar(plot_frames(true, true + 5.0)).extend == "max"
    assert _shared_colorbar(plot_frames(true, true - 5.0)).extend == "min"
    # all-NaN truth (e.g. only land shown): a default scale, no crash
    nan = np.full_like(true, np.nan)
    fig = plot_frames(nan, true)
    assert fig.axes[0].images[0].get_clim() == (0.0, 1.0)


def test_plot_frames_max_steps_and_3d_input():
    fig = plot_frames(_frames(t=8)[:, 0], _frames(t=8, seed=2)[:, 0], max_steps=5)
    assert len(fig.axes) == 3 * 5 + 2


def test_plot_frames_errors():
    with pytest.raises(ValueError, match="same shape"):
        plot_frames(_frames(t=4), _frames(t=3))
    with pytest.raises(ValueError, match="channel=2 is out of range"):
        plot_frames(_frames(), _frames(), channel=2)
    with pytest.raises(ValueError, match=r"\(T, C, H, W\)"):
        plot_frames(np.zeros((4, 5)), np.zeros((4, 5)))


def test_plot_error_by_horizon(tmp_path):
    path = tmp_path / "err.png"
    fig = plot_error_by_horizon({"MIM": [1.0, 2.0, 3.0], "naive": np.array([2.0, 2.5])}, path)
    assert len(fig.axes) == 1
    lines = fig.axes[0].get_lines()
    assert [ln.get_label() for ln in lines] == ["MIM", "naive"]
    np.testing.assert_array_equal(lines[0].get_xdata(), [1, 2, 3])
    assert path.is_file()


def test_plot_error_by_horizon_errors():
    with pytest.raises(ValueError, match="empty"):
        plot_error_by_horizon({})
    with pytest.raises(ValueError, match="1-D"):
        plot_error_by_horizon({"m": np.zeros((2, 2))})


def _gridded(n=30, seed=0):
    times = pd.date_range("2024-01-01", periods=n, freq="30min")
    return grid_to_series(_frames(t=n, seed=seed), times, ["in", "out"])


def test_plot_cell_series(tmp_path):
    series = _gridded()
    history, future = series[:24], series[24:]
    forecasts = [future[:3], future[3:]]
    path = tmp_path / "cell.png"
    fig = plot_cell_series(history, forecasts, "out_r1_c2", path, truth=future)
    assert len(fig.axes) == 1
    # history, observed, and one line per forecast
    assert len(fig.axes[0].get_lines()) == 4
    np.testing.assert_allclose(
        fig.axes[0].get_lines()[0].get_ydata(), history["out_r1_c2"].values()[:, 0]
    )
    assert path.is_file()
    fig = plot_cell_series(history, future, 0)
    assert fig.axes[0].get_title() == "in_r0_c0"


def test_plot_cell_series_errors():
    series = TimeSeries.from_values(np.zeros((10, 2)), columns=["a", "b"])
    with pytest.raises(ValueError, match="No component 'c'"):
        plot_cell_series(series, series, "c")
    with pytest.raises(ValueError, match="out of range"):
        plot_cell_series(series, series, 5)
    with pytest.raises(ValueError, match="forecast 0 has no component 'a'"):  # was KeyError: 'a'
        plot_cell_series(series, series[["b"]], "a")


def test_plot_cell_series_draws_the_median_of_a_probabilistic_forecast():
    """values() of a forecast with samples is its first sample: one draw was shown as the forecast."""
    series = TimeSeries.from_values(np.zeros((10, 1)), columns=["a"])
    samples = np.arange(5.0)[None, None, :].repeat(3, axis=0)  # 3 steps, samples 0..4
    forecast = TimeSeries.from_times_and_values(pd.RangeIndex(10, 13), samples, columns=["a"])
    line = plot_cell_series(series, forecast, "a").axes[0].get_lines()[1]
    np.testing.assert_allclose(line.get_ydata(), [2.0, 2.0, 2.0])
    assert line.get_label() == "forecast (median of 5 samples)"
