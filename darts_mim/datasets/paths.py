"""Where the data files are: the project's data directory and looking a data set's file up in it.

:func:`default_data_dir` finds the shared data directory (the ``DARTS_MIM_DATA`` environment variable,
else ``<repo>/../shared/data``); the loaders of the real data sets look their files up there, in a
directory or at a path you pass. A missing file or directory raises :class:`DataNotFoundError`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

DATA_ENV_VAR = "DARTS_MIM_DATA"
"""Environment variable naming the data directory (the layout of ``shared/data``)."""


class DataNotFoundError(FileNotFoundError, ValueError):
    """A data file or directory does not exist.

    It is both a ``FileNotFoundError`` and a ``ValueError``, so either can be caught.
    """


def default_data_dir() -> Path:
    """The directory holding the project's shared data (layout of ``shared/data``).

    Resolved from the environment variable ``DARTS_MIM_DATA`` first, then ``<repo>/../shared/data``
    (next to the repository this package lives in).

    Returns
    -------
    pathlib.Path
        An existing directory.

    Raises
    ------
    DataNotFoundError
        When neither exists.
    """
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if path.is_dir():
            return path
        raise DataNotFoundError(
            f"{DATA_ENV_VAR}={env!r} is not a directory. Point it at a copy of the shared data "
            "(with gridded/, mnist/, series/) or unset it."
        )
    candidate = _shared_data_dir()
    if candidate is not None:
        return candidate
    raise DataNotFoundError(
        f"No data directory found: {DATA_ENV_VAR} is not set and {_SHARED} does not exist. "
        f"Set {DATA_ENV_VAR}=/path/to/data or pass the file's path explicitly; the loaders of "
        "darts_mim.datasets download their file instead (darts_mim.datasets.registry)."
    )


# darts_mim/datasets/paths.py -> <repo>/../shared/data (the project's machines; not in an install)
_SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _shared_data_dir() -> Path | None:
    """``<repo>/../shared/data`` when it exists (a clone on the project's machines), else ``None``."""
    return _SHARED if _SHARED.is_dir() else None


def _check_file(path: str | os.PathLike) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataNotFoundError(
            f"No such file: {p}. Check the path"
            + (" (it is a directory; pass a file inside it)." if p.is_dir() else ".")
        )
    return p


def _find_data_file(path: str | os.PathLike | None, names: Sequence[str], subdir: str) -> Path:
    """``path`` if it is a file, else the first of ``names`` inside ``path`` (or the data dir)."""
    if path is not None:
        p = Path(path).expanduser()
        if p.is_file():
            return p
        if not p.is_dir():
            raise DataNotFoundError(f"No such file or directory: {p}.")
        base = p
    else:
        base = default_data_dir()
    tried = []
    for directory in (base / subdir, base):
        for name in names:
            candidate = directory / name
            tried.append(str(candidate))
            if candidate.is_file():
                return candidate
    raise DataNotFoundError(
        f"Could not find {names[0]} in {base}; tried {', '.join(tried)}. Pass the file's path "
        f"explicitly or set {DATA_ENV_VAR}."
    )
