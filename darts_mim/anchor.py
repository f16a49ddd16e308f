"""The naive forecast a model's output is anchored to: none, the last frame, or one period earlier.

With ``naive_anchor``, the network forecasts the change from a naive forecast instead of the value
itself, so that an untrained network *is* that naive forecast and training learns the correction. The
naive forecast is the frame ``lag`` frames before the one being forecast: ``lag = 1`` repeats the last
frame (persistence); ``lag = P`` repeats the frame one period earlier (seasonal naive). Of a folded
series (one frame per period, :mod:`darts_mim.folding`) ``lag = 1`` already is the seasonal naive.

This module holds the torch-free decision of the lag, made once when the network is built, from the
model's settings and the training series; the network applies it (:class:`darts_mim.nn.MIMNetwork`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from darts_mim.folding import infer_period

ANCHOR_CHOICES = ("auto", "seasonal")
"""The string values of ``naive_anchor`` (besides ``True``, ``False`` and an integer lag)."""

# "auto" reads at most this many of the most recent training steps of each series: enough to rank two
# naive forecasts, cheap on a long grid series.
MAX_SCORED_STEPS = 5000


def check_naive_anchor(naive_anchor) -> None:
    """Refuse a ``naive_anchor`` that is neither a bool, a lag >= 1, nor one of :data:`ANCHOR_CHOICES`."""
    if isinstance(naive_anchor, (bool, np.bool_)) or naive_anchor in ANCHOR_CHOICES:
        return
    if isinstance(naive_anchor, (int, np.integer)) and naive_anchor >= 1:
        return
    raise ValueError(
        f"`naive_anchor` must be True, False, 'auto', 'seasonal' or a lag in steps >= 1, got "
        f"{naive_anchor!r}."
    )


def naive_mse(values: Sequence[np.ndarray], lag_of_horizon) -> float:
    """Mean squared error of a naive forecast over the given series, every origin and horizon.

    Parameters
    ----------
    values
        ``(T, D)`` arrays (NaN allowed: cells that are always missing are left out).
    lag_of_horizon
        ``{h: k}``: horizon ``h`` is forecast by the value ``k`` steps before it (``k = h`` is
        persistence).

    Returns
    -------
    float
        The mean over horizons of each horizon's mean squared error (``inf`` where no series is long
        enough).
    """
    per_horizon = []
    for lag in lag_of_horizon.values():
        errors = [np.nanmean((v[lag:] - v[:-lag]) ** 2) for v in values if len(v) > lag]
        errors = [e for e in errors if np.isfinite(e)]
        if not errors:
            return float("inf")
        per_horizon.append(float(np.mean(errors)))
    return float(np.mean(per_horizon))


def mean_mse(values: Sequence[np.ndarray]) -> float:
    """Mean squared error of forecasting each series by its own mean (climatology), in-sample.

    Parameters
    ----------
    values
        ``(T, D)`` arrays (NaN allowed).
    """
    # components that are NaN at every step (always-missing cells) have no mean: left out
    kept = [v[:, ~np.isnan(v).all(axis=0)] for v in values if len(v)]
    errors = [np.nanmean((v - np.nanmean(v, axis=0)) ** 2) for v in kept if v.size]
    errors = [e for e in errors if np.isfinite(e)]
    return float(np.mean(errors)) if errors else float("inf")


def _recent(values: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(v, dtype=np.float64)[-MAX_SCORED_STEPS:] for v in values]


def _auto_naive_lag(
    freq, input_chunk_length: int, output_chunk_length: int, fold: int, values, gridded: bool
) -> int:
    """The naive forecast "auto" anchors on, in frames: of a folded series the frame before (the
    seasonal naive); of a grid, of persistence and the seasonal naive the one with the lower
    in-sample error; of an unfolded plain series persistence."""
    if fold > 1:
        return 1
    period = infer_period(freq)
    if period is None or not 2 <= period <= input_chunk_length or not gridded or not values:
        return 1
    horizons = range(1, output_chunk_length + 1)
    recent = _recent(values)
    persistence = naive_mse(recent, {h: h for h in horizons})
    seasonal = naive_mse(recent, {h: period * -(-h // period) for h in horizons})
    return period if seasonal < persistence else 1


def resolve_anchor_lag(
    naive_anchor,
    freq,
    input_chunk_length: int,
    output_chunk_length: int,
    fold: int,
    values: Sequence[np.ndarray] = (),
    has_location: bool = True,
    gridded: bool = True,
) -> int:
    """The anchor lag a model uses, in frames: 0 (no anchor), 1 (the last frame) or ``P`` (a period).

    Parameters
    ----------
    naive_anchor
        The model's ``naive_anchor``: ``False`` (none), ``True`` (the last frame: persistence, or the
        seasonal naive of a folded series), an integer lag in steps (``k``: the value ``k`` steps
        earlier; a multiple of the fold of a folded series), ``"seasonal"`` (the period of the
        frequency) or ``"auto"`` (the naive forecast of :func:`_auto_naive_lag`, unless forecasting
        the training series by its mean has the lower in-sample error over the output horizon, as on
        a mean-reverting series: then no anchor; no anchor either for a likelihood without a
        location).
    freq
        The training series' frequency.
    input_chunk_length, output_chunk_length
        The model's chunk lengths, in steps.
    fold
        The model's fold (1: one frame per step; ``P``: one frame per period).
    values
        The training series' values, ``(T, D)`` arrays; only ``"auto"`` reads them.
    has_location
        Whether the model's outputs are on the target's scale (no likelihood, quantiles, or a
        location-scale likelihood); ``"auto"`` anchors only those.
    gridded
        Whether the target is a grid. ``"auto"`` ranks the two naive forecasts on grids only; an
        unfolded plain series is anchored on persistence, from which the network learned better in
        the robustness benchmark even where the seasonal naive was the better naive forecast.

    Raises
    ------
    ValueError
        For a lag that the input cannot hold, a lag that is not a whole number of folded periods, or
        ``"seasonal"`` on a frequency without a period.
    """
    check_naive_anchor(naive_anchor)
    if naive_anchor is False or (naive_anchor == "auto" and not has_location):
        return 0
    if naive_anchor is True:
        return 1
    if naive_anchor == "seasonal" and fold == 1:
        period = infer_period(freq)
        if period is None or not 2 <= period <= input_chunk_length:
            raise ValueError(
                f"naive_anchor='seasonal' repeats the values one period earlier, but the series' "
                f"frequency ({freq!r}) has "
                + ("no natural period" if period is None else f"a period of {period}")
                + f" that an input of {input_chunk_length} steps cannot hold. Pass the period as "
                "an integer lag (naive_anchor=24), True for the last value, or 'auto'."
            )
        return period
    if naive_anchor in ANCHOR_CHOICES:  # "auto", or "seasonal" on a folded series
        lag = _auto_naive_lag(freq, input_chunk_length, output_chunk_length, fold, values, gridded)
        if naive_anchor == "auto" and values:
            recent = _recent(values)
            steps = lag * fold
            horizons = range(1, output_chunk_length + 1)
            naive = naive_mse(recent, {h: steps * -(-h // steps) for h in horizons})
            if mean_mse(recent) < naive:
                return 0  # a mean-reverting series: the level, not a naive forecast, is the start
        return lag
    lag = int(naive_anchor)
    if fold > 1:
        if lag % fold:
            raise ValueError(
                f"naive_anchor={lag} steps is not a whole number of the folded periods ({fold} "
                f"steps): a folded model anchors on whole periods. Use a multiple of {fold}, or True "
                "(one period earlier)."
            )
    frames_in = input_chunk_length // fold  # a folded input reads whole periods
    if lag > frames_in * fold:
        raise ValueError(
            f"naive_anchor={naive_anchor} reaches further back than the input "
            f"(input_chunk_length={input_chunk_length}): use a lag of at most "
            f"{frames_in * fold} steps, or a longer input."
        )
    return lag // fold
