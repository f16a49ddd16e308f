"""Issue 23, defects 1 and 3: saved files carry SHA-256 checksums that loading verifies, a corrupt
file is never advised to be loaded trusted, and a non-finite forecast is an error, never a result."""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_grid_series, tiny_kwargs

from darts_mim import MIMModel, OnnxForecaster
from darts_mim.cli import fit_scaler, load_scaler, main, save_scaler
from darts_mim.integrity import (
    check_finite_forecasts,
    is_real_global,
    read_checksums,
    short_cause,
)

LAND = [0, 7, 30]  # always-missing cells of the fixture grid: forecast as NaN by design


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny grid model with always-missing cells, fitted once and saved."""
    tmp = tmp_path_factory.mktemp("integrity")
    values = make_grid_series().all_values().copy()
    values[:, LAND] = np.nan
    series = make_grid_series().with_values(values)
    torch.set_num_threads(1)
    model = MIMModel(**tiny_kwargs(tmp, num_hidden=(4,))).fit(series)
    path = tmp / "mim.pt"
    model.save(str(path))
    return {"model": model, "series": series, "path": path, "dir": tmp}


def _copy(saved, directory: Path, name: str = "mim.pt", checksums: bool = True) -> Path:
    """The saved model's files under ``directory / name`` (with or without the checksum file)."""
    target = directory / name
    suffixes = ("", ".ckpt") + ((".sha256",) if checksums else ())
    for suffix in suffixes:
        shutil.copyfile(str(saved["path"]) + suffix, str(target) + suffix)
    return target


def _overwrite(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def _pickle_span(path: Path) -> tuple[int, int]:
    """Where the pickled data (``archive/data.pkl``, stored uncompressed) lies in a torch file."""
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("data.pkl"))
        data = archive.read(name)
    start = raw.find(data[:200])
    assert start >= 0
    return start, start + len(data)


def _rezip(src: Path, dst: Path, old: bytes, new: bytes) -> None:
    """Rewrite a torch file with ``old`` replaced by ``new`` in its pickle and valid zip CRCs:
    a garbled class name that the archive's own checks cannot see."""
    with zipfile.ZipFile(src) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as out:
        for name, data in members:
            if name.endswith("data.pkl"):
                assert old in data
                data = data.replace(old, new, 1)
            out.writestr(name, data)


# ------------------------------------------------------------------ checksums written by save
def test_save_writes_a_sha256sum_checksum_file(saved):
    path = saved["path"]
    manifest = Path(str(path) + ".sha256")
    assert read_checksums(manifest).keys() == {"mim.pt", "mim.pt.ckpt"}
    assert manifest.read_text().splitlines()[0].endswith("  mim.pt")
    assert oct(manifest.stat().st_mode & 0o777) == oct(path.stat().st_mode & 0o777)
    assert not [p for p in saved["dir"].iterdir() if p.name.startswith(".")]  # no temporaries
    if shutil.which("sha256sum"):
        check = subprocess.run(
            ["sha256sum", "-c", manifest.name], cwd=saved["dir"], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.3])
def test_random_bytes_in_the_checkpoint_are_refused(saved, tmp_path, fraction):
    path = _copy(saved, tmp_path)
    ckpt = Path(str(path) + ".ckpt")
    _overwrite(ckpt, int(fraction * ckpt.stat().st_size), np.random.default_rng(0).bytes(64))
    with pytest.raises(ValueError, match="checksum does not match") as err:
        MIMModel.load(str(path))
    assert str(ckpt) in str(err.value) and "restore" in str(err.value)
    with pytest.raises(ValueError, match="checksum does not match"):
        MIMModel(**tiny_kwargs(tmp_path, num_hidden=(4,))).load_weights(str(path))


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.55, 0.8, 0.97])
def test_zeroed_bytes_in_the_model_file_are_a_corrupt_file_error(saved, tmp_path, fraction):
    path = _copy(saved, tmp_path)
    start, end = _pickle_span(path)
    _overwrite(path, start + int(fraction * (end - start - 60)), bytes(60))
    with pytest.raises(ValueError, match="checksum does not match") as err:
        MIMModel.load(str(path))
    assert "trusted" not in str(err.value) and str(path) in str(err.value)
    # the same file saved before checksums existed: still a corrupt-file error, without "trusted"
    os.remove(str(path) + ".sha256")
    with pytest.warns(UserWarning, match="integrity cannot be verified"):
        with pytest.raises(ValueError, match="corrupt") as err:
            MIMModel.load(str(path))
    assert "trusted" not in str(err.value)


