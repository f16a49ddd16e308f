"""The repository's structure: one CUDA-graph mechanism in the package, every document the code cites
is in the repository, docstrings free of GPU names and issue numbers, and a packaging licence that
setuptools takes without a deprecation."""

from __future__ import annotations

import importlib.util
import io
import re
import shutil
import subprocess
import sys
import tokenize
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "darts_mim"
# Where code and scripts cite documents.
CITING = ("darts_mim", "tests", "benchmarks", "tutorials")
SKIP_DIRS = {".git", ".venv", "__pycache__", "build", "dist", "node_modules"}


def _files(*suffixes: str, under: tuple[str, ...] = CITING) -> list[Path]:
    found = []
    for top in under:
        for path in sorted((ROOT / top).rglob("*")):
            parts = set(path.relative_to(ROOT).parts)
            if path.is_file() and path.suffix in suffixes and not parts & SKIP_DIRS:
                found.append(path)
    return found


def _code_only(text: str) -> str:
    """A module's code without its comments and string literals (docstrings may name anything)."""
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return " ".join(
        tok.string for tok in tokens if tok.type not in (tokenize.COMMENT, tokenize.STRING)
    )


# ------------------------------------------------------------------ one CUDA-graph mechanism
def test_the_package_has_one_cuda_graph_mechanism():
    # the whole-step graph of the GPU check lives with the benchmarks (benchmarks/_graphed_step.py)
    assert importlib.util.find_spec("darts_mim.nn.graphed_step") is None
    capture = re.compile(r"torch\.cuda\.graph\b|CUDAGraph\b|make_graphed_callables")
    users = sorted(
        str(path.relative_to(ROOT))
        for path in PACKAGE.rglob("*.py")
        if capture.search(_code_only(path.read_text(encoding="utf-8")))
    )
    assert users == ["darts_mim/nn/graphed_network.py"], users


# ------------------------------------------------------------------ cited documents
# A document name in capitals (MIM.md, DARTS.md, README.md) or a path to one (docs/mim.md,
# benchmarks/robustness_results.md). Lower-case bare names are mostly files a script writes
# (results.md) and are left out.
_DOC_NAME = re.compile(r"(?<![\w./-])([A-Z][A-Z0-9_-]*\.md)\b")
_DOC_PATH = re.compile(r"(?<![\w./-])((?:\.\./)*(?:[\w.-]+/)+[\w.-]+\.md)\b")


def _repo_names() -> set[str]:
    return {p.name for p in ROOT.rglob("*.md") if not set(p.relative_to(ROOT).parts) & SKIP_DIRS}


def cited_documents(text: str) -> tuple[set[str], set[str]]:
    """``(bare names, paths)`` of the Markdown documents ``text`` cites."""
    paths = set(_DOC_PATH.findall(text))
    names = set(_DOC_NAME.findall(text))
    return names, paths


def test_cited_documents_are_found():
    names, paths = cited_documents(
        "Notation follows ``MIM.md`` and docs/mim.md; see ../shared/docs/DARTS.md, results.md, "
        "`benchmarks/robustness_results.md`."
    )
    assert names == {"MIM.md"}
    assert paths == {"docs/mim.md", "../shared/docs/DARTS.md", "benchmarks/robustness_results.md"}


@pytest.mark.parametrize(
    "path",
    [p for p in _files(".py", ".sh") if p != Path(__file__).resolve()],  # not this file's examples
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_every_document_the_code_cites_is_in_the_repository(path):
    text = path.read_text(encoding="utf-8")
    names, paths = cited_documents(text)
    here = _repo_names()
    missing = sorted(name for name in names if name not in here)  # case matters: MIM.md
    for cited in paths:
        if cited.startswith("../") or "shared/" in cited:
            missing.append(cited)  # outside the repository: a fresh clone does not have it
        elif not ((ROOT / cited).is_file() or (path.parent / cited).is_file()):
            missing.append(cited)
    assert not missing, (
        f"{path.relative_to(ROOT)} cites {missing}, which this repository does not have: add the "
        "document (docs/ holds the project's own) or cite one that is here."
    )


def test_the_mim_document_is_in_the_repository():
    text = (ROOT / "docs" / "mim.md").read_text(encoding="utf-8")
    assert "Memory In Memory" in text and "arXiv:1811.07490" in text  # its source, kept
    assert "## MIM-N (non-stationary module)" in text


# ------------------------------------------------------------------ docstrings and comments
# Docstrings and comments say what the code does; measurements, GPU models and the project's issue
# numbers belong in the benchmarks docs and the history. Upstream bug reports ("Darts issues 1385")
# may be cited. Files whose owners are still moving theirs out are listed, to be emptied.
_GPU_NAMES = re.compile(r"\b(?:[AHBLV]100|H200|A10G|L4|T4|RTX ?\d{4}|GB200|MI\d{3}X?)\b")
_OUR_ISSUES = re.compile(r"\b[Ii]ssues? \d+\b")
PENDING: set[str] = set()  # files whose owners still have to move figures out


def _comments_and_docstrings(text: str) -> list[tuple[int, str]]:
    """``(line, text)`` of every comment and every string literal of a module."""
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type in (tokenize.COMMENT, tokenize.STRING):
            for i, line in enumerate(tok.string.splitlines()):
                out.append((tok.start[0] + i, line))
    return out


@pytest.mark.parametrize(
    "path",
    [p for p in _files(".py", under=("darts_mim",)) if str(p.relative_to(ROOT)) not in PENDING],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_docstrings_and_comments_name_no_gpu_model_or_issue_number(path):
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text.strip()}"
        for line, text in _comments_and_docstrings(path.read_text(encoding="utf-8"))
        if _GPU_NAMES.search(text)
        or (_OUR_ISSUES.search(text) and "Darts" not in text and "github" not in text.lower())
    ]
    assert not found, "move these to the benchmarks docs or the history:\n" + "\n".join(found)


# ------------------------------------------------------------------ packaging licence
def test_licence_is_an_spdx_expression_with_its_file():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = meta["project"]
    assert project["license"] == "Apache-2.0"  # PEP 639: a string, not a {text = ...} table
    assert project["license-files"] and all(
        list(ROOT.glob(pattern)) for pattern in project["license-files"]
    )
    assert "Apache License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert any(
        re.fullmatch(r"setuptools>=(\d+).*", req) and int(req.split(">=")[1].split(".")[0]) >= 77
        for req in meta["build-system"]["requires"]
    ), meta["build-system"]["requires"]  # the first setuptools that reads PEP 639 licences


def test_building_the_metadata_warns_of_no_deprecation(tmp_path):
    pytest.importorskip("setuptools", minversion="77")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "darts_mim").mkdir()
    (tmp_path / "darts_mim" / "__init__.py").write_text("")
    out = tmp_path / "out"
    out.mkdir()
    code = (
        "import sys\nfrom setuptools import build_meta\n"
        "print(build_meta.prepare_metadata_for_build_wheel(sys.argv[1]))"
    )
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", code, str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "deprecat" not in (done.stdout + done.stderr).lower(), done.stderr[-3000:]
    metadata = next(out.glob("*.dist-info")) / "METADATA"
    assert "License-Expression: Apache-2.0" in metadata.read_text(encoding="utf-8")
