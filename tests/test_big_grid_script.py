"""``benchmarks/big_grid.py``: the cube it writes, and its --quick run end to end (slow)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("zarr")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "big_grid.py"


def _load():
    spec = importlib.util.spec_from_file_location("big_grid", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["big_grid"] = module
    spec.loader.exec_module(module)
    return module


def test_cube_is_written_chunk_by_chunk_and_reads_back(tmp_path):
    module = _load()
    cube = module.build_cube(tmp_path / "cube.zarr", 0.002, 16, 20, 8, "synthetic")
    from darts_mim.datasets import open_grid

    da = open_grid(tmp_path / "cube.zarr", "t2m")
    assert da.shape == (cube["n_steps"], 16, 20)
    assert da.chunks[0][0] == 8
    base = module._source("synthetic")
    # each block is a function of its position only: the store equals the blocks built again
    np.testing.assert_array_equal(da[8:16].values, module._block(base, 8, 16, 16, 20))
    # repetitions of the base differ (shifted and perturbed), so the cube is not periodic
    n0 = base.shape[0]
    assert not np.allclose(da[0].values, da[n0].values, atol=0.5)


@pytest.mark.slow
def test_quick_run_prints_the_table(tmp_path):
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--work", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| lazy, Zarr |" in out.stdout and "| in memory |" in out.stdout
    assert "lazy / in memory steps/s:" in out.stdout
    assert not (tmp_path / "cube.zarr").exists()  # deleted after the run
