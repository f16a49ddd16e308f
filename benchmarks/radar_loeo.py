"""Leave one radar event out (issue 25): the motion-aware MIM recipe across radars and climates.

For each test event, MIM is trained on the nowcast windows of the **other** events only (the recipe
of ``accuracy_radar.py``: pysteps' Lucas-Kanade extrapolation as a gridded future covariate, MIM
forecasting the observation minus it) and scored on the test event's origins against persistence,
pysteps' LK extrapolation, S-PROG, ANVIL and STEPS (its mean, and its ensemble by CRPS). Every event
is the test event once (``--events`` picks them; all six by default).

Data (:func:`darts_mim.datasets.radar_events.load_radar_events`): every event at its native step
(2 to 15 minutes), 6 frames in and 6 out, so lead times count frames and differ in minutes per radar;
rain rates in mm/h divided by one fixed unit (``--scale``, mm/h per model unit) for every event;
``--pool k`` mean-pools k x k cells. Windows never straddle events (one series per window, each inside
one event).

MIM's design, fixed before the run (not tuned on test events): 2 layers of 16, 3x3 filters, patch 4,
batches of 8, lr 1e-3 constant, no gradient clipping, the loss over the input window too (the KNMI
recipe; an L1 loss, chosen over MSE on validation events with ``--validation``; ``--loss mse`` for
the first runs'; ``--loss bmae`` / ``bmse`` weigh each cell by the rain observed there, the balanced
losses of Shi et al. 2017, through Darts' sample weights), and **no naive anchor with the network's head zeroed before training**
(``naive_anchor="zero"``), so the untrained model *is* the LK extrapolation: the KNMI recipe
anchored the residual on its last input
frame (the last one-step extrapolation error, repeated at every lead), a likely cause of its +5-minute
weakness. ``--anchor`` restores the KNMI recipe's anchor. ``--target covariate`` trains MIM on the
observations themselves, the LK nowcast only a covariate (anchored on the last frame), to compare
with the residual on validation events. ``--base sprog`` puts S-PROG's nowcast under the forecast
steps instead of LK's extrapolation (the covariate's channel and, for residual targets, the base the
correction is added to); the input steps keep their one-step LK extrapolations.

Ensembles from MIM, both scored: ``STEPS recentred on MIM`` (``darts_mim.nowcast.recentre_ensemble``:
each STEPS member minus the STEPS mean plus MIM's nowcast, so STEPS' spread surrounds MIM's nowcast;
the one ``--ensemble`` counts by default, chosen on the KNMI event's validation origins) and ``MIM +
STEPS noise`` (MIM's correction, its nowcast minus the LK extrapolation, added to each STEPS member of
the same origin, so that the members keep STEPS' own mean shift). Each is scored, as
STEPS' own members, by CRPS, the rank histogram (share of observations in its two outer bins; a
calibrated ensemble of m members puts 2 / (m + 1) there) and the reliability diagram at 1 and 5 mm/h
(Brier score and its reliability term) with pysteps.verification.

``--blend-weights`` blends MIM's nowcast with the STEPS mean per lead (``STEPS mean + w * (MIM -
STEPS mean)``, :func:`darts_mim.nowcast.weigh_corrections` with the STEPS mean as the base): MIM's row
and both ensembles then use the blend. ``--fit-blend`` fits those weights on a validation run's
``--predictions`` file, as ``--fit-weights`` fits the weights of MIM's correction of LK.

Choosing settings without the test events (``--validation``): for each test event T, the next event
of the list (V) is the validation event; MIM is trained on the events other than T and V and scored
on V's origins, so T is never read. Compare runs that differ in one setting (``--loss``,
``--anchor``, ``--target``, ``--base``) on these scores only, then run the test protocol once with the chosen setting.

``--nested-weights NPZ`` fits, for each test event, the weights of MIM's correction and of its blend
with the STEPS mean on a validation run's ``--predictions`` without that event's own predictions
(every event is another fold's validation event, so weights fitted on all of them would have read the
test event's frames).

Run from the repository root (the recipe of darts-mim 0.13: validation predictions, then the test
events with nested weights)::

    OMP_NUM_THREADS=1 python benchmarks/radar_loeo.py --validation --seeds 0 --predictions val.npz
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/radar_loeo.py --pool 2 --steps 200 --seeds 0,1 \
        --nested-weights val.npz
    python benchmarks/radar_loeo.py --quick     # smoke test: the bundled KNMI event cut in 3, < 60 s
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from radar_pysteps import _from_db, _one_origin, _to_db, sprog_nowcast  # noqa: E402

from darts_mim.datasets.radar import RADAR_EVENTS, load_radar  # noqa: E402
from darts_mim.datasets.radar_events import (  # noqa: E402
    RadarEvent,
    event_windows,
    load_radar_events,
    radar_event,
)
from darts_mim.grid import grid_spec_of, grid_to_series, series_to_grid  # noqa: E402
from darts_mim.nowcast import (  # noqa: E402
    add_nowcast,
    fit_lead_weights,
    import_pysteps,
    intensity_weights,
    motion_field,
    recentre_ensemble,
    verify,
    weigh_corrections,
)

IN, OUT = 6, 6
MIM = "MIM + LK nowcast (residual)"
BASE_LABEL = {"lk": "LK extrapolation", "sprog": "S-PROG"}  # --base: the nowcast MIM corrects
MIM_ENS = "MIM + STEPS noise"
MIM_ENS_CENTRED = "STEPS recentred on MIM"
ENSEMBLES = {"correction": MIM_ENS, "recentred": MIM_ENS_CENTRED}  # --ensemble: the target's
BASELINES = ("persistence", "LK extrapolation", "S-PROG", "ANVIL", "STEPS mean")
THRESHOLDS = (1.0, 5.0)


# ----------------------------------------------------------------------------------------- data
def quick_events() -> dict[str, RadarEvent]:
    """The bundled KNMI event cut into three pseudo-events of 30 frames, 8x8 mean-pooled (16 x 16
    cells): no data directory needed."""
    data = load_radar()
    frames = data.to_array()[:, 0]
    times = data.series.time_index
    cuts = {"knmi_a": slice(0, 30), "knmi_b": slice(30, 60), "knmi_c": slice(60, 90)}
    return {
        name: radar_event(name, frames[cut], times[cut], pool=8, min_frames=IN + OUT)
        for name, cut in cuts.items()
    }


def test_origins(n_origins: int, wanted: int) -> list[int]:
    """Up to ``wanted`` window indices spread evenly over an event's ``n_origins`` windows."""
    if n_origins <= wanted:
        return list(range(n_origins))
    return sorted({int(round(i)) for i in np.linspace(0, n_origins - 1, wanted)})


