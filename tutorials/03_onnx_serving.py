# %% [markdown]
# # Serving with ONNX Runtime: export, batch, sample, encoders, a service without torch
#
# `MIMModel.to_onnx(path)` writes the network as one ONNX file with everything the runtime needs in
# its metadata (chunk lengths, grid, components). `OnnxForecaster` forecasts with ONNX Runtime
# without importing torch, many series per call, autoregressively beyond `output_chunk_length`, and
# returns the same `TimeSeries` as `MIMModel.predict`: sample paths for likelihood models, and the
# encodings of models fitted with `add_encoders`. A numpy-only HTTP service serves the same file
# where neither torch nor Darts is installed.
#
# `DARTS_MIM_FAST=1` shrinks the model and data (for tests); pictures go to `DARTS_MIM_OUT`
# (default `tutorials/output`).

# %%
import json
import os
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch
from darts.dataprocessing.transformers import Scaler
from darts.utils.likelihood_models.torch import QuantileRegression

from darts_mim import MIMModel, OnnxForecaster, series_to_grid
from darts_mim.datasets import load_bike_flows
from darts_mim.onnx.service import ForecastService, make_server
from darts_mim.plotting import plot_frames

FAST = os.environ.get("DARTS_MIM_FAST") == "1"
OUT = Path(os.environ.get("DARTS_MIM_OUT", Path(__file__).resolve().parent / "output"))
OUT.mkdir(parents=True, exist_ok=True)
# One torch thread, as `darts-mim demo` does: this model's convolutions are tiny, and on a small or
# shared CPU intra-op threads cost more in synchronisation than they gain (README, "Quickstart").
# On a big idle machine or a GPU, delete this line.
torch.set_num_threads(1)

# %% [markdown]
# ## A model to serve
# A small MIM model on the bike-flow grid, trained briefly (2 epochs on 7 days): this tutorial is
# about serving, and ONNX Runtime reproduces whatever the model forecasts; tutorial 01 and
# `darts-mim demo` are about accuracy. Export in float32: ONNX Runtime's CPU convolution has no
# float64 kernel (the bike data is float32 already).

# %%
series = load_bike_flows().series[-(4 if FAST else 7) * 48 :]
scaler = Scaler()
series_s = scaler.fit_transform(series)
model = MIMModel(
    input_chunk_length=12,
    output_chunk_length=6,
    num_hidden=(4, 4) if FAST else (16, 16),
    filter_size=3,
    n_epochs=1 if FAST else 2,
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

# %% [markdown]
# ## Probabilistic serving, with encoders
# A likelihood model's graph returns the likelihood parameters; `predict(..., num_samples=K)` draws
# `K` sample paths from them with numpy (every Darts likelihood: Gaussian, quantile regression with
# interpolation between the quantiles, Laplace, Poisson, ...), feeding each path's own draws back
# beyond `output_chunk_length`, as `MIMModel.predict(num_samples=K)` does. `random_state` makes
# them reproducible. This model also uses `add_encoders` (time of day and day of week, scaled): the
# file keeps the encoder settings, and `OnnxForecaster` computes the encodings from the time index,
# so neither side passes covariates.

# %%
prob_model = MIMModel(
    input_chunk_length=12,
    output_chunk_length=6,
    num_hidden=(4, 4) if FAST else (16, 16),
    filter_size=3,
    n_epochs=1 if FAST else 2,
    random_state=0,
    likelihood=QuantileRegression([0.05, 0.25, 0.5, 0.75, 0.95]),
    add_encoders={
        "cyclic": {"future": ["hour"]},
        "datetime_attribute": {"future": ["dayofweek"]},
        "transformer": Scaler(),
    },
    work_dir=str(OUT / "work"),
    pl_trainer_kwargs={
        "accelerator": "cpu",
        "enable_progress_bar": not FAST,
        "enable_model_summary": not FAST,
    },
)
prob_model.fit(series_s)
prob_path = prob_model.to_onnx(str(OUT / "03_mim_bike_quantiles.onnx"))
prob_forecaster = OnnxForecaster(prob_path)
print("encoders in the file:", prob_forecaster.metadata["encoders"]["future"]["components"])

k_samples = 50 if FAST else 500
onnx_samples = prob_forecaster.predict(12, series_s, num_samples=k_samples, random_state=0)
torch_samples = prob_model.predict(12, series_s, num_samples=k_samples, verbose=False)
for q in (0.05, 0.5, 0.95):
    gap = np.abs(onnx_samples.quantile(q).values() - torch_samples.quantile(q).values())
    print(f"{q:.0%} quantile over 12 steps: mean |ONNX - torch| = {gap.mean():.4f}")
assert np.array_equal(
    onnx_samples.all_values(),
    prob_forecaster.predict(12, series_s, num_samples=k_samples, random_state=0).all_values(),
)
# The parameters (here the five quantiles) are still there, as in Darts:
params = prob_forecaster.predict(6, series_s, predict_likelihood_parameters=True)
torch_params = prob_model.predict(6, series_s, predict_likelihood_parameters=True, verbose=False)
print(
    "quantile parameters, max difference:",
    float(np.abs(params.values() - torch_params.values()).max()),
)

# %% [markdown]
# ## Serving without torch or Darts
# `darts_mim.onnx.service` is a minimal HTTP service that needs only numpy and onnxruntime (and the
# standard library): it loads the file once and answers batched requests, JSON arrays in and out,
# with the same forecast loop, sampling and input checks as `predict_array`. It is the
# dependency-free server, for development: in production run `darts-mim serve mim.onnx --port 8080`
# (the `serve` extra: Starlette and uvicorn, with micro-batching, several workers, Prometheus
# metrics and an API key; the same requests and answers, see the ONNX guide);
# `benchmarks/serve_load.py` measures both under concurrent clients. Here the minimal one runs in a
# thread of this process, on any free port.

# %%
server = make_server(ForecastService(path), port=0)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}"
batch = np.stack([w.values()[-12:] for w in windows[:8]]).astype(np.float32)  # (8, 12, 224)
request = urllib.request.Request(
    url + "/forecast", data=json.dumps({"n": 6, "past_target": batch.tolist()}).encode()
)
with urllib.request.urlopen(request) as answer:
    served = json.loads(answer.read())
served_values = np.array(served["forecast"], dtype=np.float32)
print("service answer:", served["kind"], served["shape"])
print(
    "max |service - predict_array|:",
    float(np.abs(served_values - forecaster.predict_array(batch, 6)).max()),
)
server.shutdown()
