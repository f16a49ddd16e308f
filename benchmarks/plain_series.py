"""Folded MIMModel on plain series against Darts' models (issues 12 and 24).

The companion of ``long_horizon.py`` (ETTh1) for the other five series of ``../shared/data/series``
(AirPassengers, monthly sunspots, exchange rates, NYC taxi passengers, ILINet) and two that stand for
data nobody tuned MIM for (``robustness.py``'s, seed 0): ``newcomer_csv``, a newcomer's own hourly CSV
(load, temperature, price over 90 days) and ``soi_like``, a monthly index without a yearly season. One
command runs, per series, MIMModel folded with darts-mim 0.3's defaults (:data:`MIM_0_3`), the same
plus what won on ETTh1's validation months (:data:`MIM_MULTIVARIATE`: reversible instance norm, channel
independence; 0.4's defaults for a multivariate series), MIMModel with one value per step
(``fold_period=None``, 0.3's defaults), Darts' DLinear, NLinear, NHiTS, TiDE, TSMixer and TCN, and the
naive baselines and statistical models (AutoARIMA, AutoETS, AutoTheta) of ``robustness.py``; it prints
one table per series and a summary::

    python benchmarks/plain_series.py                       # every series, test part
    python benchmarks/plain_series.py --seeds 0,1,2 --early-stopping
    python benchmarks/plain_series.py --series taxi --validation
    python benchmarks/plain_series.py --quick --series newcomer_csv soi_like   # smoke test

Protocol (the robustness benchmark's, with inputs of whole periods so that MIM can fold; the models,
backtests and tables are ``robustness.py``'s functions):

* Chronological split 70 / 10 / 20 %; ``--validation`` scores the validation part (where one of the
  two folded MIM variants is chosen per series), the default the test part.
* Values scaled per component with a Darts ``Scaler`` (MinMax) fitted on the train part; scored as
  RMSE on the original scale over every forecast, step and component.
* Origins every ``stride`` steps from the start of the scored part (:data:`SPECS`); global models are
  fitted once and backtested with ``retrain=False``; naive baselines and the statistical models
  (statsforecast; univariate series only, the last 1000 points, AutoARIMA's season for all three) are
  refitted at every origin.
* The same budget for every neural model: ``--epochs`` (default: the series' own, 5 for
  ``newcomer_csv``, else 10) epochs over at most ``--max-samples`` (1000) of the most recent training
  windows in batches of 32, one torch thread. Darts' models keep their defaults plus reversible instance
  norm and the chunk lengths (:func:`robustness.darts_model`); TCN's output chunk is shorter than its
  input, as it needs.
* ``--early-stopping``: every neural model fits on the train part less its last 15 %, which is its
  ``val_series``, stops after 5 epochs without a lower validation loss and keeps its best epoch's
  weights: MIMModel's default, and MIMModel's callbacks (``EarlyStopping`` and ``RestoreBestWeights``)
  for Darts' models. Without it no model stops early.
* ``--seeds 0,1,2``: every neural model once per seed; rows give the mean RMSE and its sample standard
  deviation over seeds (``± sd``), the summary compares the means. ``fit s`` beside the RMSE: one fit
  (mean over seeds), or a local model's whole backtest (a refit at every origin).
* Summary: per folded MIM variant its mean RMSE against the best model that is not MIM (win or tie
  within 1 %) and its ratio to the best naive (issue 24's target: at most 1.02), with fit seconds.
* Periods: the series' own (:func:`darts_mim.folding.infer_period` for dated series: monthly 12,
  30-minute 48, weekly 52, hourly 24); the exchange rates have an integer index, folded by 5 (a
  business week).
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

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from accuracy_common import mim_arguments, parse_seeds, seeds_line  # noqa: E402
from accuracy_scoring import markdown_table  # noqa: E402
from robustness import (  # noqa: E402
    NEAR_NAIVE,
    TABLE_HEADER,
    TRAINER,
    Row,
    backtest_local,
    best_naive,
    darts_model,
    early_stopping_split,
    fit_and_score,
    load,
    mean_fit,
    mim_patience,
    split_and_scale,
    spread,
    table_rows,
)
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
    epochs: int | None = None  # None: --epochs


SPECS = {
    "air_passengers": Spec("AirPassengers, monthly", 36, 12, 1, 12, "auto", 12),
    "sunspots": Spec("monthly sunspots", 48, 12, 12, 12, "auto", 1),
    "exchange_rate": Spec(
        "exchange rates, 8 currencies, daily (integer index)", 30, 10, 10, 5, 5, None
    ),
    "taxi": Spec("NYC taxi passengers, 30 min", 336, 48, 48, 48, "auto", 1),
    "ilinet": Spec("ILINet % weighted ILI, weekly", 104, 12, 12, 52, "auto", 1),
    # issue 24: a newcomer's own hourly CSV (90 days: 96 in, 24 out, daily origins, 5 epochs) and an
    # SOI-like monthly index without a yearly season (robustness.py's data, seed 0)
    "newcomer_csv": Spec("a newcomer's own hourly CSV", 96, 24, 24, 24, "auto", None, epochs=5),
    "soi_like": Spec("SOI-like monthly index, no yearly season", 48, 12, 12, 12, "auto", 1),
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


def neural_model(label: str, spec: Spec, args, seed: int, work_dir: str):
    """One neural model with the shared budget; Darts' models as robustness.py treats them
    (:func:`robustness.darts_model`: instance norm, and MIM's early stopping with
    ``--early-stopping``)."""
    common = {
        "n_epochs": epochs_of(spec, args),
        "batch_size": 32,
        "random_state": seed,
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
    patience = mim_patience(args.mim_kwargs) if args.early_stopping else None
    return darts_model(label, ic, h, common, patience)


def epochs_of(spec: Spec, args) -> int:
    """``--epochs`` where given, else the series' own (newcomer_csv: 5), else 10."""
    return args.epochs or spec.epochs or 10