@pytest.mark.parametrize(
    "garbled",
    [b"cnumpy.random._mt\x00\x00\x00\x00\x00\nMT19937\n", b"cnumpy.random._mt19937\nMT19938\n"],
    ids=["zeroed-module", "no-such-class"],
)
def test_a_garbled_class_name_is_corruption_not_a_trust_question(saved, tmp_path, garbled):
    # zip CRCs valid and no checksum file: only the name itself shows the corruption
    path = _copy(saved, tmp_path, checksums=False)
    _rezip(saved["path"], path, b"cnumpy.random._mt19937\nMT19937\n", garbled)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no checksum file
        with pytest.raises(ValueError, match=r"is corrupt.*not the name of any module or class"):
            MIMModel.load(str(path))
    with pytest.raises(ValueError) as err:
        MIMModel.load(str(path))
    assert "trusted" not in str(err.value) and "allow-list" not in str(err.value)
    assert str(path) in str(err.value)


def test_a_real_class_off_the_allow_list_keeps_darts_advice(saved, tmp_path):
    path = _copy(saved, tmp_path, checksums=False)
    _rezip(saved["path"], path, b"cnumpy.random._mt19937\nMT19937\n", b"ccollections\nChainMap\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ValueError, match="collections.ChainMap") as err:
            MIMModel.load(str(path))
    assert "trusted=True" in str(err.value)  # a valid file: Darts' advice is the right one


def test_a_checksumless_save_loads_with_one_warning(saved, tmp_path):
    path = _copy(saved, tmp_path, checksums=False)
    with pytest.warns(UserWarning, match=r"mim\.pt has no checksum file.*cannot be verified"):
        model = MIMModel.load(str(path))
    np.testing.assert_array_equal(model.predict(2).values(), saved["model"].predict(2).values())
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # once per file
        MIMModel.load(str(path))
    # a corrupt checkpoint without checksum file: its zip CRCs still refuse it
    ckpt = Path(str(path) + ".ckpt")
    _overwrite(ckpt, ckpt.stat().st_size // 5, np.random.default_rng(1).bytes(64))
    with pytest.raises(ValueError, match="CRC-32"):
        MIMModel.load(str(path))


def test_files_renamed_with_their_checksum_file_still_verify(saved, tmp_path):
    path = _copy(saved, tmp_path, name="renamed.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        MIMModel.load(str(path))
    manifest = Path(str(path) + ".sha256")
    manifest.write_text("not a checksum\n")
    with pytest.raises(ValueError, match="checksum file .* is corrupt"):
        MIMModel.load(str(path))


def test_a_model_copied_without_its_weights_is_refused(saved, tmp_path):
    """The checksum file lists the .ckpt: a copy that left it behind must not load a model without
    weights (Darts would, and only predict() would say it was never fitted)."""
    path = _copy(saved, tmp_path)
    os.remove(str(path) + ".ckpt")
    with pytest.raises(ValueError, match=r"weights .*mim\.pt\.ckpt are missing"):
        MIMModel.load(str(path))


def test_load_from_checkpoint_refuses_a_corrupt_checkpoint(tmp_path):
    """Lightning's checkpoints (save_checkpoints=True) have no checksum file: their zip CRCs are
    checked by load_from_checkpoint as by load_weights_from_checkpoint."""
    series = make_grid_series()
    kwargs = tiny_kwargs(tmp_path, num_hidden=(4,), save_checkpoints=True, model_name="ck")
    MIMModel(**kwargs).fit(series)
    MIMModel.load_from_checkpoint("ck", work_dir=str(tmp_path), best=False)  # intact: loads
    (ckpt,) = (tmp_path / "ck" / "checkpoints").glob("last*.ckpt")
    raw = bytearray(ckpt.read_bytes())
    with zipfile.ZipFile(ckpt) as archive:  # flip bits inside the largest tensor's stored bytes
        info = max(archive.infolist(), key=lambda i: i.file_size if "/data/" in i.filename else 0)
    head = info.header_offset
    start = head + 30 + int.from_bytes(raw[head + 26 : head + 28], "little")
    start += int.from_bytes(raw[head + 28 : head + 30], "little")
    for k in range(3, info.file_size, 4):
        raw[start + k] ^= 0x80  # every float's sign: finite weights, a different model
    ckpt.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="CRC-32") as err:
        MIMModel.load_from_checkpoint("ck", work_dir=str(tmp_path), best=False)
    assert str(ckpt) in str(err.value)


# ------------------------------------------------------------------ scaler and ONNX files
def test_corrupt_scaler_file_is_refused(saved, tmp_path):
    path = save_scaler(fit_scaler(saved["series"]), tmp_path / "mim.pt.scaler")
    assert read_checksums(str(path) + ".sha256").keys() == {"mim.pt.scaler"}
    load_scaler(path)
    _overwrite(path, path.stat().st_size // 2, b"\x00" * 8)
    with pytest.raises(ValueError, match=r"scaler file .*mim\.pt\.scaler.*checksum does not match"):
        load_scaler(path)
    # zeroed bytes in numbers unpickle silently: what only the checksum catches
    os.remove(str(path) + ".sha256")
    with pytest.warns(UserWarning, match=r"mim\.pt\.scaler has no checksum file"):
        load_scaler(path)


def test_corrupt_onnx_file_is_refused(saved, tmp_path):
    path = Path(saved["model"].to_onnx(str(tmp_path / "mim.onnx")))
    assert read_checksums(str(path) + ".sha256").keys() == {"mim.onnx"}
    forecast = OnnxForecaster(path).predict(2, saved["series"])
    assert np.isnan(forecast.values()[:, LAND]).all()  # always-missing: NaN, no error
    legacy = tmp_path / "old.onnx"  # exported before checksums existed: loads, with a warning
    shutil.copyfile(str(path), legacy)
    with pytest.warns(UserWarning, match=r"old\.onnx has no checksum file"):
        OnnxForecaster(legacy)
    _overwrite(path, path.stat().st_size // 2, np.random.default_rng(0).bytes(64))
    with pytest.raises(ValueError, match=r"ONNX file .*mim\.onnx.*checksum does not match"):
        OnnxForecaster(path)


def test_onnx_runtime_refuses_non_finite_forecasts(saved, tmp_path):
    forecaster = OnnxForecaster(saved["model"].to_onnx(str(tmp_path / "nan.onnx")))
    forecaster._run = lambda feeds: np.full((1, 3, 48, 1), np.nan, dtype=np.float32)
    with pytest.raises(ValueError, match=r"ONNX model .* produced non-finite forecasts"):
        forecaster.predict(2, saved["series"])


def test_the_http_service_checks_like_the_forecaster(saved, tmp_path):
    """The numpy-only service opens and answers as OnnxForecaster does: a corrupt file is refused,
    a NaN forecast outside the always-missing cells is an error (a 400 answer), not a result."""
    from darts_mim.onnx.service import ForecastService

    path = Path(saved["model"].to_onnx(str(tmp_path / "svc.onnx")))
    service = ForecastService(path)
    past = saved["series"].values()[None, -service.metadata["input_chunk_length"] :]
    out, _ = service.forecast(2, past)
    assert np.isnan(out[:, :, LAND]).all() and np.isfinite(np.delete(out, LAND, axis=2)).all()
    service._run = lambda feeds: np.full((1, 3, 48, 1), np.nan, dtype=np.float32)
    with pytest.raises(ValueError, match=r"ONNX model .* produced non-finite forecasts"):
        service.forecast(2, past)
    _overwrite(path, path.stat().st_size // 2, np.random.default_rng(0).bytes(64))
    with pytest.raises(ValueError, match=r"ONNX file .*svc\.onnx.*checksum does not match"):
        ForecastService(path)


# ------------------------------------------------------------------ non-finite forecasts
def _nan_weights(saved, tmp_path) -> MIMModel:
    """A fitted model (with its trainer, so that ``save`` writes its weights) whose weights are NaN:
    no file is corrupt."""
    model = MIMModel(**tiny_kwargs(tmp_path, num_hidden=(4,))).fit(saved["series"])
    with torch.no_grad():
        for param in model.model.parameters():
            param.fill_(float("nan"))
    return model


def test_nan_weights_raise_instead_of_forecasting_nan(saved, tmp_path):
    model = _nan_weights(saved, tmp_path)
    with pytest.raises(ValueError, match=r"non-finite forecasts .*corrupt or its fit diverged"):
        model.predict(3)
    for last_points_only in (False, True):
        with pytest.raises(ValueError, match="non-finite forecasts"):
            model.historical_forecasts(
                saved["series"],
                start=50,
                forecast_horizon=3,
                retrain=False,
                last_points_only=last_points_only,
            )


def test_inputs_beyond_float32_are_refused_alike(saved, tmp_path):
    """Inputs that float32 arithmetic cannot multiply: torch's network overflowed to a NaN
    forecast (blamed on the weights) while ONNX Runtime returned a finite one. Both paths, and the
    array path the services use, now refuse them before the forecast, in the same words."""
    huge = saved["series"] * 1e30
    message = (
        r"reaches \|x\| = \d\.\d+e\+(29|30) at .*, beyond what float32 arithmetic holds \(products of "
        r"values above 1\.8e\+19 overflow\)\. Scale the series"
    )
    with pytest.raises(ValueError, match=r"^`series` at index 0 " + message) as torch_err:
        saved["model"].predict(3, huge)
    forecaster = OnnxForecaster(saved["model"].to_onnx(str(tmp_path / "huge.onnx")))
    with pytest.raises(ValueError) as onnx_err:
        forecaster.predict(3, huge)
    assert str(onnx_err.value) == str(torch_err.value)
    window = huge.values()[None, -forecaster.input_chunk_length :].astype(np.float32)
    with pytest.raises(ValueError, match=r"^`past_target` " + message):
        forecaster.predict_array(window, 3)
    # below the limit, a forecast (NaN only on the always-missing cells, as at the usual scale)
    finite = np.isfinite(forecaster.predict(3, saved["series"] * 1e15).values())
    assert (finite == np.isfinite(forecaster.predict(3, saved["series"]).values())).all()


def test_always_missing_cells_still_forecast_nan(saved):
    model, series = saved["model"], saved["series"]
    values = model.predict(3).values()
    assert np.isnan(values[:, LAND]).all()
    keep = np.setdiff1d(np.arange(series.n_components), LAND)
    assert np.isfinite(values[:, keep]).all()
    backtest = model.historical_forecasts(series, start=50, forecast_horizon=3, retrain=False)
    assert np.isfinite(backtest.values()[:, keep]).all()


def test_check_finite_forecasts_masks_parameter_blocks():
    values = np.zeros((2, 6, 1))  # (n, 3 components x 2 likelihood parameters, samples)
    values[:, 2:4] = np.nan  # both parameters of component 1
    check_finite_forecasts(values, [1], 3, component_axis=1)
    with pytest.raises(ValueError, match=r"2 of 6 output components .*\(e\.g\. b, b\)"):
        check_finite_forecasts(values, [0], 3, component_axis=1, components=["a", "b", "c"])
    values[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        check_finite_forecasts(values, [1], 3, component_axis=1)


def test_garbled_names_and_advice():
    assert is_real_global("collections.ChainMap")
    assert is_real_global("numpy.random._mt19937.MT19937")
    assert not is_real_global("numpy.random._mt19937.MT19938")
    assert not is_real_global("numpy.random._mt\x00\x00.MT19937")
    assert not is_real_global("no_such_module_xyz.Thing")
    cause = short_cause(RuntimeError("Bad file. The file can still be loaded with `trusted=True`"))
    assert cause == "RuntimeError: Bad file"


# ------------------------------------------------------------------ command line
def _write_npz(series, path: Path) -> Path:
    from darts_mim import series_to_grid

    np.savez_compressed(
        path,
        data=series_to_grid(series),
        time=np.asarray(series.time_index.strftime("%Y-%m-%dT%H:%M"), dtype=str),
        channels=np.asarray(["ch0", "ch1"]),
    )
    return path


def test_cli_refuses_corrupt_and_non_finite_models(saved, tmp_path, capsys):
    data = _write_npz(saved["series"], tmp_path / "grid.npz")
    path = _copy(saved, tmp_path)
    ckpt = Path(str(path) + ".ckpt")
    good = ckpt.read_bytes()
    out = tmp_path / "f.csv"
    predict = ["predict", "--model", str(path), "--data", str(data), "--out", str(out)]
    _overwrite(ckpt, len(good) // 10, np.random.default_rng(0).bytes(64))
    capsys.readouterr()
    assert main([*predict, "--no-scale"]) == 2
    assert "checksum does not match" in capsys.readouterr().err
    assert not out.exists()
    # intact files of a model whose weights are NaN: an error, not an empty CSV or "RMSE nan"
    ckpt.write_bytes(good)
    _nan_weights(saved, tmp_path).save(str(path))
    assert main([*predict, "--no-scale"]) == 2
    assert "non-finite forecasts" in capsys.readouterr().err
    assert not out.exists()
    backtest = ["backtest", "--model", str(path), "--data", str(data), "--start", "50"]
    assert main([*backtest, "--no-scale"]) == 2
    captured = capsys.readouterr()
    assert "non-finite forecasts" in captured.err and "RMSE" not in captured.out
