"""Every ```python block of the documentation (docs/**/*.md) and of README.md runs.

The rules live in one place, ``.ci/docs_examples.py``, which the wheel check also runs (there from
the installed wheel): which pages (not docs/tutorials/, generated from tutorials/*.py, which
tests/test_tutorials.py runs; `make docs` checks they are current), how blocks are found, the
``# docs-test: needs-data`` / ``needs-gpu`` markers (a block that needs data or a GPU this machine
lacks is skipped with the rest of its page), and how a page runs: its blocks in order in one fresh
process, in a temporary working directory. Any other block that raises fails the test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import load_docs_runner

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


runner = load_docs_runner()


def test_docs_have_runnable_blocks():
    """The runner sees the guides' examples, and every tutorial has its rendered page."""
    names = {p.relative_to(ROOT).as_posix() for p in runner.pages(ROOT)}
    for page in ("README.md", "docs/getting-started.md", "docs/guides/grids.md"):
        assert page in names
    assert not any(name.startswith("docs/tutorials/") for name in names)
    for script in (ROOT / "tutorials").glob("[0-9][0-9]_*.py"):
        assert (DOCS / "tutorials" / f"{script.stem}.md").is_file(), script.name


def test_markers_are_known():
    for page in runner.pages(ROOT):
        for block in runner.python_blocks(page):
            assert not runner.unknown_markers(block), f"{page}: unknown marker"


def test_bundled_data_needs_no_marker():
    """The bundled data sets (bike flows, the KNMI radar event) need no data marker: a block that
    loads nothing else runs after a plain `pip install`."""
    readme = runner.python_blocks(ROOT / "README.md")
    radar = [b for b in readme if "load_radar()" in b]
    assert radar and not runner.needs(radar[0])
    plain = [b for b in readme if 'load_series("etth1")' in b]
    assert plain and runner.needs(plain[0]) == ["needs-data"]
    assert "tests/data" not in "".join(readme)  # nothing that exists only in a clone


def test_needs_data_means_no_data_source(monkeypatch, tmp_path):
    """needs-data blocks are skipped only without DARTS_MIM_DATA, ../shared/data and a mirror."""
    from darts_mim.datasets import paths

    block = "# docs-test: needs-data (something)\nx = 1\n"
    for var in ("DARTS_MIM_DATA", "DARTS_MIM_DATA_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(paths, "_shared_data_dir", lambda: None)
    assert "needs-data" in runner.missing(block)
    monkeypatch.setenv("DARTS_MIM_DATA", str(tmp_path / "nowhere"))
    assert runner.missing(block) is not None  # not a directory
    monkeypatch.setenv("DARTS_MIM_DATA", str(tmp_path))
    assert runner.missing(block) is None
    monkeypatch.delenv("DARTS_MIM_DATA")
    monkeypatch.setenv("DARTS_MIM_DATA_URL", "http://127.0.0.1:8000")
    assert runner.missing(block) is None
    monkeypatch.delenv("DARTS_MIM_DATA_URL")
    monkeypatch.setattr(paths, "_shared_data_dir", lambda: tmp_path)
    assert runner.missing(block) is None
    assert runner.missing("x = 1\n") is None


def test_runner_skips_the_rest_of_a_page_and_reports_failures(tmp_path):
    """A block that needs what the machine lacks stops its page (SKIPPED); a raising block fails
    its page with its traceback; what a block writes lands in the working directory."""
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nopen('written.txt', 'w').write('x')\n```\n"
        "```python\n# docs-test: needs-gpu\nraise SystemExit(2)\n```\n"
        "```python\nraise SystemExit(3)\n```\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), CUDA_VISIBLE_DEVICES="")  # no GPU
    (tmp_path / "a").mkdir()
    result = runner.run_page(page, tmp_path / "a", env=env, timeout=300)
    assert (result.status, result.ran, result.blocks) == ("SKIPPED", 1, 3), result.detail
    assert "needs-gpu" in result.detail
    assert (tmp_path / "a" / "written.txt").read_text() == "x"
    page.write_text(page.read_text().replace("# docs-test: needs-gpu\n", ""))
    (tmp_path / "b").mkdir()
    result = runner.run_page(page, tmp_path / "b", env=env, timeout=300)
    assert (result.status, result.ran) == ("FAILED", 1)
    assert "block 2 of 3 ('raise SystemExit(2)')" in result.detail, result.detail
    assert "SystemExit: 2" in result.detail


@pytest.mark.slow
@pytest.mark.parametrize("page", runner.pages(ROOT), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_page_blocks_run(page, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    result = runner.run_page(page, tmp_path, env=env, timeout=1500)
    if result.status == "FAILED":
        pytest.fail(f"{page.name}: {result.detail}")
    if result.status == "SKIPPED":
        pytest.skip(result.detail)


def test_getting_started_extras_match_pyproject():
    """Each extra's row in Getting started's table names what pyproject.toml installs (the `serve`
    row said "nothing more today" while the extra installs Starlette, uvicorn, prometheus-client)."""
    import re
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = extras["optional-dependencies"]
    rows = {}
    for line in (DOCS / "getting-started.md").read_text().splitlines():
        match = re.match(r"\| `([a-z]+)` \| ([^|]*) \|", line)
        if match:
            rows[match.group(1)] = match.group(2).lower()
    assert {"lazy", "radar", "plot", "serve", "netcdf"} <= set(rows)
    for extra, row in rows.items():
        for requirement in extras[extra]:
            if requirement.startswith("darts-mim["):
                continue
            # the distribution's first word: "opencv" of opencv-python-headless, "dask" of dask[array]
            name = re.split(r"[-\[<>=]", requirement)[0].lower()
            assert name in row, f"Getting started's `{extra}` row does not name {name}: {row!r}"
