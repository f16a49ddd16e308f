"""Integrity of saved files and of forecasts: SHA-256 checksum files, and no silent NaN forecasts.

Every file darts-mim writes for a model (``MIMModel.save``'s ``MODEL.pt`` and ``MODEL.pt.ckpt``, the
command line's ``MODEL.pt.scaler``, ONNX exports) gets a checksum file beside it, ``<file>.sha256``, in
the format of GNU ``sha256sum`` (``<hex digest>  <file name>`` per line), so that a user can check a
copy with ``sha256sum -c MODEL.pt.sha256`` in its directory. Loading verifies it: a file whose bytes
changed after it was saved (a bad copy, a disk error, an interrupted transfer, an edit) is refused with
a ``ValueError`` that names it, instead of loading weights that forecast NaN or, worse, finite and
wrong values (torch reads its zip archives without checking their CRCs).

Files saved before checksums existed still load, with a warning (once per file and process) that
their integrity cannot be verified; a torch zip archive among them is still refused when its own CRCs
fail. Forecasts are checked too: a NaN or infinite value in a component that was not missing at every
training step is an error (:func:`check_finite_forecasts`), never a result.

This module imports only the standard library and numpy: the torch-free ONNX runtime uses it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.machinery
import logging
import mmap
import os
import re
import secrets
import sys
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "CHECKSUM_SUFFIX",
    "MODEL_FIX",
    "ChecksumError",
    "NonFiniteForecastError",
    "check_finite_forecasts",
    "check_model_forecasts",
    "checksum_path",
    "corrupt_pickle_error",
    "file_sha256",
    "read_checksums",
    "verify_checkpoint_file",
    "verify_checksums",
    "verify_model_files",
    "write_checksums",
    "write_model_checksums",
    "zip_crc_problem",
]

#: Suffix of the checksum file written beside a saved file: ``mim.pt`` -> ``mim.pt.sha256``.
CHECKSUM_SUFFIX = ".sha256"

_HEX = re.compile(r"[0-9a-fA-F]{64}")
_CHUNK = 1 << 20
# Files already warned about (no checksum file): the warning is given once per file and process.
_WARNED_UNVERIFIED: set[str] = set()


class ChecksumError(ValueError):
    """A saved file does not match the checksum saved with it (or its checksum file is unreadable)."""


def checksum_path(path: str | os.PathLike) -> str:
    """The checksum file of ``path``: ``path + ".sha256"``.

    Parameters
    ----------
    path
        The saved file (for a ``MIMModel``, its ``.pt`` file: the ``.pt.ckpt`` is listed in the same
        checksum file).
    """
    return os.fspath(path) + CHECKSUM_SUFFIX


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 digest of a file's bytes, as lowercase hex (read in 1 MiB chunks).

    Parameters
    ----------
    path
        The file to hash.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _format_line(name: str, digest: str) -> str:
    # GNU sha256sum escapes a name holding a backslash or a newline and marks the line with "\".
    if "\\" in name or "\n" in name:
        return "\\" + digest + "  " + name.replace("\\", "\\\\").replace("\n", "\\n") + "\n"
    return f"{digest}  {name}\n"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[str]:
    """A temporary file name beside ``path`` that replaces ``path`` when the block ends without an
    error (``os.replace``, atomic on one file system) and is removed when it raises: an interrupted
    write leaves the previous file intact, never a truncated one.

    The block creates the file with a plain ``open()``, so it gets the permissions of any new file
    (``0o666`` less the umask), as the model files beside it.

    Parameters
    ----------
    path
        The file to write.
    suffix
        The temporary name's ending (a writer that picks its format from the name, such as
        ``onnx.save``, may need the final extension).
    """
    directory, name = os.path.split(os.path.abspath(os.fspath(path)))
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_checksums(paths: Sequence[str | os.PathLike], manifest: str | None = None) -> str:
    """Hash files and write their checksum file atomically (temporary file + ``os.replace``).

    Parameters
    ----------
    paths
        The files to list, all in one directory; each is listed under its base name, so that
        ``sha256sum -c`` run in that directory checks them. The first one names the checksum file
        by default.
    manifest
        Where to write the checksum file. Default: :func:`checksum_path` of ``paths[0]``.

    Returns
    -------
    str
        The checksum file written.
    """
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError("write_checksums() needs at least one file.")
    manifest = checksum_path(paths[0]) if manifest is None else os.fspath(manifest)
    text = "".join(_format_line(os.path.basename(p), file_sha256(p)) for p in paths)
    with atomic_path(manifest) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    return manifest


def read_checksums(manifest: str | os.PathLike) -> dict[str, str]:
    """Read a checksum file in ``sha256sum`` format.

    Parameters
    ----------
    manifest
        The checksum file.

    Returns
    -------
    dict
        File name (as listed) -> lowercase hex digest, in the file's order.

    Raises
    ------
    ChecksumError
        When the file is not a readable ``sha256sum`` listing (itself corrupt).
    """
    manifest = os.fspath(manifest)
    entries: dict[str, str] = {}
    try:
        with open(manifest, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except UnicodeDecodeError as err:
        raise _bad_manifest(manifest, "it is not text") from err
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        escaped = line.startswith("\\")
        body = line[1:] if escaped else line
        digest, name = body[:64], body[66:]
        if not _HEX.fullmatch(digest) or body[64:66] not in ("  ", " *") or not name:
            raise _bad_manifest(manifest, f"line {number} is not '<sha256>  <file name>'")
        if escaped:
            name = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), name)
        entries[name] = digest.lower()
    if not entries:
        raise _bad_manifest(manifest, "it lists no file")
    return entries


def _bad_manifest(manifest: str, why: str) -> ChecksumError:
    return ChecksumError(
        f"The checksum file {manifest} is corrupt ({why}), so the files it covers cannot be "
        "verified. Restore it (and the files it lists) from a backup, or save the files again."
    )


def _listed_digest(entries: Mapping[str, str], manifest: str, path: str) -> str | None:
    """The digest listed for ``path``: under its base name, else (files renamed together with their
    checksum file) under the first entry's name plus ``path``'s suffix after the manifest's stem."""
    name = os.path.basename(path)
    if name in entries:
        return entries[name]
    stem = os.path.basename(manifest).removesuffix(CHECKSUM_SUFFIX)
    if name.startswith(stem):
        first = next(iter(entries))
        return entries.get(first + name[len(stem) :])
    return None


