"""Scoring the forecasts of ``accuracy.py``: forecasts and true windows as arrays, back to the original
scale, RMSE / MAE by horizon step, the spread over seeds, and the markdown tables and plots of a section.
"""

from __future__ import annotations

import numpy as np
from _common import markdown_table as _markdown_text
from darts import TimeSeries
from darts.dataprocessing.transformers import Scaler


def stack_forecasts(forecasts: list[TimeSeries]) -> np.ndarray:
    """``(n_origins, horizon, components)`` from a list of forecasts."""
    return np.stack([f.values(copy=False) for f in forecasts])


def invert(scaler: Scaler, values: np.ndarray, components: np.ndarray | None = None) -> np.ndarray:
    """Undo a fitted MinMax ``Scaler`` (``x * scale_ + min_``) on an array whose last axis is the
    components (all of them, or ``components`` of them)."""
    sk = scaler._fitted_params[0]
    scale, low = sk.scale_, sk.min_
    if components is not None:
        scale, low = scale[components], low[components]
    return (values - low) / scale


def truth_windows(values: np.ndarray, starts: np.ndarray, horizon: int) -> np.ndarray:
    """``(n_origins, horizon, D)`` true values for forecasts whose first step is ``starts``."""
    return np.stack([values[s : s + horizon] for s in starts])


def rmse_mae_by_step(pred: np.ndarray, true: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Overall RMSE, MAE and per-horizon-step RMSE over origins and components."""
    err = pred - true
    rmse = float(np.sqrt(np.mean(err**2)))
    mae = float(np.mean(np.abs(err)))
    per_step = np.sqrt(np.mean(err**2, axis=(0, 2)))
    return rmse, mae, per_step


def seed_spread(values: list[float]) -> float | str:
    """Sample standard deviation over seeds, or "-" for a single run."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else "-"


def markdown_table(header: list[str], rows: list[list]) -> list[str]:
    """A section's markdown table, as lines; floats get 4 significant digits."""
    return _markdown_text(header, rows, digits=4).splitlines()


def plot_by_step(name: str, curves: dict[str, np.ndarray], ylabel: str, args) -> str:
    """Plot error by horizon step for every model into ``args.out_dir``; returns the file name."""
    out_dir = args.out_dir
    if args.tag:  # a tagged run keeps its own picture
        name = f"{name}_{''.join(c if c.isalnum() else '_' for c in args.tag)}"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, curve in curves.items():
        ax.plot(np.arange(1, len(curve) + 1), curve, marker="o", label=label)
    ax.set_xlabel("horizon step")
    ax.set_ylabel(ylabel)
    ax.set_title(name)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fname = f"accuracy_{name}.png"
    fig.savefig(out_dir / fname, dpi=100)
    plt.close(fig)
    return fname
