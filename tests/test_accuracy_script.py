"""Smoke tests of benchmarks/accuracy.py: its --quick mode on tiny slices from tests/data."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


def _load_script():
    spec = importlib.util.spec_from_file_location("accuracy", ROOT / "benchmarks" / "accuracy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["accuracy"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


accuracy = _load_script()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory in the layout of shared/data, built from the fixtures of tests/data and the
    bike file that the package ships."""
    root = tmp_path / "data"
    (root / "gridded").mkdir(parents=True)
    (root / "series").mkdir()
    (root / "mnist").mkdir()
    shutil.copy(
        ROOT / "darts_mim" / "data" / "nycbike_2016-08-01_2016-10-29.npz",
        root / "gridded" / "nycbike_2016-08-01_2016-10-29.npz",
    )
    # the loader looks the radar file up by its full-size name; the 24x64x64 crop has its layout
    shutil.copy(
        DATA / "radar_knmi_2010-08-26_T24x64x64_mmh.npz",
        root / "gridded" / "radar_knmi_2010-08-26_T92x128x128_mmh.npz",
    )
    shutil.copy(DATA / "ETTh1_first2000.csv", root / "series" / "ETTh1.csv")
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(DATA / name, root / "mnist" / name)
    return root


def _table_rows(text: str, first_cell: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith(f"| {first_cell} |")
    ]


