"""The forecast servers' settings, command-line options and default limits, without their
dependencies.

``darts-mim serve``, ``python -m darts_mim.onnx.asgi`` and ``python -m darts_mim.onnx.ray_serve``
take the same options; they live here so that ``darts-mim --help`` works without the ``serve`` or
``ray`` extra (Starlette, uvicorn, Ray), which only the server modules import.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass

#: The environment variable holding the API key (``--api-key`` overrides it).
API_KEY_ENV = "DARTS_MIM_API_KEY"
#: Default limits of one request: its body, ``n`` (steps) and ``num_samples``.
MAX_BODY_MB = 256.0
MAX_HORIZON = 10_000
MAX_SAMPLES = 1_000
#: Ray Serve replicas unless told otherwise: ``python -m darts_mim.onnx.ray_serve --replicas``,
#: ``darts-mim serve --engine ray --workers``, ``build_app(num_replicas=...)`` and ``run(replicas=...)``.
RAY_REPLICAS = 2
#: uvicorn worker processes of ``darts-mim serve`` and ``python -m darts_mim.onnx.asgi`` unless told
#: otherwise.
UVICORN_WORKERS = 1
#: HTTP ports unless told otherwise: Ray Serve's own default for ``--engine ray`` (and
#: ``python -m darts_mim.onnx.ray_serve``), 8080 for uvicorn.
RAY_PORT = 8000
UVICORN_PORT = 8080
#: ONNX Runtime intra-op threads per Ray Serve replica unless told otherwise: each replica reserves
#: that many of Ray's CPUs, so a replica using every core would oversubscribe a node.
RAY_THREADS = 1
#: :data:`MAX_BODY_MB` in bytes (``darts_mim.onnx.service.MAX_BODY_BYTES``, without importing
#: onnxruntime here).
MAX_BODY_BYTES = int(MAX_BODY_MB * 2**20)


@dataclass
class ServeConfig:
    """A server's settings: every uvicorn worker builds its app from one
    (:func:`darts_mim.onnx.asgi.create_app`), every Ray Serve replica its deployment
    (:func:`darts_mim.onnx.ray_serve.build_app`).

    Parameters
    ----------
    path
        The ``.onnx`` file written by ``MIMModel.to_onnx()``.
    threads
        ONNX Runtime intra-op threads per call (``None``: onnxruntime's default, all cores). With
        several workers, ``workers * threads`` should not exceed the cores.
    max_batch
        Most series (windows) gathered into one ONNX call; a larger request runs alone, whole.
    max_wait_ms
        How long a batch waits for more requests when more are expected: fewer are waiting than
        the last call served (their clients are likely to be back at once), or some are still
        being received. A lone client never waits; 0 runs whatever is waiting at once. (On Ray
        Serve it is ``@serve.batch``'s ``batch_wait_timeout_s``: a batch waits up to this long once
        it has a request, a lone one too.)
    max_body_bytes
        Larger request bodies are refused with a 413 before they are read.
    api_key
        When set, every endpoint but ``/health`` needs ``Authorization: Bearer <key>`` or
        ``X-API-Key: <key>`` (else a 401).
    providers
        ONNX Runtime execution providers; default the CPU.
    max_horizon
        The largest ``n`` a request may ask for (larger ones get a 400); ``None``: no limit.
    max_samples
        The largest ``num_samples`` a request may ask for; ``None``: no limit.
    """

    path: str
    threads: int | None = None
    max_batch: int = 64
    max_wait_ms: float = 2.0
    max_body_bytes: int = MAX_BODY_BYTES
    api_key: str | None = None
    providers: list[str] | None = None
    max_horizon: int | None = MAX_HORIZON
    max_samples: int | None = MAX_SAMPLES

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {self.max_batch}.")
        if not (math.isfinite(self.max_wait_ms) and self.max_wait_ms >= 0):
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}.")
        if self.max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be positive, got {self.max_body_bytes}.")
        if self.api_key is not None:
            _check_api_key(self.api_key, "--api-key")


def _check_api_key(key: str, source: str) -> None:
    # An empty key is what `--api-key "$KEY"` passes when KEY is unset: taking it for "no key"
    # would serve every endpoint without authentication, the opposite of what was asked.
    if not key.strip():
        raise ValueError(
            f"The API key from {source} is empty, which would serve without authentication. "
            f"Pass a non-empty key, or leave --api-key out and unset {API_KEY_ENV} to serve "
            "without one."
        )


def resolve_api_key(api_key: str | None) -> str | None:
    """The API key a server requires: ``api_key`` (``--api-key``), else :data:`API_KEY_ENV`
    when it is set, else ``None`` (no authentication).

    Raises
    ------
    ValueError
        When the key given or the variable is empty (or blank): an unset shell variable passed
        as ``--api-key "$KEY"`` must not turn authentication off.
    """
    if api_key is not None:
        _check_api_key(api_key, "--api-key")
        return api_key
    key = os.environ.get(API_KEY_ENV)
    if key is not None:
        _check_api_key(key, f"${API_KEY_ENV}")
    return key


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (also the ``darts-mim`` command's)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _finite_float(text: str, zero_ok: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        kind = "a number >= 0" if zero_ok else "a positive number"
        raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0 (``--max-body-mb``: 0 was refused under the
    internal name ``max_body_bytes``)."""
    return _finite_float(text, zero_ok=False)


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0 (``--max-wait-ms``: ``nan`` was accepted)."""
    return _finite_float(text, zero_ok=True)


def default_workers(engine: str) -> int:
    """The processes an engine serves with when ``--workers`` (``--replicas``) is not given:
    :data:`RAY_REPLICAS` for ``"ray"``, else :data:`UVICORN_WORKERS`."""
    return RAY_REPLICAS if engine == "ray" else UVICORN_WORKERS


def default_threads(engine: str) -> int | None:
    """ONNX Runtime's intra-op threads per call when ``--threads`` is not given:
    :data:`RAY_THREADS` per replica for ``"ray"``; ``None`` (the server divides the cores among its
    workers) for uvicorn."""
    return RAY_THREADS if engine == "ray" else None


def default_port(engine: str) -> int:
    """The port an engine listens on when ``--port`` is not given: :data:`RAY_PORT` for
    ``"ray"``, else :data:`UVICORN_PORT`."""
    return RAY_PORT if engine == "ray" else UVICORN_PORT


def add_arguments(parser: argparse.ArgumentParser, engine: str = "uvicorn") -> None:
    """Add the server's options (a model path, address, workers, batching, limits, API key).

    ``engine="ray"`` (:mod:`darts_mim.onnx.ray_serve`): ``--replicas`` (stored as ``workers``)
    instead of ``--workers``, port 8000, and ``--ray-address``. ``engine="any"`` (``darts-mim
    serve``, whose ``--engine`` picks one): ``--workers`` and ``--port`` default to ``None``, which
    stand for the chosen engine's :func:`default_workers` and :func:`default_port`.
    """
    parser.add_argument("path", metavar="MODEL.onnx", help="the file written by MIMModel.to_onnx()")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    if engine == "ray":
        parser.add_argument(
            "--port",
            type=int,
            default=RAY_PORT,
            help=f"Ray Serve's HTTP port (default: {RAY_PORT})",
        )
        parser.add_argument(
            "--replicas",
            dest="workers",
            type=positive_int,
            default=RAY_REPLICAS,
            help="Ray Serve replicas (processes on the Ray cluster's nodes), each loading the model "
            f"(default: {RAY_REPLICAS})",
        )
        parser.add_argument(
            "--ray-address",
            default=None,
            help="a running Ray cluster ('auto': this machine's; default: $RAY_ADDRESS, else "
            "start Ray here)",
        )
    else:
        if engine == "any":
            port_help = (
                f"default: {UVICORN_PORT}; with --engine ray, {RAY_PORT} (Ray Serve's); 0 for any "
                "free port (one uvicorn worker)"
            )
        else:
            port_help = f"default: {UVICORN_PORT}; 0 for any free port (one worker)"
        parser.add_argument(
            "--port",
            type=int,
            default=None if engine == "any" else UVICORN_PORT,
            help=port_help,
        )
        if engine == "any":
            workers_help = (
                f"processes, each loading the model (default: {UVICORN_WORKERS}); with --engine "
                f"ray, Ray Serve replicas (default: {RAY_REPLICAS})"
            )
        else:
            workers_help = "processes, each loading the model"
        parser.add_argument(
            "--workers",
            type=positive_int,
            default=None if engine == "any" else UVICORN_WORKERS,
            help=workers_help,
        )
    uvicorn_threads = "all cores; with several workers, cores / workers"
    threads_help = {
        "ray": f"ONNX Runtime intra-op threads per call (default: {RAY_THREADS} per replica)",
        "any": f"ONNX Runtime intra-op threads per call (default: {uvicorn_threads}; with "
        f"--engine ray, {RAY_THREADS} per replica)",
    }.get(engine, f"ONNX Runtime intra-op threads per call (default: {uvicorn_threads})")
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=RAY_THREADS if engine == "ray" else None,
        help=threads_help,
    )
    parser.add_argument(
        "--max-batch", type=positive_int, default=64, help="most series in one ONNX call"
    )
    parser.add_argument(
        "--max-wait-ms",
        type=non_negative_float,
        default=2.0,
        help="how long a batch waits for more requests when more are expected (0: never)",
    )
    parser.add_argument(
        "--max-body-mb",
        type=positive_float,
        default=MAX_BODY_MB,
        help="larger request bodies get a 413",
    )
    parser.add_argument(
        "--max-horizon",
        type=positive_int,
        default=MAX_HORIZON,
        help="largest forecast length `n` a request may ask for (larger: a 400)",
    )
    parser.add_argument(
        "--max-samples",
        type=positive_int,
        default=MAX_SAMPLES,
        help="largest `num_samples` a request may ask for (larger: a 400)",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help="require `Authorization: Bearer KEY` or `X-API-Key: KEY` on every endpoint but "
        f"/health (default: ${API_KEY_ENV} when set)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    """The :class:`ServeConfig` of :func:`add_arguments`' options (``api_key`` ``None`` when not
    given: the servers then read ``DARTS_MIM_API_KEY`` themselves)."""
    return ServeConfig(
        path=args.path,
        threads=args.threads,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_body_bytes=int(args.max_body_mb * 2**20),
        max_horizon=args.max_horizon,
        max_samples=args.max_samples,
        api_key=args.api_key,
    )
