"""Error metrics of backtests: the one place the demo, the CLI and the benchmarks compute them.

Numpy only (no torch), so that a torch-free serving environment can score forecasts too. The
functions work on arrays of shape ``(windows, horizon, components)``, as :func:`forecast_windows`
builds them from the list that ``historical_forecasts(..., last_points_only=False)`` returns.

Missing values: a position where the forecast or the observation is NaN is left out of every mean
(always-missing cells such as land on a radar grid are forecast as NaN by ``MIMModel``). A mean over
no finite position is NaN, without numpy's "mean of empty slice" warning.

Examples
--------
>>> import numpy as np
>>> from darts_mim.evaluation import mae, rmse, rmse_by_step
>>> pred = np.array([[[1.0, 2.0], [3.0, np.nan]]])  # 1 window, 2 steps, 2 components
>>> true = np.array([[[2.0, 2.0], [1.0, 5.0]]])
>>> rmse(pred, true), mae(pred, true)
(1.2909944487358056, 1.0)
>>> rmse_by_step(pred, true)
array([0.70710678, 2.        ])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from darts import TimeSeries

__all__ = ["forecast_windows", "mae", "rmse", "rmse_by_step"]

Axis = int | tuple[int, ...] | None


def forecast_windows(
    forecasts: Sequence[TimeSeries], series: TimeSeries
) -> tuple[np.ndarray, np.ndarray]:
    """Stack forecasts and the observed values over their time steps.

    Parameters
    ----------
    forecasts
        Deterministic forecasts of equal length, e.g. from
        ``model.historical_forecasts(..., last_points_only=False)``.
    series
        The observed series; it must cover every forecast's time steps and have the forecasts'
        components.

    Returns
    -------
    tuple[numpy.ndarray, numpy.ndarray]
        ``(pred, true)``, both float64 of shape ``(windows, horizon, components)``.

    Raises
    ------
    ValueError
        When ``forecasts`` is empty, forecasts differ in length, a forecast is stochastic or
        indexed otherwise than ``series`` (dates vs. positions), ``series`` does not cover a
        forecast, or a component of a forecast is at another position
        in ``series``.
    """
    if len(forecasts) == 0:
        raise ValueError("`forecasts` is empty: pass at least one forecast to score.")
    preds, trues = [], []
    for i, fc in enumerate(forecasts):
        if fc.is_stochastic:
            # Scoring one sample of a probabilistic forecast would be silently arbitrary.
            raise ValueError(
                f"forecast {i} has {fc.n_samples} samples; reduce it to one first, e.g. with "
                "`forecast.quantile(0.5)`."
            )
        if len(fc) != len(forecasts[0]):
            # np.stack would fail with "all input arrays must have the same shape"
            raise ValueError(
                f"forecast {i} has {len(fc)} steps, forecast 0 {len(forecasts[0])}: the windows "
                "are scored per horizon step, so every forecast needs the same length (e.g. one "
                "forecast_horizon in historical_forecasts)."
            )
        if fc.has_datetime_index != series.has_datetime_index:
            # Darts' slice_intersect fails with "The type of your index was not matched."
            kinds = {True: "dates", False: "integer positions"}
            raise ValueError(
                f"forecast {i} is indexed by {kinds[fc.has_datetime_index]}, the series by "
                f"{kinds[series.has_datetime_index]}: score forecasts made from this series (or "
                "one with its time index)."
            )
        observed = series.slice_intersect(fc)
        if len(observed) != len(fc) or observed.n_components != fc.n_components:
            raise ValueError(
                f"the series covers {len(observed)} of the {len(fc)} steps of forecast {i} (from "
                f"{fc.start_time()}) with {observed.n_components} of its {fc.n_components} "
                "components; score forecasts only against a series that covers them."
            )
        # Values are compared column by column: a forecast of ["b", "a"] scored against a series of
        # ["a", "b"] would compare b's forecast with a's observations. Names that differ altogether
        # (the "a_q0.500" of forecast.quantile(0.5)) do not say anything and are compared in order.
        names, observed_names = list(fc.components), list(observed.components)
        moved = [c for j, c in enumerate(names) if c in observed_names and observed_names[j] != c]
        if moved:
            raise ValueError(
                f"forecast {i} has the components {names}, the series {observed_names}: component "
                f"{moved[0]!r} is at another position; select the series' components in the "
                "forecast's order (series[forecast.components]) before scoring."
            )
        preds.append(fc.values(copy=False))
        trues.append(observed.values(copy=False))
    return np.stack(preds).astype(np.float64), np.stack(trues).astype(np.float64)


def _finite_mean(values: np.ndarray, axis: Axis) -> float | np.ndarray:
    """Mean over the non-NaN entries along ``axis``; NaN (no warning) where there are none.

    Only NaN is skipped: an infinite error (a diverged forecast) must show as such, not vanish.
    """
    present = ~np.isnan(values)
    count = present.sum(axis=axis)
    total = np.where(present, values, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    return float(mean) if np.ndim(mean) == 0 else mean


def _diff(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    p, t = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if p.shape != t.shape:
        raise ValueError(f"`pred` {p.shape} and `true` {t.shape} must have the same shape.")
    return p - t


def rmse(pred: np.ndarray, true: np.ndarray, axis: Axis = None) -> float | np.ndarray:
    """Root mean squared error, ignoring positions where either array is NaN.

    Parameters
    ----------
    pred, true
        Forecasts and observations of the same shape (any; usually ``(windows, horizon, components)``).
    axis
        Axes to average over. Default: ``None`` (all: one number).

    Returns
    -------
    float or numpy.ndarray
        A float when averaging over every axis, else an array over the remaining axes.
    """
    mse = _finite_mean(_diff(pred, true) ** 2, axis)
    return float(np.sqrt(mse)) if np.ndim(mse) == 0 else np.sqrt(mse)


def mae(pred: np.ndarray, true: np.ndarray, axis: Axis = None) -> float | np.ndarray:
    """Mean absolute error, ignoring positions where either array is NaN.

    Parameters
    ----------
    pred, true
        Forecasts and observations of the same shape.
    axis
        Axes to average over. Default: ``None`` (all: one number).

    Returns
    -------
    float or numpy.ndarray
        A float when averaging over every axis, else an array over the remaining axes.
    """
    return _finite_mean(np.abs(_diff(pred, true)), axis)


def rmse_by_step(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """RMSE at each horizon step, over all windows and components.

    Parameters
    ----------
    pred, true
        Arrays of shape ``(windows, horizon, components)``, as :func:`forecast_windows` returns.

    Returns
    -------
    numpy.ndarray
        ``(horizon,)``: entry ``k`` is the error of the forecasts ``k + 1`` steps ahead.

    Raises
    ------
    ValueError
        When the arrays are not 3-D or differ in shape.
    """
    if np.ndim(pred) != 3:
        raise ValueError(
            f"expected (windows, horizon, components) arrays, got shape {np.shape(pred)}."
        )
    return np.asarray(rmse(pred, true, axis=(0, 2)))
