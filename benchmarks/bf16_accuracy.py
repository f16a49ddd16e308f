"""Does bf16 mixed precision cost accuracy? The same MIMModel trained on the bike-flow grid in float32
and in ``precision="bf16-mixed"``, backtested on the same last days (issue 7: within 2 % of float32).

Both runs use the same seed, data, scaling (min-max fitted on the training part) and budget; errors are
on the original scale (bikes per cell and 30 minutes). Prints a markdown table and the ratios.

Usage: ``python benchmarks/bf16_accuracy.py [--epochs 4] [--threads 1] [--quick]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch
from _common import markdown_table
from darts.dataprocessing.transformers import Scaler
from darts.metrics import mae, rmse

from darts_mim import MIMModel
from darts_mim.datasets import load_bike_flows

DAY = 48


def run(precision: str | None, epochs: int, train, test_start: int, series, work_dir: str):
    scaler = Scaler().fit(train)
    model = MIMModel(
        input_chunk_length=12,
        output_chunk_length=6,
        num_hidden=(16, 16),
        input_window_loss=False,  # as when the recorded figures were measured
        filter_size=3,
        n_epochs=epochs,
        batch_size=32,
        random_state=0,
        precision=precision,
        work_dir=work_dir,
        pl_trainer_kwargs={
            "accelerator": "cpu",
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": False,
        },
    )
    start = time.perf_counter()
    model.fit(scaler.transform(train))
    fit_s = time.perf_counter() - start
    forecasts = model.historical_forecasts(
        scaler.transform(series),
        start=test_start,
        forecast_horizon=6,
        stride=6,
        retrain=False,
        last_points_only=False,
    )
    forecasts = [scaler.inverse_transform(f) for f in forecasts]
    truth = [series.slice_intersect(f) for f in forecasts]
    return float(np.mean(rmse(truth, forecasts))), float(np.mean(mae(truth, forecasts))), fit_s


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--quick", action="store_true", help="7 days of training, 1 epoch")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    series = load_bike_flows().series
    train_days, test_days, epochs = (7, 1, 1) if args.quick else (28, 2, args.epochs)
    test_start = len(series) - test_days * DAY
    train = series[test_start - train_days * DAY : test_start]
    history = series[test_start - train_days * DAY :]
    rows = []
    with tempfile.TemporaryDirectory() as work_dir:
        for precision in (None, "bf16-mixed"):
            err, abs_err, fit_s = run(
                precision,
                epochs,
                train,
                test_start - (len(series) - len(history)),
                history,
                work_dir,
            )
            rows.append([precision or "32 (float32)", err, abs_err, fit_s])
    print(
        markdown_table(
            ["precision", "RMSE (mean over forecasts)", "MAE (mean over forecasts)", "fit s"], rows
        )
    )
    ratio = rows[1][1] / rows[0][1]
    verdict = "yes" if abs(ratio - 1) <= 0.02 else "NO"
    print(
        f"\nbf16-mixed / float32: RMSE x{ratio:.4f}, fit time x{rows[1][3] / rows[0][3]:.2f} "
        f"(target: RMSE within 2 %: {verdict})"
    )


if __name__ == "__main__":
    main()
