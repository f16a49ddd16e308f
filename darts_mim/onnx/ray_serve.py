"""An exported MIM model on Ray Serve: replicas on one machine or a Ray cluster, micro-batched.

The same requests and answers as the uvicorn server (:mod:`darts_mim.onnx.asgi`), on Ray Serve
instead: Ray starts ``num_replicas`` processes (replicas), on this machine or across the machines of
a Ray cluster, each loading the model into a
:class:`~darts_mim.onnx.service.ForecastService`; Ray's HTTP proxy spreads the requests over them
and restarts a replica that dies. Each replica gathers concurrent ``/forecast`` requests with Ray's
own :func:`ray.serve.batch` (up to ``max_batch`` series, waiting at most ``max_wait_ms``), splits
the gathered requests into ONNX calls by :attr:`PreparedRequest.batch_key
<darts_mim.onnx.service.PreparedRequest.batch_key>` (requests that draw samples run alone) and
runs them on one inference thread, so an answer is the same, bit for bit, as when its request runs
alone. It needs the ``ray`` extra (``pip install "darts-mim[ray]"``: ``ray[serve]``, which installs
Starlette and uvicorn too); torch, Darts and pandas are still not imported.

Run it (``--replicas`` defaults to 2, as ``--workers`` does with ``darts-mim serve --engine ray``)::

    python -m darts_mim.onnx.ray_serve mim.onnx --replicas 2 --port 8000 --threads 1
    darts-mim serve mim.onnx --engine ray --workers 2 --port 8000       # the same, from the CLI
    RAY_ADDRESS=auto python -m darts_mim.onnx.ray_serve mim.onnx ...    # on a running cluster

or, from Python, ``serve.run(build_app("mim.onnx", num_replicas=2))``.

Endpoints, as :mod:`darts_mim.onnx.asgi` has them: ``GET /health``, ``GET /metadata``, ``POST
/forecast`` (bad input a 400 with ``{"error": message}`` in the same words, a body over
``max_body_bytes`` a 413, an optional API key); every answer names its replica in the
``X-Darts-Mim-Replica`` header. There is no ``/metrics``: Ray exports its own Prometheus metrics
(requests, latencies, batch sizes: ``ray_serve_*``) from every node's metrics agent.

Without Ray, the same scale-out is several uvicorn servers (``darts-mim serve --workers N``, on one
or more machines) behind any HTTP load balancer (see the serving guide).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from darts_mim._optional import require

_PURPOSE = "the Ray Serve server (darts_mim.onnx.ray_serve, darts-mim serve --engine ray)"
for _module in ("ray.serve", "starlette"):
    require(_module, extra="ray", purpose=_PURPOSE)

import numpy as np  # noqa: E402
import ray  # noqa: E402
from ray import serve  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response  # noqa: E402

from darts_mim.onnx import _http  # noqa: E402
from darts_mim.onnx.serve_options import (  # noqa: E402
    MAX_BODY_BYTES,
    MAX_HORIZON,
    MAX_SAMPLES,
    RAY_PORT,
    RAY_REPLICAS,
    RAY_THREADS,
    ServeConfig,
    add_arguments,
    config_from_args,
    resolve_api_key,
)
from darts_mim.onnx.service import ForecastService, PreparedRequest  # noqa: E402
from darts_mim.onnx.session import check_onnx_file  # noqa: E402

__all__ = ["REPLICA_HEADER", "ForecastDeployment", "build_app", "main", "run"]

#: The response header naming the replica that answered (Ray's replica id).
REPLICA_HEADER = "X-Darts-Mim-Replica"
#: The Serve application's name (``serve status`` lists it).
APP_NAME = "darts-mim"
# Each route's method; other paths are a 404, other methods a 405 (asgi's answers).
_ROUTES = {"/health": "GET", "/metadata": "GET", "/forecast": "POST"}


@dataclass(frozen=True, eq=False)
class _Item:
    """A checked request in Serve's batch queue, with what it counts against ``max_batch``."""

    request: PreparedRequest
    #: its series, at most ``max_batch``: a larger request still runs (alone, whole), as in asgi,
    #: where Serve would refuse an item larger than the batch
    series: int


def _series(items: list[_Item]) -> int:
    """``@serve.batch``'s ``batch_size_fn``: a batch's size is its series, not its requests."""
    return sum(item.series for item in items)


