"""Pictures of gridded forecasts: frames side by side, error by horizon, one cell's series.

Every function builds a matplotlib ``Figure`` without touching pyplot's global state (no ``plt.show``,
no current figure), so it works under the ``Agg`` backend, in scripts, tests and notebooks alike. It
returns the figure and saves it when ``path`` is given. matplotlib is the ``plot`` extra
(``pip install "darts-mim[plot]"``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
from darts import TimeSeries

from darts_mim._optional import require

require("matplotlib", extra="plot")  # a one-line error naming the extra when it is missing
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["plot_cell_series", "plot_error_by_horizon", "plot_frames"]


def _save(fig: Figure, path: str | os.PathLike | None) -> Figure:
    if path is not None:
        directory = os.path.dirname(os.path.abspath(os.fspath(path)))
        os.makedirs(directory, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def _as_frames(frames: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(frames, dtype=np.float64)
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4:
        raise ValueError(
            f"`{name}` must be a (T, C, H, W) or (T, H, W) array of frames, got shape {arr.shape}. "
            "Convert a gridded series with darts_mim.series_to_grid()."
        )
    return arr


def _finite_range(values: np.ndarray) -> tuple[float, float]:
    """``(min, max)`` of the finite values; ``(0, 1)`` when there are none (e.g. all land)."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return 0.0, 1.0
    return float(finite.min()), float(finite.max())


def _extend(values: np.ndarray, vmin: float, vmax: float) -> str:
    """Matplotlib's colour bar ``extend``: which ends of ``[vmin, vmax]`` ``values`` go beyond."""
    finite = values[np.isfinite(values)]
    below = bool(finite.size) and float(finite.min()) < vmin
    above = bool(finite.size) and float(finite.max()) > vmax
    return {(False, False): "neither", (True, False): "min", (False, True): "max"}.get(
        (below, above), "both"
    )