# ------------------------------------------------------------------------------------ pysteps
def pysteps_one_origin(
    history: np.ndarray, members: int, seed: int, step_minutes: int, km_per_cell: float
) -> tuple[dict, dict, np.ndarray]:
    """Each baseline's nowcast (mm/h, ``(OUT, H, W)``) and seconds from one origin's input frames,
    and the STEPS ensemble ``(members, OUT, H, W)``: ``radar_pysteps.py``'s methods at this radar's
    step and cell size (4 cascade levels below 64 x 64 cells), without VET."""
    levels = cascade_levels(history)
    with contextlib.redirect_stdout(io.StringIO()):  # pysteps prints its settings
        nowcasts = _one_origin(
            history,
            members,
            seed,
            leads=OUT,
            step_minutes=step_minutes,
            km_per_cell=km_per_cell,
            n_cascade_levels=levels,
            vet=False,
        )
    last = history[-1].astype(np.float64)
    out, secs = {"persistence": np.repeat(last[None], OUT, axis=0)}, {"persistence": 0.0}
    for label, theirs in _LABELS.items():
        out[label], secs[label] = nowcasts[theirs]
    return out, secs, nowcasts["STEPS ensemble"][0]


# this benchmark's row labels -> radar_pysteps.py's
_LABELS = {
    "LK extrapolation": "extrapolation LK",
    "S-PROG": "S-PROG (LK)",
    "ANVIL": "ANVIL (LK)",
    "STEPS mean": "STEPS mean (LK)",
}


def correction_ensemble(members: np.ndarray, nowcast: np.ndarray, base: np.ndarray) -> np.ndarray:
    """``MIM + STEPS noise``: MIM's correction of its base (``nowcast - base``) added to each
    member of ``(origins, members, leads, H, W)``, clipped at 0 (the members keep STEPS' own mean,
    moved by the correction; compare ``darts_mim.nowcast.recentre_ensemble``)."""
    return np.clip(members + (nowcast - base)[:, None], 0.0, None)


