"""Folded MIMModel on the plain series of ``../shared/data/series`` against Darts' models (issue 12).

The companion of ``long_horizon.py`` (ETTh1) for the other five series: AirPassengers, monthly sunspots,
exchange rates, NYC taxi passengers and ILINet. One command runs, per series, MIMModel folded with
darts-mim 0.3's defaults (:data:`MIM_0_3`), the same plus what won on ETTh1's validation months (:data:`MIM_MULTIVARIATE`:
reversible instance norm, channel independence; 0.4's defaults for a multivariate series), MIMModel
with one value per step (``fold_period=None``, 0.3's defaults), Darts' DLinear, NLinear, NHiTS, TiDE, TSMixer and TCN, and the naive baselines and AutoARIMA
of ``robustness.py``; it prints one table per series and a summary::

    python benchmarks/plain_series.py                       # every series, test part
    python benchmarks/plain_series.py --series taxi --validation
    python benchmarks/plain_series.py --quick                # smoke test (tiny sizes)

Protocol (the robustness benchmark's, with inputs of whole periods so that MIM can fold):

* Chronological split 70 / 10 / 20 %; ``--validation`` scores the validation part (where one of the
  two folded MIM variants is chosen per series), the default the test part.
* Values scaled per component with a Darts ``Scaler`` (MinMax) fitted on the train part; scored as
  RMSE on the original scale over every forecast, step and component.
* Origins every ``stride`` steps from the start of the scored part (:data:`SPECS`); global models are
  fitted once and backtested with ``retrain=False``; naive baselines and AutoARIMA are refitted at
  every origin.
* The same budget for every neural model: ``--epochs`` (10) epochs over at most ``--max-samples``
  (1000) of the most recent training windows in batches of 32, no early stopping, one torch thread.
  Darts' models keep their defaults plus reversible instance norm and the chunk lengths; TCN's output chunk is shorter than its input, as it needs.
* Periods: the series' own (:func:`darts_mim.folding.infer_period` for dated series: monthly 12,
  30-minute 48, weekly 52); the exchange rates have an integer index, folded by 5 (a business week).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from accuracy_common import fit_timed, mim_arguments  # noqa: E402
from accuracy_scoring import markdown_table  # noqa: E402
from robustness import TRAINER, load, local_models, score, split_and_scale  # noqa: E402
from robustness import Spec as RobustnessSpec  # noqa: E402

from darts_mim import MIMModel  # noqa: E402

MIM_0_3 = {"use_reversible_instance_norm": False, "channel_independent": False}
"""The rows "MIM folded" and "MIM 1x1": darts-mim 0.3's defaults (0.4's "auto" turns instance norm
and channel independence on for the multivariate exchange rates, which is the "+RIN/CI" row)."""

MIM_MULTIVARIATE = {
    "use_reversible_instance_norm": True,
    "channel_independent": True,
}
"""What won on ETTh1's validation months on top of the defaults (``long_horizon_results.md``):
reversible instance norm and channel independence; the row "MIM folded +RIN/CI"."""


@dataclass(frozen=True)
class Spec:
    """One series: input and horizon in steps, origins every ``stride``, its period and AutoARIMA's."""

    title: str
    input_len: int
    horizon: int
    stride: int
    period: int
    fold_period: int | str
    arima_season: int | None


SPECS = {
    "air_passengers": Spec("AirPassengers, monthly", 36, 12, 1, 12, "auto", 12),
    "sunspots": Spec("monthly sunspots", 48, 12, 12, 12, "auto", 1),
    "exchange_rate": Spec(
        "exchange rates, 8 currencies, daily (integer index)", 30, 10, 10, 5, 5, None
    ),
    "taxi": Spec("NYC taxi passengers, 30 min", 336, 48, 48, 48, "auto", 1),
    "ilinet": Spec("ILINet % weighted ILI, weekly", 104, 12, 12, 52, "auto", 1),
}
NEURAL = (
    "MIM folded",
    "MIM folded +RIN/CI",
    "MIM 1x1",
    "DLinear",
    "NLinear",
    "NHiTS",
    "TiDE",
    "TSMixer",
    "TCN",
)


def neural_model(label: str, spec: Spec, args, work_dir: str):
    """One neural model with the shared budget."""
    from darts.models import (
        DLinearModel,
        NHiTSModel,
        NLinearModel,
        TCNModel,
        TiDEModel,
        TSMixerModel,
    )

    common = {
        "n_epochs": args.epochs,
        "batch_size": 32,
        "random_state": args.seed,
        "pl_trainer_kwargs": dict(TRAINER),
        "work_dir": work_dir,
    }
    ic, h = spec.input_len, spec.horizon
    if label.startswith("MIM"):
        fold = None if label == "MIM 1x1" else spec.fold_period
        extra = MIM_MULTIVARIATE if label == "MIM folded +RIN/CI" else MIM_0_3
        # --mim-kwargs' TrainingRecipe fields, flat or under training_recipe, become the recipe
        kwargs = mim_arguments(common, extra, args.mim_kwargs, {"fold_period": fold})
        return MIMModel(ic, h, **kwargs)
    common["use_reversible_instance_norm"] = True
    classes = {
        "DLinear": DLinearModel,
        "NLinear": NLinearModel,
        "NHiTS": NHiTSModel,
        "TiDE": TiDEModel,
        "TSMixer": TSMixerModel,
        "TCN": TCNModel,
    }
    if label == "TCN":
        h = min(h, ic - 1)  # TCN needs output_chunk_length < input_chunk_length
    return classes[label](ic, h, **common)


