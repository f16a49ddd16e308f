"""The results file of ``accuracy.py``, ``accuracy_results.md``: a run's sections replace those of the
same data sets (and tag); the other sections and the hand-written findings below :data:`MARKER` are kept.
"""

from __future__ import annotations

import json

from accuracy_common import DATASETS, Section

MARKER = "<!-- findings: hand-written, kept when the script re-runs -->"


HEAD = [
    "# Forecast accuracy on real data",
    "",
    "Written by `python benchmarks/accuracy.py`: each data set's section says how it was run. "
    "Re-running some data sets replaces their sections and keeps the others.",
    "",
]


def split_sections(lines: list[str]) -> dict[str, list[str]]:
    """The ``## name: ...`` sections of a results file, keyed by data-set name."""
    out: dict[str, list[str]] = {}
    key = None
    for line in lines:
        if line.startswith("## "):
            key = line[3:].split(":")[0].strip()
            out[key] = []
        if key is not None:
            out[key].append(line)
    return out


def extra_flags(args) -> str:
    """The --models / --tag / --mim-kwargs / --radar-lead-weights part of a run's command line,
    when given."""
    out = f" --models '{';'.join(args.models)}'" if args.models else ""
    out += f' --tag "{args.tag}"' if args.tag else ""
    out += f" --mim-kwargs '{json.dumps(args.mim_kwargs)}'" if args.mim_kwargs else ""
    weights = getattr(args, "radar_lead_weights", None)
    if weights is not None:  # they change the radar section's table: the line must say so
        out += f" --radar-lead-weights {','.join(f'{w:g}' for w in weights)}"
    return out


def write_results(args, sections: list[Section], total: float) -> None:
    """Write ``accuracy_results.md``: this run's sections replace those of the same data sets, the
    other data sets' sections and the hand-written findings below :data:`MARKER` are kept."""
    mode = "quick" if args.quick else ("paper" if args.paper else "standard")
    flags = f"--steps {args.steps}" if args.steps else "default steps"
    run_line = (
        f"Run: `python benchmarks/accuracy.py` ({mode} run, {flags}, `--seconds {args.seconds} "
        f"--split {args.split} --seeds {','.join(map(str, args.seeds))} --jobs {args.jobs} --only "
        f"{','.join(args.only)}{' --ablations' if args.ablations else ''}"
        f"{extra_flags(args)}`), torch threads: "
        f"{args.threads} per process, total wall time {total / 60:.1f} min; wall times are noisy "
        "when other jobs share the cores, steps = optimizer steps actually done."
    )
    results = args.out_dir / "accuracy_results.md"
    old, tail = [], []
    if results.is_file():
        old = results.read_text().splitlines()
        if MARKER in old:
            old, tail = old[: old.index(MARKER)], old[old.index(MARKER) :]
    kept = split_sections(old)
    for sec in sections:
        kept[sec.title.split(":")[0]] = [f"## {sec.title}", ""] + sec.lines + ["", run_line, ""]
    # data sets in the order of DATASETS, each one's tagged variants after it
    order = sorted(kept, key=lambda key: (DATASETS.index(key.split()[0]), key))
    body = [line for key in order for line in kept[key]]
    results.write_text("\n".join(HEAD + body + tail) + "\n")
