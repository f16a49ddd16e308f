"""How a training step's time and memory grow with grid size, sequence length, depth and batch.

One factor varies at a time around a base configuration (1 channel, 32x32 grid, 2 layers of 16, 3x3
kernels, batch 2, 4 + 4 frames). Each point runs in its own subprocess (peak RSS is per process).
Prints a markdown table and writes ``benchmarks/scaling.png``.

Usage: ``python benchmarks/scaling.py [--quick] [--threads N] [--plot PATH]``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from _common import Config, markdown_table, run_child

BASE = Config("base", 1, 32, 32, (16, 16), 3, 1, 2, 4, 4)


def sweeps(quick: bool) -> dict[str, list[tuple[object, Config]]]:
    grids = [16, 32, 64] if quick else [16, 32, 64, 128]
    lengths = [4, 8] if quick else [4, 8, 16]
    layers = [1, 2] if quick else [1, 2, 4]
    batches = [1, 4] if quick else [1, 4, 16]
    rep = dataclasses.replace
    return {
        "grid side": [(g, rep(BASE, height=g, width=g)) for g in grids],
        "frames in + out": [(2 * n, rep(BASE, t_in=n, n_out=n)) for n in lengths],
        "layers": [(n, rep(BASE, num_hidden=(16,) * n)) for n in layers],
        "batch": [(b, rep(BASE, batch=b)) for b in batches],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer and smaller points")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--plot", default=str(Path(__file__).with_name("scaling.png")))
    args = parser.parse_args(argv)
    results: dict[str, list[tuple[object, dict]]] = {}
    rows = []
    for factor, points in sweeps(args.quick).items():
        results[factor] = []
        first = None
        for value, cfg in points:
            res = run_child(cfg, threads=args.threads, repeats=1)
            first = first or res
            results[factor].append((value, res))
            rows.append(
                [
                    factor,
                    value,
                    res["sec"],
                    res["sec"] / first["sec"],
                    res["step_mb"],
                    res["step_mb"] / max(first["step_mb"], 1e-9),
                ]
            )
            print(f"done: {factor}={value}", flush=True)
    headers = ["factor", "value", "s/step", "time x first", "step MiB", "memory x first"]
    print(markdown_table(headers, rows))
    _plot(results, args.plot)
    print(f"\nwrote {args.plot}")
    return results


def _plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(results), figsize=(4 * len(results), 6.5))
    for col, (factor, points) in enumerate(results.items()):
        xs = [v for v, _ in points]
        for row, (key, label) in enumerate((("sec", "s / training step"), ("step_mb", "MiB"))):
            ax = axes[row, col]
            ax.plot(xs, [r[key] for _, r in points], "o-")
            ax.set_xlabel(factor)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
    fig.suptitle("MIMNetwork training step: time and peak memory (one factor at a time)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
