"""The numpy-only HTTP forecast service: runs where torch, Darts and pandas cannot be imported,
answers like ``OnnxForecaster.predict_array`` (forecasts, parameters, seeded samples), concurrently.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_kwargs
from darts import TimeSeries
from darts.utils.likelihood_models.torch import GaussianLikelihood

from darts_mim import MIMModel, grid_to_series
from darts_mim.onnx.runtime import OnnxForecaster
from darts_mim.onnx.service import ForecastService, make_server

# Started in a fresh interpreter where importing torch, Darts, pandas or xarray fails, as in a
# process that has only numpy and onnxruntime.
SERVER = """
import sys
for name in ("torch", "darts", "pandas", "xarray", "onnx"):
    sys.modules[name] = None
from darts_mim.onnx.service import main
main([{path!r}, "--port", "0", "--threads", "1"])
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A Gaussian model on a 1x2x2 grid with an always-missing cell and future covariates."""
    tmp = tmp_path_factory.mktemp("service")
    rng = np.random.default_rng(0)
    times = pd.date_range("2024-01-01", periods=50, freq="h")
    values = rng.random((50, 1, 2, 2)).astype("float32")
    values[:, 0, 1, 1] = np.nan
    series = grid_to_series(values, times, ["v"])
    future = TimeSeries.from_times_and_values(
        pd.date_range(times[0], periods=70, freq="h"),
        np.sin(np.arange(70.0))[:, None].astype("float32"),
        columns=["f"],
    )
    model = MIMModel(
        **tiny_kwargs(
            tmp, input_chunk_length=3, output_chunk_length=2, likelihood=GaussianLikelihood()
        )
    )
    model.fit(series, future_covariates=future)
    path = model.to_onnx(str(tmp / "service.onnx"))
    past = np.stack([values[-3:].reshape(3, -1), values[-8:-5].reshape(3, -1)])  # (2, 3, 4)
    fut = np.stack([future.values()[47:55], future.values()[42:50]])  # icl + max(n, ocl) = 8 steps
    return {"path": path, "past": past, "future": fut, "forecaster": OnnxForecaster(path)}


@pytest.fixture(scope="module")
def server(exported):
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SERVER.format(path=exported["path"]))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        if not line.startswith("serving"):
            proc.kill()
            raise AssertionError(f"the service did not start: {line}{proc.stderr.read()[-3000:]}")
        yield line.split()[-1]  # http://127.0.0.1:PORT
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _post(url: str, payload: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url + "/forecast", data=json.dumps(payload).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _array(values: list) -> np.ndarray:
    return np.array(values, dtype=object).astype(np.float64)  # null -> nan


def test_service_without_torch_or_darts_answers_like_predict_array(exported, server):
    f: OnnxForecaster = exported["forecaster"]
    past, future = exported["past"], exported["future"]
    with urllib.request.urlopen(server + "/metadata", timeout=30) as answer:
        info = json.loads(answer.read())
    assert info["input_chunk_length"] == 3 and info["frame"] == [1, 2, 2]
    assert info["covariates"]["future_covariates"]["n_components"] == 1

    # likelihood parameters (n <= output_chunk_length)
    status, body = _post(
        server, {"n": 2, "past_target": past.tolist(), "future_covariates": future[:, :5].tolist()}
    )
    assert status == 200 and body["kind"] == "parameters"
    assert body["parameter_names"] == ["mu", "sigma"]
    expected = f.predict_array(past, 2, future_covariates=future[:, :5])
    got = _array(body["forecast"])
    assert got.shape == expected.shape == (2, 2, 4, 2)
    assert np.isnan(got[:, :, 3]).all()  # the always-missing cell, null in JSON
    np.testing.assert_allclose(got, expected, atol=1e-6)

    # seeded samples, autoregressive beyond output_chunk_length: the same draws as predict_array
    request = {
        "n": 5,
        "past_target": past.tolist(),
        "future_covariates": future.tolist(),
        "num_samples": 20,
        "random_state": 3,
    }
    status, body = _post(server, request)
    assert status == 200 and body["kind"] == "samples" and body["shape"] == [2, 5, 4, 20]
    expected = f.predict_array(past, 5, future_covariates=future, num_samples=20, random_state=3)
    np.testing.assert_allclose(_array(body["forecast"]), expected, atol=1e-5)

    # 5-d frames in, frames out
    status, body = _post(
        server,
        {
            "n": 1,
            "past_target": past.reshape(2, 3, 1, 2, 2).tolist(),
            "future_covariates": future[:, :5].tolist(),
        },
    )
    assert status == 200 and body["shape"] == [2, 1, 1, 2, 2, 2]

    # concurrent requests get their own answers
    def one(seed: int) -> np.ndarray:
        _, answer = _post(server, {**request, "random_state": seed})
        return _array(answer["forecast"])

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, [0, 1, 2, 3, 0, 1, 2, 3]))
    for a, b in zip(answers[:4], answers[4:], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(answers[0], answers[1])


def test_service_refuses_bad_requests_in_the_runtime_words(exported, server):
    f: OnnxForecaster = exported["forecaster"]
    past = exported["past"]
    status, body = _post(server, {"n": 2, "past_target": past[:, :2].tolist()})
    assert status == 400
    with pytest.raises(ValueError) as err:
        f.predict_array(past[:, :2], 2)
    assert body["error"] == str(err.value)
    status, body = _post(server, {"n": 2, "past_target": past.tolist()})
    assert status == 400 and "some `future_covariates` of matching dimensionality" in body["error"]
    status, body = _post(server, {"n": 3, "past_target": past.tolist(), "num_samples": 0})
    assert status == 400 and "`num_samples` must be a positive integer" in body["error"]
    status, body = _post(server, {"n": 2, "past": 1})
    assert status == 400 and '"n" and "past_target"' in body["error"]
    status, body = _post(server, {"n": 2, "past_target": [[1]], "sample": 3})
    assert status == 400 and "Unknown request fields ['sample']" in body["error"]
    request = urllib.request.Request(server + "/forecast", data=b"{not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as http_err:
        urllib.request.urlopen(request, timeout=30)
    assert http_err.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as http_err:
        urllib.request.urlopen(server + "/nothing", timeout=30)
    assert http_err.value.code == 404


def test_service_in_process(exported):
    service = ForecastService(exported["path"], intra_op_num_threads=1)
    out, kind = service.forecast(
        4,
        exported["past"],
        future_covariates=exported["future"][:, :7],
        num_samples=3,
        random_state=0,
    )
    assert kind == "samples" and out.shape == (2, 4, 4, 3)
    status, body = service.answer(b'{"n": 1, "past_target": [[[1, 2, 3, 4]]]}')
    assert status == 400 and "must be (B, 3, 4)" in body["error"]


def test_service_refuses_null_in_the_window_as_predict_array(exported, server):
    """A JSON null (a gap) where the graph reads values is a 400 naming where, in predict_array's
    words, not a forecast of NaN blamed on the model's weights; in the always-missing cell it is
    the masked value it always was."""
    f: OnnxForecaster = exported["forecaster"]
    past, future = exported["past"], exported["future"][:, :5]
    window = past.tolist()
    window[1][2][0] = None
    status, body = _post(
        server, {"n": 2, "past_target": window, "future_covariates": future.tolist()}
    )
    gap = past.copy()
    gap[1, 2, 0] = np.nan
    with pytest.raises(ValueError) as err:
        f.predict_array(gap, 2, future_covariates=future)
    assert status == 400 and body["error"] == str(err.value)
    assert body["error"].startswith(
        "`past_target` contains NaN or infinite values in the window the forecast reads: 1 "
        "value(s), the first at step 2 (of 3, 0 the oldest) of series 1, component 'v_r0_c0'."
    )
    covariates = future.tolist()
    covariates[0][4][0] = None
    status, body = _post(
        server, {"n": 2, "past_target": past.tolist(), "future_covariates": covariates}
    )
    assert status == 400 and body["error"].startswith("`future_covariates` contains NaN")
    masked = past.tolist()
    masked[0][0][3] = None  # the always-missing cell
    status, body = _post(
        server, {"n": 2, "past_target": masked, "future_covariates": future.tolist()}
    )
    assert status == 200 and body["kind"] == "parameters"


def test_service_names_values_beyond_float32_as_predict_array(exported):
    """A finite 1e39 (beyond what float32 arithmetic holds) is refused with the advice to scale, as
    predict_array and MIMModel.predict refuse it: the service cast it to float32 first, an infinity
    then refused as a gap to fill."""
    f: OnnxForecaster = exported["forecaster"]
    service = ForecastService(exported["path"], intra_op_num_threads=1)
    past, future = exported["past"].astype(np.float64), exported["future"][:, :5]
    huge = past.copy()
    huge[1, 2, 0] = 1e39
    status, body = service.answer(
        json.dumps(
            {"n": 2, "past_target": huge.tolist(), "future_covariates": future.tolist()}
        ).encode()
    )
    with pytest.raises(ValueError) as err:
        f.predict_array(huge, 2, future_covariates=future)
    assert status == 400 and body["error"] == str(err.value)
    assert body["error"].startswith(
        "`past_target` reaches |x| = 1e+39 at step 2 (of 3, 0 the oldest) of series 1, component "
        "'v_r0_c0', beyond what float32 arithmetic holds"
    )
    covariates = future.astype(np.float64)
    covariates[0, 4, 0] = -1e39
    status, body = service.answer(
        json.dumps(
            {"n": 2, "past_target": past.tolist(), "future_covariates": covariates.tolist()}
        ).encode()
    )
    assert status == 400 and body["error"].startswith("`future_covariates` reaches |x| = 1e+39")
    with pytest.raises(ValueError, match=r"^`future_covariates` reaches \|x\| = 1e\+39"):
        service.forecast(2, past, future_covariates=covariates)  # arrays, not JSON


def test_service_refuses_an_empty_batch_as_predict_array(exported):
    f: OnnxForecaster = exported["forecaster"]
    service = ForecastService(exported["path"], intra_op_num_threads=1)
    empty = np.zeros((0, 3, 4), "float32")
    with pytest.raises(ValueError) as err:
        f.predict_array(empty, 2)
    assert str(err.value).startswith("`past_target` holds no window (shape (0, 3, 4))")
    with pytest.raises(ValueError) as served:
        service.forecast(2, empty)
    assert str(served.value) == str(err.value)


def test_service_refuses_strings_and_booleans_for_numbers(exported):
    """A string or a boolean in a numeric array, and a string for a boolean field, are a 400 that
    names the field (they were cast: "7" read as 7, true as 1, "false" as True)."""
    f: OnnxForecaster = exported["forecaster"]
    service = ForecastService(exported["path"], intra_op_num_threads=1)
    past, future = exported["past"].tolist(), exported["future"][:, :5].tolist()

    def answer(**changes):
        request = {"n": 2, "past_target": past, "future_covariates": future, **changes}
        return service.answer(json.dumps(request).encode())

    assert answer()[0] == 200
    for value, what in (("7", "a string, '7'"), (True, "a boolean, True")):
        window = json.loads(json.dumps(past))
        window[1][2][0] = value
        status, body = answer(past_target=window)
        assert status == 400, body
        assert body["error"] == (
            "`past_target` must hold numbers only (JSON numbers, or null for a gap): at index "
            f"[1, 2, 0] it holds {what}. Send the value as a number."
        )
        covariates = json.loads(json.dumps(future))
        covariates[0][4][0] = value
        status, body = answer(future_covariates=covariates)
        assert status == 400 and body["error"].startswith("`future_covariates` must hold numbers")
    ragged = json.loads(json.dumps(past))
    ragged[0][1] = ragged[0][1][:2]
    status, body = answer(past_target=ragged)
    assert status == 400 and body["error"].startswith("`past_target` is ragged"), body
    status, body = answer(past_target="abc")
    assert status == 400 and body["error"].startswith("`past_target` must be a nested array")
    status, body = answer(predict_likelihood_parameters="false")
    message = (
        "`predict_likelihood_parameters` must be a boolean (true or false in JSON, True or False "
        "in Python) or None, got 'false'."
    )
    assert (status, body) == (400, {"error": message})
    with pytest.raises(ValueError) as err:  # the runtime's words, shared
        f.predict_array(
            exported["past"],
            2,
            future_covariates=exported["future"][:, :5],
            predict_likelihood_parameters="false",
        )
    assert str(err.value) == message
    status, body = answer(predict_likelihood_parameters=False, num_samples=3, random_state=0)
    assert status == 200 and body["kind"] == "samples"
    # a seed numpy would reject with a TypeError (a 500 before): a 400 in the runtime's words
    for seed in (1.5, "7", True, -3):
        status, body = answer(num_samples=3, random_state=seed)
        assert (status, body) == (
            400,
            {
                "error": "`random_state` must be None or an integer seed in [0, 2**32 - 1], got "
                f"{seed!r}."
            },
        ), seed


def test_service_answers_a_failure_with_500_and_keeps_serving(exported, monkeypatch):
    service = ForecastService(exported["path"], intra_op_num_threads=1)

    def broken(*args, **kwargs):
        raise RuntimeError("the session failed")

    monkeypatch.setattr(service, "forecast", broken)
    server = make_server(service, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        status, body = _post(url, {"n": 1, "past_target": exported["past"].tolist()})
        assert status == 500 and body["error"] == "RuntimeError: the session failed"
        with urllib.request.urlopen(url + "/health", timeout=30) as answer:
            assert json.loads(answer.read()) == {"status": "ok"}
    finally:
        server.shutdown()
        server.server_close()


def test_service_limits_refuse_too_much_work(exported):
    """``max_horizon`` / ``max_samples``: a clear 400 instead of minutes of work; bad limits refused."""
    service = ForecastService(exported["path"], max_horizon=4, max_samples=10)
    past = exported["past"].tolist()
    status, body = service.answer(json.dumps({"n": 5, "past_target": past}).encode())
    assert (
        status == 400 and "`n`=5 exceeds this server's limit of 4 (--max-horizon)" in body["error"]
    )
    request = {"n": 2, "past_target": past, "num_samples": 11}
    status, body = service.answer(json.dumps(request).encode())
    assert status == 400 and "`num_samples`=11 exceeds" in body["error"]
    with pytest.raises(ValueError, match="max_horizon"):
        ForecastService(exported["path"], max_horizon=0)


@pytest.mark.parametrize("threads", ["0", "-3"])
def test_service_refuses_threads_below_one(threads, capsys):
    # onnxruntime reads 0 or less as its default (all cores): the server started silently
    from darts_mim.onnx.service import main

    with pytest.raises(SystemExit) as stop:
        main(["never-loaded.onnx", "--threads", threads])
    assert stop.value.code == 2
    assert "expected a positive integer" in capsys.readouterr().err


def test_service_startup_failures_are_one_line(tmp_path, capsys):
    """A missing file, a file that is not ONNX or a port out of range: one line on stderr and exit
    2, as darts-mim serve answers them (raw tracebacks before)."""
    from darts_mim.onnx.service import main

    not_onnx = tmp_path / "model.onnx"
    not_onnx.write_text("not a graph")
    for argv, needle in (
        ([str(tmp_path / "missing.onnx")], "missing.onnx"),
        ([str(not_onnx)], "model.onnx"),
    ):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        err = capsys.readouterr().err.strip()
        assert stop.value.code == 2 and "\n" not in err and "Traceback" not in err, err
        assert "error: " in err and needle in err, err
