"""Seeded synthetic grids with known dynamics, for checking a model on data nobody tuned it for.

Every generator returns a gridded ``TimeSeries`` of shape ``(T, 1, H, W)`` (one channel named after the
kind, see :func:`darts_mim.grid_to_series`) on an hourly ``DatetimeIndex`` by default:

* :func:`advection`: a smooth periodic field moving with a constant velocity (periodic boundary);
* :func:`diffusion`: the damped heat equation from random initial bumps, driven by slowly pulsing
  sources so that it does not die out;
* :func:`linear_trend`: a per-cell straight line (smooth intercepts and slopes);
* :func:`seasonality`: a daily cycle whose phase and amplitude depend on the cell;
* :func:`blobs_growth_decay`: Gaussian blobs that appear at random places and times, grow, then decay.

Two plain (non-gridded) series stand in for data a newcomer brings: :func:`synthetic_hourly_csv`
(load, temperature and price, hourly, as one would read from a CSV of one's own) and
:func:`synthetic_mean_reverting_monthly` (a noisy monthly index without a yearly season, like the
Southern Oscillation index).

:func:`synthetic_grid` dispatches on the kind's name (:data:`SYNTHETIC_KINDS`). All are deterministic by
``seed``; ``noise`` is the standard deviation of Gaussian observation noise added to the clean field
(whose values are of order 1). The clean field and the noise come from separate random streams, so
the same ``seed`` gives the same clean field whatever ``noise`` is. ``return_params=True`` also returns
the true parameters (velocity, slopes, phases, blob catalogue, ...) for checks against the truth.

Examples
--------
>>> from darts_mim import series_to_grid
>>> from darts_mim.datasets import synthetic_grid
>>> series = synthetic_grid("advection", n_steps=100, height=16, width=16, seed=1)
>>> series_to_grid(series).shape
(100, 1, 16, 16)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from darts import TimeSeries

from ..grid import grid_to_series

__all__ = [
    "SYNTHETIC_KINDS",
    "advection",
    "blobs_growth_decay",
    "diffusion",
    "linear_trend",
    "seasonality",
    "synthetic_grid",
    "synthetic_hourly_csv",
    "synthetic_mean_reverting_monthly",
]

SYNTHETIC_KINDS = ("advection", "diffusion", "linear_trend", "seasonality", "blobs_growth_decay")
"""The kinds :func:`synthetic_grid` knows, in the order of the benchmarks' tables."""


# ---------------------------------------------------------------------------------------------------
# shared helpers


def _check_sizes(n_steps: int, height: int, width: int, noise: float) -> None:
    if n_steps < 2 or height < 2 or width < 2:
        raise ValueError(
            f"need n_steps >= 2 and a grid of at least 2x2, got n_steps={n_steps}, "
            f"height={height}, width={width}."
        )
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise}.")


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for the clean field and for the observation noise."""
    signal, noise = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(signal), np.random.default_rng(noise)


def _cosine_modes(
    rng: np.random.Generator, n_modes: int = 6
) -> list[tuple[int, int, float, float]]:
    """``n_modes`` random low-wavenumber cosines ``(ky, kx, amplitude, phase)``, wavenumbers in
    -2..2 (never both 0)."""
    modes = []
    for _ in range(n_modes):
        ky, kx = (int(k) for k in rng.integers(-2, 3, size=2))
        if ky == 0 and kx == 0:
            kx = 1
        modes.append((ky, kx, float(rng.normal()), float(rng.uniform(0, 2 * np.pi))))
    return modes


def _sum_modes(modes, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The sum of the cosines at positions ``y``, ``x`` given as fractions of the grid's size."""
    return sum(amp * np.cos(2 * np.pi * (ky * y + kx * x) + phase) for ky, kx, amp, phase in modes)


def _smooth_field(
    rng: np.random.Generator, height: int, width: int, n_modes: int = 6
) -> np.ndarray:
    """A smooth periodic ``(H, W)`` field of zero mean and unit standard deviation: a sum of
    ``n_modes`` random low-wavenumber cosines."""
    y = np.arange(height)[:, None] / height
    x = np.arange(width)[None, :] / width
    field = _sum_modes(_cosine_modes(rng, n_modes), y, x) + np.zeros((height, width))
    field -= field.mean()
    return field / (field.std() + 1e-12)


