"""Motion-aware radar nowcasting: pysteps' extrapolation nowcast as gridded covariates for MIMModel.

Optical-flow extrapolation (a motion field estimated from the last radar frames, the last frame
advected along it) explains most of what happens in the next half hour of a rain field; what it
cannot explain is growth, decay and deformation. The helpers here compute that extrapolation with
`pysteps <https://pysteps.github.io>`_ and hand it to :class:`~darts_mim.MIMModel` as a **gridded
future covariate** (one channel on the target's grid), so the network only has to learn the rest.

The nowcast depends on the forecast origin (it extrapolates from the last observed frame), so its
covariate series belongs to one origin: :func:`nowcast_covariates` builds it for one history (serving:
the last frames you have), :func:`nowcast_windows` for every origin of a long series (training and
backtests: one short target window and its covariates per origin, a list of series that ``fit``,
``predict`` and ``historical_forecasts`` take as they take any list of series). With
``residual=True`` the targets are the observations minus the nowcast, so a zero forecast *is* the
extrapolation nowcast and training learns a correction to it; :func:`subtract_nowcast` makes the
residual input window at serving time and :func:`add_nowcast` turns a residual forecast back into rain
rates, optionally scaling the correction per lead by weights that :func:`fit_lead_weights` fits on
validation events; :func:`intensity_weights` turns observed rain into sample weights for a balanced
(intensity-weighted) loss; :func:`recentre_ensemble` makes an ensemble of the nowcast from STEPS'
members (their spread around the nowcast). ``scale`` (mm/h per model unit, e.g. the training frames' maximum) puts targets and the
nowcast channel in the model's unit while the nowcast itself is computed in mm/h.

Covariate values, for a history ``x_0 .. x_L`` (the origin is ``L``) and a motion field ``V``
estimated from ``x_{L-2}, x_{L-1}, x_L`` (``motion_frames=3``):

- steps ``L+1 .. L+n`` (the forecast): ``x_L`` advected ``1 .. n`` steps along ``V``;
- steps ``1 .. L`` (the input window): ``x_{t-1}`` advected one step along ``V`` (what the same
  extrapolation would have said one step ahead), step ``0``: ``x_0`` itself.

Everything is computed from frames up to the origin: no value after the origin enters a covariate.

Cells that the advection brings in from outside the domain (pysteps leaves them NaN) are filled with
the last observed frame's value at that cell (``fill="persistence"``, the default) or with 0
(``fill="zero"``, no rain flowing in).

pysteps is an optional dependency (``pip install "darts-mim[radar]"``); it is imported when a helper
is called, not with this module, which needs neither pysteps nor torch to import.
"""

from __future__ import annotations

import importlib
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
from darts import TimeSeries

from darts_mim.grid import grid_spec_of, grid_to_series, series_to_grid

MOTION_METHODS = ("LK", "VET")
"""Motion estimators of pysteps that the helpers accept: Lucas-Kanade optical flow (fast) and the
variational echo tracking of Laroche and Zawadzki (a global optimisation per field, much slower)."""

FILL_MODES = ("persistence", "zero")

# pysteps' usual dB transform for motion estimation: rain below 0.1 mm/h is "no rain", at -15 dBR
DB_THRESHOLD = 0.1
DB_ZERO = -15.0


def import_pysteps() -> Any:
    """Import pysteps, or say how to install it.

    Returns
    -------
    module
        The ``pysteps`` package.

    Raises
    ------
    ImportError
        When pysteps (or OpenCV, which its Lucas-Kanade optical flow needs) is not installed.
    """
    try:
        # pysteps prints its configuration file's path on import; the message is noise here
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            pysteps = importlib.import_module("pysteps")
    except ImportError as err:
        raise ImportError(
            "Radar nowcasting needs pysteps, an optional dependency of darts-mim: "
            'pip install "darts-mim[radar]" (or: pip install pysteps opencv-python-headless). '
            f"Import failed with: {err}"
        ) from err
    return pysteps


def _refuse_non_finite(values: np.ndarray, what: str, axes: Sequence[str], fix: str) -> None:
    """Refuse NaN or inf in ``values``, naming the first one by ``axes`` (one name per axis)."""
    if np.isfinite(values).all():
        return
    first = np.argwhere(~np.isfinite(values))[0]
    where = ", ".join(f"{axis} {i}" for axis, i in zip(axes, first, strict=True))
    raise ValueError(f"{what} holds a non-finite value (first at {where}); {fix}")