@serve.deployment(name="ForecastDeployment")
class ForecastDeployment:
    """One replica: the model loaded once, answering HTTP requests as :mod:`darts_mim.onnx.asgi`.

    Parameters
    ----------
    config
        The settings (:class:`~darts_mim.onnx.serve_options.ServeConfig`); ``max_batch`` and
        ``max_wait_ms`` become ``@serve.batch``'s ``max_batch_size`` (in series) and
        ``batch_wait_timeout_s``.
    """

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.service = ForecastService(
            config.path,
            providers=config.providers,
            intra_op_num_threads=config.threads,
            max_horizon=config.max_horizon,
            max_samples=config.max_samples,
        )
        self.info = self.service.info()
        # One inference thread per replica, as asgi's MicroBatcher: calls do not compete for the
        # cores (each call has `threads` of them) and the event loop stays free to read requests.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="darts-mim-onnx")
        self.batch.set_max_batch_size(config.max_batch)
        self.batch.set_batch_wait_timeout_s(config.max_wait_ms / 1000)
        self.replica = serve.get_replica_context().replica_id.unique_id

    async def __call__(self, request: Request) -> Response:
        """Answer one HTTP request (Serve's ingress)."""
        response = await self._answer(request)
        response.headers[REPLICA_HEADER] = self.replica
        return response

    async def _answer(self, request: Request) -> Response:
        # the path below the application's route prefix
        path = request.scope["path"]
        root = request.scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        method = _ROUTES.get(path)
        if method is None:
            return _http.error_response(404, _http.not_found(path))
        if request.method != method:
            return _http.error_response(405, _http.not_allowed(request.method, path))
        if path == "/health":
            return _http.json_response({"status": "ok"})  # Ray drains a stopping replica itself
        if not _http.authorized(request.headers, self.config.api_key):
            return _http.unauthorized()
        if path == "/metadata":
            return _http.json_response(self.info)
        body = await _http.read_body(request, self.config.max_body_bytes)
        if body is None:
            return _http.too_large(request, self.config.max_body_bytes)
        try:
            # checked before it is queued: a bad request never reaches the model
            prepared = await _http.prepare_async(self.service, body)
            series = min(prepared.rows, self.config.max_batch)
            out = await self.batch(_Item(prepared, series))
            if isinstance(out, Exception):  # this request's own failure in a shared batch
                raise out
            return _http.json_response(self.service.payload(out, prepared.kind))
        except Exception as err:  # a 400 for bad input, else a 500: keep serving
            return _http.failure(err)

    # The sizes are placeholders: __init__ sets the configured ones on the replica.
    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.002, batch_size_fn=_series)
    async def batch(self, items: list[_Item]) -> list[np.ndarray | Exception]:
        """Forecast the requests Serve gathered; each gets its answer or its own error."""
        requests = [item.request for item in items]
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _compute_grouped, self.service, requests)


def _compute_grouped(
    service: ForecastService, requests: Sequence[PreparedRequest]
) -> list[np.ndarray | Exception]:
    """Serve's batch as ONNX calls: one per :attr:`PreparedRequest.batch_key` (same ``n``, kind
    and static covariate shape), each request with key ``None`` (it draws samples) alone."""
    groups: dict[Any, list[int]] = {}
    for i, request in enumerate(requests):
        key = request.batch_key
        groups.setdefault(("alone", i) if key is None else ("shared", key), []).append(i)
    results: list[np.ndarray | Exception] = [None] * len(requests)  # type: ignore[list-item]
    for members in groups.values():
        answers = service.compute_each([requests[i] for i in members])
        for i, answer in zip(members, answers, strict=True):
            results[i] = answer
    return results