def _periodic_gaussian(
    height: int, width: int, cy: float, cx: float, sigma: float | np.ndarray
) -> np.ndarray:
    """Gaussian bump(s) centred at ``(cy, cx)`` on a periodic grid (shortest wrapped distance).

    ``sigma`` may be an array ``(T,)``: the result is then ``(T, H, W)``.
    """
    dy = np.arange(height)[:, None] - cy
    dx = np.arange(width)[None, :] - cx
    dy = (dy + height / 2) % height - height / 2
    dx = (dx + width / 2) % width - width / 2
    r2 = dy**2 + dx**2
    s = np.asarray(sigma, dtype=float)[..., None, None]
    return np.exp(-r2 / (2 * s**2))


def _to_series(
    clean: np.ndarray,
    noise: float,
    noise_rng: np.random.Generator,
    kind: str,
    start: str | pd.Timestamp,
    freq: str,
) -> TimeSeries:
    values = clean + noise * noise_rng.standard_normal(clean.shape)
    index = pd.date_range(start, periods=clean.shape[0], freq=freq)
    return grid_to_series(values[:, None].astype(np.float32), index, [kind])


def _laplacian(u: np.ndarray) -> np.ndarray:
    """Five-point Laplacian of the last two axes, periodic boundary."""
    return np.roll(u, 1, -2) + np.roll(u, -1, -2) + np.roll(u, 1, -1) + np.roll(u, -1, -1) - 4 * u


# ---------------------------------------------------------------------------------------------------
# the kinds


def advection(
    n_steps: int = 600,
    height: int = 16,
    width: int = 16,
    *,
    velocity: tuple[float, float] = (0.5, 0.25),
    noise: float = 0.05,
    seed: int = 0,
    start: str | pd.Timestamp = "2024-01-01",
    freq: str = "h",
    return_params: bool = False,
) -> TimeSeries | tuple[TimeSeries, dict]:
    """A smooth field moving with a constant velocity over a periodic domain.

    The field is a sum of random low-wavenumber cosines (zero mean, unit standard deviation), evaluated
    exactly at every step: ``u(t, y, x) = u0(y - vy t, x - vx t)``, so frame ``t + k`` is frame ``t``
    shifted by ``k * velocity`` cells (an exact ``numpy.roll`` when that shift is whole).

    Parameters
    ----------
    n_steps, height, width
        Number of time steps and grid size.
    velocity
        ``(vy, vx)``, cells per time step along the rows and the columns.
    noise
        Standard deviation of the additive Gaussian observation noise.
    seed
        Seed of the field and of the noise.
    start, freq
        First time stamp and step of the ``DatetimeIndex`` (default hourly from 2024-01-01).
    return_params
        Also return ``{"velocity": (vy, vx), "modes": [(ky, kx, amplitude, phase), ...]}``.

    Returns
    -------
    TimeSeries or tuple[TimeSeries, dict]
        A gridded series of ``height * width`` components (one channel, ``"advection"``).
    """
    _check_sizes(n_steps, height, width, noise)
    rng, noise_rng = _streams(seed)
    vy, vx = (float(v) for v in velocity)
    t = np.arange(n_steps)[:, None, None]
    y = (np.arange(height)[None, :, None] - vy * t) / height  # where each cell's value started
    x = (np.arange(width)[None, None, :] - vx * t) / width
    modes = _cosine_modes(rng)
    clean = _sum_modes(modes, y, x)
    clean = (clean - clean.mean()) / (clean.std() + 1e-12)
    series = _to_series(clean, noise, noise_rng, "advection", start, freq)
    return (series, {"velocity": (vy, vx), "modes": modes}) if return_params else series


