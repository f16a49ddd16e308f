"""The radar section of ``accuracy.py``: nowcasting the KNMI rain-rate event with MIM, the stlstm
ablation (on frame differences) and the motion-aware MIM recipe (pysteps' Lucas-Kanade extrapolation
as gridded future covariates, MIM forecasting the residual) against persistence and pysteps' own
nowcasts (``radar_pysteps.py``); MSE, CSI, FSS and CRPS with pysteps' verification. See the docstring
of ``accuracy.py`` for the protocol.
"""

from __future__ import annotations

import time

import numpy as np
from accuracy_common import (
    Budget,
    Section,
    backtest_seeds,
    budget_line,
    common_kwargs,
    fit_and_backtest,
    fit_timed,
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
from radar_pysteps import ensemble_crps, quiet_nowcasts

from darts_mim import grid_to_series
from darts_mim.datasets import load_radar
from darts_mim.nowcast import (
    add_nowcast,
    import_pysteps,
    nowcast_windows,
    recentre_ensemble,
    verify,
    weigh_corrections,
)


def csi(pred: np.ndarray, true: np.ndarray, threshold: float) -> float:
    """Critical success index hits / (hits + misses + false alarms) at a rain-rate threshold."""
    p, t = pred >= threshold, true >= threshold
    hits = np.sum(p & t)
    denom = hits + np.sum(~p & t) + np.sum(p & ~t)
    return float(hits / denom) if denom else float("nan")


RADAR_HIDDEN = (16, 16, 16)

RECIPE = "MIM + LK nowcast (residual)"
"""The recommended motion-aware recipe (chosen on the validation origins, see radar_results.md)."""

# how each neural model sees the data: frame differences, plain frames, or nowcast windows whose
# targets are the frames ("covariate") or the frames minus the extrapolation nowcast ("residual")
MODES = ("diff", "plain", "covariate", "residual")


def _nowcast_windows(frames_series, origins: list[int], residual: bool, scale: float):
    """Nowcast windows per origin (model units), and the seconds the covariates took per origin."""
    t0 = time.perf_counter()
    targets, covs = nowcast_windows(
        frames_series, 6, 6, origins=origins, residual=residual, scale=scale
    )
    return targets, covs, (time.perf_counter() - t0) / max(len(origins), 1)


def radar(args, work_dir: str) -> Section:
    """Nowcast the KNMI radar event: MIM (patch 4) on frame differences, the motion-aware recipe
    (MIM on the residual of pysteps' extrapolation nowcast, the nowcast as gridded future covariates)
    vs persistence, pysteps' nowcasts and the stlstm ablation.

    With ``frame differences`` the models are trained on ``x_t - x_{t-1}`` and their forecasts are
    summed onto the last observed frame: a zero forecast is persistence, so the networks learn a
    correction to it instead of the whole field from 49 training windows. With the nowcast recipe a
    zero forecast is the Lagrangian extrapolation, and the network learns growth, decay and the
    motion's errors. pysteps is required (``pip install "darts-mim[radar]"``).
    """
    import_pysteps()  # a clear message before any model trains
    data = load_radar(args.data)
    frames = data.to_array().astype(np.float32)  # (T, 1, H, W)
    times = data.series.time_index
    n, _, height, width = frames.shape
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
    # forecasts start at fit_end .. eval_end - 6; origin = the last observed frame, one before
    starts = np.arange(fit_end, eval_end - 5)
    test_origins = [int(s) - 1 for s in starts]
    train_origins = list(range(5, fit_end - 6))  # windows whose 6 targets lie in the fit frames
    windows: dict[bool, tuple] = {}

    def nowcast_data(residual: bool):
        if residual not in windows:  # computed once, shared by the seeds
            tg_tr, cv_tr, _ = _nowcast_windows(data.series, train_origins, residual, scale)
            tg_te, cv_te, secs = _nowcast_windows(data.series, test_origins, residual, scale)
            windows[residual] = (tg_tr, cv_tr, tg_te, cv_te, secs)
        return windows[residual]

    def models_for(seed: int) -> dict:
        ck = common_kwargs(budget, work_dir, seed)
        out = {
            "MIM (frame differences)": (mim_model(args, 6, 6, **kw, **ck), "diff"),
            "MIM stlstm (PredRNN) (frame differences)": (
                mim_model(args, 6, 6, cell_type="stlstm", **kw, **ck),
                "diff",
            ),
            RECIPE: (mim_model(args, 6, 6, **kw, **ck), "residual"),
            "MIM + LK nowcast (covariate)": (mim_model(args, 6, 6, **kw, **ck), "covariate"),
        }
        if args.ablations:  # the networks on the frames themselves
            out["MIM"] = (mim_model(args, 6, 6, **kw, **ck), "plain")
            out["MIM stlstm (PredRNN)"] = (
                mim_model(args, 6, 6, cell_type="stlstm", **kw, **ck),
                "plain",
            )
        return out

    flat = x.reshape(n, -1)
    truth_all = frames.reshape(n, -1)
    cost: dict[str, float] = {}

    def run_nowcast(model, mode):
        tg_tr, cv_tr, tg_te, cv_te, cov_s = nowcast_data(mode == "residual")
        secs, steps = fit_timed(model, tg_tr, future_covariates=cv_tr)
        t0 = time.perf_counter()
        hf = model.historical_forecasts(
            tg_te,
            future_covariates=cv_te,
            start=6,
            start_format="position",
            forecast_horizon=6,
            stride=1,
            retrain=False,
            last_points_only=False,
            verbose=False,
        )
        forecasts = [f[0] for f in hf]  # one forecast per window
        if mode == "residual":  # back to mm/h: residual + nowcast
            forecasts = [add_nowcast(f, c, scale) for f, c in zip(forecasts, cv_te, strict=True)]
        else:
            forecasts = [f * scale for f in forecasts]
        pred_s = time.perf_counter() - t0
        cost[mode] = cov_s + pred_s / len(forecasts)
        pred = stack_forecasts(forecasts)
        return np.clip(pred, 0, None), (secs, pred_s, steps), starts

    def run(model, mode):
        if mode in ("covariate", "residual"):
            return run_nowcast(model, mode)
        series = diffs if mode == "diff" else plain
        hf, t, got_starts = fit_and_backtest(
            model,
            series.drop_after(times[fit_end]),
            series.drop_after(times[eval_end]) if eval_end < n else series,
            times[fit_end],
            6,
            1,
            times,
        )
        assert np.array_equal(got_starts, starts), "the backtest's origins moved"
        pred = stack_forecasts(hf)
        t0 = time.perf_counter()
        if mode == "diff":  # back to frames: the last observed frame plus the forecast increments
            pred = flat[starts - 1][:, None, :] + np.cumsum(pred, axis=1)
        cost[mode] = (t[1] + time.perf_counter() - t0) / len(starts)
        return np.clip(pred * scale, 0, None), t, starts

    preds, timing, _ = backtest_seeds("radar", models_for, args, run)
    modes = {label: mode for label, (_, mode) in models_for(args.seeds[0]).items()}
    per_nowcast = {label: cost.get(modes[label], float("nan")) for label in preds}
    preds["persistence"] = [np.stack([np.repeat(truth_all[s - 1 : s], 6, axis=0) for s in starts])]
    timing["persistence"] = [(0.0, 0.0, 0)]
    per_nowcast["persistence"] = 0.0
    t0 = time.perf_counter()
    baselines, baseline_secs, ensembles = quiet_nowcasts(
        frames[:, 0], np.array(test_origins), quick=args.quick, seed=0
    )
    baseline_wall = time.perf_counter() - t0
    for label, nowcast in baselines.items():
        preds[label] = [nowcast.reshape(len(starts), 6, -1)]
        timing[label] = [(0.0, baseline_secs[label] * len(starts), 0)]
        per_nowcast[label] = baseline_secs[label]
    truth = truth_windows(truth_all, starts, 6)
    truth_grid = truth.reshape(len(starts), 6, height, width)
    crps = ensemble_crps(ensembles, truth_grid)
    if RECIPE in preds:
        lk = preds["extrapolation LK"][0].reshape(truth_grid.shape)
        recipe = [p.reshape(truth_grid.shape) for p in preds[RECIPE]]
        if getattr(args, "radar_predictions", None):  # radar_loeo.py --fit-weights reads it
            from radar_loeo import write_predictions

            write_predictions(
                args.radar_predictions,
                {"radar_knmi": {"truth": truth_grid, "base": lk, "mim": recipe}},
            )
        weights = getattr(args, "radar_lead_weights", None)
        if weights is not None:  # the correction of LK's extrapolation, weighted per lead
            label = f"{RECIPE}, lead weights"
            preds[label] = [
                weigh_corrections(lk, p, weights).reshape(p.shape[0], 6, -1) for p in recipe
            ]
            timing[label] = timing[RECIPE]
            per_nowcast[label] = per_nowcast[RECIPE]
    ensemble_lines = _ensemble_table(preds, ensembles, truth_grid)
    rows, curves, scores = [], {}, {}
    for label, runs in preds.items():
        verified = [verify(p.reshape(truth_grid.shape), truth_grid) for p in runs]
        mses = [v["mse"] for v in verified]
        mean = {k: np.mean([v[k] for v in verified], axis=0) for k in verified[0]}
        scores[label] = mean
        fit_s, pred_s, steps = np.mean(timing[label], axis=0)
        rows.append(
            [label, float(np.mean(mses)), seed_spread(mses), float(np.mean(np.sqrt(mses)))]
            + [float(mean["csi1"]), float(mean["csi5"]), int(steps)]
            + [round(float(fit_s), 1), round(float(pred_s), 1)]
            + [float(v) for v in mean["mse_lead"]]
            + [float(mean["fss5"]), float(mean["fss15"])]
            + [crps if label == "STEPS mean (LK)" else float(mean["mae"])]
            + [round(per_nowcast[label], 3)]
        )
        curves[label] = mean["mse_lead"]
    period = "validation" if args.split == "val" else "test"
    shown_hidden = tuple(args.mim_kwargs.get("num_hidden", hidden))  # --mim-kwargs wins
    sec = Section("radar: KNMI rain rate 128x128, 5 min")
    sec.lines += [
        f"{n} frames; fit on frames 0-{fit_end - 1}; scored on the **{period}** frames: "
        f"{len(starts)} origins (every frame) whose 6 targets lie in frames {fit_end}-"
        f"{eval_end - 1}; 6 in, 6 out. Values divided by the fit frames' maximum ({scale:.3g} "
        f"mm/h), predictions clipped at 0. num_hidden={shown_hidden}, filter 3, patch 4, lr 1e-3. "
        + budget_line(budget)
        + seeds_line(args.seeds)
        + " Nowcast recipes: one 12-frame window per origin (origins 5-"
        f"{fit_end - 7} for fitting), pysteps' LK extrapolation of the origin's frame as a gridded "
        "future covariate (`darts_mim.nowcast`); `(residual)` forecasts observation minus nowcast. "
        "pysteps baselines: motion from the last 3 frames in dBR, cells advected in from outside "
        "the domain filled with the last observed frame (persistence); STEPS "
        f"{4 if args.quick else 20} members, seed 0 ({baseline_wall:.0f} s for all pysteps rows). "
        "Scores: pysteps.verification (CSI: rain > threshold, contingency tables accumulated over "
        "origins, leads and cells; FSS at 1 mm/h accumulated likewise); `CRPS` is the STEPS "
        "ensemble's, for point forecasts their MAE (their CRPS); `s / nowcast`: motion, covariates "
        "and forecast for one origin.",
        "",
    ]
    header = ["model", "MSE (mm/h)^2", "MSE sd", "RMSE mm/h", "CSI 1 mm/h", "CSI 5 mm/h", "steps"]
    header += ["fit s"]
    header += ["predict s"] + [f"MSE +{5 * h} min" for h in range(1, 7)]
    header += ["FSS 1 mm/h 5 cells", "FSS 1 mm/h 15 cells", "CRPS mm/h", "s / nowcast"]
    sec.lines += markdown_table(header, rows)
    leads = [f"+{5 * h} min" for h in range(1, 7)]
    for title, (a_key, b_key) in (
        ("CSI at 1 / 5 mm/h by lead time:", ("csi1_lead", "csi5_lead")),
        ("FSS at 1 mm/h over 5 / 15 cells by lead time:", ("fss5_lead", "fss15_lead")),
    ):
        sec.lines += ["", title, ""]
        sec.lines += markdown_table(
            ["model", *leads],
            [
                [label] + [f"{a:.3f} / {b:.3f}" for a, b in zip(s[a_key], s[b_key], strict=True)]
                for label, s in scores.items()
            ],
        )
    sec.lines += ensemble_lines
    tag = "radar" if args.split == "test" else "radar_val"
    fname = plot_by_step(tag, curves, "MSE (mm/h)^2", args)
    sec.lines += ["", f"![{tag}]({fname})"]
    score_png = plot_scores(tag, scores, args)
    sec.lines += ["", f"![{tag} CSI and FSS]({score_png})"]
    shown = RECIPE if RECIPE in preds else next(iter(preds))
    frames_png = plot_radar_frames(
        tag,
        truth_grid,
        {"LK extrapolation": preds["extrapolation LK"][0], shown: preds[shown][0]},
        args,
    )
    sec.lines += ["", f"![{tag} frames]({frames_png})"]
    return sec


def _ensemble_table(preds: dict, ensembles: np.ndarray, truth: np.ndarray) -> list[str]:
    """STEPS' ensemble against STEPS' members recentred on the MIM recipe's nowcast (each seed's;
    with lead weights, the weighted one): CRPS, rank histogram and reliability (pysteps)."""
    from radar_loeo import correction_ensemble, ensemble_scores

    scored = {"STEPS": ensemble_scores(ensembles, truth)}
    lk = preds["extrapolation LK"][0].reshape(truth.shape)
    for label in (RECIPE, f"{RECIPE}, lead weights"):
        if label not in preds:
            continue
        points = [p.reshape(truth.shape) for p in preds[label]]
        for name, make in (
            (f"STEPS recentred on {label}", lambda p: recentre_ensemble(ensembles, p)),
            (f"STEPS + correction of {label}", lambda p: correction_ensemble(ensembles, p, lk)),
        ):
            per_seed = [ensemble_scores(make(p), truth) for p in points]
            scored[name] = {k: float(np.mean([s[k] for s in per_seed])) for k in per_seed[0]}
    members = ensembles.shape[1]
    lines = [
        "",
        f"Ensembles of {members} members, mean over seeds: `STEPS recentred on`: each STEPS member "
        "minus the STEPS mean plus MIM's nowcast (`darts_mim.nowcast.recentre_ensemble`); `STEPS + "
        "correction of`: MIM's nowcast minus LK's extrapolation added to each STEPS member "
        "(`radar_loeo.py`'s `MIM + STEPS noise`). Rank histogram: share of the observations in its "
        f"two outer bins over rainy cells (calibrated: {2 / (members + 1):.3f}); BS: Brier score, "
        "REL: its reliability term, at 1 and 5 mm/h:",
        "",
    ]
    return lines + markdown_table(
        ["ensemble", "CRPS mm/h", "rank hist. outer bins", "BS 1", "REL 1", "BS 5", "REL 5"],
        [
            [label] + [float(s[k]) for k in ("crps", "rank_outer", "bs1", "rel1", "bs5", "rel5")]
            for label, s in scored.items()
        ],
    )


def _out_name(tag: str, what: str, args) -> str:
    if args.tag:
        tag = f"{tag}_{''.join(c if c.isalnum() else '_' for c in args.tag)}"
    return f"accuracy_{tag}_{what}.png"


def plot_scores(tag: str, scores: dict, args) -> str:
    """CSI at 1 and 5 mm/h and FSS at 1 mm/h (5 and 15 cells) by lead time, every model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("csi1_lead", "CSI 1 mm/h"),
        ("csi5_lead", "CSI 5 mm/h"),
        ("fss5_lead", "FSS 1 mm/h, 5 cells"),
        ("fss15_lead", "FSS 1 mm/h, 15 cells"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(16, 4))
    for ax, (key, title) in zip(axes, panels, strict=True):
        for label, s in scores.items():
            curve = s[key]
            style = "-" if label.startswith("MIM") else "--"
            ax.plot(5 * np.arange(1, len(curve) + 1), curve, style, marker="o", label=label)
        ax.set_title(title)
        ax.set_xlabel("lead time (min)")
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    fname = _out_name(tag, "scores", args)
    fig.savefig(args.out_dir / fname, dpi=90)
    plt.close(fig)
    return fname


def plot_radar_frames(tag: str, truth: np.ndarray, forecasts: dict, args) -> str:
    """Observed frames and each forecast, one column per lead time, for the origin with the most
    rain among the scored ones (the first seed's forecasts)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    i = int(np.argmax(truth.sum(axis=(1, 2, 3))))
    rows = {"observed": truth[i]}
    rows.update({k: v.reshape(truth.shape)[i] for k, v in forecasts.items()})
    leads = truth.shape[1]
    fig, axes = plt.subplots(len(rows), leads, figsize=(2 * leads, 2.1 * len(rows)))
    vmax = float(max(truth[i].max(), 1.0))
    for r, (label, frames_) in enumerate(rows.items()):
        for h in range(leads):
            ax = axes[r, h]
            ax.imshow(frames_[h], vmin=0, vmax=vmax, cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"+{5 * (h + 1)} min")
            if h == 0:
                ax.set_ylabel(label, fontsize=7)
    fig.suptitle(f"rain rate (mm/h, 0-{vmax:.0f}), origin {i} of the scored ones")
    fig.tight_layout()
    fname = _out_name(tag, "frames", args)
    fig.savefig(args.out_dir / fname, dpi=80)
    plt.close(fig)
    return fname
