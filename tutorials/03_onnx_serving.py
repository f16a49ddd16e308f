# %% [markdown]
# # Serving with ONNX Runtime: export, batch many series, compare with torch
#
# `MIMModel.to_onnx(path)` writes the network as one ONNX file with everything the runtime needs in
# its metadata (chunk lengths, grid, components). `OnnxForecaster` forecasts with ONNX Runtime
# without importing torch, many series per call, autoregressively beyond `output_chunk_length`, and
# returns the same `TimeSeries` as `MIMModel.predict`.
#
# `DARTS_MIM_FAST=1` shrinks the model and data (for tests); pictures go to `DARTS_MIM_OUT`
# (default `tutorials/output`).

# %%
import os
import time
from pathlib import Path

import numpy as np
import torch
from darts.dataprocessing.transformers import Scaler

from darts_mim import MIMModel, OnnxForecaster, series_to_grid
from darts_mim.datasets import load_bike_flows
from darts_mim.plotting import plot_frames

FAST = os.environ.get("DARTS_MIM_FAST") == "1"
OUT = Path(os.environ.get("DARTS_MIM_OUT", Path(__file__).resolve().parent / "output"))
OUT.mkdir(parents=True, exist_ok=True)
if FAST:
    torch.set_num_threads(1)  # tests share two busy cores

# %% [markdown]
# ## A model to serve
# A small MIM model on the bike-flow grid (see tutorial 01). Export in float32: ONNX Runtime's CPU
# convolution has no float64 kernel (the bike data is float32 already).

# %%
series = load_bike_flows().series[-(4 if FAST else 21) * 48 :]
scaler = Scaler()
series_s = scaler.fit_transform(series)
model = MIMModel(
    input_chunk_length=12,
    output_chunk_length=6,
    num_hidden=(4, 4) if FAST else (16, 16),
    filter_size=3,
    n_epochs=1 if FAST else 3,
    random_state=0,
    work_dir=str(OUT / "work"),
    pl_trainer_kwargs={
        "accelerator": "cpu",
        "enable_progress_bar": not FAST,
        "enable_model_summary": not FAST,
    },
)
model.fit(series_s)

# %% [markdown]
# ## Export
# The exporter traces the recurrent loop over all 18 steps, which takes a while even for a small model.

# %%
t0 = time.perf_counter()
path = model.to_onnx(str(OUT / "03_mim_bike.onnx"))
print(f"exported {path} ({os.path.getsize(path) / 1e6:.2f} MB) in {time.perf_counter() - t0:.1f} s")

# %% [markdown]
# ## Serve many series at once
# Here: one input window ending at each of the last `k` half-hours, i.e. `k` forecasts of 6 steps.
# `OnnxForecaster.predict` stacks them into batches of up to `batch_size` per `session.run`.

# %%
forecaster = OnnxForecaster(path)
k = 16 if FAST else 256
windows = [series_s[: len(series_s) - i] for i in range(k)]
t0 = time.perf_counter()
onnx_fc = forecaster.predict(6, windows, batch_size=64)
onnx_s = time.perf_counter() - t0
t0 = time.perf_counter()
torch_fc = model.predict(6, series=windows, verbose=False)
torch_s = time.perf_counter() - t0
diff = max(
    float(np.abs(a.values() - b.values()).max()) for a, b in zip(onnx_fc, torch_fc, strict=True)
)
print(f"{k} forecasts: ONNX Runtime {onnx_s:.2f} s, torch (Darts predict) {torch_s:.2f} s")
print(f"max |ONNX - torch| on the scaled values: {diff:.2e}")
assert diff < 1e-3, "the ONNX graph disagrees with the torch model"

# %% [markdown]
# ## Longer horizons
# Beyond `output_chunk_length` both continue autoregressively, feeding forecasts back as inputs.

# %%
long_onnx = forecaster.predict(12, series_s)
long_torch = model.predict(12, series=series_s, verbose=False)
print(
    "12-step forecast, max difference:",
    float(np.abs(long_onnx.values() - long_torch.values()).max()),
)

# %% [markdown]
# ## Picture: the ONNX forecast after the end of the data vs the torch one

# %%
plot_frames(
    series_to_grid(scaler.inverse_transform(long_torch)),
    series_to_grid(scaler.inverse_transform(long_onnx)),
    channel=0,
    path=OUT / "03_onnx_vs_torch.png",
    title="Inflow forecast: torch (top) vs ONNX Runtime (middle)",
)
print("wrote", OUT / "03_onnx_vs_torch.png")
