"""Does the automatic bf16 training precision (or dropping layer norm) cost accuracy? The default
MIMModel trained on the bike-flow grid in float32, with ``TrainingRecipe(bf16_autocast=True)`` (bf16
autocast on CPUs with native bf16; ``precision="auto"`` before 0.6) and without layer norm, scored on
the bike validation split (issue 16: within 1 % of float32).

The split is that of ``benchmarks/accuracy.py``: the last 10 days are the test part (never used here),
the 10 days before them the validation part, on whose forecast origins (every 6 steps) the models are
scored; each model trains on the last ``--train-days`` days before the validation part. Every variant
uses the same seeds, data, scaling (min-max fitted on the training part) and budget; errors are on the
original scale (bikes per cell and 30 minutes). Prints a markdown table, the ratios to float32 and the
fit time per epoch.

``--robustness DATASETS`` asks the same question on the validation parts of ``robustness.py``'s
data sets instead (its split, scaling, budget and scoring; MIM's defaults in float32 against
``bf16_autocast=True``): one row per data set and seed, and the geometric mean of the ratios.

Usage: ``python benchmarks/bf16_accuracy.py [--epochs 4] [--seeds 0,1] [--threads 1] [--quick]``,
``python benchmarks/bf16_accuracy.py --robustness sunspots,taxi [--seeds 0] [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch
from _common import markdown_table
from darts.dataprocessing.transformers import Scaler
from darts.metrics import mae, rmse

from darts_mim import MIMModel, TrainingRecipe
from darts_mim.datasets import load_bike_flows
from darts_mim.nn.precision import cpu_has_native_bf16

DAY = 48
FLOAT32 = {"pl_trainer_kwargs": {"precision": "32-true"}}  # Lightning's precision
BF16_AUTOCAST = {"training_recipe": TrainingRecipe(bf16_autocast=True)}  # the default recipe + bf16
# name -> MIMModel arguments on top of the defaults
VARIANTS = {
    "float32 (Lightning precision '32-true')": FLOAT32,
    # the defaults are float32 since 0.4: bf16 autocast is asked for by name (precision="auto"
    # before 0.6)
    "bf16 autocast (TrainingRecipe(bf16_autocast=True))": BF16_AUTOCAST,
    "float32, no layer norm": {**FLOAT32, "layer_norm": False},
}


def run(kwargs: dict, seed: int, epochs: int, train, series, val_start, work_dir: str):
    """Fit on ``train`` and score forecasts from every 6th step of the validation part."""
    scaler = Scaler().fit(train)
    kwargs = dict(kwargs)
    model = MIMModel(
        input_chunk_length=12,
        output_chunk_length=6,
        n_epochs=epochs,
        random_state=seed,
        work_dir=work_dir,
        pl_trainer_kwargs={
            "accelerator": "cpu",
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": False,
            **kwargs.pop("pl_trainer_kwargs", {}),
        },
        **kwargs,
    )
    start = time.perf_counter()
    model.fit(scaler.transform(train))
    fit_s = time.perf_counter() - start
    forecasts = model.historical_forecasts(
        scaler.transform(series),
        start=val_start,
        forecast_horizon=6,
        stride=6,
        retrain=False,
        last_points_only=False,
    )
    forecasts = [scaler.inverse_transform(f) for f in forecasts]
    truth = [series.slice_intersect(f) for f in forecasts]
    return float(np.mean(rmse(truth, forecasts))), float(np.mean(mae(truth, forecasts))), fit_s


def robustness_rows(names: list[str], seeds: list[int], quick: bool) -> list[list[object]]:
    """MIM's defaults in float32 and with bf16 autocast on the validation part of each of
    ``robustness.py``'s data sets ``names``: RMSE on the original scale, ratio, fit seconds."""
    import robustness as rb

    args = rb.parse_args(["--validation", "--datasets", ",".join(names)] + (["--quick"] * quick))
    rows, ratios = [], []
    with tempfile.TemporaryDirectory() as work_dir:
        for name in args.datasets:
            series, _ = rb.load(name, args)
            spec = rb.effective_spec(name, args, len(series))
            split = rb.split_and_scale(series, True, spec.horizon, spec.stride)
            for seed in seeds:
                scores = []
                for variant in (FLOAT32, BF16_AUTOCAST):
                    args.mim_kwargs = variant
                    model = rb.neural_models(spec, args, seed, work_dir)["MIM"]
                    secs, _ = rb.fit_timed(model, split.train, max_samples_per_ts=spec.samples)
                    hf = model.historical_forecasts(split.history, retrain=False, **split.hf_kw)
                    scores.append((rb.score(hf, series, split.scaler), secs))
                (f32, f32_s), (bf16, bf16_s) = scores
                ratios.append(bf16 / f32)
                rows.append([name, seed, f32, bf16, f"x{bf16 / f32:.4f}", f32_s / bf16_s])
                print(
                    f"{name}, seed {seed}: float32 {f32:.4g}, bf16 autocast {bf16:.4g}", flush=True
                )
    geo = float(np.exp(np.mean(np.log(ratios))))
    rows.append(["geometric mean", "", "", "", f"x{geo:.4f}", ""])
    return rows


