"""Run every tutorial top to bottom in fast mode (DARTS_MIM_FAST=1) and check its pictures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"

CASES = [
    pytest.param("01_quickstart_grid.py", ["01_quickstart_frames.png"], id="01_quickstart"),
    pytest.param(
        "02_multivariate_etth1.py",
        ["02_etth1_error_by_horizon.png", "02_etth1_ot_forecasts.png"],
        id="02_etth1",
    ),
    # The ONNX export traces the whole recurrent loop: over a minute on a busy 2-core machine.
    pytest.param(
        "03_onnx_serving.py",
        ["03_onnx_vs_torch.png", "03_mim_bike.onnx"],
        id="03_onnx",
        marks=pytest.mark.slow,
    ),
    pytest.param("04_video_and_radar.py", ["04_moving_mnist.png", "04_radar.png"], id="04_video"),
]


def test_every_tutorial_is_tested():
    scripts = sorted(p.name for p in TUTORIALS.glob("[0-9][0-9]_*.py"))
    assert scripts == sorted(case.values[0] for case in CASES)


@pytest.mark.parametrize(("script", "pictures"), CASES)
def test_tutorial_runs(script, pictures, tmp_path):
    env = dict(os.environ)
    env.update(DARTS_MIM_FAST="1", DARTS_MIM_OUT=str(tmp_path), MPLBACKEND="Agg")
    # A fresh clone has no shared data: fast mode must not need it.
    env.pop("DARTS_MIM_DATA", None)
    proc = subprocess.run(
        [sys.executable, str(TUTORIALS / script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    for name in pictures:
        path = tmp_path / name
        assert path.is_file() and path.stat().st_size > 1000, f"{script} did not write {name}"
    assert "wrote" in proc.stdout