def build_app(
    model_path: str | os.PathLike,
    *,
    num_replicas: int = RAY_REPLICAS,
    max_batch: int = 64,
    max_wait_ms: float = 2.0,
    threads: int | None = RAY_THREADS,
    api_key: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_horizon: int | None = MAX_HORIZON,
    max_samples: int | None = MAX_SAMPLES,
    providers: list[str] | None = None,
    max_ongoing_requests: int | None = None,
) -> serve.Application:
    """The Serve application of one exported model, ready for :func:`ray.serve.run`.

    Parameters
    ----------
    model_path
        The ``.onnx`` file written by ``MIMModel.to_onnx()``; every replica loads it, so on a
        cluster it must be at this path on every node (a shared file system, or the same image).
    num_replicas
        Replicas (processes, each loading the model); Ray places them on the cluster's nodes.
        Default :data:`~darts_mim.onnx.serve_options.RAY_REPLICAS` (2), as ``--replicas``.
    max_batch, max_wait_ms, max_body_bytes, max_horizon, max_samples, providers
        As :class:`~darts_mim.onnx.serve_options.ServeConfig` has them (``max_wait_ms`` is how long
        a batch waits for more requests once it has one: ``@serve.batch``'s
        ``batch_wait_timeout_s``).
    threads
        ONNX Runtime intra-op threads per call (default
        :data:`~darts_mim.onnx.serve_options.RAY_THREADS`, 1, as ``--threads``); each replica
        reserves this many of Ray's CPUs (1 for ``None``), so that Ray does not place more
        replicas on a node than it has cores.
    api_key
        When set, every endpoint but ``/health`` needs it (as asgi's ``--api-key``); default
        ``DARTS_MIM_API_KEY`` when set.
    max_ongoing_requests
        Requests a replica holds at once (Ray's router sends the others to another replica or
        queues them); default ``max_batch``, at least 5 (Ray's default), so that a batch can fill.

    Returns
    -------
    ray.serve.Application
        The bound deployment; ``serve.run(app, route_prefix="/")`` serves it.
    """
    if num_replicas < 1:
        raise ValueError(f"num_replicas must be at least 1, got {num_replicas}.")
    config = ServeConfig(
        path=os.fspath(model_path),
        threads=threads,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        max_body_bytes=max_body_bytes,
        # read here, in the driver: replicas may run on machines without the variable
        api_key=resolve_api_key(api_key),
        providers=providers,
        max_horizon=max_horizon,
        max_samples=max_samples,
    )
    # a missing file, one that is not ONNX or fails its checksum: fail here, not in every replica
    check_onnx_file(config.path)
    return ForecastDeployment.options(
        num_replicas=num_replicas,
        max_ongoing_requests=max_ongoing_requests or max(max_batch, 5),
        ray_actor_options={"num_cpus": threads or 1},
    ).bind(config)


def run(
    config: ServeConfig,
    host: str = "127.0.0.1",
    port: int = RAY_PORT,
    replicas: int = RAY_REPLICAS,
    verbose: bool = False,
    address: str | None = None,
) -> None:
    """Serve ``config.path`` on Ray Serve until SIGINT or SIGTERM.

    Connects to the Ray cluster at ``address`` (or ``RAY_ADDRESS``), else starts Ray on this
    machine (without its dashboard); starts Serve's HTTP proxy on ``host:port``, deploys the model
    and prints ``serving PATH on http://HOST:PORT with N replicas`` once every replica is ready. On
    a signal it removes the application (Serve answers the open requests first); a Ray it started
    is shut down too.

    Parameters
    ----------
    config
        The settings.
    host, port
        Where Serve's HTTP proxy listens (a port, not 0).
    replicas
        Replicas of the model; default :data:`~darts_mim.onnx.serve_options.RAY_REPLICAS` (2).
    verbose
        Ray's info messages, replica logs and access log.
    address
        A running Ray cluster (``"auto"``: the one on this machine).
    """
    if port == 0:
        raise ValueError("Ray Serve needs a port (not 0).")
    level = logging.INFO if verbose else logging.WARNING
    connect = address or os.environ.get("RAY_ADDRESS")
    if not ray.is_initialized():
        ray.init(
            address=address,
            include_dashboard=None if connect else False,
            logging_level=level,
            log_to_driver=verbose,
        )
    # the driver's own Serve messages (replicas log to Ray's log files)
    logging.getLogger("ray.serve").setLevel(level)
    logs = {"log_level": logging.getLevelName(level), "enable_access_log": verbose}
    serve.start(http_options={"host": host, "port": port}, logging_config=logs)
    kwargs = {k: v for k, v in asdict(config).items() if k != "path"}
    app = build_app(config.path, num_replicas=replicas, **kwargs)
    # SIGTERM (a container stop) as Ctrl-C: leave through the finally below
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        serve.run(app, name=APP_NAME, route_prefix="/", logging_config=logs)
        print(f"serving {config.path} on http://{host}:{port} with {replicas} replicas", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        if connect:
            serve.delete(APP_NAME)  # a shared cluster keeps Serve for its other applications
        else:
            serve.shutdown()
            ray.shutdown()


def run_from_args(args: argparse.Namespace) -> None:
    """Serve with the options of :func:`~darts_mim.onnx.serve_options.add_arguments`
    (``args.workers`` replicas)."""
    config = config_from_args(args)
    check_onnx_file(config.path)  # before Ray starts
    address = getattr(args, "ray_address", None)
    run(config, args.host, args.port, args.workers, verbose=args.verbose, address=address)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m darts_mim.onnx.ray_serve FILE [--replicas N] [--port P] ...``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, engine="ray")
    run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