def verify_checksums(
    paths: Iterable[str | os.PathLike],
    manifest: str | os.PathLike | None = None,
    *,
    what: str = "file",
    fix: str = "save it again from the original",
    warn_unverified: bool = True,
) -> bool:
    """Check files against their checksum file before they are read.

    Parameters
    ----------
    paths
        The files to check; those that do not exist are skipped (their loader reports them). The
        first one names the checksum file by default.
    manifest
        The checksum file. Default: :func:`checksum_path` of the first of ``paths``.
    what
        What the files are, for the messages (e.g. ``"model"``).
    fix
        How to get an intact file, for the messages, a phrase that follows "Fix:"
        (e.g. ``"re-save the model with MIMModel.save()"``).
    warn_unverified
        Warn (once per file and process) when there is no checksum file, e.g. for files saved by
        darts-mim 0.5 or older.

    Returns
    -------
    bool
        ``True`` when every existing file matched, ``False`` when there is no checksum file.

    Raises
    ------
    ChecksumError
        A ``ValueError``: a file's SHA-256 digest differs from the one saved with it (the file was
        modified or corrupted after it was saved), a file is not listed, or the checksum file is
        unreadable.
    """
    paths = [os.fspath(p) for p in paths]
    if not paths:
        return True
    manifest = checksum_path(paths[0]) if manifest is None else os.fspath(manifest)
    existing = [p for p in paths if os.path.isfile(p)]
    if not os.path.isfile(manifest):
        if warn_unverified and existing:
            _warn_unverified(existing[0], manifest, what, fix)
        return False
    entries = read_checksums(manifest)
    for path in existing:
        expected = _listed_digest(entries, manifest, path)
        if expected is None:
            raise ChecksumError(
                f"The {what} file {path} is not listed in its checksum file {manifest}: it was not "
                "written by the save that wrote the checksums (a file left from an earlier save, or "
                f"copied in afterwards), so it cannot be trusted. Fix: {fix}, or restore the files "
                "from a backup."
            )
        if file_sha256(path) != expected:
            raise ChecksumError(
                f"The {what} file {path} is corrupt, truncated or was modified after it was saved: "
                f"its SHA-256 checksum does not match the one saved in {manifest} (a failed copy or "
                "transfer, a disk error, an interrupted save or an edit). Do not use it. Fix: "
                f"{fix}, or restore the files from a backup."
            )
    return True