def diffusion(
    n_steps: int = 600,
    height: int = 16,
    width: int = 16,
    *,
    diffusivity: float = 0.2,
    damping: float = 0.02,
    forcing: float = 0.05,
    n_bumps: int = 6,
    n_sources: int = 4,
    noise: float = 0.05,
    seed: int = 0,
    start: str | pd.Timestamp = "2024-01-01",
    freq: str = "h",
    return_params: bool = False,
) -> TimeSeries | tuple[TimeSeries, dict]:
    """The damped heat equation with pulsing sources, periodic boundary.

    One explicit finite-difference step per time step (grid spacing 1)::

        u[t+1] = u[t] + diffusivity * laplacian(u[t]) - damping * u[t] + f[t]

    from ``n_bumps`` random Gaussian bumps; ``f[t] = forcing * sum_j (1 + sin(2 pi t / P_j + phi_j))
    * G_j`` over ``n_sources`` fixed Gaussian sources ``G_j`` with random periods ``P_j`` (12 to 72
    steps), so heat keeps coming in while diffusion spreads it and damping keeps it bounded.

    Parameters
    ----------
    n_steps, height, width
        Number of time steps and grid size.
    diffusivity
        Diffusion coefficient per step; at most 0.25 (stability of the explicit scheme).
    damping
        Linear decay rate per step (0 conserves the total heat when ``forcing=0``).
    forcing
        Peak strength of each source per step; 0 gives free decay.
    n_bumps, n_sources
        Number of initial bumps and of sources.
    noise
        Standard deviation of the additive Gaussian observation noise.
    seed
        Seed of bumps, sources and noise.
    start, freq
        First time stamp and step of the ``DatetimeIndex``.
    return_params
        Also return ``{"diffusivity", "damping", "forcing"}`` and the clean initial field ``"u0"``.

    Returns
    -------
    TimeSeries or tuple[TimeSeries, dict]
        A gridded series (one channel, ``"diffusion"``).

    Raises
    ------
    ValueError
        For ``diffusivity`` outside ``[0, 0.25]`` or ``damping`` outside ``[0, 1)``.
    """
    _check_sizes(n_steps, height, width, noise)
    if not 0 <= diffusivity <= 0.25:
        raise ValueError(
            f"diffusivity must be in [0, 0.25] (explicit scheme on a unit grid), got {diffusivity}."
        )
    if not 0 <= damping < 1:
        raise ValueError(f"damping must be in [0, 1), got {damping}.")
    rng, noise_rng = _streams(seed)

    def bump() -> np.ndarray:
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        return _periodic_gaussian(height, width, cy, cx, rng.uniform(1.0, 2.5))

    u = sum(rng.uniform(0.5, 1.5) * bump() for _ in range(n_bumps)) + np.zeros((height, width))
    sources = [bump() for _ in range(n_sources)]
    periods = rng.uniform(12, 72, size=n_sources)
    phases = rng.uniform(0, 2 * np.pi, size=n_sources)
    u0 = u.copy()
    clean = np.empty((n_steps, height, width))
    for t in range(n_steps):
        clean[t] = u
        pulse = 1 + np.sin(2 * np.pi * t / periods + phases)
        f = forcing * np.tensordot(pulse, np.asarray(sources), axes=1) if n_sources else 0.0
        u = u + diffusivity * _laplacian(u) - damping * u + f
    series = _to_series(clean, noise, noise_rng, "diffusion", start, freq)
    params = {"diffusivity": diffusivity, "damping": damping, "forcing": forcing, "u0": u0}
    return (series, params) if return_params else series


def linear_trend(
    n_steps: int = 600,
    height: int = 16,
    width: int = 16,
    *,
    slope_scale: float = 0.004,
    noise: float = 0.05,
    seed: int = 0,
    start: str | pd.Timestamp = "2024-01-01",
    freq: str = "h",
    return_params: bool = False,
) -> TimeSeries | tuple[TimeSeries, dict]:
    """A straight line per cell: ``u(t, y, x) = intercept(y, x) + slope(y, x) * t`` plus noise.

    Intercepts and slopes are smooth random fields (with a little per-cell jitter); slopes have
    standard deviation ``slope_scale`` per step (about 2.4 over 600 steps by default), so some cells
    rise while others fall.

    Parameters
    ----------
    n_steps, height, width
        Number of time steps and grid size.
    slope_scale
        Standard deviation of the per-cell slopes, per time step.
    noise
        Standard deviation of the additive Gaussian observation noise.
    seed
        Seed of the fields and of the noise.
    start, freq
        First time stamp and step of the ``DatetimeIndex``.
    return_params
        Also return ``{"intercept": (H, W), "slope": (H, W)}``.

    Returns
    -------
    TimeSeries or tuple[TimeSeries, dict]
        A gridded series (one channel, ``"linear_trend"``).
    """
    _check_sizes(n_steps, height, width, noise)
    rng, noise_rng = _streams(seed)
    intercept = _smooth_field(rng, height, width)
    slope = _smooth_field(rng, height, width) + 0.2 * rng.standard_normal((height, width))
    slope = slope_scale * slope / (slope.std() + 1e-12)
    t = np.arange(n_steps)[:, None, None]
    clean = intercept + slope * t
    series = _to_series(clean, noise, noise_rng, "linear_trend", start, freq)
    return (series, {"intercept": intercept, "slope": slope}) if return_params else series


