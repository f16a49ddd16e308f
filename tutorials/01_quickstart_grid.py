# %% [markdown]
# # Quickstart: forecast a grid of bike flows with `MIMModel`
#
# The NYC Citi Bike data bundled with `darts-mim` counts the bikes that arrive (inflow) and leave
# (outflow) each cell of a 14 x 8 grid over Manhattan, every 30 minutes, for 90 days. `MIMModel`
# reads the last 12 frames (6 hours) and forecasts the next 6 (3 hours).
#
# Run it with `python tutorials/01_quickstart_grid.py`. Environment variables:
# `DARTS_MIM_FAST=1` shrinks data and epochs (for tests); `DARTS_MIM_OUT` is where the pictures go
# (default `tutorials/output`).

# %%
import os
import time
from pathlib import Path

import numpy as np
import torch
from darts.dataprocessing.transformers import Scaler

from darts_mim import MIMModel, series_to_grid
from darts_mim.datasets import load_bike_flows
from darts_mim.plotting import plot_frames

FAST = os.environ.get("DARTS_MIM_FAST") == "1"
OUT = Path(os.environ.get("DARTS_MIM_OUT", Path(__file__).resolve().parent / "output"))
OUT.mkdir(parents=True, exist_ok=True)
if FAST:
    torch.set_num_threads(1)  # tests share two busy cores; tiny convolutions gain nothing from more

# %% [markdown]
# ## The data
# `load_bike_flows()` returns a gridded `TimeSeries` (224 components: 2 channels x 14 x 8 cells, in
# channel-major order, with the grid in its metadata) and 65 calendar / weather covariates.

# %%
flows = load_bike_flows()
print(flows.series.n_components, "components,", len(flows.series), "steps, grid", flows.grid)
days = 4 if FAST else 21
series = flows.series[-days * 48 :]
train, test = series[:-6], series[-18:]  # hold out the last 6 steps; keep 12 before them as input

# %% [markdown]
# ## Fit
# Neural networks like inputs of order 1: scale every component to [0, 1] with the training data's
# range (a Darts `Scaler`, fitted on the training part only).

# %%
scaler = Scaler()
train_s = scaler.fit_transform(train)
model = MIMModel(
    input_chunk_length=12,
    output_chunk_length=6,
    num_hidden=(4, 4) if FAST else (16, 16),
    filter_size=3,
    n_epochs=1 if FAST else 3,
    batch_size=32,
    random_state=0,
    work_dir=str(OUT / "work"),
    pl_trainer_kwargs={
        "accelerator": "cpu",
        "enable_progress_bar": not FAST,
        "enable_model_summary": not FAST,
    },
)
t0 = time.perf_counter()
model.fit(train_s)
print(f"fitted in {time.perf_counter() - t0:.1f} s")

# %% [markdown]
# ## Predict and compare with the held-out frames
# The forecast is a gridded `TimeSeries` again; `series_to_grid` turns it into `(T, C, H, W)` frames.

# %%
forecast = scaler.inverse_transform(model.predict(6, series=train_s))
pred = series_to_grid(forecast)
true = series_to_grid(series[-6:])
rmse = float(np.sqrt(np.mean((pred - true) ** 2)))
naive = series_to_grid(series[-6 - 48 : -48])  # the same half-hours one day earlier
rmse_naive = float(np.sqrt(np.mean((naive - true) ** 2)))
print(f"RMSE per cell: MIM {rmse:.2f}, seasonal naive {rmse_naive:.2f} (bikes / 30 min)")

# %%
fig = plot_frames(
    true,
    pred,
    channel=0,
    path=OUT / "01_quickstart_frames.png",
    title="Inflow: true vs MIM forecast",
)
print("wrote", OUT / "01_quickstart_frames.png")