def run_series(name: str, args, work_dir: str) -> tuple[list[Row], list[str], Spec, tuple]:
    """The rows of one series (neural models first), its notes, spec and split sizes."""
    series, notes = load(name, argparse.Namespace(data=args.data, quick=args.quick))
    spec = SPECS[name]
    if args.quick:  # two periods of at most 6 in, 6 out
        period = min(spec.period, 6)
        spec = Spec(spec.title, 2 * period, 6, 6, period, period, spec.arima_season)
    n = len(series)
    split = split_and_scale(series, args.validation, spec.horizon, spec.stride)
    # robustness.py's naive baselines (persistence, seasonal naive, drift, mean) and statistical models
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
    local, _ = backtest_local(name, naive, split, series)
    fit_kw: dict = {"max_samples_per_ts": args.max_samples}
    fit_part = split.train
    if args.early_stopping:
        fit_part, fit_kw["val_series"], held = early_stopping_split(split.train, spec)
        notes.append(
            f"`--early-stopping`: every neural model fitted on the first {len(fit_part)} train "
            f"steps with the last {held} as `val_series`, stopping early and keeping its best epoch "
            "(MIMModel's default, the same callbacks for Darts' models)."
        )
    neural: dict[str, Row] = {}
    for seed in args.seeds:
        for label in args.models:
            model = neural_model(label, spec, args, seed, work_dir)
            row = neural.setdefault(label, Row(label, "neural"))
            fit_and_score(row, model, fit_part, fit_kw, split, series)
            if label.startswith("MIM") and seed == args.seeds[0]:
                fold = model.layout.fold
                row.add_note(f"folded by {fold}" if fold > 1 else "one value per step")
            print(
                f"  {name} seed {seed} {label}: {row.rmse[-1]:.4g} (fit {row.fit_s[-1]:.0f} s)",
                flush=True,
            )
    for row in neural.values():
        if row.kept:
            row.add_note(row.kept_note(args.seeds))
    sizes = (n, split.train_end, split.val_end)
    return list(neural.values()) + local, notes, spec, sizes