def _check_frames(frames: np.ndarray, what: str, min_frames: int) -> np.ndarray:
    values = np.asarray(frames, dtype=np.float64)
    if values.ndim != 3:
        raise ValueError(
            f"{what} must be a (T, H, W) array of rain rates, got shape {values.shape}."
        )
    if len(values) < min_frames:
        raise ValueError(
            f"{what} has {len(values)} frame(s); estimating the motion needs at least {min_frames}."
        )
    _check_rain_rates(
        values,
        what,
        ("frame", "row", "column"),
        "the optical flow needs finite rain rates. Fill missing cells first (e.g. "
        "np.nan_to_num(frames, nan=0.0)).",
    )
    return values


def _check_rain_rates(values: np.ndarray, what: str, axes: Sequence[str], fix: str) -> None:
    """Refuse non-finite values (``fix`` says what to do) and negative rain rates."""
    _refuse_non_finite(values, what, axes, fix)
    if (values < 0).any():
        raise ValueError(f"{what} holds negative values; expected rain rates (mm/h) >= 0.")


def _check_steps(n: int) -> int:
    """``n`` as a Python int >= 1: pysteps takes only an ``int`` as a number of steps and reads
    anything else (``numpy.int64(6)``) as a list of time steps, failing with "diff requires input
    that is at least one dimensional"."""
    try:
        steps = operator.index(n)
    except TypeError:
        raise ValueError(f"n must be a whole number of steps, got {n!r}.") from None
    if steps < 1:
        raise ValueError(f"n must be >= 1, got {n}.")
    return int(steps)


def _check_options(motion: str, fill: str, motion_frames: int) -> None:
    if motion not in MOTION_METHODS:
        raise ValueError(f"motion={motion!r} is not one of {MOTION_METHODS}.")
    if fill not in FILL_MODES:
        raise ValueError(f"fill={fill!r} is not one of {FILL_MODES}.")
    if motion_frames < 2:
        raise ValueError(f"motion_frames must be >= 2, got {motion_frames}.")


def motion_field(frames: np.ndarray, motion: str = "LK", motion_frames: int = 3) -> np.ndarray:
    """The advection field of the last ``motion_frames`` frames, in cells per time step.

    Parameters
    ----------
    frames
        ``(T, H, W)`` rain rates (mm/h), oldest first, ``T >= motion_frames``.
    motion
        ``"LK"`` (Lucas-Kanade, pysteps' ``dense_lucaskanade``) or ``"VET"``.
    motion_frames
        How many of the last frames the estimator sees (pysteps' examples use 3).

    Returns
    -------
    numpy.ndarray
        ``(2, H, W)``: the x (column) and y (row) displacement per step.
    """
    _check_options(motion, "persistence", motion_frames)
    values = _check_frames(frames, "frames", motion_frames)[-motion_frames:]
    import_pysteps()
    from pysteps import motion as ps_motion
    from pysteps.utils import transformation

    # estimated in dBR as in pysteps' own examples: the log scale keeps light rain trackable
    # next to heavy cores
    db, _ = transformation.dB_transform(values, threshold=DB_THRESHOLD, zerovalue=DB_ZERO)
    db[~np.isfinite(db)] = DB_ZERO
    return np.asarray(ps_motion.get_method(motion)(db, verbose=False), dtype=np.float64)


def extrapolate(
    frame: np.ndarray, velocity: np.ndarray, n: int, fill: str = "persistence"
) -> np.ndarray:
    """Semi-Lagrangian extrapolation of one frame along a motion field, ``n`` steps ahead.

    Parameters
    ----------
    frame
        ``(H, W)`` rain rates.
    velocity
        ``(2, H, W)`` motion field from :func:`motion_field`.
    n
        Number of steps.
    fill
        How cells advected in from outside the domain are filled: ``"persistence"`` (the value of
        ``frame`` at that cell) or ``"zero"``.

    Returns
    -------
    numpy.ndarray
        ``(n, H, W)``, finite.
    """
    _check_options("LK", fill, 3)
    n = _check_steps(n)
    # checked here rather than left to pysteps, whose errors ("cannot reshape array of size 128",
    # "precip contains non-finite values") name neither argument, and which clips negatives silently
    frame = np.asarray(frame, dtype=np.float64)
    if frame.ndim != 2:
        raise ValueError(f"frame must be an (H, W) array of rain rates, got shape {frame.shape}.")
    _check_rain_rates(
        frame,
        "frame",
        ("row", "column"),
        "extrapolation needs finite rain rates. Fill missing cells first (e.g. "
        "np.nan_to_num(frame, nan=0.0)).",
    )
    velocity = np.asarray(velocity, dtype=np.float64)
    if velocity.shape != (2, *frame.shape):
        raise ValueError(
            f"velocity must be a (2, H, W) motion field for the {frame.shape} frame (see "
            f"motion_field), got shape {velocity.shape}."
        )
    _refuse_non_finite(
        velocity,
        "velocity",
        ("component", "row", "column"),
        "a motion field needs finite values (motion_field returns finite ones).",
    )
    import_pysteps()
    from pysteps import extrapolation

    out = extrapolation.get_method("semilagrangian")(frame, velocity, n, outval=np.nan)
    out = np.asarray(out, dtype=np.float64)
    empty = ~np.isfinite(out)
    if fill == "persistence":
        out[empty] = np.broadcast_to(frame, out.shape)[empty]
    else:
        out[empty] = 0.0
    return np.clip(out, 0.0, None)


