"""Forecast quality of MIMModel on real data, against baselines, under an equal CPU budget.

One command runs rolling-origin backtests (``historical_forecasts(retrain=False)`` after one fit) and
prints markdown tables; it also writes ``benchmarks/accuracy_results.md`` and ``accuracy_*.png``::

    python benchmarks/accuracy.py                      # the standard run (~15 min on 2 busy cores)
    python benchmarks/accuracy.py --quick              # smoke test (tiny slices, tiny models)
    python benchmarks/accuracy.py --only bike,etth1 --epochs 5
    python benchmarks/accuracy.py --only mnist --paper # the paper's Moving MNIST setting (GPU)

Data sets (``--data DIR``, default :func:`darts_mim.datasets.default_data_dir`):

1. ``bike`` / ``taxi``: NYC crowd flows (2x14x8 and 2x16x12 cells, 30 min). 12 steps in, 6 out. Split
   by time: test = last 10 days, validation = the 10 days before, train = the rest. Forecast origins
   in the test period every ``stride`` (6) steps. Models: MIMModel with and without the 65 calendar and
   weather covariates (plain future covariates, broadcast to every cell), the ``stlstm`` and
   ``difference`` ablations, seasonal naive (1 day, 1 week), Darts TCNModel and BlockRNNModel (LSTM)
   on the flattened grid, and ARIMA(2,0,1) on the 4 busiest components (cell x channel) of the train part, on every
   4th test origin (all models are also scored on that sample).
   Values are scaled with a Darts ``Scaler`` fit on the train part only and inverted before scoring.
   On bike, a few MIM settings are first compared on the validation split (``tune``); the best one is
   used for the MIM models of both crowd-flow sets.
2. ``etth1``: ETTh1 (7 columns, hourly). 96 in, 24 out, last 20 % test, the 10 % before validation
   (unused: no tuning), origins every 24 h. MIMModel on a 1x1 grid (``filter_size=1``), TCNModel,
   NHiTSModel, ARIMA(2,1,1) per column on every 6th origin (fitted once; each origin conditions it
   on the previous 2 weeks), seasonal naive (24 h).
3. ``radar``: KNMI rain rate, 128x128, 5 min, 92 frames. 6 in, 6 out; frames 0-59 train, the forecast
   targets all lie in frames 60-91 (every origin). MIMModel (patch 4) vs persistence and the stlstm
   ablation; MSE (mm/h)^2 and CSI at 1 and 5 mm/h.
4. ``mnist``: Moving MNIST generated from the MNIST digits of ``DIR/mnist`` (64x64, 2 digits, 10 in,
   10 out; train and test sequences from different seeds). MIMModel vs the stlstm ablation, patch 4;
   per-frame MSE and MAE (sums over the 4096 pixels, averaged over frames and sequences, predictions
   clipped to [0, 1]) and SSIM (torchmetrics, Gaussian window 11, sigma 1.5).

Budget. Every neural model of a data set gets the same budget: ``--epochs`` epochs of at most
``batches`` batches each (a fixed number of optimizer steps, also used as ``sampling_decay_steps``
so that scheduled sampling reaches free running within the run) and the same wall-time cap
(Lightning ``max_time``). Torch runs on one thread: on two cores shared with other jobs, two threads
made one MIM step ~15x slower than one thread (1.4 s vs 22 s for a batch of 32 on the bike grid).

Paper setting (``--paper``, Moving MNIST only): 4 layers x 64 channels (128 in the paper's larger
variant), filter 5, patch 4, Adam lr 1e-3, batch 8, 80,000 iterations, scheduled sampling decaying
over 50,000 iterations, 10,000 training sequences; on a GPU when ``torch.cuda.is_available()``
(``pl_trainer_kwargs={"accelerator": "gpu"}``). That takes hours on a GPU and is not run here.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
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
    """Training budget shared by the neural models of one data set."""

    epochs: int
    batches: int  # batches per epoch
    max_seconds: int  # wall-time cap per model
    batch_size: int = 32

    @property
    def steps(self) -> int:
        return self.epochs * self.batches


@dataclass
class Section:
    """The markdown output of one data set."""

    title: str
    lines: list[str] = field(default_factory=list)


def trainer_kwargs(budget: Budget) -> dict:
    """CPU trainer kwargs that enforce the budget."""
    secs = budget.max_seconds
    return {
        "accelerator": "cpu",
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "logger": False,
        "limit_train_batches": budget.batches,
        "max_time": {"seconds": secs},
    }


def common_kwargs(budget: Budget, work_dir: str, seed: int = 0) -> dict:
    return {
        "n_epochs": budget.epochs,
        "batch_size": budget.batch_size,
        "pl_trainer_kwargs": trainer_kwargs(budget),
        "work_dir": work_dir,
        "random_state": seed,
        "save_checkpoints": False,
        "force_reset": True,
    }


def fit_timed(model, series, **kwargs) -> tuple[float, int]:
    """Fit and return (seconds, optimizer steps done)."""
    t0 = time.perf_counter()
    model.fit(series, verbose=False, **kwargs)
    steps = int(model.trainer.global_step) if getattr(model, "trainer", None) else -1
    return time.perf_counter() - t0, steps


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


def markdown_table(header: list[str], rows: list[list]) -> list[str]:
    def fmt(v) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return out


def plot_by_step(name: str, curves: dict[str, np.ndarray], ylabel: str, out_dir: Path) -> str:
    """Plot error by horizon step for every model; returns the file name."""
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


def mim_crowd_kwargs(quick: bool) -> dict:
    return {
        "num_hidden": (8, 8) if quick else (32, 32, 32),
        "filter_size": 3,
        "patch_size": 2,
    }


def crowd_tune(data, split, budget, work_dir, quick) -> tuple[dict, list[str]]:
    """Compare a few MIM settings on the validation split of one crowd-flow set; return the best."""
    series, train_end, val_end = data, split[0], split[1]
    scaler = Scaler().fit(series[:train_end])
    scaled = scaler.transform(series[:val_end])
    base = {"optimizer_kwargs": {"lr": 1e-3}, "sampling_decay_steps": budget.steps}
    settings = {
        "lr 1e-3, decay=run steps": base,
        "lr 5e-3, decay=run steps": {**base, "optimizer_kwargs": {"lr": 5e-3}},
        "lr 5e-3, decay 5000 (default)": {
            "optimizer_kwargs": {"lr": 5e-3},
            "sampling_decay_steps": 5000,
        },
        "lr 5e-3, decay=run steps, RIN": {
            **base,
            "optimizer_kwargs": {"lr": 5e-3},
            "use_reversible_instance_norm": True,
        },
    }
    if quick:
        settings = dict(list(settings.items())[:2])
    rows, best, best_rmse = [], None, np.inf
    true_vals = series[:val_end].values(copy=False)
    for label, extra in settings.items():
        model = MIMModel(
            12, 6, **mim_crowd_kwargs(quick), **common_kwargs(budget, work_dir), **extra
        )
        secs, steps = fit_timed(model, scaled[:train_end])
        hf = model.historical_forecasts(
            scaled,
            start=train_end,
            forecast_horizon=6,
            stride=6,
            retrain=False,
            last_points_only=False,
            verbose=False,
        )
        pred = invert(scaler, stack_forecasts(hf))
        starts = np.array([scaled.get_index_at_point(f.start_time()) for f in hf])
        rmse, mae, _ = rmse_mae_by_step(pred, truth_windows(true_vals, starts, 6))
        rows.append([label, rmse, mae, steps, round(secs, 1)])
        if rmse < best_rmse:
            best, best_rmse = extra, rmse
    lines = ["Validation split (MIMModel without covariates):", ""]
    lines += markdown_table(["setting", "val RMSE", "val MAE", "steps", "fit s"], rows)
    return best, lines


def crowd(name: str, args, work_dir: str, tuned: dict | None) -> tuple[Section, dict | None]:
    """Backtest every crowd-flow model on one data set."""
    loader = load_bike_flows if name == "bike" else load_taxi_flows
    data = loader(args.data)
    series, covs = data.series.astype(np.float32), data.covariates.astype(np.float32)
    spd = 48  # steps per day
    if args.quick:
        series, covs = series[-8 * spd :], covs[-8 * spd :]
        test_len, val_len, stride = spd, spd, 12
        budget = Budget(1, 2, 60, 16)
    else:
        test_len, val_len, stride = 10 * spd, 10 * spd, 6
        budget = Budget(args.epochs, 10, args.seconds, 32)
    n = len(series)
    train_end, val_end = n - test_len - val_len, n - test_len
    grid = data.grid
    sec = Section(f"{name}: NYC {name} flows {grid.n_channels}x{grid.height}x{grid.width}")
    lines = sec.lines
    lines += [
        f"{n} steps of 30 min; train {train_end}, validation {val_len}, test {test_len} "
        f"(last {test_len // spd} days); 12 in, 6 out; forecast origins every {stride} steps in the "
        f"test period. Budget per neural model: {budget.epochs} epoch(s) x {budget.batches} batches "
        f"of {budget.batch_size} (= {budget.steps} steps), capped at {budget.max_seconds} s.",
        "",
    ]
    if name == "bike" and tuned is None:
        tuned, tune_lines = crowd_tune(series, (train_end, val_end), budget, work_dir, args.quick)
        lines += tune_lines + [""]
    mim_extra = tuned or {"optimizer_kwargs": {"lr": 1e-3}, "sampling_decay_steps": budget.steps}
    lines += [f"MIM setting used: `{mim_extra}`", ""]

    scaler = Scaler().fit(series[:train_end])
    scaled = scaler.transform(series)
    train = scaled[:train_end]
    cov_scaler = Scaler().fit(covs[:train_end])
    covs_s = cov_scaler.transform(covs)
    true_vals = series.values(copy=False)
    ck = common_kwargs(budget, work_dir)
    mk = mim_crowd_kwargs(args.quick)
    models = {
        "MIM": (MIMModel(12, 6, **mk, **ck, **mim_extra), False),
        "MIM + covariates": (MIMModel(12, 6, **mk, **ck, **mim_extra), True),
        "MIM stlstm (PredRNN)": (
            MIMModel(12, 6, cell_type="stlstm", **mk, **ck, **mim_extra),
            False,
        ),
        "MIM diff_mode=difference": (
            MIMModel(12, 6, diff_mode="difference", **mk, **ck, **mim_extra),
            False,
        ),
        "TCN": (
            TCNModel(12, 6, num_filters=32, kernel_size=3, dilation_base=2, **ck),
            False,
        ),
        "LSTM (BlockRNN)": (
            BlockRNNModel(12, 6, model="LSTM", hidden_dim=64, n_rnn_layers=1, **ck),
            False,
        ),
    }
    preds, timing, starts = {}, {}, None
    for label, (model, use_cov) in models.items():
        fc = {"future_covariates": covs_s} if use_cov else {}
        fit_fc = {"future_covariates": covs_s} if use_cov else {}
        secs, steps = fit_timed(model, train, **fit_fc)
        t0 = time.perf_counter()
        hf = model.historical_forecasts(
            scaled,
            start=val_end,
            forecast_horizon=6,
            stride=stride,
            retrain=False,
            last_points_only=False,
            verbose=False,
            **fc,
        )
        timing[label] = (secs, time.perf_counter() - t0, steps)
        preds[label] = invert(scaler, stack_forecasts(hf))
        if starts is None:
            starts = np.array([scaled.get_index_at_point(f.start_time()) for f in hf])
    truth = truth_windows(true_vals, starts, 6)
    for season, label in ((spd, "seasonal naive 1 day"), (7 * spd, "seasonal naive 1 week")):
        if starts.min() - season < 0:
            continue
        t0 = time.perf_counter()
        preds[label] = np.stack([true_vals[s - season : s - season + 6] for s in starts])
        timing[label] = (0.0, time.perf_counter() - t0, 0)

    # ARIMA on the busiest components of the train part (too slow for every cell)
    busiest = np.argsort(true_vals[:train_end].mean(axis=0))[::-1][:4]
    names = series.components
    t0 = time.perf_counter()
    sub = np.arange(0, len(starts), 4)  # ARIMA origins: every 4th test origin (time)
    arima_pred = np.zeros((len(sub), 6, len(busiest)))
    ctx = 2 * spd if args.quick else 7 * spd
    for j, comp in enumerate(busiest):
        uni = scaled.univariate_component(int(comp))
        model = ARIMA(p=2, d=0, q=1)
        model.fit(uni[max(0, train_end - 3 * ctx) : train_end])
        for i, s in enumerate(starts[sub]):
            fc = model.predict(6, series=uni[s - ctx : s])
            arima_pred[i, :, j] = fc.values()[:, 0]
    arima_pred = invert(scaler, arima_pred, busiest)
    arima_secs = time.perf_counter() - t0

    rows, curves = [], {}
    for label, pred in preds.items():
        rmse, mae, per_step = rmse_mae_by_step(pred, truth)
        b_rmse, b_mae, _ = rmse_mae_by_step(pred[sub][:, :, busiest], truth[sub][:, :, busiest])
        fit_s, pred_s, steps = timing[label]
        rows.append(
            [label, rmse, mae, b_rmse, b_mae, steps, round(fit_s, 1), round(pred_s, 1)]
            + [float(v) for v in per_step]
        )
        curves[label] = per_step
    a_rmse, a_mae, _ = rmse_mae_by_step(arima_pred, truth[sub][:, :, busiest])
    rows.append(["ARIMA(2,0,1) busiest 4", "-", "-", a_rmse, a_mae, 0, "-", round(arima_secs, 1)])
    rows[-1] += ["-"] * 6
    header = [
        "model",
        "RMSE",
        "MAE",
        "RMSE busiest4",
        "MAE busiest4",
        "steps",
        "fit s",
        "predict s",
    ]
    header += [f"RMSE h{h}" for h in range(1, 7)]
    lines += [
        f"Test period, {len(starts)} origins; original scale (trips per 30 min). Columns "
        f"'busiest4': the 4 busiest components of the train part, {[names[i] for i in busiest]}, "
        f"on every 4th origin ({len(sub)}), the sample ARIMA is run on.",
        "",
    ]
    lines += markdown_table(header, rows)
    fname = plot_by_step(name, curves, "RMSE (trips / 30 min)", args.out_dir)
    lines += ["", f"![{name}]({fname})"]
    return sec, tuned


# ---------------------------------------------------------------------------------------------------
# 2. ETTh1


def etth1(args, work_dir: str) -> Section:
    """Backtest on ETTh1 (multivariate, 1x1 grid for MIM)."""
    series = load_csv_series(Path(args.data) / "series" / "ETTh1.csv").astype(np.float32)
    if args.quick:
        series = series[:600]
        budget, stride, ctx = Budget(1, 2, 60, 16), 48, 96
    else:
        budget, stride, ctx = Budget(args.epochs, 20, args.seconds, 32), 24, 14 * 24
    n = len(series)
    test_len = int(0.2 * n)
    val_len = int(0.1 * n)
    train_end, test_start = n - test_len - val_len, n - test_len
    scaler = Scaler().fit(series[:train_end])
    scaled = scaler.transform(series)
    train = scaled[:train_end]
    ck = common_kwargs(budget, work_dir)
    small = args.quick
    models = {
        "MIM (1x1, filter 1)": MIMModel(
            96,
            24,
            num_hidden=(8, 8) if small else (64, 64, 64),
            filter_size=1,
            sampling_decay_steps=budget.steps,
            optimizer_kwargs={"lr": 1e-3},
            **ck,
        ),
        "TCN": TCNModel(96, 24, num_filters=32, kernel_size=3, dilation_base=2, **ck),
        "NHiTS": NHiTSModel(96, 24, num_blocks=1, num_layers=2, layer_widths=128, **ck),
    }
    preds, timing, starts = {}, {}, None
    true_vals = series.values(copy=False)
    for label, model in models.items():
        secs, steps = fit_timed(model, train)
        t0 = time.perf_counter()
        hf = model.historical_forecasts(
            scaled,
            start=test_start,
            forecast_horizon=24,
            stride=stride,
            retrain=False,
            last_points_only=False,
            verbose=False,
        )
        timing[label] = (secs, time.perf_counter() - t0, steps)
        preds[label] = invert(scaler, stack_forecasts(hf))
        if starts is None:
            starts = np.array([scaled.get_index_at_point(f.start_time()) for f in hf])
    t0 = time.perf_counter()
    preds["seasonal naive 24 h"] = np.stack([true_vals[s - 24 : s] for s in starts])
    timing["seasonal naive 24 h"] = (0.0, time.perf_counter() - t0, 0)
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
    timing["ARIMA(2,1,1) per column"] = (0.0, time.perf_counter() - t0, 0)
    truth = truth_windows(true_vals, starts, 24)
    # scores on the train-scaled values too (the usual ETT convention)
    sc_truth = truth * sk.scale_ + sk.min_
    rows, curves = [], {}
    for label, pred in preds.items():
        rmse, mae, per_step = rmse_mae_by_step(pred, truth)
        s_rmse, s_mae, _ = rmse_mae_by_step(pred * sk.scale_ + sk.min_, sc_truth)
        fit_s, pred_s, steps = timing[label]
        a_rmse, _, _ = rmse_mae_by_step(pred[sub], truth[sub])
        rows.append(
            [label, rmse, mae, s_rmse, s_mae, a_rmse, steps, round(fit_s, 1), round(pred_s, 1)]
            + [float(per_step[h]) for h in (0, 5, 11, 23)]
        )
        curves[label] = per_step
    a_rmse, a_mae, a_step = rmse_mae_by_step(arima, truth[sub])
    a_secs = timing["ARIMA(2,1,1) per column"][1]
    rows.append(["ARIMA(2,1,1) per column", "-", "-", "-", "-", a_rmse, 0, "-", round(a_secs, 1)])
    rows[-1] += [float(a_step[h]) for h in (0, 5, 11, 23)]
    sec = Section("etth1: ETTh1, 7 columns, hourly")
    sec.lines += [
        f"{n} steps; train {train_end}, validation {val_len} (unused), test {test_len} (last 20 %); "
        f"96 in, 24 out; {len(starts)} origins every {stride} h. Budget per neural model: "
        f"{budget.epochs} epoch(s) x {budget.batches} batches of {budget.batch_size} "
        f"(= {budget.steps} steps), capped at {budget.max_seconds} s. RMSE/MAE on the original "
        "scale and on the train-MinMax-scaled scale; ARIMA runs on every 6th origin "
        f"({len(np.arange(0, len(starts), 6))}), where every model is also scored.",
        "",
    ]
    header = ["model", "RMSE", "MAE", "RMSE scaled", "MAE scaled", "RMSE ARIMA origins"]
    header += ["steps", "fit s", "predict s"] + [f"RMSE h{h}" for h in (1, 6, 12, 24)]
    sec.lines += markdown_table(header, rows)
    fname = plot_by_step("etth1", curves, "RMSE (original units)", args.out_dir)
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


def radar(args, work_dir: str) -> Section:
    """Nowcast the KNMI radar event: MIM (patch 4) vs persistence and the stlstm ablation."""
    data = load_radar(args.data)
    frames = data.to_array().astype(np.float32)  # (T, 1, H, W)
    if args.quick:
        n_train = 16
        budget = Budget(1, 2, 60, 4)
        hidden = (4, 4)
    else:
        n_train = 60
        budget = Budget(args.epochs, 10, args.seconds, 8)
        hidden = (16, 16, 16)
    # one global scale from the train frames (rain rate is comparable across cells)
    scale = float(frames[:n_train].max())
    series = grid_to_series(frames / scale, data.series.time_index, ["rain_rate"])
    train = series[:n_train]
    ck = common_kwargs(budget, work_dir)
    kw = {
        "num_hidden": hidden,
        "filter_size": 3,
        "patch_size": 4,
        "sampling_decay_steps": budget.steps,
        "optimizer_kwargs": {"lr": 1e-3},
    }
    models = {
        "MIM": MIMModel(6, 6, **kw, **ck),
        "MIM stlstm (PredRNN)": MIMModel(6, 6, cell_type="stlstm", **kw, **ck),
    }
    truth_all = frames.reshape(len(frames), -1)
    preds, timing, starts = {}, {}, None
    for label, model in models.items():
        secs, steps = fit_timed(model, train)
        t0 = time.perf_counter()
        hf = model.historical_forecasts(
            series,
            start=n_train,
            forecast_horizon=6,
            stride=1,
            retrain=False,
            last_points_only=False,
            verbose=False,
        )
        timing[label] = (secs, time.perf_counter() - t0, steps)
        preds[label] = np.clip(stack_forecasts(hf) * scale, 0, None)
        if starts is None:
            starts = np.array([series.get_index_at_point(f.start_time()) for f in hf])
    preds["persistence"] = np.stack([np.repeat(truth_all[s - 1 : s], 6, axis=0) for s in starts])
    timing["persistence"] = (0.0, 0.0, 0)
    truth = truth_windows(truth_all, starts, 6)
    rows, curves = [], {}
    for label, pred in preds.items():
        mse = float(np.mean((pred - truth) ** 2))
        per_step = np.mean((pred - truth) ** 2, axis=(0, 2))
        fit_s, pred_s, steps = timing[label]
        rows.append(
            [label, mse, csi(pred, truth, 1.0), csi(pred, truth, 5.0), steps, round(fit_s, 1)]
            + [round(pred_s, 1)]
            + [float(v) for v in per_step]
        )
        curves[label] = per_step
    sec = Section("radar: KNMI rain rate 128x128, 5 min")
    sec.lines += [
        f"{len(frames)} frames; train = frames 0-{n_train - 1}; {len(starts)} origins (every "
        f"frame) whose 6 targets lie in frames {n_train}-{len(frames) - 1}; 6 in, 6 out. Values "
        f"divided by the train maximum ({scale:.3g} mm/h), predictions clipped at 0. Budget per "
        f"neural model: {budget.epochs} epoch(s) x {budget.batches} batches of {budget.batch_size}"
        f" (= {budget.steps} steps), capped at {budget.max_seconds} s; num_hidden={hidden}, "
        "filter 3, patch 4.",
        "",
    ]
    header = ["model", "MSE (mm/h)^2", "CSI 1 mm/h", "CSI 5 mm/h", "steps", "fit s", "predict s"]
    header += [f"MSE +{5 * h} min" for h in range(1, 7)]
    sec.lines += markdown_table(header, rows)
    fname = plot_by_step("radar", curves, "MSE (mm/h)^2", args.out_dir)
    sec.lines += ["", f"![radar]({fname})"]
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
        n_train, n_test, budget, hidden = 16, 4, Budget(1, 2, 60, 4), (4, 4)
    else:
        n_train, n_test, hidden = 500, 100, (32, 32)
        budget = Budget(args.epochs, 15, int(args.seconds * 1.5), 8)
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
            f"{budget.epochs} epoch(s) x {budget.batches} batches of {budget.batch_size} "
            f"(= {budget.steps} steps), capped at {budget.max_seconds} s"
        )
    models = {
        "MIM": MIMModel(10, 10, **base),
        "MIM stlstm (PredRNN)": MIMModel(10, 10, cell_type="stlstm", **base),
    }
    truth = test_arr[:, 10:, 0]  # (S, 10, 64, 64)
    rows, curves = [], {}
    for label, model in models.items():
        secs, steps = fit_timed(model, train_seqs)
        t0 = time.perf_counter()
        out = model.predict(10, series=test_in, verbose=False)
        pred_s = time.perf_counter() - t0
        pred = np.clip(np.stack([o.values() for o in out]).reshape(truth.shape), 0.0, 1.0)
        sq = ((pred - truth) ** 2).sum(axis=(2, 3))  # per frame (S, 10)
        ab = np.abs(pred - truth).sum(axis=(2, 3))
        rows.append(
            [label, float(sq.mean()), float(ab.mean()), ssim_per_frame(pred, truth), steps]
            + [round(secs, 1), round(pred_s, 1)]
        )
        curves[label] = sq.mean(axis=0)
    # reference: copy the last input frame
    last = np.repeat(test_arr[:, 9:10, 0], 10, axis=1)
    sq = ((last - truth) ** 2).sum(axis=(2, 3))
    rows.append(
        ["copy last frame", float(sq.mean()), float(np.abs(last - truth).sum(axis=(2, 3)).mean())]
        + [ssim_per_frame(last, truth), 0, 0.0, 0.0]
    )
    curves["copy last frame"] = sq.mean(axis=0)
    sec = Section("mnist: Moving MNIST 64x64, 2 digits, 10 -> 10")
    sec.lines += [
        f"{n_train} training sequences (seed 0) from the MNIST test digits, {n_test} test sequences "
        f"(seed 12345); {setting}. MSE and MAE per frame (sums over 4096 pixels), SSIM mean over "
        "frames.",
        "",
    ]
    header = ["model", "MSE / frame", "MAE / frame", "SSIM", "steps", "fit s", "predict s"]
    sec.lines += markdown_table(header, rows)
    fname = plot_by_step("mnist", curves, "MSE per frame", args.out_dir)
    sec.lines += ["", f"![mnist]({fname})"]
    return sec


# ---------------------------------------------------------------------------------------------------
# command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None, help="data directory (default: default_data_dir())")
    p.add_argument("--only", default=",".join(DATASETS), help=f"subset of {','.join(DATASETS)}")
    p.add_argument("--epochs", type=int, default=3, help="epochs per neural model (default 3)")
    p.add_argument(
        "--seconds", type=int, default=35, help="wall-time cap per neural model (default 35)"
    )
    p.add_argument("--quick", action="store_true", help="smoke test: tiny slices and models")
    p.add_argument("--paper", action="store_true", help="Moving MNIST in the paper's setting")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--out-dir", default=str(HERE), help="where results md and plots go")
    args = p.parse_args(argv)
    args.data = Path(args.data) if args.data else default_data_dir()
    if not args.data.is_dir():
        raise FileNotFoundError(f"--data {args.data} is not a directory; point it at shared/data.")
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(DATASETS))
    if unknown or not only:
        raise ValueError(f"--only got {unknown or only}; choose from {','.join(DATASETS)}.")
    args.only = only
    if args.epochs < 1 or args.seconds < 1:
        raise ValueError("--epochs and --seconds must be >= 1.")
    args.out_dir = Path(args.out_dir)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    return args


MARKER = "<!-- findings: hand-written, kept when the script re-runs -->"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "darts"):
        logging.getLogger(name).setLevel(logging.ERROR)
    t_start = time.perf_counter()
    sections: list[Section] = []
    tuned = None
    with tempfile.TemporaryDirectory() as work_dir:
        for name in args.only:
            t0 = time.perf_counter()
            if name in ("bike", "taxi"):
                sec, tuned = crowd(name, args, work_dir, tuned)
            elif name == "etth1":
                sec = etth1(args, work_dir)
            elif name == "radar":
                sec = radar(args, work_dir)
            else:
                sec = mnist(args, work_dir)
            sec.lines += ["", f"Section wall time: {time.perf_counter() - t0:.0f} s."]
            sections.append(sec)
            print(f"\n## {sec.title}\n\n" + "\n".join(sec.lines), flush=True)
    total = time.perf_counter() - t_start
    mode = "quick" if args.quick else ("paper" if args.paper else "standard")
    head = [
        "# Forecast accuracy on real data",
        "",
        f"Generated by `python benchmarks/accuracy.py` ({mode} run, `--epochs {args.epochs} "
        f"--seconds {args.seconds} --only {','.join(args.only)}`), torch threads: {args.threads}, "
        f"total wall time {total / 60:.1f} min on a 2-core machine shared with other jobs. "
        "Wall times are therefore noisy; steps = optimizer steps actually done.",
        "",
    ]
    body = []
    for sec in sections:
        body += [f"## {sec.title}", ""] + sec.lines + [""]
    # Hand-written findings below the marker survive a re-run.
    results = args.out_dir / "accuracy_results.md"
    tail: list[str] = []
    if results.is_file():
        old = results.read_text().splitlines()
        if MARKER in old:
            tail = old[old.index(MARKER) :]
    results.write_text("\n".join(head + body + tail) + "\n")
    print(f"\nTotal wall time {total:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")
    sys.exit(main())
