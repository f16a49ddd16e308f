"""The forecast a model's output starts from: none, the last frame, one period earlier, the mean, or zero.

With ``naive_anchor``, the network forecasts the change from a naive forecast instead of the value
itself, so that an untrained network *is* that naive forecast and training learns the correction. The
naive forecast is the frame ``lag`` frames before the one being forecast: ``lag = 1`` repeats the last
frame (persistence); ``lag = P`` repeats the frame one period earlier (seasonal naive). Of a folded
series (one frame per period, :mod:`darts_mim.folding`) ``lag = 1`` already is the seasonal naive.

``"auto"`` ranks the naive forecasts by their in-sample error over the output horizon on the training
series (:func:`auto_anchor_errors`) and starts from the best, or from no anchor when the training
series' mean forecasts it better (a mean-reverting series). ``"mean"`` starts from the input window's
mean instead: the model gets no naive anchor, reversible instance norm and a head starting at zero, so
the untrained model forecasts that mean. "auto" does not choose it: an in-sample ranking that could
pick it did worse on the robustness benchmark's validation parts on balance (see
:func:`auto_anchor_errors`). ``"zero"`` has no anchor and starts the head at zero, so the untrained
model forecasts zero: the start for a target that is a correction to another forecast (the radar
recipe's residual on an extrapolation, :mod:`darts_mim.nowcast`), where zero *is* that forecast.
``"combined"`` anchors as "auto" does (persistence where "auto" would choose no anchor) and adds a
per-lead least-squares combination of naive forecasts fitted on the training series
(:mod:`darts_mim.naive_combination`).

This module holds the torch-free decision of the lag, made once when the network is built, from the
model's settings and the training series; the network applies it (:class:`darts_mim.nn.MIMNetwork`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from darts_mim.folding import infer_period

ANCHOR_CHOICES = ("auto", "combined", "seasonal", "mean", "zero")
"""The string values of ``naive_anchor`` (besides ``True``, ``False`` and an integer lag)."""

# "auto" reads at most this many of the most recent training steps of each series: enough to rank the
# candidates, cheap on a long grid series.
MAX_SCORED_STEPS = 5000


def check_naive_anchor(naive_anchor) -> None:
    """Refuse a ``naive_anchor`` that is neither a bool, a lag >= 1, nor one of :data:`ANCHOR_CHOICES`."""
    if isinstance(naive_anchor, (bool, np.bool_)) or naive_anchor in ANCHOR_CHOICES:
        return
    if isinstance(naive_anchor, (int, np.integer)) and naive_anchor >= 1:
        return
    raise ValueError(
        "`naive_anchor` must be True, False, 'auto', 'combined', 'seasonal', 'mean', 'zero' or a "
        "lag in steps "
        f">= 1, got {naive_anchor!r}."
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


def window_mean_mse(values: Sequence[np.ndarray], input_length: int, horizons) -> float:
    """Mean squared error of forecasting each value by the mean of the ``input_length`` values before
    the origin (the input window's mean, a local climatology), in-sample.

    Parameters
    ----------
    values
        ``(T, D)`` arrays (NaN allowed: left out of the means and the errors).
    input_length
        Steps of the input window.
    horizons
        The horizons scored (``1 .. output_chunk_length``).

    Returns
    -------
    float
        The mean over horizons of each horizon's mean squared error (``inf`` where no series is long
        enough).
    """
    per_horizon: dict[int, list[float]] = {h: [] for h in horizons}
    for v in values:
        v = v.reshape(len(v), -1)
        present = ~np.isnan(v)
        zeros = np.zeros((1, v.shape[1]))
        sums = np.concatenate([zeros, np.cumsum(np.where(present, v, 0.0), axis=0)])
        counts = np.concatenate([zeros, np.cumsum(present, axis=0)])
        with np.errstate(invalid="ignore", divide="ignore"):
            # means[k]: the window ending at step k + input_length - 1 (the origin)
            means = (sums[input_length:] - sums[:-input_length]) / (
                counts[input_length:] - counts[:-input_length]
            )
        for h in per_horizon:
            if len(means) <= h:
                continue
            squared = (v[input_length - 1 + h :] - means[: len(means) - h]) ** 2
            if np.isfinite(squared).any():
                per_horizon[h].append(float(np.nanmean(squared)))
    if any(not errors for errors in per_horizon.values()):
        return float("inf")
    return float(np.mean([np.mean(errors) for errors in per_horizon.values()]))


def _recent(values: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(v, dtype=np.float64)[-MAX_SCORED_STEPS:] for v in values]


WINDOW_MEAN = 0
"""The key of the input window's mean in :func:`auto_anchor_errors` (no naive lag)."""


