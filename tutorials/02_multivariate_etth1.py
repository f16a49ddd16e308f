# %% [markdown]
# # Multivariate series: ETTh1 with a period-folded `MIMModel`, DLinear and NHiTS
#
# ETTh1 (Zhou et al., "Informer", AAAI 2021) holds hourly loads of an electricity transformer (six
# columns) and its oil temperature `OT`. A plain series has no grid, so `MIMModel` **folds** it by its
# period (`fold_period="auto"`: 24 for hourly data): frame `k` of the network holds day `k` of each
# column as a `1 x 24` strip. The recurrence runs across days, MIM's differencing between frames becomes
# a learned seasonal differencing, and the convolutions run along the hour of the day. An input of 96
# hours is 4 frames, not 96 steps.
#
# We follow the literature's protocol in small: every column z-scored with the training statistics,
# input 96 hours, horizon 96, early stopping on a validation period, then a backtest on the last weeks
# with `historical_forecasts(retrain=False)`, against Darts' `DLinearModel` and `NHiTSModel` and the
# 24-hour seasonal naive forecast. MIM gets the settings that won on ETTh1's validation months
# (`benchmarks/long_horizon_results.md`): the defaults plus reversible instance norm and channel
# independence (each column its own sample, shared weights); DLinear and NHiTS get instance norm too.
#
# Data: `<DARTS_MIM_DATA or ../shared/data>/series/ETTh1.csv`, falling back to the 2000-row head in
# `tests/data` (always used with `DARTS_MIM_FAST=1`), e.g. in a fresh clone. On that copy the
# tutorial splits the 2000 hours 60 / 20 / 20 % and says so: it shows the workflow, but 17 days of
# test are no ETTh1 benchmark. Pictures go to `DARTS_MIM_OUT` (default `tutorials/output`).

# %%
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from darts.dataprocessing.transformers import Scaler
from darts.models import DLinearModel, NaiveSeasonal, NHiTSModel
from sklearn.preprocessing import StandardScaler

from darts_mim import MIMModel
from darts_mim.datasets import DataNotFoundError, default_data_dir, load_csv_series
from darts_mim.plotting import plot_cell_series, plot_error_by_horizon

FAST = os.environ.get("DARTS_MIM_FAST") == "1"
REPO = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("DARTS_MIM_OUT", REPO / "tutorials" / "output"))
OUT.mkdir(parents=True, exist_ok=True)
# One torch thread, as `darts-mim demo` does: this model's convolutions are tiny, and on a small or
# shared CPU intra-op threads cost more in synchronisation than they gain (README, "Quickstart").
# On a big idle machine or a GPU, delete this line.
torch.set_num_threads(1)

# %%
csv = REPO / "tests" / "data" / "ETTh1_first2000.csv"
if not FAST:
    try:
        full = default_data_dir() / "series" / "ETTh1.csv"
        csv = full if full.is_file() else csv
    except DataNotFoundError:
        pass
series = load_csv_series(csv).astype(np.float32)
print(f"{csv.name}: {len(series)} hourly steps, columns {list(series.components)}")

ICL, H = (48, 24) if FAST else (96, 96)
# train / validation / test in hours: the protocol's 12 / 4 / 4 months (8640 / 2880 / 2880) when the
# full ETTh1 is there, else the same 60 / 20 / 20 % of the rows this run actually loaded
PROTOCOL = (8640, 2880, 2880)
FALLBACK = len(series) < sum(PROTOCOL)
if FAST:
    n_train, n_val, n_test = 1400, 300, 300
elif not FALLBACK:
    n_train, n_val, n_test = PROTOCOL
else:
    n_val = n_test = int(0.2 * len(series))
    n_train = len(series) - n_val - n_test
if n_val < H or n_test < H or n_train < ICL + H:
    raise SystemExit(f"{csv.name} has {len(series)} rows: too few for {ICL} hours in, {H} out.")
series = series[: n_train + n_val + n_test]
val_end = n_train + n_val
print(f"train / validation / test: {n_train} / {n_val} / {n_test} hours")
if FALLBACK:
    print(
        (
            "NOTE: fast mode"
            if FAST
            else f"NOTE: the full ETTh1 ({sum(PROTOCOL)} hours) was not found"
        )
        + f" (DARTS_MIM_DATA or ../shared/data), so this runs on the small {len(series)}-row copy "
        "bundled in tests/data.\n"
        f"      It shows the workflow only: the test period is {n_test / 24:.0f} days "
        f"({series.time_index[val_end]:%Y-%m-%d} to {series.end_time():%Y-%m-%d}), not 4 months, "
        "and the scores are not comparable with the literature's ETTh1 figures "
        "(benchmarks/long_horizon_results.md)."
    )

