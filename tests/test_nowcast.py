"""darts_mim.nowcast: pysteps' extrapolation nowcast as gridded covariates for MIMModel."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_kwargs

from darts_mim import MIMModel, grid_to_series, series_to_grid
from darts_mim import nowcast as nc

pytest.importorskip("pysteps", reason="the radar extra: pip install -e '.[dev,radar]'")
pytest.importorskip("cv2", reason="pysteps' Lucas-Kanade needs OpenCV (the radar extra)")

SIDE = 32
SHIFT = 1  # cells per step, to the right (+x)


def moving_rain(n_steps: int = 12, side: int = SIDE, seed: int = 0) -> np.ndarray:
    """``(T, side, side)`` rain rates: a textured field of Gaussian cells moving ``SHIFT`` cells per
    step along x, from a larger canvas so that new rain enters at the left edge."""
    rng = np.random.default_rng(seed)
    width = side + SHIFT * n_steps
    y, x = np.mgrid[0:side, 0:width]
    canvas = np.zeros((side, width))
    for _ in range(14):
        cy, cx = rng.uniform(0, side), rng.uniform(0, width)
        canvas += rng.uniform(2, 8) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * 2.5**2))
    canvas[canvas < 0.2] = 0.0
    # frame t shows canvas columns [n*SHIFT - t*SHIFT, ...): the pattern moves right by SHIFT
    start = SHIFT * n_steps
    return np.stack(
        [canvas[:, start - SHIFT * t : start - SHIFT * t + side] for t in range(n_steps)]
    )


def rain_series(frames: np.ndarray):
    times = pd.date_range("2010-08-26", periods=len(frames), freq="5min")
    return grid_to_series(frames.astype(np.float32), times, ["rain_rate"])


def test_motion_and_nowcast_follow_the_rain() -> None:
    frames = moving_rain()
    history, future = frames[:6], frames[6:9]
    velocity = nc.motion_field(history)
    assert velocity.shape == (2, SIDE, SIDE)
    rainy = history[-1] > 1.0
    assert np.median(velocity[0][rainy]) == pytest.approx(SHIFT, abs=0.25)  # x: right
    assert np.median(velocity[1][rainy]) == pytest.approx(0.0, abs=0.25)  # y: still
    cov = nc.nowcast_frames(history, 3)
    assert cov.shape == (9, 1, SIDE, SIDE) and cov.dtype == np.float32
    assert np.isfinite(cov).all() and (cov >= 0).all()
    inner = np.s_[:, 4:-4, 6:-4]  # away from the inflow edge and the borders
    err_nowcast = np.mean((cov[6:, 0][inner] - future[inner]) ** 2)
    err_persistence = np.mean((history[-1][None] - future)[inner] ** 2)
    assert err_nowcast < 0.2 * err_persistence
    # the input window: step 0 is the first frame itself, step t the frame t-1 advected one step
    np.testing.assert_allclose(cov[0, 0], history[0], rtol=1e-6)
    np.testing.assert_allclose(cov[1:6, 0][inner], history[1:6][inner], atol=0.5)
    with_motion = nc.nowcast_frames(history, 3, include_motion=True)
    assert with_motion.shape == (9, 3, SIDE, SIDE)
    np.testing.assert_allclose(with_motion[4, 1:], velocity.astype(np.float32), rtol=1e-6)


def test_fill_of_cells_advected_from_outside() -> None:
    frames = moving_rain()
    velocity = nc.motion_field(frames[:6])
    last = frames[5]
    persistence = nc.extrapolate(last, velocity, 3, fill="persistence")
    zero = nc.extrapolate(last, velocity, 3, fill="zero")
    from pysteps import extrapolation

    raw = extrapolation.get_method("semilagrangian")(last, velocity, 3, outval=np.nan)
    empty = np.isnan(raw)
    assert empty[:, :, 0].all()  # the rain moves right: the left column comes from outside
    assert not empty[:, 4:-4, SIDE // 2 :].any()
    np.testing.assert_allclose(persistence[empty], np.broadcast_to(last, raw.shape)[empty])
    assert (zero[empty] == 0).all()
    np.testing.assert_allclose(persistence[~empty], np.clip(raw[~empty], 0, None))
    np.testing.assert_allclose(zero[~empty], persistence[~empty])


def test_covariates_use_nothing_after_the_origin() -> None:
    frames = moving_rain(14)
    series = rain_series(frames)
    _, covs = nc.nowcast_windows(series, 6, 3, origins=[7])
    changed = frames.copy()
    changed[8:] = 100.0  # everything after the origin (frame 7)
    _, covs_changed = nc.nowcast_windows(rain_series(changed), 6, 3, origins=[7])
    np.testing.assert_array_equal(covs[0].values(), covs_changed[0].values())
    assert covs[0].time_index.equals(series.time_index[2:11])


def test_windows_and_residuals() -> None:
    frames = moving_rain(14)
    series = rain_series(frames)
    targets, covs = nc.nowcast_windows(series, 6, 3)
    assert len(targets) == 14 - 6 - 3 + 1  # origins 5..10
    assert all(t.time_index.equals(c.time_index) for t, c in zip(targets, covs, strict=True))
    residuals, covs_r = nc.nowcast_windows(series, 6, 3, residual=True)
    np.testing.assert_allclose(
        series_to_grid(residuals[2]) + series_to_grid(covs_r[2]),
        series_to_grid(targets[2]),
        atol=1e-5,
    )
    back = nc.add_nowcast(residuals[2][6:], covs_r[2])
    np.testing.assert_allclose(back.values(), targets[2][6:].values(), atol=1e-5)
    assert back.metadata == targets[2].metadata
    # scale: targets and the nowcast channel in model units, the nowcast computed in mm/h
    scaled_t, scaled_c = nc.nowcast_windows(series, 6, 3, origins=[7], residual=True, scale=4.0)
    np.testing.assert_allclose(scaled_t[0].values(), residuals[2].values() / 4.0, atol=1e-6)
    np.testing.assert_allclose(scaled_c[0].values(), covs_r[2].values() / 4.0, atol=1e-6)
    np.testing.assert_allclose(
        nc.add_nowcast(scaled_t[0][6:], scaled_c[0], scale=4.0).values(),
        targets[2][6:].values(),
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="scale must be a positive number"):
        nc.nowcast_covariates(series, 2, scale=0.0)
    cov = nc.nowcast_covariates(series[:8], 4)
    assert len(cov) == 12 and cov.end_time() == series.time_index[11]
    assert list(cov.components[:1]) == ["nowcast_r0_c0"]


def test_bad_input_gives_clear_errors() -> None:
    frames = moving_rain(10)
    series = rain_series(frames)
    with pytest.raises(ValueError, match="no grid metadata"):
        nc.nowcast_covariates(series.with_metadata(None), 3)
    two = grid_to_series(np.stack([frames, frames], axis=1), series.time_index, ["a", "b"])
    with pytest.raises(ValueError, match="one channel of rain rates"):
        nc.nowcast_covariates(two, 3)
    with_nan = frames.copy()
    with_nan[4, 2, 3] = np.nan
    with pytest.raises(ValueError, match="frame 4, row 2, column 3"):
        nc.nowcast_covariates(rain_series(with_nan), 3)
    with pytest.raises(ValueError, match="negative"):
        nc.nowcast_frames(frames - 1.0, 3)
    with pytest.raises(ValueError, match="at least 3"):
        nc.nowcast_frames(frames[:2], 3)
    with pytest.raises(ValueError, match="motion='OF'"):
        nc.nowcast_frames(frames, 3, motion="OF")
    with pytest.raises(ValueError, match="fill='nan'"):
        nc.nowcast_frames(frames, 3, fill="nan")
    with pytest.raises(ValueError, match="n must be >= 1"):
        nc.nowcast_covariates(series, 0)
    with pytest.raises(ValueError, match="n must be a whole number of steps, got 2.5"):
        nc.nowcast_covariates(series, 2.5)
    # a numpy integer (e.g. from an array of lead times) is a number of steps like an int; pysteps
    # read it as a list of time steps and failed with "diff requires input that is at least ..."
    assert len(nc.nowcast_covariates(series, np.int64(2))) == len(series) + 2
    with pytest.raises(ValueError, match=r"origins \[1\] are outside 5..6"):
        nc.nowcast_windows(series, 6, 3, origins=[1])
    with pytest.raises(ValueError, match="one window needs"):
        nc.nowcast_windows(series[:7], 6, 3)
    with pytest.raises(ValueError, match="must be >= motion_frames"):
        nc.nowcast_windows(series, 2, 3)
    with pytest.raises(ValueError, match="do not cover"):
        nc.add_nowcast(series[-2:], nc.nowcast_covariates(series[:5], 2))
    # as many cells on another grid: the nowcast was added to other cells than its own
    cov = nc.nowcast_covariates(series[:5], 2)
    wide = grid_to_series(frames.reshape(10, 16, 64), series.time_index, ["rain_rate"])
    with pytest.raises(ValueError, match="16 x 64 grid, the covariates on a 32 x 32 one"):
        nc.add_nowcast(wide[5:7], cov)
    with pytest.raises(ValueError, match="16 x 64 grid, the covariates on a 32 x 32 one"):
        nc.subtract_nowcast(wide[:5], cov)


def test_extrapolate_names_a_bad_frame_or_motion_field() -> None:
    # pysteps' own errors named neither argument ("cannot reshape array of size 128 into shape
    # (16,16)", "precip contains non-finite values") and it clipped negative rain rates silently
    frames = moving_rain(4)
    velocity = nc.motion_field(frames)
    frame = frames[-1]
    assert nc.extrapolate(frame, velocity, 2).shape == (2, *frame.shape)
    with pytest.raises(ValueError, match=r"velocity must be a \(2, H, W\) motion field"):
        nc.extrapolate(frame, velocity[:, :16, :4], 2)
    with pytest.raises(ValueError, match=r"frame must be an \(H, W\) array"):
        nc.extrapolate(frames, velocity, 2)
    bad = frame.copy()
    bad[2, 3] = np.nan
    with pytest.raises(
        ValueError, match="frame holds a non-finite value .first at row 2, column 3"
    ):
        nc.extrapolate(bad, velocity, 2)
    with pytest.raises(ValueError, match="negative"):
        nc.extrapolate(frame - 1.0, velocity, 2)
    broken = velocity.copy()
    broken[1, 0, 0] = np.inf
    with pytest.raises(ValueError, match="velocity holds a non-finite value"):
        nc.extrapolate(frame, broken, 2)


def test_missing_pysteps_says_how_to_install(monkeypatch) -> None:
    real = importlib.import_module

    def fake(name, *args, **kwargs):
        if name == "pysteps":
            raise ImportError("No module named 'pysteps'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(nc.importlib, "import_module", fake)
    with pytest.raises(ImportError, match=r"darts-mim\[radar\]"):
        nc.motion_field(moving_rain(4))


def test_tiny_model_fits_predicts_and_backtests_on_nowcast_residuals(tmp_path) -> None:
    frames = moving_rain(16, side=16)
    series = rain_series(frames)
    targets, covs = nc.nowcast_windows(series, 4, 2, origins=range(3, 11), residual=True)
    model = MIMModel(
        **tiny_kwargs(
            tmp_path, input_chunk_length=4, output_chunk_length=2, num_hidden=(4,), patch_size=2
        )
    )
    model.fit(targets, future_covariates=covs)
    assert model.layout.future_grid_channels == 1  # the nowcast reaches every cell
    # serving: the last 4 frames observed, their covariates, the residual forecast back to rain
    history = series[-4:]
    cov = nc.nowcast_covariates(history, 2)
    history_residual = nc.subtract_nowcast(history, cov)
    np.testing.assert_allclose(  # a round trip: rain - nowcast + nowcast
        nc.add_nowcast(history_residual, cov).values(), history.values(), atol=1e-5
    )
    forecast = model.predict(2, series=history_residual, future_covariates=cov, verbose=False)
    rain = nc.add_nowcast(forecast, cov)
    assert rain.time_index.equals(cov.time_index[4:]) and (rain.values() >= 0).all()
    # backtest: one forecast per window, from its origin
    hf = model.historical_forecasts(
        targets[-3:],
        future_covariates=covs[-3:],
        start=4,
        start_format="position",
        forecast_horizon=2,
        retrain=False,
        last_points_only=False,
        verbose=False,
    )
    assert [len(h) for h in hf] == [1, 1, 1]
    for h, t in zip(hf, targets[-3:], strict=True):
        assert h[0].time_index.equals(t.time_index[4:])


def test_intensity_weights_step_up_with_the_observed_rain() -> None:
    """Shi et al.'s weights per cell and frame: 1 below 2 mm/h, then 2, 5, 10, 30; NaN as dry."""
    cells = np.array([0.0, 1.9, 2.0, 4.9, 5.0, 10.0, 29.9, 30.0, np.nan], dtype=np.float32)
    frames = np.stack([cells.reshape(3, 3), cells[::-1].reshape(3, 3)])
    rain = rain_series(frames)
    weights = nc.intensity_weights(rain)
    assert weights.time_index.equals(rain.time_index)
    assert list(weights.components) == list(rain.components)
    expected = np.array([1, 1, 2, 2, 5, 10, 10, 30, 1], dtype=np.float32)
    np.testing.assert_array_equal(series_to_grid(weights)[0, 0].ravel(), expected)
    np.testing.assert_array_equal(series_to_grid(weights)[1, 0].ravel(), expected[::-1])
    custom = nc.intensity_weights(rain, thresholds=[1.0], weights=[1.0, 4.0])
    assert set(np.unique(custom.values())) == {1.0, 4.0}
    for kwargs, match in [
        ({"thresholds": [2.0, 5.0], "weights": [1.0, 2.0]}, "one more value"),
        ({"thresholds": [5.0, 2.0], "weights": [1.0, 2.0, 3.0]}, "increasing"),
        ({"thresholds": [2.0], "weights": [1.0, 0.0]}, "> 0"),
    ]:
        with pytest.raises(ValueError, match=match):
            nc.intensity_weights(rain, **kwargs)
    with pytest.raises(ValueError, match="gridded"):
        nc.intensity_weights(rain.with_metadata(None).with_static_covariates(None))
    with pytest.raises(ValueError, match="one sample"):
        nc.intensity_weights(rain.concatenate(rain, axis=2))


