"""Opening an exported ONNX file: its integrity checked first (numpy and onnxruntime only).

Shared by :class:`~darts_mim.onnx.runtime.OnnxForecaster`, the standard-library service and the
servers' drivers (``asgi``, ``ray_serve``), so that every path refuses a corrupted file, a file that
fails its checksum and a file that is not ONNX in the same words.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import onnxruntime as ort

from darts_mim.integrity import short_cause, verify_checksums

__all__ = ["ONNX_FIX", "check_onnx_file", "open_session"]


#: How to get an intact ONNX file, for the messages (the phrase follows "Fix:" or "To add one:").
ONNX_FIX = "export it again from the original model with MIMModel.to_onnx() (or `darts-mim export`)"


def open_session(
    path: str,
    sess_options: ort.SessionOptions | None = None,
    providers: Sequence[Any] | None = None,
    fix: str = ONNX_FIX,
) -> ort.InferenceSession:
    """The ONNX Runtime session of an exported file, its integrity checked first.

    A checksum file beside it (``path + ".sha256"``, written by the export) is verified before the
    file is read: a corrupted graph can load and forecast. A file without one is read first and
    only then warned about (its integrity cannot be verified): a file that is not an ONNX model at
    all (a CSV, a saved ``MIMModel``) gets the one error that says so, not a checksum warning
    before it.

    Parameters
    ----------
    path
        The ``.onnx`` file (it exists).
    sess_options
        ONNX Runtime's session options.
    providers
        ONNX Runtime execution providers; default the CPU.
    fix
        How to get an intact file, for the messages.

    Returns
    -------
    onnxruntime.InferenceSession
        The session.

    Raises
    ------
    ValueError
        When the file does not match its checksum file, or ONNX Runtime cannot read it (not an ONNX
        file, truncated or corrupt).
    """
    verified = verify_checksums([path], what="ONNX", fix=fix, warn_unverified=False)
    try:
        session = ort.InferenceSession(
            path,
            sess_options=sess_options,
            providers=list(providers or ["CPUExecutionProvider"]),
        )
    except Exception as err:  # ORT raises its own exception types for unreadable files
        raise ValueError(
            f"{path!r} could not be read as an ONNX model (not an ONNX file, truncated or "
            f"corrupt): {short_cause(err)}. Pass a file written by MIMModel.to_onnx() or "
            f"`darts-mim export`; if it is one, {fix}."
        ) from err
    if not verified:
        verify_checksums([path], what="ONNX", fix=fix)  # no checksum file: its warning, once
    return session


def check_onnx_file(path: str | os.PathLike, fix: str = ONNX_FIX) -> None:
    """Fail as :func:`open_session` fails (a missing file, a checksum mismatch, a file that is not
    ONNX), with graph optimizations off: what a server's driver checks before it starts workers or
    replicas, so that the error comes once, in the driver, instead of from every process.

    Raises
    ------
    FileNotFoundError
        When there is no file at ``path``.
    ValueError
        As :func:`open_session`.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No ONNX file at {path!r}.")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3  # errors only: the session is thrown away
    open_session(path, options, fix=fix)
