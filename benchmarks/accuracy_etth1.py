"""The ETTh1 section of ``accuracy.py``: MIM on a 1x1 grid, TCN, NHiTS, ARIMA per column and seasonal
naive on the multivariate hourly series. See the docstring of ``accuracy.py`` for the protocol.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
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
from darts.dataprocessing.transformers import Scaler
from darts.models import ARIMA, NHiTSModel, TCNModel

from darts_mim.datasets import load_csv_series

ETTH1_HIDDEN = (64, 64, 64)


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