def auto_anchor_errors(
    freq,
    input_chunk_length: int,
    output_chunk_length: int,
    fold: int,
    values,
    gridded: bool = True,
) -> dict[int, float]:
    """In-sample errors of the starts a model can have: ``{lag in frames: MSE over the output
    horizon}``, with :data:`WINDOW_MEAN` (0) for the input window's mean.

    ``"auto"`` chooses among the naive lags only: of a folded series the frame before (the seasonal
    naive); of a grid persistence and the seasonal naive of the frequency's period where the input
    holds it; of an unfolded plain series persistence (a plain series whose data show a season is
    folded, and its anchor is then the seasonal naive). The window's mean is listed for comparison
    (``naive_anchor="mean"``). Measured on the robustness benchmark's validation parts (seed 0,
    against earlier runs anchored on persistence), ranking all of them, the seasonal naive of
    unfolded plain series included, changed the start of five data sets: two better (ILINet 0.44x
    the best naive forecast against 0.59x anchored on persistence, the synthetic linear trend 0.80x
    against 0.90x), two worse (NYC taxi passengers 1.06x against 0.91x, synthetic advection 0.42x
    against 0.18x; geometric mean of the four changes 1.16x) and the SOI-like index, with no run
    anchored on persistence to compare, 1.18x.

    Parameters
    ----------
    freq
        The training series' frequency.
    input_chunk_length, output_chunk_length
        The model's chunk lengths, in steps.
    fold
        The model's fold (1: one frame per step; ``P``: one frame per period).
    values
        The training series' values, ``(T, D)`` arrays.
    gridded
        Whether the target is a grid.
    """
    recent = _recent(values)
    errors = _naive_errors(freq, input_chunk_length, output_chunk_length, fold, recent, gridded)
    horizons = range(1, output_chunk_length + 1)
    errors[WINDOW_MEAN] = window_mean_mse(recent, input_chunk_length, horizons)
    return errors


def _naive_errors(
    freq, input_chunk_length: int, output_chunk_length: int, fold: int, recent, gridded: bool
) -> dict[int, float]:
    """The naive candidates of :func:`auto_anchor_errors` (what "auto" ranks), on ``_recent`` values."""
    horizons = range(1, output_chunk_length + 1)
    errors: dict[int, float] = {}
    if fold > 1:
        errors[1] = naive_mse(recent, {h: fold * -(-h // fold) for h in horizons})
    else:
        errors[1] = naive_mse(recent, {h: h for h in horizons})
        period = infer_period(freq) if gridded else None
        if period is not None and 2 <= period <= input_chunk_length:
            errors[period] = naive_mse(recent, {h: period * -(-h // period) for h in horizons})
    return errors


def resolve_anchor(
    naive_anchor,
    freq,
    input_chunk_length: int,
    output_chunk_length: int,
    fold: int,
    values: Sequence[np.ndarray] = (),
    has_location: bool = True,
    gridded: bool = True,
) -> tuple[int, bool]:
    """The anchor a model uses: its lag in frames (0: none, 1: the last frame, ``P``: a period), and
    whether it starts from the input window's mean (``"mean"``).

    Parameters
    ----------
    naive_anchor
        The model's ``naive_anchor``: ``False`` (none), ``True`` (the last frame: persistence, or the
        seasonal naive of a folded series), an integer lag in steps (``k``: the value ``k`` steps
        earlier; a multiple of the fold of a folded series), ``"seasonal"`` (the period of the
        frequency), ``"mean"`` (the input window's mean: no naive lag), ``"zero"`` (no naive lag;
        the caller starts the head at zero) or ``"auto"`` (the naive
        candidate of :func:`auto_anchor_errors` with the lowest in-sample error over the output
        horizon, or none when the training series' mean forecasts it better; none for a likelihood
        without a location) or ``"combined"`` ("auto"'s naive candidate, persistence where "auto"
        would choose none; the caller adds the combination of :mod:`darts_mim.naive_combination`).
    freq
        The training series' frequency.
    input_chunk_length, output_chunk_length
        The model's chunk lengths, in steps.
    fold
        The model's fold (1: one frame per step; ``P``: one frame per period).
    values
        The training series' values, ``(T, D)`` arrays; only ``"auto"`` reads them (without them,
        ``"auto"`` is persistence).
    has_location
        Whether the model's outputs are on the target's scale (no likelihood, quantiles, or a
        location-scale likelihood); ``"auto"`` anchors only those.
    gridded
        Whether the target is a grid (see :func:`auto_anchor_errors`).

    Returns
    -------
    tuple[int, bool]
        The lag in frames, and ``True`` for ``"mean"`` (then the lag is 0).

    Raises
    ------
    ValueError
        For a lag that the input cannot hold, a lag that is not a whole number of folded periods, or
        ``"seasonal"`` on a frequency without a period.
    """
    check_naive_anchor(naive_anchor)
    if (
        naive_anchor is False
        or naive_anchor == "zero"
        or (naive_anchor == "auto" and not has_location)
    ):
        return 0, False
    if naive_anchor is True or (naive_anchor == "seasonal" and fold > 1):
        return 1, False
    if naive_anchor == "seasonal":
        period = infer_period(freq)
        if period is None or not 2 <= period <= input_chunk_length:
            raise ValueError(
                f"naive_anchor='seasonal' repeats the values one period earlier, but the series' "
                f"frequency ({freq!r}) has "
                + (
                    "no natural period"
                    if period is None
                    else f"a period of {period} that an input of {input_chunk_length} steps "
                    "cannot hold"
                )
                + ". Pass the period as an integer lag (naive_anchor=24), True for the last "
                "value, or 'auto'."
            )
        return period, False
    if naive_anchor == "mean":
        return 0, True
    if naive_anchor == "combined":
        # the combination corrects a naive forecast: "auto"'s, but never none (the training mean is
        # one of the combined candidates)
        lag, _ = resolve_anchor(
            "auto",
            freq,
            input_chunk_length,
            output_chunk_length,
            fold,
            values,
            has_location,
            gridded,
        )
        return max(lag, 1), False
    if naive_anchor == "auto":
        if not values:
            return 1, False
        recent = _recent(values)
        naive = _naive_errors(freq, input_chunk_length, output_chunk_length, fold, recent, gridded)
        best = min(naive, key=lambda lag: (naive[lag], lag != 1))  # ties: persistence
        if mean_mse(recent) < naive[best]:
            # a mean-reverting series: the level, not a naive forecast, is the start
            return 0, False
        return best, False
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
    return lag // fold, False
