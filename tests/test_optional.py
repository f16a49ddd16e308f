"""Optional extras: ``import darts_mim`` imports none of them, and a missing one is a one-line error
naming its ``pip install "darts-mim[...]"`` command (darts_mim/_optional.py)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from darts_mim._optional import EXTRAS, MissingExtraError, install_command, require

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = ("zarr", "dask", "matplotlib", "pysteps", "cv2", "starlette", "uvicorn", "netCDF4")


def _imported_after(statement: str) -> list[str]:
    code = (
        f"import sys, json; {statement}; "
        f"print(json.dumps([m for m in {list(OPTIONAL)!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_darts_mim_imports_no_optional_package():
    assert _imported_after("import darts_mim") == []


def test_datasets_and_model_import_no_optional_package():
    # the loaders import Darts and torch, but still none of the extras
    assert _imported_after("import darts_mim.datasets, darts_mim.nowcast") == []
    # the model imports Lightning's torchmetrics, which imports matplotlib itself (darts-mim's own
    # code does not): that one is a dependency's choice, not ours
    imported = _imported_after("from darts_mim import MIMModel")
    assert [m for m in imported if m != "matplotlib"] == []


def _hide(monkeypatch, *modules: str) -> None:
    """Make ``import <module>`` fail as if the package were not installed."""
    for name in list(sys.modules):
        if any(name == m or name.startswith(m + ".") for m in modules):
            monkeypatch.delitem(sys.modules, name)
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)  # None in sys.modules: ModuleNotFoundError


def _one_line(err: BaseException, extra: str) -> str:
    message = str(err)
    assert "\n" not in message
    assert f'pip install "darts-mim[{extra}]"' in message
    return message


def test_require_names_the_install_command(monkeypatch):
    _hide(monkeypatch, "zarr")
    with pytest.raises(MissingExtraError) as info:
        require("zarr", extra="lazy")
    assert isinstance(info.value, ImportError)
    message = _one_line(info.value, "lazy")
    assert message.startswith("zarr is not installed")
    assert install_command("radar") == 'pip install "darts-mim[radar]"'
    with pytest.raises(ValueError, match="Unknown extra"):
        require("numpy", extra="nope")
    assert require("numpy", extra="lazy") is np


def test_open_grid_without_zarr(monkeypatch, tmp_path):
    from darts_mim.datasets import open_grid

    store = tmp_path / "grid.zarr"
    store.mkdir()
    _hide(monkeypatch, "zarr")
    with pytest.raises(MissingExtraError) as info:
        open_grid(store, "t2m")
    _one_line(info.value, "lazy")


def test_open_grid_without_dask(monkeypatch, tmp_path):
    from darts_mim.datasets import open_grid

    nc = tmp_path / "grid.nc"
    nc.write_bytes(b"")
    _hide(monkeypatch, "dask")
    with pytest.raises(MissingExtraError, match="dask is not installed") as info:
        open_grid(nc)
    _one_line(info.value, "lazy")


def test_plotting_without_matplotlib(monkeypatch):
    monkeypatch.delitem(sys.modules, "darts_mim.plotting", raising=False)
    _hide(monkeypatch, "matplotlib")
    with pytest.raises(MissingExtraError) as info:
        importlib.import_module("darts_mim.plotting")
    _one_line(info.value, "plot")


def test_nowcast_without_pysteps(monkeypatch):
    from darts_mim import nowcast

    _hide(monkeypatch, "pysteps")
    with pytest.raises(ImportError) as info:  # darts_mim.nowcast.import_pysteps's own message
        nowcast.motion_field(np.zeros((3, 8, 8)))
    _one_line(info.value, "radar")


def test_extras_in_pyproject():
    """Every extra the error messages name exists in pyproject.toml, `all` holds them all, and the
    packages of the lazy and plot extras are not mandatory dependencies."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert set(EXTRAS) <= set(extras)
    assert extras["all"] == [
        f"darts-mim[{','.join(['lazy', 'radar', 'plot', 'serve', 'netcdf', 'ray'])}]"
    ]
    mandatory = " ".join(project["dependencies"]).lower()
    for package in ("zarr", "dask", "matplotlib", "pysteps", "starlette"):
        assert package not in mandatory
    assert any(d.startswith("zarr") for d in extras["lazy"])
    assert any(d.startswith("dask") for d in extras["lazy"])
    assert any(d.startswith("matplotlib") for d in extras["plot"])
    assert any(d.startswith("pysteps") for d in extras["radar"])