def ensemble_scores(ens: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """CRPS, rank histogram outer-bin share and reliability at 1 / 5 mm/h of ``(n, members, OUT,
    H, W)`` ensembles against ``(n, OUT, H, W)`` observations (pysteps.verification)."""
    from pysteps.verification import ensscores, probscores

    n, m = ens.shape[:2]
    crps = [
        probscores.CRPS(ens[i, :, lead], truth[i, lead]) for i in range(n) for lead in range(OUT)
    ]
    # rank histogram over rainy cells (an observation or a member >= 0.1 mm/h): ties at zero rain
    # would otherwise fill the bins at random
    rank = ensscores.rankhist_init(m, X_min=0.1)
    for i in range(n):
        for lead in range(OUT):
            ensscores.rankhist_accum(rank, ens[i, :, lead], truth[i, lead])
    hist = ensscores.rankhist_compute(rank)
    out = {"crps": float(np.mean(crps)), "rank_outer": float(hist[0] + hist[-1])}
    for thr in THRESHOLDS:
        rel = probscores.reldiag_init(thr, n_bins=10, min_count=1)
        prob = (ens >= thr).mean(axis=1)
        for i in range(n):
            for lead in range(OUT):
                probscores.reldiag_accum(rel, prob[i, lead], truth[i, lead])
        counts = rel["num_idx"].astype(float)
        used = counts > 0
        mean_p = rel["X_sum"][used] / counts[used]
        freq = rel["Y_sum"][used] / counts[used]
        observed = (truth >= thr).astype(float)
        out[f"bs{thr:g}"] = float(np.mean((prob - observed) ** 2))
        out[f"rel{thr:g}"] = float(np.sum(counts[used] * (mean_p - freq) ** 2) / counts.sum())
    return out


def point_scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """MSE, MAE, CSI 1 / 5 mm/h, FSS 5 / 15 cells, MSE at the first lead."""
    v = verify(pred, truth)
    keys = ("mse", "mae", "csi1", "csi5", "fss5", "fss15")
    out = {k: float(v[k]) for k in keys}
    out["mse1"] = float(v["mse_lead"][0])
    return out


def cascade_levels(history: np.ndarray) -> int:
    """pysteps' cascade levels for S-PROG and STEPS: 6, or 4 below 64 x 64 cells."""
    return 6 if min(history.shape[1:]) >= 64 else 4


def sprog_base(history: np.ndarray) -> np.ndarray:
    """S-PROG's nowcast (mm/h, ``(OUT, H, W)``) from one origin's input frames, as the baselines
    compute it (LK motion, dBR cascade, AR(2) per level)."""
    history = history.astype(np.float64)
    with contextlib.redirect_stdout(io.StringIO()):  # pysteps prints its settings
        return sprog_nowcast(history, motion_field(history), OUT, cascade_levels(history))


def rebase_on_sprog(
    event: RadarEvent, targets: list, covariates: list, scale: float, residual: bool = True
):
    """``--base sprog``: each window's forecast steps with S-PROG's nowcast as the base instead of
    LK's extrapolation (the covariate's nowcast channel, and the residual target under it); the
    input steps keep their one-step LK extrapolations."""
    frames = event.frames
    new_t, new_c = [], []
    for target, cov in zip(targets, covariates, strict=True):
        o = int(event.times.get_loc(target.time_index[IN - 1]))
        base = sprog_base(frames[o - IN + 1 : o + 1]) / scale
        c = series_to_grid(cov).copy()
        t = series_to_grid(target).copy()
        if residual:
            t[IN:, 0] += c[IN:, 0] - base  # residual = observed - base
        c[IN:, 0] = base
        spec = grid_spec_of(target), grid_spec_of(cov)
        new_t.append(grid_to_series(t, target.time_index, list(spec[0].channels)))
        new_c.append(grid_to_series(c, cov.time_index, list(spec[1].channels)))
    return new_t, new_c


DB_UNIT = 10.0  # dB per model unit for --units dbr (residuals of a few dB)


def rebase_on_dbr(targets: list, covariates: list, scale: float):
    """``--units dbr``: residual windows in dB: the target is ``dBR(observed) - dBR(LK)`` and the
    covariate's nowcast channel ``dBR(LK)``, both in units of :data:`DB_UNIT` dB, so that the loss
    weighs relative errors (a factor of 2 in rain rate is 3 dB at every intensity)."""
    new_t, new_c = [], []
    for target, cov in zip(targets, covariates, strict=True):
        c = series_to_grid(cov).astype(np.float64)
        lk = c[:, 0] * scale  # mm/h
        observed = series_to_grid(target)[:, 0].astype(np.float64) * scale + lk
        lk_db = _to_db(lk)  # pysteps' transform, as the baselines': -15 dBR below 0.1 mm/h
        t = (_to_db(observed) - lk_db)[:, None] / DB_UNIT
        c[:, 0] = lk_db / DB_UNIT
        spec = grid_spec_of(target), grid_spec_of(cov)
        new_t.append(
            grid_to_series(t.astype(np.float32), target.time_index, list(spec[0].channels))
        )
        new_c.append(grid_to_series(c.astype(np.float32), cov.time_index, list(spec[1].channels)))
    return new_t, new_c


# ------------------------------------------------------------------------------------ model
def model_anchor(args):
    """The anchor of the run's model: ``--anchor`` the last frame (the KNMI recipe); otherwise
    "zero" for residual targets (the untrained model *is* the LK extrapolation) and the last
    frame for covariate-only targets (the untrained model is persistence, the extrapolation
    being an input it has yet to learn to use)."""
    if args.anchor or args.target == "covariate":
        return True
    return "zero"


def mim_label(args) -> str:
    """MIM's row label for the run's ``--base`` and ``--target``."""
    base = "LK" if args.base == "lk" else "S-PROG"
    label = (
        f"MIM, {base} nowcast as a covariate"
        if args.target == "covariate"
        else f"MIM + {base} nowcast (residual)"
    )
    return label if args.blend_weights is None else label + ", blended with the STEPS mean"


def to_rain(forecast, covariates, args):
    """A forecast in mm/h: the residual plus the base nowcast, or the covariate-only forecast."""
    if args.units == "dbr":  # dBR(LK) + the residual in dB, back to mm/h
        values = forecast.all_values(copy=True)
        base = series_to_grid(covariates.slice_intersect(forecast))[:, :1]
        base = base.reshape(len(base), -1, 1).astype(np.float64)
        rain = _from_db((values + base) * DB_UNIT)  # 0 below 0.1 mm/h
        return forecast.with_values(rain.astype(values.dtype))
    if args.target == "residual":
        return add_nowcast(forecast, covariates, args.scale)
    values = forecast.all_values(copy=True)
    return forecast.with_values(np.clip(values * args.scale, 0.0, None))


def balanced_weights(targets: list, covariates: list, args) -> list | None:
    """Sample weights of the balanced losses (``--loss bmae`` / ``bmse``): each window's cells
    weighted by the rain observed there (:func:`darts_mim.nowcast.intensity_weights`); ``None``
    for the plain losses."""
    if not args.loss.startswith("b"):
        return None
    pairs = zip(targets, covariates, strict=True)
    return [intensity_weights(to_rain(t, c, args)) for t, c in pairs]


def make_model(args, seed: int, work_dir: str):
    from darts_mim import MIMModel, TrainingRecipe

    kwargs = {}
    if args.loss in ("mae", "bmae"):
        import torch

        kwargs["loss_fn"] = torch.nn.L1Loss()
    return MIMModel(
        IN,
        OUT,
        num_hidden=args.hidden,
        filter_size=3,
        patch_size=args.patch,
        batch_size=8,
        n_epochs=10_000,
        random_state=seed,
        naive_anchor=model_anchor(args),
        optimizer_kwargs={"lr": 1e-3},
        training_recipe=TrainingRecipe(input_window_loss=True, lr_schedule=None),
        work_dir=work_dir,
        save_checkpoints=False,
        force_reset=True,
        pl_trainer_kwargs={
            "accelerator": "cpu",
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": False,
            "max_steps": args.steps,
            "gradient_clip_val": None,
        },
        **kwargs,
    )


# ------------------------------------------------------------------------------------ one fold
def run_fold(test: str, events: dict, windows: dict, pick: dict, args, work_dir: str) -> dict:
    """Train on every event but ``test`` (per seed), nowcast ``test``'s picked origins; scores."""
    event = events[test]
    targets, covs = windows[test]
    idx = pick[test]
    tg = [targets[i] for i in idx]
    cv = [covs[i] for i in idx]
    frames = event.frames
    origins = [int(event.times.get_loc(t.time_index[IN - 1])) for t in tg]
    truth = np.stack([frames[o + 1 : o + 1 + OUT] for o in origins]).astype(np.float64)

    base: dict[str, list] = {k: [] for k in BASELINES}
    base_s: dict[str, float] = dict.fromkeys(BASELINES, 0.0)
    steps_ens = []
    for o in origins:
        nc, secs, ens = pysteps_one_origin(
            frames[o - IN + 1 : o + 1],
            args.members,
            0,
            event.step_minutes,
            2.0 * event.pool,
        )
        for k in BASELINES:
            base[k].append(nc[k])
            base_s[k] += secs[k] / len(origins)
        steps_ens.append(ens)
    preds = {k: np.stack(v) for k, v in base.items()}
    steps_ens = np.stack(steps_ens)

    train_t = [s for e, (t, _) in windows.items() if e != test for s in t]
    train_c = [s for e, (_, c) in windows.items() if e != test for s in c]
    mim_runs, ens_runs, fit_s, pred_s = [], [], [], []
    centred_runs = {k: [] for k in args.spreads}  # per spread factor
    for seed in args.seeds:
        model = make_model(args, seed, work_dir)
        t0 = time.perf_counter()
        model.fit(
            train_t,
            future_covariates=train_c,
            sample_weight=balanced_weights(train_t, train_c, args),
            verbose=False,
        )
        fit_s.append(time.perf_counter() - t0)
        steps_done = int(model.trainer.global_step)  # predict() replaces the trainer
        t0 = time.perf_counter()
        fc = model.predict(OUT, series=[t[:IN] for t in tg], future_covariates=cv, verbose=False)
        rain = [to_rain(f, c, args) for f, c in zip(fc, cv, strict=True)]
        pred_s.append((time.perf_counter() - t0) / len(tg))
        mim = np.stack([series_to_grid(r)[:, 0] for r in rain]).astype(np.float64)
        base_nowcast = preds[BASE_LABEL[args.base]]
        saved.setdefault(
            test,
            {"truth": truth, "base": base_nowcast, "steps_mean": preds["STEPS mean"], "mim": []},
        )["mim"].append(mim)
        if args.correction_weights is not None:
            mim = weigh_corrections(base_nowcast, mim, args.correction_weights)
        if args.blend_weights is not None:  # STEPS mean + w * (MIM - STEPS mean), per lead
            mim = weigh_corrections(preds["STEPS mean"], mim, args.blend_weights)
        mim_runs.append(mim)
        ens_runs.append(correction_ensemble(steps_ens, mim, base_nowcast))
        for k in args.spreads:
            centred_runs[k].append(recentre_ensemble(steps_ens, mim, spread=k))
        print(
            f"  {test} seed {seed}: fit {fit_s[-1]:.0f} s ({steps_done} steps)"
            f" on {len(train_t)} windows",
            flush=True,
        )

    scores = {k: point_scores(p, truth) for k, p in preds.items()}
    per_seed = [point_scores(p, truth) for p in mim_runs]
    scores[MIM] = {k: float(np.mean([s[k] for s in per_seed])) for k in per_seed[0]}
    scores[MIM]["mse_seeds"] = [s["mse"] for s in per_seed]
    ens = {"STEPS ensemble": ensemble_scores(steps_ens, truth)}
    scored = [(MIM_ENS, ens_runs), (MIM_ENS_CENTRED, centred_runs[args.spreads[0]])]
    scored += [(f"{MIM_ENS_CENTRED}, spread x{k:g}", centred_runs[k]) for k in args.spreads[1:]]
    for label, runs in scored:
        ens_seed = [ensemble_scores(e, truth) for e in runs]
        ens[label] = {k: float(np.mean([s[k] for s in ens_seed])) for k in ens_seed[0]}
    # covariates of one window: motion + 12 extrapolated frames, measured when they were built
    seconds = dict(base_s)
    seconds[MIM] = windows_s[test] + float(np.mean(pred_s))
    if args.blend_weights is not None:  # the blend needs STEPS' members too
        seconds[MIM] += base_s["STEPS mean"]
    return {
        "event": event.describe(),
        "step_minutes": event.step_minutes,
        "origins": origins,
        "n_train_windows": len(train_t),
        "scores": scores,
        "ensembles": ens,
        "seconds": seconds,
        "fit_s": float(np.mean(fit_s)),
        "steps": steps_done,
        "truth_mean": float(truth.mean()),
    }


windows_s: dict[str, float] = {}
# per scored event: the observed frames, the base nowcast and MIM's unweighted nowcast per seed
# (--predictions writes them, --fit-weights reads them)
saved: dict[str, dict] = {}


# ------------------------------------------------------------------- lead weights of the correction
def fit_weights(
    path: str,
    blend: bool = False,
    correction_weights: list[float] | None = None,
    exclude: str | None = None,
) -> np.ndarray:
    """:func:`darts_mim.nowcast.fit_lead_weights` on a run's ``--predictions`` file (every event and
    seed; each event its own group), fitted on validation events and applied to test events.

    ``blend=False``: the weight per lead of MIM's correction of its base (``--correction-weights``).
    ``blend=True``: MIM's weight per lead in its blend with the STEPS mean (``STEPS mean + w *
    (MIM - STEPS mean)``, ``--blend-weights``), MIM's correction first scaled by
    ``correction_weights``. ``exclude``: leave this event's predictions out (``--nested-weights``:
    the weights of a test event never read its own frames)."""
    data = np.load(path)
    events = sorted({k.split("/")[0] for k in data.files} - {exclude})
    if not events:
        raise SystemExit(f"{path} holds no event's predictions besides {exclude!r}")
    if blend and any(f"{e}/steps_mean" not in data.files for e in events):
        raise SystemExit(
            f"{path} holds no STEPS mean: write it again with this version's --predictions"
        )
    base, mim, truth, groups = [], [], [], []
    for e in events:
        for run in data[f"{e}/mim"]:
            if correction_weights is not None:
                run = weigh_corrections(data[f"{e}/base"], run, correction_weights)
            base.append(data[f"{e}/steps_mean" if blend else f"{e}/base"])
            mim.append(run)
            truth.append(data[f"{e}/truth"])
            groups += [e] * len(run)
    return fit_lead_weights(
        np.concatenate(base), np.concatenate(mim), np.concatenate(truth), groups=groups
    )


def nested_weights(path: str, test: str) -> tuple[list[float], list[float]]:
    """The correction and blend weights of test event ``test``, both fitted on the other events'
    validation predictions in ``path`` (``--nested-weights``)."""
    correction = [float(w) for w in fit_weights(path, exclude=test)]
    blend = fit_weights(path, blend=True, correction_weights=correction, exclude=test)
    return correction, [float(w) for w in blend]


def write_predictions(path: str, runs: dict | None = None) -> None:
    """The file :func:`fit_weights` reads: per event, its observed frames, base nowcast
    and MIM's nowcast of each seed (``runs``: event -> ``{"truth", "base", "mim": [per seed]}``;
    default: this run's)."""
    arrays = {}
    for e, d in (saved if runs is None else runs).items():
        key = e.replace("/", "_")
        arrays[f"{key}/truth"] = d["truth"].astype(np.float32)
        arrays[f"{key}/base"] = d["base"].astype(np.float32)
        if "steps_mean" in d:
            arrays[f"{key}/steps_mean"] = d["steps_mean"].astype(np.float32)
        arrays[f"{key}/mim"] = np.stack(d["mim"]).astype(np.float32)
    np.savez_compressed(path, **arrays)


# ------------------------------------------------------------------------------------ report
def _f(x: float) -> str:
    return f"{x:.4g}" if np.isfinite(x) else "nan"


def _weights(weights: list[float]) -> str:
    return ",".join(f"{w:.3f}" for w in weights)


def _scored(args) -> str:
    return "validation event" if args.validation else "test event"


def validation_folds(names: list[str], tests: list[str]) -> dict[str, tuple[str, str]]:
    """``{label: (validation event, test event)}``: for each test event, the next event of
    ``names`` (cyclically) is scored instead, trained without either."""
    folds = {}
    for test in tests:
        val = names[(names.index(test) + 1) % len(names)]
        folds[f"{val} (fold of {test})"] = (val, test)
    return folds


def report(results: dict, args, settings: str) -> list[str]:
    lines = ["## Leave one event out: per event", "", settings, ""]
    methods = [MIM, *BASELINES]
    for test, r in results.items():
        step = r["step_minutes"]
        steps = f", {r['steps']} steps" if "steps" in r else ""
        lines += [
            f"### {_scored(args)} {test}",
            "",
            f"{r['event']}; {len(r['origins'])} scored origins (frames {r['origins']}), "
            f"leads +{step}..+{OUT * step} min; MIM trained on {r['n_train_windows']} windows of "
            f"the other events ({r['fit_s']:.0f} s per fit{steps}); mean observed rain "
            f"{r['truth_mean']:.3g} mm/h."
            + (
                f" Weights per lead fitted without this event: correction "
                f"{_weights(r['weights']['correction'])}, MIM's share of the blend "
                f"{_weights(r['weights']['blend'])}."
                if "weights" in r
                else ""
            ),
            "",
            f"| method | MSE | MAE | MSE +{step} min | CSI 1 mm/h | CSI 5 mm/h | FSS 5 cells | "
            "FSS 15 cells | s / nowcast |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for m in methods:
            s = r["scores"][m]
            extra = ""
            if m == MIM and len(s["mse_seeds"]) > 1:
                extra = " (" + " / ".join(_f(x) for x in s["mse_seeds"]) + ")"
            label = mim_label(args) if m == MIM else m
            lines.append(
                f"| {label} | {_f(s['mse'])}{extra} | {_f(s['mae'])} | {_f(s['mse1'])} | "
                f"{_f(s['csi1'])} | {_f(s['csi5'])} | {_f(s['fss5'])} | {_f(s['fss15'])} | "
                f"{r['seconds'][m]:.3f} |"
            )
        lines += [
            "",
            "| ensemble | CRPS mm/h | rank hist. outer bins | BS 1 mm/h | REL 1 mm/h | BS 5 mm/h "
            "| REL 5 mm/h |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for m, s in r["ensembles"].items():
            lines.append(
                f"| {m} | {_f(s['crps'])} | {_f(s['rank_outer'])} | {_f(s['bs1'])} | "
                f"{_f(s['rel1'])} | {_f(s['bs5'])} | {_f(s['rel5'])} |"
            )
        lines.append("")
    lines += summary(results, args)
    return lines


def summary(results: dict, args) -> list[str]:
    """The issue's targets per test event: is MIM (mean over seeds) better than each named rival?"""
    checks = [
        ("MSE < LK", "mse", "LK extrapolation", -1),
        ("MSE < S-PROG", "mse", "S-PROG", -1),
        ("MSE < STEPS mean", "mse", "STEPS mean", -1),
        ("MSE +1 step < LK", "mse1", "LK extrapolation", -1),
        ("CSI 1 > best pysteps", "csi1", None, 1),
        ("CSI 5 > best pysteps", "csi5", None, 1),
        ("FSS 5 > best pysteps", "fss5", None, 1),
        ("FSS 15 > best pysteps", "fss15", None, 1),
    ]
    pysteps_methods = ("LK extrapolation", "S-PROG", "ANVIL", "STEPS mean")
    header = [_scored(args), *[c[0] for c in checks], "CRPS < STEPS"]
    lines = [
        "## Leave one event out: targets met per test event",
        "",
        "MIM is the mean over seeds; `best pysteps` is the best of LK extrapolation, S-PROG, ANVIL "
        "and the STEPS mean on that score; each cell: yes/no (MIM vs the rival); `CRPS < STEPS`: "
        f"the ensemble `{ENSEMBLES[args.ensemble]}` (`--ensemble {args.ensemble}`).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    totals = [0] * (len(checks) + 1)
    counted = [0] * (len(checks) + 1)
    for test, r in results.items():
        s = r["scores"]
        cells = []
        for i, (_, key, rival, sign) in enumerate(checks):
            if rival is None:
                vals = [s[m][key] for m in pysteps_methods]
                other = np.nanmax(vals) if sign > 0 else np.nanmin(vals)
            else:
                other = s[rival][key]
            if not (np.isfinite(s[MIM][key]) and np.isfinite(other)):
                cells.append("n/a (no such rain)")
                continue
            ok = (s[MIM][key] - other) * sign > 0
            totals[i] += ok
            counted[i] += 1
            cells.append(f"{'yes' if ok else 'no'} ({s[MIM][key]:.3g} vs {other:.3g})")
        e = r["ensembles"]
        mine = e[ENSEMBLES[args.ensemble]]["crps"]
        ok = mine < e["STEPS ensemble"]["crps"]
        totals[-1] += ok
        counted[-1] += 1
        cells.append(f"{'yes' if ok else 'no'} ({mine:.3g} vs {e['STEPS ensemble']['crps']:.3g})")
        lines.append(f"| {test} | " + " | ".join(cells) + " |")
    lines.append(
        "| **events met** | "
        + " | ".join(f"**{t} / {n}**" for t, n in zip(totals, counted, strict=True))
        + " |"
    )
    return lines


# ------------------------------------------------------------------------------------ main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke test: KNMI cut in 3, tiny sizes")
    p.add_argument("--events", default=",".join(RADAR_EVENTS), help="comma-separated events")
    p.add_argument(
        "--test-events", default=None, help="the events scored as test events (default: all)"
    )
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--steps", type=int, default=200, help="optimizer steps per fit")
    p.add_argument("--pool", type=int, default=2, help="mean-pool k x k cells")
    p.add_argument("--scale", type=float, default=10.0, help="model unit, mm/h (all events)")
    p.add_argument("--origins", type=int, default=8, help="test origins per event (spread)")
    p.add_argument("--members", type=int, default=20, help="STEPS members")
    p.add_argument(
        "--ensemble",
        choices=tuple(ENSEMBLES),
        default="recentred",
        help="the MIM ensemble the CRPS target counts (both are reported): STEPS' members "
        "recentred on MIM's nowcast (chosen on the KNMI event's validation origins), or MIM's "
        "correction of LK added to each member",
    )
    p.add_argument(
        "--spreads",
        default="1",
        help="comma-separated factors on the recentred members' deviations from their mean: the "
        "first is the ensemble the target counts, the others are scored beside it",
    )
    p.add_argument("--hidden", default="16,16")
    p.add_argument("--patch", type=int, default=4)
    p.add_argument("--anchor", action="store_true", help="KNMI recipe: anchor on the last frame")
    # chosen on validation events (--validation): radar_results.md, "Choosing the loss"
    # bmse / bmae: the balanced losses of Shi et al. (2017), cells weighted by the observed rain
    p.add_argument("--loss", choices=("mse", "mae", "bmse", "bmae"), default="mae")
    p.add_argument(
        "--base",
        choices=tuple(BASE_LABEL),
        default="lk",
        help="the nowcast of the forecast steps MIM corrects: LK extrapolation or S-PROG",
    )
    p.add_argument(
        "--target",
        choices=("residual", "covariate"),
        default="residual",
        help="MIM forecasts the observation minus the LK nowcast (residual) or the observation, "
        "with the LK nowcast as a covariate only (covariate)",
    )
    p.add_argument(
        "--units",
        choices=("mmh", "dbr"),
        default="mmh",
        help="MIM's residual in rain rate (mm/h / --scale) or in dB (dBR(observed) - dBR(LK)), "
        "so that the loss weighs relative errors",
    )
    p.add_argument(
        "--validation",
        action="store_true",
        help="score each test event's validation event (the next one), trained without both",
    )
    p.add_argument(
        "--predictions", default=None, help="write the scored frames and nowcasts here (.npz)"
    )
    p.add_argument(
        "--fit-weights",
        default=None,
        metavar="NPZ",
        help="print the per-lead weights of MIM's correction fitted on a --predictions file, exit",
    )
    p.add_argument(
        "--correction-weights",
        default=None,
        help="comma-separated weight per lead of MIM's correction (base + w * (MIM - base))",
    )
    p.add_argument(
        "--fit-blend",
        default=None,
        metavar="NPZ",
        help="print the per-lead weights of MIM's nowcast in a blend with the STEPS mean fitted on "
        "a --predictions file (after --correction-weights), exit",
    )
    p.add_argument(
        "--blend-weights",
        default=None,
        help="comma-separated weight per lead of MIM's nowcast blended with the STEPS mean "
        "(STEPS mean + w * (MIM - STEPS mean)), applied after --correction-weights",
    )
    p.add_argument(
        "--nested-weights",
        default=None,
        metavar="NPZ",
        help="per test event, fit the correction and blend weights on a --validation run's "
        "--predictions file without that event's predictions (instead of --correction-weights "
        "and --blend-weights)",
    )
    p.add_argument("--data", default=None, help="data directory (default: the usual look-up)")
    p.add_argument("--out", default=None, help="write the markdown report here")
    p.add_argument("--json", default=None, help="write the raw scores here")
    args = p.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s]
    args.hidden = tuple(int(h) for h in args.hidden.split(","))
    try:
        args.spreads = list(dict.fromkeys(float(k) for k in args.spreads.split(",")))
    except ValueError:
        p.error(f"--spreads takes comma-separated numbers, got {args.spreads!r}")
    if not all(np.isfinite(k) and k >= 0 for k in args.spreads):
        p.error(f"--spreads must be finite numbers >= 0, got {args.spreads}")
    if args.correction_weights is not None:
        args.correction_weights = [float(w) for w in args.correction_weights.split(",")]
        if len(args.correction_weights) != OUT:
            p.error(f"--correction-weights needs {OUT} weights, one per lead")
    if args.blend_weights is not None:
        args.blend_weights = [float(w) for w in args.blend_weights.split(",")]
        if len(args.blend_weights) != OUT:
            p.error(f"--blend-weights needs {OUT} weights, one per lead")
    if args.nested_weights and (
        args.validation or args.correction_weights is not None or args.blend_weights is not None
    ):
        p.error(
            "--nested-weights fits the weights of each test event itself: drop "
            "--correction-weights / --blend-weights, and use it without --validation"
        )
    if args.units == "dbr" and (args.target != "residual" or args.base != "lk"):
        p.error("--units dbr is for the residual on LK's extrapolation (the defaults)")
    if args.quick:
        args.steps, args.seeds, args.members, args.origins = min(args.steps, 2), [0], 4, 2
        args.hidden, args.patch = (4,), 2
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.fit_weights:
        weights = fit_weights(args.fit_weights)
        print("--correction-weights " + ",".join(f"{w:.3f}" for w in weights))
        return {"weights": weights}
    if args.fit_blend:
        weights = fit_weights(args.fit_blend, True, args.correction_weights)
        print("--blend-weights " + ",".join(f"{w:.3f}" for w in weights))
        return {"weights": weights}
    saved.clear()
    import_pysteps()
    t_start = time.perf_counter()
    if args.quick:
        events = quick_events()
    else:
        names = [e for e in args.events.split(",") if e]
        events = load_radar_events(names, args.data, pool=args.pool, min_frames=IN + OUT)
    tests = list(events) if not args.test_events else args.test_events.split(",")
    missing = [t for t in tests if t not in events]
    if missing or len(events) < 2:
        raise SystemExit(
            f"test events {missing} not loaded, or fewer than 2 events: {list(events)}"
        )
    for e in events.values():
        print(e.describe(), flush=True)
    windows = {}
    for name, e in events.items():
        t0 = time.perf_counter()
        residual = args.target == "residual"
        windows[name] = event_windows([e], IN, OUT, residual=residual, scale=args.scale)[name]
        if args.base == "sprog":
            windows[name] = rebase_on_sprog(e, *windows[name], args.scale, residual)
        if args.units == "dbr":
            windows[name] = rebase_on_dbr(*windows[name], args.scale)
        windows_s[name] = (time.perf_counter() - t0) / len(windows[name][0])
        print(
            f"  {name}: {len(windows[name][0])} windows, {windows_s[name]:.2f} s each", flush=True
        )
    pick = {name: test_origins(len(w[0]), args.origins) for name, w in windows.items()}
    results = {}
    with tempfile.TemporaryDirectory() as work_dir:
        if args.validation:
            for label, (val, test) in validation_folds(list(events), tests).items():
                kept = {name: w for name, w in windows.items() if name != test}
                results[label] = run_fold(val, events, kept, pick, args, work_dir)
        else:
            for test in tests:
                if args.nested_weights:
                    args.correction_weights, args.blend_weights = nested_weights(
                        args.nested_weights, test
                    )
                    print(
                        f"  {test}: correction weights {_weights(args.correction_weights)}, "
                        f"blend weights {_weights(args.blend_weights)} (the other events' "
                        "validation predictions)",
                        flush=True,
                    )
                results[test] = run_fold(test, events, windows, pick, args, work_dir)
                if args.nested_weights:
                    results[test]["weights"] = {
                        "correction": args.correction_weights,
                        "blend": args.blend_weights,
                    }
    wall = time.perf_counter() - t_start
    settings = (
        (
            "Validation: each test event's next event scored, trained without both. "
            if args.validation
            else ""
        )
        + f"Events {list(events)} ({'KNMI cut in 3, 8x8 pooled (quick)' if args.quick else ''}"
        f"{'' if args.quick else f'{args.pool}x{args.pool} mean-pooled'}), native steps, "
        f"{IN} frames in, {OUT} out; model unit {args.scale:g} mm/h for every event; MIM "
        f"{args.hidden} hidden, patch {args.patch}, {args.steps} steps of batches of 8, lr 1e-3, "
        f"loss {args.loss} (over the input window too), "
        f"{args.target} targets on the {BASE_LABEL[args.base]} base"
        f"{' in dB (dBR)' if args.units == 'dbr' else ''}, "
        + (
            "correction weighted per lead and blended with the STEPS mean, both weights fitted "
            f"per test event on {args.nested_weights} without that event (nested), "
            if args.nested_weights
            else ""
        )
        + (
            ""
            if args.correction_weights is None or args.nested_weights
            else f"correction weighted per lead {args.correction_weights}, "
        )
        + (
            ""
            if args.blend_weights is None or args.nested_weights
            else f"blended with the STEPS mean, MIM's weight per lead {args.blend_weights}, "
        )
        + (
            ""
            if args.spreads == [1.0]
            else f"recentred members' spread x{args.spreads[0]:g} (also scored: "
            f"{args.spreads[1:]}), "
        )
        + f"{'anchor on the last frame' if model_anchor(args) is True else 'no anchor, head zeroed before training'};"
        f" seeds {args.seeds}; up to {args.origins} test origins per event spread over its windows;"
        f" STEPS {args.members} members, seed 0; total wall time {wall:.0f} s."
    )
    lines = report(results, args, settings)
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
    if args.predictions:
        write_predictions(args.predictions)
    return results


if __name__ == "__main__":
    main()