def test_intensity_weights_make_a_balanced_loss(tmp_path) -> None:
    """As Darts' sample weights of residual nowcast windows: the fit runs and the heavier cells
    change the trained model (same seed, different weights, different forecast)."""
    frames = moving_rain(14, side=16)
    series = rain_series(frames)
    targets, covs = nc.nowcast_windows(series, 4, 2, origins=range(3, 12), residual=True)
    pairs = zip(targets, covs, strict=True)
    weights = [nc.intensity_weights(nc.add_nowcast(t, c)) for t, c in pairs]
    assert max(float(w.values().max()) for w in weights) >= 5.0  # heavy cells are weighted up
    kwargs = tiny_kwargs(
        tmp_path, input_chunk_length=4, output_chunk_length=2, num_hidden=(4,), patch_size=2
    )
    forecasts = []
    for sample_weight in (None, weights):
        model = MIMModel(**kwargs)
        model.fit(targets, future_covariates=covs, sample_weight=sample_weight)
        forecasts.append(
            model.predict(2, series=targets[0][:4], future_covariates=covs[0], verbose=False)
        )
    assert not np.allclose(forecasts[0].values(), forecasts[1].values())


@pytest.mark.slow  # the ONNX export traces the unrolled network: about 45 s on a busy 2-core CPU
def test_onnx_forecaster_serves_the_nowcast_recipe(tmp_path) -> None:
    """Serving without torch: the same covariates and residual give MIMModel's forecast."""
    from darts_mim.onnx.runtime import OnnxForecaster

    frames = moving_rain(12, side=16)
    series = rain_series(frames)
    targets, covs = nc.nowcast_windows(series, 4, 2, residual=True)
    model = MIMModel(
        **tiny_kwargs(
            tmp_path, input_chunk_length=4, output_chunk_length=2, num_hidden=(4,), patch_size=2
        )
    )
    model.fit(targets, future_covariates=covs)
    forecaster = OnnxForecaster(model.to_onnx(str(tmp_path / "nowcast.onnx")))
    history = series[-4:]
    cov = nc.nowcast_covariates(history, 2)
    residual = nc.subtract_nowcast(history, cov)
    expected = model.predict(2, series=residual, future_covariates=cov, verbose=False)
    served = forecaster.predict(2, residual, future_covariates=cov)
    np.testing.assert_allclose(served.values(), expected.values(), atol=1e-4, rtol=0)
    rain = nc.add_nowcast(served, cov)
    np.testing.assert_allclose(rain.values(), nc.add_nowcast(expected, cov).values(), atol=1e-4)


