# %% [markdown]
# # Multivariate series: ETTh1 with `MIMModel`, TCN and ARIMA
#
# ETTh1 (Zhou et al., "Informer", AAAI 2021) holds hourly loads of an electricity transformer (six
# columns) and its oil temperature `OT`. A plain multivariate series is a grid of 7 channels on 1 x 1
# cells for `MIMModel`; with `filter_size=1` its cells are fully connected LSTM-like cells.
#
# We backtest three models with `historical_forecasts(retrain=False)` on the last days:
# `MIMModel` and `TCNModel` forecast all 7 columns; ARIMA (with daily Fourier terms) is fitted on one
# column, `OT`, the usual target of this data set. The table compares all three on `OT`, and the two
# neural models on all 7 columns.
#
# Data: `<DARTS_MIM_DATA or ../shared/data>/series/ETTh1.csv`, falling back to the 2000-row head in
# `tests/data` (always used with `DARTS_MIM_FAST=1`). Pictures go to `DARTS_MIM_OUT`
# (default `tutorials/output`).

# %%
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from darts import TimeSeries
from darts.dataprocessing.transformers import Scaler
from darts.metrics import mae, rmse
from darts.models import ARIMA, TCNModel

from darts_mim import MIMModel
from darts_mim.datasets import DataNotFoundError, default_data_dir, load_csv_series
from darts_mim.plotting import plot_cell_series, plot_error_by_horizon

FAST = os.environ.get("DARTS_MIM_FAST") == "1"
REPO = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("DARTS_MIM_OUT", REPO / "tutorials" / "output"))
OUT.mkdir(parents=True, exist_ok=True)
if FAST:
    torch.set_num_threads(1)  # tests share two busy cores

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

ICL, OCL = (24, 12) if FAST else (48, 24)
n_test = 4 * OCL if FAST else 7 * 24  # backtest windows at the end
n_train = 500 if FAST else 120 * 24
series = series[-(n_train + n_test) :]
train = series[:-n_test]
test_start = len(series) - n_test
trainer = {"accelerator": "cpu", "enable_progress_bar": not FAST, "enable_model_summary": False}

# %% [markdown]
# ## Scale, fit the neural models
# Columns differ in range: scale each to [0, 1] with a `Scaler` fitted on the training part only.

# %%
scaler = Scaler()
train_s = scaler.fit_transform(train)
series_s = scaler.transform(series)
models = {
    "MIM": MIMModel(
        input_chunk_length=ICL,
        output_chunk_length=OCL,
        num_hidden=(4, 4) if FAST else (32, 32),
        filter_size=1,
        n_epochs=1 if FAST else 10,
        random_state=0,
        work_dir=str(OUT / "work"),
        pl_trainer_kwargs=trainer,
    ),
    "TCN": TCNModel(
        input_chunk_length=ICL,
        output_chunk_length=OCL,
        num_filters=4 if FAST else 16,
        kernel_size=3,
        n_epochs=1 if FAST else 10,
        random_state=0,
        work_dir=str(OUT / "work"),
        pl_trainer_kwargs=trainer,
    ),
}
forecasts, fit_s = {}, {}
for name, model in models.items():
    t0 = time.perf_counter()
    model.fit(train_s)
    fit_s[name] = time.perf_counter() - t0
    fc = model.historical_forecasts(
        series_s,
        start=test_start,
        forecast_horizon=OCL,
        stride=OCL,
        retrain=False,
        last_points_only=False,
        verbose=False,
    )
    forecasts[name] = [scaler.inverse_transform(f) for f in fc]

# %% [markdown]
# ## ARIMA on `OT`
# ARIMA is univariate here: `OT` alone, with sine / cosine of the hour of day as future covariates so
# that it can follow the daily cycle.

# %%
ot = series["OT"]
hours = pd.date_range(series.start_time(), periods=len(series) + OCL, freq=series.freq)
angle = 2 * np.pi * hours.hour.to_numpy() / 24
fourier = TimeSeries.from_times_and_values(
    hours, np.stack([np.sin(angle), np.cos(angle)], axis=1), columns=["sin", "cos"]
)
arima = ARIMA(p=2, d=1, q=1)
t0 = time.perf_counter()
arima.fit(ot[:test_start][-(300 if FAST else 30 * 24) :], future_covariates=fourier)
fit_s["ARIMA"] = time.perf_counter() - t0
forecasts["ARIMA"] = arima.historical_forecasts(
    ot,
    future_covariates=fourier,
    start=test_start,
    forecast_horizon=OCL,
    stride=OCL,
    retrain=False,
    last_points_only=False,
    verbose=False,
)

# %% [markdown]
# ## The table (original units)
# Darts' metrics take one actual series per forecast window and give one value per window; we average
# them over the windows (and, for 7 columns, over the columns).

# %%
rows = []
for name, fcs in forecasts.items():
    ot_fc = [f["OT"] for f in fcs]
    row = {
        "model": name,
        "MAE OT": np.mean(mae([ot] * len(ot_fc), ot_fc)),
        "RMSE OT": np.mean(rmse([ot] * len(ot_fc), ot_fc)),
        "MAE 7 cols": np.mean(mae([series] * len(fcs), fcs)) if name != "ARIMA" else np.nan,
        "RMSE 7 cols": np.mean(rmse([series] * len(fcs), fcs)) if name != "ARIMA" else np.nan,
        "fit (s)": fit_s[name],
    }
    rows.append(row)
table = pd.DataFrame(rows).set_index("model")
print(f"Backtest: {len(forecasts['MIM'])} windows of {OCL} hours at the end of the data")
print(table.round(3).to_string())

# %% [markdown]
# ## Pictures: error of `OT` by horizon, and the forecasts of `OT`

# %%
by_step = {}
for name, fcs in forecasts.items():
    pred = np.stack([f["OT"].values()[:, 0] for f in fcs])
    true = np.stack([ot.slice_intersect(f).values()[:, 0] for f in fcs])
    by_step[name] = np.abs(pred - true).mean(axis=0)
plot_error_by_horizon(
    by_step, OUT / "02_etth1_error_by_horizon.png", metric="MAE of OT (deg C)", title="ETTh1, OT"
)
plot_cell_series(
    ot[test_start - 2 * OCL : test_start],
    [f["OT"] for f in forecasts["MIM"]],
    "OT",
    OUT / "02_etth1_ot_forecasts.png",
    truth=ot[test_start:],
    title="OT: MIM historical forecasts vs observed",
)
print("wrote", OUT / "02_etth1_error_by_horizon.png", "and", OUT / "02_etth1_ot_forecasts.png")