def nowcast_frames(
    frames: np.ndarray,
    n: int,
    motion: str = "LK",
    fill: str = "persistence",
    motion_frames: int = 3,
    include_motion: bool = False,
) -> np.ndarray:
    """Covariate frames for one origin: the history's one-step extrapolations, then the nowcast.

    Parameters
    ----------
    frames
        ``(L, H, W)`` rain rates up to the origin (the last frame).
    n
        Forecast steps.
    motion, fill, motion_frames
        See :func:`motion_field` and :func:`extrapolate`.
    include_motion
        Also return the motion field, repeated at every step, as two more channels.

    Returns
    -------
    numpy.ndarray
        ``(L + n, C, H, W)`` with ``C = 1`` (or 3 with the motion field): see the module docstring.
    """
    _check_options(motion, fill, motion_frames)
    values = _check_frames(frames, "frames", motion_frames)
    velocity = motion_field(values, motion, motion_frames)
    future = extrapolate(values[-1], velocity, n, fill)
    past = [values[0]] + [
        extrapolate(values[t - 1], velocity, 1, fill)[0] for t in range(1, len(values))
    ]
    out = np.concatenate([np.stack(past), future])[:, None]
    if include_motion:
        out = np.concatenate([out, np.broadcast_to(velocity, (len(out), *velocity.shape))], axis=1)
    return out.astype(np.float32)


def _check_scale(scale: float) -> None:
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number (mm/h per model unit), got {scale}.")


def _scale_nowcast(cov: np.ndarray, scale: float) -> np.ndarray:
    """The nowcast channel in model units; the motion channels stay in cells per step."""
    out = cov.copy()
    out[:, 0] /= scale
    return out


def _rain_grid(series: TimeSeries, what: str) -> np.ndarray:
    spec = grid_spec_of(series)
    if spec is None:
        raise ValueError(
            f"{what} carries no grid metadata: build the rain-rate series with "
            "darts_mim.grid_to_series() (or load_radar(...).series)."
        )
    if spec.n_channels != 1:
        raise ValueError(
            f"{what} is a {spec.describe()}; the nowcast needs one channel of rain rates."
        )
    if not series.is_deterministic:
        raise ValueError(f"{what} is stochastic; pass a deterministic rain-rate series.")
    return series_to_grid(series)[:, 0]


def _covariate_series(values: np.ndarray, times, include_motion: bool) -> TimeSeries:
    names = ["nowcast", "motion_x", "motion_y"] if include_motion else ["nowcast"]
    return grid_to_series(values, times, names)


def _future_index(series: TimeSeries, n: int):
    import pandas as pd

    if isinstance(series.time_index, pd.DatetimeIndex):
        return pd.date_range(series.end_time() + series.freq, periods=n, freq=series.freq)
    step = series.freq
    return pd.RangeIndex(series.end_time() + step, series.end_time() + step * (n + 1), step)


