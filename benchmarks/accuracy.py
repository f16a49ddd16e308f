"""Forecast quality of MIMModel on real data, against baselines, under an equal training budget.

One command runs rolling-origin backtests (``historical_forecasts(retrain=False)`` after one fit) and
prints markdown tables; it also writes ``benchmarks/accuracy_results.md`` and ``accuracy_*.png``::

    python benchmarks/accuracy.py --only taxi,bike,radar --jobs 2  # the standard run (~30 min)
    python benchmarks/accuracy.py --quick                          # smoke test (tiny slices/models)
    python benchmarks/accuracy.py --only bike --split val          # score on the validation split
    python benchmarks/accuracy.py --only bike,etth1 --steps 600
    python benchmarks/accuracy.py --only mnist --paper             # the paper's setting (GPU)

Data sets (``--data DIR``, default :func:`darts_mim.datasets.default_data_dir`):

1. ``bike`` / ``taxi``: NYC crowd flows (2x14x8 and 2x16x12 cells, 30 min). 12 steps in, 6 out. Split
   by time: test = last 10 days, validation = the 10 days before, train = the rest. Forecast origins
   every ``stride`` (6) steps in the test period (``--split val``: in the validation period, for
   choosing settings). Values are scaled with a Darts ``Scaler`` fit on the train part only and
   inverted before scoring. Seasonal covariates, all known at forecast time: the scaled target lagged
   by one week (336 steps) and one day (48), plus 4 calendar channels (sin/cos of the time slot and of
   the day of week). MIMModel takes them as future covariates on the target's grid; TCNModel and
   BlockRNNModel (LSTM) on the flattened grid take them as past covariates, with the lags shortened by
   the horizon so that the lagged values of the forecast steps end their input window. Every model
   trains on the same windows (from step 336 on). Models: MIM with and without covariates, the
   ``stlstm`` (PredRNN-style) ablation with covariates (``--ablations`` adds ``diff_mode=
   "difference"``), TCN and LSTM with and without covariates, seasonal naive (1 day, 1 week) and
   ARIMA(2,0,1) on the 4 busiest components (cell x channel) of the train part, on every 4th origin
   (all models are also scored on that sample).
2. ``etth1``: ETTh1 (7 columns, hourly). 96 in, 24 out, last 20 % test, the 10 % before validation
   (unused: no tuning), origins every 24 h. MIMModel on a 1x1 grid (``filter_size=1``), TCNModel,
   NHiTSModel, ARIMA(2,1,1) per column on every 6th origin (fitted once; each origin conditions it
   on the previous 2 weeks), seasonal naive (24 h).
3. ``radar``: KNMI rain rate, 128x128, 5 min, 92 frames. 6 in, 6 out; frames 0-59 train, the forecast
   targets all lie in frames 60-91 (every origin); ``--split val`` fits on frames 0-47 and scores
   targets in 48-59. MIMModel and the stlstm ablation (patch 4), each on the frames and on frame
   differences (forecasts summed onto the last observed frame), vs persistence; MSE (mm/h)^2 and CSI
   at 1 and 5 mm/h.
4. ``mnist``: Moving MNIST generated from the MNIST digits of ``DIR/mnist`` (64x64, 2 digits, 10 in,
   10 out; train and test sequences from different seeds). MIMModel vs the stlstm ablation, patch 4;
   per-frame MSE and MAE (sums over the 4096 pixels, averaged over frames and sequences, predictions
   clipped to [0, 1]) and SSIM (torchmetrics, Gaussian window 11, sigma 1.5).

Budget. Every neural model of a data set gets the same number of optimizer steps (``--steps``,
default 300; Lightning ``max_steps``), also used as ``sampling_decay_steps`` so that scheduled
sampling reaches free running within the run, and the same wall-time cap (``--seconds``, a safety
net). Tables report the steps actually done and the wall time. Torch runs on one thread per process
(``--threads``): on two cores shared with other jobs, two threads made one MIM step ~15x slower.
``--jobs 2`` runs data sets in two worker processes.

Paper setting (``--paper``, Moving MNIST only): 4 layers x 64 channels (128 in the paper's larger
variant), filter 5, patch 4, Adam lr 1e-3, batch 8, 80,000 iterations, scheduled sampling decaying
over 50,000 iterations, 10,000 training sequences; on a GPU when ``torch.cuda.is_available()``
(``pl_trainer_kwargs={"accelerator": "gpu"}``). That takes hours on a GPU and is not run here.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from darts import TimeSeries
from darts.dataprocessing.transformers import Scaler
from darts.models import ARIMA, BlockRNNModel, NHiTSModel, TCNModel

from darts_mim import MIMModel, grid_to_series
from darts_mim.datasets import (
    default_data_dir,
    load_bike_flows,
    load_csv_series,
    load_radar,
    load_taxi_flows,
    moving_mnist,
)

DATASETS = ("bike", "taxi", "etth1", "radar", "mnist")
HERE = Path(__file__).resolve().parent


@dataclass
class Budget:
    """Training budget shared by the neural models of one data set: the same number of optimizer
    steps for every model (Lightning ``max_steps``), with a wall-time cap as a safety net."""

    steps: int
    max_seconds: int  # wall-time cap per model
    batch_size: int = 32
    max_epochs: int = 1000  # the steps end training first unless the data set is tiny


@dataclass
class Section:
    """The markdown output of one data set."""

    title: str
    lines: list[str] = field(default_factory=list)


def trainer_kwargs(budget: Budget) -> dict:
    """CPU trainer kwargs that enforce the budget."""
    return {
        "accelerator": "cpu",
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "logger": False,
        "max_steps": budget.steps,
        "max_time": {"seconds": budget.max_seconds},
    }


def common_kwargs(budget: Budget, work_dir: str, seed: int = 0) -> dict:
    return {
        "n_epochs": budget.max_epochs,
        "batch_size": budget.batch_size,
        "pl_trainer_kwargs": trainer_kwargs(budget),
        "work_dir": work_dir,
        "random_state": seed,
        "save_checkpoints": False,
        "force_reset": True,
    }


def seeds_line(seeds: list[int]) -> str:
    if len(seeds) == 1:
        return f" Neural models: one run, seed {seeds[0]}."
    return (
        f" Neural models: mean over seeds {list(seeds)} (`random_state`: weights, batch order and "
        "scheduled-sampling draws); `... sd` columns = standard deviation over seeds."
    )


def budget_line(budget: Budget) -> str:
    return (
        f"Budget per neural model: {budget.steps} optimizer steps (batches of {budget.batch_size}), "
        f"wall-time cap {budget.max_seconds} s; column `steps` = steps actually done."
    )


def fit_timed(model, series, **kwargs) -> tuple[float, int]:
    """Fit and return (seconds, optimizer steps done)."""
    t0 = time.perf_counter()
    model.fit(series, verbose=False, **kwargs)
    steps = int(model.trainer.global_step) if getattr(model, "trainer", None) else -1
    return time.perf_counter() - t0, steps


def fit_and_backtest(
    model, train, history, start, horizon: int, stride: int, times: pd.Index, **cov_kw
) -> tuple[list[TimeSeries], tuple[float, float, int], np.ndarray]:
    """Fit once, then rolling-origin forecasts without retraining.

    Returns the forecasts, ``(fit s, forecast s, optimizer steps)`` and each forecast's first index
    in ``times``.
    """
    secs, steps = fit_timed(model, train, **cov_kw)
    t0 = time.perf_counter()
    hf = model.historical_forecasts(
        history,
        start=start,
        forecast_horizon=horizon,
        stride=stride,
        retrain=False,
        last_points_only=False,
        verbose=False,
        **cov_kw,
    )
    timing = (secs, time.perf_counter() - t0, steps)
    return hf, timing, np.array([times.get_loc(f.start_time()) for f in hf])


# The round-2 tables were measured with Darts' loss on the output chunk only. The authors' loss over
# the input window too (MIMModel's default since) is `--mim-kwargs '{"input_window_loss": true}'`.
ROUND2_SETTINGS = {"input_window_loss": False}


def mim_model(args, input_chunk_length: int, output_chunk_length: int, **kwargs) -> MIMModel:
    """A section's ``MIMModel``, with the ``--mim-kwargs`` overrides applied."""
    kwargs = {**ROUND2_SETTINGS, **kwargs, **args.mim_kwargs}
    return MIMModel(input_chunk_length, output_chunk_length, **kwargs)


