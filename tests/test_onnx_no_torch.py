"""Serving imports no torch, and the lazy package still loads saved models.

Both checks run in fresh interpreters (subprocesses): this test process has torch imported already.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from darts import TimeSeries

from darts_mim import MIMModel

TRAINER = {"accelerator": "cpu", "enable_progress_bar": False, "enable_model_summary": False}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny fitted model, saved both as an ONNX file and as a Darts model, with its forecast."""
    tmp = tmp_path_factory.mktemp("no_torch")
    rng = np.random.default_rng(0)
    series = TimeSeries.from_times_and_values(
        pd.date_range("2024", periods=30, freq="h"),
        rng.random((30, 2)).astype("float32"),
        columns=["a", "b"],
    )
    model = MIMModel(
        input_chunk_length=2,
        output_chunk_length=1,
        num_hidden=(2,),
        filter_size=1,
        n_epochs=1,
        random_state=0,
        work_dir=str(tmp),
        pl_trainer_kwargs=TRAINER,
    )
    model.fit(series)
    onnx_path = model.to_onnx(str(tmp / "tiny.onnx"))
    model_path = str(tmp / "tiny.pt")
    model.save(model_path)
    series_path = str(tmp / "series.csv")
    series.to_csv(series_path)
    expected = model.predict(3, series, verbose=False).values()
    return {
        "onnx": onnx_path,
        "model": model_path,
        "series": series_path,
        "expected": expected,
        "tmp": tmp,
    }


def _run(code: str, cwd) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(cwd),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_runtime_predicts_without_torch(saved):
    out = _run(
        f"""
        import json, sys
        import pandas as pd
        from darts import TimeSeries
        from darts_mim.onnx.runtime import OnnxForecaster
        import darts_mim.onnx

        df = pd.read_csv({saved["series"]!r}, index_col=0, parse_dates=True)
        series = TimeSeries.from_dataframe(df, freq="h").astype("float32")
        forecast = OnnxForecaster({saved["onnx"]!r}).predict(3, series)
        assert darts_mim.onnx.OnnxForecaster is OnnxForecaster
        modules = [m for m in ("torch", "onnx") if m in sys.modules]
        print(json.dumps({{"modules": modules, "values": forecast.values().tolist()}}))
        """,
        saved["tmp"],
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["modules"] == []  # serving needs neither torch nor the onnx package
    # A fresh process probes the providers: onnxruntime-gpu without CUDA prints nothing.
    assert "onnxruntime" not in out.stderr
    np.testing.assert_allclose(np.array(result["values"]), saved["expected"], atol=1e-4)


def test_load_after_lazy_import(saved):
    out = _run(
        f"""
        import json
        from darts_mim import MIMModel
        model = MIMModel.load({saved["model"]!r})
        print(json.dumps(model.predict(3, verbose=False).values().tolist()))
        """,
        saved["tmp"],
    )
    values = np.array(json.loads(out.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(values, saved["expected"], atol=1e-6)