def nowcast_covariates(
    series: TimeSeries,
    n: int,
    motion: str = "LK",
    fill: str = "persistence",
    motion_frames: int = 3,
    include_motion: bool = False,
    scale: float = 1.0,
) -> TimeSeries:
    """Gridded future covariates holding the extrapolation nowcast, for a forecast from the end of
    ``series``.

    Parameters
    ----------
    series
        A one-channel gridded series of rain rates (mm/h), e.g. ``load_radar().series``, ending at the
        forecast origin. Its last ``input_chunk_length`` steps are what the model reads.
    n
        Forecast steps (the covariates cover the series' time index plus ``n`` steps).
    motion, fill, motion_frames, include_motion
        See :func:`nowcast_frames`.
    scale
        The model's unit in mm/h: the nowcast channel is divided by it (it is computed in mm/h,
        where pysteps' thresholds apply). Use the ``scale`` the model was trained with.

    Returns
    -------
    TimeSeries
        A gridded series on the target's grid, channel ``nowcast`` (plus ``motion_x``, ``motion_y``),
        from the series' first step to ``n`` steps after its last: pass it as ``future_covariates`` to
        ``MIMModel.predict`` or ``OnnxForecaster.predict``.

    Examples
    --------
    >>> targets, covs = nowcast_windows(radar, 6, 6, residual=True, scale=10.0)  # doctest: +SKIP
    >>> model.fit(targets, future_covariates=covs)  # doctest: +SKIP
    >>> history = radar[-6:]  # the last frames observed, mm/h
    >>> cov = nowcast_covariates(history, 6, scale=10.0)  # doctest: +SKIP
    >>> residual = subtract_nowcast(history, cov, scale=10.0)  # doctest: +SKIP
    >>> forecast = model.predict(6, series=residual, future_covariates=cov)  # doctest: +SKIP
    >>> rain = add_nowcast(forecast, cov, scale=10.0)  # mm/h  # doctest: +SKIP
    """
    n = _check_steps(n)
    _check_scale(scale)
    grid = _rain_grid(series, "series")
    values = _scale_nowcast(
        nowcast_frames(grid, n, motion, fill, motion_frames, include_motion), scale
    )
    times = series.time_index.append(_future_index(series, n))
    return _covariate_series(values, times, include_motion)


def nowcast_windows(
    series: TimeSeries,
    input_chunk_length: int,
    output_chunk_length: int,
    origins: Sequence[int] | None = None,
    residual: bool = False,
    motion: str = "LK",
    fill: str = "persistence",
    motion_frames: int = 3,
    include_motion: bool = False,
    scale: float = 1.0,
) -> tuple[list[TimeSeries], list[TimeSeries]]:
    """One target window and its nowcast covariates per forecast origin of a long rain-rate series.

    For training (every origin whose window lies in the training frames) and for rolling-origin
    backtests: each target is ``input_chunk_length + output_chunk_length`` steps, its covariates the
    same steps computed from the frames up to the origin only. ``fit(targets, future_covariates=
    covariates)`` trains on them, ``historical_forecasts(targets, future_covariates=covariates,
    start=input_chunk_length, start_format="position", forecast_horizon=output_chunk_length,
    retrain=False)`` forecasts each window from its origin.

    Parameters
    ----------
    series
        A one-channel gridded series of rain rates (mm/h).
    input_chunk_length, output_chunk_length
        The model's chunk lengths.
    origins
        Positions of the last observed frame of each window (``input_chunk_length - 1`` .. ``len -
        output_chunk_length - 1``); default: all of them.
    residual
        Targets are the observations minus the covariates' nowcast channel (forecast residuals: a
        zero forecast is the extrapolation nowcast); see :func:`add_nowcast`.
    motion, fill, motion_frames, include_motion
        See :func:`nowcast_frames`.
    scale
        The model's unit in mm/h: targets and the nowcast channel are divided by it (the nowcast
        is computed in mm/h first), e.g. the largest rain rate of the training frames.

    Returns
    -------
    (list of TimeSeries, list of TimeSeries)
        The target windows (one-channel gridded, the series' channel name) and their covariates.
    """
    if input_chunk_length < motion_frames:
        raise ValueError(
            f"input_chunk_length ({input_chunk_length}) must be >= motion_frames ({motion_frames}): "
            "the motion is estimated from the input window."
        )
    if output_chunk_length < 1:
        raise ValueError(f"output_chunk_length must be >= 1, got {output_chunk_length}.")
    _check_scale(scale)
    grid = _rain_grid(series, "series")
    first, last = input_chunk_length - 1, len(grid) - output_chunk_length - 1
    if last < first:
        raise ValueError(
            f"series has {len(grid)} steps; one window needs input_chunk_length + "
            f"output_chunk_length = {input_chunk_length + output_chunk_length}."
        )
    origins = list(range(first, last + 1)) if origins is None else [int(o) for o in origins]
    bad = [o for o in origins if not first <= o <= last]
    if bad:
        raise ValueError(f"origins {bad} are outside {first}..{last} for this series and chunks.")
    channel = grid_spec_of(series).channels[0]
    targets, covariates = [], []
    for o in origins:
        window = slice(o - input_chunk_length + 1, o + output_chunk_length + 1)
        cov = nowcast_frames(
            grid[window.start : o + 1],
            output_chunk_length,
            motion,
            fill,
            motion_frames,
            include_motion,
        )
        cov = _scale_nowcast(cov, scale)
        times = series.time_index[window]
        target = (grid[window][:, None] / scale).astype(np.float32)
        if residual:
            target = target - cov[:, :1]
        targets.append(grid_to_series(target, times, [channel]))
        covariates.append(_covariate_series(cov, times, include_motion))
    return targets, covariates


