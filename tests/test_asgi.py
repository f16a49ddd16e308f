"""The production server (darts_mim.onnx.asgi, Starlette on uvicorn): started for real on the
loopback in processes where torch, Darts and pandas cannot be imported; answers as the
standard-library service and ``OnnxForecaster.predict_array`` do, micro-batches without changing an
answer, counts in Prometheus text, guards with an API key, and runs as two replicas."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from itertools import cycle

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

from test_service import exported  # noqa: E402,F401 - test_service's model fixture

from darts_mim.onnx.runtime import OnnxForecaster  # noqa: E402
from darts_mim.onnx.service import ForecastService  # noqa: E402

KEY = "s3cret-key"
# A fresh interpreter where importing torch, Darts, pandas or xarray fails.
SERVER = """
import sys
for name in ("torch", "darts", "pandas", "xarray", "onnx"):
    sys.modules[name] = None
from darts_mim.onnx.asgi import main
main({args!r})
"""


def _start(args: list[str], env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """Start a server; its process and URL once ``/health`` answers."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SERVER.format(args=args))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    line = proc.stdout.readline()
    if not line.startswith("serving"):
        proc.kill()
        raise AssertionError(f"the server did not start: {line}{proc.stderr.read()[-3000:]}")
    url = line.split()[3]  # serving PATH on http://HOST:PORT [with N workers]
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as answer:
                if answer.status == 200:
                    return proc, url
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError(f"no health: {proc.stderr.read()[-3000:]}") from None
            time.sleep(0.1)


# After its graceful shutdown uvicorn re-raises the signal it caught, so a server stopped by SIGTERM
# ends as killed by it (-15), having answered its requests.
STOPPED = (0, -signal.SIGTERM)


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def _server_args(path: str, *more: str) -> list[str]:
    limits = ["--max-body-mb", "0.01", "--max-horizon", "50", "--max-samples", "30"]
    return [path, "--port", "0", "--threads", "1", "--api-key", KEY, *limits, *more]


@pytest.fixture(scope="module")
def model(exported):  # noqa: F811 - test_service's fixture, this module's instance
    """A Gaussian model on a 1x2x2 grid with an always-missing cell and future covariates."""
    return exported


@pytest.fixture(scope="module")
def server(model):
    proc, url = _start(_server_args(model["path"]))
    try:
        yield url
    finally:
        _stop(proc)


def _call(
    url: str, path: str, payload: dict | bytes | None = None, key: str | None = KEY, **headers
) -> tuple[int, dict | str]:
    data = payload if isinstance(payload, bytes | None) else json.dumps(payload).encode()
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            status, body = answer.status, answer.read()
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read()
    text = body.decode()
    return status, json.loads(text) if text.startswith("{") else text


def _array(values: list) -> np.ndarray:
    return np.array(values, dtype=object).astype(np.float64)  # null -> nan


