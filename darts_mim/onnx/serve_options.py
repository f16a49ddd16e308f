"""The forecast server's command-line options and default limits, without its dependencies.

``darts-mim serve`` and ``python -m darts_mim.onnx.asgi`` take the same options; they live here so
that ``darts-mim --help`` works without the ``serve`` extra (Starlette, uvicorn), which only
:mod:`darts_mim.onnx.asgi` imports.
"""

from __future__ import annotations

import argparse

#: The environment variable holding the API key (``--api-key`` overrides it).
API_KEY_ENV = "DARTS_MIM_API_KEY"
#: Default limits of one request: its body, ``n`` (steps) and ``num_samples``.
MAX_BODY_MB = 256.0
MAX_HORIZON = 10_000
MAX_SAMPLES = 1_000


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (also the ``darts-mim`` command's)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the server's options (a model path, address, workers, batching, limits, API key)."""
    parser.add_argument("path", metavar="MODEL.onnx", help="the file written by MIMModel.to_onnx()")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="0 for any free port (one worker)")
    parser.add_argument(
        "--workers", type=positive_int, default=1, help="processes, each loading the model"
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="ONNX Runtime intra-op threads per call (default: all cores; with several workers, "
        "cores / workers)",
    )
    parser.add_argument(
        "--max-batch", type=positive_int, default=64, help="most series in one ONNX call"
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=2.0,
        help="how long a batch waits for more requests when more are expected (0: never)",
    )
    parser.add_argument(
        "--max-body-mb", type=float, default=MAX_BODY_MB, help="larger request bodies get a 413"
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
