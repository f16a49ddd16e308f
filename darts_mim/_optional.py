"""Optional dependencies: import one on first use, or say in one line which extra installs it.

``import darts_mim`` imports none of the optional packages (zarr, dask, pysteps, matplotlib, the
server's); the modules that need one call :func:`require` when they are used::

    zarr = require("zarr", extra="lazy")

and a missing package is a :class:`MissingExtraError` (an ``ImportError``) whose message is one line
naming the install command, e.g. ``zarr is not installed; it is needed for big grids
(darts_mim.datasets.lazy). Install it with: pip install "darts-mim[lazy]"``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: What each extra is for, and the top-level packages it installs (as ``pyproject.toml`` lists them).
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "lazy": ("big grids (darts_mim.datasets.lazy)", ("zarr", "dask")),
    "radar": ("radar nowcasting (darts_mim.nowcast)", ("pysteps", "cv2")),
    "plot": ("pictures (darts_mim.plotting, the demo)", ("matplotlib",)),
    "netcdf": ("netCDF files", ("netCDF4",)),
    "serve": (
        "the production HTTP server (darts_mim.onnx.asgi, darts-mim serve)",
        ("starlette", "uvicorn", "prometheus_client"),
    ),
    "ray": (
        "the Ray Serve server (darts_mim.onnx.ray_serve, darts-mim serve --engine ray)",
        ("ray",),
    ),
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the ``pip install`` command."""


def install_command(extra: str) -> str:
    """The command that installs an extra, e.g. ``pip install "darts-mim[lazy]"``."""
    return f'pip install "darts-mim[{extra}]"'


def require(module: str, extra: str, purpose: str | None = None) -> ModuleType:
    """Import ``module``, or raise a one-line :class:`MissingExtraError` naming the extra.

    Parameters
    ----------
    module
        The module to import, e.g. ``"zarr"`` or ``"dask.array"``.
    extra
        The darts-mim extra that installs it (a key of :data:`EXTRAS`).
    purpose
        What needs it, for the message; default: the extra's description in :data:`EXTRAS`.

    Returns
    -------
    module
        The imported module.

    Raises
    ------
    MissingExtraError
        When the module (or one it imports) is not installed.
    """
    if extra not in EXTRAS:
        raise ValueError(f"Unknown extra {extra!r}; choose one of {sorted(EXTRAS)}.")
    try:
        return importlib.import_module(module)
    except ImportError as err:
        what = purpose or EXTRAS[extra][0]
        missing = getattr(err, "name", None) or module
        raise MissingExtraError(
            f"{missing} is not installed; it is needed for {what}. Install it with: "
            f"{install_command(extra)}"
        ) from err
