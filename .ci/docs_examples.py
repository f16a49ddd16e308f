"""Run every ```python block of README.md and docs/**/*.md: the one home of the docs-example rules.

    python .ci/docs_examples.py [--root DIR] [--installed] [PAGE ...]

Used by tests/test_docs.py (from the clone) and by .ci/wheel_check.sh (from an installed wheel,
``--installed``: darts_mim must come from site-packages). Pages are README.md and the Markdown files
under docs/, except docs/tutorials/ (rendered from tutorials/*.py, which tests/test_tutorials.py
runs); PAGE names some of them (paths relative to the root). Each page runs in a fresh Python
process, in a temporary working directory (so files a block writes land there), its blocks in
order in one namespace (a block may build on the page's earlier ones). The process is started with
``-I`` when this one was, so that an isolated run stays isolated.

A block that needs what a machine may lack says so in a first-line marker comment:

* ``# docs-test: needs-data (...)``: a real data set that is not bundled with the package; it runs
  when a data source is there: a ``DARTS_MIM_DATA`` directory, ``../shared/data`` beside the package
  (a clone on the project's machines) or a ``DARTS_MIM_DATA_URL`` mirror (data sets with a public
  URL would also download without one, but a test must not depend on the network);
* ``# docs-test: needs-gpu``: a CUDA GPU.

Without it, that block and the rest of its page are skipped (later blocks may build on it). The
check is made in the process that runs the blocks, with the darts_mim it imports. Any other block
that raises fails its page. The command prints each page's time and OK, SKIPPED or FAILED (with the
traceback), and exits 1 if a page failed. This file imports only the standard library.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^# docs-test: (needs-data|needs-gpu)\b", re.M)
"""A block's marker line; ``# docs-test:`` followed by anything else is an error."""

_BLOCK = re.compile(r"```python\n(.*?)```", re.S)
_RESULT = "docs-examples-result.json"


def python_blocks(page: Path) -> list[str]:
    """The ```python blocks of a Markdown page, in order."""
    return _BLOCK.findall(page.read_text(encoding="utf-8"))


def pages(root: Path = ROOT) -> list[Path]:
    """README.md and docs/**/*.md (not docs/tutorials/) that have a ```python block."""
    docs = root / "docs"
    found = [root / "README.md"]
    found += sorted(p for p in docs.rglob("*.md") if "tutorials" not in p.relative_to(docs).parts)
    return [p for p in found if p.is_file() and python_blocks(p)]


def needs(block: str) -> list[str]:
    """The block's markers: ``"needs-data"``, ``"needs-gpu"``."""
    return MARKER.findall(block)


def unknown_markers(block: str) -> list[str]:
    """``# docs-test:`` lines that are not a known marker."""
    return [
        line
        for line in block.splitlines()
        if line.startswith("# docs-test:") and not MARKER.match(line)
    ]


def data_available() -> bool:
    """A data source for the blocks marked needs-data: ``DARTS_MIM_DATA`` (a directory), the shared
    data beside the imported darts_mim, or a ``DARTS_MIM_DATA_URL`` mirror."""
    env = os.environ.get("DARTS_MIM_DATA")
    if env and Path(env).expanduser().is_dir():
        return True
    if os.environ.get("DARTS_MIM_DATA_URL"):
        return True
    from darts_mim.datasets.paths import _shared_data_dir

    return _shared_data_dir() is not None


def gpu_available() -> bool:
    """Whether torch sees a CUDA GPU (for the blocks marked needs-gpu)."""
    import torch

    return torch.cuda.is_available()


def missing(block: str) -> str | None:
    """Why ``block`` cannot run here (``"needs-data"``, ``"needs-gpu"``), or ``None``."""
    for need in needs(block):
        if need == "needs-data" and not data_available():
            return "needs-data: no DARTS_MIM_DATA, ../shared/data nor DARTS_MIM_DATA_URL"
        if need == "needs-gpu" and not gpu_available():
            return "needs-gpu: no CUDA GPU"
    return None


@dataclass
class PageResult:
    """What running one page gave."""

    page: Path
    status: str  # "OK", "SKIPPED" (some blocks skipped, none failed) or "FAILED"
    seconds: float
    blocks: int  # the page's blocks
    ran: int  # blocks that ran without an error
    detail: str = ""  # why blocks were skipped, or the failure (block, first line, traceback)
    darts_mim: str = ""  # the darts_mim the blocks imported