def plot_frames(
    true: np.ndarray,
    pred: np.ndarray,
    channel: int = 0,
    path: str | os.PathLike | None = None,
    title: str = "True vs forecast",
    max_steps: int = 12,
    cmap: str = "viridis",
) -> Figure:
    """True frames, forecast frames and their absolute error, one column per horizon step.

    Parameters
    ----------
    true
        True frames ``(T, C, H, W)`` (or ``(T, H, W)`` for one channel).
    pred
        Forecast frames of the same shape.
    channel
        Channel to show. Default: ``0``.
    path
        Where to save the picture (PNG, PDF, ...). Default: ``None`` (not saved).
    title
        Title of the figure.
    max_steps
        Show at most this many horizon steps (the first ones). Default: ``12``.
    cmap
        Colour map of the true and forecast rows; the error row uses ``"magma"``.

    Returns
    -------
    matplotlib.figure.Figure
        Three rows (true, forecast, absolute error) of ``min(T, max_steps)`` image axes, plus two colour
        bars. True and forecast share one colour scale, so that their colours compare, and that scale is
        the range of the true frames shown: a forecast that overshoots it (e.g. negative counts) takes
        the colour of the nearest end instead of washing the truth out, and the colour bar's pointed
        ends (``extend``) say that this happened. The error row has its own scale, from 0.

    Raises
    ------
    ValueError
        When the shapes differ, the arrays are not frames, or ``channel`` is out of range.
    """
    t_arr, p_arr = _as_frames(true, "true"), _as_frames(pred, "pred")
    if t_arr.shape != p_arr.shape:
        raise ValueError(
            f"`true` {t_arr.shape} and `pred` {p_arr.shape} must have the same shape; slice the true "
            "frames to the forecast's time steps first."
        )
    if not 0 <= channel < t_arr.shape[1]:
        raise ValueError(f"channel={channel} is out of range: the frames have {t_arr.shape[1]}.")
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}.")
    n = min(t_arr.shape[0], max_steps)
    t_ch, p_ch = t_arr[:n, channel], p_arr[:n, channel]
    err = np.abs(t_ch - p_ch)
    # The colour scale comes from the truth alone: a forecaster reads the forecast against the
    # observed range. A scale that also spans the forecast lets one wild value (a negative flow)
    # squeeze the truth into a few colours.
    vmin, vmax = _finite_range(t_ch)
    extend = _extend(p_ch, vmin, vmax)
    finite_err = err[np.isfinite(err)]
    emax = float(finite_err.max()) if finite_err.size and finite_err.max() > 0 else 1.0

    h, w = t_ch.shape[1:]
    col_w = 1.6 * max(0.4, min(2.0, w / h))
    fig = Figure(figsize=(col_w * n + 1.2, 1.7 * 3 + 0.6), layout="constrained")
    axes = fig.subplots(3, n, squeeze=False)
    rows = (("true", t_ch, cmap, vmin, vmax), ("forecast", p_ch, cmap, vmin, vmax))
    rows += (("|error|", err, "magma", 0.0, emax),)
    images = []
    for r, (label, data, cm, lo, hi) in enumerate(rows):
        for k in range(n):
            ax = axes[r, k]
            im = ax.imshow(data[k], cmap=cm, vmin=lo, vmax=hi, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t+{k + 1}", fontsize=9)
            if k == 0:
                ax.set_ylabel(label)
        images.append(im)
    fig.colorbar(images[0], ax=axes[:2, :].ravel().tolist(), shrink=0.8, extend=extend)
    fig.colorbar(images[2], ax=axes[2, :].ravel().tolist(), shrink=0.8)
    fig.suptitle(title)
    return _save(fig, path)


def plot_error_by_horizon(
    errors: Mapping[str, np.ndarray | list[float]],
    path: str | os.PathLike | None = None,
    metric: str = "RMSE",
    title: str = "Error by forecast horizon",
) -> Figure:
    """One line per model: the error at each horizon step (1 = the first forecast step).

    Parameters
    ----------
    errors
        ``{model name: errors per step}``; the arrays may have different lengths.
    path
        Where to save the picture. Default: ``None``.
    metric
        Label of the y axis. Default: ``"RMSE"``.
    title
        Title of the axes.

    Returns
    -------
    matplotlib.figure.Figure
        One axes.

    Raises
    ------
    ValueError
        When ``errors`` is empty or an entry is not a non-empty 1-D array.
    """
    if not errors:
        raise ValueError("`errors` is empty: pass {model name: array of errors per step}.")
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.subplots()
    for name, values in errors.items():
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(
                f"errors[{name!r}] must be a non-empty 1-D array (one error per step), got shape "
                f"{arr.shape}."
            )
        ax.plot(np.arange(1, arr.size + 1), arr, marker="o", label=str(name))
    ax.set_xlabel("horizon step")
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_cell_series(
    history: TimeSeries,
    forecast: TimeSeries | list[TimeSeries],
    component: str | int,
    path: str | os.PathLike | None = None,
    title: str | None = None,
    truth: TimeSeries | None = None,
    ylabel: str | None = None,
) -> Figure:
    """One component (e.g. one cell of one channel) of the history and of the forecast(s).

    Parameters
    ----------
    history
        The observed series (its last part is usually enough; slice it before).
    forecast
        A forecast, or a list of forecasts (e.g. from ``historical_forecasts(last_points_only=False)``),
        with the same components as ``history``; of a probabilistic forecast, its median is drawn.
    component
        Component name (e.g. ``"inflow_r5_c3"``) or index.
    path
        Where to save the picture. Default: ``None``.
    title
        Title of the axes; default: the component's name.
    truth
        Optionally, the observed values over the forecast period, drawn as a dashed line.
    ylabel
        Label of the y axis: the quantity and its units, e.g. ``"bikes per 30 min"``. Default: the
        component's name (the series carries no units).

    Returns
    -------
    matplotlib.figure.Figure
        One axes.

    Raises
    ------
    ValueError
        When the component does not exist in the series or in a forecast.
    """
    names = list(history.components)
    if isinstance(component, int | np.integer):
        if not 0 <= component < len(names):
            raise ValueError(f"component {component} is out of range: the series has {len(names)}.")
        name = names[int(component)]
    else:
        if component not in names:
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise ValueError(f"No component {component!r} in the series (components: {shown}).")
        name = component
    forecasts = [forecast] if isinstance(forecast, TimeSeries) else list(forecast)
    fig = Figure(figsize=(8.0, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.plot(history.time_index, history[name].values()[:, 0], color="black", lw=1, label="history")
    if truth is not None:
        ax.plot(
            truth.time_index, truth[name].values()[:, 0], "k--", lw=1, alpha=0.7, label="observed"
        )
    for i, fc in enumerate(forecasts):
        if name not in fc.components:
            shown = ", ".join(list(fc.components)[:5]) + (", ..." if fc.n_components > 5 else "")
            raise ValueError(
                f"forecast {i} has no component {name!r} (components: {shown}); pass forecasts "
                "of the history's components."
            )
        # all_values: values() of a probabilistic forecast is its first sample, one random draw
        # that would be drawn as "the forecast"; its median is
        samples = fc[name].all_values(copy=False)[:, 0, :]
        label = (
            "forecast" if fc.is_deterministic else f"forecast (median of {fc.n_samples} samples)"
        )
        ax.plot(
            fc.time_index,
            np.median(samples, axis=1),
            color="tab:red",
            lw=1.5,
            label=label if i == 0 else None,
        )
    ax.set_title(title or name)
    ax.set_ylabel(ylabel or name)
    ax.set_xlabel("time")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    return _save(fig, path)