def test_quick_etth1_radar_mnist(data_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    # an older run's section of another data set, the old sections of the data sets being re-run
    # and the hand-written findings below the marker
    old = ["# old head", "", "## bike: kept section", "bike table", "", "## radar: old radar"]
    old += ["stale radar table", accuracy.MARKER, "my findings"]
    (out / "accuracy_results.md").write_text("\n".join(old) + "\n")
    argv = ["--quick", "--data", str(data_dir), "--only", "etth1,radar,mnist", "--seeds", "0,1"]
    # the recipe's correction with zero weights per lead is LK's extrapolation
    argv += ["--radar-lead-weights", "0,0,0,0,0,0", "--radar-predictions", str(out / "r.npz")]
    assert accuracy.main([*argv, "--out-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "## etth1" in printed and "## radar" in printed and "## mnist" in printed
    assert "seed 1 MIM (frame differences)" in printed  # every neural model runs on each seed
    md = (out / "accuracy_results.md").read_text()
    assert "old head" not in md and "stale radar table" not in md
    assert "## bike: kept section\nbike table" in md and md.rstrip().endswith("my findings")
    order = [md.index(f"## {name}:") for name in ("bike", "etth1", "radar", "mnist")]
    assert order == sorted(order)  # sections in the order of accuracy.DATASETS
    assert "--seeds 0,1" in md  # each section says how it was run
    for label in ("MIM (1x1, filter 1)", "TCN", "NHiTS"):
        row = _table_rows(md, label)[0]
        assert np.isfinite(float(row[1])) and float(row[2]) >= 0, label  # mean and sd over seeds
    assert _table_rows(md, "seasonal naive 24 h")[0][2] == "-"  # one run: no spread
    assert np.isfinite(float(_table_rows(md, "ARIMA(2,1,1) per column")[0][6]))
    radar_rows = _table_rows(md, "persistence")
    assert 0.0 <= float(radar_rows[0][4]) <= 1.0  # CSI at 1 mm/h
    # pysteps' nowcasts and the motion-aware recipe, with the new columns after the old ones
    assert "seed 1 MIM + LK nowcast (residual)" in printed
    header = next(line for line in md.splitlines() if line.startswith("| model | MSE (mm/h)^2"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns[:6] == [
        "model",
        "MSE (mm/h)^2",
        "MSE sd",
        "RMSE mm/h",
        "CSI 1 mm/h",
        "CSI 5 mm/h",
    ]
    assert columns[-4:] == ["FSS 1 mm/h 5 cells", "FSS 1 mm/h 15 cells", "CRPS mm/h", "s / nowcast"]
    labels = ["extrapolation LK", "extrapolation VET", "S-PROG (LK)", "ANVIL (LK)"]
    for label in [*labels, "STEPS mean (LK)", "MIM + LK nowcast (residual)"]:
        row = dict(zip(columns, _table_rows(md, label)[0], strict=True))
        assert np.isfinite(float(row["MSE (mm/h)^2"])), label
        assert 0.0 <= float(row["FSS 1 mm/h 5 cells"]) <= 1.0, label
        assert float(row["CRPS mm/h"]) > 0 and float(row["s / nowcast"]) > 0, label
    assert "CSI at 1 / 5 mm/h by lead time" in md and "FSS at 1 mm/h over 5 / 15 cells" in md
    weighted = _table_rows(md, "MIM + LK nowcast (residual), lead weights")[0]
    assert weighted[1] == _table_rows(md, "extrapolation LK")[0][1]
    # the ensembles: STEPS' own (the CRPS of the main table) and STEPS recentred on MIM's nowcast
    steps_crps = dict(zip(columns, _table_rows(md, "STEPS mean (LK)")[0], strict=True))["CRPS mm/h"]
    assert _table_rows(md, "STEPS")[0][1] == steps_crps
    for label in ("MIM + LK nowcast (residual)", "MIM + LK nowcast (residual), lead weights"):
        crps, outer = (float(x) for x in _table_rows(md, f"STEPS recentred on {label}")[0][1:3])
        assert crps > 0 and 0.0 <= outer <= 1.0, label
    saved = np.load(out / "r.npz")
    assert saved["radar_knmi/mim"].shape == (2, *saved["radar_knmi/truth"].shape)  # per seed
    mim_mnist = _table_rows(md, "MIM")[-2]  # Moving MNIST (the last row is its by-seed table)
    assert float(mim_mnist[1]) > 0 and -1.0 <= float(mim_mnist[4]) <= 1.0
    assert "MSE / SSIM by seed (seeds [0, 1])" in md
    for name in ("etth1", "radar", "mnist", "radar_scores", "radar_frames"):
        assert (out / f"accuracy_{name}.png").stat().st_size > 1000


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--only got"):
        accuracy.parse_args(["--data", str(tmp_path), "--only", "bike,weather"])
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        accuracy.parse_args(["--data", str(tmp_path / "missing")])
    with pytest.raises(ValueError, match="must be >= 1"):
        accuracy.parse_args(["--data", str(tmp_path), "--epochs", "0"])
    with pytest.raises(ValueError, match="must be >= 1"):
        accuracy.parse_args(["--data", str(tmp_path), "--steps", "0"])
    with pytest.raises(ValueError, match="comma-separated integers"):
        accuracy.parse_args(["--data", str(tmp_path), "--seeds", "0,one"])
    with pytest.raises(ValueError, match="distinct integers"):
        accuracy.parse_args(["--data", str(tmp_path), "--seeds", "1,1"])
    with pytest.raises(ValueError, match="6 weights"):
        accuracy.parse_args(["--data", str(tmp_path), "--radar-lead-weights", "0.5,0.5"])
    assert accuracy.parse_args(["--data", str(tmp_path), "--seeds", "2, 5"]).seeds == [2, 5]
    with pytest.raises(ValueError, match="not valid JSON"):
        accuracy.parse_args(["--data", str(tmp_path), "--mim-kwargs", "{lr: 1}"])
    with pytest.raises(ValueError, match="must be a JSON object"):
        accuracy.parse_args(["--data", str(tmp_path), "--mim-kwargs", "[1]"])
    with pytest.raises(ValueError, match="lag must be >= 1"):
        accuracy.lagged(np.zeros((4, 2)), 0)


def test_seasonal_covariates_are_known_at_forecast_time() -> None:
    """The lagged target on the grid (MIM) and flat with lags shortened by the horizon (TCN/LSTM)
    hold only values observed before each forecast step; the calendar is cyclic."""
    from darts_mim import grid_to_series
    from darts_mim.grid import grid_spec_of

    n, week, day, horizon = 400, 336, 48, 6
    times = pd.date_range("2016-08-01", periods=n, freq="30min")
    values = np.arange(n * 2 * 2 * 3, dtype=np.float32).reshape(n, 2, 2, 3)
    target = grid_to_series(values, times, ["inflow", "outflow"])
    covs = accuracy.seasonal_covariates(target, grid_spec_of(target), horizon)
    assert covs.start == week and len(covs.gridded) == n - week
    g = covs.gridded.values()
    flat = values.reshape(n, -1)
    t = 350  # row t - start of the covariates is time t
    np.testing.assert_array_equal(g[t - week, :12], flat[t - week])  # the week lag
    np.testing.assert_array_equal(g[t - week, 12:24], flat[t - day])  # the day lag
    # the 4 calendar channels are constant over the 6 cells
    cal = g[t - week, 24:].reshape(4, 6)
    assert np.allclose(cal, cal[:, :1])
    f = covs.flat.values()
    np.testing.assert_array_equal(f[t - week, :12], flat[t - (week - horizon)])
    np.testing.assert_array_equal(f[t - week, 12:24], flat[t - (day - horizon)])
    # time slot: same at the same time of day, (sin, cos) on the unit circle
    c = accuracy.calendar_features(times)
    np.testing.assert_allclose(c[0, :2], c[48, :2], atol=1e-6)
    np.testing.assert_allclose(c[0], c[336], atol=1e-6)  # same slot, same weekday
    assert not np.allclose(c[0, 2:], c[48, 2:])
    np.testing.assert_allclose(c[:, 0] ** 2 + c[:, 1] ** 2, 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="must be >= the horizon"):
        accuracy.seasonal_covariates(target, grid_spec_of(target), 60, lags=(week, 48))


def test_csi_and_ssim() -> None:
    true = np.array([0.0, 2.0, 6.0, 0.5])
    pred = np.array([1.5, 2.0, 0.0, 0.0])
    # at 1 mm/h: hits 1 (2.0), misses 1 (6.0), false alarms 1 (1.5) -> 1/3
    assert accuracy.csi(pred, true, 1.0) == pytest.approx(1 / 3)
    assert np.isnan(accuracy.csi(pred, true, 10.0))
    rng = np.random.default_rng(0)
    frames = rng.random((2, 3, 32, 32)).astype(np.float32)
    assert accuracy.ssim_per_frame(frames, frames) == pytest.approx(1.0, abs=1e-4)
    assert accuracy.ssim_per_frame(frames, 1 - frames) < 0.5


@pytest.mark.slow
def test_quick_bike(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert (
        accuracy.main(["--quick", "--data", str(data_dir), "--only", "bike", "--out-dir", str(out)])
        == 0
    )
    md = (out / "accuracy_results.md").read_text()
    labels = ["MIM", "MIM + seasonal covariates", "MIM stlstm (PredRNN) + seasonal covariates"]
    labels += ["MIM diff_mode=difference + seasonal covariates"]
    labels += ["TCN", "TCN + seasonal covariates", "LSTM (BlockRNN)", "seasonal naive 1 week"]
    for label in labels:
        rows = _table_rows(md, label)
        assert rows, label
        assert np.isfinite(float(rows[0][1]))
    assert _table_rows(md, "ARIMA(2,0,1) busiest 4")
    assert (out / "accuracy_bike.png").stat().st_size > 1000


def test_quick_jobs_runs_data_sets_in_worker_processes(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["--quick", "--jobs", "2", "--data", str(data_dir), "--only", "radar,etth1"]
    argv += ["--radar-lead-weights", "0.5,0.5,0.5,0.5,0.5,0.5"]
    argv += ["--radar-predictions", str(tmp_path / "r.npz")]
    assert accuracy.main([*argv, "--seeds", "3", "--out-dir", str(out)]) == 0
    md = (out / "accuracy_results.md").read_text()
    # sections in the order of accuracy.DATASETS, whichever worker finished first
    assert md.index("## etth1") < md.index("## radar")
    assert "one run, seed 3" in md  # the workers got the seeds
    # and the radar options (a worker dropped them), which the run line records
    assert _table_rows(md, "MIM + LK nowcast (residual), lead weights")
    assert (tmp_path / "r.npz").is_file()
    assert "--radar-lead-weights 0.5,0.5,0.5,0.5,0.5,0.5`" in md
    assert np.isfinite(float(_table_rows(md, "persistence")[0][1]))
    assert np.isfinite(float(_table_rows(md, "MIM (frame differences)")[0][1]))


def test_models_filter_and_mim_kwargs(data_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    argv = ["--quick", "--data", str(data_dir), "--only", "etth1", "--out-dir", str(out)]
    argv += ["--models", "MIM (1x1, filter 1);NHiTS", "--mim-kwargs", '{"input_window_loss": true}']
    assert accuracy.main(argv) == 0
    md = (out / "accuracy_results.md").read_text()
    assert _table_rows(md, "MIM (1x1, filter 1)") and _table_rows(md, "NHiTS")
    assert not _table_rows(md, "TCN")  # filtered out; the seasonal baseline always runs
    assert _table_rows(md, "seasonal naive 24 h")
    assert "--mim-kwargs '{\"input_window_loss\": true}'" in md  # the run says what it changed
    # a tagged run of the same data set keeps its own section and picture next to the untagged one
    assert accuracy.main([*argv, "--tag", "my variant"]) == 0
    md = (out / "accuracy_results.md").read_text()
    assert md.index("## etth1: ") < md.index("## etth1 [my variant]: ")
    assert '--tag "my variant"' in md and (out / "accuracy_etth1_my_variant.png").is_file()
    model = accuracy.mim_model(accuracy.parse_args(argv), 4, 2, num_hidden=(4,))
    assert model.training_recipe.input_window_loss is True and model.num_hidden == (4,)
    assert model.training_recipe.lr_schedule is None  # the pinned round-2 setting is kept
    with pytest.raises(ValueError, match="matches no etth1 model; its models are: MIM"):
        accuracy.main([*argv[:-4], "--models", "Transformer"])
