"""The radar section of ``accuracy.py``: nowcasting the KNMI rain-rate event with MIM and the stlstm
ablation (on frame differences) against persistence; MSE and the critical success index (CSI). See the
docstring of ``accuracy.py`` for the protocol.
"""

from __future__ import annotations

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
    markdown_table,
    plot_by_step,
    seed_spread,
    stack_forecasts,
    truth_windows,
)

from darts_mim import grid_to_series
from darts_mim.datasets import load_radar


def csi(pred: np.ndarray, true: np.ndarray, threshold: float) -> float:
    """Critical success index hits / (hits + misses + false alarms) at a rain-rate threshold."""
    p, t = pred >= threshold, true >= threshold
    hits = np.sum(p & t)
    denom = hits + np.sum(~p & t) + np.sum(p & ~t)
    return float(hits / denom) if denom else float("nan")


RADAR_HIDDEN = (16, 16, 16)


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