def backtest_seeds(section: str, models_for, args, run) -> tuple[dict, dict, object]:
    """Fit and score every model of a section (those of ``--models`` if given) once per seed.

    ``models_for(seed)`` maps labels to ``(model, extra)``; ``run(model, extra)`` returns
    ``(prediction array, (fit s, predict s, steps), starts)``. Returns ``preds`` and ``timing``, each
    mapping a label to one entry per seed, and the last ``starts``.
    """
    preds: dict[str, list] = {}
    timing: dict[str, list] = {}
    starts = None
    for seed in args.seeds:
        for label, (model, extra) in models_for(seed).items():
            if args.models and label not in args.models:
                continue
            pred, t, starts = run(model, extra)
            preds.setdefault(label, []).append(pred)
            timing.setdefault(label, []).append(t)
            print(f"  {section} seed {seed} {label}: {t[2]} steps, {t[0]:.0f} s", flush=True)
    if not preds:
        known = "; ".join(models_for(args.seeds[0]))
        raise ValueError(f"--models matches no {section} model; its models are: {known}.")
    return preds, timing, starts


# ---------------------------------------------------------------------------------------------------
# scoring helpers


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
    def fmt(v) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return out


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


# ---------------------------------------------------------------------------------------------------
# 1. crowd flows

WEEK, DAY = 336, 48  # in half-hours
CALENDAR = ["slot_sin", "slot_cos", "dow_sin", "dow_cos"]
# The crowd-flow recipe, chosen on the bike validation split (see the findings).
CROWD_RECIPE = {
    "num_hidden": (32, 32, 32),
    "filter_size": 3,
    "patch_size": 2,
    "optimizer_kwargs": {"lr": 1e-3},
}


def calendar_features(times: pd.DatetimeIndex, slots_per_day: int = 48) -> np.ndarray:
    """Cyclic encodings (sin, cos) of the time slot of the day and of the day of the week.

    Parameters
    ----------
    times
        The time index.
    slots_per_day
        Number of time steps per day.

    Returns
    -------
    np.ndarray
        ``(len(times), 4)`` float32 array, columns :data:`CALENDAR`.
    """
    minutes = 24 * 60 // slots_per_day
    slot = np.asarray(times.hour * 60 + times.minute, dtype=np.float64) / minutes
    dow = np.asarray(times.dayofweek, dtype=np.float64)
    a, b = 2 * np.pi * slot / slots_per_day, 2 * np.pi * dow / 7
    return np.stack([np.sin(a), np.cos(a), np.sin(b), np.cos(b)], axis=1).astype(np.float32)


def lagged(values: np.ndarray, lag: int) -> np.ndarray:
    """``values`` moved ``lag`` steps later in time (row ``t`` holds ``values[t - lag]``); the first
    ``lag`` rows are NaN."""
    if lag <= 0:
        raise ValueError(f"lag must be >= 1, got {lag}.")
    out = np.full_like(values, np.nan)
    out[lag:] = values[:-lag]
    return out


@dataclass
class SeasonalCovariates:
    """Seasonal covariates of a crowd-flow series, all known at forecast time."""

    gridded: TimeSeries  # MIM: future covariates on the target's grid
    flat: TimeSeries  # TCN / BlockRNN: plain past covariates
    start: int  # first index of the target where they are defined


