"""darts_mim.datasets.radar_events: several radar events, their steps, and windows that never
straddle two events (issue 25); ``benchmarks/radar_loeo.py --quick`` end to end."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from darts_mim.datasets.radar_events import (
    RadarEvent,
    event_windows,
    load_radar_events,
    pool_frames,
    radar_event,
)
from darts_mim.datasets.registry import get_dataset

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "gridded"


def _blob_frames(t: int, size: int = 16, speed: float = 1.0, seed: int = 0) -> np.ndarray:
    """A Gaussian rain cell (mm/h) moving ``speed`` cells per step to the right."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = []
    for k in range(t):
        cx = 3 + speed * k
        out.append(8.0 * np.exp(-((xx - cx) ** 2 + (yy - size / 2) ** 2) / 8.0))
    return (np.stack(out) + 0.01 * rng.random((t, size, size))).astype(np.float32)


def test_radar_event_from_array_keeps_the_native_step() -> None:
    ev = radar_event("a", _blob_frames(14), native_step_minutes=5)
    assert isinstance(ev, RadarEvent)
    assert ev.step_minutes == ev.native_step_minutes == 5
    assert len(ev) == 14 and ev.frames.dtype == np.float32
    assert ev.series.n_timesteps == 14
    assert "5 min" in ev.describe()


def test_resampling_keeps_every_kth_frame_and_refuses_other_steps() -> None:
    frames = _blob_frames(36)
    times = pd.date_range("2019-06-10", periods=36, freq="2min")
    ev = radar_event("mrms", frames, times, step_minutes=6)
    assert ev.step_minutes == 6 and ev.native_step_minutes == 2 and len(ev) == 12
    np.testing.assert_array_equal(ev.frames, frames[::3])
    assert "resampled from 2 min" in ev.describe()
    with pytest.raises(ValueError, match="whole multiple"):
        radar_event("mrms", frames, times, step_minutes=5)
    with pytest.raises(ValueError, match="whole multiple"):
        radar_event("mrms", frames, times, step_minutes=1)
    with pytest.raises(ValueError, match="at least 13"):
        radar_event("mrms", frames, times, step_minutes=6, min_frames=13)


def test_pool_frames_is_an_areal_mean() -> None:
    frames = np.arange(2 * 4 * 6, dtype=np.float32).reshape(2, 4, 6)
    pooled = pool_frames(frames, 2)
    assert pooled.shape == (2, 2, 3)
    assert pooled[0, 0, 0] == np.mean(frames[0, :2, :2])
    assert pool_frames(frames, 1) is frames
    with pytest.raises(ValueError, match="positive integer"):
        pool_frames(frames, 0)
    ev = radar_event("a", _blob_frames(12, size=16), native_step_minutes=5, pool=4)
    assert ev.frames.shape == (12, 4, 4) and ev.pool == 4


