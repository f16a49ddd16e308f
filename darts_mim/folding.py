"""Period folding of plain series: which period, and the rules for chunk lengths.

MIM's strengths are convolutions over a structured axis and differences between consecutive frames.
A plain (non-gridded) series has neither, so MIMModel folds it: with a period ``P`` (24 for hourly data
with a daily cycle), frame ``k`` holds steps ``kP .. (k+1)P - 1`` of each component as a ``1 x P``
strip. The recurrence then runs across periods, MIM-N differences consecutive periods (a learned
seasonal differencing), the convolutions run along the phase within a period, and the naive anchor
(``naive_anchor=True``) becomes the seasonal naive forecast. The reshaping itself is in
:mod:`darts_mim.module`; this module holds the torch-free decisions.

Chunk lengths stay in time steps. An input that is not a whole number of periods uses its most recent
whole periods (the oldest ``input_chunk_length mod P`` steps are not read); an output that is not a
whole number of periods is forecast in whole periods and cut to ``output_chunk_length``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

# "auto" folds only when the input holds at least this many periods: with fewer, the recurrence
# across periods has nothing to difference.
MIN_INPUT_PERIODS = 2

# The season test reads at most this many of the most recent steps of each component: enough for an
# autocorrelation estimate at a lag of a few hundred steps, cheap on a long series.
MAX_SEASON_STEPS = 5000

# A series "shows" a season when at least this share of its (non-constant) components does.
SEASONAL_SHARE = 0.5


def infer_period(freq) -> int | None:
    """The natural seasonal period of a series' frequency, or ``None`` when there is none.

    Sub-daily steps give a daily cycle (hourly: 24, 30 minutes: 48, 15 minutes: 96), steps under 15
    minutes an hourly one (minutes: 60), days a weekly one (7; business days 5), weeks (also
    ``7D``) a yearly one (52), months 12, semi-months 24, quarters 4. Years, integer indexes and
    steps that do not divide a day give ``None``.

    Parameters
    ----------
    freq
        A pandas offset or frequency string (``series.freq``), or an integer step (``RangeIndex``).

    Examples
    --------
    >>> infer_period("h"), infer_period("30min"), infer_period("D"), infer_period("MS")
    (24, 48, 7, 12)
    """
    if freq is None or isinstance(freq, int):
        return None
    offset = pd.tseries.frequencies.to_offset(freq)
    name = offset.name
    if name in ("B", "C"):
        return 5 if offset.n == 1 else None
    if name.startswith("W"):
        return 52 if offset.n == 1 else None
    if name.startswith("SM"):  # semi-month steps (15th and month end/start): 24 in a year
        return 24 // offset.n if 24 % offset.n == 0 and offset.n < 24 else None
    if name.startswith(("M", "BM", "CBM")) and name not in ("min", "ms"):
        return 12 // offset.n if 12 % offset.n == 0 and offset.n < 12 else None
    if name.startswith(("Q", "BQ")):
        return 4 if offset.n == 1 else None
    if (
        name == "D"
    ):  # daily steps: a weekly cycle; 7-day steps (pandas' "7D", not "W"): a yearly one
        return {1: 7, 7: 52}.get(offset.n)
    try:
        step = pd.Timedelta(offset)
    except (ValueError, TypeError):
        return None
    # steps under 15 minutes: an hourly cycle (a daily one would be hundreds of steps long)
    cycle = pd.Timedelta(hours=1) if step < pd.Timedelta(minutes=15) else pd.Timedelta(days=1)
    if step >= cycle or cycle % step != pd.Timedelta(0):
        return None
    return int(cycle // step)


def shows_season(values: Sequence[np.ndarray], period: int, alpha: float = 0.05) -> bool:
    """Whether training data show a season of ``period`` steps, by Darts' autocorrelation test.

    Each component of each series (its most recent :data:`MAX_SEASON_STEPS` steps, gaps filled by
    linear interpolation, a linear trend removed) is tested with
    :func:`darts.utils.statistics.check_seasonality`: the autocorrelation at lag ``period`` must be a
    local maximum and significant at level ``alpha``.
    The data show the season when at least half of the tested components do. Constant components,
    all-missing ones and ones shorter than three periods are not tested; with none left, the answer
    is ``True`` (nothing contradicts the calendar).

    Parameters
    ----------
    values
        ``(T, D)`` arrays, one per training series (NaN allowed).
    period
        The candidate period in steps (>= 2).
    alpha
        The significance level of the test.

    Returns
    -------
    bool
    """
    from darts import TimeSeries
    from darts.utils.statistics import check_seasonality

    tested = seasonal = 0
    for array in values:
        array = np.asarray(array, dtype=np.float64)
        array = array.reshape(len(array), -1)[-MAX_SEASON_STEPS:]
        for column in array.T:
            filled = pd.Series(column).interpolate(limit_direction="both").to_numpy()
            if len(filled) < 3 * period or np.isnan(filled).any() or np.ptp(filled) == 0:
                continue
            # a trend dominates the autocorrelation of a short series and hides its season
            # (AirPassengers' first 101 months fail the test, their residuals pass)
            steps = np.arange(len(filled))
            filled = filled - np.polyval(np.polyfit(steps, filled, 1), steps)
            max_lag = min(max(2 * period, 24), len(filled) - 1)
            found, _ = check_seasonality(
                TimeSeries.from_values(filled), m=period, max_lag=max_lag, alpha=alpha
            )
            tested += 1
            seasonal += bool(found)
    return tested == 0 or seasonal >= SEASONAL_SHARE * tested


def resolve_fold(
    fold_period,
    freq,
    input_chunk_length: int,
    gridded: bool,
    values: Sequence[np.ndarray] | None = None,
) -> int:
    """The fold a model uses: 1 (none) or the period ``P``.

    Parameters
    ----------
    fold_period
        The model's ``fold_period``: ``"auto"`` (the period of the frequency, for a plain series whose
        input holds at least two periods and whose training data show that season, see
        :func:`shows_season`; else no folding), ``None`` (no folding: one value per step, a 1x1
        grid) or an integer period.
    freq
        The training series' frequency.
    input_chunk_length
        The model's input length in steps.
    gridded
        Whether the target is a grid (grids are never folded: their frames are already spatial).
    values
        The training series' values, ``(T, D)`` arrays; ``"auto"`` folds only when they show the
        season. ``None``: the calendar alone decides.

    Raises
    ------
    ValueError
        For a period below 2, longer than the input, or asked for a gridded target.
    """
    if fold_period is None:
        return 1
    if fold_period == "auto":
        period = None if gridded else infer_period(freq)
        if period is None or period < 2 or input_chunk_length < MIN_INPUT_PERIODS * period:
            return 1
        # a calendar period the data do not show (a monthly index without a yearly cycle) would
        # anchor on, and difference against, the value a year earlier for nothing
        if values is not None and not shows_season(values, period):
            return 1
        return period
    period = int(fold_period)
    if gridded:
        raise ValueError(
            f"fold_period={fold_period} folds plain series, but the target is a grid (its frames are "
            "already spatial). Use fold_period=None or 'auto' for grids."
        )
    if period < 2:
        raise ValueError(
            f"fold_period must be an integer >= 2, None or 'auto', got {fold_period!r}; use None to "
            "keep one value per step."
        )
    if period > input_chunk_length:
        raise ValueError(
            f"fold_period={period} is longer than input_chunk_length={input_chunk_length}: the input "
            f"must hold at least one whole period. Use input_chunk_length >= {period} (better "
            f"{MIN_INPUT_PERIODS * period} or more) or a shorter period."
        )
    natural = infer_period(freq)
    if natural is not None and natural % period and period % natural:
        # e.g. 7 on hourly data: a frame then cuts across days, and the seasonal naive it anchors on
        # is a week of hours ago only by accident
        warnings.warn(
            f"fold_period={period} is neither a multiple nor a divisor of the {natural}-step period "
            f"of the series' frequency ({freq}): each frame then starts at a different phase of "
            f"that cycle. Use fold_period={natural} (or a multiple of it, e.g. "
            f"{natural * 7 if natural in (24, 48) else natural * 2}), or 'auto'.",
            UserWarning,
            stacklevel=3,
        )
    return period


def check_fold_rows(fold_rows: int, fold: int) -> int:
    """The rows of a folded frame (a 2-D fold): ``fold_rows`` checked against the resolved fold.

    Parameters
    ----------
    fold_rows
        The model's ``fold_rows``: the ``fold`` steps of a frame laid out row-major as
        ``fold_rows x fold / fold_rows``.
    fold
        The resolved fold (1: the series is not folded).

    Raises
    ------
    ValueError
        When ``fold_rows`` does not divide the period, or asks for rows of a series that is not folded.
    """
    if fold_rows == 1:
        return 1
    if fold == 1:
        raise ValueError(
            f"fold_rows={fold_rows} lays out folded frames, but this series is not folded (fold_period "
            "is None, or 'auto' found no period of its frequency that the input holds twice). Set "
            "fold_period to an integer period, or use fold_rows=1."
        )
    if fold % fold_rows:
        divisors = [r for r in range(1, fold + 1) if fold % r == 0]
        raise ValueError(
            f"fold_rows={fold_rows} does not divide the period {fold}: a frame of {fold} steps can "
            f"have {divisors} rows."
        )
    return fold_rows


# Channel independence trains one sample per component: beyond this many components the batch grows
# too much for "auto" to choose it (set channel_independent=True to have it anyway).
CHANNEL_INDEPENDENT_MAX_COMPONENTS = 32


def resolve_multivariate_options(
    instance_norm,
    channel_independent,
    n_components: int,
    gridded: bool,
    outputs_are_values: bool = True,
) -> tuple[bool | dict, bool]:
    """``use_reversible_instance_norm`` and ``channel_independent`` as a model uses them.

    ``"auto"`` (the defaults) turns each on for a plain (non-gridded) multivariate series, channel
    independence only up to :data:`CHANNEL_INDEPENDENT_MAX_COMPONENTS` components; univariate series
    and grids keep both off. The measurements behind this choice are in the benchmarks' plain-series
    and long-horizon results.

    Parameters
    ----------
    instance_norm
        The model's ``use_reversible_instance_norm``: ``"auto"``, a bool or Darts' dict of RINorm
        arguments (kept as given).
    channel_independent
        The model's ``channel_independent``: ``"auto"`` or a bool.
    n_components
        Target components of the training series (channels of a grid).
    gridded
        Whether the target is a grid.
    outputs_are_values
        Whether every output of the network is a value of the series (no likelihood, or quantiles).
        Darts' instance norm maps every output back with the series' mean and scale, which would
        shift and scale a likelihood's scale or shape parameters too: "auto" leaves it off then.
    """
    multivariate = not gridded and n_components > 1
    if instance_norm == "auto":
        instance_norm = multivariate and outputs_are_values
    if channel_independent == "auto":
        channel_independent = multivariate and n_components <= CHANNEL_INDEPENDENT_MAX_COMPONENTS
    return instance_norm, bool(channel_independent)