def _warn_unverified(path: str, manifest: str, what: str, fix: str) -> None:
    key = os.path.abspath(path)
    if key in _WARNED_UNVERIFIED:
        return
    _WARNED_UNVERIFIED.add(key)
    warnings.warn(
        f"The {what} file {path} has no checksum file ({os.path.basename(manifest)}; saved by "
        "darts-mim 0.5 or older, or copied without it): its integrity cannot be verified. To add "
        f"one: {fix}.",
        UserWarning,
        stacklevel=_caller_stacklevel(),
    )


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that attributes a warning to the first frame outside darts_mim (the
    user's call), seen from the function calling ``warnings.warn``."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(2), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def zip_crc_problem(path: str | os.PathLike) -> str | None:
    """The first member of a zip archive (a torch-saved file) whose bytes fail its CRC-32.

    torch reads its zip archives without checking these CRCs; this does. Only a reliable sign of
    corruption for a file that opens as a zip archive.

    Parameters
    ----------
    path
        The file to check.

    Returns
    -------
    str or None
        The name of the first damaged member, or ``None`` when every CRC matches, or when the
        file is not a readable zip archive (a legacy torch file, or one whose directory is
        damaged: its loader reports that).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                try:
                    with archive.open(info) as member:
                        while member.read(_CHUNK):
                            pass
                except zipfile.BadZipFile:
                    return info.filename
    except (OSError, zipfile.BadZipFile, EOFError, ValueError, NotImplementedError):
        return None
    return None


# ------------------------------------------------------------------------- pickled globals
_UNSAFE_GLOBAL = re.compile(r"global `(.*?)` is not allow-listed", re.S)
_QUALNAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


def unsafe_global_of(err: BaseException) -> str | None:
    """The global named by Darts' "not allow-listed for safe loading" error, else ``None``.

    Parameters
    ----------
    err
        An exception raised while loading (its causes are searched too).
    """
    seen = 0
    while err is not None and seen < 10:
        match = _UNSAFE_GLOBAL.search(str(err))
        if match:
            return match.group(1)
        err, seen = err.__cause__ or err.__context__, seen + 1
    return None


def is_real_global(qualname: str) -> bool:
    """Whether a pickled global ``module.name`` can name a real object: a well-formed dotted name
    whose module exists and, when the module is already imported, has that attribute.

    Imports nothing: a module not imported yet is looked up on ``sys.path`` (a file that names one
    that exists is not garbled, only not allow-listed).

    Parameters
    ----------
    qualname
        The global's ``module.attribute`` name, as Darts' safe loader reports it.
    """
    if not _QUALNAME.fullmatch(qualname):
        return False
    parts = qualname.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module_name, attrs = ".".join(parts[:cut]), parts[cut:]
        module = sys.modules.get(module_name)
        if module is not None:
            obj: Any = module
            for attr in attrs:
                obj = getattr(obj, attr, None)
                if obj is None:
                    return False
            return True
    return _module_exists(".".join(parts[:-1]))


def _module_exists(name: str) -> bool:
    """Whether a module can be found, without importing it or its parents."""
    search: list[str] | None = None
    parts = name.split(".")
    for i in range(len(parts)):
        full = ".".join(parts[: i + 1])
        parent = sys.modules.get(".".join(parts[:i])) if i else None
        if parent is not None:
            search = list(getattr(parent, "__path__", []) or [])
        try:
            spec = importlib.machinery.PathFinder.find_spec(full, search)
        except (ImportError, ValueError):
            spec = None
        if spec is None and i == 0 and full in sys.builtin_module_names:
            return len(parts) == 1
        if spec is None:
            return False
        search = list(spec.submodule_search_locations or [])
        if i < len(parts) - 1 and not search:
            return False
    return True


def corrupt_pickle_error(path: str, err: BaseException, fix: str) -> ValueError | None:
    """A ``ValueError`` saying that a file is corrupt when loading it failed on a garbled global.

    Darts' safe loader answers an unknown global with advice to load with ``trusted=True`` or to
    allow-list the global: right for a valid file that uses a real class Darts does not know,
    wrong and unsafe for a corrupt file whose bytes garbled a class name.

    Parameters
    ----------
    path
        The file (or files) that failed to load, for the message.
    err
        The loading error.
    fix
        How to get an intact file, a phrase that follows "Fix:".

    Returns
    -------
    ValueError or None
        The error to raise instead, or ``None`` when ``err`` is not about a global that cannot
        exist (keep the original advice then).
    """
    qualname = unsafe_global_of(err)
    if qualname is None or is_real_global(qualname):
        return None
    return ValueError(
        f"The file {path} is corrupt: its pickled data refers to {qualname!r}, which is not the "
        f"name of any module or class (garbled bytes). Do not use it. Fix: {fix}, or restore the "
        "files from a backup."
    )


# ------------------------------------------------------------------------- MIMModel files
#: How to get intact MIMModel files again, for the messages.
MODEL_FIX = "save the original fitted model again with MIMModel.save()"


def write_model_checksums(path: str) -> str:
    """Write the checksum file of a model saved at ``path``: ``path + ".sha256"`` listing ``path``
    and, when it exists, its checkpoint ``path + ".ckpt"``.

    Parameters
    ----------
    path
        The ``.pt`` file written by Darts' ``save`` (in ``MIMModel.save``, the temporary copy that is
        then moved into place with the checksum file: the names listed are the base names).

    Returns
    -------
    str
        The checksum file written.
    """
    files = [path] + ([path + ".ckpt"] if os.path.isfile(path + ".ckpt") else [])
    return write_checksums(files)


def saved_weights_missing(path: str) -> bool:
    """Whether a saved model's weights ``path + ".ckpt"`` are missing although its checksum file
    lists them (the model was saved fitted; its weights were not copied along)."""
    ckpt = path + ".ckpt"
    manifest = checksum_path(path)
    if os.path.isfile(ckpt) or not os.path.isfile(manifest):
        return False
    try:
        entries = read_checksums(manifest)
    except ValueError:  # an unreadable checksum file: verify_model_files reports it
        return False
    return bool(entries) and _listed_digest(entries, manifest, ckpt) is not None


def verify_model_files(path: str) -> bool:
    """Verify a saved model's ``.pt`` and ``.pt.ckpt`` before they are unpickled.

    With a checksum file, both must match it. Without one (saved by darts-mim 0.5 or older), warn
    once that their integrity cannot be verified, and still refuse a zip archive whose CRCs fail.

    Parameters
    ----------
    path
        The model's ``.pt`` file.

    Returns
    -------
    bool
        Whether the files were verified against a checksum file.

    Raises
    ------
    ValueError
        A mismatch (:class:`ChecksumError`), or a damaged zip archive, naming the file.
    """
    files = [path, path + ".ckpt"]
    if verify_checksums(files, what="model", fix=MODEL_FIX):
        return True
    for file in files:
        _check_zip_crc(file, MODEL_FIX)
    return False


def verify_checkpoint_file(path: str) -> bool:
    """Verify a checkpoint before ``load_weights`` / ``load_weights_from_checkpoint`` reads it.

    A ``MODEL.pt.ckpt`` written by ``MIMModel.save`` is checked against ``MODEL.pt.sha256`` (with
    the one-time warning when that is missing beside an existing ``MODEL.pt``); Lightning's own
    checkpoints (``save_checkpoints=True``) have no checksum file and get the zip CRC check only.

    Parameters
    ----------
    path
        The checkpoint file.

    Returns
    -------
    bool
        Whether it was verified against a checksum file.
    """
    if path.endswith(".ckpt"):
        stem = path[: -len(".ckpt")]
        saved_pair = os.path.isfile(stem) or os.path.isfile(checksum_path(stem))
        if saved_pair and verify_checksums(
            [path], checksum_path(stem), what="model", fix=MODEL_FIX
        ):
            return True
    _check_zip_crc(path, MODEL_FIX)
    return False


def _check_zip_crc(path: str, fix: str) -> None:
    if not os.path.isfile(path):
        return
    member = zip_crc_problem(path)
    if member is not None:
        raise ValueError(
            f"The file {path} is corrupt: the CRC-32 of {member!r} inside it does not match (its "
            f"bytes changed after it was written). Do not use it. Fix: {fix}, or restore the "
            "files from a backup."
        )


def file_containing(paths: Sequence[str], qualname: str) -> str | None:
    """The first of ``paths`` whose bytes contain the module part of a pickled global's name
    (which file of a model holds a garbled name), else ``None``."""
    module = qualname.rpartition(".")[0] or qualname
    needle = module.encode("utf-8", "surrogatepass")
    for path in paths:
        try:
            with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
                if m.find(needle) != -1:
                    return path
        except (OSError, ValueError):
            continue
    return None


class _DropUnsafeGlobalLog(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "is not allow-listed for safe loading" not in record.getMessage()


@contextlib.contextmanager
def quiet_unsafe_global_log() -> Iterator[None]:
    """Keep Darts from logging its "not allow-listed" error (with its ``trusted=True`` advice) while
    a model loads: the error raised in its place says what applies, corrupt file or unknown class."""
    logger = logging.getLogger("darts.utils.serialization.base")
    drop = _DropUnsafeGlobalLog()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Where loaders' advice to unpickle without restrictions begins: never repeated for a corrupt file.
_ADVICE = (
    "The file can still be loaded",
    "This file can still be loaded",
    "If you fully trust",
    "trusted=True",
    "weights_only=False",
)


def short_cause(err: BaseException, limit: int = 300) -> str:
    """``"<type>: <message>"`` of a loading error on one line, cut before any advice to load the
    file without the safe unpickler's restrictions (wrong and unsafe for a corrupt file).

    Parameters
    ----------
    err
        The loading error.
    limit
        Longest message kept, in characters.
    """
    text = " ".join(_ANSI.sub("", str(err)).split())
    cut = min((i for i in (text.find(m) for m in _ADVICE) if i >= 0), default=len(text))
    text = text[:cut].rstrip(" ,.:;(-")
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


# ------------------------------------------------------------------------- forecasts
#: Largest input magnitude that float32 arithmetic squares without overflow (about 1.8e19): beyond
#: it, the network's products and an instance normalisation's variance can overflow to inf.
FLOAT32_SAFE_INPUT = float(np.sqrt(np.finfo(np.float32).max))

FLOAT32_RANGE_ADVICE = (
    f"beyond what float32 arithmetic holds (products of values above {FLOAT32_SAFE_INPUT:.2g} "
    "overflow). Scale the series (e.g. with Darts' Scaler) and forecast on the scaled values."
)
"""The end of the message that refuses inputs above :data:`FLOAT32_SAFE_INPUT` (torch and ONNX
alike: torch's network overflowed to NaN where ONNX Runtime's kernels returned a finite forecast)."""


class NonFiniteForecastError(ValueError):
    """A forecast with NaN or infinite values outside the always-missing components (see
    :func:`check_finite_forecasts`)."""


def check_finite_forecasts(
    values: Any,
    missing: Sequence[int] = (),
    n_components: int | None = None,
    *,
    component_axis: int,
    components: Sequence[str] | None = None,
    source: str = "The model",
) -> None:
    """Refuse forecasts with NaN or infinite values outside the always-missing components.

    Components that were NaN at every training step are forecast as NaN by design and skipped.
    Any other non-finite value means corrupt weights, a diverged fit, or inputs too large for
    float32: an error, never a result.

    Parameters
    ----------
    values
        The forecasts, a numpy array (or anything ``numpy.asarray`` takes).
    missing
        Indices of the always-missing target components.
    n_components
        The number of target components. When the component axis is a multiple of it (likelihood
        parameters, ``<component>_<parameter>`` in component-major order), each missing index
        covers its block of parameters. Default: the length of the component axis.
    component_axis
        The axis of ``values`` that holds the components.
    components
        Names of the target components, for the message.
    source
        What produced the forecasts, for the message.

    Raises
    ------
    NonFiniteForecastError
        A ``ValueError``, when a component that is not always missing has a NaN or infinite value.
    """
    values = np.asarray(values)
    if values.size == 0 or not np.issubdtype(values.dtype, np.inexact):
        return
    if np.isfinite(values).all():
        return
    width = values.shape[component_axis]
    n_components = n_components or width
    per = width // n_components if width % n_components == 0 else 1
    allowed = np.zeros(width, dtype=bool)
    for i in () if missing is None else np.asarray(missing, dtype=int).ravel():
        if 0 <= i * per < width:
            allowed[i * per : (i + 1) * per] = True
    other = tuple(a for a in range(values.ndim) if a != component_axis % values.ndim)
    bad = ~np.isfinite(values).all(axis=other) & ~allowed
    if not bad.any():
        return
    columns = np.flatnonzero(bad)
    names = [
        str(components[c // per])
        if components is not None and c // per < len(components)
        else str(c)
        for c in columns[:3]
    ]
    message = (
        f"{source} produced non-finite forecasts (NaN or inf) in {len(columns)} of {width} "
        f"output components that were not always missing in the training data (e.g. "
        f"{', '.join(names)}): its weights are corrupt or its fit diverged, or its inputs exceed "
        "what float32 holds (about 3.4e38, less once multiplied in the network). These forecasts "
        "are not usable. Load an intact copy of the model (or restore it from a backup), or "
        "re-fit it (a lower learning rate helps a diverging fit); check also that the inputs are "
        "finite, and scale large ones (e.g. with Darts' Scaler)."
    )
    raise NonFiniteForecastError(message)


def check_model_forecasts(forecasts: Any, layout: Any) -> None:
    """:func:`check_finite_forecasts` on what ``MIMModel.predict_from_dataset`` returns (which
    ``predict``, ``historical_forecasts`` and ``backtest`` all go through).

    Parameters
    ----------
    forecasts
        A sequence of ``TimeSeries`` (values ``(n, components, samples)``), or the tuple of
        ``values_only=True``: an array ``(forecasts, n, components, samples)`` first.
    layout
        The model's ``GridLayout`` (its ``missing`` components and grid size), or ``None``.
    """
    missing = tuple(getattr(layout, "missing", ()) or ())
    grid = getattr(layout, "grid", None)
    n_components = getattr(grid, "n_components", None)
    if isinstance(forecasts, tuple) and forecasts and isinstance(forecasts[0], np.ndarray):
        check_finite_forecasts(forecasts[0], missing, n_components, component_axis=2)
        return
    for forecast in forecasts if isinstance(forecasts, list | tuple) else [forecasts]:
        if hasattr(forecast, "all_values"):
            check_finite_forecasts(
                forecast.all_values(copy=False),
                missing,
                n_components,
                component_axis=1,
                components=list(forecast.components),
            )
