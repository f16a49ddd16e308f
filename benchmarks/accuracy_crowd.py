"""The crowd-flow section of ``accuracy.py`` (NYC bike and taxi flows): seasonal covariates known at
forecast time (the target lagged by a week and a day, calendar channels) and the backtest of MIM, TCN,
LSTM, seasonal naive and ARIMA. See the docstring of ``accuracy.py`` for the protocol.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from accuracy_common import (
    Budget,
    Section,
    backtest_seeds,
    budget_line,
    common_kwargs,
    fit_and_backtest,
    mim_model,
    seeds_line,
)
from accuracy_scoring import (
    invert,
    markdown_table,
    plot_by_step,
    rmse_mae_by_step,
    seed_spread,
    stack_forecasts,
    truth_windows,
)
from darts import TimeSeries
from darts.dataprocessing.transformers import Scaler
from darts.models import ARIMA, BlockRNNModel, TCNModel

from darts_mim import grid_to_series
from darts_mim.datasets import load_bike_flows, load_taxi_flows

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
