"""The Ray Serve server (darts_mim.onnx.ray_serve): its command started for real on the loopback,
with two replicas, in processes (the driver and Ray's workers) where torch, Darts and pandas cannot
be imported; concurrent requests are answered, bit for bit, as ``ForecastService.forecast`` answers
them alone, bad ones in the asgi server's words, and both replicas serve."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("ray.serve", reason='Ray Serve is not installed: pip install "darts-mim[ray]"')

from test_service import exported  # noqa: E402,F401 - test_service's model fixture

from darts_mim.onnx.service import ForecastService  # noqa: E402

KEY = "s3cret-key"
BLOCKED = ("torch", "darts", "pandas", "xarray", "onnx")
# Imported by every Python process started with it on PYTHONPATH (site's sitecustomize): Ray's
# replicas then run where these cannot be imported, as the driver does.
SITECUSTOMIZE = f"""
import sys
for name in {BLOCKED!r}:
    sys.modules[name] = None
"""
DRIVER = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None
from darts_mim.onnx.ray_serve import main
main({args!r})
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _call(
    url: str, path: str, payload: dict | bytes | None = None, key: str | None = KEY
) -> tuple[int, dict, str | None]:
    """Status, JSON answer and the replica that answered."""
    data = payload if isinstance(payload, bytes | None) else json.dumps(payload).encode()
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    request = urllib.request.Request(url + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            status, body, replica = answer.status, answer.read(), answer.headers
    except urllib.error.HTTPError as err:
        status, body, replica = err.code, err.read(), err.headers
    return status, json.loads(body), replica.get("X-Darts-Mim-Replica")


def _request(model, rows: slice, n: int = 2, **more) -> dict:
    return {
        "n": n,
        "past_target": model["past"][rows].tolist(),
        "future_covariates": model["future"][rows, : 3 + max(n, 2)].tolist(),
        **more,
    }


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):  # noqa: F811 - test_service's fixture
    blocker = tmp_path_factory.mktemp("blocker")
    (blocker / "sitecustomize.py").write_text(textwrap.dedent(SITECUSTOMIZE))
    port = _free_port()
    args = [exported["path"], "--replicas", "2", "--port", str(port), "--threads", "1"]
    args += ["--api-key", KEY, "--max-body-mb", "0.01", "--max-horizon", "50"]
    args += ["--max-samples", "30", "--max-wait-ms", "5"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")]),
        "RAY_ADDRESS": "",  # a Ray of its own, not one this machine may run
        "RAY_USAGE_STATS_ENABLED": "0",
        "OMP_NUM_THREADS": "1",
    }
    code = textwrap.dedent(DRIVER.format(blocked=BLOCKED, args=args))
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # so that the test can end Ray's processes if all else fails
    )
    try:
        line = proc.stdout.readline()
        if not line.startswith("serving"):
            proc.kill()
            raise AssertionError(f"Ray Serve did not start: {line}{proc.stderr.read()[-4000:]}")
        yield proc, line.split()[3]  # serving PATH on http://HOST:PORT with N replicas
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the command removes Serve and stops its Ray
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.mark.slow
def test_ray_serve_two_replicas_answer_as_alone(exported, server):  # noqa: F811
    proc, url = server
    service = ForecastService(exported["path"], max_horizon=50, max_samples=30)
    assert _call(url, "/health", key=None)[:2] == (200, {"status": "ok"})
    assert _call(url, "/metadata")[:2] == (200, service.info())
    assert _call(url, "/metadata", key=None)[0] == 401

    # concurrent requests of several sizes, kinds and horizons: batched with others or not, each
    # answer is what ForecastService.forecast gives its request alone
    requests = [_request(exported, slice(i % 2, i % 2 + 1 + i // 8)) for i in range(16)]
    requests += [
        _request(
            exported,
            slice(0, 2),
            n=4,
            num_samples=1,
            random_state=0,
            predict_likelihood_parameters=False,
        ),
        _request(exported, slice(1, 2), n=1),
    ]
    requests += [
        _request(exported, slice(0, 2), n=3, num_samples=5, random_state=i) for i in (1, 2)
    ]

    def expected(request: dict) -> dict:
        out, kind = service.forecast(**request)
        return json.loads(json.dumps(service.payload(out, kind)))  # as sent: NaN is null

    alone = [expected(r) for r in requests]
    replicas: set[str] = set()
    with ThreadPoolExecutor(len(requests)) as pool:
        for _ in range(5):  # Ray's router picks replicas at random: rounds until both answered
            answers = list(pool.map(lambda r: _call(url, "/forecast", r), requests))
            for (status, body, replica), want in zip(answers, alone, strict=True):
                assert status == 200 and body == want  # bit for bit (JSON floats round-trip)
                replicas.add(replica)
            if len(replicas) == 2:
                break
    assert len(replicas) == 2 and None not in replicas, replicas

    # bad requests: the 400s of ForecastService.answer (and so of the asgi server), word for word
    past, future = exported["past"], exported["future"]
    bad = [
        {"n": 2, "past_target": past[:, :2].tolist()},
        {"n": 2, "past_target": past.tolist()},
        {"n": 3, "past_target": past.tolist(), "num_samples": 0},
        {"n": 2, "past": 1},
        {"n": 51, "past_target": past.tolist(), "future_covariates": future.tolist()},
    ]
    for request in bad:
        status, body, _ = _call(url, "/forecast", request)
        assert (status, body) == service.answer(json.dumps(request).encode()), request
        assert status == 400
    assert _call(url, "/forecast", b"{not json")[:2] == service.answer(b"{not json")
    status, body, _ = _call(
        url, "/forecast", {"n": 2, "past_target": np.zeros((300, 3, 4)).tolist()}
    )
    assert status == 413 and "more than 10485" in body["error"]
    assert _call(url, "/nothing")[:2] == (404, {"error": "No endpoint '/nothing'."})
    assert _call(url, "/forecast")[0] == 405  # GET
    assert _call(url, "/forecast", requests[0], key="wrong")[0] == 401

    # SIGTERM: the command removes the application and stops the Ray it started
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, proc.stderr.read()[-4000:]
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/health", timeout=5)


def test_batch_groups_by_key_and_answers_as_alone(exported):  # noqa: F811
    """What a replica runs on Serve's batch (no Ray needed): one ONNX call per batch key, sampling
    requests alone, every answer bit for bit its request's alone."""
    from darts_mim.onnx.ray_serve import _compute_grouped

    service = ForecastService(exported["path"], intra_op_num_threads=1)
    requests = [
        _request(exported, slice(0, 1)),
        _request(exported, slice(0, 2), n=3, num_samples=4, random_state=1),
        _request(exported, slice(1, 2), n=1),
        _request(exported, slice(0, 2)),
        _request(exported, slice(0, 2), n=3, num_samples=4, random_state=1),
        _request(exported, slice(1, 2)),
    ]
    alone = [service.forecast(**r)[0] for r in requests]
    calls = []
    compute = service.compute
    service.compute = lambda batch: calls.append(len(batch)) or compute(batch)
    together = _compute_grouped(service, [service.prepare(**r) for r in requests])
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_array_equal(a, b)
    assert sorted(calls) == [1, 1, 1, 3]  # the three n=2 forecasts in one call


