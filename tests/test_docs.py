"""Every ```python block of the documentation (docs/**/*.md) and of README.md runs.

The blocks of one page run in order in one fresh process (a page may build on its earlier blocks),
in a temporary working directory. A block that needs something a machine may lack says so in a
marker comment, which this test reads:

* ``# docs-test: needs-data`` — a real data set that is not bundled (``../shared/data``,
  ``DARTS_MIM_DATA``); without it the block and the rest of its page are skipped;
* ``# docs-test: needs-gpu`` — a CUDA GPU; skipped (with the rest of the page) without one.

Any other block that raises fails the test. The tutorial pages (docs/tutorials/) are generated from
tutorials/*.py, which tests/test_tutorials.py runs; `make docs` checks they are current.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MARKER = re.compile(r"^# docs-test: (needs-data|needs-gpu)\b", re.M)


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def pages() -> list[Path]:
    found = [ROOT / "README.md"]
    found += sorted(p for p in DOCS.rglob("*.md") if "tutorials" not in p.relative_to(DOCS).parts)
    return [p for p in found if python_blocks(p)]


def _data_available() -> bool:
    from darts_mim.datasets.paths import _shared_data_dir

    env = os.environ.get("DARTS_MIM_DATA")
    return bool(env and Path(env).is_dir()) or _shared_data_dir() is not None


def _gpu_available() -> bool:
    import torch

    return torch.cuda.is_available()


_DRIVER = r"""
import json, sys, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for i, code in enumerate(blocks):
    try:
        exec(compile(code, f"block {i + 1}", "exec"), namespace)
    except BaseException:
        print("DOCS-TEST-FAILED", i, flush=True)
        traceback.print_exc()
        sys.exit(1)
"""


def test_docs_have_runnable_blocks():
    """The test sees the guides' examples, and every tutorial has its rendered page."""
    names = {p.relative_to(ROOT).as_posix() for p in pages()}
    for page in ("README.md", "docs/getting-started.md", "docs/guides/grids.md"):
        assert page in names
    for script in (ROOT / "tutorials").glob("[0-9][0-9]_*.py"):
        assert (DOCS / "tutorials" / f"{script.stem}.md").is_file(), script.name


def test_markers_are_known():
    for page in pages():
        for block in python_blocks(page):
            for line in block.splitlines():
                if line.startswith("# docs-test:"):
                    assert MARKER.match(line), f"{page}: unknown marker {line!r}"


@pytest.mark.slow
@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_page_blocks_run(page, tmp_path):
    blocks = python_blocks(page)
    runnable = []
    for block in blocks:
        needs = MARKER.findall(block)
        if ("needs-data" in needs and not _data_available()) or (
            "needs-gpu" in needs and not _gpu_available()
        ):
            break  # later blocks may build on this one
        runnable.append(block)
    (tmp_path / "blocks.json").write_text(json.dumps(runnable))
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    # the README's multivariate example reads tests/data/ from the repository root
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER, "blocks.json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    if proc.returncode != 0:
        match = re.search(r"DOCS-TEST-FAILED (\d+)", proc.stdout)
        where = f"block {int(match.group(1)) + 1}" if match else "the page"
        first = runnable[int(match.group(1))].splitlines()[0] if match else ""
        pytest.fail(f"{page.name}, {where} ({first!r}) failed:\n{proc.stderr[-4000:]}")
    if len(runnable) < len(blocks):
        pytest.skip(f"{len(blocks) - len(runnable)} block(s) need data or a GPU this machine lacks")