def test_asgi_answers_like_predict_array(model, server):
    f: OnnxForecaster = model["forecaster"]
    past, future = model["past"], model["future"]
    status, info = _call(server, "/metadata")
    assert status == 200 and info == ForecastService(model["path"]).info()

    # likelihood parameters
    status, body = _call(
        server,
        "/forecast",
        {"n": 2, "past_target": past.tolist(), "future_covariates": future[:, :5].tolist()},
    )
    assert status == 200 and body["kind"] == "parameters"
    assert body["parameter_names"] == ["mu", "sigma"]
    expected = f.predict_array(past, 2, future_covariates=future[:, :5])
    got = _array(body["forecast"])
    assert np.isnan(got[:, :, 3]).all()  # the always-missing cell, null in JSON
    np.testing.assert_allclose(got, expected, atol=1e-6)

    # seeded samples, autoregressive: the same draws as predict_array, every time
    request = {
        "n": 5,
        "past_target": past.tolist(),
        "future_covariates": future.tolist(),
        "num_samples": 20,
        "random_state": 3,
    }
    status, body = _call(server, "/forecast", request)
    assert status == 200 and body["kind"] == "samples" and body["shape"] == [2, 5, 4, 20]
    expected = f.predict_array(past, 5, future_covariates=future, num_samples=20, random_state=3)
    np.testing.assert_allclose(_array(body["forecast"]), expected, atol=1e-5)

    def one(seed: int) -> np.ndarray:
        return _array(_call(server, "/forecast", {**request, "random_state": seed})[1]["forecast"])

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, [0, 1, 2, 3, 0, 1, 2, 3]))
    for a, b in zip(answers[:4], answers[4:], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(answers[0], answers[1])

    # 5-d frames in, frames out
    status, body = _call(
        server,
        "/forecast",
        {
            "n": 1,
            "past_target": past.reshape(2, 3, 1, 2, 2).tolist(),
            "future_covariates": future[:, :5].tolist(),
        },
    )
    assert status == 200 and body["shape"] == [2, 1, 1, 2, 2, 2]


def test_asgi_refuses_bad_requests_as_the_stdlib_service(model, server):
    service = ForecastService(model["path"])
    past, future = model["past"], model["future"]
    gap = past.tolist()
    gap[1][2][0] = None
    text = past.tolist()
    text[1][2][0] = "7"
    bad = [
        {"n": 2, "past_target": past[:, :2].tolist()},  # too short: predict_array's words
        {"n": 2, "past_target": past.tolist()},  # covariates missing: Darts' words
        {"n": 3, "past_target": past.tolist(), "num_samples": 0},
        {"n": 0, "past_target": past.tolist(), "future_covariates": future.tolist()},
        {"n": 2, "past": 1},
        {"n": 2, "past_target": [[1]], "sample": 3},
        {"n": 2, "past_target": "abc", "future_covariates": [["x"]]},
        # a gap (null) in the window: named, not blamed on the model's weights
        {"n": 2, "past_target": gap, "future_covariates": future[:, :5].tolist()},
        # strings and booleans are not numbers, a string not a boolean
        {"n": 2, "past_target": text, "future_covariates": future[:, :5].tolist()},
        {"n": 2, "past_target": past.tolist(), "predict_likelihood_parameters": "false"},
    ]
    for request in bad:
        status, body = _call(server, "/forecast", request)
        expected_status, expected = service.answer(json.dumps(request).encode())
        assert (status, body) == (expected_status, expected) and status == 400, request
    with pytest.raises(ValueError) as err:
        model["forecaster"].predict_array(past[:, :2], 2)
    assert _call(server, "/forecast", bad[0])[1]["error"] == str(err.value)
    assert _call(server, "/forecast", bad[-3])[1]["error"].startswith(
        "`past_target` contains NaN or infinite values in the window the forecast reads"
    )
    assert "it holds a string, '7'" in _call(server, "/forecast", bad[-2])[1]["error"]
    status, body = _call(server, "/forecast", b"{not json")
    assert status == 400 and body == service.answer(b"{not json")[1]
    assert _call(server, "/nothing") == (404, {"error": "No endpoint '/nothing'."})
    assert _call(server, "/forecast")[0] == 405  # GET

    # more work than the server's limits allow: a 400 that names the option
    past_all, future_all = past.tolist(), future.tolist()
    for request, needle in (
        ({"n": 51, "past_target": past_all, "future_covariates": future_all}, "`n`=51"),
        ({"n": 2, "past_target": past_all, "num_samples": 31}, "`num_samples`=31"),
    ):
        status, body = _call(server, "/forecast", request)
        assert status == 400 and needle in body["error"] and "limit" in body["error"], body

    # too large: refused before it is read
    big = {"n": 2, "past_target": np.zeros((300, 3, 4)).tolist()}
    status, body = _call(server, "/forecast", big)
    assert status == 413 and "more than 10485" in body["error"]


def test_asgi_api_key_and_metrics(server):
    assert _call(server, "/health", key=None) == (200, {"status": "ok"})
    for path in ("/metadata", "/metrics"):
        assert _call(server, path, key=None)[0] == 401
        assert _call(server, path, key="wrong")[0] == 401
    status, body = _call(server, "/forecast", {"n": 1, "past_target": [[[1]]]}, key=None)
    assert status == 401 and "API key" in body["error"]
    assert _call(server, "/metadata", key=None, **{"X-API-Key": KEY})[0] == 200

    # unknown paths and methods are counted too, unknown paths under one label
    assert _call(server, "/scanner/probe-1")[0] == 404
    assert _call(server, "/scanner/probe-2")[0] == 404
    assert _call(server, "/health", {"n": 1})[0] == 405

    status, text = _call(server, "/metrics")
    assert status == 200
    assert 'darts_mim_requests_total{endpoint="other",status="404"}' in text
    assert "probe" not in text
    assert 'darts_mim_requests_total{endpoint="/health",status="405"}' in text
    assert 'darts_mim_requests_total{endpoint="/metrics",status="401"} 2.0' in text
    # a scrape counts itself
    assert 'darts_mim_requests_total{endpoint="/metrics",status="200"}' in text
    assert 'darts_mim_requests_total{endpoint="/forecast",status="401"}' in text
    assert 'darts_mim_requests_total{endpoint="/health",status="200"}' in text
    assert 'darts_mim_request_seconds_bucket{endpoint="/forecast",le="0.04"}' in text
    assert "darts_mim_batch_series_bucket" in text and "darts_mim_batch_requests_count" in text
    assert "darts_mim_in_flight 0.0" in text


def _request(model, rows: slice, n: int = 2, **more) -> dict:
    return {
        "n": n,
        "past_target": model["past"][rows],
        "future_covariates": model["future"][rows, : 3 + max(n, 2)],
        **more,
    }


def test_micro_batch_answers_as_alone(model):
    """Requests computed in one ONNX call get, bit for bit, what they get alone."""
    from darts_mim.onnx.asgi import MicroBatcher, _Metrics

    service = ForecastService(model["path"], intra_op_num_threads=1)
    requests = [
        _request(model, slice(0, 1)),
        _request(model, slice(1, 2)),
        _request(model, slice(0, 2)),
        _request(
            model,
            slice(0, 2),
            n=4,
            num_samples=1,
            random_state=0,
            predict_likelihood_parameters=False,
        ),
        _request(model, slice(1, 2), n=4, num_samples=5, random_state=1),
        _request(model, slice(1, 2), n=1),
        _request(model, slice(0, 1)),
    ]
    alone = [service.forecast(**r)[0] for r in requests]

    def gathered(max_batch: int) -> tuple[list[np.ndarray], dict[str, dict[str, float]]]:
        metrics = _Metrics()

        async def run() -> list[np.ndarray]:
            batcher = MicroBatcher(service, max_batch=max_batch, max_wait_ms=0, metrics=metrics)
            batcher.start()
            try:
                # all queued before the batching loop first runs
                prepared = [service.prepare(**r) for r in requests]
                return await asyncio.gather(*(batcher.submit(p) for p in prepared))
            finally:
                await batcher.stop()

        answers = asyncio.run(run())
        histograms = {
            name: {s.labels.get("le", s.name): s.value for s in metric.collect()[0].samples}
            for name, metric in (
                ("requests", metrics.batch_requests),
                ("series", metrics.batch_series),
            )
        }
        return answers, histograms

    together, calls = gathered(max_batch=64)
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_array_equal(a, b)
    # one call for the four n=2 forecasts (5 series), one per other request
    assert calls["requests"]["darts_mim_batch_requests_count"] == 4  # ONNX calls
    assert calls["requests"]["1.0"] == 3 and calls["requests"]["4.0"] == 4
    assert calls["series"]["4.0"] == 3 and calls["series"]["8.0"] == 4  # 2, 2, 1 and 5 series

    # at most 2 series per call: 1 + 1, then 2, then the rest alone
    together, calls = gathered(max_batch=2)
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_array_equal(a, b)
    assert calls["series"]["darts_mim_batch_series_count"] == 6
    assert calls["series"]["2.0"] == 6


def test_concurrent_http_requests_answer_as_alone(model, server):
    requests = [_request(model, slice(i % 2, i % 2 + 1 + i // 4)) for i in range(12)]
    payloads = [{k: np.asarray(v).tolist() for k, v in r.items()} for r in requests]
    alone = [_call(server, "/forecast", p)[1]["forecast"] for p in payloads]
    with ThreadPoolExecutor(12) as pool:
        together = list(pool.map(lambda p: _call(server, "/forecast", p)[1]["forecast"], payloads))
    assert together == alone


def test_two_replicas_answer_alike(model, server):
    """Scaling past one process: a second server (as on another machine) behind a round-robin
    client; either answers every request identically."""
    second, url2 = _start(_server_args(model["path"]))
    try:
        replicas = cycle([server, url2])
        request = {k: np.asarray(v).tolist() for k, v in _request(model, slice(0, 2)).items()}
        answers = [_call(next(replicas), "/forecast", request) for _ in range(6)]
        assert all(a == answers[0] for a in answers) and answers[0][0] == 200
        for url in (server, url2):
            metadata = _call(url, "/metadata")[1]
            assert metadata["input_chunk_length"] == 3
            assert 'endpoint="/forecast",status="200"' in _call(url, "/metrics")[1]
    finally:
        assert _stop(second) in STOPPED


def test_graceful_shutdown_answers_the_open_request(model):
    """SIGTERM while a forecast runs: it is answered, then the server exits cleanly."""
    proc, url = _start(_server_args(model["path"], "--max-body-mb", "5", "--max-horizon", "1000"))
    n = 1000  # about a second of autoregressive calls (1.5 ms each on the 2-core machine)
    past = model["past"][:1]
    future = np.sin(np.arange(3 + n))[None, :, None]
    request = {
        "n": n,
        "past_target": past.tolist(),
        "future_covariates": future.tolist(),
        "num_samples": 1,
        "predict_likelihood_parameters": False,
    }
    try:
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(_call, url, "/forecast", request)
            # the signal comes while the forecast runs (in flight, not answered)
            running = False
            while not running and not pending.done():
                running = "darts_mim_in_flight 1.0" in _call(url, "/metrics")[1]
            proc.send_signal(signal.SIGTERM)
            status, body = pending.result(timeout=60)
        assert running, "the forecast ended before the signal: make it longer"
        assert status == 200 and body["shape"] == [1, n, 4, 1]
        assert proc.wait(timeout=30) in STOPPED
    finally:
        if proc.poll() is None:
            proc.kill()


def test_several_workers_share_a_port(model, tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = _server_args(model["path"], "--workers", "2", "--port", str(port))
    proc, url = _start(args)
    try:
        request = {k: np.asarray(v).tolist() for k, v in _request(model, slice(0, 2)).items()}
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: _call(url, "/forecast", request), range(8)))
        assert all(a == answers[0] for a in answers) and answers[0][0] == 200
        # multiprocess metrics: a worker's /metrics counts the requests of both
        text = _call(url, "/metrics")[1]
        line = next(
            x for x in text.splitlines() if x.startswith('darts_mim_requests_total{endpoint="/fo')
        )
        assert float(line.split()[-1]) == 8
    finally:
        assert _stop(proc) in STOPPED


def test_missing_extra_is_one_line():
    code = (
        "import sys; sys.modules['starlette'] = None\n"
        "try:\n    import darts_mim.onnx.asgi\nexcept ImportError as err:\n    print(err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    message = out.stdout.strip()
    assert "\n" not in message and 'pip install "darts-mim[serve]"' in message
    assert message.startswith("starlette is not installed")


def test_cli_serve(model):
    """``darts-mim serve`` runs the same server, without torch, Darts or pandas."""
    code = (
        "import sys\n"
        "for name in ('torch', 'darts', 'pandas', 'xarray', 'pytorch_lightning'):\n"
        "    sys.modules[name] = None\n"
        "from darts_mim.cli import main\n"
        f"sys.exit(main(['serve', {model['path']!r}, '--port', '0', '--threads', '1']))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "DARTS_MIM_API_KEY": KEY},
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving"), proc.stderr.read()
        url = line.split()[3]
        assert _call(url, "/metadata", key=None)[0] == 401  # the key from the environment
        assert _call(url, "/metadata")[0] == 200
    finally:
        assert _stop(proc) in STOPPED


@pytest.mark.parametrize(
    "given, env",
    [("", None), ("  ", None), (None, "")],
    ids=["empty-option", "blank-option", "empty-variable"],
)
def test_an_empty_api_key_is_refused_rather_than_serving_without_one(
    monkeypatch, capsys, tmp_path, given, env
):
    # `--api-key "$KEY"` with KEY unset passes "", which served every endpoint without a key
    from darts_mim.cli import main as cli_main
    from darts_mim.onnx.asgi import ServeConfig, create_app

    monkeypatch.delenv("DARTS_MIM_API_KEY", raising=False)
    if env is not None:
        monkeypatch.setenv("DARTS_MIM_API_KEY", env)
    path = str(tmp_path / "never-loaded.onnx")
    with pytest.raises(ValueError, match="API key from .* is empty"):
        create_app(ServeConfig(path) if given is None else ServeConfig(path, api_key=given))
    (tmp_path / "never-loaded.onnx").write_bytes(b"")
    argv = ["serve", path, "--port", "0"] + ([] if given is None else ["--api-key", given])
    assert cli_main(argv) != 0
    assert "is empty, which would serve without authentication" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "needle"),
    [
        ("--max-body-mb", "0", "expected a positive number, got '0'"),  # was "max_body_bytes"
        ("--max-wait-ms", "nan", "expected a number >= 0, got 'nan'"),  # was accepted
        ("--max-wait-ms", "-1", "expected a number >= 0, got '-1'"),
    ],
)
def test_serve_limits_are_checked_under_their_option_names(option, value, needle, capsys):
    from darts_mim.cli import main as cli_main

    with pytest.raises(SystemExit) as stop:
        cli_main(["serve", "never-loaded.onnx", option, value])
    assert stop.value.code == 2
    assert f"argument {option}: {needle}" in capsys.readouterr().err
