"""A minimal HTTP forecast service for an exported MIM model, on numpy and onnxruntime only.

For production use the ASGI server, :mod:`darts_mim.onnx.asgi` (``darts-mim serve``, the ``serve``
extra): the same requests and answers, with micro-batching, several workers, metrics, an API key
and graceful shutdown, built on :class:`ForecastService` below. This standard-library server stays
as the dependency-free fallback, for development and for images where not even that extra can be
installed; ``python -m darts_mim.onnx.service`` always runs it (never the ASGI one, so that what
runs does not depend on what happens to be installed).

For production processes without torch and without Darts (nor pandas or xarray): the service loads
the ONNX file once, then answers batched forecast requests, JSON arrays in and arrays out, with the
same forecast loop, sampling and input checks as :meth:`OnnxForecaster.predict_array
<darts_mim.onnx.runtime.OnnxForecaster.predict_array>` (both run :mod:`darts_mim.onnx.core`). It
imports only the standard library, numpy, onnxruntime and the numpy-only modules of
:mod:`darts_mim.onnx`, so installing darts-mim with ``pip install --no-deps`` beside ``numpy`` and
``onnxruntime`` is enough.

Run it::

    python -m darts_mim.onnx.service mim.onnx --host 127.0.0.1 --port 8080 [--threads 2]

Endpoints:

``GET /health``
    ``{"status": "ok"}``.
``GET /metadata``
    What requests need: ``input_chunk_length``, ``output_chunk_length``, ``n_components``, ``frame``
    ``[C, H, W]``, ``inputs`` and the covariates' component counts, the likelihood, and
    ``scaling``: ``null`` when the graph works on the model's (scaled) values, else which scalers
    the graph applies itself, so that requests and answers are in raw units (the service never
    scales).
``POST /forecast``
    Body ``{"n": 6, "past_target": [[[...]]]}``: ``past_target`` ``(B, input_chunk_length, D)`` or
    ``(B, input_chunk_length, C, H, W)``; optional ``past_covariates``, ``future_covariates``,
    ``static_covariates`` (shapes as ``predict_array`` takes them), ``num_samples``,
    ``random_state``, ``predict_likelihood_parameters``, ``batch_size``. Answer ``{"forecast":
    [...], "shape": [...], "kind": "forecast" | "samples" | "parameters"}`` (``parameter_names``
    too for parameters); NaN (always-missing components) is ``null``. Bad input is a 400 with
    ``{"error": message}``, the message of ``OnnxForecaster.predict_array``: a ``null`` (or
    ``NaN``) in the arrays is a gap, refused with the step, series and component of the first,
    except in the always-missing components. The arrays hold JSON numbers only (a string or a
    boolean is a 400 naming the field), and ``predict_likelihood_parameters`` is ``true``,
    ``false`` or ``null``.

Covariates are the graph's: for a model fitted with ``add_encoders`` the encoded columns follow the
user's (``/metadata`` names them), which the client computes (or serve with
:class:`~darts_mim.onnx.runtime.OnnxForecaster`, which computes them from the time index).

Requests are served concurrently (one thread per connection, HTTP/1.1 keep-alive); ONNX Runtime
runs concurrent ``session.run`` calls safely, each with ``--threads`` intra-op threads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import onnxruntime as ort

from darts_mim.integrity import FLOAT32_SAFE_INPUT, check_finite_forecasts, short_cause
from darts_mim.onnx import core
from darts_mim.onnx.format import read_metadata
from darts_mim.onnx.serve_options import positive_int
from darts_mim.onnx.session import open_session

_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
# Requests larger than this are refused before they are read (a 413): a batch of 256 windows of 12
# frames of 2x32x32 cells is about 60 MB of JSON.
MAX_BODY_BYTES = 256 * 1024 * 1024
_REQUEST_KEYS = {
    "n",
    "past_target",
    "past_covariates",
    "future_covariates",
    "static_covariates",
    "num_samples",
    "random_state",
    "predict_likelihood_parameters",
    "batch_size",
}


class ForecastService:
    """An exported model loaded once, answering forecast requests (thread-safe).

    Parameters
    ----------
    path
        The ``.onnx`` file written by ``MIMModel.to_onnx()``.
    providers
        ONNX Runtime execution providers; default the CPU.
    intra_op_num_threads
        Threads per ``session.run`` (``None``: onnxruntime's default, all cores).
    max_horizon
        The largest ``n`` a request may ask for (``None``: no limit), so that one request cannot
        hold the model for minutes.
    max_samples
        The largest ``num_samples`` a request may ask for (``None``: no limit).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        providers: Sequence[str] | None = None,
        intra_op_num_threads: int | None = None,
        max_horizon: int | None = None,
        max_samples: int | None = None,
    ):
        for name, limit in (("max_horizon", max_horizon), ("max_samples", max_samples)):
            if limit is not None and (not isinstance(limit, int) or limit < 1):
                raise ValueError(f"`{name}` must be a positive integer or None, got {limit!r}.")
        self.max_horizon, self.max_samples = max_horizon, max_samples
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No ONNX file at {path!r}.")
        options = ort.SessionOptions()
        if intra_op_num_threads is not None:
            options.intra_op_num_threads = int(intra_op_num_threads)
        # as OnnxForecaster: its checksum file first, a file that is not ONNX one clear error
        self.session = open_session(path, options, providers)
        self.path = path
        self.metadata = read_metadata(
            self.session.get_modelmeta().custom_metadata_map,
            path,
            [i.name for i in self.session.get_inputs()],
            parse_grid=False,
        )
        grid = self.metadata["grid"]
        self.frame = (len(grid["channels"]), int(grid["height"]), int(grid["width"]))
        self._dtypes = {i.name: _ORT_DTYPES[i.type] for i in self.session.get_inputs()}

    def info(self) -> dict[str, Any]:
        """What a client needs to build requests (the ``/metadata`` answer)."""
        meta = self.metadata
        covariates = {}
        for kind in ("past_covariates", "future_covariates"):
            if meta[kind] is not None:
                side = (meta.get("encoders") or {}).get(kind.removesuffix("_covariates"))
                covariates[kind] = {
                    "n_components": meta[kind]["n_components"],
                    "encoded_components": list(side["components"]) if side else [],
                }
        return {
            "input_chunk_length": meta["input_chunk_length"],
            "output_chunk_length": meta["output_chunk_length"],
            "output_chunk_shift": meta["output_chunk_shift"],
            "n_components": len(meta["components"]),
            "frame": list(self.frame),
            "inputs": meta["inputs"],
            "covariates": covariates,
            "likelihood": meta["likelihood"],
            "freq": meta.get("freq"),
            # Which scalers the graph applies itself (values in and out in raw units), or None.
            "scaling": meta.get("scaling"),
        }

    def _run(self, feeds: dict[str, np.ndarray | None]) -> np.ndarray:
        feeds = {
            k: np.ascontiguousarray(v, dtype=self._dtypes[k])
            for k, v in feeds.items()
            if k in self._dtypes
        }
        (out,) = self.session.run(["prediction"], feeds)
        return out.astype(np.float32, copy=False)

    def prepare(
        self,
        n: int,
        past_target: Any,
        past_covariates: Any = None,
        future_covariates: Any = None,
        static_covariates: Any = None,
        num_samples: int = 1,
        random_state: int | None = None,
        predict_likelihood_parameters: bool | None = None,
        batch_size: int = 256,
    ) -> PreparedRequest:
        """Check a request and shape its arrays, without running the graph.

        Takes the arguments of :meth:`forecast`; raises its ``ValueError`` for bad input.
        """
        meta = self.metadata
        self._check_limits(n, num_samples)
        likelihood = meta["likelihood"]
        samples = core.resolve_sampling(likelihood, num_samples, predict_likelihood_parameters)
        parameters = likelihood is not None and samples is None
        n = core.check_n(n, meta["output_chunk_length"], meta["output_chunk_shift"], parameters)
        arr, five_d, covariates = core.check_arrays(
            meta,
            self.frame,
            _array("past_target", past_target),
            n,
            past_covariates=_array("past_covariates", past_covariates),
            future_covariates=_array("future_covariates", future_covariates),
            static_covariates=_array("static_covariates", static_covariates),
        )
        core.check_random_state(random_state)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
        kind = "samples" if samples is not None else "parameters" if parameters else "forecast"
        return PreparedRequest(n, arr, five_d, covariates, samples, random_state, batch_size, kind)

    def _check_limits(self, n: Any, num_samples: Any) -> None:
        """Refuse a request larger than this server's limits (a 400, not minutes of work)."""
        limits = (("n", n, self.max_horizon, "--max-horizon"),)
        limits += (("num_samples", num_samples, self.max_samples, "--max-samples"),)
        for name, value, limit, option in limits:
            is_int = isinstance(value, int | np.integer) and not isinstance(value, bool)
            if limit is not None and is_int and value > limit:
                raise ValueError(
                    f"`{name}`={value} exceeds this server's limit of {limit} ({option}); ask for "
                    f"at most {limit} and send several requests, or start the server with a "
                    "larger limit."
                )

    def compute(self, requests: Sequence[PreparedRequest]) -> list[np.ndarray]:
        """Run checked requests as ONE forecast, their windows stacked along the series axis.

        Every window is forecast independently of the others (the graph has no operation across
        the batch axis), so each request gets what it would get alone; requests that draw samples
        are computed alone (their generator is theirs). All requests must share
        :attr:`PreparedRequest.batch_key`. Returns each request's raw forecast, for :meth:`finish`.
        """
        first = requests[0]
        if len(requests) > 1 and (
            first.batch_key is None or any(r.batch_key != first.batch_key for r in requests)
        ):
            raise ValueError("Only requests with the same batch_key are computed together.")
        if len(requests) == 1:
            arr, covariates = first.past_target, first.covariates
        else:
            arr = np.concatenate([r.past_target for r in requests])
            covariates = {
                k: None if v is None else np.concatenate([r.covariates[k] for r in requests])
                for k, v in first.covariates.items()
            }
        meta = self.metadata
        out = core.forecast(
            self._run,
            arr,
            first.n,
            input_chunk_length=meta["input_chunk_length"],
            output_chunk_length=meta["output_chunk_length"],
            output_chunk_shift=meta["output_chunk_shift"],
            likelihood=meta["likelihood"],
            **covariates,
            num_samples=first.samples,
            seed=first.random_state,
            batch_size=min(r.batch_size for r in requests),
        )
        bounds = np.cumsum([0] + [r.rows for r in requests])
        return [out[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]

    def finish(self, request: PreparedRequest, out: np.ndarray) -> np.ndarray:
        """Check a request's raw forecast (from :meth:`compute`) and shape it as asked."""
        meta = self.metadata
        # NaN or inf outside the always-missing components: corrupt weights or a diverged fit
        check_finite_forecasts(
            out,
            meta["missing_components"] or [],
            component_axis=2,
            components=meta["components"],
            source=f"The ONNX model {self.path}",
        )
        if request.five_d:
            out = out.reshape(out.shape[:2] + self.frame + out.shape[3:])
        return out

    def compute_each(self, requests: Sequence[PreparedRequest]) -> list[np.ndarray | Exception]:
        """:meth:`compute` then :meth:`finish`, each request's failure its own (what a batching
        server runs): a failed call is every request's error, a failed check only that
        request's."""
        try:
            raw = self.compute(requests)
        except Exception as err:  # every request of the call gets the failure
            return [err] * len(requests)
        results: list[np.ndarray | Exception] = []
        for request, out in zip(requests, raw, strict=True):
            try:
                results.append(self.finish(request, out))
            except Exception as err:  # this request's own failure
                results.append(err)
        return results

    def forecast(
        self,
        n: int,
        past_target: Any,
        past_covariates: Any = None,
        future_covariates: Any = None,
        static_covariates: Any = None,
        num_samples: int = 1,
        random_state: int | None = None,
        predict_likelihood_parameters: bool | None = None,
        batch_size: int = 256,
    ) -> tuple[np.ndarray, str]:
        """Forecast a batch, as :meth:`OnnxForecaster.predict_array` does.

        Returns
        -------
        tuple
            The float32 forecast and its kind: ``"forecast"``, ``"samples"`` (last axis) or
            ``"parameters"`` (last axis).
        """
        request = self.prepare(
            n,
            past_target,
            past_covariates=past_covariates,
            future_covariates=future_covariates,
            static_covariates=static_covariates,
            num_samples=num_samples,
            random_state=random_state,
            predict_likelihood_parameters=predict_likelihood_parameters,
            batch_size=batch_size,
        )
        (out,) = self.compute([request])
        return self.finish(request, out), request.kind

    def parse(self, body: bytes) -> dict[str, Any]:
        """A ``/forecast`` body as keyword arguments of :meth:`forecast`.

        Raises
        ------
        ValueError
            Not JSON, not an object with ``"n"`` and ``"past_target"``, or unknown fields (the
            message is the 400's ``error``).
        """
        try:
            request = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"The body is not JSON: {err}.") from None
        if not isinstance(request, dict) or "n" not in request or "past_target" not in request:
            raise ValueError('The body must be a JSON object with "n" and "past_target".')
        unknown = sorted(set(request) - _REQUEST_KEYS)
        if unknown:
            raise ValueError(f"Unknown request fields {unknown}; known: {sorted(_REQUEST_KEYS)}.")
        return request

    def payload(self, out: np.ndarray, kind: str) -> dict[str, Any]:
        """The JSON answer to a forecast: ``forecast`` (NaN as ``null``), ``shape``, ``kind``."""
        answer: dict[str, Any] = {"forecast": _to_json(out), "shape": list(out.shape), "kind": kind}
        if kind == "parameters":
            answer["parameter_names"] = self.metadata["likelihood"]["parameter_names"]
        return answer

    def answer(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """The HTTP status and JSON answer of a ``/forecast`` request body."""
        try:
            request = self.parse(body)
            out, kind = self.forecast(**request)
        except (ValueError, TypeError) as err:
            return HTTPStatus.BAD_REQUEST, {"error": str(err)}
        return HTTPStatus.OK, self.payload(out, kind)


@dataclass(frozen=True, eq=False)
class PreparedRequest:
    """A checked forecast request (:meth:`ForecastService.prepare`), ready to run."""

    n: int
    #: ``(B, input_chunk_length, D)`` float32
    past_target: np.ndarray
    #: whether the answer is in frames ``(B, n, C, H, W, ...)``
    five_d: bool
    #: the graph's covariates (``None`` for those it does not take)
    covariates: dict[str, np.ndarray | None]
    #: samples to draw, or ``None`` (a forecast or the likelihood's parameters)
    samples: int | None
    random_state: int | None
    batch_size: int
    #: ``"forecast"``, ``"samples"`` or ``"parameters"``
    kind: str

    @property
    def rows(self) -> int:
        """Windows (series) in the request."""
        return int(self.past_target.shape[0])

    @property
    def batch_key(self) -> tuple | None:
        """Requests with equal keys can be computed in one call (:meth:`ForecastService.compute`);
        ``None``: only alone (it draws samples)."""
        if self.samples is not None:
            return None
        static = self.covariates.get("static_covariates")
        return (self.n, self.kind, None if static is None else static.shape[1:])


def body_too_large(size: int | str, limit: int) -> str:
    """The 413's message of both servers, for a body of ``size`` bytes over ``limit``."""
    return f"The body has {size} bytes, more than {limit}; split it."


def _is_number(kind: type) -> bool:
    """Whether values of this type are numbers (``None``, a gap, counts as one: NaN)."""
    return kind is type(None) or (
        issubclass(kind, int | float | np.integer | np.floating)
        and not issubclass(kind, bool | np.bool_)
    )


def _array(name: str, value: Any) -> np.ndarray | None:
    """A request's numeric array as float32 (``None`` stays ``None``; ``null`` becomes NaN, a gap
    that :func:`core.check_arrays` refuses outside the always-missing components).

    Only numbers: a cast would read the string ``"7"`` as 7 and ``true`` as 1, a forecast from
    values the client never meant to send.

    Raises
    ------
    ValueError
        Naming the field, what was found and where.
    """
    if value is None:
        return None
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        return _as_float32(value)
    try:
        objects = np.array(value, dtype=object)
    except ValueError as err:  # nested lists numpy cannot even hold as objects
        raise ValueError(
            f"`{name}` must be a nested array of numbers, each level of one length: {err}."
        ) from None
    if objects.ndim == 0:
        raise ValueError(f"`{name}` must be a nested array of numbers, got {value!r:.60}.")
    flat = objects.reshape(-1)
    # The distinct element types: one pass in C, then a check per type, not per value.
    wrong = [kind for kind in set(map(type, flat)) if not _is_number(kind)]
    if wrong:
        first = int(np.argmax(np.fromiter((type(v) in wrong for v in flat), bool, flat.size)))
        bad = flat[first]
        where = list(map(int, np.unravel_index(first, objects.shape)))
        if isinstance(bad, list | tuple | dict):
            raise ValueError(
                f"`{name}` is ragged or nested too deep: at index {where} it holds {bad!r:.60} "
                "where a number belongs; send arrays whose lists have one length at each level."
            )
        what = (
            "a boolean"
            if isinstance(bad, bool | np.bool_)
            else "a string"
            if isinstance(bad, str)
            else f"a {type(bad).__name__}"
        )
        raise ValueError(
            f"`{name}` must hold numbers only (JSON numbers, or null for a gap): at index "
            f"{where} it holds {what}, {bad!r:.60}. Send the value as a number."
        )
    return _as_float32(objects.astype(np.float64))


def _as_float32(values: np.ndarray) -> np.ndarray:
    """``values`` as float32, or unchanged when a finite value lies beyond what float32 arithmetic
    holds: the cast would make it infinite, and :func:`core.check_arrays` would then ask to fill a
    gap that is not there instead of naming the value with the advice to scale, as
    ``OnnxForecaster.predict_array`` and ``MIMModel.predict`` do."""
    if values.dtype.kind == "f" and values.dtype.itemsize <= 4:
        return values.astype(np.float32, copy=False)  # float16 or float32: in range
    values = values.astype(np.float64, copy=False)  # integers too: the check reads floats
    with np.errstate(invalid="ignore"):
        huge = bool((np.abs(values) > FLOAT32_SAFE_INPUT).any())  # NaN compares False
    return values if huge else values.astype(np.float32, copy=False)


def _to_json(values: np.ndarray) -> list:
    """Nested lists; NaN (always-missing components) as ``None`` (JSON ``null``), since strict JSON
    has no NaN."""
    if np.isnan(values).any():
        return np.where(np.isnan(values), None, values.astype(object)).tolist()
    return values.tolist()


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive: a client reuses its connection for many requests (every answer has a length).
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm the body waits for the client's
    # delayed ACK of the headers (40 ms on Linux) on every kept-alive request.
    disable_nagle_algorithm = True
    service: ForecastService
    quiet = True

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == "/health":
            self._send(HTTPStatus.OK, {"status": "ok"})
        elif self.path == "/metadata":
            self._send(HTTPStatus.OK, self.service.info())
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"No endpoint {self.path!r}."})

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/forecast":
            self._send(HTTPStatus.NOT_FOUND, {"error": f"No endpoint {self.path!r}."})
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._send(HTTPStatus.LENGTH_REQUIRED, {"error": "Send a Content-Length header."})
            return
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body cannot be skipped on this connection
            self._send(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                {"error": body_too_large(length, MAX_BODY_BYTES)},
            )
            return
        body = self.rfile.read(length)
        try:
            status, payload = self.service.answer(body)
        except Exception as err:  # a bug or a runtime failure: answer it, keep serving
            self.log_error("forecast failed: %r", err)
            status, payload = (
                HTTPStatus.INTERNAL_SERVER_ERROR,
                {"error": f"{type(err).__name__}: {err}"},
            )
        self._send(status, payload)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # One line per request only with --verbose; errors (log_error) are always written.
        if not self.quiet:
            super().log_request(code, size)


