"""Tests of the `darts-mim` command line: every subcommand on tiny data, and clean failures."""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from darts_mim.cli import _load_series, load_scaler, main

T, C, H, W = 48, 1, 4, 4
FIT_ARGS = ["--icl", "4", "--ocl", "2", "--hidden", "4,4", "--epochs", "1", "--quiet"]


def _write_grid(path: Path, t: int = T, seed: int = 0, h: int = H, w: int = W) -> Path:
    rng = np.random.default_rng(seed)
    steps = np.arange(t)[:, None, None, None]
    data = (10 + 5 * np.sin(steps / 3.0) + rng.random((t, C, h, w))).astype(np.float32)
    times = pd.date_range("2024-01-01", periods=t, freq="30min").strftime("%Y-%m-%dT%H:%M")
    np.savez_compressed(
        path, data=data, time=np.asarray(times, dtype=str), channels=np.asarray(["flow"])
    )
    return path


def _one_line_error(capsys, code: int, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "\n" not in err, f"expected one line on stderr, got:\n{err}"
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A tiny model fitted once through `darts-mim fit` on a 1 x 4 x 4 grid."""
    d = tmp_path_factory.mktemp("cli")
    data = _write_grid(d / "grid.npz")
    model = d / "mim.pt"
    assert main(["fit", "--data", str(data), "--out", str(model), *FIT_ARGS]) == 0
    return data, model


def test_help_lists_commands_and_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for word in ("demo", "fit", "predict", "backtest", "export", "examples:"):
        assert word in out


def test_python_m_darts_mim_runs_the_cli():
    """`python -m darts_mim` is the console script, for where `darts-mim` is not on PATH."""
    proc = subprocess.run(
        [sys.executable, "-m", "darts_mim", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: darts-mim") and "predict" in proc.stdout


def _copy_model(model: Path, directory: Path, scaler: bool = True) -> Path:
    """The fitted model's files in another directory (optionally without its scaler)."""
    target = directory / model.name
    for suffix in ("", ".ckpt") + ((".scaler",) if scaler else ()):
        shutil.copyfile(str(model) + suffix, str(target) + suffix)
    return target


def _series(data: Path):
    from darts_mim.datasets import load_grid_npz

    return load_grid_npz(data).series.astype(np.float32)


def test_fit_writes_model_and_darts_scaler(fitted):
    from darts.dataprocessing.transformers import Scaler

    data, model = fitted
    assert model.is_file() and Path(str(model) + ".ckpt").is_file()
    assert not Path(str(model) + ".scaling.json").exists()
    scaler = load_scaler(str(model) + ".scaler")
    assert isinstance(scaler, Scaler)
    # min-max per component to [0, 1] on the training data, as the JSON range did
    series = _series(data)
    scaled = scaler.transform(series)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled.values().min(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(scaled.values().max(axis=0), 1.0, atol=1e-6)
    np.testing.assert_allclose(
        scaler.inverse_transform(scaled).values(), series.values(), rtol=1e-5
    )
    # the grid layout (metadata) survives the scaler, so forecasts keep their grid
    assert scaled.metadata == series.metadata


def test_fit_says_when_it_replaces_a_model(tmp_path, capsys):
    """Fitting to the --out of an earlier model replaces it: said on stderr before the training,
    not silently."""
    data = _write_grid(tmp_path / "grid.npz", t=16)
    model = tmp_path / "mim.pt"
    assert main(["fit", "--data", str(data), "--out", str(model), *FIT_ARGS]) == 0
    assert "replace" not in capsys.readouterr().err
    assert main(["fit", "--data", str(data), "--out", str(model), *FIT_ARGS]) == 0
    assert f"note: {model} exists; the new model will replace it" in capsys.readouterr().err


def test_predict_npz_matches_library(fitted, tmp_path, capsys):
    from darts_mim.datasets import load_grid_npz
    from darts_mim.model import MIMModel

    data, model = fitted
    out = tmp_path / "forecast.npz"
    assert (
        main(["predict", "--model", str(model), "--data", str(data), "--n", "3", "--out", str(out)])
        == 0
    )
    assert "wrote 3 forecast steps" in capsys.readouterr().out
    with np.load(out) as f:
        assert f["data"].shape == (3, C, H, W)
        assert list(f["time"]) == [
            str(t) for t in pd.date_range("2024-01-02 00:00", periods=3, freq="30min")
        ]
        got = f["data"]
    # The same forecast through the library, scaled and unscaled by hand.
    series = load_grid_npz(data).series.astype(np.float32)
    scaler = load_scaler(str(model) + ".scaler")
    lib = MIMModel.load(str(model)).predict(3, series=scaler.transform(series), verbose=False)
    lib = scaler.inverse_transform(lib).values().reshape(3, C, H, W)
    np.testing.assert_allclose(got, lib, rtol=1e-5, atol=1e-4)
    # back on the original scale, not the scaled [0, 1] one
    assert got.mean() > 2.0


def test_predict_csv_via_console_script(fitted, tmp_path):
    data, model = fitted
    out = tmp_path / "forecast.csv"
    cmd = [sys.executable, "-m", "darts_mim.cli", "predict", "--model", str(model), "--data"]
    cmd += [str(data), "--n", "2", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(out, index_col=0)
    assert df.shape == (2, C * H * W)
    assert df.columns[0] == "flow_r0_c0"
    # the time column has a name (it read back as "Unnamed: 0"), and holds the forecast's times
    raw = pd.read_csv(out)
    assert raw.columns[0] == "time"
    assert list(pd.to_datetime(raw["time"])) == list(
        pd.date_range("2024-01-02 00:00", periods=2, freq="30min")
    )
    # a loaded model must not leave Lightning's TensorBoard logs in the working directory
    assert not (tmp_path / "lightning_logs").exists()


def test_fit_and_backtest_csv(tmp_path, capsys):
    rng = np.random.default_rng(1)
    n = 40
    df = pd.DataFrame(
        {
            "date": pd.date_range("2016-07-01", periods=n, freq="h"),
            "HUFL": 5 + np.sin(np.arange(n) / 2) + rng.random(n),
            "OT": 30 + rng.random(n),
        }
    )
    csv = tmp_path / "ett.csv"
    df.to_csv(csv, index=False)
    model = tmp_path / "ett.pt"
    assert (
        main(["fit", "--data", str(csv), "--out", str(model), *FIT_ARGS, "--filter-size", "1"]) == 0
    )
    capsys.readouterr()
    code = main(["backtest", "--model", str(model), "--data", str(csv), "--start", "0.5",
                 "--horizon", "2", "--stride", "2"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "10 forecasts of 2 steps" in out
    rmse = float(out.split("RMSE ")[1].split()[0])
    mae = float(out.split("MAE ")[1].split()[0])
    # errors on the original scale (values around 5 and 30), not on the scaled one
    assert 0 < mae <= rmse < 30
    # a file with the columns swapped (or renamed) would feed each column to the other's channel
    swapped = tmp_path / "swapped.csv"
    df[["date", "OT", "HUFL"]].to_csv(swapped, index=False)
    out_csv = str(tmp_path / "f.csv")
    for command in (["predict", "--n", "2", "--out", out_csv], ["backtest", "--horizon", "2"]):
        code = main([command[0], "--model", str(model), "--data", str(swapped), *command[1:]])
        _one_line_error(capsys, code, "another order", "['OT', 'HUFL']", "reorder")
    renamed = tmp_path / "renamed.csv"
    df.rename(columns={"OT": "oil_temperature"}).to_csv(renamed, index=False)
    code = main(["predict", "--model", str(model), "--data", str(renamed), "--n", "2",
                 "--out", out_csv])  # fmt: skip
    _one_line_error(capsys, code, "missing ['OT']", "not in training ['oil_temperature']")


def test_backtest_prints_errors(fitted, capsys):
    data, model = fitted
    assert main(["backtest", "--model", str(model), "--data", str(data), "--start", "40"]) == 0
    out = capsys.readouterr().out
    assert "RMSE" in out and "MAE" in out and "by horizon step" in out
    # one window of 6 steps: "1 forecast", not "1 forecasts"
    assert "1 forecast of 6 steps every 6 steps" in out


@pytest.mark.slow
def test_export_and_serve(fitted, tmp_path):
    from darts_mim.datasets import load_grid_npz
    from darts_mim.model import MIMModel
    from darts_mim.onnx.runtime import OnnxForecaster

    data, model = fitted
    out = tmp_path / "m.onnx"
    assert main(["export", "--model", str(model), "--out", str(out)]) == 0
    # The scaler is in the graph (raw values in and out), not beside it.
    assert out.is_file() and not Path(str(out) + ".scaler").exists()
    raw = load_grid_npz(data).series.astype(np.float32)
    scaler = load_scaler(str(model) + ".scaler")
    onnx = OnnxForecaster(str(out)).predict(2, series=raw)
    torch_fc = scaler.inverse_transform(
        MIMModel.load(str(model)).predict(2, series=scaler.transform(raw), verbose=False)
    )
    np.testing.assert_allclose(onnx.values(), torch_fc.values(), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ bad input: exit 2, one line


def test_missing_data_file(tmp_path, capsys):
    code = main(["fit", "--data", str(tmp_path / "nope.npz"), "--out", str(tmp_path / "m.pt")])
    _one_line_error(capsys, code, "darts-mim fit: error:", "nope.npz", "does not exist")


def test_unknown_extension(tmp_path, capsys):
    bad = tmp_path / "data.txt"
    bad.write_text("1,2,3\n")
    code = main(["fit", "--data", str(bad), "--out", str(tmp_path / "m.pt")])
    _one_line_error(capsys, code, "unknown data file extension '.txt'", ".npz")


def test_unreadable_npz(tmp_path, capsys):
    bad = tmp_path / "data.npz"
    bad.write_bytes(b"this is not a zip file at all")
    code = main(["fit", "--data", str(bad), "--out", str(tmp_path / "m.pt")])
    _one_line_error(capsys, code, "not a readable .npz")


def test_npz_with_wrong_keys(tmp_path, capsys):
    bad = tmp_path / "data.npz"
    np.savez(bad, values=np.zeros((10, 2, 2)))
    code = main(["fit", "--data", str(bad), "--out", str(tmp_path / "m.pt")])
    _one_line_error(capsys, code, "no `data` array", "values")


def test_corrupt_model(fitted, tmp_path, capsys):
    data, _ = fitted
    model = tmp_path / "broken.pt"
    model.write_bytes(b"\x80\x04garbage that is not a pickle")
    Path(str(model) + ".ckpt").write_bytes(b"garbage")
    code = main(
        ["predict", "--model", str(model), "--data", str(data), "--out", str(tmp_path / "f.npz")]
    )
    _one_line_error(capsys, code, "Could not load a MIMModel", "broken.pt")


def test_missing_model(fitted, tmp_path, capsys):
    data, _ = fitted
    code = main(["export", "--model", str(tmp_path / "none.pt"), "--out", str(tmp_path / "m.onnx")])
    _one_line_error(capsys, code, "model file", "does not exist")


def test_bad_output_extension(fitted, tmp_path, capsys):
    data, model = fitted
    code = main(
        ["predict", "--model", str(model), "--data", str(data), "--out", str(tmp_path / "f.txt")]
    )
    _one_line_error(capsys, code, "--out must end in .csv or .npz")


def test_outputs_never_overwrite_the_inputs(fitted, tmp_path, capsys):
    """`--out` naming the data file or the model (a slip of the shell's history) is refused before
    any work: the user's data and model stay as they were."""
    data, model = fitted
    model = _copy_model(model, tmp_path)
    csv = _write_hourly_csv(tmp_path / "sales.csv")
    before = {p: p.read_bytes() for p in (csv, model, Path(str(model) + ".scaler"))}
    code = main(["fit", "--data", str(csv), "--out", str(csv), *FIT_ARGS])
    _one_line_error(capsys, code, f"--out {csv} would overwrite the data file")
    code = main(["predict", "--model", str(model), "--data", str(csv), "--out", str(csv)])
    _one_line_error(capsys, code, "would overwrite the data file")
    code = main(["export", "--model", str(model), "--out", str(model)])
    _one_line_error(capsys, code, "would overwrite the model file")
    # the same file by another name
    code = main(["export", "--model", str(model), "--out", str(tmp_path / "." / model.name)])
    _one_line_error(capsys, code, "would overwrite the model file")
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.parametrize(
    ("engine", "more"),
    [
        ("uvicorn", []),
        ("uvicorn", ["--workers", "2", "--port", "8765"]),  # checked before the workers start
        ("ray", []),  # checked before Ray starts
    ],
)
def test_serve_a_file_that_is_not_onnx_is_one_error_without_a_checksum_warning(
    tmp_path, capsys, engine, more
):
    """`serve data.csv` warned that the file had no checksum file (nor could be verified), then
    failed with onnxruntime's InvalidProtobuf (exit 1); now one line saying it is not ONNX."""
    pytest.importorskip("uvicorn" if engine == "uvicorn" else "ray.serve")
    for name, text in (("data.csv", "date,sales\n2024-01-01,3\n"), ("model.onnx", "not a graph")):
        path = tmp_path / name
        path.write_text(text)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            code = main(["serve", str(path), "--engine", engine, *more])
        _one_line_error(capsys, code, f"{name}' could not be read as an ONNX model", "not an ONNX")
        assert not [str(w.message) for w in caught if "checksum" in str(w.message)]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["fit", "--data", "x.npz", "--out", "m.pt", "--hidden", "a,b"], "--hidden"),
        (
            ["predict", "--model", "m.pt", "--data", "x.npz", "--out", "f.npz", "--n", "0"],
            "positive",
        ),
        (["backtest", "--model", "m.pt", "--data", "x.npz", "--start", "-1"], "--start"),
        (["fit", "--data", "x.npz"], "--out"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments(argv, needle, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    _one_line_error(capsys, exc.value.code, needle)


def test_demo_quick_writes_pictures(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--skip-onnx", "--out", str(out)]) == 0
    for name in ("frames_true_vs_forecast.png", "error_by_horizon.png", "cell_series.png"):
        assert (out / name).stat().st_size > 1000, name
    text = (out / "results.md").read_text()
    for model in ("MIM", "seasonal naive", "TCN", "ARIMA"):
        assert f"| {model}" in text
    printed = capsys.readouterr().out
    assert "=== [5/5]" in printed and "RMSE per cell" in printed


@pytest.mark.slow
def test_demo_quick_with_onnx(tmp_path, capsys):
    out = tmp_path / "demo"
    env_debug = os.environ.pop("DARTS_MIM_DEBUG", None)
    try:
        assert main(["demo", "--quick", "--out", str(out)]) == 0
    finally:
        if env_debug is not None:
            os.environ["DARTS_MIM_DEBUG"] = env_debug
    text = (out / "results.md").read_text()
    assert "differ from `MIMModel.predict` by at most" in text, text


def test_predict_from_netcdf(fitted, tmp_path):
    import xarray as xr

    data, model = fitted
    with np.load(data) as f:
        grid = f["data"][:, 0]
        times = pd.DatetimeIndex(f["time"].astype(str))
    nc = tmp_path / "grid.nc"
    xr.Dataset({"flow": (("time", "y", "x"), grid)}, coords={"time": times}).to_netcdf(nc)
    out_nc, out_npz = tmp_path / "from_nc.npz", tmp_path / "from_npz.npz"
    for src, out in ((nc, out_nc), (data, out_npz)):
        argv = ["predict", "--model", str(model), "--data", str(src), "--n", "2", "--out", str(out)]
        assert main(argv) == 0
    with np.load(out_nc) as a, np.load(out_npz) as b:
        np.testing.assert_allclose(a["data"], b["data"], rtol=1e-5)


# ------------------------------------------------------------------ the scaler file


def test_missing_scaler_file(fitted, tmp_path, capsys):
    data, model = fitted
    copy = _copy_model(model, tmp_path, scaler=False)
    argv = ["predict", "--model", str(copy), "--data", str(data), "--out", str(tmp_path / "f.npz")]
    _one_line_error(
        capsys, main(argv), "scaler file", str(copy) + ".scaler", "missing", "--no-scale"
    )
    assert not (tmp_path / "f.npz").exists()


@pytest.mark.parametrize(
    "content",
    [b"", b"\x80\x04garbage", pickle.dumps({"offset": [0.0]}), b'{"offset": [0], "scale": [1]}'],
    ids=["empty", "truncated", "not-a-scaler", "json"],
)
def test_corrupt_scaler_file(fitted, tmp_path, capsys, content):
    data, model = fitted
    copy = _copy_model(model, tmp_path)
    Path(str(copy) + ".scaler").write_bytes(content)
    argv = ["backtest", "--model", str(copy), "--data", str(data), "--start", "40"]
    _one_line_error(capsys, main(argv), "scaler file", str(copy) + ".scaler", "re-fit")


class _Exploit:
    """A pickle that would run a shell command when loaded by plain `pickle.load`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_scaler_file_cannot_run_code(fitted, tmp_path, capsys):
    data, model = fitted
    copy = _copy_model(model, tmp_path)
    marker = tmp_path / "pwned"
    Path(str(copy) + ".scaler").write_bytes(pickle.dumps(_Exploit(marker)))
    argv = ["predict", "--model", str(copy), "--data", str(data), "--out", str(tmp_path / "f.npz")]
    _one_line_error(capsys, main(argv), "scaler file", "corrupt or not a Darts Scaler")
    assert not marker.exists()


def test_legacy_json_scaling_is_still_read(fitted, tmp_path, capsys):
    data, model = fitted
    new = tmp_path / "new.npz"
    argv = ["predict", "--model", str(model), "--data", str(data), "--n", "2", "--out", str(new)]
    assert main(argv) == 0
    # A model from an older darts-mim: the same range as JSON, no scaler file.
    copy = _copy_model(model, tmp_path, scaler=False)
    values = _series(data).values().astype(np.float64)
    lo, hi = values.min(axis=0), values.max(axis=0)
    legacy = Path(str(copy) + ".scaling.json")
    legacy.write_text(json.dumps({"offset": lo.tolist(), "scale": (hi - lo).tolist()}))
    capsys.readouterr()
    old = tmp_path / "old.npz"
    argv = ["predict", "--model", str(copy), "--data", str(data), "--n", "2", "--out", str(old)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "older darts-mim" in err and str(legacy) in err and "darts-mim fit" in err
    with np.load(new) as a, np.load(old) as b:
        np.testing.assert_allclose(a["data"], b["data"], rtol=1e-5, atol=1e-5)


def test_corrupt_legacy_json(fitted, tmp_path, capsys):
    data, model = fitted
    copy = _copy_model(model, tmp_path, scaler=False)
    Path(str(copy) + ".scaling.json").write_text("{not json")
    argv = ["predict", "--model", str(copy), "--data", str(data), "--out", str(tmp_path / "f.npz")]
    _one_line_error(capsys, main(argv), "scaling file", str(copy) + ".scaling.json", "corrupt")


def test_no_scale_for_a_model_without_scaler(fitted, tmp_path, capsys):
    data, model = fitted
    copy = _copy_model(model, tmp_path, scaler=False)  # e.g. saved with MIMModel.save()
    out = tmp_path / "f.npz"
    argv = ["predict", "--model", str(copy), "--data", str(data), "--out", str(out), "--no-scale"]
    assert main(argv) == 0 and out.is_file()
    # --no-scale with a scaler beside the model would silently forecast on the wrong scale
    argv = ["predict", "--model", str(model), "--data", str(data), "--out", str(out), "--no-scale"]
    _one_line_error(capsys, main(argv), "--no-scale contradicts", str(model) + ".scaler")


def test_fit_no_scale_writes_identity_scaler(tmp_path, capsys):
    data = _write_grid(tmp_path / "grid.npz")
    model = tmp_path / "raw.pt"
    assert main(["fit", "--data", str(data), "--out", str(model), *FIT_ARGS, "--no-scale"]) == 0
    assert "identity scaler" in capsys.readouterr().out
    series = _series(data)
    scaled = load_scaler(str(model) + ".scaler").transform(series)
    np.testing.assert_array_equal(scaled.values(), series.values())
    out = tmp_path / "f.npz"
    argv = ["predict", "--model", str(model), "--data", str(data), "--n", "2", "--out", str(out)]
    assert main(argv) == 0
    # --no-scale agrees with an identity scaler file
    assert main([*argv, "--no-scale"]) == 0


def test_fit_with_always_missing_component(tmp_path, capsys):
    """A land cell (NaN at every step) keeps offset 0 / scale 1 and is forecast as NaN."""
    from darts import TimeSeries

    path = _write_grid(tmp_path / "grid.npz")
    with np.load(path) as f:
        arrays = dict(f)
    arrays["data"][:, 0, 1, 2] = np.nan
    np.savez_compressed(path, **arrays)
    model = tmp_path / "land.pt"
    with warnings.catch_warnings():
        # sklearn warns "All-NaN slice encountered" when it fits a NaN column
        warnings.simplefilter("error", RuntimeWarning)
        assert main(["fit", "--data", str(path), "--out", str(model), *FIT_ARGS]) == 0
    scaler = load_scaler(str(model) + ".scaler")
    land = 1 * W + 2
    probe = TimeSeries.from_values(np.full((2, C * H * W), 0.5, dtype=np.float32))
    restored = scaler.inverse_transform(probe).values()
    assert np.all(np.isfinite(restored))
    np.testing.assert_allclose(restored[:, land], 0.5)
    out = tmp_path / "f.npz"
    argv = ["predict", "--model", str(model), "--data", str(path), "--n", "2", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    with np.load(out) as f:
        forecast = f["data"].reshape(2, -1)
    assert np.all(np.isnan(forecast[:, land]))
    others = np.delete(forecast, land, axis=1)
    assert np.all(np.isfinite(others)) and others.mean() > 2.0  # the original scale


def test_data_of_another_layout(fitted, tmp_path, capsys):
    _, model = fitted
    other = _write_grid(tmp_path / "other.npz", h=3, w=3)
    argv = [
        "predict",
        "--model",
        str(model),
        "--data",
        str(other),
        "--out",
        str(tmp_path / "f.npz"),
    ]
    _one_line_error(capsys, main(argv), "9 components", "training layout")


def test_scaler_save_is_atomic(tmp_path, monkeypatch):
    """A failed save leaves the previous scaler file whole and no temporary file behind."""
    from darts import TimeSeries

    from darts_mim import cli

    series = TimeSeries.from_values(np.arange(6, dtype=np.float32).reshape(3, 2))
    path = tmp_path / "m.pt.scaler"
    cli.save_scaler(cli.fit_scaler(series), path)
    before = path.read_bytes()

    def broken_dump(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(cli.pickle, "dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        cli.save_scaler(cli.fit_scaler(series * 2), path)
    assert path.read_bytes() == before
    # the scaler and its checksum file (darts_mim.integrity), no temporary file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt.scaler", "m.pt.scaler.sha256"]


def test_load_scaler_imports_no_torch(fitted):
    """The export tells ONNX users to load the scaler with load_scaler(): it must not need torch."""
    _, model = fitted
    code = (
        "import sys; from darts_mim.cli import load_scaler; "
        f"load_scaler({str(model) + '.scaler'!r}); print('torch' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=240, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


# ------------------------------------------------------------------ CSV columns (issue 23, defect 2)


def _write_hourly_csv(path: Path, n: int = 60, seed: int = 1) -> Path:
    """An hourly CSV with a date column and two numeric columns, HUFL and OT."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    pd.DataFrame(
        {
            "date": pd.date_range("2016-07-01", periods=n, freq="h"),
            "HUFL": 5 + np.sin(2 * np.pi * t / 24) + 0.1 * rng.random(n),
            "OT": 30 + rng.random(n),
        }
    ).to_csv(path, index=False)
    return path


CSV_FIT_ARGS = [*FIT_ARGS, "--filter-size", "1"]


def test_fit_refuses_a_csv_column_with_a_decimal_comma(tmp_path, capsys):
    """One "12,5" in HUFL made `fit` drop the column and train on OT alone (exit 0)."""
    csv = _write_hourly_csv(tmp_path / "ett.csv", n=40)
    lines = csv.read_text().splitlines()
    date, hufl, ot = lines[6].split(",")
    lines[6] = f'{date},"{hufl.replace(".", ",")}",{ot}'
    csv.write_text("\n".join(lines) + "\n")
    model = tmp_path / "m.pt"
    code = main(["fit", "--data", str(csv), "--out", str(model), *CSV_FIT_ARGS])
    _one_line_error(
        capsys, code, "column 'HUFL'", hufl.replace(".", ","), "line 7", date, "--decimal ,",
        "--drop HUFL",
    )  # fmt: skip
    assert not model.exists()
    # the column left out explicitly
    code = main(["fit", "--data", str(csv), "--out", str(model), *CSV_FIT_ARGS, "--drop", "HUFL"])
    assert code == 0
    assert "1 component," in capsys.readouterr().out


def test_fit_refuses_a_text_column_unless_dropped(tmp_path, capsys):
    csv = _write_hourly_csv(tmp_path / "ett.csv", n=40)
    frame = pd.read_csv(csv)
    frame.insert(1, "station", "north")
    frame.to_csv(csv, index=False)
    argv = ["fit", "--data", str(csv), "--out", str(tmp_path / "m.pt"), *CSV_FIT_ARGS]
    _one_line_error(capsys, main(argv), "column 'station' holds text", "--drop station")
    # --drop is repeatable; dropping every value column leaves nothing to fit
    code = main([*argv, "--drop", "station", "--drop", "HUFL", "--drop", "OT"])
    _one_line_error(capsys, code, "no value columns")


def test_csv_options_are_for_csv_files(fitted, tmp_path, capsys):
    data, model = fitted
    argv = ["predict", "--model", str(model), "--data", str(data), "--out", str(tmp_path / "f.npz")]
    needle = "--drop, --decimal, --sep and --date-order"
    _one_line_error(capsys, main([*argv, "--drop", "flow"]), needle, ".csv")
    _one_line_error(capsys, main([*argv, "--date-order", "day-first"]), needle, ".csv")


def test_fit_and_predict_semicolon_decimal_comma_csv_with_threads(tmp_path, capsys, monkeypatch):
    import torch

    from darts_mim import resources

    csv = _write_hourly_csv(tmp_path / "ett.csv", n=40)
    frame = pd.read_csv(csv)
    german = tmp_path / "messwerte.csv"
    frame.to_csv(german, index=False, sep=";", decimal=",")
    assert "," in german.read_text().splitlines()[1]
    calls = []
    original = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (calls.append(n), original(n))[1])
    model = tmp_path / "m.pt"
    options = ["--sep", ";", "--decimal", ","]
    argv = ["fit", "--data", str(german), "--out", str(model), *CSV_FIT_ARGS, *options]
    monkeypatch.setattr(resources, "available_cpus", lambda: 8)
    assert main([*argv, "--threads", "3"]) == 0
    out = capsys.readouterr().out
    assert "2 components" in out and "3 threads" in out
    assert calls[0] == 3 and torch.get_num_threads() == 1  # restored after the command
    monkeypatch.setattr(resources, "available_cpus", lambda: 2)
    assert main([*argv, "--threads", "3"]) == 0  # never more than the process's CPUs
    assert "2 threads" in capsys.readouterr().out and calls[-2] == 2
    forecast = tmp_path / "f.csv"
    argv = ["predict", "--model", str(model), "--data", str(german), "--n", "2"]
    assert main([*argv, "--out", str(forecast), *options]) == 0
    values = pd.read_csv(forecast, index_col=0)
    assert list(values.columns) == ["HUFL", "OT"] and np.isfinite(values.to_numpy()).all()
    assert values["OT"].between(25, 35).all()  # the original scale, read with decimal commas


def test_default_threads(monkeypatch):
    from darts_mim import resources

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert resources.default_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert resources.default_threads() == 1  # small convolutions: one thread, never oversubscribed


def test_available_cpus_is_the_affinity_at_most():
    from darts_mim.resources import available_cpus

    assert 1 <= available_cpus() <= len(os.sched_getaffinity(0))


# ------------------------------------------------------------------ hold-out and backtest (defect 7)


def test_fit_holdout_and_backtest_the_last_steps(tmp_path, capsys):
    """The README's backtest scored the data the model was trained on: `fit --holdout N` leaves
    the last N steps out of training and of the scaler, `backtest --last N` scores only them."""
    csv = _write_hourly_csv(tmp_path / "ett.csv", n=60)
    model = tmp_path / "m.pt"
    argv = ["fit", "--data", str(csv), "--out", str(model), *CSV_FIT_ARGS, "--holdout", "12"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "holding out the last 12 steps (from 2016-07-03 00:00:00)" in out
    assert "backtest --last 12" in out
    # the scaler saw the 48 training steps only
    from darts_mim.datasets import load_csv_series

    series = load_csv_series(csv).astype(np.float32)
    scaled = load_scaler(str(model) + ".scaler").transform(series[:48]).values()
    np.testing.assert_allclose(scaled.min(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(scaled.max(axis=0), 1.0, atol=1e-5)

    backtest = ["backtest", "--model", str(model), "--data", str(csv), "--horizon", "2"]
    backtest += ["--stride", "2"]
    assert main([*backtest, "--last", "12"]) == 0
    captured = capsys.readouterr()
    assert "6 forecasts of 2 steps every 2 steps from 2016-07-03 00:00:00" in captured.out
    assert "in-sample" not in captured.err
    # the same start as a time stamp, as Darts' historical_forecasts(start=pd.Timestamp(...))
    assert main([*backtest, "--start", "2016-07-03T00:00"]) == 0
    assert captured.out == capsys.readouterr().out
    # scoring training data is allowed, with a note on stderr
    assert main([*backtest, "--start", "0.5"]) == 0
    captured = capsys.readouterr()
    assert "from 2016-07-02 05:00:00" in captured.out  # Darts: 0.5 of 60 steps is step 29
    note = captured.err
    assert "note: 19 of the 30 scored steps" in note and "up to 2016-07-02 23:00:00" in note
    assert "in-sample" in note and "--holdout" in note and "\n" not in note.strip()


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--last", "3"], ["--last 3 is shorter than --horizon 6"]),
        (["--last", "48"], ["--last 48 is not shorter than the data (48 steps)"]),
    ],
)
def test_backtest_last_errors(fitted, capsys, extra, needles):
    data, model = fitted
    code = main(["backtest", "--model", str(model), "--data", str(data), *extra])
    _one_line_error(capsys, code, *needles)


def test_fit_val_last_validates_on_the_steps_before_the_holdout(tmp_path, capsys, monkeypatch):
    from darts_mim.model import MIMModel

    seen = {}
    original = MIMModel.fit

    def spy(self, series, *args, **kwargs):
        seen["train"], seen["val"] = series, kwargs.get("val_series")
        return original(self, series, *args, **kwargs)

    monkeypatch.setattr(MIMModel, "fit", spy)
    csv = _write_hourly_csv(tmp_path / "ett.csv", n=60)
    argv = ["fit", "--data", str(csv), "--out", str(tmp_path / "m.pt"), *CSV_FIT_ARGS]
    assert main([*argv, "--val-last", "8", "--holdout", "4"]) == 0
    out = capsys.readouterr().out
    assert "training on 48 steps" in out and "validating on the next 8 steps" in out
    train, val = seen["train"], seen["val"]
    times = pd.date_range("2016-07-01", periods=60, freq="h")
    assert (train.start_time(), train.end_time()) == (times[0], times[47])
    # the validation targets are steps 48..55; the series starts icl=4 steps earlier for inputs
    assert (val.start_time(), val.end_time()) == (times[44], times[55])
    # --val-last must hold one output chunk
    code = main([*argv, "--val-last", "1"])
    _one_line_error(capsys, code, "--val-last 1 is shorter than --ocl 2")


def test_default_input_chunk_length():
    from darts import TimeSeries

    from darts_mim.cli import default_input_chunk_length
    from darts_mim.grid import grid_to_series

    def plain(n, freq):
        return TimeSeries.from_times_and_values(
            pd.date_range("2020-01-01", periods=n, freq=freq), np.zeros((n, 2))
        )

    assert default_input_chunk_length(plain(400, "h"), 6)[0] == 96
    assert default_input_chunk_length(plain(130, "h"), 6) == (48, "2 periods of 24 steps")
    assert default_input_chunk_length(plain(60, "h"), 6)[0] == 12  # too short to fold
    assert default_input_chunk_length(plain(100, "D"), 6)[0] == 28
    assert default_input_chunk_length(plain(144, "MS"), 6)[0] == 48
    assert default_input_chunk_length(plain(400, "h"), 6, fold_period=None)[0] == 12
    assert default_input_chunk_length(plain(400, "h"), 6, fold_period=10)[0] == 40
    assert default_input_chunk_length(TimeSeries.from_values(np.zeros((400, 1))), 6)[0] == 12
    grid = grid_to_series(
        np.zeros((400, 1, 2, 2)), pd.date_range("2020", periods=400, freq="h"), ["c"]
    )
    assert default_input_chunk_length(grid, 6) == (12, "a grid")


def test_fit_input_length_follows_the_frequency(tmp_path, capsys):
    """The default input of 12 steps left hourly CSVs unfolded; now 4 days of hours."""
    csv = _write_hourly_csv(tmp_path / "ett.csv", n=200)
    argv = ["fit", "--data", str(csv), "--out", str(tmp_path / "m.pt")]
    argv += ["--ocl", "2", "--hidden", "4", "--epochs", "1", "--quiet", "--filter-size", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "icl=96 (4 periods of 24 steps; --icl to change)" in out
    assert "folded into periods of 24 steps" in out


def test_fit_fold_period_likelihood_and_samples(fitted, tmp_path, capsys):
    csv = _write_hourly_csv(tmp_path / "ett.csv", n=60)
    model = tmp_path / "g.pt"
    argv = ["fit", "--data", str(csv), "--out", str(model), *CSV_FIT_ARGS]
    fit = [*argv, "--fold-period", "none", "--likelihood", "gaussian", "--linear-residual"]
    assert main(fit) == 0
    out = capsys.readouterr().out
    assert "not folded" in out and "gaussian likelihood" in out and "linear residual" in out
    forecast = tmp_path / "f.csv"
    predict = ["predict", "--model", str(model), "--data", str(csv), "--n", "2"]
    assert main([*predict, "--out", str(forecast), "--samples", "5"]) == 0
    assert "median of 5 samples" in capsys.readouterr().out
    values = pd.read_csv(forecast, index_col=0)
    assert values.shape == (2, 2) and np.isfinite(values.to_numpy()).all()
    backtest = ["backtest", "--model", str(model), "--data", str(csv), "--last", "12"]
    assert main([*backtest, "--horizon", "2", "--stride", "4", "--samples", "3"]) == 0
    assert "3 forecasts (medians of 3 samples) of 2 steps" in capsys.readouterr().out
    # an integer period longer than the input is refused before training
    code = main([*argv, "--fold-period", "24"])
    _one_line_error(capsys, code, "fold_period=24 is longer than input_chunk_length=4")
    # samples of a point model
    data, point = fitted
    argv = ["predict", "--model", str(point), "--data", str(data), "--out", str(forecast)]
    _one_line_error(capsys, main([*argv, "--samples", "5"]), "needs a probabilistic model")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["fit", "--data", "x.csv", "--out", "m.pt", "--fold-period", "1"], "period >= 2"),
        (["fit", "--data", "x.csv", "--out", "m.pt", "--fold-period", "daily"], "period >= 2"),
        (["fit", "--data", "x.csv", "--out", "m.pt", "--likelihood", "poisson"], "invalid choice"),
        (["fit", "--data", "x.csv", "--out", "m.pt", "--threads", "0"], "positive"),
        (["fit", "--data", "x.csv", "--out", "m.pt", "--holdout", "-3"], "positive"),
        (["backtest", "--model", "m.pt", "--data", "x.csv", "--start", "soon"], "a time stamp"),
        (
            ["backtest", "--model", "m.pt", "--data", "x.csv", "--start", "0.5", "--last", "6"],
            "not allowed with",
        ),
    ],
)
def test_bad_new_arguments(argv, needle, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    _one_line_error(capsys, exc.value.code, needle)


# ------------------------------------------------------------------ scaler file mode (defect 7)


def test_scaler_file_has_the_mode_of_the_model_files(fitted):
    """`*.scaler` files were written 0600 (tempfile.mkstemp) beside 0644 models."""
    _, model = fitted
    mode = model.stat().st_mode & 0o777
    assert Path(str(model) + ".scaler").stat().st_mode & 0o777 == mode


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask022", "umask027"])
def test_scaler_file_mode_follows_the_umask(tmp_path, umask):
    from darts import TimeSeries

    from darts_mim import cli

    scaler = cli.fit_scaler(TimeSeries.from_values(np.arange(6, dtype=np.float32).reshape(3, 2)))
    before = os.umask(umask)
    try:
        path = cli.save_scaler(scaler, tmp_path / "m.pt.scaler")
        plain = tmp_path / "plain"
        plain.write_bytes(b"")
    finally:
        os.umask(before)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask == plain.stat().st_mode & 0o777


def test_date_order_reads_csv_dates_day_first(tmp_path, capsys):
    """--date-order day-first / month-first is load_csv_series' dayfirst; ambiguous dates without
    it are refused (exit 2 and the loader's message), and it is refused for a grid file."""
    months = pd.date_range("2020-01-01", periods=12, freq="MS")
    path = tmp_path / "monthly.csv"
    pd.DataFrame({"date": months.strftime("%d/%m/%Y"), "a": np.arange(12.0)}).to_csv(
        path, index=False
    )

    def args(order):
        return argparse.Namespace(drop=None, decimal=".", sep=",", date_order=order)

    assert list(_load_series(str(path), args("day-first")).time_index) == list(months)
    assert _load_series(str(path), args("month-first")).time_index[1] == pd.Timestamp("2020-01-02")
    with pytest.raises(ValueError, match="read day first or month first alike"):
        _load_series(str(path), args(None))
    assert main(["fit", "--data", str(path), "--out", str(tmp_path / "m.pt")]) == 2
    assert "--date-order day-first or month-first" in capsys.readouterr().err
    grid = tmp_path / "grid.npz"
    np.savez(grid, data=np.zeros((30, 1, 2, 2), np.float32))
    with pytest.raises(Exception, match="--date-order read .csv files"):
        _load_series(str(grid), args("day-first"))
