"""The production HTTP server for an exported MIM model: Starlette on uvicorn, micro-batched.

Serves the same requests and answers as the dependency-free :mod:`darts_mim.onnx.service` (which it
reuses: :class:`~darts_mim.onnx.service.ForecastService` loads the file, checks requests with
``OnnxForecaster.predict_array``'s words and forecasts through the numpy-only
:mod:`darts_mim.onnx.core`), and adds what a production process needs: concurrent requests gathered
into one ONNX call (dynamic micro-batching), Prometheus metrics, several worker processes, an API
key, request size limits and uvicorn's graceful shutdown. It needs the ``serve`` extra (Starlette,
uvicorn, prometheus-client: ``pip install "darts-mim[serve]"``); torch, Darts and pandas are still
not imported. ``python -m darts_mim.onnx.service`` stays the standard-library server, for
development or where the extra cannot be installed.

Run it::

    darts-mim serve mim.onnx --host 0.0.0.0 --port 8080 --workers 2 --threads 1
    python -m darts_mim.onnx.asgi mim.onnx --port 8080          # the same, without the CLI

Endpoints:

``GET /health``
    ``{"status": "ok"}`` once the model is loaded (the port opens only then), ``503`` while the
    server shuts down. Never needs the API key.
``GET /metadata``
    What requests need (:meth:`ForecastService.info <darts_mim.onnx.service.ForecastService.info>`).
``POST /forecast``
    The body and answer of :mod:`darts_mim.onnx.service`; bad input is a 400 with ``{"error":
    message}`` in ``OnnxForecaster.predict_array``'s words, a body over ``max_body_bytes`` a 413.
``GET /metrics``
    Prometheus text: ``darts_mim_requests_total{endpoint,status}``,
    ``darts_mim_request_seconds{endpoint}`` (latency histogram), ``darts_mim_batch_series`` and
    ``darts_mim_batch_requests`` (series and requests per ONNX call), ``darts_mim_in_flight``
    (forecast requests being answered). With several workers each process counts its own; set
    ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory to have every worker's ``/metrics`` report
    the sum over all of them (prometheus-client's multiprocess mode; ``darts-mim serve --workers N``
    does so itself with a temporary directory).

Micro-batching: ``/forecast`` requests are checked as they arrive, then queued for the process's
one inference thread. When that thread is free it takes the oldest request and every queued request
that can share its ONNX call (the same ``n`` and kind and static covariate shape), up to
``max_batch`` series. It first waits up to ``max_wait_ms`` when more requests are expected: fewer
are queued than the last call served (closed-loop clients send their next request as soon as they
have their answer), or some are still being received. A lone client therefore never waits, and
under load the queue fills while the previous call runs. The windows are stacked along the series
axis and split back afterwards; every window is forecast independently of the others, so an answer
is the same whether its request ran alone or with others (tested bit for bit). Requests that draw
samples run alone, so that the same ``random_state`` gives the same samples.

Scaling: ``--workers N`` starts N processes on one port (each loads the model; the kernel spreads
connections over them); past one machine, run the same command on each machine (or container) and
put any HTTP load balancer in front; replicas share nothing, and ``/health`` is the load
balancer's check (see the serving guide). :mod:`darts_mim.onnx.ray_serve` serves the same
endpoints as Ray Serve replicas instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

from darts_mim._optional import require

_PURPOSE = "the production HTTP server (darts_mim.onnx.asgi, darts-mim serve)"
for _module in ("starlette", "uvicorn", "prometheus_client"):
    require(_module, extra="serve", purpose=_PURPOSE)

import numpy as np  # noqa: E402
import prometheus_client as prom  # noqa: E402
import uvicorn  # noqa: E402
from prometheus_client import multiprocess  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.exceptions import HTTPException  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

from darts_mim.onnx import _http  # noqa: E402
from darts_mim.onnx.serve_options import (  # noqa: E402
    ServeConfig,
    add_arguments,
    config_from_args,
    resolve_api_key,
)
from darts_mim.onnx.service import ForecastService, PreparedRequest  # noqa: E402
from darts_mim.onnx.session import check_onnx_file  # noqa: E402

__all__ = ["ServeConfig", "create_app", "main", "serve"]

#: How ``serve`` passes its settings to worker processes (JSON of :class:`ServeConfig`).
CONFIG_ENV = "DARTS_MIM_SERVE_CONFIG"
_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.015, 0.025, 0.04, 0.06, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class _Metrics:
    """The Prometheus metrics of one app, in their own registry (several apps can share a
    process, as in the tests)."""

    def __init__(self) -> None:
        self.registry = prom.CollectorRegistry()
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # In multiprocess mode the values live in files and are collected from there.
        registry = None if self.multiprocess else self.registry
        self.requests = prom.Counter(
            "darts_mim_requests",
            "HTTP requests answered, by endpoint and status code.",
            ["endpoint", "status"],
            registry=registry,
        )
        self.latency = prom.Histogram(
            "darts_mim_request_seconds",
            "Time from a request's arrival to its answer, by endpoint.",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_series = prom.Histogram(
            "darts_mim_batch_series",
            "Series (windows) per ONNX forecast call.",
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.batch_requests = prom.Histogram(
            "darts_mim_batch_requests",
            "Requests per ONNX forecast call (micro-batching).",
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        gauge: dict[str, Any] = {"multiprocess_mode": "livesum"} if self.multiprocess else {}
        self.in_flight = prom.Gauge(
            "darts_mim_in_flight",
            "Forecast requests being answered.",
            registry=registry,
            **gauge,
        )

    def render(self) -> bytes:
        if self.multiprocess:
            registry = prom.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return prom.generate_latest(registry)
        return prom.generate_latest(self.registry)


@dataclass(eq=False)
class _Pending:
    request: PreparedRequest
    future: asyncio.Future


class MicroBatcher:
    """Gathers concurrent forecast requests into ONNX calls run on one inference thread.

    Parameters
    ----------
    service
        The loaded model.
    max_batch, max_wait_ms
        As :class:`ServeConfig` has them.
    metrics
        Where batch sizes are counted (optional).
    """

    def __init__(
        self,
        service: ForecastService,
        max_batch: int = 64,
        max_wait_ms: float = 2.0,
        metrics: _Metrics | None = None,
    ) -> None:
        self.service = service
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.metrics = metrics
        #: requests received but not yet queued: worth waiting for
        self.arriving = 0
        self._busy = False
        self._last_requests = 1
        self._queue: deque[_Pending] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the batching loop on the running event loop."""
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="darts-mim-onnx")
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Finish the queued requests, then stop (graceful shutdown)."""
        while (self._queue or self._busy) and self.running:
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def submit(self, request: PreparedRequest) -> np.ndarray:
        """Queue a checked request; returns its forecast (or raises its error)."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(request, future))
        self._wake.set()
        return await future

    def _take(self) -> list[_Pending]:
        """The oldest queued request and the queued ones that can share its call."""
        first = self._queue.popleft()
        batch = [first]
        key = first.request.batch_key
        if key is None:
            return batch
        rows = first.request.rows
        keep: deque[_Pending] = deque()
        while self._queue and rows < self.max_batch:
            item = self._queue.popleft()
            if item.request.batch_key == key and rows + item.request.rows <= self.max_batch:
                batch.append(item)
                rows += item.request.rows
            else:
                keep.append(item)
        keep.extend(self._queue)
        self._queue = keep
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            # Clients served by the last call are likely to be back at once, and requests still
            # being read will want to join: give them up to max_wait.
            if self.max_wait > 0:
                deadline = loop.time() + self.max_wait
                while loop.time() < deadline and self._worth_waiting():
                    await asyncio.sleep(min(0.0005, max(0.0, deadline - loop.time())))
            batch = self._take()
            self._busy = True
            self._last_requests = len(batch)
            try:
                if self.metrics is not None:
                    self.metrics.batch_requests.observe(len(batch))
                    self.metrics.batch_series.observe(sum(p.request.rows for p in batch))
                results = await loop.run_in_executor(self._executor, self._compute, batch)
            except Exception as err:  # the requests fail, the loop goes on
                results = [err] * len(batch)
            finally:
                self._busy = False
            for pending, result in zip(batch, results, strict=True):
                if pending.future.done():  # the client went away
                    continue
                if isinstance(result, BaseException):
                    pending.future.set_exception(result)
                else:
                    pending.future.set_result(result)

    def _worth_waiting(self) -> bool:
        first = self._queue[0].request
        if first.batch_key is None:
            return False
        queued = [p.request for p in self._queue if p.request.batch_key == first.batch_key]
        if sum(r.rows for r in queued) >= self.max_batch:
            return False
        return self.arriving > 0 or len(queued) < self._last_requests

    def _compute(self, batch: list[_Pending]) -> list[np.ndarray | BaseException]:
        return self.service.compute_each([p.request for p in batch])