def test_helpers_need_no_torch() -> None:
    """Serving computes the covariates next to OnnxForecaster, in a process without torch."""
    code = textwrap.dedent(
        """
        import sys
        import numpy as np, pandas as pd
        from darts_mim import grid_to_series
        from darts_mim.nowcast import nowcast_covariates
        assert "pysteps" not in sys.modules  # imported on first use only
        frames = np.zeros((4, 8, 8), dtype="float32")
        frames[:, 2:5, 2:5] = 3.0
        times = pd.date_range("2024", periods=4, freq="5min")
        cov = nowcast_covariates(grid_to_series(frames, times, ["rain"]), 2)
        assert len(cov) == 6 and "pysteps" in sys.modules
        print("torch" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_verify_scores_by_lead_and_in_total():
    rain = moving_rain(n_steps=8)[None].reshape(2, 4, SIDE, SIDE) * 6.0  # 2 origins x 4 leads
    perfect = nc.verify(rain, rain)
    assert perfect["mse"] == 0.0 and perfect["mae"] == 0.0
    for key in ("csi1", "csi5", "fss5", "fss15"):
        assert perfect[key] == pytest.approx(1.0)
        np.testing.assert_allclose(perfect[f"{key}_lead"], 1.0)
    dry = nc.verify(np.zeros_like(rain), rain)
    assert dry["csi1"] == 0.0 and dry["csi1_lead"].shape == (4,)
    np.testing.assert_allclose(dry["mse_lead"], np.mean(rain**2, axis=(0, 2, 3)))
    with pytest.raises(ValueError, match=r"\(origins, leads, H, W\)"):
        nc.verify(rain[0], rain[0])
    # a cell missing from the observations (outside the radar's range) is left out of every
    # score: MSE was NaN beside finite CSI and FSS
    gappy = rain.copy()
    gappy[:, :, 0, 0] = np.nan
    shifted = rain + 1.0
    scores = nc.verify(shifted, gappy)
    assert scores["mse"] == pytest.approx(1.0) and scores["mae"] == pytest.approx(1.0)
    np.testing.assert_allclose(scores["mse_lead"], 1.0)
    assert np.isfinite(scores["csi1"]) and np.isfinite(scores["fss5"])


def test_fit_lead_weights_scale_each_lead_and_add_nowcast_applies_them() -> None:
    """Per lead, the weight of the correction minimising the (per-event normalised) MSE, in [0, 1];
    add_nowcast(lead_weights=) and weigh_corrections give the same rain rates."""
    rng = np.random.default_rng(0)
    observed = rng.random((6, 3, 4, 4)) * 5
    base = np.clip(observed + rng.normal(0, 1, observed.shape), 0, None)
    # the correction overshoots by 2x at lead 1, is exact at lead 2, points the wrong way at lead 3
    factor = np.array([2.0, 1.0, -1.0]).reshape(1, -1, 1, 1)
    corrected = base + factor * (observed - base)
    weights = nc.fit_lead_weights(base, corrected, observed, groups=[0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(weights, [0.5, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(
        nc.weigh_corrections(base, corrected, weights)[:, :2], observed[:, :2]
    )
    # a correction that never moves the base gets weight 0, not NaN
    assert nc.fit_lead_weights(base, base, observed).tolist() == [0.0, 0.0, 0.0]
    # TimeSeries: the residual forecast of one origin, in model units of 4 mm/h
    nowcast_cov = grid_to_series(
        base[0][:, None] / 4.0, pd.date_range("2024", periods=3, freq="5min"), ["rain"]
    )
    residual = nowcast_cov.with_values(((corrected[0] - base[0]) / 4.0).reshape(3, -1, 1))
    rain = nc.add_nowcast(residual, nowcast_cov, scale=4.0, lead_weights=weights)
    np.testing.assert_allclose(
        series_to_grid(rain)[:, 0],
        nc.weigh_corrections(base[:1], corrected[:1], weights)[0],
        atol=1e-5,
    )
    np.testing.assert_allclose(  # weights of 1 change nothing
        nc.add_nowcast(residual, nowcast_cov, 4.0, lead_weights=[1, 1, 1]).values(),
        nc.add_nowcast(residual, nowcast_cov, 4.0).values(),
    )
    with pytest.raises(ValueError, match="one finite weight per forecast step"):
        nc.add_nowcast(residual, nowcast_cov, 4.0, lead_weights=[1.0, 1.0])
    with pytest.raises(ValueError, match="same shape"):
        nc.fit_lead_weights(base, corrected[:, :2], observed)
    with pytest.raises(ValueError, match=r"one label per origin \(6\), got .* shape \(6, 2\)"):
        nc.fit_lead_weights(base, corrected, observed, groups=np.zeros((6, 2)))  # numpy's error
    with pytest.raises(ValueError, match="one label per origin"):
        nc.fit_lead_weights(base, corrected, observed, groups=[0, 1])
    # a missing observed cell made its lead's weight 0 (the whole correction dropped), silently
    with pytest.raises(ValueError, match=r"same shape"):  # was broadcast over every origin
        nc.weigh_corrections(base, corrected[:1], weights)
    with pytest.raises(ValueError, match=r"\(origins, leads, H, W\)"):  # one origin, no axis
        nc.weigh_corrections(base[0], corrected[0], weights)
    gap = observed.copy()
    gap[2, 0, 1, 3] = np.nan
    with pytest.raises(
        ValueError, match=r"`observed` holds a non-finite value \(first at origin 2, "
    ):
        nc.fit_lead_weights(base, corrected, gap)


def test_recentre_ensemble_keeps_the_spread_around_the_nowcast() -> None:
    """Each member minus the ensemble's mean plus the nowcast: the recentred ensemble's mean is the
    nowcast and its deviations the members' own; rain below 0 is clipped; bad shapes refused."""
    rng = np.random.default_rng(1)
    members = 10 + rng.normal(0, 1, (2, 5, 3, 4, 4))  # 2 origins, 5 members, 3 leads
    nowcast = 20 + rng.random((2, 3, 4, 4))
    out = nc.recentre_ensemble(members, nowcast)
    assert out.shape == members.shape
    np.testing.assert_allclose(out.mean(axis=1), nowcast)
    np.testing.assert_allclose(
        out - out.mean(axis=1, keepdims=True), members - members.mean(axis=1, keepdims=True)
    )
    # each origin is recentred on its own nowcast, not on another's
    np.testing.assert_allclose(nc.recentre_ensemble(members[1:], nowcast[1:]), out[1:])
    dry = nc.recentre_ensemble(members, np.zeros_like(nowcast))
    assert dry.min() == 0.0 and np.any(dry > 0)
    with pytest.raises(ValueError, match=r"\(origins, members, leads, H, W\)"):
        nc.recentre_ensemble(members, nowcast[0])  # would broadcast over the origins
    with pytest.raises(ValueError, match=r"\(origins, members, leads, H, W\)"):
        nc.recentre_ensemble(members[0], nowcast[0])
    with pytest.raises(ValueError, match="at least 2"):
        nc.recentre_ensemble(members[:, :1], nowcast)
    gap = members.copy()
    gap[0, 2, 1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="`members` holds 1 non-finite"):
        nc.recentre_ensemble(gap, nowcast)


def test_recentre_ensemble_spread_scales_the_deviations() -> None:
    """``spread`` multiplies each member's deviation from the mean (the mean stays the nowcast);
    0 collapses the ensemble onto the nowcast; bad factors are refused by name."""
    rng = np.random.default_rng(2)
    members = 10 + rng.normal(0, 1, (2, 4, 3, 4, 4))
    nowcast = 20 + rng.random((2, 3, 4, 4))
    wide = nc.recentre_ensemble(members, nowcast, spread=1.5)
    np.testing.assert_allclose(wide.mean(axis=1), nowcast)
    np.testing.assert_allclose(
        wide - nowcast[:, None], 1.5 * (members - members.mean(axis=1, keepdims=True))
    )
    np.testing.assert_allclose(
        nc.recentre_ensemble(members, nowcast, spread=0), nowcast[:, None].repeat(4, 1)
    )
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="`spread` must be a finite number >= 0"):
            nc.recentre_ensemble(members, nowcast, spread=bad)
    for bad in ("1.5", None, True):
        with pytest.raises(TypeError, match="`spread` must be a number"):
            nc.recentre_ensemble(members, nowcast, spread=bad)
