"""Training speed at equal work: the production network and ``MIMModel.fit`` against a literal network
(issue 16).

The baseline is the literal network of ``tests/reference_mim.py`` (one convolution per gate, the input
convolution run step by step, every zero state convolved, plain loops), with torch's ``group_norm``
kernel for its layer norm so that a ratio measures the network's levers and not how the norm is
written; the old baseline, whose layer norm is written out by hand, is shown beside it. The work is the
same everywhere: free-running decoder, MSE of the output chunk, Adam (``MIMModel`` with
``training_recipe=TrainingRecipe(input_window_loss=False, sampling_schedule="free_running")`` and
``naive_anchor=False``).

Three tables, each measured side by side in one run, at the bike grid (2x14x8, 3 layers of 32, 3x3,
batch 16, 12 + 6 frames) and the Moving MNIST configuration (64x64 patch 4, 4 layers of 64, 5x5,
batch 4, 10 + 10):

1. network: seconds per training step, with and without layer norm, float32 and bf16 autocast, the
   ratio to the literal network with the same layer norm, the achieved GFLOP/s as a fraction of one
   large convolution of the same kind, and the ratio a network would reach if it did nothing but its
   convolutions at that rate (the float32 ceiling of any lever that keeps the FLOPs);
2. fit: ``MIMModel.fit`` seconds per epoch (Darts and Lightning included) against a bare torch loop
   over the literal network on the same windows and batches, with and without layer norm;
3. defaults: ``MIMModel`` with the defaults a user gets on the bike grid (layer norm, the loss over
   every predicted frame, float32) and the same model with ``TrainingRecipe(bf16_autocast=True)``.

Usage: ``python benchmarks/train_speed.py [--quick] [--threads N] [--parts network,fit,defaults]``.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from _common import (
    MNIST,
    SMALL,
    Config,
    big_conv_call,
    build,
    count_flops,
    make_batch,
    make_equal_work_step,
    markdown_table,
    time_calls,
)
from _fit_timing import BareEpochs, equal_work_kwargs, fit_epoch_seconds, grid_series

from darts_mim import TrainingRecipe
from darts_mim.nn.precision import cpu_has_native_bf16

TARGETS = {SMALL.name: 1.5, MNIST.name: 1.3}  # issue 16: fit / literal loop, float32, equal work
# (name, kind, layer norm, precision): the networks of table 1; the first of each norm is its baseline
NETWORKS = (
    ("literal", "literal", False, "32"),
    ("darts-mim", "production", False, "32"),
    ("darts-mim", "production", False, "bf16-mixed"),
    ("literal", "literal", True, "32"),
    ("literal, hand-written LN", "reference", True, "32"),
    ("darts-mim", "production", True, "32"),
    ("darts-mim", "production", True, "bf16-mixed"),
)


def auto_label() -> str:
    """The label of ``TrainingRecipe(bf16_autocast=True)``, with the precision it trains in here."""
    return "bf16_autocast (bf16)" if cpu_has_native_bf16() else "bf16_autocast (float32)"


def network_table(configs: tuple[Config, ...], repeats: int) -> str:
    rows = []
    for cfg in configs:
        batch = make_batch(cfg)
        steps = [
            make_equal_work_step(build(cfg, kind, layer_norm=ln), cfg, batch, prec)
            for _, kind, ln, prec in NETWORKS
        ]
        flops = [count_flops(step) for step in steps]
        # the big convolutions are timed among the steps: a shared machine's load hits all alike
        convs = {prec: big_conv_call(cfg, prec) for prec in ("32", "bf16-mixed")}
        *seconds, conv32, conv16 = time_calls(steps + [call for call, _ in convs.values()], repeats)
        rates = {"32": convs["32"][1] / conv32, "bf16-mixed": convs["bf16-mixed"][1] / conv16}
        base = {}
        for (name, _, ln, prec), sec, flop in zip(NETWORKS, seconds, flops, strict=True):
            base.setdefault(ln, sec)
            rate = flop / sec
            # a network doing only its convolutions at the big convolution's rate
            ceiling = (
                base[ln] / (flop / rates["32"]) if prec == "32" and name == "darts-mim" else None
            )
            rows.append(
                [
                    cfg.name,
                    "yes" if ln else "no",
                    name,
                    prec,
                    sec,
                    base[ln] / sec,
                    rate / 1e9,
                    rate / rates[prec],
                    "" if ceiling is None else ceiling,
                ]
            )
        print(f"done: network, {cfg.name}", flush=True)
    headers = ["config", "layer norm", "network", "precision", "s/step", "x literal"]
    headers += ["GFLOP/s", "of big conv", "x literal if convs only"]
    return markdown_table(headers, rows)


def fit_table(configs: tuple[Config, ...], quick: bool) -> str:
    rows = []
    for cfg in configs:
        batches = (3 if quick else 6) if cfg.batch >= 16 else 2
        series = grid_series(cfg, batches * cfg.batch)
        epochs = 3 if quick else 4
        for ln in (False, True):
            for prec in ("32-true", "auto"):
                # the literal loop's epochs alternate with the fit's (see _fit_timing)
                bare = BareEpochs(build(cfg, "literal", layer_norm=ln), cfg, series)
                kwargs = equal_work_kwargs(cfg, ln, prec)
                fit_s, n_b, _ = fit_epoch_seconds(series, epochs, bare=bare, **kwargs)
                bare_s = statistics.median(bare.times[1:])
                assert n_b == bare.batches, (n_b, bare.batches)
                speed = bare_s / fit_s
                target = TARGETS.get(cfg.name) if not ln and prec == "32-true" else None
                verdict = (
                    "" if target is None else f">= {target}: {'yes' if speed >= target else 'NO'}"
                )
                label = prec if prec != "auto" else auto_label()
                norm = "yes" if ln else "no"
                rows.append([cfg.name, norm, label, n_b, fit_s, bare_s, speed, verdict])
                print(f"done: fit, {cfg.name}, layer norm {ln}, {prec}", flush=True)
    headers = ["config", "layer norm", "MIMModel precision", "batches/epoch", "fit s/epoch"]
    headers += ["literal loop s/epoch (fp32)", "x literal loop", "target (float32)"]
    return markdown_table(headers, rows)


def defaults_table(quick: bool) -> str:
    """``MIMModel(12, 6)`` with every default on the bike grid (float32), and with
    ``TrainingRecipe(bf16_autocast=True)`` (bf16 autocast on CPUs with native bf16)."""
    cfg = Config("bike grid defaults", 2, 14, 8, (32, 32), 3, 1, 32, 12, 6)
    series = grid_series(cfg, (3 if quick else 6) * cfg.batch)
    epochs = 2 if quick else 3
    # two rounds in mirrored order (float32, auto, auto, float32): a load that drifts hits both alike
    seconds: dict[str | None, list[float]] = {None: [], "auto": []}
    recipes = {None: None, "auto": TrainingRecipe(bf16_autocast=True)}
    for prec in (None, "auto", "auto", None):
        sec, n_b, _ = fit_epoch_seconds(
            series,
            epochs,
            input_chunk_length=12,
            output_chunk_length=6,
            training_recipe=recipes[prec],
        )
        seconds[prec].append(sec)
    rows = []
    for prec, secs in seconds.items():
        sec = statistics.mean(secs)
        label = "default (float32)" if prec is None else auto_label()
        rows.append(
            ["MIMModel(12, 6), defaults", label, sec, n_b, statistics.mean(seconds[None]) / sec]
        )
    print("done: defaults", flush=True)
    headers = ["model", "precision", "s/epoch", "batches/epoch", "x float32"]
    return markdown_table(headers, rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one timed step, fewer batches")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--parts", default="network,fit,defaults", help="which tables")
    parser.add_argument("--configs", default="small,mnist", help="small, mnist or both")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    configs = tuple({"small": SMALL, "mnist": MNIST}[c] for c in args.configs.split(","))
    parts = args.parts.split(",")
    tables = []
    if "network" in parts:
        tables.append(network_table(configs, 1 if args.quick else 2))
    if "fit" in parts:
        tables.append(fit_table(configs, args.quick))
    if "defaults" in parts:
        tables.append(defaults_table(args.quick))
    print("\n\n".join(tables))
    print(
        f"\ntorch {torch.__version__}, {torch.get_num_threads()} thread(s), native bf16: "
        f"{cpu_has_native_bf16()}, quick={args.quick}"
    )


if __name__ == "__main__":
    main()
