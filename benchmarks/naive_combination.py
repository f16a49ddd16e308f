"""The combination of naive forecasts of ``naive_anchor="combined"``, alone (never trained), against
the naive forecasts, on the robustness benchmark's data sets.

    python benchmarks/naive_combination.py [--validation] [--datasets era5,taxi] [--data DIR] [--quick]

For each data set of ``benchmarks/robustness.py`` (same loading, 70 / 10 / 20 % split, MinMax scaling
fitted on the train part, chunk lengths and origins), ``darts_mim.naive_combination`` fits its weights
on the scaled train part exactly as ``MIMModel(naive_anchor="combined")`` does when anchored on
persistence, and the combination forecasts the scored part from each origin's input window. The
naive forecasts get the whole history before each origin, as in the robustness benchmark:
persistence, the seasonal naive of each of the data set's periods, the drift line from the first
value to the origin (Darts' ``NaiveDrift``) and the train part's mean (climatology). RMSE on the
original scale over every origin, lead and component; ratio = RMSE / best naive RMSE. What this
shows: how good a start the combination is before any training (MIM's trained figures are in
``robustness_results.md``). Prints a Markdown table and returns its rows; takes about a minute and
no torch.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import robustness as rb  # noqa: E402

from darts_mim.folding import infer_period  # noqa: E402
from darts_mim.naive_combination import fit_naive_combination, seasonal_rows  # noqa: E402


def naive_forecasts(values: np.ndarray, origin: int, horizon: int, periods, mean) -> dict:
    """The naive forecasts of ``values[origin:origin + horizon]`` from the history before it."""
    last = values[origin - 1]
    leads = np.arange(1, horizon + 1)
    out = {"persistence": np.repeat(last[None], horizon, axis=0)}
    for period in periods:
        if origin >= period:
            rows = [origin - 1 + h - period * math.ceil(h / period) for h in leads]
            out[f"seasonal naive (K={period})"] = values[rows]
    slope = (last - values[0]) / max(origin - 1, 1)
    out["drift"] = last[None] + leads[:, None] * slope[None]
    out["climatology (mean)"] = np.repeat(mean[None], horizon, axis=0)
    return out


def score_dataset(name: str, args) -> dict:
    series, _ = rb.load(name, args)
    spec = rb.effective_spec(name, args, len(series))
    split = rb.split_and_scale(series, args.validation, spec.horizon, spec.stride)
    scaled = split.scaler.transform(series).values(copy=False).astype(np.float64)
    values = scaled.reshape(len(scaled), -1)
    lo = split.scaler._fitted_params[0].data_min_.reshape(-1)
    span = split.scaler._fitted_params[0].data_max_.reshape(-1) - lo
    length, horizon = spec.input_len, spec.horizon
    period = infer_period(series.freq)
    combination = fit_naive_combination(
        [values[: split.train_end]],
        length,
        horizon,
        anchor_lag=1,
        periods=[] if period is None else [period],
    )
    persistence = seasonal_rows(length, horizon, 1)
    mean = np.nanmean(values[: split.train_end], axis=0)
    end = split.val_end if args.validation else len(values)
    errors: dict[str, list[np.ndarray]] = {}
    for origin in range(split.eval_start, end - horizon + 1, spec.stride):
        truth = values[origin : origin + horizon]
        window = values[origin - length : origin]
        combined = (persistence + combination.matrix) @ window + combination.offset
        forecasts = naive_forecasts(values, origin, horizon, spec.periods, mean)
        forecasts["combination"] = combined
        for label, forecast in forecasts.items():
            errors.setdefault(label, []).append(((forecast - truth) * span) ** 2)
    rmse = {label: float(np.sqrt(np.nanmean(np.stack(e)))) for label, e in errors.items()}
    naive = {k: v for k, v in rmse.items() if k != "combination"}
    best = min(naive, key=naive.get)
    return {
        "name": name,
        "best": best,
        "best_rmse": naive[best],
        "combination": rmse["combination"],
        "candidates": ", ".join(combination.candidates),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None, help="data directory (default: ../shared/data)")
    p.add_argument("--datasets", default=",".join(rb.DATASETS), help="comma-separated subset")
    p.add_argument("--validation", action="store_true", help="score the validation part")
    p.add_argument("--quick", action="store_true", help="smoke test: robustness.py's tiny sizes")
    args = p.parse_args(argv)
    names = [s.strip() for s in args.datasets.split(",") if s.strip()]
    unknown = sorted(set(names) - set(rb.DATASETS))
    if unknown or not names:
        p.error(f"--datasets got {unknown or names}; choose from {', '.join(rb.DATASETS)}.")
    # robustness.load reads these settings of its own command line
    rb_args = rb.parse_args(
        ["--datasets", ",".join(names)] + (["--data", args.data] * bool(args.data))
    )
    warnings.filterwarnings("ignore")
    part = "validation" if args.validation else "test"
    print(f"## The combination of naive forecasts alone, {part} parts\n")
    print(
        "| data set | best naive (RMSE) | combination RMSE | ratio | candidates besides persistence |"
    )
    print("|---|---|---:|---:|---|")
    ratios, rows = [], []
    for name in names:
        row = score_dataset(name, rb_args)
        ratio = row["combination"] / row["best_rmse"]
        ratios.append(ratio)
        rows.append({**row, "ratio": ratio})
        print(
            f"| {name} | {row['best']} ({row['best_rmse']:.4g}) | {row['combination']:.4g} | "
            f"{ratio:.3f} | {row['candidates']} |",
            flush=True,
        )
    below = sum(r < 1 for r in ratios)
    gm = math.exp(np.mean(np.log(ratios)))
    print(
        f"\nThe combination is below the best naive forecast on {below} of {len(ratios)} data sets; "
        f"geometric mean of the ratios {gm:.3f}."
    )
    return rows


if __name__ == "__main__":
    main()
