"""``benchmarks/gpu_check.sh --cpu-smoke`` runs every part of the GPU check end to end on a CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "GPU_CHECK_TIMEOUT": "300"}
    return subprocess.run(
        ["bash", str(SCRIPT), "--cpu-smoke", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=400,
    )


@pytest.mark.slow
def test_cpu_smoke_prints_every_table():
    done = _run()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "all parts ran." in out
    # the network and serving table, the fit table (three variants per case), the defaults check
    assert "| train fp32 steps/s (peak MiB) |" in out
    assert "eager)" in out  # the graphed step's column: no CUDA, so it ran eagerly
    assert out.count("| fp32 + CUDA graphs |") == 2
    assert "| cuda_graphs=True |" in out
    # on a CPU nothing is replayed and the two fits agree exactly
    assert "largest difference between the two forecasts: 0.00e+00" in out


def test_unknown_part_is_refused():
    done = _run("--parts", "fit,speed")
    assert done.returncode != 0
    assert "--parts takes network, fit, serve, defaults" in done.stderr