class _Server(ThreadingHTTPServer):
    # The socket's listen backlog: socketserver's default of 5 resets connections when more
    # clients than that connect at once.
    request_queue_size = 128


def make_server(
    service: ForecastService, host: str = "127.0.0.1", port: int = 8080, quiet: bool = True
) -> ThreadingHTTPServer:
    """An HTTP server answering with ``service`` (``port=0``: any free port, see
    ``server.server_address``); call ``serve_forever()`` on it."""
    handler = type("Handler", (_Handler,), {"service": service, "quiet": quiet})
    server = _Server((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m darts_mim.onnx.service FILE [--host H] [--port P] [--threads T]``."""
    parser = argparse.ArgumentParser(
        prog="python -m darts_mim.onnx.service", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("path", help="the .onnx file written by MIMModel.to_onnx()")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 for any free port")
    # positive: onnxruntime takes 0 (or less) for its default, all cores, which is not what
    # --threads 0 reads as
    parser.add_argument(
        "--threads", type=positive_int, default=None, help="intra-op threads per request"
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    try:
        service = ForecastService(args.path, intra_op_num_threads=args.threads)
        server = make_server(service, args.host, args.port, quiet=not args.verbose)
    except Exception as err:  # a missing or bad file, a port in use: one line, as darts-mim serve
        parser.exit(2, f"{parser.prog}: error: {short_cause(err)}\n")
    host, port = server.server_address[:2]
    # The first line says where it listens (the load benchmark and the tests read it).
    print(f"serving {args.path} on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
