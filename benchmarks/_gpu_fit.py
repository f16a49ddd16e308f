"""The fit parts of ``gpu_check.py``: ``MIMModel.fit`` on the device, with and without CUDA graphs.

1. Equal work (``_fit_timing``): seconds per epoch of ``MIMModel.fit`` in float32 with and without
   ``TrainingRecipe(cuda_graphs=True)``, and in bf16-mixed, each against epochs of a bare literal
   torch loop that alternate with the fit's.
2. Defaults: ``MIMModel(12, 6)`` with every default on the bundled bike grid, fitted twice with the
   same seed, the recipe's ``cuda_graphs`` off and on: seconds per epoch, validation RMSE, the
   largest difference between the two forecasts, and how many training calls the graphs answered.
   The check fails when a GPU run replays nothing or the two forecast errors are more than 1 %
   apart.
"""

from __future__ import annotations

import statistics

import numpy as np
import torch
from _common import Config, build
from _fit_timing import BareEpochs, equal_work_kwargs, fit_epoch_seconds, grid_series

from darts_mim import TrainingRecipe
from darts_mim.evaluation import rmse

# The same training replayed from graphs may differ from eager in float rounding only (the kernels
# are the ones eager runs): a forecast RMSE further apart than this fails the check.
RMSE_TOLERANCE = 0.01
# (label, precision, cuda_graphs): MIMModel.fit's variants timed against the bare float32 loop
FIT_VARIANTS = (
    ("fp32", "32-true", False),
    ("fp32 + CUDA graphs", "32-true", True),
    ("bf16-mixed", "bf16-mixed", False),
)


def fit_speed(case: Config, device: torch.device, variant: tuple, smoke: bool) -> dict:
    """Seconds per epoch of ``MIMModel.fit`` at equal work and of the bare literal loop (float32)
    whose epochs alternate with it, on ``device``."""
    _, precision, graphs = variant
    batches, epochs = (2, 2) if smoke else (8, 4)
    series = grid_series(case, batches * case.batch)
    bare = BareEpochs(build(case, "literal", layer_norm=False).to(device), case, series)
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    kwargs = equal_work_kwargs(case, False, precision, cuda_graphs=graphs)
    fit_s, n_batches, model = fit_epoch_seconds(
        series, epochs, bare=bare, accelerator=accelerator, **kwargs
    )
    bare_s = statistics.median(bare.times[1:])
    return {
        "fit_s": fit_s,
        "bare_s": bare_s,
        "batches": n_batches,
        "replays": model.model.cuda_graph_replays,
        "fallback": model.model.cuda_graph_fallback,
    }


def fit_table(rows: list[dict]) -> list[str]:
    lines = [
        "| config | MIMModel.fit | batches/epoch | fit s/epoch | literal loop s/epoch (fp32) | "
        "x literal loop | graph replays |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for label, _, _ in FIT_VARIANTS:
            f = row.get(f"fit_{label}")
            if f is None:
                lines.append(f"| {row['case']} | {label} | failed | - | - | - | - |")
                continue
            replays = str(f["replays"]) + (f" ({f['fallback']})" if f["fallback"] else "")
            lines.append(
                f"| {row['case']} | {label} | {f['batches']} | {f['fit_s']:.3f} | "
                f"{f['bare_s']:.3f} | {f['bare_s'] / f['fit_s']:.2f} | {replays} |"
            )
    return lines


def defaults_check(device: torch.device, smoke: bool) -> dict:
    """``MIMModel(12, 6)`` with every default on the bike grid, ``cuda_graphs`` off and on (the
    default recipe, ``TrainingRecipe()``, with ``cuda_graphs`` set)."""
    from darts_mim.datasets import load_bike_flows

    series = load_bike_flows().series.astype(np.float32)
    n_train, n_val = (80, 40) if smoke else (640, 120)
    series = series[-(n_train + n_val) :]
    train, val = series[:n_train], series[n_train - 12 :]
    out = {}
    for graphs in (False, True):
        s_epoch, _, model = fit_epoch_seconds(
            train,
            2 if smoke else 3,
            accelerator="gpu" if device.type == "cuda" else "cpu",
            fit_kwargs={"val_series": val},
            input_chunk_length=12,
            output_chunk_length=6,
            training_recipe=TrainingRecipe(cuda_graphs=graphs),
        )
        forecast = model.predict(6, series=train).values()
        out[graphs] = {
            "s_epoch": s_epoch,
            "rmse": rmse(forecast, val[12:18].values()),
            "forecast": forecast,
            "replays": model.model.cuda_graph_replays,
            "fallback": model.model.cuda_graph_fallback,
        }
    eager, graphed = out[False], out[True]
    problems = []
    if device.type == "cuda" and graphed["replays"] == 0:
        problems.append(f"no training call was replayed from CUDA graphs ({graphed['fallback']})")
    if abs(graphed["rmse"] / eager["rmse"] - 1) > RMSE_TOLERANCE:
        problems.append(
            f"the forecast RMSE with CUDA graphs ({graphed['rmse']:.4f}) is not within "
            f"{RMSE_TOLERANCE:.0%} of eager training's ({eager['rmse']:.4f})"
        )
    return {
        "eager": eager,
        "graphed": graphed,
        "max_diff": float(np.abs(eager["forecast"] - graphed["forecast"]).max()),
        "problems": problems,
    }


def defaults_table(check: dict) -> list[str]:
    eager, graphed = check["eager"], check["graphed"]
    lines = [
        "| MIMModel(12, 6), defaults, bike grid | s/epoch | forecast RMSE (6 steps) | "
        "graph replays |",
        "|---|---|---|---|",
    ]
    for label, r in (("cuda_graphs=False", eager), ("cuda_graphs=True", graphed)):
        replays = str(r["replays"]) + (f" ({r['fallback']})" if r["fallback"] else "")
        lines.append(f"| {label} | {r['s_epoch']:.3f} | {r['rmse']:.3f} | {replays} |")
    lines.append(
        f"\nx{eager['s_epoch'] / graphed['s_epoch']:.2f} per epoch with graphs; largest difference "
        f"between the two forecasts: {check['max_diff']:.2e}"
    )
    return lines
