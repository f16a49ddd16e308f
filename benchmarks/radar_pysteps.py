"""pysteps' nowcasts and verification scores for the radar section of ``accuracy.py``.

Baselines, each from the frames up to the origin only (no training):

- Lagrangian extrapolation: semi-Lagrangian advection of the last frame along a Lucas-Kanade (LK) or
  variational echo tracking (VET) motion field, estimated in dBR (0.1 mm/h threshold) from the last
  3 frames;
- S-PROG (Seed 2003): the cascade of the dBR field extrapolated with an AR(2) per scale, smoothing
  the scales that are not predictable (6 cascade levels, LK motion);
- ANVIL (Pulkkinen et al. 2020): autoregressive integrated nowcast on rain rates (AR(2), last 4
  frames, LK motion);
- STEPS (Bowler et al. 2006): a stochastic ensemble around S-PROG (LK motion, 6 cascade levels,
  non-parametric noise, velocity perturbations, 2 km cells, 5-minute steps); its ensemble mean is
  scored like the others, and the ensemble by CRPS.

Cells that the advection brings in from outside the domain (NaN in pysteps' output) are filled with
the last observed frame's value at that cell (persistence), for every method alike, the same rule as
:mod:`darts_mim.nowcast`'s default.

Scores (:func:`darts_mim.nowcast.verify`, pysteps.verification): CSI at 1 and 5 mm/h from one contingency table accumulated over all
origins, lead times and cells; FSS at 1 mm/h over 5 x 5 and 15 x 15 cells, accumulated the same way;
CRPS of the ensemble (a point forecast's CRPS is its MAE, given for comparison); MSE per lead time.
"""

from __future__ import annotations

import time

import numpy as np

from darts_mim.nowcast import DB_THRESHOLD, DB_ZERO, import_pysteps, motion_field

LEADS = 6


