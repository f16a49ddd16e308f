"""The Moving MNIST section of ``accuracy.py``: MIM vs the stlstm ablation under a CPU budget, or in the
paper's setting (``--paper``); per-frame MSE / MAE and SSIM. See the docstring of ``accuracy.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from accuracy_common import (
    Budget,
    Section,
    backtest_seeds,
    common_kwargs,
    fit_timed,
    mim_model,
    seeds_line,
)
from accuracy_scoring import markdown_table, plot_by_step, seed_spread

from darts_mim import grid_to_series
from darts_mim.datasets import moving_mnist


def ssim_per_frame(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean SSIM over frames, Gaussian window 11 / sigma 1.5, data range 1 (torchmetrics)."""
    from torchmetrics.image import StructuralSimilarityIndexMeasure

    metric = StructuralSimilarityIndexMeasure(data_range=1.0, reduction="elementwise_mean")
    p = torch.from_numpy(pred.reshape(-1, 1, *pred.shape[-2:]).astype(np.float32))
    t = torch.from_numpy(true.reshape(-1, 1, *true.shape[-2:]).astype(np.float32))
    return float(metric(p, t))


def paper_mnist_kwargs(work_dir: str) -> dict:
    """The paper's Moving MNIST setting (Wang et al., 2019), on a GPU when there is one."""
    trainer = {"enable_progress_bar": True}
    if torch.cuda.is_available():
        trainer["accelerator"] = "gpu"
    return {
        "num_hidden": (64, 64, 64, 64),
        "filter_size": 5,
        "patch_size": 4,
        "optimizer_kwargs": {"lr": 1e-3},
        "batch_size": 8,
        "sampling_decay_steps": 50_000,
        "pl_trainer_kwargs": {**trainer, "max_steps": 80_000},
        "n_epochs": 10_000,  # max_steps (80k iterations) ends training first
        "work_dir": work_dir,
        "random_state": 0,
    }


def mnist(args, work_dir: str) -> Section:
    """Moving MNIST: MIM vs the stlstm ablation under a CPU budget (or the paper's setting)."""
    mdir = Path(args.data) / "mnist"
    if args.quick:
        n_train, n_test, hidden = 16, 4, (4, 4)
        budget = Budget(args.steps or 2, args.seconds, 4, args.epochs)
    else:
        n_train, n_test, hidden = 500, 100, (32, 32)
        budget = Budget(args.steps or 300, args.seconds, 8, args.epochs)
    if args.paper:
        n_train = 10_000
    train_seqs = moving_mnist(mdir, n_sequences=n_train, seed=0, as_series=True)
    test_arr = moving_mnist(mdir, n_sequences=n_test, seed=12345)
    test_in = [grid_to_series(seq[:10], pd.RangeIndex(0, 10), ["intensity"]) for seq in test_arr]
    if args.paper:
        base = paper_mnist_kwargs(work_dir)
        setting = "paper setting: 4x64, filter 5, patch 4, lr 1e-3, batch 8, 80k iterations"
    else:
        base = {
            "num_hidden": hidden,
            "filter_size": 3,
            "patch_size": 4,
            "sampling_decay_steps": budget.steps,
            "optimizer_kwargs": {"lr": 1e-3},
            **common_kwargs(budget, work_dir),
        }
        setting = (
            f"CPU budget: 64x64, patch 4, num_hidden={hidden}, filter 3, lr 1e-3, "
            f"{budget.steps} steps of batches of {budget.batch_size}, capped at "
            f"{budget.max_seconds} s"
        )

    def models_for(seed: int) -> dict:
        kw = {**base, "random_state": seed}
        return {
            "MIM": (mim_model(args, 10, 10, **kw), None),
            "MIM stlstm (PredRNN)": (mim_model(args, 10, 10, cell_type="stlstm", **kw), None),
        }

    truth = test_arr[:, 10:, 0]  # (S, 10, 64, 64)

    def run(model, _):
        secs, steps = fit_timed(model, train_seqs)
        t0 = time.perf_counter()
        out = model.predict(10, series=test_in, verbose=False)
        pred_s = time.perf_counter() - t0
        pred = np.clip(np.stack([o.values() for o in out]).reshape(truth.shape), 0.0, 1.0)
        return pred, (secs, pred_s, steps), None

    preds, timing, _ = backtest_seeds("mnist", models_for, args, run)
    rows, curves, by_seed = [], {}, []
    for label, runs in preds.items():
        sq = [((p - truth) ** 2).sum(axis=(2, 3)) for p in runs]  # per frame (S, 10)
        mses = [float(v.mean()) for v in sq]
        ssims = [ssim_per_frame(p, truth) for p in runs]
        fit_s, pred_s, steps = np.mean(timing[label], axis=0)
        rows.append(
            [label, float(np.mean(mses)), seed_spread(mses)]
            + [float(np.mean([np.abs(p - truth).sum(axis=(2, 3)).mean() for p in runs]))]
            + [float(np.mean(ssims)), seed_spread(ssims), int(steps)]
            + [round(float(fit_s), 1), round(float(pred_s), 1)]
        )
        curves[label] = np.mean([v.mean(axis=0) for v in sq], axis=0)
        if len(runs) > 1:
            by_seed.append(
                [label] + [f"{m:.1f} / {q:.3f}" for m, q in zip(mses, ssims, strict=True)]
            )
    # reference: copy the last input frame
    last = np.repeat(test_arr[:, 9:10, 0], 10, axis=1)
    sq = ((last - truth) ** 2).sum(axis=(2, 3))
    rows.append(
        ["copy last frame", float(sq.mean()), "-"]
        + [float(np.abs(last - truth).sum(axis=(2, 3)).mean()), ssim_per_frame(last, truth), "-"]
        + [0, 0.0, 0.0]
    )
    curves["copy last frame"] = sq.mean(axis=0)
    sec = Section("mnist: Moving MNIST 64x64, 2 digits, 10 -> 10")
    sec.lines += [
        f"{n_train} training sequences (seed 0) from the MNIST test digits, {n_test} test sequences "
        f"(seed 12345); {setting}. MSE and MAE per frame (sums over 4096 pixels), SSIM mean over "
        "frames." + seeds_line(args.seeds),
        "",
    ]
    header = ["model", "MSE / frame", "MSE sd", "MAE / frame", "SSIM", "SSIM sd", "steps"]
    sec.lines += markdown_table(header + ["fit s", "predict s"], rows)
    if by_seed:
        sec.lines += ["", f"MSE / SSIM by seed (seeds {list(args.seeds)}):", ""]
        sec.lines += markdown_table(["model"] + [f"seed {s}" for s in args.seeds], by_seed)
    fname = plot_by_step("mnist", curves, "MSE per frame", args)
    sec.lines += ["", f"![mnist]({fname})"]
    return sec