def seasonal_covariates(
    scaled: TimeSeries, grid, horizon: int, lags: tuple[int, ...] = (WEEK, DAY)
) -> SeasonalCovariates:
    """The target lagged by a week and a day, and 4 calendar channels.

    MIM gets them as future covariates on the target's grid (per cell: the lagged in- and outflow
    of that cell, plus the calendar broadcast to every cell); every lag is >= ``horizon`` so they
    are known over the whole forecast. TCN and BlockRNN take past covariates only: there the lags
    are shortened by ``horizon`` so that the lagged values of the steps being forecast sit at the
    end of their input window (still values observed before the forecast origin).

    Parameters
    ----------
    scaled
        The (scaled) gridded target.
    grid
        Its :class:`darts_mim.grid.GridSpec`.
    horizon
        Output chunk length.
    lags
        Lags in time steps, each >= ``horizon``.

    Returns
    -------
    SeasonalCovariates
    """
    if min(lags) < horizon:
        raise ValueError(f"every lag must be >= the horizon {horizon}; got {lags}.")
    values = scaled.values(copy=False)
    times = scaled.time_index
    n, start = len(values), max(lags)
    cal = calendar_features(times)
    arr = values.reshape(n, grid.n_channels, grid.height, grid.width)
    cal_grid = np.broadcast_to(cal[:, :, None, None], (n, len(CALENDAR), grid.height, grid.width))
    parts = [lagged(arr, lag) for lag in lags] + [cal_grid]
    names = [f"{ch}_lag{lag}" for lag in lags for ch in grid.channels] + CALENDAR
    gridded = grid_to_series(np.concatenate(parts, axis=1)[start:], times[start:], names)
    flat_parts = [lagged(values, lag - horizon) if lag > horizon else values for lag in lags]
    flat_values = np.concatenate([*flat_parts, cal], axis=1)[start:]
    flat = TimeSeries.from_times_and_values(times[start:], flat_values.astype(np.float32))
    return SeasonalCovariates(gridded, flat, start)


def crowd(name: str, args, work_dir: str) -> Section:
    """Backtest every crowd-flow model on one data set (test split, or validation with --split)."""
    loader = load_bike_flows if name == "bike" else load_taxi_flows
    data = loader(args.data)
    series = data.series.astype(np.float32)
    spd, horizon = 48, 6
    if args.quick:
        series = series[-11 * spd :]
        test_len, val_len, stride = spd, spd, 12
        budget = Budget(args.steps or 2, args.seconds, 16, args.epochs)
        mk = {**CROWD_RECIPE, "num_hidden": (8, 8)}
    else:
        test_len, val_len, stride = 10 * spd, 10 * spd, 6
        budget = Budget(args.steps or 300, args.seconds, 32, args.epochs)
        mk = dict(CROWD_RECIPE)
    mk["sampling_decay_steps"] = budget.steps
    n = len(series)
    train_end, val_end = n - test_len - val_len, n - test_len
    # --split val: score on the validation period (for choosing settings), never on the test
    eval_start, eval_end = (train_end, val_end) if args.split == "val" else (val_end, n)
    grid = data.grid
    times = series.time_index

    scaler = Scaler().fit(series[:train_end])
    scaled = scaler.transform(series)
    covs = seasonal_covariates(scaled, grid, horizon)
    # every model trains on the same windows: those whose covariates exist
    target = scaled[covs.start :]
    train = target.drop_after(times[train_end])
    history = target.drop_after(times[eval_end]) if eval_end < n else target
    true_vals = series.values(copy=False)
    mim_cov = {"future_covariates": covs.gridded}
    flat_cov = {"past_covariates": covs.flat}
    tcn = {
        "num_filters": 32,
        "kernel_size": 3,
        "dilation_base": 2,
        "optimizer_kwargs": {"lr": 1e-3},
    }
    lstm = {"model": "LSTM", "hidden_dim": 64, "n_rnn_layers": 1, "optimizer_kwargs": {"lr": 1e-3}}

    def models_for(seed: int) -> dict:
        """Every neural model of the section, initialised and shuffled with ``seed``."""
        ck = common_kwargs(budget, work_dir, seed)
        out = {
            "MIM + seasonal covariates": (
                mim_model(args, horizon * 2, horizon, **mk, **ck),
                mim_cov,
            ),
            "MIM": (mim_model(args, horizon * 2, horizon, **mk, **ck), {}),
            "MIM stlstm (PredRNN) + seasonal covariates": (
                mim_model(args, horizon * 2, horizon, cell_type="stlstm", **mk, **ck),
                mim_cov,
            ),
            "MIM diff_mode=difference + seasonal covariates": (
                mim_model(args, horizon * 2, horizon, diff_mode="difference", **mk, **ck),
                mim_cov,
            ),
        }
        for with_cov in (True, False):
            suffix, kw = (" + seasonal covariates", flat_cov) if with_cov else ("", {})
            out["TCN" + suffix] = (TCNModel(horizon * 2, horizon, **tcn, **ck), kw)
            out["LSTM (BlockRNN)" + suffix] = (
                BlockRNNModel(horizon * 2, horizon, **lstm, **ck),
                kw,
            )
        return out

    def run(model, cov_kw):
        hf, t, starts = fit_and_backtest(
            model, train, history, times[eval_start], horizon, stride, times, **cov_kw
        )
        return invert(scaler, stack_forecasts(hf)), t, starts

    preds, timing, starts = backtest_seeds(name, models_for, args, run)
    truth = truth_windows(true_vals, starts, horizon)
    for season, label in ((spd, "seasonal naive 1 day"), (7 * spd, "seasonal naive 1 week")):
        preds[label] = [np.stack([true_vals[s - season : s - season + horizon] for s in starts])]
        timing[label] = [(0.0, 0.0, 0)]

    # ARIMA on the busiest components of the train part (too slow for every cell)
    busiest = np.argsort(true_vals[:train_end].mean(axis=0))[::-1][:4]
    names = series.components
    t0 = time.perf_counter()
    sub = np.arange(0, len(starts), 4)  # ARIMA origins: every 4th origin
    arima_pred = np.zeros((len(sub), horizon, len(busiest)))
    ctx = 2 * spd if args.quick else 7 * spd
    for j, comp in enumerate(busiest):
        uni = scaled.univariate_component(int(comp))
        model = ARIMA(p=2, d=0, q=1)
        model.fit(uni[max(0, train_end - 3 * ctx) : train_end])
        for i, s in enumerate(starts[sub]):
            fc = model.predict(horizon, series=uni[s - ctx : s])
            arima_pred[i, :, j] = fc.values()[:, 0]
    arima_pred = invert(scaler, arima_pred, busiest)
    arima_secs = time.perf_counter() - t0

    rows, curves, by_seed = [], {}, []
    for label, runs in preds.items():
        scores = [rmse_mae_by_step(p, truth) for p in runs]
        busy = [rmse_mae_by_step(p[sub][:, :, busiest], truth[sub][:, :, busiest]) for p in runs]
        rmses = [sc[0] for sc in scores]
        fit_s, pred_s, steps = np.mean(timing[label], axis=0)
        per_step = np.mean([sc[2] for sc in scores], axis=0)
        rows.append(
            [
                label,
                float(np.mean(rmses)),
                seed_spread(rmses),
                float(np.mean([sc[1] for sc in scores])),
            ]
            + [float(np.mean([b[0] for b in busy])), float(np.mean([b[1] for b in busy]))]
            + [int(steps), round(float(fit_s), 1), round(float(pred_s), 1)]
            + [float(v) for v in per_step]
        )
        curves[label] = per_step
        if len(runs) > 1 and label.startswith("MIM"):
            by_seed.append([label] + rmses + [float(np.mean(rmses))])
    a_rmse, a_mae, _ = rmse_mae_by_step(arima_pred, truth[sub][:, :, busiest])
    rows.append(["ARIMA(2,0,1) busiest 4", "-", "-", "-", a_rmse, a_mae, 0, "-"])
    rows[-1] += [round(arima_secs, 1)] + ["-"] * horizon
    header = ["model", "RMSE", "RMSE sd", "MAE", "RMSE busiest4", "MAE busiest4", "steps"]
    header += ["fit s", "predict s"] + [f"RMSE h{h}" for h in range(1, horizon + 1)]
    period = "validation" if args.split == "val" else "test"
    sec = Section(f"{name}: NYC {name} flows {grid.n_channels}x{grid.height}x{grid.width}")
    sec.lines += [
        f"{n} steps of 30 min; train {train_end} (windows from step {covs.start} on, where the "
        f"week-lagged covariate exists, for every model), validation {val_len}, test {test_len} "
        f"(last {test_len // spd} days); 12 in, 6 out; scored on the **{period}** period, "
        f"{len(starts)} origins every {stride} steps; original scale (trips per 30 min). "
        + budget_line(budget)
        + seeds_line(args.seeds),
        "",
        f"MIM setting: `{mk}`. Seasonal covariates: the (scaled) target lagged by 1 week and 1 day "
        "on the target's grid + 4 calendar channels (sin/cos of time slot and day of week), future "
        "covariates for MIM; for TCN / LSTM the same as plain past covariates, lags shortened by the "
        "horizon (6) so the lagged values of the forecast steps end their input window. Columns "
        f"'busiest4': the 4 busiest components of the train part, {[names[i] for i in busiest]}, "
        f"on every 4th origin ({len(sub)}), the sample ARIMA is run on.",
        "",
    ]
    sec.lines += markdown_table(header, rows)
    if by_seed:
        sec.lines += ["", f"RMSE of the MIM variants by seed (seeds {list(args.seeds)}):", ""]
        seed_header = ["model"] + [f"seed {s}" for s in args.seeds] + ["mean"]
        sec.lines += markdown_table(seed_header, by_seed)
    tag = name if args.split == "test" else f"{name}_val"
    fname = plot_by_step(tag, curves, "RMSE (trips / 30 min)", args)
    sec.lines += ["", f"![{tag}]({fname})"]
    return sec


