"""Forecast quality of MIMModel on real data, against baselines, under an equal training budget.

One command runs rolling-origin backtests (``historical_forecasts(retrain=False)`` after one fit) and
prints markdown tables; it also writes ``benchmarks/accuracy_results.md`` and ``accuracy_*.png``::

    python benchmarks/accuracy.py --only taxi,bike,radar --jobs 2  # the standard run (~30 min)
    python benchmarks/accuracy.py --quick                          # smoke test (tiny slices/models)
    python benchmarks/accuracy.py --only bike --split val          # score on the validation split
    python benchmarks/accuracy.py --only bike,etth1 --steps 600
    python benchmarks/accuracy.py --only mnist --paper             # the paper's setting (GPU)

Data sets (``--data DIR``, default :func:`darts_mim.datasets.default_data_dir`):

1. ``bike`` / ``taxi``: NYC crowd flows (2x14x8 and 2x16x12 cells, 30 min). 12 steps in, 6 out. Split
   by time: test = last 10 days, validation = the 10 days before, train = the rest. Forecast origins
   every ``stride`` (6) steps in the test period (``--split val``: in the validation period, for
   choosing settings). Values are scaled with a Darts ``Scaler`` fit on the train part only and
   inverted before scoring. Seasonal covariates, all known at forecast time: the scaled target lagged
   by one week (336 steps) and one day (48), plus 4 calendar channels (sin/cos of the time slot and of
   the day of week). MIMModel takes them as future covariates on the target's grid; TCNModel and
   BlockRNNModel (LSTM) on the flattened grid take them as past covariates, with the lags shortened by
   the horizon so that the lagged values of the forecast steps end their input window. Every model
   trains on the same windows (from step 336 on). Models: MIM with and without covariates, the
   ``stlstm`` (PredRNN-style) ablation with covariates (``--ablations`` adds ``diff_mode=
   "difference"``), TCN and LSTM with and without covariates, seasonal naive (1 day, 1 week) and
   ARIMA(2,0,1) on the 4 busiest components (cell x channel) of the train part, on every 4th origin
   (all models are also scored on that sample).
2. ``etth1``: ETTh1 (7 columns, hourly). 96 in, 24 out, last 20 % test, the 10 % before validation
   (unused: no tuning), origins every 24 h. MIMModel on a 1x1 grid (``filter_size=1``), TCNModel,
   NHiTSModel, ARIMA(2,1,1) per column on every 6th origin (fitted once; each origin conditions it
   on the previous 2 weeks), seasonal naive (24 h).
3. ``radar``: KNMI rain rate, 128x128, 5 min, 92 frames. 6 in, 6 out; frames 0-59 train, the forecast
   targets all lie in frames 60-91 (every origin); ``--split val`` fits on frames 0-47 and scores
   targets in 48-59. MIMModel and the stlstm ablation (patch 4), each on the frames and on frame
   differences (forecasts summed onto the last observed frame), the motion-aware recipe (MIM on the
   residual of pysteps' Lucas-Kanade extrapolation, which it gets as gridded future covariates;
   ``darts_mim.nowcast``) vs persistence and pysteps' nowcasts (LK and VET extrapolation, S-PROG,
   ANVIL, STEPS; ``radar_pysteps.py``, needs ``pip install -e ".[radar]"``); MSE (mm/h)^2, CSI at 1
   and 5 mm/h, FSS at 1 mm/h over 5 and 15 cells, STEPS' CRPS, by lead time, and the seconds per
   nowcast.
4. ``mnist``: Moving MNIST generated from the MNIST digits of ``DIR/mnist`` (64x64, 2 digits, 10 in,
   10 out; train and test sequences from different seeds). MIMModel vs the stlstm ablation, patch 4;
   per-frame MSE and MAE (sums over the 4096 pixels, averaged over frames and sequences, predictions
   clipped to [0, 1]) and SSIM (torchmetrics, Gaussian window 11, sigma 1.5).

Budget. Every neural model of a data set gets the same number of optimizer steps (``--steps``,
default 300; Lightning ``max_steps``), also used as ``sampling_decay_steps`` so that scheduled
sampling reaches free running within the run, and the same wall-time cap (``--seconds``, a safety
net). Tables report the steps actually done and the wall time. Torch runs on one thread per process
(``--threads``): on two cores shared with other jobs, two threads made one MIM step ~15x slower.
``--jobs 2`` runs data sets in two worker processes.

Paper setting (``--paper``, Moving MNIST only): 4 layers x 64 channels (128 in the paper's larger
variant), filter 5, patch 4, Adam lr 1e-3, batch 8, 80,000 iterations, scheduled sampling decaying
over 50,000 iterations, 10,000 training sequences; on a GPU when ``torch.cuda.is_available()``
(``pl_trainer_kwargs={"accelerator": "gpu"}``). That takes hours on a GPU and is not run here.

Code. This file is the command line and runs the data sets (in worker processes with ``--jobs``).
The data sets' sections are in ``accuracy_crowd.py``, ``accuracy_etth1.py``, ``accuracy_radar.py``
and ``accuracy_mnist.py``; what they share (budget, fit and backtest over seeds) is in
``accuracy_common.py``, their scores, tables and plots in ``accuracy_scoring.py``, and
``accuracy_report.py`` writes the results file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(
    0, str(HERE)
)  # the accuracy_*.py modules beside this script, also when imported by path

from accuracy_common import DATASETS, Section, mim_model, parse_seeds  # noqa: E402
from accuracy_crowd import calendar_features, crowd, lagged, seasonal_covariates  # noqa: E402
from accuracy_etth1 import etth1  # noqa: E402
from accuracy_mnist import mnist, ssim_per_frame  # noqa: E402
from accuracy_radar import csi, radar  # noqa: E402
from accuracy_report import MARKER, write_results  # noqa: E402

from darts_mim.datasets import default_data_dir  # noqa: E402

# the entry point, and the section runners and helpers that tests/test_accuracy_script.py uses
__all__ = [
    "DATASETS",
    "MARKER",
    "calendar_features",
    "crowd",
    "csi",
    "etth1",
    "lagged",
    "main",
    "mim_model",
    "mnist",
    "parse_args",
    "radar",
    "seasonal_covariates",
    "ssim_per_frame",
]

# ---------------------------------------------------------------------------------------------------
# command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None, help="data directory (default: default_data_dir())")
    p.add_argument("--only", default=",".join(DATASETS), help=f"subset of {','.join(DATASETS)}")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="optimizer steps per neural model (default: 300 for every data set, 2 with --quick)",
    )
    p.add_argument(
        "--epochs", type=int, default=1000, help="epoch cap per neural model (default 1000)"
    )
    p.add_argument(
        "--seconds", type=int, default=1200, help="wall-time cap per neural model (default 1200)"
    )
    p.add_argument(
        "--split",
        choices=("test", "val"),
        default="test",
        help="crowd flows and radar: score on the test period (default) or on the validation "
        "period, the one to choose settings on",
    )
    p.add_argument(
        "--ablations",
        action="store_true",
        help="radar: also the networks on the plain frames (not on frame differences)",
    )
    p.add_argument(
        "--seeds",
        default="0",
        help="comma-separated seeds; every neural model is fitted once per seed and the tables give "
        "the mean and the standard deviation (default 0)",
    )
    p.add_argument(
        "--models",
        default="",
        help="semicolon-separated model labels as in the tables: run only those neural models "
        "(the seasonal baselines and ARIMA always run)",
    )
    p.add_argument(
        "--mim-kwargs",
        default="{}",
        help='JSON of MIMModel arguments applied to every MIM model, e.g. \'{"input_window_loss": '
        "true}' (for trying a setting on --split val); TrainingRecipe fields may be given at the "
        'top level, as there, or under "training_recipe"',
    )
    p.add_argument(
        "--tag",
        default="",
        help="name of a variant run (e.g. with --mim-kwargs): its sections are kept next to, not "
        "instead of, the untagged ones",
    )
    p.add_argument(
        "--radar-predictions",
        default=None,
        metavar="NPZ",
        help="radar: write the scored frames, LK's extrapolation and the recipe's nowcasts (one per "
        "seed) here, for `radar_loeo.py --fit-weights NPZ` (run it on --split val)",
    )
    p.add_argument(
        "--radar-lead-weights",
        default=None,
        metavar="W1,...,W6",
        help="radar: also score the recipe with its correction of LK's extrapolation weighted per "
        "lead (weights fitted on --split val)",
    )
    p.add_argument("--jobs", type=int, default=1, help="data sets run in parallel (default 1)")
    p.add_argument("--quick", action="store_true", help="smoke test: tiny slices and models")
    p.add_argument("--paper", action="store_true", help="Moving MNIST in the paper's setting")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--out-dir", default=str(HERE), help="where results md and plots go")
    p.add_argument("--section-json", default=None, help=argparse.SUPPRESS)  # --jobs workers
    args = p.parse_args(argv)
    args.data = Path(args.data) if args.data else default_data_dir()
    if not args.data.is_dir():
        raise FileNotFoundError(f"--data {args.data} is not a directory; point it at shared/data.")
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(DATASETS))
    if unknown or not only:
        raise ValueError(f"--only got {unknown or only}; choose from {','.join(DATASETS)}.")
    args.only = only
    args.seeds = parse_seeds(args.seeds)
    args.models = [m.strip() for m in args.models.split(";") if m.strip()]
    try:
        args.mim_kwargs = json.loads(args.mim_kwargs)
    except json.JSONDecodeError as err:
        raise ValueError(f"--mim-kwargs is not valid JSON ({err}): {args.mim_kwargs!r}.") from None
    if not isinstance(args.mim_kwargs, dict):
        raise ValueError(f"--mim-kwargs must be a JSON object, got {args.mim_kwargs!r}.")
    bad_steps = args.steps is not None and args.steps < 1
    if args.epochs < 1 or args.seconds < 1 or args.jobs < 1 or bad_steps:
        raise ValueError("--steps, --epochs, --seconds and --jobs must be >= 1.")
    if args.radar_lead_weights is not None:
        weights = [float(w) for w in args.radar_lead_weights.split(",") if w.strip()]
        if len(weights) != 6:
            raise ValueError(f"--radar-lead-weights needs 6 weights (one per lead), got {weights}.")
        args.radar_lead_weights = weights
    args.out_dir = Path(args.out_dir)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    return args


def run_section(name: str, args, work_dir: str) -> Section:
    """Run one data set and time it."""
    t0 = time.perf_counter()
    if name in ("bike", "taxi"):
        sec = crowd(name, args, work_dir)
    elif name == "etth1":
        sec = etth1(args, work_dir)
    elif name == "radar":
        sec = radar(args, work_dir)
    else:
        sec = mnist(args, work_dir)
    sec.lines += ["", f"Section wall time: {time.perf_counter() - t0:.0f} s."]
    if args.tag:  # its own section in the results file, next to the untagged one
        sec.title = sec.title.replace(":", f" [{args.tag}]:", 1)
    return sec


def worker_argv(args, name: str, out: Path) -> list[str]:
    """Command line of a worker process that runs one data set and writes its section to ``out``."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--only", name, "--data", str(args.data)]
    argv += ["--epochs", str(args.epochs), "--seconds", str(args.seconds), "--split", args.split]
    argv += ["--threads", str(args.threads), "--out-dir", str(args.out_dir)]
    argv += ["--section-json", str(out), "--seeds", ",".join(map(str, args.seeds))]
    argv += ["--models", ";".join(args.models), "--mim-kwargs", json.dumps(args.mim_kwargs)]
    argv += ["--tag", args.tag]
    # the radar options: a worker without them scored no lead weights and wrote no predictions
    if getattr(args, "radar_lead_weights", None) is not None:
        argv += ["--radar-lead-weights", ",".join(f"{w!r}" for w in args.radar_lead_weights)]
    if getattr(args, "radar_predictions", None):
        argv += ["--radar-predictions", str(args.radar_predictions)]
    if args.steps:
        argv += ["--steps", str(args.steps)]
    argv += [flag for flag, on in (("--quick", args.quick), ("--paper", args.paper)) if on]
    return argv + (["--ablations"] if args.ablations else [])