def seasonality(
    n_steps: int = 600,
    height: int = 16,
    width: int = 16,
    *,
    period: int = 24,
    noise: float = 0.05,
    seed: int = 0,
    start: str | pd.Timestamp = "2024-01-01",
    freq: str = "h",
    return_params: bool = False,
) -> TimeSeries | tuple[TimeSeries, dict]:
    """A daily cycle whose level, amplitude and phase depend on the cell.

    ``u(t, y, x) = level(y, x) + amplitude(y, x) * sin(2 pi t / period + phase(y, x))``: the phase
    advances across the columns (one full turn over the grid's width, like solar time over longitude)
    plus a smooth random part; amplitudes lie in about [0.3, 1.7].

    Parameters
    ----------
    n_steps, height, width
        Number of time steps and grid size.
    period
        Length of the cycle in steps (24: daily on an hourly index).
    noise
        Standard deviation of the additive Gaussian observation noise.
    seed
        Seed of the fields and of the noise.
    start, freq
        First time stamp and step of the ``DatetimeIndex``.
    return_params
        Also return ``{"period", "level", "amplitude", "phase"}`` (fields of shape ``(H, W)``).

    Returns
    -------
    TimeSeries or tuple[TimeSeries, dict]
        A gridded series (one channel, ``"seasonality"``).
    """
    _check_sizes(n_steps, height, width, noise)
    if period < 2:
        raise ValueError(f"period must be >= 2 steps, got {period}.")
    rng, noise_rng = _streams(seed)
    level = 0.5 * _smooth_field(rng, height, width)
    amplitude = 1.0 + 0.3 * _smooth_field(rng, height, width)
    columns = np.arange(width)[None, :] / width
    phase = 2 * np.pi * columns + 0.5 * _smooth_field(rng, height, width)
    t = np.arange(n_steps)[:, None, None]
    clean = level + amplitude * np.sin(2 * np.pi * t / period + phase)
    series = _to_series(clean, noise, noise_rng, "seasonality", start, freq)
    params = {"period": period, "level": level, "amplitude": amplitude, "phase": phase}
    return (series, params) if return_params else series