# ---------------------------------------------------------------------------------------------------
# 2. ETTh1


def etth1(args, work_dir: str) -> Section:
    """Backtest on ETTh1 (multivariate, 1x1 grid for MIM)."""
    series = load_csv_series(Path(args.data) / "series" / "ETTh1.csv").astype(np.float32)
    if args.quick:
        series = series[:600]
        budget, stride, ctx = Budget(args.steps or 2, args.seconds, 16, args.epochs), 48, 96
    else:
        budget = Budget(args.steps or 300, args.seconds, 32, args.epochs)
        stride, ctx = 24, 14 * 24
    n = len(series)
    test_len = int(0.2 * n)
    val_len = int(0.1 * n)
    train_end, test_start = n - test_len - val_len, n - test_len
    scaler = Scaler().fit(series[:train_end])
    scaled = scaler.transform(series)
    train = scaled[:train_end]
    small = args.quick

    def models_for(seed: int) -> dict:
        # reversible instance norm for every neural model: ETTh1's test period drifts from train
        ck = {**common_kwargs(budget, work_dir, seed), "use_reversible_instance_norm": True}
        out = {
            "MIM (1x1, filter 1)": mim_model(
                args,
                96,
                24,
                num_hidden=(8, 8) if small else ETTH1_HIDDEN,
                filter_size=1,
                sampling_decay_steps=budget.steps,
                optimizer_kwargs={"lr": 1e-3},
                **ck,
            ),
            "TCN": TCNModel(96, 24, num_filters=32, kernel_size=3, dilation_base=2, **ck),
            "NHiTS": NHiTSModel(96, 24, num_blocks=1, num_layers=2, layer_widths=128, **ck),
        }
        return {label: (model, None) for label, model in out.items()}

    def run(model, _):
        hf, t, starts = fit_and_backtest(
            model, train, scaled, test_start, 24, stride, scaled.time_index
        )
        return invert(scaler, stack_forecasts(hf)), t, starts

    preds, timing, starts = backtest_seeds("etth1", models_for, args, run)
    true_vals = series.values(copy=False)
    t0 = time.perf_counter()
    preds["seasonal naive 24 h"] = [np.stack([true_vals[s - 24 : s] for s in starts])]
    timing["seasonal naive 24 h"] = [(0.0, time.perf_counter() - t0, 0)]
    t0 = time.perf_counter()
    sub = np.arange(0, len(starts), 6)  # ARIMA origins: every 6th test origin
    arima = np.zeros((len(sub), 24, series.n_components))
    for c in range(series.n_components):
        uni = scaled.univariate_component(c)
        model = ARIMA(p=2, d=1, q=1)
        model.fit(uni[max(0, train_end - 3 * ctx) : train_end])
        for i, s in enumerate(starts[sub]):
            arima[i, :, c] = model.predict(24, series=uni[s - ctx : s]).values()[:, 0]
    sk = scaler._fitted_params[0]
    arima = invert(scaler, arima)
    arima_secs = time.perf_counter() - t0
    truth = truth_windows(true_vals, starts, 24)
    # scores on the train-scaled values too (the usual ETT convention)
    sc_truth = truth * sk.scale_ + sk.min_
    rows, curves = [], {}
    for label, runs in preds.items():
        scores = np.array([rmse_mae_by_step(p, truth)[:2] for p in runs])
        scaled_scores = np.array(
            [rmse_mae_by_step(p * sk.scale_ + sk.min_, sc_truth)[:2] for p in runs]
        )
        per_step = np.mean([rmse_mae_by_step(p, truth)[2] for p in runs], axis=0)
        a_rmse = float(np.mean([rmse_mae_by_step(p[sub], truth[sub])[0] for p in runs]))
        fit_s, pred_s, steps = np.mean(timing[label], axis=0)
        rows.append(
            [label, float(scores[:, 0].mean()), seed_spread(list(scores[:, 0]))]
            + [float(scores[:, 1].mean()), float(scaled_scores[:, 0].mean())]
            + [float(scaled_scores[:, 1].mean()), a_rmse, int(steps), round(float(fit_s), 1)]
            + [round(float(pred_s), 1)]
            + [float(per_step[h]) for h in (0, 5, 11, 23)]
        )
        curves[label] = per_step
    a_rmse, a_mae, a_step = rmse_mae_by_step(arima, truth[sub])
    rows.append(["ARIMA(2,1,1) per column", "-", "-", "-", "-", "-", a_rmse, 0, "-"])
    rows[-1] += [round(arima_secs, 1)]
    rows[-1] += [float(a_step[h]) for h in (0, 5, 11, 23)]
    sec = Section("etth1: ETTh1, 7 columns, hourly")
    sec.lines += [
        f"{n} steps; train {train_end}, validation {val_len} (unused), test {test_len} (last 20 %); "
        f"96 in, 24 out; {len(starts)} origins every {stride} h. {budget_line(budget)} "
        "RMSE/MAE on the original "
        "scale and on the train-MinMax-scaled scale; ARIMA runs on every 6th origin "
        f"({len(np.arange(0, len(starts), 6))}), where every model is also scored. Every neural "
        "model uses reversible instance normalisation (`use_reversible_instance_norm=True`)."
        + seeds_line(args.seeds),
        "",
    ]
    header = ["model", "RMSE", "RMSE sd", "MAE", "RMSE scaled", "MAE scaled"]
    header += ["RMSE ARIMA origins"]
    header += ["steps", "fit s", "predict s"] + [f"RMSE h{h}" for h in (1, 6, 12, 24)]
    sec.lines += markdown_table(header, rows)
    fname = plot_by_step("etth1", curves, "RMSE (original units)", args)
    sec.lines += ["", f"![etth1]({fname})"]
    return sec