def main(argv: list[str] | None = None) -> list[list[object]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seeds", default="0,1", help="comma-separated random states")
    parser.add_argument("--train-days", type=int, default=28)
    parser.add_argument(
        "--variants", default="0,1,2", help="which rows of VARIANTS (indices; 0 is the baseline)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--quick", action="store_true", help="7 days of training, 1 epoch, 1 seed")
    parser.add_argument(
        "--robustness",
        default=None,
        help="comma-separated data sets of robustness.py: score their validation parts instead",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.robustness:
        seeds = [int(s) for s in args.seeds.split(",")]
        rows = robustness_rows(args.robustness.split(","), seeds, args.quick)
        headers = ["data set", "seed", "RMSE float32", "RMSE bf16 autocast", "bf16 / float32"]
        print(markdown_table(headers + ["fit speed x float32"], rows, digits=4))
        print(
            f"\nrobustness.py validation parts, MIM defaults, {torch.get_num_threads()} thread(s); "
            f"native bf16 on this CPU: {cpu_has_native_bf16()}"
        )
        return rows
    series = load_bike_flows().series
    seeds = [int(s) for s in args.seeds.split(",")]
    train_days, epochs = args.train_days, args.epochs
    if args.quick:
        train_days, epochs, seeds = 7, 1, seeds[:1]
    n = len(series)
    val_start, val_end = n - 20 * DAY, n - 10 * DAY  # validation: the 10 days before the test part
    train = series[val_start - train_days * DAY : val_start]
    history = series[val_start - train_days * DAY : val_end]
    names = [list(VARIANTS)[int(i)] for i in args.variants.split(",")]
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as work_dir:
        for seed in seeds:
            for name in names:
                res = run(VARIANTS[name], seed, epochs, train, history, train_days * DAY, work_dir)
                results[name].append(res)
                print(
                    f"seed {seed}, {name}: RMSE {res[0]:.4f}, MAE {res[1]:.4f}, fit {res[2]:.0f} s"
                )
    base = statistics.mean(r[0] for r in results[names[0]])
    base_fit = statistics.mean(r[2] for r in results[names[0]])
    rows = []
    for name, res in results.items():
        err = statistics.mean(r[0] for r in res)
        fit_s = statistics.mean(r[2] for r in res)
        rows.append(
            [
                name,
                err,
                statistics.mean(r[1] for r in res),
                f"x{err / base:.4f}",
                fit_s / epochs,
                f"x{base_fit / fit_s:.2f}",
            ]
        )
    print(
        markdown_table(
            ["training", "RMSE", "MAE", "RMSE / float32", "fit s/epoch", "speed x float32"],
            rows,
            digits=4,
        )
    )
    print(
        f"\nbike validation split, {train_days} days of training, {epochs} epochs, seeds {seeds}, "
        f"{torch.get_num_threads()} thread(s); native bf16 on this CPU: {cpu_has_native_bf16()}; "
        "target: RMSE within 1 % of float32"
    )
    return rows


if __name__ == "__main__":
    main()