def blobs_growth_decay(
    n_steps: int = 600,
    height: int = 16,
    width: int = 16,
    *,
    rate: float = 0.15,
    lifetime: tuple[int, int] = (12, 36),
    noise: float = 0.05,
    seed: int = 0,
    start: str | pd.Timestamp = "2024-01-01",
    freq: str = "h",
    return_params: bool = False,
) -> TimeSeries | tuple[TimeSeries, dict]:
    """Gaussian blobs that appear at random places and times, grow, then decay (periodic boundary).

    Blobs are born at a Poisson ``rate`` per step at a uniform position. A blob born at ``t0`` with
    lifetime ``L`` has amplitude ``A * sin(pi * (t - t0) / L)`` and width ``sigma0 * (1 + (t - t0) /
    L)`` for ``t0 <= t <= t0 + L`` (it widens as it ages), and is zero otherwise; the field is the sum
    of the living blobs (no background).

    Parameters
    ----------
    n_steps, height, width
        Number of time steps and grid size.
    rate
        Mean number of new blobs per step.
    lifetime
        Range ``(min, max)`` of the lifetimes in steps (drawn uniformly, whole steps).
    noise
        Standard deviation of the additive Gaussian observation noise.
    seed
        Seed of the blobs and of the noise.
    start, freq
        First time stamp and step of the ``DatetimeIndex``.
    return_params
        Also return ``{"blobs": [{"t0", "lifetime", "cy", "cx", "amplitude", "sigma0"}, ...]}``.

    Returns
    -------
    TimeSeries or tuple[TimeSeries, dict]
        A gridded series (one channel, ``"blobs_growth_decay"``).
    """
    _check_sizes(n_steps, height, width, noise)
    lo, hi = (int(v) for v in lifetime)
    if not 1 <= lo <= hi:
        raise ValueError(f"lifetime must be (min, max) with 1 <= min <= max, got {lifetime}.")
    if rate < 0:
        raise ValueError(f"rate must be >= 0, got {rate}.")
    rng, noise_rng = _streams(seed)
    clean = np.zeros((n_steps, height, width))
    blobs = []
    # births are drawn from before the start too, so the first steps are not empty
    for t0 in range(-hi, n_steps):
        for _ in range(rng.poisson(rate)):
            blob = {
                "t0": t0,
                "lifetime": int(rng.integers(lo, hi + 1)),
                "cy": float(rng.uniform(0, height)),
                "cx": float(rng.uniform(0, width)),
                "amplitude": float(rng.uniform(0.5, 1.5)),
                "sigma0": float(rng.uniform(0.8, 1.6)),
            }
            age = np.arange(n_steps) - t0
            alive = (age >= 0) & (age <= blob["lifetime"])
            if not alive.any():
                continue
            blobs.append(blob)
            frac = age[alive] / blob["lifetime"]
            amp = blob["amplitude"] * np.sin(np.pi * frac)
            shape = _periodic_gaussian(
                height, width, blob["cy"], blob["cx"], blob["sigma0"] * (1 + frac)
            )
            clean[alive] += amp[:, None, None] * shape
    series = _to_series(clean, noise, noise_rng, "blobs_growth_decay", start, freq)
    return (series, {"blobs": blobs}) if return_params else series


_GENERATORS: dict[str, Callable[..., TimeSeries | tuple[TimeSeries, dict]]] = {
    "advection": advection,
    "diffusion": diffusion,
    "linear_trend": linear_trend,
    "seasonality": seasonality,
    "blobs_growth_decay": blobs_growth_decay,
}


def synthetic_grid(kind: str, **kwargs) -> TimeSeries | tuple[TimeSeries, dict]:
    """One of the synthetic grids by name.

    Parameters
    ----------
    kind
        One of :data:`SYNTHETIC_KINDS`: ``"advection"``, ``"diffusion"``, ``"linear_trend"``,
        ``"seasonality"``, ``"blobs_growth_decay"``.
    **kwargs
        The generator's arguments (``n_steps``, ``height``, ``width``, ``noise``, ``seed``, ...).

    Returns
    -------
    TimeSeries or tuple[TimeSeries, dict]
        What the generator returns.

    Raises
    ------
    ValueError
        For an unknown kind.
    """
    try:
        generator = _GENERATORS[kind]
    except KeyError:
        raise ValueError(
            f"unknown synthetic kind {kind!r}; choose one of {', '.join(SYNTHETIC_KINDS)}."
        ) from None
    return generator(**kwargs)


# ---------------------------------------------------------------------------------------------------
# plain series