def run_page(
    page: Path,
    workdir: Path,
    *,
    env: dict[str, str] | None = None,
    installed: bool = False,
    isolated: bool | None = None,
    timeout: float = 1800,
) -> PageResult:
    """Run ``page``'s blocks in a fresh Python process with ``workdir`` as its working directory.

    Parameters
    ----------
    page
        A Markdown file.
    workdir
        An existing directory; what the blocks write lands there.
    env
        The process's environment (default: this one's), with ``MPLBACKEND=Agg`` added if unset.
    installed
        Fail unless darts_mim is imported from site-packages (the wheel check).
    isolated
        Start the process with ``-I``; default: as this process was.
    timeout
        Seconds before the page fails.
    """
    blocks = python_blocks(page)
    workdir = Path(workdir)
    (workdir / "docs-examples-blocks.json").write_text(json.dumps(blocks))
    env = dict(os.environ if env is None else env)
    env.setdefault("MPLBACKEND", "Agg")
    isolated = sys.flags.isolated if isolated is None else isolated
    cmd = [sys.executable, *(["-I"] if isolated else []), str(Path(__file__).resolve()), "--child"]
    cmd += ["--installed"] if installed else []
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as err:
        out = (err.stderr or b"")[-4000:]
        out = out.decode(errors="replace") if isinstance(out, bytes) else out
        return PageResult(
            page,
            "FAILED",
            time.perf_counter() - t0,
            len(blocks),
            0,
            f"timed out after {timeout} s\n{out}",
        )
    seconds = time.perf_counter() - t0
    result_file = workdir / _RESULT
    if not result_file.is_file():  # the process died before it could say (a crash, a kill)
        detail = (
            f"exit status {proc.returncode}, no result\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}"
        )
        return PageResult(page, "FAILED", seconds, len(blocks), 0, detail)
    result = json.loads(result_file.read_text())
    ran, where = result["ran"], result.get("darts_mim", "")
    if result.get("failed") is not None:
        i = result["failed"]
        first = blocks[i].splitlines()[0] if i < len(blocks) and blocks[i].strip() else ""
        detail = f"block {i + 1} of {len(blocks)} ({first!r}) failed:\n{result['traceback']}"
        return PageResult(page, "FAILED", seconds, len(blocks), ran, detail, where)
    if proc.returncode != 0:
        detail = f"exit status {proc.returncode}\n{proc.stderr[-4000:]}"
        return PageResult(page, "FAILED", seconds, len(blocks), ran, detail, where)
    if result.get("skipped"):
        which = f"block {ran + 1}" if ran + 1 == len(blocks) else f"blocks {ran + 1}-{len(blocks)}"
        detail = f"{which} of {len(blocks)} skipped ({result['skipped']})"
        return PageResult(page, "SKIPPED", seconds, len(blocks), ran, detail, where)
    return PageResult(page, "OK", seconds, len(blocks), ran, "", where)


def _child(installed: bool) -> int:
    """In the page's process: run the blocks of docs-examples-blocks.json, write the result."""
    blocks = json.loads(Path("docs-examples-blocks.json").read_text())
    result: dict = {"ran": 0, "failed": None, "skipped": None, "traceback": ""}

    def finish(code: int) -> int:
        Path(_RESULT).write_text(json.dumps(result))
        return code

    try:
        import darts_mim

        result["darts_mim"] = darts_mim.__file__
        if installed and "site-packages" not in darts_mim.__file__:
            raise RuntimeError(f"darts_mim is not the installed package: {darts_mim.__file__}")
    except BaseException:
        result["failed"], result["traceback"] = 0, traceback.format_exc()
        return finish(1)
    namespace = {"__name__": "__main__"}
    for i, code in enumerate(blocks):
        why = missing(code)
        if why is not None:
            result["skipped"] = why
            break
        try:
            exec(compile(code, f"block {i + 1}", "exec"), namespace)
        except BaseException:
            result["failed"], result["traceback"] = i, traceback.format_exc()
            return finish(1)
        result["ran"] = i + 1
    return finish(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pages", nargs="*", metavar="PAGE", help="pages, relative to the root")
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="the repository (default: this one)"
    )
    parser.add_argument(
        "--installed", action="store_true", help="darts_mim must come from site-packages"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.installed)
    root = args.root.resolve()
    chosen = [root / p for p in args.pages] if args.pages else pages(root)
    bad = [
        f"{page}: unknown marker {line!r}"
        for page in chosen
        for block in python_blocks(page)
        for line in unknown_markers(block)
    ]
    if bad:
        print("\n".join(bad), flush=True)
        return 1
    print(f"{len(chosen)} pages, {sum(len(python_blocks(p)) for p in chosen)} blocks", flush=True)
    failed, shown, t0 = 0, False, time.perf_counter()
    for page in chosen:
        with tempfile.TemporaryDirectory(prefix="docs-example-") as workdir:
            r = run_page(page, Path(workdir), installed=args.installed)
        name = page.relative_to(root).as_posix() if page.is_relative_to(root) else str(page)
        line = f"{r.status:7s} {r.seconds:6.0f} s  {name} ({r.ran}/{r.blocks} blocks)"
        print(line + (f": {r.detail}" if r.status == "SKIPPED" else ""), flush=True)
        if r.status == "FAILED":
            failed += 1
            print(r.detail, flush=True)
        if r.darts_mim and not shown:
            print(f"        (darts_mim from {r.darts_mim})", flush=True)
            shown = True
    print(
        f"{len(chosen) - failed} of {len(chosen)} pages passed in {time.perf_counter() - t0:.0f} s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