@pytest.mark.parametrize(
    ("frames", "kwargs", "match"),
    [
        (np.zeros((5, 4)), {"native_step_minutes": 5}, r"\(T, H, W\)"),
        (np.full((3, 4, 4), np.nan), {"native_step_minutes": 5}, "non-finite"),
        (-np.ones((3, 4, 4)), {"native_step_minutes": 5}, "negative"),
        (np.zeros((3, 4, 4)), {}, "times or native_step_minutes"),
        (
            np.zeros((3, 4, 4)),
            {
                "times": pd.DatetimeIndex(
                    ["2020-01-01 00:00", "2020-01-01 00:05", "2020-01-01 00:15"]
                )
            },
            "evenly spaced",
        ),
        (
            np.zeros((3, 4, 4)),
            {"times": pd.date_range("2020", periods=4, freq="5min")},
            "time stamps",
        ),
    ],
)
def test_bad_event_arrays_are_clear_errors(frames, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        radar_event("bad", frames, **kwargs)


def test_load_radar_events_refuses_unknown_or_repeated_events() -> None:
    with pytest.raises(ValueError, match="Unknown radar event"):
        load_radar_events(["radar_knmi", "radar_nowhere"])
    with pytest.raises(ValueError, match="twice"):
        load_radar_events(["radar_knmi", "radar_knmi"])
    with pytest.raises(ValueError, match="empty"):
        load_radar_events([])
    with pytest.raises(ValueError, match="not loaded"):
        load_radar_events(["radar_knmi"], step_minutes={"radar_bom_2018": 12})


def test_load_the_bundled_knmi_event_pooled_and_resampled() -> None:
    ev = load_radar_events(["radar_knmi"], pool=4, step_minutes=10)["radar_knmi"]
    assert ev.native_step_minutes == 5 and ev.step_minutes == 10
    assert ev.frames.shape == (46, 32, 32)
    assert ev.times.freq == pd.Timedelta("10min")


def test_event_windows_never_straddle_events_and_name_short_ones() -> None:
    pytest.importorskip("pysteps")
    pytest.importorskip("cv2")
    a = radar_event("a", _blob_frames(14), native_step_minutes=5)
    times_b = pd.date_range("2020-01-01 01:10", periods=13, freq="10min")  # right after a? no gap
    b = radar_event("b", _blob_frames(13, speed=0.5, seed=1), times_b)
    windows = event_windows({"a": a, "b": b}, 6, 6, scale=10.0)
    assert [len(windows[k][0]) for k in ("a", "b")] == [3, 2]
    for name, ev in (("a", a), ("b", b)):
        targets, covs = windows[name]
        for tg, cv in zip(targets, covs, strict=True):
            assert len(tg) == 12 and tg.time_index.isin(ev.times).all()
            assert cv.time_index.equals(tg.time_index)
    # residual targets times the unit plus the nowcast are the observed frames
    tg, cv = windows["a"][0][0], windows["a"][1][0]
    from darts_mim.grid import series_to_grid

    restored = (series_to_grid(tg)[:, 0] + series_to_grid(cv)[:, 0]) * 10.0
    np.testing.assert_allclose(restored, a.frames[:12], atol=1e-4)
    assert len(event_windows([a], 6, 6, stride=2)["a"][0]) == 2
    short = radar_event("short", _blob_frames(11), native_step_minutes=5)
    with pytest.raises(ValueError, match=r"short \(11\)"):
        event_windows([a, short], 6, 6)
    with pytest.raises(ValueError, match="stride"):
        event_windows([a], 6, 6, stride=0)


def test_windows_feed_mimmodel_fit_as_one_data_set(tmp_path) -> None:
    pytest.importorskip("pysteps")
    pytest.importorskip("cv2")
    from darts_mim import MIMModel
    from darts_mim.nowcast import add_nowcast

    a = radar_event("a", _blob_frames(13), native_step_minutes=5)
    b = radar_event("b", _blob_frames(13, speed=0.5, seed=1), native_step_minutes=10)
    windows = event_windows([a, b], 4, 2, scale=10.0)
    targets = windows["a"][0] + windows["b"][0]
    covs = windows["a"][1] + windows["b"][1]
    model = MIMModel(
        4,
        2,
        num_hidden=(4,),
        patch_size=4,
        batch_size=4,
        n_epochs=1,
        random_state=0,
        work_dir=str(tmp_path),
        pl_trainer_kwargs={"accelerator": "cpu", "enable_progress_bar": False, "logger": False},
    )
    model.fit(targets, future_covariates=covs)
    tg, cv = windows["b"][0][0], windows["b"][1][0]
    forecast = model.predict(2, series=tg[:4], future_covariates=cv)
    rain = add_nowcast(forecast, cv, 10.0)
    assert len(rain) == 2 and (rain.values() >= 0).all()


@pytest.mark.skipif(
    not SHARED.is_dir(), reason="the real radar events live in ../shared/data (not in a clone)"
)
def test_every_real_event_loads_at_its_native_step() -> None:
    names = [n for n in ("radar_bom_2018", "radar_opera_2024", "radar_mrms_2019")]
    if not all((SHARED / get_dataset(n).filename).exists() for n in names):
        pytest.skip("some event files are missing")
    events = load_radar_events(names, SHARED.parent, pool=2, min_frames=12)
    assert {n: e.step_minutes for n, e in events.items()} == {
        "radar_bom_2018": 6,
        "radar_opera_2024": 5,
        "radar_mrms_2019": 2,
    }
    assert all(e.frames.shape[1:] == (64, 64) for e in events.values())
    with pytest.raises(ValueError, match="radar_opera_2024"):
        load_radar_events(["radar_opera_2024"], SHARED.parent, step_minutes=10, min_frames=12)


SCRIPT = REPO / "benchmarks" / "radar_loeo.py"


def _load_script():
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("radar_loeo", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["radar_loeo"] = module
    spec.loader.exec_module(module)
    return module


def test_test_origins_are_spread_over_the_event() -> None:
    module = _load_script()
    assert module.test_origins(3, 8) == [0, 1, 2]
    picked = module.test_origins(81, 8)
    assert len(picked) == 8 and picked[0] == 0 and picked[-1] == 80


def test_loeo_quick_run_scores_every_event(tmp_path) -> None:
    pytest.importorskip("pysteps")
    pytest.importorskip("cv2")
    module = _load_script()
    out = tmp_path / "loeo.md"
    results = module.main(["--quick", "--out", str(out), "--json", str(tmp_path / "s.json")])
    assert list(results) == ["knmi_a", "knmi_b", "knmi_c"]
    for r in results.values():
        assert set(r["scores"]) == {module.MIM, *module.BASELINES}
        assert set(r["ensembles"]) == {"STEPS ensemble", module.MIM_ENS, module.MIM_ENS_CENTRED}
        for label in (module.MIM_ENS, module.MIM_ENS_CENTRED):
            assert np.isfinite(r["ensembles"][label]["crps"])
        assert r["n_train_windows"] == 2 * 19  # windows of the two other pseudo-events only
    text = out.read_text()
    assert "targets met per test event" in text and "events met" in text
    assert "the ensemble `STEPS recentred on MIM` (`--ensemble recentred`)" in text
    assert (tmp_path / "s.json").exists()


def test_validation_folds_never_read_the_test_event(tmp_path) -> None:
    """--validation: each test event's next event is scored, trained without both (issue 25:
    settings are chosen on validation events only)."""
    pytest.importorskip("pysteps")
    pytest.importorskip("cv2")
    module = _load_script()
    folds = module.validation_folds(["a", "b", "c"], ["a", "c"])
    assert folds == {"b (fold of a)": ("b", "a"), "a (fold of c)": ("a", "c")}
    out = tmp_path / "val.md"
    results = module.main(["--quick", "--validation", "--test-events", "knmi_a", "--out", str(out)])
    assert list(results) == ["knmi_b (fold of knmi_a)"]
    (r,) = results.values()
    assert "knmi_b" in r["event"]
    assert r["n_train_windows"] == 19  # knmi_c's windows only: neither knmi_a nor knmi_b
    assert "### validation event knmi_b (fold of knmi_a)" in out.read_text()


def test_correction_weights_are_fitted_per_lead_and_applied(tmp_path) -> None:
    """--fit-weights: per lead, the weight of MIM's correction minimising the events' normalised
    MSE, clipped to [0, 1]; --correction-weights applies them as base + w * (MIM - base)."""
    module = _load_script()
    rng = np.random.default_rng(0)
    leads = module.OUT
    truth = rng.random((3, leads, 4, 4))
    base = truth + rng.normal(0, 1, truth.shape)
    # the correction overshoots by 2x at lead 0, is exact at lead 1, points the wrong way at lead 2
    factor = np.array([2.0, 1.0, -1.0, 1.0, 1.0, 1.0])[:leads].reshape(1, -1, 1, 1)
    mim = base + factor * (truth - base)
    path = tmp_path / "p.npz"
    np.savez(path, **{"e/truth": truth, "e/base": base, "e/mim": mim[None]})
    weights = module.main(["--fit-weights", str(path)])["weights"]
    np.testing.assert_allclose(weights[:3], [0.5, 1.0, 0.0], atol=1e-9)
    weighed = module.weigh_corrections(base, mim, weights)
    np.testing.assert_allclose(weighed[:, :2], np.clip(truth[:, :2], 0, None), atol=1e-9)
    np.testing.assert_allclose(weighed[:, 2], np.clip(base[:, 2], 0, None))
    with pytest.raises(SystemExit):
        module.parse_args(["--correction-weights", "1,1"])


def test_blend_weights_are_fitted_against_the_steps_mean(tmp_path) -> None:
    """--fit-blend: per lead, the weight of MIM's nowcast (its correction first scaled by
    --correction-weights) in a blend with the STEPS mean; --blend-weights applies it."""
    module = _load_script()
    rng = np.random.default_rng(1)
    leads = module.OUT
    truth = rng.random((4, leads, 5, 5)) + 1.0
    steps_mean = truth + rng.normal(0, 1, truth.shape)
    base = truth + rng.normal(0, 1, truth.shape)
    # MIM's nowcast after correction weights of 0.5 is base + 0.5 * 2 * (x - base) = x: the truth
    # at lead 0, the STEPS mean's error doubled at lead 1, twice the truth's distance from the STEPS
    # mean at the other leads (a weight of 0.5 halves it)
    target = 2 * truth - steps_mean
    target[:, 0], target[:, 1] = truth[:, 0], 2 * steps_mean[:, 1] - truth[:, 1]
    mim = base + 2.0 * (target - base)
    path = tmp_path / "p.npz"
    arrays = {"e/truth": truth, "e/base": base, "e/steps_mean": steps_mean, "e/mim": mim[None]}
    np.savez(path, **arrays)
    half = ",".join(["0.5"] * leads)
    weights = module.main(["--fit-blend", str(path), "--correction-weights", half])["weights"]
    np.testing.assert_allclose(weights[:2], [1.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(weights[2:], 0.5, atol=0.05)  # not exact: rain is clipped at 0
    # unscaled, MIM's correction overshoots (2 * truth - base at lead 0): a smaller weight
    assert module.main(["--fit-blend", str(path)])["weights"][0] < 0.9
    np.savez(path, **{k: v for k, v in arrays.items() if k != "e/steps_mean"})
    with pytest.raises(SystemExit, match="no STEPS mean"):
        module.main(["--fit-blend", str(path)])
    with pytest.raises(SystemExit):
        module.parse_args(["--blend-weights", "1,1"])
    for clash in (["--validation"], ["--blend-weights", half], ["--correction-weights", half]):
        with pytest.raises(SystemExit):
            module.parse_args(["--nested-weights", str(path), *clash])
    args = module.parse_args(["--quick", "--blend-weights", half])
    assert args.blend_weights == [0.5] * leads
    assert module.mim_label(args).endswith(", blended with the STEPS mean")


def test_nested_weights_never_read_the_test_event(tmp_path) -> None:
    """--nested-weights: a test event's correction and blend weights are fitted on the other
    events' validation predictions only."""
    module = _load_script()
    rng = np.random.default_rng(3)
    shape = (3, module.OUT, 4, 4)
    arrays = {}
    for event, factor in (("a", 1.0), ("b", 4.0), ("c", 4.0)):
        truth = rng.random(shape) + 1.0
        base = truth + rng.normal(0, 1, shape)
        # a's correction is exact (weight 1), b's and c's overshoot 4x (weight 0.25)
        arrays |= {
            f"{event}/truth": truth,
            f"{event}/base": base,
            f"{event}/steps_mean": truth + rng.normal(0, 1, shape),
            f"{event}/mim": (base + factor * (truth - base))[None],
        }
    path = tmp_path / "val.npz"
    np.savez(path, **arrays)
    correction, blend = module.nested_weights(str(path), "a")
    np.testing.assert_allclose(correction, 0.25, atol=0.02)  # b and c only
    assert len(blend) == module.OUT and all(0 <= w <= 1 for w in blend)
    np.testing.assert_allclose(module.fit_weights(str(path), exclude="a"), correction)
    correction_b, _ = module.nested_weights(str(path), "b")
    # a's exact correction now counts: each event normalised by its base's error, the weight is
    # (1 + 4) / (1 + 16)
    np.testing.assert_allclose(correction_b, 5 / 17, atol=1e-9)
    np.savez(path, **{k: v for k, v in arrays.items() if k.startswith("a/")})
    with pytest.raises(SystemExit, match="besides"):
        module.nested_weights(str(path), "a")


def test_sprog_base_keeps_the_observations_and_the_input_steps() -> None:
    """--base sprog: the forecast steps' covariate is S-PROG's nowcast and the residual target
    under it still adds up to the observed frames; the input steps are left as LK made them."""
    pytest.importorskip("pysteps")
    pytest.importorskip("cv2")
    from darts_mim.grid import series_to_grid

    module = _load_script()
    event = module.quick_events()["knmi_a"]
    scale = 10.0
    targets, covs = event_windows([event], module.IN, module.OUT, scale=scale, stride=7)["knmi_a"]
    new_t, new_c = module.rebase_on_sprog(event, targets, covs, scale)
    for target, cov, t2, c2 in zip(targets, covs, new_t, new_c, strict=True):
        o = int(event.times.get_loc(target.time_index[module.IN - 1]))
        observed = event.frames[o - module.IN + 1 : o + module.OUT + 1] / scale
        t2, c2 = series_to_grid(t2)[:, 0], series_to_grid(c2)[:, 0]
        np.testing.assert_allclose(t2 + c2, observed, atol=1e-5)
        base = module.sprog_base(event.frames[o - module.IN + 1 : o + 1]) / scale
        np.testing.assert_allclose(c2[module.IN :], base, atol=1e-6)
        assert not np.allclose(base, series_to_grid(cov)[module.IN :, 0], atol=1e-3)  # rebased
        np.testing.assert_array_equal(t2[: module.IN], series_to_grid(target)[: module.IN, 0])
    # covariate-only targets are the observations: only the covariate changes
    obs_t, obs_c = event_windows([event], module.IN, module.OUT, residual=False, scale=scale)[
        "knmi_a"
    ]
    kept_t, _ = module.rebase_on_sprog(event, obs_t[:1], obs_c[:1], scale, residual=False)
    np.testing.assert_array_equal(kept_t[0].values(), obs_t[0].values())


def test_loeo_options_change_what_mim_corrects(tmp_path) -> None:
    """--target covariate trains on the observations (the untrained model is persistence: the
    last frame's anchor); --base sprog starts from S-PROG (its untrained residual is S-PROG)."""
    pytest.importorskip("pysteps")
    pytest.importorskip("cv2")
    module = _load_script()
    args = ["--quick", "--validation", "--test-events", "knmi_a", "--steps", "0"]
    out = tmp_path / "cov.md"
    (cov,) = module.main([*args, "--target", "covariate", "--out", str(out)]).values()
    assert "| MIM, LK nowcast as a covariate |" in out.read_text()
    assert cov["scores"][module.MIM]["mse"] == pytest.approx(cov["scores"]["persistence"]["mse"])
    out = tmp_path / "sprog.md"
    (sprog,) = module.main([*args, "--base", "sprog", "--out", str(out)]).values()
    assert "| MIM + S-PROG nowcast (residual) |" in out.read_text()
    assert sprog["scores"][module.MIM]["mse"] == pytest.approx(
        sprog["scores"]["S-PROG"]["mse"], rel=1e-4
    )
    # in dB, the untrained residual is LK's extrapolation (less its rain below 0.1 mm/h)
    out = tmp_path / "dbr.md"
    (dbr,) = module.main([*args, "--units", "dbr", "--out", str(out)]).values()
    assert "in dB (dBR)" in out.read_text()
    assert dbr["scores"][module.MIM]["mse"] == pytest.approx(
        dbr["scores"]["LK extrapolation"]["mse"], rel=0.01
    )
    # a blend that gives MIM no weight is the STEPS mean, and the recentred ensemble STEPS' own
    out = tmp_path / "blend.md"
    zero = ",".join(["0"] * module.OUT)
    (blend,) = module.main(
        [*args, "--blend-weights", zero, "--spreads", "1,0", "--out", str(out)]
    ).values()
    assert "| MIM + LK nowcast (residual), blended with the STEPS mean |" in out.read_text()
    scores, ens = blend["scores"], blend["ensembles"]
    assert scores[module.MIM]["mse"] == pytest.approx(scores["STEPS mean"]["mse"], rel=1e-6)
    assert ens[module.MIM_ENS_CENTRED]["crps"] == pytest.approx(
        ens["STEPS ensemble"]["crps"], rel=1e-6
    )
    # --spreads scores more factors beside the first: x0 collapses the members onto the nowcast,
    # whose CRPS is then its MAE
    collapsed = ens[f"{module.MIM_ENS_CENTRED}, spread x0"]["crps"]
    assert collapsed == pytest.approx(scores[module.MIM]["mae"], rel=1e-6)
    for bad in ("1,-1", "1,x", "nan"):
        with pytest.raises(SystemExit):
            module.parse_args(["--spreads", bad])
    rain = np.array([0.0, 0.05, 0.1, 1.0, 10.0, 100.0])
    np.testing.assert_allclose(module._from_db(module._to_db(rain)), [0, 0, 0.1, 1, 10, 100])
    with pytest.raises(SystemExit):
        module.parse_args(["--units", "dbr", "--base", "sprog"])
    # the balanced loss weighs each training window by the rain observed in it
    windows = module.event_windows(module.quick_events(), module.IN, module.OUT)["knmi_b"]
    balanced = module.parse_args(["--quick", "--loss", "bmae"])
    weights = module.balanced_weights(*windows, balanced)
    assert len(weights) == len(windows[0]) and max(w.values().max() for w in weights) > 1.0
    assert module.balanced_weights(*windows, module.parse_args(["--quick"])) is None
    # weights of zero leave the base: MIM's nowcast is the LK extrapolation, trained or not
    zero_weights = ",".join(["0"] * module.OUT)
    (damped,) = module.main(
        ["--quick", "--validation", "--test-events", "knmi_a", "--correction-weights", zero_weights]
    ).values()
    assert damped["scores"][module.MIM]["mse"] == pytest.approx(
        damped["scores"]["LK extrapolation"]["mse"]
    )


@pytest.mark.slow  # the ONNX export traces the unrolled network: about 45 s on a busy 2-core CPU
def test_one_onnx_model_serves_every_radar_step(tmp_path) -> None:
    """A model trained on events of several steps serves each of them through ONNX, with the
    nowcast helpers, as MIMModel does: the real six events (16 x 16 cells) when ../shared has
    them, synthetic events of 2, 5 and 15 minutes otherwise."""
    pytest.importorskip("pysteps")
    pytest.importorskip("cv2")
    pytest.importorskip("onnxruntime")
    from darts_mim import MIMModel
    from darts_mim.nowcast import add_nowcast, nowcast_covariates, subtract_nowcast
    from darts_mim.onnx.runtime import OnnxForecaster

    if SHARED.is_dir():
        events = load_radar_events(path=SHARED.parent, pool=8, min_frames=6)
    else:  # a fresh clone: no ../shared
        events = {
            f"synthetic_{step}min": radar_event(
                f"synthetic_{step}min",
                _blob_frames(10, speed=0.3 * (i + 1), seed=i),
                native_step_minutes=step,
            )
            for i, step in enumerate((2, 5, 15))
        }
    windows = event_windows(events, 4, 2, scale=10.0, stride=3)
    targets = [t for tg, _ in windows.values() for t in tg]
    covs = [c for _, cv in windows.values() for c in cv]
    model = MIMModel(
        4,
        2,
        num_hidden=(4,),
        patch_size=2,
        batch_size=8,
        n_epochs=1,
        random_state=0,
        work_dir=str(tmp_path),
        pl_trainer_kwargs={"accelerator": "cpu", "enable_progress_bar": False, "logger": False},
    )
    model.fit(targets, future_covariates=covs)
    forecaster = OnnxForecaster(model.to_onnx(str(tmp_path / "radars.onnx")))
    for name, ev in events.items():
        history = ev.series[-4:]
        cov = nowcast_covariates(history, 2, scale=10.0)
        residual = subtract_nowcast(history, cov, scale=10.0)
        expected = model.predict(2, series=residual, future_covariates=cov, verbose=False)
        served = forecaster.predict(2, residual, future_covariates=cov)
        np.testing.assert_allclose(served.values(), expected.values(), atol=1e-4, err_msg=name)
        rain = add_nowcast(served, cov, scale=10.0)
        assert rain.freq == ev.series.freq and (rain.values() >= 0).all(), name
