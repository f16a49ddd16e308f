"""Training throughput of the production MIMNetwork against the literal reference (issue 7).

One training step is forward (teacher forcing with a random mask, every next-frame prediction), MSE
loss, backward and an Adam step. Prints a markdown table of steps/s, the speed-up over the float32
literal reference, and the achieved GFLOP/s (convolution and matmul FLOPs counted by
``torch.utils.flop_counter``) as a fraction of one large convolution of the same kind timed in the same
run and precision.

Usage: ``python benchmarks/train_speed.py [--quick] [--threads N]``.
"""

from __future__ import annotations

import argparse

import torch
from _common import (
    MNIST,
    SMALL,
    big_conv_rate,
    build,
    count_flops,
    make_batch,
    make_train_step,
    markdown_table,
    time_calls,
)

TARGETS = {  # issue 7: production speed-up over the float32 literal reference
    (SMALL.name, "32"): 1.5,
    (MNIST.name, "32"): 1.15,
    (MNIST.name, "bf16-mixed"): 1.8,
}


def main(argv: list[str] | None = None) -> list[list[object]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one timed step per case")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 1 if args.quick else 3
    rows = []
    for cfg in (SMALL, MNIST):
        batch = make_batch(cfg)
        ref_step = make_train_step(build(cfg, "reference"), cfg, batch, "32")
        prod_steps = {
            prec: make_train_step(build(cfg, "production"), cfg, batch, prec)
            for prec in ("32", "bf16-mixed")
        }
        flops = count_flops(prod_steps["32"])
        t_ref, t32, t16 = time_calls(
            [ref_step, prod_steps["32"], prod_steps["bf16-mixed"]], repeats
        )
        rows.append([cfg.name, "32", "reference", 1 / t_ref, 1.0, flops / t_ref / 1e9, "", ""])
        for prec, sec in (("32", t32), ("bf16-mixed", t16)):
            peak = big_conv_rate(cfg, prec)
            target = TARGETS.get((cfg.name, prec))
            speedup = t_ref / sec
            verdict = (
                "" if target is None else f">= {target}: {'yes' if speedup >= target else 'NO'}"
            )
            rate = flops / sec
            rows.append(
                [cfg.name, prec, "production", 1 / sec, speedup, rate / 1e9, rate / peak, verdict]
            )
        print(f"done: {cfg.name}", flush=True)
    print(
        markdown_table(
            [
                "config",
                "precision",
                "network",
                "steps/s",
                "x fp32 reference",
                "GFLOP/s",
                "of big conv",
                "target",
            ],
            rows,
        )
    )
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, repeats={repeats}")
    return rows


if __name__ == "__main__":
    main()
