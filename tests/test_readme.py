"""The README's runnable examples run as written (the quickstart, grids, xarray, multivariate)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import load_docs_runner

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
runner = load_docs_runner()


def _python_blocks() -> list[str]:
    return runner.python_blocks(README)


def test_readme_has_the_two_commands():
    text = README.read_text()
    assert "make demo" in text and "make test" in text


@pytest.mark.slow
@pytest.mark.parametrize(
    "index", [0, 1, 2, 3], ids=["quickstart", "grids", "xarray", "multivariate"]
)
def test_readme_example_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = _python_blocks()[index]
    why = runner.missing(code)  # the multivariate example downloads ETTh1 (or finds a copy)
    if why is not None:
        pytest.skip(why)
    # Keep Lightning's logs and checkpoints out of the repository.
    code = code.replace("random_state=0)", f"random_state=0, work_dir={str(tmp_path)!r})")
    namespace: dict = {}
    exec(compile(code, f"README block {index}", "exec"), namespace)
    if index == 0:
        assert namespace["frames"].shape == (6, 2, 14, 8)
    if index == 2:
        assert namespace["back"].dims == ("time", "channel", "lat", "lon")
        assert len(namespace["series"]) == 100
    if index == 3:
        assert namespace["errors"] > 0