def run_series(name: str, args, work_dir: str) -> tuple[list[list], list[str], Spec, tuple]:
    """The rows ``[model, RMSE, fit s, note]`` of one series, its notes, spec and split sizes."""
    series, notes = load(name, argparse.Namespace(data=args.data, quick=args.quick))
    spec = SPECS[name]
    if args.quick:  # two periods of at most 6 in, 6 out, no AutoARIMA
        period = min(spec.period, 6)
        spec = Spec(spec.title, 2 * period, 6, 6, period, period, None)
    n = len(series)
    split = split_and_scale(series, args.validation, spec.horizon, spec.stride)
    scaler, train, history, hf_kw = split.scaler, split.train, split.history, split.hf_kw
    train_end, val_end, first = split.train_end, split.val_end, split.eval_start
    rows = []
    # robustness.py's naive baselines (persistence, seasonal naive, drift, mean) and AutoARIMA
    naive = RobustnessSpec(
        spec.title,
        spec.input_len,
        spec.horizon,
        spec.stride,
        (spec.period,),
        spec.arima_season,
        0,
        0,
        0,
    )
    for label, (model, kind) in local_models(naive, series.n_components == 1).items():
        if model is None or (args.quick and kind == "local"):
            continue
        kw = {"train_length": min(1000, first)} if kind == "local" else {}
        hist = history.astype(np.float64) if kind == "local" else history
        hf = model.historical_forecasts(hist, retrain=True, **hf_kw, **kw)
        rows.append([label, score(hf, series, scaler), 0.0, ""])
        print(f"  {name} {label}: {rows[-1][1]:.4g}", flush=True)
    for label in args.models:
        model = neural_model(label, spec, args, work_dir)
        secs, _ = fit_timed(model, train, max_samples_per_ts=args.max_samples)
        hf = model.historical_forecasts(history, retrain=False, **hf_kw)
        note = ""
        if label.startswith("MIM"):
            fold = model.layout.fold
            note = f"folded by {fold}" if fold > 1 else "one value per step"
        rows.append([label, score(hf, series, scaler), secs, note])
        print(f"  {name} {label}: {rows[-1][1]:.4g} (fit {secs:.0f} s)", flush=True)
    return rows, notes, spec, (n, train_end, val_end)


def section(name: str, rows: list[list], notes, spec: Spec, sizes, args) -> list[str]:
    n, train_end, val_end = sizes
    part = "validation" if args.validation else "test"
    seasonal = next(r for r in rows if r[0].startswith("seasonal naive"))[1]
    best = min(r[1] for r in rows)
    table = [
        [label, rmse, round(rmse / seasonal, 3), round(secs, 1), note + (" best" * (rmse == best))]
        for label, rmse, secs, note in rows
    ]
    head = (
        f"### {name}: {spec.title}\n\n{n} steps, train {train_end}, validation {val_end - train_end}, "
        f"test {n - val_end}, scored on the {part} part; {spec.input_len} in, horizon {spec.horizon}, "
        f"origins every {spec.stride}; period {spec.period}. " + " ".join(notes)
    )
    return [
        head,
        "",
        *markdown_table(["model", "RMSE", "/ seasonal naive", "fit s", "note"], table),
    ]


def summary(results: dict[str, list[list]]) -> list[str]:
    """Per series and folded MIM variant: its RMSE against the best model that is not MIM; a win or a
    tie within 1 %."""
    table, wins = [], {}
    for name, rows in results.items():
        others = [r for r in rows if not r[0].startswith("MIM")]
        rival = min(others, key=lambda r: r[1])
        for mim in (r for r in rows if r[0].startswith("MIM folded")):
            ratio = mim[1] / rival[1]
            wins.setdefault(mim[0], 0)
            wins[mim[0]] += ratio <= 1.01
            verdict = "yes" if ratio <= 1.01 else "no"
            table.append([name, mim[0], mim[1], rival[0], rival[1], round(ratio, 3), verdict])
    header = ["series", "MIM", "RMSE", "best other", "its RMSE", "MIM / best other", "wins or ties"]
    counts = "; ".join(f"{label} on {n} of {len(results)}" for label, n in wins.items())
    return [*markdown_table(header, table), "", f"Wins or ties (within 1 %): {counts}."]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None, help="data directory (default: ../shared/data)")
    p.add_argument("--series", nargs="+", default=list(SPECS), choices=list(SPECS))
    p.add_argument("--models", nargs="+", default=list(NEURAL), choices=list(NEURAL))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--max-samples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mim-kwargs", type=json.loads, default={}, help="JSON of extra MIM arguments")
    p.add_argument("--validation", action="store_true", help="score the validation part")
    p.add_argument("--quick", action="store_true", help="smoke test: tiny sizes and budget")
    p.add_argument("--out", type=Path, default=None, help="append the tables to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.max_samples = 1, 16
    return args


def main(argv=None) -> str:
    args = parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "darts", "statsforecast"):
        logging.getLogger(name).setLevel(logging.ERROR)
    start = time.perf_counter()
    lines, results = [], {}
    with tempfile.TemporaryDirectory() as work_dir:
        for name in args.series:
            rows, notes, spec, sizes = run_series(name, args, work_dir)
            results[name] = rows
            lines += section(name, rows, notes, spec, sizes, args) + [""]
    lines += ["### Summary", "", *summary(results), ""]
    lines.append(
        f"Run: `python benchmarks/plain_series.py{' --validation' if args.validation else ''} "
        f"--epochs {args.epochs} --max-samples {args.max_samples} --seed {args.seed}"
        + (f" --mim-kwargs '{json.dumps(args.mim_kwargs)}'" if args.mim_kwargs else "")
        + f"`, one torch thread, {(time.perf_counter() - start) / 60:.1f} min."
    )
    text = "\n".join(lines)
    print(text, flush=True)
    if args.out is not None:
        with open(args.out, "a") as f:
            f.write(text + "\n\n")
    return text


if __name__ == "__main__":
    main()
