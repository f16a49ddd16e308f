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
        frequency) or ``"auto"`` (of persistence and the seasonal naive, whichever forecasts the
        training series better over the output horizon; no anchor for a likelihood without a location).
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
        Whether the target is a grid. ``"auto"`` ranks the two naive forecasts on grids only: on an
        unfolded plain series (NYC taxi, 30-minute steps, 48 in) the network trained from the
        persistence anchor forecast far better than from the seasonal naive one (RMSE 2473 against
        3164 on the validation part, 2683 against 4047 with a constant learning rate), although the
        seasonal naive is the better naive forecast there; on grids the seasonal anchor won (BikeNYC
        14.9 -> 12.1, the synthetic daily cycle 0.098 -> 0.078; ``benchmarks/robustness_results.md``).

    Raises
    ------
    ValueError
        For a lag that the input cannot hold, a lag that is not a whole number of folded periods, or
        ``"seasonal"`` on a frequency without a period.
    """
    check_naive_anchor(naive_anchor)
    if naive_anchor is False or (naive_anchor == "auto" and not has_location):
        return 0
    if naive_anchor is True or (fold > 1 and naive_anchor in ANCHOR_CHOICES):
        return 1  # of a folded series, the last frame is the period before: the seasonal naive
    if naive_anchor in ANCHOR_CHOICES:
        period = infer_period(freq)
        fits = period is not None and 2 <= period <= input_chunk_length
        if naive_anchor == "seasonal":
            if not fits:
                raise ValueError(
                    f"naive_anchor='seasonal' repeats the values one period earlier, but the series' "
                    f"frequency ({freq!r}) has "
                    + ("no natural period" if period is None else f"a period of {period}")
                    + f" that an input of {input_chunk_length} steps cannot hold. Pass the period as "
                    "an integer lag (naive_anchor=24), True for the last value, or 'auto'."
                )
            return period
        if not fits or not gridded:
            return 1
        persistence = {h: h for h in range(1, output_chunk_length + 1)}
        seasonal = {h: period * -(-h // period) for h in range(1, output_chunk_length + 1)}
        recent = [np.asarray(v, dtype=np.float64)[-MAX_SCORED_STEPS:] for v in values]
        return period if naive_mse(recent, seasonal) < naive_mse(recent, persistence) else 1
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