def _nowcast_on(series: TimeSeries, covariates: TimeSeries, what: str) -> np.ndarray:
    """The covariates' nowcast channel at the steps of ``series``, shaped like its values."""
    spec, cov_spec = grid_spec_of(series), grid_spec_of(covariates)
    if spec is None or cov_spec is None:
        raise ValueError(f"{what} needs gridded series (target and covariates).")
    # the cells are matched by position: a 16 x 64 series and 32 x 32 covariates have as many
    # cells, and the nowcast would land on other cells than its own
    if (spec.height, spec.width) != (cov_spec.height, cov_spec.width):
        raise ValueError(
            f"{what}: the series is on a {spec.height} x {spec.width} grid, the covariates on a "
            f"{cov_spec.height} x {cov_spec.width} one; pass the covariates built from this "
            "series' grid (nowcast_covariates of the same history)."
        )
    missing = series.time_index.difference(covariates.time_index)
    if len(missing):
        raise ValueError(
            f"The covariates do not cover the steps {list(missing[:3])}...: pass the covariates of "
            "the same origin (nowcast_covariates of the same history)."
        )
    nowcast = series_to_grid(covariates.slice_intersect(series))[:, :1]
    flat = nowcast.reshape(len(nowcast), -1, 1)
    if flat.shape[1] != series.n_components:
        raise ValueError(
            f"The series has {series.n_components} components per step, the nowcast {flat.shape[1]}."
        )
    return flat


def subtract_nowcast(series: TimeSeries, covariates: TimeSeries, scale: float = 1.0) -> TimeSeries:
    """Residual targets: a rain-rate series minus the nowcast at the same steps.

    What a model trained on ``nowcast_windows(..., residual=True)`` forecasts from: at serving time,
    ``subtract_nowcast(history, nowcast_covariates(history, n, scale=s), scale=s)``.

    Parameters
    ----------
    series
        One-channel gridded rain rates in mm/h (the input window).
    covariates
        Its nowcast covariates (covering the series' steps), built with the same ``scale``.
    scale
        The model's unit in mm/h (see :func:`nowcast_windows`).

    Returns
    -------
    TimeSeries
        The series' grid and time index: ``series / scale`` minus the nowcast, in model units.
    """
    _check_scale(scale)
    flat = _nowcast_on(series, covariates, "subtract_nowcast")
    values = series.all_values(copy=True)
    return series.with_values(values / scale - flat.astype(values.dtype))


def add_nowcast(
    forecast: TimeSeries,
    covariates: TimeSeries,
    scale: float = 1.0,
    lead_weights: Sequence[float] | None = None,
) -> TimeSeries:
    """Rain rates from a residual forecast: the forecast plus the nowcast at the same steps, >= 0.

    Parameters
    ----------
    forecast
        A forecast of residual targets (``nowcast_windows(..., residual=True)``), deterministic or
        with samples.
    covariates
        The covariates of the same origin (covering the forecast's steps).
    scale
        The model's unit in mm/h (see :func:`nowcast_windows`).
    lead_weights
        One weight per forecast step for the model's correction of the nowcast, e.g. from
        :func:`fit_lead_weights` on validation events: the rain rates become ``nowcast + w * (rain -
        nowcast)`` (mm/h, >= 0). ``None`` (default): weights of 1.

    Returns
    -------
    TimeSeries
        Rain rates (mm/h) on the forecast's grid and time index: ``(forecast + nowcast) * scale``,
        clipped at 0.
    """
    _check_scale(scale)
    flat = _nowcast_on(forecast, covariates, "add_nowcast")
    values = forecast.all_values(copy=True)  # (T, components, samples)
    flat = flat.astype(values.dtype)
    rain = np.clip((values + flat) * scale, 0.0, None)
    if lead_weights is not None:  # as weigh_corrections: the weighted step of the clipped rain
        base = flat * scale
        w = _lead_weights(lead_weights, len(forecast)).astype(values.dtype)[:, None, None]
        rain = np.clip(base + w * (rain - base), 0.0, None)
    return forecast.with_values(rain)


INTENSITY_THRESHOLDS = (2.0, 5.0, 10.0, 30.0)
"""Rain rates (mm/h) where :func:`intensity_weights` steps up (Shi et al., NeurIPS 2017, HKO-7)."""
INTENSITY_WEIGHTS = (1.0, 2.0, 5.0, 10.0, 30.0)
"""The weight below the first threshold, then above each (Shi et al.'s balanced losses)."""