def _fill(nowcast: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Persistence where advection left NaN, then no negative rain."""
    out = np.array(nowcast, dtype=np.float64)
    empty = ~np.isfinite(out)
    out[empty] = np.broadcast_to(last, out.shape)[empty]
    return np.clip(out, 0.0, None)


def _to_db(frames: np.ndarray) -> np.ndarray:
    from pysteps.utils import transformation

    db, _ = transformation.dB_transform(frames, threshold=DB_THRESHOLD, zerovalue=DB_ZERO)
    db[~np.isfinite(db)] = DB_ZERO
    return db


def _from_db(db: np.ndarray) -> np.ndarray:
    from pysteps.utils import transformation

    rate, _ = transformation.dB_transform(db, threshold=-10.0, zerovalue=0.0, inverse=True)
    return rate


def pysteps_nowcasts(
    frames: np.ndarray, origins: np.ndarray, quick: bool = False, seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, float], np.ndarray]:
    """Every baseline's nowcast from each origin.

    Parameters
    ----------
    frames
        ``(T, H, W)`` rain rates, mm/h.
    origins
        Index of the last observed frame of each nowcast.
    quick
        A 4-member STEPS ensemble instead of 20 (smoke tests).
    seed
        STEPS' random seed.

    Returns
    -------
    (dict, dict, numpy.ndarray)
        Label -> ``(n_origins, LEADS, H, W)`` nowcasts; label -> mean seconds per nowcast (motion
        included); the STEPS ensemble ``(n_origins, members, LEADS, H, W)``.
    """
    import_pysteps()
    members = 4 if quick else 20
    out: dict[str, list] = {}
    secs: dict[str, float] = {}
    ensembles = []
    for o in origins:
        for label, (nowcast, seconds) in _one_origin(frames[o - 5 : o + 1], members, seed).items():
            if label == "STEPS ensemble":
                ensembles.append(nowcast)
                continue
            out.setdefault(label, []).append(nowcast)
            secs[label] = secs.get(label, 0.0) + seconds
    n = len(origins)
    nowcasts = {k: np.stack(v) for k, v in out.items()}
    return nowcasts, {k: s / n for k, s in secs.items()}, np.stack(ensembles)


def sprog_nowcast(
    history: np.ndarray,
    velocity: np.ndarray,
    leads: int,
    n_cascade_levels: int,
    db: np.ndarray | None = None,
) -> np.ndarray:
    """S-PROG's nowcast (mm/h, ``(leads, H, W)``) of one origin's frames along ``velocity``: the
    dBR cascade of the last 3 frames, AR(2) per level (``db``: the frames in dBR, if at hand)."""
    from pysteps import nowcasts

    db = _to_db(history) if db is None else db
    sprog = nowcasts.get_method("sprog")(
        db[-3:],
        velocity,
        leads,
        n_cascade_levels=n_cascade_levels,
        precip_thr=-10.0,
        measure_time=False,
    )
    return _fill(_from_db(sprog), history[-1])


def _one_origin(
    history: np.ndarray,
    members: int,
    seed: int,
    leads: int = LEADS,
    step_minutes: int = 5,
    km_per_cell: float = 2.0,
    n_cascade_levels: int = 6,
    vet: bool = True,
) -> dict[str, tuple]:
    """Label -> (nowcast, seconds including the motion estimate) for one origin's frames: ``leads``
    frames of each baseline, the STEPS ensemble ``(members, leads, H, W)`` under "STEPS ensemble"
    (also used by ``radar_loeo.py``, for radars of other steps and cell sizes, without VET)."""
    from pysteps import extrapolation, nowcasts

    history = history.astype(np.float64)
    last = history[-1]
    extrap = extrapolation.get_method("semilagrangian")
    out = {}
    t0 = time.perf_counter()
    v_lk = motion_field(history, "LK")
    lk_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    out["extrapolation LK"] = (
        _fill(extrap(last, v_lk, leads), last),
        lk_s + time.perf_counter() - t0,
    )

    if vet:
        t0 = time.perf_counter()
        v_vet = motion_field(history, "VET")
        out["extrapolation VET"] = _fill(extrap(last, v_vet, leads), last), time.perf_counter() - t0

    t0 = time.perf_counter()
    db = _to_db(history)
    out["S-PROG (LK)"] = (
        sprog_nowcast(history, v_lk, leads, n_cascade_levels, db),
        lk_s + time.perf_counter() - t0,
    )

    t0 = time.perf_counter()
    anvil = nowcasts.get_method("anvil")(history[-4:], v_lk, leads, ar_order=2, measure_time=False)
    out["ANVIL (LK)"] = _fill(anvil, last), lk_s + time.perf_counter() - t0

    t0 = time.perf_counter()
    ens = nowcasts.get_method("steps")(
        db[-3:],
        v_lk,
        leads,
        n_ens_members=members,
        n_cascade_levels=n_cascade_levels,
        precip_thr=-10.0,
        kmperpixel=km_per_cell,
        timestep=step_minutes,
        seed=seed,
        measure_time=False,
    )
    ens = _fill(_from_db(ens), last)
    seconds = lk_s + time.perf_counter() - t0
    out["STEPS mean (LK)"] = ens.mean(axis=0), seconds
    out["STEPS ensemble"] = ens, seconds
    return out


def _quiet(fn, *args, **kwargs):
    """pysteps' nowcasts print their settings; the benchmark's log is kept for its own lines."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


def quiet_nowcasts(*args, **kwargs):
    """:func:`pysteps_nowcasts` without pysteps' printed settings."""
    return _quiet(pysteps_nowcasts, *args, **kwargs)


def ensemble_crps(ensembles: np.ndarray, truth: np.ndarray) -> float:
    """Mean CRPS (mm/h) of ``(n_origins, members, LEADS, H, W)`` ensembles over origins and leads."""
    import_pysteps()
    from pysteps.verification import probscores

    values = [
        probscores.CRPS(ensembles[i, :, lead], truth[i, lead])
        for i in range(len(ensembles))
        for lead in range(ensembles.shape[2])
    ]
    return float(np.mean(values))