def run_parallel(args) -> list[Section]:
    """Run the data sets in ``args.jobs`` worker processes (one torch thread each by default)."""
    sections: dict[str, Section] = {}
    pending, running = list(args.only), []
    with tempfile.TemporaryDirectory() as tmp:
        while pending or running:
            while pending and len(running) < args.jobs:
                name = pending.pop(0)
                out = Path(tmp) / f"{name}.json"
                running.append((name, out, subprocess.Popen(worker_argv(args, name, out))))
            time.sleep(1)
            for item in list(running):
                name, out, proc = item
                if proc.poll() is None:
                    continue
                running.remove(item)
                if proc.returncode != 0:
                    raise RuntimeError(f"the {name} worker failed (exit {proc.returncode}).")
                sections[name] = Section(**json.loads(out.read_text()))
    return [sections[name] for name in args.only]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "darts"):
        logging.getLogger(name).setLevel(logging.ERROR)
    t_start = time.perf_counter()
    if args.jobs > 1 and len(args.only) > 1:
        sections = run_parallel(args)
    else:
        sections = []
        with tempfile.TemporaryDirectory() as work_dir:
            for name in args.only:
                sec = run_section(name, args, work_dir)
                sections.append(sec)
                print(f"\n## {sec.title}\n\n" + "\n".join(sec.lines), flush=True)
    if args.section_json:  # a --jobs worker: hand the section back, write nothing else
        Path(args.section_json).write_text(json.dumps(asdict(sections[0])))
        return 0
    total = time.perf_counter() - t_start
    write_results(args, sections, total)
    print(f"\nTotal wall time {total:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")
    sys.exit(main())