def intensity_weights(
    rain: TimeSeries,
    thresholds: Sequence[float] = INTENSITY_THRESHOLDS,
    weights: Sequence[float] = INTENSITY_WEIGHTS,
) -> TimeSeries:
    """Per-cell sample weights that grow with the observed rain rate, for ``fit(sample_weight=)``.

    The balanced losses of the precipitation-nowcasting literature (B-MSE and B-MAE, Shi et al.,
    "Deep Learning for Precipitation Nowcasting: A Benchmark and a New Model", NeurIPS 2017) weigh
    each cell's error by the rain observed there, so that the few heavy-rain cells are not outvoted
    by the many dry ones and the loss does not pay the model for smoothing intensities away. With
    Darts' sample weights (one per step and component, i.e. per frame and cell), any loss of
    ``MIMModel`` becomes such a balanced loss.

    Parameters
    ----------
    rain
        Observed rain rates in mm/h on a grid: a training window's target, or, for residual targets
        (``nowcast_windows(..., residual=True)``), the rain itself, ``add_nowcast(target, covariates,
        scale)``.
    thresholds
        Increasing rain rates (mm/h) at which the weight steps up. Default: 2, 5, 10 and 30 mm/h.
    weights
        One more weight than thresholds, all > 0: the weight below the first threshold, then at or
        above each. Default: 1, 2, 5, 10 and 30. Missing cells (NaN) get the first weight.

    Returns
    -------
    TimeSeries
        The weights, on ``rain``'s grid and time index (one sample).

    Examples
    --------
    >>> weights = [intensity_weights(add_nowcast(t, c, scale)) for t, c in zip(targets, covs)]
    >>> model.fit(targets, future_covariates=covs, sample_weight=weights)
    """
    if grid_spec_of(rain) is None:
        raise ValueError(
            "intensity_weights needs a gridded rain-rate series (grid_to_series or a loader of "
            "darts_mim.datasets)."
        )
    edges = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    levels = np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(levels) != len(edges) + 1:
        raise ValueError(
            f"`weights` needs one more value than `thresholds` (the weight below the first "
            f"threshold), got {len(levels)} weights for {len(edges)} thresholds."
        )
    if np.any(np.diff(edges) <= 0) or not np.isfinite(edges).all():
        raise ValueError(f"`thresholds` must be finite and increasing, got {edges.tolist()}.")
    if not (np.isfinite(levels).all() and (levels > 0).all()):
        raise ValueError(f"`weights` must be finite and > 0, got {levels.tolist()}.")
    if not rain.is_deterministic:
        raise ValueError(
            f"intensity_weights needs observed rain (one sample), got {rain.n_samples} samples."
        )
    values = rain.all_values(copy=False)
    w = levels[np.digitize(np.nan_to_num(values, nan=-np.inf), edges)]
    return rain.with_values(w.astype(values.dtype))


