"""Peak memory of one training step with and without activation checkpointing.

Each case runs in its own subprocess; the figure is the process's peak RSS (``ru_maxrss``) minus its RSS
just before the first step, i.e. what the step needs: activations kept for the backward pass,
gradients and the optimiser's state. Checkpointing recomputes each time step in the backward pass
instead of keeping its activations (its gradients are tested equal in tests/test_reference.py).

Usage: ``python benchmarks/memory.py [--quick] [--threads N]``.
"""

from __future__ import annotations

import argparse
import dataclasses

from _common import MNIST, SMALL, markdown_table, run_child


def main(argv: list[str] | None = None) -> list[list[object]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller batches, one timed step")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    configs = [SMALL, MNIST]
    if args.quick:
        configs = [dataclasses.replace(SMALL, batch=8), dataclasses.replace(MNIST, batch=2)]
    rows = []
    for cfg in configs:
        res = {
            ckpt: run_child(
                cfg, threads=args.threads, extra={"activation_checkpointing": ckpt}, repeats=1
            )
            for ckpt in (False, True)
        }
        off, on = res[False], res[True]
        rows.append(
            [
                f"{cfg.name}, batch {cfg.batch}",
                off["step_mb"],
                on["step_mb"],
                on["step_mb"] / off["step_mb"],
                off["sec"],
                on["sec"],
                on["sec"] / off["sec"],
            ]
        )
        print(f"done: {cfg.name}", flush=True)
    headers = ["config", "step MiB", "step MiB ckpt", "memory ratio", "s/step", "s/step ckpt"]
    print(markdown_table([*headers, "time ratio"], rows))
    return rows


if __name__ == "__main__":
    main()
