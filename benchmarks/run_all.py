"""Run every benchmark in sequence (``make bench``); extra arguments (``--quick``, ``--threads N``) are
passed to each. Each benchmark runs in its own process so that one's memory does not skew the next."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = [
    "train_speed.py",
    "memory.py",
    "scaling.py",
    "darts_overhead.py",
    "bf16_accuracy.py",
]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    here = Path(__file__).resolve().parent
    failed = []
    for name in BENCHMARKS:
        print(f"\n## {name} {' '.join(args)}\n", flush=True)
        if subprocess.run([sys.executable, str(here / name), *args], check=False).returncode:
            failed.append(name)
    if failed:
        print(f"\nFailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
