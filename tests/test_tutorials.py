"""Run every tutorial top to bottom and check its pictures.

Fast mode (``DARTS_MIM_FAST=1``) runs in the default suite. Normal mode runs as a newcomer's fresh clone
would: no ``../shared/data`` (``DARTS_MIM_DATA`` points nowhere, ``HOME`` is empty), so the tutorials
that read a shared data set fall back to the small copies bundled in the repository and must say so.
"""

from __future__ import annotations

import ast
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

# Normal mode from a fresh clone: (script, pictures, what it must print about the data it fell back
# to). Each takes over a minute on a busy 2-core machine, so all are slow tests (`make test-slow`).
FRESH_CLONE_CASES = [
    pytest.param(
        "01_quickstart_grid.py",
        ["01_quickstart_frames.png"],
        [],
        id="01_quickstart",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        "02_multivariate_etth1.py",
        ["02_etth1_error_by_horizon.png", "02_etth1_ot_forecasts.png"],
        ["NOTE: the full ETTh1", "2000-row copy bundled in tests/data", "1200 / 400 / 400"],
        id="02_etth1",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        "03_onnx_serving.py",
        ["03_onnx_vs_torch.png", "03_mim_bike.onnx"],
        [],
        id="03_onnx",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        "04_video_and_radar.py",
        ["04_moving_mnist.png", "04_radar.png"],
        ["NOTE (mnist not found", "NOTE (gridded/radar_knmi", "training on the first 16"],
        id="04_video",
        marks=pytest.mark.slow,
    ),
]


def test_every_tutorial_is_tested():
    scripts = sorted(p.name for p in TUTORIALS.glob("[0-9][0-9]_*.py"))
    assert scripts == sorted(case.values[0] for case in CASES)
    assert scripts == sorted(case.values[0] for case in FRESH_CLONE_CASES)


def _run(script: str, tmp_path: Path, fast: bool) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(DARTS_MIM_OUT=str(tmp_path), MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    env.pop("DARTS_MIM_FAST", None)
    if fast:
        env["DARTS_MIM_FAST"] = "1"
    # A fresh clone has no shared data: DARTS_MIM_DATA wins over ../shared/data beside this checkout,
    # and a directory that does not exist is what a clone without ../shared finds.
    env["DARTS_MIM_DATA"] = str(tmp_path / "no-shared-data")
    env["HOME"] = str(tmp_path / "home")
    return subprocess.run(
        [sys.executable, str(TUTORIALS / script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _check(proc: subprocess.CompletedProcess, script: str, tmp_path: Path, pictures) -> None:
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    for name in pictures:
        path = tmp_path / name
        assert path.is_file() and path.stat().st_size > 1000, f"{script} did not write {name}"
    assert "wrote" in proc.stdout


@pytest.mark.parametrize(("script", "pictures"), CASES)
def test_tutorial_runs(script, pictures, tmp_path):
    _check(_run(script, tmp_path, fast=True), script, tmp_path, pictures)


@pytest.mark.parametrize(("script", "pictures", "notes"), FRESH_CLONE_CASES)
def test_tutorial_runs_in_normal_mode_from_a_fresh_clone(script, pictures, notes, tmp_path):
    """Normal mode (not DARTS_MIM_FAST) without ../shared/data: sizes follow the data loaded."""
    proc = _run(script, tmp_path, fast=False)
    print(proc.stdout[-4000:])  # the tutorial's results, shown with `pytest -rP`
    _check(proc, script, tmp_path, pictures)
    for note in notes:  # it says that it ran on the small bundled copy, and what that means
        assert note in proc.stdout, f"{script} did not print {note!r}:\n{proc.stdout[-3000:]}"


@pytest.mark.parametrize("script", [case.values[0] for case in CASES])
def test_tutorial_sets_one_torch_thread_in_every_mode(script):
    """As `darts-mim demo` does: torch's default threads made tutorial 01 ~5x slower on 2 busy cores.

    The call must be at the top level of the script (not only under ``if FAST:``).
    """
    tree = ast.parse((TUTORIALS / script).read_text())
    calls = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and ast.unparse(node.value.func) == "torch.set_num_threads"
    ]
    assert [ast.unparse(c) for c in calls] == ["torch.set_num_threads(1)"], script


def test_cell_series_picture_has_a_y_label_with_units(tmp_path, monkeypatch):
    """The demo's cell_series.png labels its y axis with the quantity and its units."""
    import matplotlib

    matplotlib.use("Agg")
    from darts_mim import demo, plotting

    figures = {}

    def spy(*args, **kwargs):
        fig = plotting.plot_cell_series(*args, **kwargs)
        figures[Path(kwargs["path"]).name] = fig
        return fig

    monkeypatch.setattr(demo, "plot_cell_series", spy)
    demo.run_demo(out=tmp_path, quick=True, onnx=False)
    ax = figures["cell_series.png"].axes[0]
    assert ax.get_ylabel() in {"inflow (bikes / 30 min)", "outflow (bikes / 30 min)"}
    assert ax.get_xlabel() == "time"