def section(name: str, rows: list[Row], notes, spec: Spec, sizes, args) -> list[str]:
    n, train_end, val_end = sizes
    part = "validation" if args.validation else "test"
    head = (
        f"### {name}: {spec.title}\n\n{n} steps, train {train_end}, validation {val_end - train_end}, "
        f"test {n - val_end}, scored on the {part} part; {spec.input_len} in, horizon {spec.horizon}, "
        f"origins every {spec.stride}; period {spec.period}; {epochs_of(spec, args)} epochs. "
        "`fit s`: one fit (mean over seeds); local models: their whole backtest, a refit at every "
        "origin." + seeds_line(args.seeds) + " " + " ".join(notes)
    )
    return [head, "", *markdown_table(TABLE_HEADER, table_rows(rows))]


def summary(results: dict[str, list[Row]]) -> list[str]:
    """Per series and folded MIM variant: its mean RMSE against the best model that is not MIM (a win
    or a tie within 1 %) and against the best naive (within :data:`robustness.NEAR_NAIVE`), with fit
    seconds."""
    table, wins, near = [], {}, {}
    for name, rows in results.items():
        others = [r for r in rows if not r.label.startswith("MIM") and r.rmse]
        rival = min(others, key=lambda r: r.mean)
        naive = best_naive(rows)
        for mim in (r for r in rows if r.label.startswith("MIM folded")):
            ratio = mim.mean / rival.mean
            to_naive = mim.mean / naive.mean
            wins[mim.label] = wins.get(mim.label, 0) + (ratio <= 1.01)
            near[mim.label] = near.get(mim.label, 0) + (to_naive <= NEAR_NAIVE)
            verdict = "yes" if ratio <= 1.01 else "no"
            table.append([name, mim.label, mim.mean, spread(mim), mean_fit(mim), rival.label])
            table[-1] += [rival.mean, mean_fit(rival), round(ratio, 3), verdict, round(to_naive, 3)]
    header = ["series", "MIM", "RMSE", "± sd", "fit s", "best other", "its RMSE", "its fit s"]
    header += ["MIM / best other", "wins or ties", "MIM / best naive"]
    k = len(results)
    counts = "; ".join(f"{label} on {n} of {k}" for label, n in wins.items())
    close = "; ".join(f"{label} on {n} of {k}" for label, n in near.items())
    return [
        *markdown_table(header, table),
        "",
        f"On the means over seeds, wins or ties (within 1 %): {counts}. Within {NEAR_NAIVE}x the "
        f"best naive (issue 24's target: every series): {close}.",
    ]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None, help="data directory (default: ../shared/data)")
    p.add_argument("--series", nargs="+", default=list(SPECS), choices=list(SPECS))
    p.add_argument("--models", nargs="+", default=list(NEURAL), choices=list(NEURAL))
    p.add_argument("--epochs", type=int, default=None, help="default: the series' own, else 10")
    p.add_argument("--max-samples", type=int, default=1000)
    p.add_argument("--seeds", default="0", help="comma-separated seeds of the neural models")
    p.add_argument(
        "--early-stopping",
        action="store_true",
        help="fit on the train part less its last 15 %%, passed as val_series; every neural model "
        "stops early and keeps its best epoch (MIMModel's default, the same callbacks for Darts')",
    )
    p.add_argument("--mim-kwargs", type=json.loads, default={}, help="JSON of extra MIM arguments")
    p.add_argument("--validation", action="store_true", help="score the validation part")
    p.add_argument("--quick", action="store_true", help="smoke test: tiny sizes and budget")
    p.add_argument("--out", type=Path, default=None, help="append the tables to this file")
    args = p.parse_args(argv)
    args.seeds = parse_seeds(args.seeds)
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
    flags = " --validation" if args.validation else ""
    flags += " --quick" if args.quick else ""
    flags += " --early-stopping" if args.early_stopping else ""
    flags += f" --epochs {args.epochs}" if args.epochs else ""
    lines.append(
        f"Run: `python benchmarks/plain_series.py{flags} --series {' '.join(args.series)} "
        f"--max-samples {args.max_samples} --seeds {','.join(map(str, args.seeds))}"
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
