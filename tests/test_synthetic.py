"""The synthetic grids of darts_mim.datasets.synthetic: shapes, seeds, and the physics of each kind."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from darts_mim import series_to_grid
from darts_mim.datasets import (
    SYNTHETIC_KINDS,
    advection,
    blobs_growth_decay,
    diffusion,
    linear_trend,
    seasonality,
    synthetic_grid,
)
from darts_mim.grid import grid_spec_of


def frames(series) -> np.ndarray:
    """``(T, H, W)`` float64 values of a one-channel synthetic grid."""
    return series_to_grid(series)[:, 0].astype(np.float64)


@pytest.mark.parametrize("kind", SYNTHETIC_KINDS)
def test_shape_index_and_grid(kind: str) -> None:
    series = synthetic_grid(kind, n_steps=50, height=6, width=9, seed=3)
    assert series_to_grid(series).shape == (50, 1, 6, 9)
    spec = grid_spec_of(series)
    assert spec.channels == (kind,) and (spec.height, spec.width) == (6, 9)
    assert isinstance(series.time_index, pd.DatetimeIndex) and series.freq == pd.Timedelta("1h")
    assert series.dtype == np.float32 and np.isfinite(series.values()).all()


@pytest.mark.parametrize("kind", SYNTHETIC_KINDS)
def test_seeds(kind: str) -> None:
    a = frames(synthetic_grid(kind, n_steps=60, height=8, width=8, seed=1))
    b = frames(synthetic_grid(kind, n_steps=60, height=8, width=8, seed=1))
    c = frames(synthetic_grid(kind, n_steps=60, height=8, width=8, seed=2))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 0.05
    # the clean field does not depend on the noise level: only the noise differs
    clean = frames(synthetic_grid(kind, n_steps=60, height=8, width=8, seed=1, noise=0.0))
    assert 0.03 < np.std(a - clean) < 0.07  # default noise 0.05


def test_advection_moves_the_field_by_the_velocity() -> None:
    series, params = advection(
        80, 16, 12, velocity=(1.0, 0.5), noise=0.05, seed=4, return_params=True
    )
    u = frames(series)
    assert params["velocity"] == (1.0, 0.5)
    for t, k in ((0, 2), (10, 6), (40, 20)):
        shifted = np.roll(u[t], (int(k * 1.0), int(k * 0.5)), axis=(0, 1))
        # both frames carry noise of sd 0.05: the difference has sd 0.05 * sqrt(2)
        assert np.sqrt(np.mean((u[t + k] - shifted) ** 2)) < 0.1
        assert np.sqrt(np.mean((u[t + k] - u[t]) ** 2)) > 0.3  # it really moved
    clean = frames(advection(30, 16, 12, velocity=(1.0, 0.5), noise=0.0, seed=4))
    np.testing.assert_allclose(clean[4], np.roll(clean[0], (4, 2), axis=(0, 1)), atol=1e-5)


def test_diffusion_follows_the_heat_equation() -> None:
    kappa = 0.2
    free, params = diffusion(
        40,
        12,
        12,
        diffusivity=kappa,
        damping=0.0,
        forcing=0.0,
        noise=0.0,
        seed=5,
        return_params=True,
    )
    u = frames(free)
    np.testing.assert_allclose(u[0], params["u0"], atol=1e-5)
    lap = (
        np.roll(u[:-1], 1, 1)
        + np.roll(u[:-1], -1, 1)
        + np.roll(u[:-1], 1, 2)
        + np.roll(u[:-1], -1, 2)
        - 4 * u[:-1]
    )
    np.testing.assert_allclose(u[1:], u[:-1] + kappa * lap, atol=1e-4)
    mass = u.sum(axis=(1, 2))
    np.testing.assert_allclose(mass, mass[0], rtol=1e-4)  # no damping, no sources: heat conserved
    spread = u.std(axis=(1, 2))
    assert np.all(np.diff(spread) <= 1e-6) and spread[-1] < 0.7 * spread[0]  # it smooths out
    # with the default damping and sources it neither dies out nor blows up
    forced = frames(diffusion(600, 12, 12, noise=0.0, seed=5))
    late = forced[-100:].std(axis=(1, 2)).mean()
    assert 0.2 * forced[:20].std(axis=(1, 2)).mean() < late and np.abs(forced).max() < 20


def test_linear_trend_slopes_are_recovered() -> None:
    series, params = linear_trend(300, 8, 8, noise=0.05, seed=6, return_params=True)
    u = frames(series).reshape(300, -1)
    t = np.arange(300.0)
    slope, intercept = np.polyfit(t, u, 1)
    # the least-squares slope's standard error is 0.05 / sqrt(sum((t - mean t)^2)) ~ 1e-5
    np.testing.assert_allclose(slope, params["slope"].ravel(), atol=1e-4)
    np.testing.assert_allclose(intercept, params["intercept"].ravel(), atol=0.03)
    assert np.std(params["slope"]) == pytest.approx(0.004, rel=1e-6)
    assert (params["slope"] > 0).any() and (params["slope"] < 0).any()


def test_seasonality_has_the_daily_period() -> None:
    series, params = seasonality(24 * 20, 8, 8, noise=0.05, seed=7, return_params=True)
    u = frames(series).reshape(24 * 20, -1)

    def autocorr(lag: int) -> float:
        x = u - u.mean(axis=0)
        return float(np.mean(np.sum(x[lag:] * x[:-lag], 0) / np.sum(x * x, 0)))

    assert autocorr(24) > 0.9 and autocorr(12) < -0.8
    # the phase differs across cells: peaks are not all at the same hour
    peak_hour = np.argmax(u[:24], axis=0)
    assert len(np.unique(peak_hour)) > 4
    assert params["amplitude"].min() > 0


def test_blobs_grow_and_decay() -> None:
    series, params = blobs_growth_decay(
        200, 24, 24, rate=0.05, noise=0.0, seed=8, return_params=True
    )
    u = frames(series)
    blobs = params["blobs"]
    assert len(blobs) > 3 and u.min() > -1e-6  # non-negative without noise
    # the total mass is the sum of the living blobs' Gaussian integrals, 2 pi A(t) sigma(t)^2
    expected = np.zeros(200)
    for b in blobs:
        age = np.arange(200) - b["t0"]
        alive = (age >= 0) & (age <= b["lifetime"])
        frac = age[alive] / b["lifetime"]
        sigma = b["sigma0"] * (1 + frac)
        expected[alive] += 2 * np.pi * b["amplitude"] * np.sin(np.pi * frac) * sigma**2
    np.testing.assert_allclose(u.sum(axis=(1, 2)), expected, rtol=0.02, atol=1e-3)
    # a blob peaks at its centre mid-life, higher than when it was born or dies
    b = next(b for b in blobs if b["t0"] >= 0 and b["t0"] + b["lifetime"] < 200)
    cy, cx = int(round(b["cy"])) % 24, int(round(b["cx"])) % 24
    cell = u[:, cy, cx]
    mid = b["t0"] + b["lifetime"] // 2
    assert cell[mid] > cell[b["t0"]] + 0.2 and cell[mid] > cell[b["t0"] + b["lifetime"]] + 0.2


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown synthetic kind"):
        synthetic_grid("tornado")
    with pytest.raises(ValueError, match="diffusivity"):
        diffusion(10, 4, 4, diffusivity=0.3)
    with pytest.raises(ValueError, match="noise"):
        seasonality(10, 4, 4, noise=-1.0)
    with pytest.raises(ValueError, match="at least 2x2"):
        linear_trend(10, 1, 4)
    with pytest.raises(ValueError, match="lifetime"):
        blobs_growth_decay(10, 4, 4, lifetime=(5, 2))