# ---------------------------------------------------------------------------------------------------
# 3. radar


def csi(pred: np.ndarray, true: np.ndarray, threshold: float) -> float:
    """Critical success index hits / (hits + misses + false alarms) at a rain-rate threshold."""
    p, t = pred >= threshold, true >= threshold
    hits = np.sum(p & t)
    denom = hits + np.sum(~p & t) + np.sum(p & ~t)
    return float(hits / denom) if denom else float("nan")


RADAR_HIDDEN = (16, 16, 16)
ETTH1_HIDDEN = (64, 64, 64)


def radar(args, work_dir: str) -> Section:
    """Nowcast the KNMI radar event: MIM (patch 4) vs persistence and the stlstm ablation.

    With ``frame differences`` the models are trained on ``x_t - x_{t-1}`` and their forecasts are
    summed onto the last observed frame: a zero forecast is persistence, so the networks learn a
    correction to it instead of the whole field from 49 training windows.
    """
    data = load_radar(args.data)
    frames = data.to_array().astype(np.float32)  # (T, 1, H, W)
    times = data.series.time_index
    n = len(frames)
    if args.quick:
        n_train, n_val = 16, 4
        budget = Budget(args.steps or 2, args.seconds, 4, args.epochs)
        hidden = (4, 4)
    else:
        n_train, n_val = 60, 12
        budget = Budget(args.steps or 300, args.seconds, 8, args.epochs)
        hidden = RADAR_HIDDEN
    # --split val: fit on the frames before the last n_val train frames, score on those
    fit_end, eval_end = (n_train - n_val, n_train) if args.split == "val" else (n_train, n)
    # one global scale from the fit frames (rain rate is comparable across cells)
    scale = float(frames[:fit_end].max())
    x = frames / scale
    plain = grid_to_series(x, times, ["rain_rate"])
    diffs = grid_to_series(np.diff(x, axis=0), times[1:], ["rain_rate"])
    kw = {
        "num_hidden": hidden,
        "filter_size": 3,
        "patch_size": 4,
        "sampling_decay_steps": budget.steps,
        "optimizer_kwargs": {"lr": 1e-3},
    }

    def models_for(seed: int) -> dict:
        ck = common_kwargs(budget, work_dir, seed)
        out = {
            "MIM (frame differences)": (mim_model(args, 6, 6, **kw, **ck), True),
            "MIM stlstm (PredRNN) (frame differences)": (
                mim_model(args, 6, 6, cell_type="stlstm", **kw, **ck),
                True,
            ),
        }
        if args.ablations:  # the networks on the frames themselves
            out["MIM"] = (mim_model(args, 6, 6, **kw, **ck), False)
            out["MIM stlstm (PredRNN)"] = (
                mim_model(args, 6, 6, cell_type="stlstm", **kw, **ck),
                False,
            )
        return out

    flat = x.reshape(n, -1)
    truth_all = frames.reshape(n, -1)

    def run(model, use_diff):
        series = diffs if use_diff else plain
        hf, t, starts = fit_and_backtest(
            model,
            series.drop_after(times[fit_end]),
            series.drop_after(times[eval_end]) if eval_end < n else series,
            times[fit_end],
            6,
            1,
            times,
        )
        pred = stack_forecasts(hf)
        if use_diff:  # back to frames: the last observed frame plus the forecast increments
            pred = flat[starts - 1][:, None, :] + np.cumsum(pred, axis=1)
        return np.clip(pred * scale, 0, None), t, starts

    preds, timing, starts = backtest_seeds("radar", models_for, args, run)
    preds["persistence"] = [np.stack([np.repeat(truth_all[s - 1 : s], 6, axis=0) for s in starts])]
    timing["persistence"] = [(0.0, 0.0, 0)]
    truth = truth_windows(truth_all, starts, 6)
    rows, curves = [], {}
    for label, runs in preds.items():
        mses = [float(np.mean((p - truth) ** 2)) for p in runs]
        per_step = np.mean([np.mean((p - truth) ** 2, axis=(0, 2)) for p in runs], axis=0)
        fit_s, pred_s, steps = np.mean(timing[label], axis=0)
        rows.append(
            [label, float(np.mean(mses)), seed_spread(mses), float(np.mean(np.sqrt(mses)))]
            + [float(np.mean([csi(p, truth, 1.0) for p in runs]))]
            + [float(np.mean([csi(p, truth, 5.0) for p in runs])), int(steps)]
            + [round(float(fit_s), 1), round(float(pred_s), 1)]
            + [float(v) for v in per_step]
        )
        curves[label] = per_step
    period = "validation" if args.split == "val" else "test"
    sec = Section("radar: KNMI rain rate 128x128, 5 min")
    sec.lines += [
        f"{n} frames; fit on frames 0-{fit_end - 1}; scored on the **{period}** frames: "
        f"{len(starts)} origins (every frame) whose 6 targets lie in frames {fit_end}-"
        f"{eval_end - 1}; 6 in, 6 out. Values divided by the fit frames' maximum ({scale:.3g} "
        f"mm/h), predictions clipped at 0. num_hidden={hidden}, filter 3, patch 4, lr 1e-3. "
        + budget_line(budget)
        + seeds_line(args.seeds),
        "",
    ]
    header = ["model", "MSE (mm/h)^2", "MSE sd", "RMSE mm/h", "CSI 1 mm/h", "CSI 5 mm/h", "steps"]
    header += ["fit s"]
    header += ["predict s"] + [f"MSE +{5 * h} min" for h in range(1, 7)]
    sec.lines += markdown_table(header, rows)
    tag = "radar" if args.split == "test" else "radar_val"
    fname = plot_by_step(tag, curves, "MSE (mm/h)^2", args)
    sec.lines += ["", f"![{tag}]({fname})"]
    return sec


