"""mkdocs hook: publish benchmarks/*_results.md, benchmarks/README.md and their pictures as pages of
the site (under benchmarks/), so that the benchmark tables live in one place, the benchmarks folder."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def on_files(files, config):
    for path in sorted(BENCHMARKS.iterdir()):
        if path.name == "README.md":
            uri = "benchmarks/scripts.md"
        elif path.name.endswith("_results.md") or path.suffix == ".png":
            uri = f"benchmarks/{path.name}"
        else:
            continue
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
