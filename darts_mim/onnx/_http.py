"""The HTTP pieces both Starlette-based servers share: uvicorn's (:mod:`darts_mim.onnx.asgi`) and
Ray Serve's (:mod:`darts_mim.onnx.ray_serve`).

Kept in one place so that the two answer alike: the JSON answers and error words, the API key
check, the 413 before a body is read, and how a ``/forecast`` body is checked. Only Starlette is
imported (both extras install it; each server module calls
:func:`~darts_mim._optional.require` for it first, so that a missing one names the right extra).
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from darts_mim.onnx.service import ForecastService, PreparedRequest, body_too_large

# Parsing and checking a body this large on the event loop would stall other requests: it moves
# to a thread.
INLINE_BODY_BYTES = 64 * 1024


def json_response(
    payload: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON answer, written as the standard-library server writes it (strict JSON: NaN is
    already ``null``)."""
    return Response(
        json.dumps(payload), status_code=status, headers=headers, media_type="application/json"
    )


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """``{"error": message}`` with ``status``."""
    return json_response({"error": message}, status, headers)


def authorized(headers: Mapping[str, str], api_key: str | None) -> bool:
    """Whether a request's headers carry ``api_key`` (``Authorization: Bearer`` or
    ``X-API-Key``); always true without a key."""
    if api_key is None:
        return True
    scheme, _, token = headers.get("authorization", "").partition(" ")
    given = token.strip() if scheme.lower() == "bearer" else headers.get("x-api-key")
    # constant time: the comparison does not tell how much of a guess was right
    return given is not None and hmac.compare_digest(given.encode(), api_key.encode())


def unauthorized() -> Response:
    """The 401 of a missing or wrong API key."""
    return error_response(
        401,
        "Missing or wrong API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
        {"WWW-Authenticate": "Bearer"},
    )


def not_found(path: str) -> str:
    """The 404's message (the words of the standard-library server)."""
    return f"No endpoint {path!r}."


def not_allowed(method: str, path: str) -> str:
    """The 405's message."""
    return f"{method} is not allowed on {path!r}."


async def read_body(request: Request, limit: int) -> bytes | None:
    """The body, or ``None`` when it has more than ``limit`` bytes (a 413)."""
    length = request.headers.get("content-length")
    if length is not None:
        try:
            if int(length) > limit:
                return None
        except ValueError:
            pass  # the HTTP layer refuses a malformed Content-Length itself
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(request: Request, limit: int) -> Response:
    """The 413 of a body over ``limit`` bytes (:func:`read_body` returned ``None``)."""
    size = request.headers.get("content-length", "more than that")
    return error_response(413, body_too_large(size, limit))


def prepare(service: ForecastService, body: bytes) -> PreparedRequest:
    """A ``/forecast`` body, parsed and checked (``ValueError``/``TypeError``: a 400)."""
    return service.prepare(**service.parse(body))


async def prepare_async(service: ForecastService, body: bytes) -> PreparedRequest:
    """:func:`prepare`, in a thread when the body is large (see :data:`INLINE_BODY_BYTES`)."""
    if len(body) > INLINE_BODY_BYTES:
        return await asyncio.get_running_loop().run_in_executor(None, prepare, service, body)
    return prepare(service, body)


def failure(err: Exception) -> Response:
    """The answer to a ``/forecast`` that raised: bad input (``ValueError``, ``TypeError``) is a
    400 in the checks' words, anything else a 500 naming the error (the server keeps serving)."""
    if isinstance(err, ValueError | TypeError):
        return error_response(400, str(err))
    return error_response(500, f"{type(err).__name__}: {err}")
