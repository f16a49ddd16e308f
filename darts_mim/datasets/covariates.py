"""Per-time-step covariates of a gridded data set as a ``TimeSeries``, and their names.

The crowd-flow files (STSAN / DSAN) carry 65 ``external_knowledge`` columns: day-of-week and
time-slot one-hots, a holiday flag and daily weather. :func:`crowd_flow_covariate_names` names them;
covariates of a file are given those names only when their one-hots agree with the calendar, else
``ek0``, ``ek1``, ...
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from darts import TimeSeries

_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_WEATHER_NAMES = (
    "holiday",
    "temp_max",
    "temp_min",
    "temp_avg",
    "precipitation",
    "snowfall",
    "snow_depth",
    "precipitation_trace",
    "snowfall_trace",
    "snow_depth_trace",
)


def crowd_flow_covariate_names(n: int = 65, slots_per_day: int = 48) -> list[str]:
    """Component names of the crowd-flow ``external_knowledge`` covariates (STSAN / DSAN files).

    The 65 columns are, in order: a day-of-week one-hot ``dow_sun`` ... ``dow_sat`` (column 0 is
    Sunday); a time-of-day one-hot ``slot_00`` ... ``slot_47`` (slot ``2 * hour + minute // 30``); the
    public-holiday flag ``holiday``; the daily weather ``temp_max``, ``temp_min``, ``temp_avg``,
    ``precipitation``, ``snowfall``, ``snow_depth`` (each min-max scaled to [0, 1] over the file's
    days); and ``precipitation_trace``, ``snowfall_trace``, ``snow_depth_trace``, flags for days whose
    amount was only a trace (``T`` in the source weather table). This decoding was checked column by
    column against the daily weather tables of the source repository.

    Parameters
    ----------
    n
        Number of columns; must be ``7 + slots_per_day + 10``.
    slots_per_day
        Number of time slots per day.

    Returns
    -------
    list of str
    """
    names = [f"dow_{d}" for d in _DOW_NAMES]
    names += [f"slot_{i:02d}" for i in range(slots_per_day)]
    names += list(_WEATHER_NAMES)
    if len(names) != n:
        raise ValueError(f"Crowd-flow covariates have {len(names)} columns, got {n}.")
    return names


def _is_one_hot(block: np.ndarray) -> bool:
    return bool(np.isin(block, (0.0, 1.0)).all() and (block.sum(axis=1) == 1).all())


def _covariate_names(values: np.ndarray, index: pd.DatetimeIndex) -> list[str]:
    """Meaningful names for crowd-flow external knowledge, ``ek0 ..`` when the layout is not sure."""
    k = values.shape[1]
    slots = k - 7 - len(_WEATHER_NAMES)
    generic = [f"ek{i}" for i in range(k)]
    if slots < 1 or (24 * 60) % slots:
        return generic
    dow, tod = values[:, :7], values[:, 7 : 7 + slots]
    if not (_is_one_hot(dow) and _is_one_hot(tod)):
        return generic
    # The one-hots must agree with the calendar, or we cannot be sure of the layout.
    minutes = 24 * 60 // slots
    sunday_first = (index.day_of_week.to_numpy() + 1) % 7
    slot = (index.hour.to_numpy() * 60 + index.minute.to_numpy()) // minutes
    if (dow.argmax(axis=1) != sunday_first).any() or (tod.argmax(axis=1) != slot).any():
        return generic
    return crowd_flow_covariate_names(k, slots)


def _covariate_series(
    values, index: pd.DatetimeIndex, names: Sequence[str] | None, what: str
) -> TimeSeries:
    cov = np.asarray(values)
    if cov.ndim == 1:
        cov = cov[:, None]
    if cov.ndim != 2 or cov.shape[0] != len(index):
        raise ValueError(
            f"{what}: covariates must be a (T, K) array with T = {len(index)}, got shape {cov.shape}."
        )
    if not np.issubdtype(cov.dtype, np.number):
        raise ValueError(f"{what}: covariates must be numeric, got dtype {cov.dtype}.")
    if not np.issubdtype(cov.dtype, np.floating):
        cov = cov.astype(np.float32)
    if names is None:
        names = _covariate_names(cov, index)
    names = [str(n) for n in names]
    if len(names) != cov.shape[1]:
        raise ValueError(f"{what}: {len(names)} covariate names for {cov.shape[1]} columns.")
    return TimeSeries.from_times_and_values(index, cov, columns=names)