# %% [markdown]
# ## z-score every column with the training statistics

# %%
scaler = Scaler(StandardScaler())
scaler.fit(series[:n_train])
scaled = scaler.transform(series)
train = scaled[:n_train]
val = scaled[n_train - ICL : val_end]  # the validation windows need one input length before

# %% [markdown]
# ## Fit with the same budget
# Every model: at most `EPOCHS` epochs of the 2000 most recent training windows, batch 32, early
# stopping on the validation period (MIM's default with `val_series`: patience 5, best epoch kept;
# Darts' models: an `EarlyStopping` callback).

# %%
# 5 epochs on the full data; 3 on the bundled 2000-row copy, whose scores mean little anyway
EPOCHS = 1 if FAST else 3 if FALLBACK else 5
SAMPLES = 64 if FAST else 2000
quiet = {"accelerator": "cpu", "enable_progress_bar": not FAST, "enable_model_summary": False}


def darts_trainer():
    from pytorch_lightning.callbacks import EarlyStopping

    return {**quiet, "callbacks": [EarlyStopping("val_loss", patience=2)]}


common = dict(
    input_chunk_length=ICL,
    output_chunk_length=H,
    n_epochs=EPOCHS,
    batch_size=32,
    random_state=0,
    use_reversible_instance_norm=True,
    work_dir=str(OUT / "work"),
)
models = {
    "MIM folded": MIMModel(**common, channel_independent=True, pl_trainer_kwargs=quiet),
    "DLinear": DLinearModel(**common, pl_trainer_kwargs=darts_trainer()),
    "NHiTS": NHiTSModel(**common, pl_trainer_kwargs=darts_trainer()),
}
backtest = dict(
    start=val_end,
    forecast_horizon=H,
    stride=24,  # one origin a day
    retrain=False,
    last_points_only=False,
    verbose=False,
)
forecasts, fit_s = {}, {}
for name, model in models.items():
    t0 = time.perf_counter()
    model.fit(train, val_series=val, max_samples_per_ts=SAMPLES)
    fit_s[name] = time.perf_counter() - t0
    forecasts[name] = model.historical_forecasts(scaled, **backtest)
print(f"MIM frames: {models['MIM folded'].layout.fold} steps each (1 x 24 strips)")
naive = NaiveSeasonal(K=24)
forecasts["seasonal naive (24 h)"] = naive.historical_forecasts(
    scaled, **{**backtest, "retrain": True}
)
fit_s["seasonal naive (24 h)"] = 0.0

# %% [markdown]
# ## The table: MSE and MAE on the z-scored columns
# Averaged over every backtest window, step and column, as the literature reports ETTh1.

# %%
truth = scaled.values()
rows, by_step = [], {}
for name, fcs in forecasts.items():
    pred = np.stack([f.values() for f in fcs])  # (windows, H, 7)
    starts = [scaled.get_index_at_point(f.start_time()) for f in fcs]
    true = np.stack([truth[s : s + H] for s in starts])
    err = pred - true
    rows.append(
        {"model": name, "MSE": np.mean(err**2), "MAE": np.mean(np.abs(err)), "fit (s)": fit_s[name]}
    )
    by_step[name] = np.sqrt(np.mean(err**2, axis=(0, 2)))
table = pd.DataFrame(rows).set_index("model")
print(f"Backtest: {len(forecasts['MIM folded'])} daily origins of {H} hours in the test period")
print(table.round(3).to_string())

# %% [markdown]
# ## Pictures: error by horizon, and MIM's forecasts of `OT`

# %%
plot_error_by_horizon(
    by_step,
    OUT / "02_etth1_error_by_horizon.png",
    metric="RMSE (z-scored)",
    title="ETTh1, 7 columns",
)
ot = scaler.inverse_transform(scaled)["OT"]
mim_ot = [scaler.inverse_transform(f)["OT"] for f in forecasts["MIM folded"][:: max(1, H // 24)]]
plot_cell_series(
    ot[val_end - 2 * H : val_end],
    mim_ot[:3],
    "OT",
    OUT / "02_etth1_ot_forecasts.png",
    truth=ot[val_end : val_end + 3 * H],
    title="OT: folded MIM's forecasts vs observed",
    ylabel="oil temperature OT (deg C)",
)
print("wrote", OUT / "02_etth1_error_by_horizon.png", "and", OUT / "02_etth1_ot_forecasts.png")
