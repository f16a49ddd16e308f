# %% [markdown]
# # Video and radar: Moving MNIST and a KNMI rain event
#
# MIM was made for video prediction. Two examples:
#
# 1. **Moving MNIST** (Srivastava et al., 2015), generated from MNIST digits read from idx files:
#    two digits bouncing on a 64 x 64 canvas. Many short sequences: a list of series.
# 2. **Radar nowcasting**: KNMI 5-minute rain-rate composites of 2010-08-26 (mm/h).
#
# Both use `patch_size=4`: 4 x 4 pixel patches become channels, so the recurrent cells run on a
# 16 x 16 grid, 16 times fewer positions.
#
# Data: `DARTS_MIM_DATA` or `../shared/data` (`mnist/`, `gridded/radar_knmi_...npz`), falling back to
# the small copies in `tests/data` (always used with `DARTS_MIM_FAST=1`). Pictures go to
# `DARTS_MIM_OUT` (default `tutorials/output`).

# %%
import os
from pathlib import Path

import numpy as np
import torch
from darts.dataprocessing.transformers import Scaler

from darts_mim import MIMModel, series_to_grid
from darts_mim.datasets import DataNotFoundError, default_data_dir, load_radar, moving_mnist
from darts_mim.plotting import plot_frames

FAST = os.environ.get("DARTS_MIM_FAST") == "1"
REPO = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("DARTS_MIM_OUT", REPO / "tutorials" / "output"))
OUT.mkdir(parents=True, exist_ok=True)
TEST_DATA = REPO / "tests" / "data"
if FAST:
    torch.set_num_threads(1)  # tests share two busy cores


def data_path(relative: str) -> Path:
    """The shared data file or directory, else the small copy in tests/data."""
    if not FAST:
        try:
            candidate = default_data_dir() / relative
            if candidate.exists():
                return candidate
        except DataNotFoundError:
            pass
    print(f"using the small test copy for {relative}")
    return TEST_DATA


def trainer() -> dict:
    return {"accelerator": "cpu", "enable_progress_bar": not FAST, "enable_model_summary": False}


# %% [markdown]
# ## Moving MNIST
# `moving_mnist(..., as_series=True)` returns one gridded series (1 channel, 64 x 64) per sequence.

# %%
n_seq, n_in = (24, 5) if FAST else (200, 10)
videos = moving_mnist(
    data_path("mnist"), n_sequences=n_seq, n_frames=2 * n_in, seed=0, as_series=True
)
train, held_out = videos[:-4], videos[-4:]
mnist_model = MIMModel(
    input_chunk_length=n_in,
    output_chunk_length=n_in,
    num_hidden=(8, 8) if FAST else (16, 16),
    filter_size=3,
    patch_size=4,
    n_epochs=1 if FAST else 3,
    batch_size=8,
    random_state=0,
    work_dir=str(OUT / "work"),
    pl_trainer_kwargs=trainer(),
)
mnist_model.fit(train)
pred = mnist_model.predict(n_in, series=[v[:n_in] for v in held_out], verbose=False)
true_frames = series_to_grid(held_out[0][n_in:])
pred_frames = series_to_grid(pred[0])
mse = float(
    np.mean(
        [
            (series_to_grid(p) - series_to_grid(v[n_in:])) ** 2
            for p, v in zip(pred, held_out, strict=True)
        ]
    )
)
print(f"Moving MNIST: per-pixel MSE on {len(held_out)} held-out sequences: {mse:.4f}")
plot_frames(true_frames, pred_frames, path=OUT / "04_moving_mnist.png", title="Moving MNIST")
print("wrote", OUT / "04_moving_mnist.png")

# %% [markdown]
# ## Radar nowcasting
# Rain rates are skewed (mostly 0, a few cells with heavy rain): model `log1p(rate)`, scaled to
# [0, 1], and forecast the next frames from the last ones.

# %%
radar_dir = data_path("gridded/radar_knmi_2010-08-26_T92x128x128_mmh.npz")
if radar_dir == TEST_DATA:
    radar = load_radar(TEST_DATA / "radar_knmi_2010-08-26_T24x64x64_mmh.npz").series
else:
    radar = load_radar(radar_dir).series
radar = radar.with_values(np.log1p(np.nan_to_num(radar.all_values(), nan=0.0)).astype(np.float32))
icl, ocl = (6, 3) if FAST else (6, 6)
train_r, test_r = radar[:-ocl], radar[-ocl:]
scaler = Scaler()
train_s = scaler.fit_transform(train_r)
radar_model = MIMModel(
    input_chunk_length=icl,
    output_chunk_length=ocl,
    num_hidden=(4, 4) if FAST else (16, 16),
    filter_size=3,
    patch_size=4 if FAST else 8,
    n_epochs=1 if FAST else 10,
    batch_size=8,
    random_state=0,
    work_dir=str(OUT / "work"),
    pl_trainer_kwargs=trainer(),
)
radar_model.fit(train_s)
forecast = scaler.inverse_transform(radar_model.predict(ocl, series=train_s, verbose=False))
rate_true = np.expm1(series_to_grid(test_r))
rate_pred = np.expm1(series_to_grid(forecast)).clip(min=0)
persistence = np.expm1(series_to_grid(train_r[-1:]))  # the last observed frame, repeated
print(
    f"Radar: MAE {np.abs(rate_pred - rate_true).mean():.3f} mm/h, "
    f"persistence {np.abs(persistence - rate_true).mean():.3f} mm/h"
)
plot_frames(rate_true, rate_pred, path=OUT / "04_radar.png", title="KNMI radar rain rate (mm/h)")
print("wrote", OUT / "04_radar.png")