def create_app(config: ServeConfig | None = None, service: ForecastService | None = None):
    """The Starlette app serving one model.

    Parameters
    ----------
    config
        The settings; default: from the environment (``DARTS_MIM_SERVE_CONFIG``, as
        :func:`serve` sets it for its workers, and ``DARTS_MIM_API_KEY``). This is the factory
        that ``uvicorn --factory darts_mim.onnx.asgi:create_app`` calls in each worker.
    service
        An already loaded model (default: load ``config.path``).

    Returns
    -------
    starlette.applications.Starlette
        The app; the model is loaded before it returns, the batching loop starts with the app's
        lifespan.
    """
    if config is None:
        raw = os.environ.get(CONFIG_ENV)
        if not raw:
            raise ValueError(f"Pass a ServeConfig or set {CONFIG_ENV} (JSON of its fields).")
        config = ServeConfig(**json.loads(raw))
    api_key = resolve_api_key(config.api_key)
    if service is None:
        service = ForecastService(
            config.path,
            providers=config.providers,
            intra_op_num_threads=config.threads,
            max_horizon=config.max_horizon,
            max_samples=config.max_samples,
        )
    metrics = _Metrics()
    batcher = MicroBatcher(service, config.max_batch, config.max_wait_ms, metrics)
    info = service.info()
    state = {"stopping": False}

    def count(endpoint: str, status: int, start: float) -> None:
        metrics.requests.labels(endpoint, str(status)).inc()
        metrics.latency.labels(endpoint).observe(time.perf_counter() - start)

    def authorized(request: Request) -> bool:
        return _http.authorized(request.headers, api_key)

    async def health(request: Request) -> Response:
        start = time.perf_counter()
        if state["stopping"] or not batcher.running:
            response = _http.json_response({"status": "unavailable"}, 503)
        else:
            response = _http.json_response({"status": "ok"})
        count("/health", response.status_code, start)
        return response

    async def metadata(request: Request) -> Response:
        start = time.perf_counter()
        response = _http.json_response(info) if authorized(request) else _http.unauthorized()
        count("/metadata", response.status_code, start)
        return response

    async def metrics_endpoint(request: Request) -> Response:
        start = time.perf_counter()
        if not authorized(request):
            response = _http.unauthorized()
            count("/metrics", response.status_code, start)
            return response
        # counted before rendering, so that a scrape sees itself
        metrics.requests.labels("/metrics", "200").inc()
        response = Response(metrics.render(), media_type=prom.CONTENT_TYPE_LATEST)
        metrics.latency.labels("/metrics").observe(time.perf_counter() - start)
        return response

    async def forecast(request: Request) -> Response:
        start = time.perf_counter()
        metrics.in_flight.inc()
        batcher.arriving += 1
        arriving = True
        try:
            if not authorized(request):
                response: Response = _http.unauthorized()
            else:
                body = await _http.read_body(request, config.max_body_bytes)
                if body is None:
                    response = _http.too_large(request, config.max_body_bytes)
                else:
                    try:
                        prepared = await _http.prepare_async(service, body)
                        batcher.arriving -= 1
                        arriving = False
                        out = await batcher.submit(prepared)
                        response = _http.json_response(service.payload(out, prepared.kind))
                    except Exception as err:  # a 400 for bad input, else a 500: keep serving
                        response = _http.failure(err)
        finally:
            if arriving:
                batcher.arriving -= 1
            metrics.in_flight.dec()
        count("/forecast", response.status_code, start)
        return response

    async def http_error(request: Request, exc: HTTPException) -> Response:
        # an unknown path (404) or method (405): JSON, as every other answer
        start = time.perf_counter()
        message = str(exc.detail)
        path = request.url.path
        if exc.status_code == 404:
            message = _http.not_found(path)
        elif exc.status_code == 405:
            message = _http.not_allowed(request.method, path)
        # unknown paths share one label: a scanner's many paths must not grow the metrics
        endpoint = path if path in known_paths else "other"
        response = _http.error_response(exc.status_code, message, exc.headers)
        count(endpoint, response.status_code, start)
        return response

    @asynccontextmanager
    async def lifespan(app):
        batcher.start()
        try:
            yield
        finally:
            # uvicorn calls this after the open requests are answered (graceful shutdown)
            state["stopping"] = True
            await batcher.stop()

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/metadata", metadata, methods=["GET"]),
        Route("/forecast", forecast, methods=["POST"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    known_paths = {route.path for route in routes}
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
    )
    app.state.service = service
    app.state.batcher = batcher
    app.state.config = config
    return app


class _Server(uvicorn.Server):
    """uvicorn's server, saying where it listens once it does (the tests and benchmark read the
    first line)."""

    def __init__(self, config: uvicorn.Config, path: str) -> None:
        super().__init__(config)
        self._path = path

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started and self.servers:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            print(f"serving {self._path} on http://{host}:{port}", flush=True)


def serve(
    config: ServeConfig,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    verbose: bool = False,
    timeout_graceful_shutdown: float | None = 30,
) -> None:
    """Serve ``config.path`` with uvicorn until SIGINT or SIGTERM.

    On either signal uvicorn stops accepting connections, answers the requests it has (queued
    batches included) within ``timeout_graceful_shutdown`` seconds, then stops.

    Parameters
    ----------
    config
        The app's settings.
    host, port
        Where to listen (``port=0``: any free port, with one worker only; the first line printed
        says which).
    workers
        Processes, each loading the model (uvicorn's supervisor restarts one that dies).
    verbose
        uvicorn's access log (one line per request) and info messages.
    timeout_graceful_shutdown
        Seconds to finish open requests on shutdown.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}.")
    log_level = "info" if verbose else "warning"
    common = dict(
        host=host,
        port=port,
        log_level=log_level,
        access_log=verbose,
        timeout_graceful_shutdown=timeout_graceful_shutdown,
        backlog=2048,
    )
    if workers == 1:
        app = create_app(config)
        server = _Server(uvicorn.Config(app, **common), config.path)
        server.run()
        if not server.started:
            raise SystemExit(3)
        return
    if port == 0:
        raise ValueError("With several workers pass a port (not 0): they share it.")
    # A file that is not ONNX (or fails its checksum): one error here, not one per worker.
    check_onnx_file(config.path)
    # Each worker is a fresh interpreter that imports create_app and calls it with these settings.
    os.environ[CONFIG_ENV] = json.dumps(asdict(config))
    multiproc_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiproc_dir = tempfile.TemporaryDirectory(prefix="darts-mim-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = multiproc_dir.name
    print(f"serving {config.path} on http://{host}:{port} with {workers} workers", flush=True)
    try:
        uvicorn.run("darts_mim.onnx.asgi:create_app", factory=True, workers=workers, **common)
    finally:
        if multiproc_dir is not None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            multiproc_dir.cleanup()


def run_from_args(args: argparse.Namespace) -> None:
    """Serve with the options of :func:`add_arguments`."""
    config = config_from_args(args)  # no key: DARTS_MIM_API_KEY, read by create_app
    if not os.path.isfile(config.path):
        raise FileNotFoundError(f"No ONNX file at {config.path!r}.")
    resolve_api_key(config.api_key)  # an empty key fails here, not in every worker
    serve(config, args.host, args.port, workers=args.workers, verbose=args.verbose)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m darts_mim.onnx.asgi FILE [--host H] [--port P] [--workers N] ...``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
