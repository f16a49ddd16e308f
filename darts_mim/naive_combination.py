"""``naive_anchor="combined"``: a per-lead least-squares combination of naive forecasts as the start.

One naive forecast is rarely the best at every lead: persistence wins the first steps of most series,
the seasonal naive or the training mean (climatology) the later ones, a drift line a trend. Of the
naive forecasts that the input window holds (persistence, the seasonal naive of each period the window
holds, the window's mean, the drift line through its first and last values) and the training mean,
``"combined"`` fits, for each lead separately, the weights that forecast the training series best
(ordinary least squares, a small ridge), once when the network is built. Every candidate is a linear
function of the input window (the training mean a constant per component), so the combination is a
fixed ``(output, input)`` matrix plus a constant per lead and component: the model adds it to the
forecast of its naive anchor, whose head starts at zero, so that the untrained model *is* the
combination and training learns the correction.

The combination is fitted as a correction of the anchor's own forecast (weights relative to it), so
under reversible instance norm, where the window is normalised, everything but the training mean is
unchanged by the norm; the training mean is then left out. The training mean is one per component,
pooled over every training series: a global model of series at different levels gets their average.
Like ``linear_residual``, the combination is added after the network's decoding: the frames the
network feeds back to itself are its anchored outputs without it (a forecast longer than the output
chunk feeds Darts' roll the combined values).

This module is torch-free: :func:`fit_naive_combination` returns plain arrays that the model saves with
its configuration and the network module turns into buffers (:mod:`darts_mim.module`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Values (origins x components x window and chunk steps) read per fit: enough for a handful of weights
# per lead, and about 80 MB on a large grid or a long window.
MAX_VALUES = 10_000_000
# Ridge on the weights, relative to the mean diagonal of the normal equations: keeps near-collinear
# candidates (the window's mean and the seasonal naive of a smooth series) from cancelling each other.
RIDGE = 1e-3


@dataclass(frozen=True)
class NaiveCombination:
    """A fitted combination: ``forecast[h, d] += sum_t matrix[h, t] * window[t, d] + offset[h, d]``.

    Attributes
    ----------
    candidates
        The naive forecasts combined, in words, in the order of :attr:`weights`' columns.
    weights
        ``(horizon, candidates)``: each lead's weight on each candidate; each row with the anchor's
        own weight (``1 - sum``) sums to 1.
    matrix
        ``(horizon, input_length)``: the combination minus the anchor's forecast, on the window.
    climatology
        ``(components,)``: the training mean of each component (zeros where the mean is left out).
    """

    candidates: tuple[str, ...]
    weights: np.ndarray
    matrix: np.ndarray
    climatology: np.ndarray

    @property
    def offset(self) -> np.ndarray:
        """``(horizon, components)``: the constant part (the training mean's weighted share)."""
        if "training mean" not in self.candidates:
            return np.zeros((len(self.matrix), len(self.climatology)))
        column = self.candidates.index("training mean")
        return np.outer(self.weights[:, column], self.climatology)

    def to_dict(self) -> dict:
        return {
            "candidates": list(self.candidates),
            "weights": self.weights.tolist(),
            "matrix": self.matrix.tolist(),
            "climatology": self.climatology.tolist(),
        }

    @classmethod
    def from_dict(cls, values: dict) -> NaiveCombination:
        return cls(
            tuple(values["candidates"]),
            np.asarray(values["weights"], dtype=np.float64),
            np.asarray(values["matrix"], dtype=np.float64),
            np.asarray(values["climatology"], dtype=np.float64),
        )

    def describe(self, anchor: str) -> str:
        """The combination in words, for ``model.config``: ``anchor`` is the anchor's own words."""
        names = ", ".join(self.candidates)
        return f"a least-squares combination per lead of {anchor}, {names} (fitted in-sample)"


def seasonal_rows(input_length: int, horizon: int, period: int) -> np.ndarray:
    """``(horizon, input_length)``: the value ``period`` steps before each lead, repeated over the
    horizon (``period = 1``: persistence); the window's last value is column ``input_length - 1``."""
    rows = np.zeros((horizon, input_length))
    for h in range(1, horizon + 1):
        rows[h - 1, input_length - 1 + h - period * -(-h // period)] = 1.0
    return rows


def candidate_rows(
    input_length: int, horizon: int, periods: Sequence[int]
) -> dict[str, np.ndarray]:
    """The naive forecasts that the window holds, each as ``(horizon, input_length)`` rows."""
    rows = {"persistence": seasonal_rows(input_length, horizon, 1)}
    for period in sorted({int(p) for p in periods if 2 <= p <= input_length}):
        rows[f"the seasonal naive ({period} steps)"] = seasonal_rows(input_length, horizon, period)
    rows["the window's mean"] = np.full((horizon, input_length), 1.0 / input_length)
    if input_length >= 2:
        # the line through the window's first and last values, continued
        drift = seasonal_rows(input_length, horizon, 1)
        slope = np.arange(1, horizon + 1) / (input_length - 1)
        drift[:, -1] += slope
        drift[:, 0] -= slope
        rows["drift"] = drift
    return rows


def _windows(values: Sequence[np.ndarray], input_length: int, horizon: int, max_values: int):
    """Windows and their targets, ``(N, input_length, D)`` and ``(N, horizon, D)``, origins spread
    evenly over each series and capped so that ``N * D * (input_length + horizon) <= max_values``."""
    per_origin = values[0].shape[1] * (input_length + horizon)
    total = sum(max(len(v) - input_length - horizon + 1, 0) for v in values)
    step = max(1, -(-total * per_origin // max_values))
    windows, targets = [], []
    for v in values:
        starts = np.arange(0, len(v) - input_length - horizon + 1, step)
        if not len(starts):
            continue
        index = starts[:, None] + np.arange(input_length + horizon)[None]
        chunk = v[index]  # (N, L + H, D)
        windows.append(chunk[:, :input_length])
        targets.append(chunk[:, input_length:])
    if not windows:
        raise ValueError(
            f"naive_anchor='combined' fits its weights on the training series, but none has the "
            f"{input_length + horizon} steps of one input window and its output chunk. Use a longer "
            "series, or naive_anchor='auto'."
        )
    return np.concatenate(windows), np.concatenate(targets)


def fit_naive_combination(
    values: Sequence[np.ndarray],
    input_length: int,
    horizon: int,
    anchor_lag: int,
    periods: Sequence[int] = (),
    climatology: bool = True,
    max_values: int = MAX_VALUES,
) -> NaiveCombination:
    """Fit each lead's weights on the candidates by least squares on the training series.

    Parameters
    ----------
    values
        The training series' values, ``(T, D)`` arrays on the scale the model reads (NaN allowed:
        rows with a missing value are left out).
    input_length, horizon
        The model's input chunk length and output chunk length (plus shift), in steps.
    anchor_lag
        The lag in steps of the model's own naive anchor (1: persistence; ``P``: the seasonal naive
        of period ``P``), whose forecast the combination corrects.
    periods
        Seasonal periods in steps; those the window holds become candidates.
    climatology
        Whether the training mean is a candidate (not under instance norm: it is not a function of
        the normalised window).
    max_values
        At most this many values are read (origins are thinned evenly to fit).

    Returns
    -------
    NaiveCombination
    """
    values = [np.asarray(v, dtype=np.float64).reshape(len(v), -1) for v in values if len(v)]
    if not values:
        raise ValueError(
            "naive_anchor='combined' fits its weights on the training series' values, and this "
            "training data exposes none (a custom training dataset without `series`). Fit on "
            "TimeSeries, or use naive_anchor='auto'."
        )
    rows = candidate_rows(input_length, horizon, [*periods, anchor_lag])
    anchor = seasonal_rows(input_length, horizon, anchor_lag)
    others = {
        name: r for name, r in rows.items() if not np.array_equal(r, anchor)
    }  # the anchor's own forecast is the reference, not a column
    n_components = values[0].shape[1]
    mean = np.nanmean(np.concatenate(values), axis=0) if climatology else np.zeros(n_components)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    windows, targets = _windows(values, input_length, horizon, max_values)
    names = list(others) + (["training mean"] if climatology else [])
    weights = np.zeros((horizon, len(names)))
    for h in range(horizon):
        base = np.einsum("t,ntd->nd", anchor[h], windows)
        columns = [np.einsum("t,ntd->nd", r[h], windows) - base for r in others.values()]
        if climatology:
            columns.append(np.broadcast_to(mean, base.shape) - base)
        design = np.stack([c.ravel() for c in columns], axis=1)
        residual = (targets[:, h] - base).ravel()
        kept = np.isfinite(residual) & np.isfinite(design).all(axis=1)
        design, residual = design[kept], residual[kept]
        if not len(residual):
            continue  # no complete row at this lead: keep the anchor
        gram = design.T @ design
        ridge = RIDGE * max(float(np.trace(gram)) / len(gram), 1e-12)
        weights[h] = np.linalg.solve(gram + ridge * np.eye(len(gram)), design.T @ residual)
    matrix = np.zeros((horizon, input_length))
    for k, r in enumerate(others.values()):
        matrix += weights[:, k : k + 1] * (r - anchor)
    if climatology:
        matrix -= weights[:, -1:] * anchor
    return NaiveCombination(tuple(names), weights, matrix, mean)
