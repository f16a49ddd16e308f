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

import pandas as pd

# "auto" folds only when the input holds at least this many periods: with fewer, the recurrence
# across periods has nothing to difference.
MIN_INPUT_PERIODS = 2


def infer_period(freq) -> int | None:
    """The natural seasonal period of a series' frequency, or ``None`` when there is none.

    Sub-daily steps give a daily cycle (hourly: 24, 30 minutes: 48, 15 minutes: 96), steps under 15
    minutes an hourly one (minutes: 60), days a weekly one (7; business days 5), weeks a yearly one (52), months 12, quarters 4. Years, integer indexes and
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
    if name.startswith(("M", "SM", "BM", "CBM")) and name not in ("min", "ms"):
        return 12 // offset.n if 12 % offset.n == 0 and offset.n < 12 else None
    if name.startswith(("Q", "BQ")):
        return 4 if offset.n == 1 else None
    if name == "D":
        return 7 if offset.n == 1 else None
    try:
        step = pd.Timedelta(offset)
    except (ValueError, TypeError):
        return None
    # steps under 15 minutes: an hourly cycle (a daily one would be hundreds of steps long)
    cycle = pd.Timedelta(hours=1) if step < pd.Timedelta(minutes=15) else pd.Timedelta(days=1)
    if step >= cycle or cycle % step != pd.Timedelta(0):
        return None
    return int(cycle // step)


def resolve_fold(fold_period, freq, input_chunk_length: int, gridded: bool) -> int:
    """The fold a model uses: 1 (none) or the period ``P``.

    Parameters
    ----------
    fold_period
        The model's ``fold_period``: ``"auto"`` (the period of the frequency for a plain series whose
        input holds at least two periods, else no folding), ``None`` (no folding: one value per step,
        a 1x1 grid) or an integer period.
    freq
        The training series' frequency.
    input_chunk_length
        The model's input length in steps.
    gridded
        Whether the target is a grid (grids are never folded: their frames are already spatial).

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
    return period