def test_cli_engine_ray(monkeypatch):
    """``darts-mim serve --engine ray`` hands its options to the Ray Serve server, ``--workers``
    as replicas."""
    from darts_mim import cli
    from darts_mim.onnx import ray_serve

    seen = []
    monkeypatch.setattr(ray_serve, "run_from_args", seen.append)
    assert cli.main(["serve", "m.onnx", "--engine", "ray", "--workers", "3", "--threads", "1"]) == 0
    (args,) = seen
    assert (args.path, args.workers, args.threads) == ("m.onnx", 3, 1)
    assert ray_serve.config_from_args(args).max_batch == 64


def test_cli_and_module_start_the_same_number_of_replicas(monkeypatch):
    """``darts-mim serve --engine ray`` started 1 replica, ``python -m darts_mim.onnx.ray_serve``
    2 (the number the docs show): one default, :data:`RAY_REPLICAS`, for both and for
    ``build_app``/``run``; uvicorn keeps its 1 worker."""
    import inspect

    from darts_mim import cli
    from darts_mim.onnx import asgi, ray_serve
    from darts_mim.onnx.serve_options import RAY_REPLICAS

    assert RAY_REPLICAS == 2
    seen = []
    monkeypatch.setattr(ray_serve, "run_from_args", seen.append)
    monkeypatch.setattr(asgi, "run_from_args", seen.append)
    assert cli.main(["serve", "m.onnx", "--engine", "ray"]) == 0
    ray_serve.main(["m.onnx"])
    assert cli.main(["serve", "m.onnx"]) == 0
    cli_ray, module, uvicorn = seen
    assert cli_ray.workers == module.workers == RAY_REPLICAS
    assert uvicorn.workers == 1
    # and one port: Ray Serve's 8000 from both, where the CLI listened on uvicorn's 8080
    assert cli_ray.port == module.port == 8000
    assert uvicorn.port == 8080
    # and one thread count per replica, build_app's (the command lines let each replica use every
    # core while reserving one of Ray's CPUs); uvicorn divides the cores among its workers
    assert cli_ray.threads == module.threads == 1
    assert inspect.signature(ray_serve.build_app).parameters["threads"].default == 1
    assert uvicorn.threads is None
    for function, name in ((ray_serve.build_app, "num_replicas"), (ray_serve.run, "replicas")):
        assert inspect.signature(function).parameters[name].default == RAY_REPLICAS
