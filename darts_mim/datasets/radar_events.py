"""Several radar events at once: rain rates of different radars as training windows that never
straddle two events.

The radar events of :data:`~darts_mim.datasets.radar.RADAR_EVENTS` come from five radar networks
with five time steps (2, 5, 6, 10 and 15 minutes) and lengths from 13 to 144 frames. How they are
made comparable:

- **Time step.** By default each event keeps its **native step** and lead times count frames: a model
  with 6 frames in and 6 out nowcasts 12 minutes ahead on MRMS and 90 minutes on OPERA 2018. A common
  step would cost too much data: resampling to 10 or 15 minutes leaves OPERA 2024 (13 frames of 5
  minutes) and MRMS (36 frames of 2 minutes) with 5-7 frames, fewer than one 12-frame window, and
  interpolating frames in between invents motion. ``step_minutes`` subsamples to a coarser step
  where that is a whole multiple of an event's native step (e.g. ``{"radar_mrms_2019": 6}``: MRMS'
  field mostly changes every third 2-minute frame), and says which events cannot follow.
- **Intensity.** Values stay in mm/h for every radar: rain rate is one physical quantity, and
  pysteps' thresholds (0.1 mm/h for the motion, 1 and 5 mm/h for the scores) apply to all. A model
  divides them by one fixed unit (``scale``, mm/h per model unit) shared by all events, never by a
  per-event maximum, which would read the test event's future and give the same model output
  different meanings on different radars.
- **Grid.** Every event is 128 x 128 cells of about 2 km; ``pool=k`` mean-pools k x k cells (areal
  mean rain rate is kept), for budgets that cannot afford the full grid.

:func:`event_windows` turns the events into nowcast windows (targets and pysteps' extrapolation as
covariates, :func:`darts_mim.nowcast.nowcast_windows`) per event: lists of series that
``MIMModel.fit`` takes as one data set; a window never holds frames of two events.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from darts import TimeSeries

from darts_mim.grid import grid_to_series

from .radar import RADAR_EVENTS, load_radar


@dataclass
class RadarEvent:
    """One radar event's rain rates, as used by :func:`event_windows`.

    Attributes
    ----------
    name
        The event's name (a registry name for the real events).
    frames
        ``(T, H, W)`` rain rates in mm/h, float32, finite and >= 0.
    times
        The frames' time stamps.
    step_minutes
        The step between frames after any resampling.
    native_step_minutes
        The step of the source file.
    pool
        Cells mean-pooled per side (1: the source grid).
    """

    name: str
    frames: np.ndarray
    times: pd.DatetimeIndex
    step_minutes: int
    native_step_minutes: int
    pool: int = 1

    @property
    def series(self) -> TimeSeries:
        """The frames as a one-channel gridded series (``rain_rate``)."""
        return grid_to_series(self.frames[:, None], self.times, ["rain_rate"])

    def __len__(self) -> int:
        return len(self.frames)

    def describe(self) -> str:
        """One line: frames, grid, step."""
        resampled = (
            f", resampled from {self.native_step_minutes} min"
            if self.step_minutes != self.native_step_minutes
            else ""
        )
        pooled = f", {self.pool}x{self.pool} mean-pooled" if self.pool > 1 else ""
        return (
            f"{self.name}: {len(self)} frames of {self.frames.shape[1]} x {self.frames.shape[2]}"
            f"{pooled}, {self.step_minutes} min{resampled}, max {float(self.frames.max()):.1f} mm/h"
        )


def pool_frames(frames: np.ndarray, pool: int) -> np.ndarray:
    """Mean-pool ``(T, H, W)`` frames over ``pool x pool`` cells (rows and columns beyond a whole
    number of blocks are dropped)."""
    if int(pool) != pool or pool < 1:
        raise ValueError(f"pool must be a positive integer, got {pool!r}.")
    pool = int(pool)
    if pool == 1:
        return frames
    t, h, w = frames.shape
    if h < pool or w < pool:
        raise ValueError(f"pool={pool} is larger than the {h} x {w} grid.")
    h2, w2 = h // pool, w // pool
    cut = frames[:, : h2 * pool, : w2 * pool]
    return cut.reshape(t, h2, pool, w2, pool).mean(axis=(2, 4))


def _native_step(times: pd.DatetimeIndex, name: str) -> int:
    if len(times) < 2:
        raise ValueError(f"event {name!r} has {len(times)} frame(s); its step cannot be read.")
    steps = np.diff(times.asi8) / 60e9
    step = float(np.median(steps))
    if not np.allclose(steps, step) or step <= 0 or step != round(step):
        raise ValueError(
            f"event {name!r} is not evenly spaced in whole minutes (steps {sorted(set(steps))[:4]} "
            "min); fill or cut the gap first."
        )
    return int(step)


def _wanted_step(step_minutes: int | Mapping[str, int] | None, name: str) -> int | None:
    if isinstance(step_minutes, Mapping):
        return step_minutes.get(name)
    return step_minutes


def radar_event(
    name: str,
    frames: np.ndarray,
    times: Sequence | pd.DatetimeIndex | None = None,
    *,
    step_minutes: int | None = None,
    native_step_minutes: int | None = None,
    pool: int = 1,
    min_frames: int = 1,
) -> RadarEvent:
    """A :class:`RadarEvent` from an array of rain rates (any radar, or synthetic frames).

    Parameters
    ----------
    name
        The event's name (used in messages and tables).
    frames
        ``(T, H, W)`` rain rates in mm/h.
    times
        The frames' time stamps; without them, ``native_step_minutes`` makes an index from
        2000-01-01.
    step_minutes
        Resample to this step: a whole multiple of the native step, every ``k``-th frame kept.
    native_step_minutes
        The step when ``times`` is not given.
    pool
        Mean-pool ``pool x pool`` cells.
    min_frames
        Fewer frames than this (after resampling) is an error naming the event.

    Returns
    -------
    RadarEvent
    """
    values = np.asarray(frames, dtype=np.float32)
    if values.ndim != 3:
        raise ValueError(
            f"event {name!r}: frames must be a (T, H, W) array of rain rates, got {values.shape}."
        )
    if not np.isfinite(values).all():
        raise ValueError(f"event {name!r} holds non-finite rain rates; fill missing cells first.")
    if (values < 0).any():
        raise ValueError(f"event {name!r} holds negative rain rates; expected mm/h >= 0.")
    if times is None:
        if native_step_minutes is None:
            raise ValueError(f"event {name!r}: give its times or native_step_minutes.")
        times = pd.date_range("2000-01-01", periods=len(values), freq=f"{native_step_minutes}min")
    times = pd.DatetimeIndex(times)
    if len(times) != len(values):
        raise ValueError(f"event {name!r}: {len(values)} frames but {len(times)} time stamps.")
    native = _native_step(times, name)
    step = native if step_minutes is None else int(step_minutes)
    if step < native or step % native:
        raise ValueError(
            f"event {name!r} has a {native}-minute step; step_minutes={step} is not a whole "
            "multiple of it (only subsampling to a coarser step is supported)."
        )
    k = step // native
    values, times = values[::k], times[::k]
    if len(values) < min_frames:
        raise ValueError(
            f"event {name!r} has {len(values)} frames at a {step}-minute step; at least "
            f"{min_frames} are needed (one input and output window)."
        )
    values = pool_frames(values, pool).astype(np.float32)
    times = pd.DatetimeIndex(times, freq=f"{step}min")
    return RadarEvent(name, values, times, step, native, int(pool))


def load_radar_events(
    events: Iterable[str] = RADAR_EVENTS,
    path: str | os.PathLike | None = None,
    *,
    step_minutes: int | Mapping[str, int] | None = None,
    pool: int = 1,
    min_frames: int = 1,
) -> dict[str, RadarEvent]:
    """Several radar events (mm/h), each at its native step unless resampled.

    Parameters
    ----------
    events
        Names of :data:`~darts_mim.datasets.radar.RADAR_EVENTS` (default: all six).
    path
        A data directory holding the event files (directly or in its ``gridded/`` folder);
        ``None``: found as :func:`~darts_mim.datasets.load_radar` finds them (the KNMI event is
        bundled; the others from ``DARTS_MIM_DATA``, ``../shared/data`` beside a clone, the cache
        or the mirror).
    step_minutes
        ``None``: every event at its native step (lead times then count frames). An int, or a dict
        of event name -> int: subsample those events to that step, a whole multiple of the native
        one (an error otherwise).
    pool
        Mean-pool ``pool x pool`` cells (``2``: 64 x 64 cells of 4 km).
    min_frames
        Each event needs at least this many frames after resampling (e.g. the window length).

    Returns
    -------
    dict
        Event name -> :class:`RadarEvent`, in the order given.
    """
    names = list(events)
    if not names:
        raise ValueError("events is empty; name at least one of RADAR_EVENTS.")
    unknown = [e for e in names if e not in RADAR_EVENTS]
    if unknown:
        raise ValueError(f"Unknown radar event(s) {unknown}; choose from {RADAR_EVENTS}.")
    if len(set(names)) != len(names):
        raise ValueError(f"events lists an event twice: {names}.")
    if isinstance(step_minutes, Mapping):
        extra = [e for e in step_minutes if e not in names]
        if extra:
            raise ValueError(f"step_minutes names event(s) {extra} that are not loaded.")
    out = {}
    for name in names:
        data = load_radar(path, event=name)
        frames = data.to_array()[:, 0]
        out[name] = radar_event(
            name,
            frames,
            data.series.time_index,
            step_minutes=_wanted_step(step_minutes, name),
            pool=pool,
            min_frames=min_frames,
        )
    return out


def event_windows(
    events: Mapping[str, RadarEvent] | Sequence[RadarEvent],
    input_chunk_length: int,
    output_chunk_length: int,
    *,
    residual: bool = True,
    scale: float = 1.0,
    stride: int = 1,
    motion: str = "LK",
    fill: str = "persistence",
) -> dict[str, tuple[list[TimeSeries], list[TimeSeries]]]:
    """Nowcast windows per event: ``input_chunk_length + output_chunk_length`` frames each, all
    inside one event, with pysteps' extrapolation nowcast from the window's origin as covariates.

    Parameters
    ----------
    events
        :class:`RadarEvent` objects (a dict from :func:`load_radar_events` or a list).
    input_chunk_length, output_chunk_length
        The model's chunk lengths.
    residual, motion, fill
        See :func:`darts_mim.nowcast.nowcast_windows`.
    scale
        The model unit in mm/h, one for every event.
    stride
        Every ``stride``-th origin of each event.

    Returns
    -------
    dict
        Event name -> ``(targets, covariates)``, lists of series; concatenate the lists of the
        training events for ``MIMModel.fit(targets, future_covariates=covariates)``.

    Raises
    ------
    ValueError
        When an event is shorter than one window, naming it.
    """
    from darts_mim.nowcast import nowcast_windows

    items = list(events.values()) if isinstance(events, Mapping) else list(events)
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}.")
    need = input_chunk_length + output_chunk_length
    short = [f"{e.name} ({len(e)})" for e in items if len(e) < need]
    if short:
        raise ValueError(
            f"event(s) {', '.join(short)} have fewer frames than one window "
            f"(input_chunk_length + output_chunk_length = {need}); leave them out or shorten the "
            "chunks."
        )
    out = {}
    for e in items:
        origins = list(range(input_chunk_length - 1, len(e) - output_chunk_length, stride))
        out[e.name] = nowcast_windows(
            e.series,
            input_chunk_length,
            output_chunk_length,
            origins=origins,
            residual=residual,
            scale=scale,
            motion=motion,
            fill=fill,
        )
    return out