# ---------------------------------------------------------------------------------------------------
# 4. Moving MNIST


def ssim_per_frame(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean SSIM over frames, Gaussian window 11 / sigma 1.5, data range 1 (torchmetrics)."""
    from torchmetrics.image import StructuralSimilarityIndexMeasure

    metric = StructuralSimilarityIndexMeasure(data_range=1.0, reduction="elementwise_mean")
    p = torch.from_numpy(pred.reshape(-1, 1, *pred.shape[-2:]).astype(np.float32))
    t = torch.from_numpy(true.reshape(-1, 1, *true.shape[-2:]).astype(np.float32))
    return float(metric(p, t))


def paper_mnist_kwargs(work_dir: str) -> dict:
    """The paper's Moving MNIST setting (Wang et al., 2019), on a GPU when there is one."""
    trainer = {"enable_progress_bar": True}
    if torch.cuda.is_available():
        trainer["accelerator"] = "gpu"
    return {
        "num_hidden": (64, 64, 64, 64),
        "filter_size": 5,
        "patch_size": 4,
        "optimizer_kwargs": {"lr": 1e-3},
        "batch_size": 8,
        "sampling_decay_steps": 50_000,
        "pl_trainer_kwargs": {**trainer, "max_steps": 80_000},
        "n_epochs": 10_000,  # max_steps (80k iterations) ends training first
        "work_dir": work_dir,
        "random_state": 0,
    }


def mnist(args, work_dir: str) -> Section:
    """Moving MNIST: MIM vs the stlstm ablation under a CPU budget (or the paper's setting)."""
    mdir = Path(args.data) / "mnist"
    if args.quick:
        n_train, n_test, hidden = 16, 4, (4, 4)
        budget = Budget(args.steps or 2, args.seconds, 4, args.epochs)
    else:
        n_train, n_test, hidden = 500, 100, (32, 32)
        budget = Budget(args.steps or 300, args.seconds, 8, args.epochs)
    if args.paper:
        n_train = 10_000
    train_seqs = moving_mnist(mdir, n_sequences=n_train, seed=0, as_series=True)
    test_arr = moving_mnist(mdir, n_sequences=n_test, seed=12345)
    test_in = [grid_to_series(seq[:10], pd.RangeIndex(0, 10), ["intensity"]) for seq in test_arr]
    if args.paper:
        base = paper_mnist_kwargs(work_dir)
        setting = "paper setting: 4x64, filter 5, patch 4, lr 1e-3, batch 8, 80k iterations"
    else:
        base = {
            "num_hidden": hidden,
            "filter_size": 3,
            "patch_size": 4,
            "sampling_decay_steps": budget.steps,
            "optimizer_kwargs": {"lr": 1e-3},
            **common_kwargs(budget, work_dir),
        }
        setting = (
            f"CPU budget: 64x64, patch 4, num_hidden={hidden}, filter 3, lr 1e-3, "
            f"{budget.steps} steps of batches of {budget.batch_size}, capped at "
            f"{budget.max_seconds} s"
        )

    def models_for(seed: int) -> dict:
        kw = {**base, "random_state": seed}
        return {
            "MIM": (mim_model(args, 10, 10, **kw), None),
            "MIM stlstm (PredRNN)": (mim_model(args, 10, 10, cell_type="stlstm", **kw), None),
        }

    truth = test_arr[:, 10:, 0]  # (S, 10, 64, 64)

    def run(model, _):
        secs, steps = fit_timed(model, train_seqs)
        t0 = time.perf_counter()
        out = model.predict(10, series=test_in, verbose=False)
        pred_s = time.perf_counter() - t0
        pred = np.clip(np.stack([o.values() for o in out]).reshape(truth.shape), 0.0, 1.0)
        return pred, (secs, pred_s, steps), None

    preds, timing, _ = backtest_seeds("mnist", models_for, args, run)
    rows, curves, by_seed = [], {}, []
    for label, runs in preds.items():
        sq = [((p - truth) ** 2).sum(axis=(2, 3)) for p in runs]  # per frame (S, 10)
        mses = [float(v.mean()) for v in sq]
        ssims = [ssim_per_frame(p, truth) for p in runs]
        fit_s, pred_s, steps = np.mean(timing[label], axis=0)
        rows.append(
            [label, float(np.mean(mses)), seed_spread(mses)]
            + [float(np.mean([np.abs(p - truth).sum(axis=(2, 3)).mean() for p in runs]))]
            + [float(np.mean(ssims)), seed_spread(ssims), int(steps)]
            + [round(float(fit_s), 1), round(float(pred_s), 1)]
        )
        curves[label] = np.mean([v.mean(axis=0) for v in sq], axis=0)
        if len(runs) > 1:
            by_seed.append(
                [label] + [f"{m:.1f} / {q:.3f}" for m, q in zip(mses, ssims, strict=True)]
            )
    # reference: copy the last input frame
    last = np.repeat(test_arr[:, 9:10, 0], 10, axis=1)
    sq = ((last - truth) ** 2).sum(axis=(2, 3))
    rows.append(
        ["copy last frame", float(sq.mean()), "-"]
        + [float(np.abs(last - truth).sum(axis=(2, 3)).mean()), ssim_per_frame(last, truth), "-"]
        + [0, 0.0, 0.0]
    )
    curves["copy last frame"] = sq.mean(axis=0)
    sec = Section("mnist: Moving MNIST 64x64, 2 digits, 10 -> 10")
    sec.lines += [
        f"{n_train} training sequences (seed 0) from the MNIST test digits, {n_test} test sequences "
        f"(seed 12345); {setting}. MSE and MAE per frame (sums over 4096 pixels), SSIM mean over "
        "frames." + seeds_line(args.seeds),
        "",
    ]
    header = ["model", "MSE / frame", "MSE sd", "MAE / frame", "SSIM", "SSIM sd", "steps"]
    sec.lines += markdown_table(header + ["fit s", "predict s"], rows)
    if by_seed:
        sec.lines += ["", f"MSE / SSIM by seed (seeds {list(args.seeds)}):", ""]
        sec.lines += markdown_table(["model"] + [f"seed {s}" for s in args.seeds], by_seed)
    fname = plot_by_step("mnist", curves, "MSE per frame", args)
    sec.lines += ["", f"![mnist]({fname})"]
    return sec


# ---------------------------------------------------------------------------------------------------
# command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None, help="data directory (default: default_data_dir())")
    p.add_argument("--only", default=",".join(DATASETS), help=f"subset of {','.join(DATASETS)}")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="optimizer steps per neural model (default: 300 for every data set, 2 with --quick)",
    )
    p.add_argument(
        "--epochs", type=int, default=1000, help="epoch cap per neural model (default 1000)"
    )
    p.add_argument(
        "--seconds", type=int, default=1200, help="wall-time cap per neural model (default 1200)"
    )
    p.add_argument(
        "--split",
        choices=("test", "val"),
        default="test",
        help="crowd flows and radar: score on the test period (default) or on the validation "
        "period, the one to choose settings on",
    )
    p.add_argument(
        "--ablations",
        action="store_true",
        help="radar: also the networks on the plain frames (not on frame differences)",
    )
    p.add_argument(
        "--seeds",
        default="0",
        help="comma-separated seeds; every neural model is fitted once per seed and the tables give "
        "the mean and the standard deviation (default 0)",
    )
    p.add_argument(
        "--models",
        default="",
        help="semicolon-separated model labels as in the tables: run only those neural models "
        "(the seasonal baselines and ARIMA always run)",
    )
    p.add_argument(
        "--mim-kwargs",
        default="{}",
        help='JSON of MIMModel arguments applied to every MIM model, e.g. \'{"input_window_loss": '
        "true}' (for trying a setting on --split val)",
    )
    p.add_argument(
        "--tag",
        default="",
        help="name of a variant run (e.g. with --mim-kwargs): its sections are kept next to, not "
        "instead of, the untagged ones",
    )
    p.add_argument("--jobs", type=int, default=1, help="data sets run in parallel (default 1)")
    p.add_argument("--quick", action="store_true", help="smoke test: tiny slices and models")
    p.add_argument("--paper", action="store_true", help="Moving MNIST in the paper's setting")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--out-dir", default=str(HERE), help="where results md and plots go")
    p.add_argument("--section-json", default=None, help=argparse.SUPPRESS)  # --jobs workers
    args = p.parse_args(argv)
    args.data = Path(args.data) if args.data else default_data_dir()
    if not args.data.is_dir():
        raise FileNotFoundError(f"--data {args.data} is not a directory; point it at shared/data.")
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(DATASETS))
    if unknown or not only:
        raise ValueError(f"--only got {unknown or only}; choose from {','.join(DATASETS)}.")
    args.only = only
    try:
        args.seeds = [int(v) for v in args.seeds.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated integers, got {args.seeds!r}.") from None
    if not args.seeds or len(set(args.seeds)) != len(args.seeds):
        raise ValueError(f"--seeds needs distinct integers, got {args.seeds}.")
    args.models = [m.strip() for m in args.models.split(";") if m.strip()]
    try:
        args.mim_kwargs = json.loads(args.mim_kwargs)
    except json.JSONDecodeError as err:
        raise ValueError(f"--mim-kwargs is not valid JSON ({err}): {args.mim_kwargs!r}.") from None
    if not isinstance(args.mim_kwargs, dict):
        raise ValueError(f"--mim-kwargs must be a JSON object, got {args.mim_kwargs!r}.")
    bad_steps = args.steps is not None and args.steps < 1
    if args.epochs < 1 or args.seconds < 1 or args.jobs < 1 or bad_steps:
        raise ValueError("--steps, --epochs, --seconds and --jobs must be >= 1.")
    args.out_dir = Path(args.out_dir)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    return args


MARKER = "<!-- findings: hand-written, kept when the script re-runs -->"


def run_section(name: str, args, work_dir: str) -> Section:
    """Run one data set and time it."""
    t0 = time.perf_counter()
    if name in ("bike", "taxi"):
        sec = crowd(name, args, work_dir)
    elif name == "etth1":
        sec = etth1(args, work_dir)
    elif name == "radar":
        sec = radar(args, work_dir)
    else:
        sec = mnist(args, work_dir)
    sec.lines += ["", f"Section wall time: {time.perf_counter() - t0:.0f} s."]
    if args.tag:  # its own section in the results file, next to the untagged one
        sec.title = sec.title.replace(":", f" [{args.tag}]:", 1)
    return sec


def worker_argv(args, name: str, out: Path) -> list[str]:
    """Command line of a worker process that runs one data set and writes its section to ``out``."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--only", name, "--data", str(args.data)]
    argv += ["--epochs", str(args.epochs), "--seconds", str(args.seconds), "--split", args.split]
    argv += ["--threads", str(args.threads), "--out-dir", str(args.out_dir)]
    argv += ["--section-json", str(out), "--seeds", ",".join(map(str, args.seeds))]
    argv += ["--models", ";".join(args.models), "--mim-kwargs", json.dumps(args.mim_kwargs)]
    argv += ["--tag", args.tag]
    if args.steps:
        argv += ["--steps", str(args.steps)]
    argv += [flag for flag, on in (("--quick", args.quick), ("--paper", args.paper)) if on]
    return argv + (["--ablations"] if args.ablations else [])


def run_parallel(args) -> list[Section]:
    """Run the data sets in ``args.jobs`` worker processes (one torch thread each by default)."""
    sections: dict[str, Section] = {}
    pending, running = list(args.only), []
    with tempfile.TemporaryDirectory() as tmp:
        while pending or running:
            while pending and len(running) < args.jobs:
                name = pending.pop(0)
                out = Path(tmp) / f"{name}.json"
                running.append((name, out, subprocess.Popen(worker_argv(args, name, out))))
            time.sleep(1)
            for item in list(running):
                name, out, proc = item
                if proc.poll() is None:
                    continue
                running.remove(item)
                if proc.returncode != 0:
                    raise RuntimeError(f"the {name} worker failed (exit {proc.returncode}).")
                sections[name] = Section(**json.loads(out.read_text()))
    return [sections[name] for name in args.only]


HEAD = [
    "# Forecast accuracy on real data",
    "",
    "Written by `python benchmarks/accuracy.py`: each data set's section says how it was run. "
    "Re-running some data sets replaces their sections and keeps the others.",
    "",
]


def split_sections(lines: list[str]) -> dict[str, list[str]]:
    """The ``## name: ...`` sections of a results file, keyed by data-set name."""
    out: dict[str, list[str]] = {}
    key = None
    for line in lines:
        if line.startswith("## "):
            key = line[3:].split(":")[0].strip()
            out[key] = []
        if key is not None:
            out[key].append(line)
    return out


def extra_flags(args) -> str:
    """The --models / --mim-kwargs part of a run's command line, when given."""
    out = f" --models '{';'.join(args.models)}'" if args.models else ""
    out += f' --tag "{args.tag}"' if args.tag else ""
    return out + (f" --mim-kwargs '{json.dumps(args.mim_kwargs)}'" if args.mim_kwargs else "")


def write_results(args, sections: list[Section], total: float) -> None:
    """Write ``accuracy_results.md``: this run's sections replace those of the same data sets, the
    other data sets' sections and the hand-written findings below :data:`MARKER` are kept."""
    mode = "quick" if args.quick else ("paper" if args.paper else "standard")
    flags = f"--steps {args.steps}" if args.steps else "default steps"
    run_line = (
        f"Run: `python benchmarks/accuracy.py` ({mode} run, {flags}, `--seconds {args.seconds} "
        f"--split {args.split} --seeds {','.join(map(str, args.seeds))} --jobs {args.jobs} --only "
        f"{','.join(args.only)}{' --ablations' if args.ablations else ''}"
        f"{extra_flags(args)}`), torch threads: "
        f"{args.threads} per process, total wall time {total / 60:.1f} min; wall times are noisy "
        "when other jobs share the cores, steps = optimizer steps actually done."
    )
    results = args.out_dir / "accuracy_results.md"
    old, tail = [], []
    if results.is_file():
        old = results.read_text().splitlines()
        if MARKER in old:
            old, tail = old[: old.index(MARKER)], old[old.index(MARKER) :]
    kept = split_sections(old)
    for sec in sections:
        kept[sec.title.split(":")[0]] = [f"## {sec.title}", ""] + sec.lines + ["", run_line, ""]
    # data sets in the order of DATASETS, each one's tagged variants after it
    order = sorted(kept, key=lambda key: (DATASETS.index(key.split()[0]), key))
    body = [line for key in order for line in kept[key]]
    results.write_text("\n".join(HEAD + body + tail) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "darts"):
        logging.getLogger(name).setLevel(logging.ERROR)
    t_start = time.perf_counter()
    if args.jobs > 1 and len(args.only) > 1:
        sections = run_parallel(args)
    else:
        sections = []
        with tempfile.TemporaryDirectory() as work_dir:
            for name in args.only:
                sec = run_section(name, args, work_dir)
                sections.append(sec)
                print(f"\n## {sec.title}\n\n" + "\n".join(sec.lines), flush=True)
    if args.section_json:  # a --jobs worker: hand the section back, write nothing else
        Path(args.section_json).write_text(json.dumps(asdict(sections[0])))
        return 0
    total = time.perf_counter() - t_start
    write_results(args, sections, total)
    print(f"\nTotal wall time {total:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")
    sys.exit(main())