def synthetic_hourly_csv(days: int = 90, seed: int = 0) -> TimeSeries:
    """A newcomer's own hourly CSV: three columns with the daily and weekly life of a small business.

    * ``load``: a daily cycle (peak in the afternoon), a weekly cycle (weekends about 25 % lower), a
      slow upward trend (about 10 % over 90 days) and Gaussian noise; of order 100.
    * ``temperature``: a daily cycle of about 4 degrees of amplitude around a level that wanders as a
      random walk (sd 0.15 degrees per hour) from 12 degrees.
    * ``price``: a mean-reverting AR(1) (coefficient 0.9 per hour) around a daily shape (dearer in the
      morning and evening), with occasional positive spikes (about one in 100 hours, a few times the
      usual spread, decaying over a few hours); of order 50.

    Parameters
    ----------
    days
        Length in days (24 hourly steps each); at least 2.
    seed
        Seed of the random streams; the same seed gives the same series.

    Returns
    -------
    TimeSeries
        A plain float32 ``TimeSeries`` of ``24 * days`` hourly steps from 2024-01-01 00:00 (a Monday)
        with the components ``load``, ``temperature`` and ``price``.

    Raises
    ------
    ValueError
        For fewer than 2 days.

    Examples
    --------
    >>> from darts_mim.datasets.synthetic import synthetic_hourly_csv
    >>> series = synthetic_hourly_csv(days=14, seed=1)
    >>> len(series), list(series.components), series.freq_str
    (336, ['load', 'temperature', 'price'], 'h')
    """
    if int(days) != days or days < 2:
        raise ValueError(f"days must be an integer >= 2, got {days!r}.")
    n = 24 * int(days)
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    hour, day = t % 24, (t // 24) % 7  # day 0: Monday
    daily = np.sin(2 * np.pi * (hour - 9) / 24)  # highest at 15:00
    weekly = np.where(day >= 5, 0.75, 1.0)
    load = (100 + 10 * t / n) * weekly * (1 + 0.3 * daily) + 4 * rng.standard_normal(n)
    temperature = (
        12 + np.cumsum(0.15 * rng.standard_normal(n)) + 4 * np.sin(2 * np.pi * (hour - 10) / 24)
    )
    temperature += 0.3 * rng.standard_normal(n)
    shape = 6 * np.exp(-(((hour - 8) / 2.0) ** 2)) + 8 * np.exp(-(((hour - 19) / 2.5) ** 2))
    deviation, spike = np.zeros(n), np.zeros(n)
    shocks = rng.standard_normal(n)
    jumps = (rng.random(n) < 0.01) * rng.uniform(15, 40, n)
    for i in range(1, n):
        deviation[i] = 0.9 * deviation[i - 1] + 2.0 * shocks[i]
        spike[i] = 0.5 * spike[i - 1] + jumps[i]
    price = 45 + shape + deviation + spike
    values = np.stack([load, temperature, price], axis=1).astype(np.float32)
    index = pd.date_range("2024-01-01", periods=n, freq="h")
    return TimeSeries.from_times_and_values(index, values, columns=["load", "temperature", "price"])


def synthetic_mean_reverting_monthly(years: int = 70, seed: int = 0) -> TimeSeries:
    """A noisy monthly index without a yearly season, like the Southern Oscillation index.

    A mean-reverting AR(1) (coefficient 0.7 per month, innovations of sd 0.7, so a stationary sd of
    about 1) plus white observation noise of sd 0.5, around 0. No month of the year differs from any
    other: a seasonal naive forecast only adds the noise of a year-old value.

    Parameters
    ----------
    years
        Length in years (12 monthly steps each); at least 2.
    seed
        Seed of the random stream; the same seed gives the same series.

    Returns
    -------
    TimeSeries
        A univariate float32 ``TimeSeries`` named ``index`` of ``12 * years`` month starts from
        1951-01.

    Raises
    ------
    ValueError
        For fewer than 2 years.

    Examples
    --------
    >>> from darts_mim.datasets.synthetic import synthetic_mean_reverting_monthly
    >>> series = synthetic_mean_reverting_monthly(years=10)
    >>> len(series), series.freq_str
    (120, 'MS')
    """
    if int(years) != years or years < 2:
        raise ValueError(f"years must be an integer >= 2, got {years!r}.")
    n = 12 * int(years)
    rng = np.random.default_rng(seed)
    shocks = 0.7 * rng.standard_normal(n)
    state = np.zeros(n)
    state[0] = shocks[0] / np.sqrt(1 - 0.7**2)  # drawn from the stationary distribution
    for i in range(1, n):
        state[i] = 0.7 * state[i - 1] + shocks[i]
    values = (state + 0.5 * rng.standard_normal(n)).astype(np.float32)
    index = pd.date_range("1951-01-01", periods=n, freq="MS")
    return TimeSeries.from_times_and_values(index, values[:, None], columns=["index"])