def _lead_weights(weights, n_leads: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(w) != n_leads or not np.isfinite(w).all():
        raise ValueError(
            f"lead_weights needs one finite weight per forecast step ({n_leads}), got "
            f"{len(w)}: {w.tolist()}."
        )
    return w


def fit_lead_weights(
    base: np.ndarray,
    nowcast: np.ndarray,
    observed: np.ndarray,
    groups: Sequence | None = None,
) -> np.ndarray:
    """Per lead, the weight of a nowcast's correction of its base that minimises the squared error
    on validation origins: fit on events the model did not train on, apply with
    :func:`add_nowcast`'s ``lead_weights`` (or :func:`weigh_corrections`).

    A correction trained to cover growth and decay can cost, at the first leads, what the motion
    already explains; the weight scales it down where it does (``base + w * (nowcast - base)``,
    ``w`` in [0, 1]).

    The same fit blends two nowcasts: with the STEPS mean as ``base`` and MIM's nowcast as
    ``nowcast``, ``w`` is MIM's share per lead of their blend (``weigh_corrections(steps_mean,
    mim, w)``), which keeps the STEPS mean's smoothing where it pays at the later leads.

    Parameters
    ----------
    base, nowcast, observed
        ``(origins, leads, H, W)`` rain rates (mm/h): the base nowcast (e.g. the LK extrapolation,
        or the STEPS mean for a blend), the corrected nowcast (e.g. :func:`add_nowcast` of MIM's
        forecast) and the observed frames.
    groups
        One label per origin (its event). Each group's squared errors are divided by its base's
        mean squared error at that lead, so that a heavy-rain event does not decide alone.
        ``None``: one group.

    Returns
    -------
    numpy.ndarray
        One weight per lead, in [0, 1] (0 where the correction never moves the base).
    """
    base, nowcast, observed = (np.asarray(a, dtype=np.float64) for a in (base, nowcast, observed))
    if not base.shape == nowcast.shape == observed.shape or base.ndim != 4:
        raise ValueError(
            f"`base` {base.shape}, `nowcast` {nowcast.shape} and `observed` {observed.shape} must "
            "all be (origins, leads, H, W) arrays of the same shape."
        )
    for name, values in (("base", base), ("nowcast", nowcast), ("observed", observed)):
        # a NaN would make its lead's sums NaN, and that lead's weight 0 (the correction dropped)
        _refuse_non_finite(
            values,
            f"`{name}`",
            ("origin", "lead", "row", "column"),
            "leave out the origins with missing cells, or fill them, before fitting the weights.",
        )
    labels = np.zeros(len(base), dtype=int) if groups is None else np.asarray(groups)
    if labels.ndim != 1 or len(labels) != len(base):
        raise ValueError(
            f"`groups` must hold one label per origin ({len(base)}), got an array of shape "
            f"{labels.shape}."
        )
    correction, error = nowcast - base, observed - base
    num = np.zeros(base.shape[1])
    den = np.zeros(base.shape[1])
    for label in np.unique(labels):
        c, r = correction[labels == label], error[labels == label]
        norm = np.maximum(np.mean(r**2, axis=(0, 2, 3)), 1e-12) * c[:, 0].size
        num += np.sum(c * r, axis=(0, 2, 3)) / norm
        den += np.sum(c * c, axis=(0, 2, 3)) / norm
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return np.clip(weights, 0.0, 1.0)


def weigh_corrections(base: np.ndarray, nowcast: np.ndarray, lead_weights) -> np.ndarray:
    """``base + w * (nowcast - base)`` per lead, >= 0, for ``(origins, leads, H, W)`` rain rates
    (the array form of :func:`add_nowcast`'s ``lead_weights``; with the STEPS mean as ``base``, the
    blend of :func:`fit_lead_weights`)."""
    base, nowcast = np.asarray(base, dtype=np.float64), np.asarray(nowcast, dtype=np.float64)
    # numpy would broadcast one origin's nowcast over every base (or read a (leads, H, W) array's
    # rows as leads) without a word
    if base.shape != nowcast.shape or base.ndim != 4:
        raise ValueError(
            f"`base` {base.shape} and `nowcast` {nowcast.shape} must both be (origins, leads, H, W) "
            "arrays of the same shape (one origin: base[None], nowcast[None])."
        )
    w = _lead_weights(lead_weights, base.shape[1]).reshape(1, -1, 1, 1)
    return np.clip(base + w * (nowcast - base), 0.0, None)


def recentre_ensemble(members: np.ndarray, nowcast: np.ndarray, spread: float = 1.0) -> np.ndarray:
    """An ensemble of ``nowcast``: each member of another ensemble (e.g. STEPS') minus that
    ensemble's mean, times ``spread``, plus ``nowcast``; clipped at 0 mm/h.

    STEPS' members spread around a mean that its cascade decay smooths toward zero rain at the
    later leads; MIM's nowcast is the better mean (lower MSE). Recentring keeps STEPS' spread, its
    stochastic small scales, around MIM's nowcast instead. On the KNMI event's validation origins
    it was chosen over adding MIM's correction of the LK extrapolation to each member (CRPS 0.289
    against 0.338 mm/h; ``benchmarks/accuracy_radar.py``).

    Parameters
    ----------
    members
        ``(origins, members, leads, H, W)`` rain rates (mm/h), at least two members.
    nowcast
        ``(origins, leads, H, W)`` rain rates (mm/h) of the same origins, leads and cells, e.g.
        :func:`add_nowcast` of MIM's forecast (or :func:`weigh_corrections`).
    spread
        Factor on each member's deviation from the ensemble's mean: above 1 widens an ensemble
        whose observations fall too often outside its members (its rank histogram's outer bins),
        1 keeps the members' own spread. Choose it on validation origins.

    Returns
    -------
    numpy.ndarray
        ``(origins, members, leads, H, W)``: the recentred members, >= 0.
    """
    if isinstance(spread, bool) or not isinstance(spread, (int, float, np.integer, np.floating)):
        raise TypeError(f"`spread` must be a number, got {type(spread).__name__}.")
    if not np.isfinite(spread) or spread < 0:
        raise ValueError(
            f"`spread` must be a finite number >= 0 (1 keeps the members' spread), got {spread}."
        )
    members, nowcast = np.asarray(members, dtype=np.float64), np.asarray(nowcast, dtype=np.float64)
    # numpy would broadcast a (leads, H, W) nowcast over every origin without a word
    if members.ndim != 5 or nowcast.shape != members.shape[:1] + members.shape[2:]:
        raise ValueError(
            f"`members` {members.shape} must be (origins, members, leads, H, W) and `nowcast` "
            f"{nowcast.shape} (origins, leads, H, W) with the same origins, leads and cells (one "
            "origin: members[None], nowcast[None])."
        )
    if members.shape[1] < 2:
        raise ValueError(
            f"`members` holds {members.shape[1]} member per origin: an ensemble needs at least 2."
        )
    for name, values in (("members", members), ("nowcast", nowcast)):
        if not np.isfinite(values).all():
            raise ValueError(
                f"`{name}` holds {int(np.sum(~np.isfinite(values)))} non-finite values; fill the "
                "cells the nowcast could not reach (e.g. pysteps' extrapolation leaves NaN) first."
            )
    deviations = members - members.mean(axis=1, keepdims=True)
    return np.clip(nowcast[:, None] + spread * deviations, 0.0, None)


def verify(pred: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray | float]:
    """pysteps' verification of ``(n_origins, leads, H, W)`` rain-rate nowcasts (mm/h) against the
    observed frames: CSI at 1 and 5 mm/h and FSS at 1 mm/h over 5 and 15 cells, each from one
    contingency table (or FSS accumulator) over all origins, cells and, for the totals, lead times.

    Cells where either array is NaN (outside a radar's range, a missing observation) are left out
    of every score, as pysteps leaves them out of CSI and FSS; MSE and MAE are means over the other
    cells (``nan`` where there are none).

    Returns
    -------
    dict
        ``mse``, ``mae``, ``csi1``, ``csi5``, ``fss5``, ``fss15`` (floats over everything) and
        ``mse_lead``, ``csi1_lead``, ``csi5_lead``, ``fss5_lead``, ``fss15_lead`` (one value per lead).
    """
    import_pysteps()
    from pysteps.verification import detcatscores, spatialscores

    def accumulators() -> dict:
        return {
            "csi1": detcatscores.det_cat_fct_init(1.0),
            "csi5": detcatscores.det_cat_fct_init(5.0),
            "fss5": spatialscores.fss_init(1.0, 5),
            "fss15": spatialscores.fss_init(1.0, 15),
        }

    def computed(acc: dict) -> dict[str, float]:
        out = {
            k: float(detcatscores.det_cat_fct_compute(acc[k], "CSI")["CSI"])
            for k in ("csi1", "csi5")
        }
        out.update({k: float(spatialscores.fss_compute(acc[k])) for k in ("fss5", "fss15")})
        return out

    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape or pred.ndim != 4:
        raise ValueError(
            f"`pred` {pred.shape} and `truth` {truth.shape} must both be (origins, leads, H, W)."
        )
    total = accumulators()
    per_lead = []
    for lead in range(pred.shape[1]):
        per = accumulators()
        for p, t in zip(pred[:, lead], truth[:, lead], strict=True):
            for acc in (per, total):
                detcatscores.det_cat_fct_accum(acc["csi1"], p, t)
                detcatscores.det_cat_fct_accum(acc["csi5"], p, t)
                spatialscores.fss_accum(acc["fss5"], p, t)
                spatialscores.fss_accum(acc["fss15"], p, t)
        per_lead.append(computed(per))
    out: dict[str, np.ndarray | float] = dict(computed(total))
    for key in ("csi1", "csi5", "fss5", "fss15"):
        out[f"{key}_lead"] = np.array([lead[key] for lead in per_lead], dtype=float)
    # NaN in either array: the cell is not scored (a NaN MSE beside finite CSI and FSS scores
    # said nothing about the forecast)
    error = np.asarray(pred, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    scored = ~np.isnan(pred) & ~np.isnan(truth)
    with np.errstate(invalid="ignore", divide="ignore"):
        squared, absolute = np.where(scored, error**2, 0.0), np.where(scored, np.abs(error), 0.0)
        out["mse_lead"] = squared.sum(axis=(0, 2, 3)) / scored.sum(axis=(0, 2, 3))
        out["mse"] = float(squared.sum() / scored.sum())
        out["mae"] = float(absolute.sum() / scored.sum())
    return out
