"""Time per epoch of ``MIMModel.fit`` (Darts and Lightning included) and of a bare torch loop over a
network on the same windows, batches and loss: the fit side of ``train_speed.py``.

The fit's epochs are timed by a Lightning callback, and after each of them a callback runs one epoch
of the bare loop, so that the two alternate and a shared machine's changing load hits both alike.
The first epoch of either (start-up, first calls of every kernel) is left out and the median of the
others is reported.
"""

from __future__ import annotations

import statistics
import tempfile
import time

import numpy as np
import pandas as pd
import torch
from _common import Config
from pytorch_lightning.callbacks import Callback
from torch import nn

from darts_mim import MIMModel, TrainingRecipe, grid_to_series


def sync(device: torch.device) -> None:
    # CUDA kernels run asynchronously: an epoch ends when its last kernel has run
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class EpochTimer(Callback):
    """Wall time and batch count of each training epoch."""

    def __init__(self):
        self.times: list[float] = []
        self.batches: list[int] = []

    def on_train_epoch_start(self, trainer, pl_module):
        sync(pl_module.device)
        self._start = time.perf_counter()
        self._n = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._n += 1

    def on_train_epoch_end(self, trainer, pl_module):
        sync(pl_module.device)
        self.times.append(time.perf_counter() - self._start)
        self.batches.append(self._n)


def grid_series(cfg: Config, n_windows: int, seed: int = 0):
    """A series on the configuration's grid with ``n_windows`` training windows: the bike-flow grid
    itself where the shape is the bike grid's, else uniform noise (the speed does not depend on the
    values)."""
    n_steps = n_windows + cfg.t_in + cfg.n_out - 1
    if (cfg.channels, cfg.height, cfg.width) == (2, 14, 8):
        from darts_mim.datasets import load_bike_flows

        series = load_bike_flows().series
        return series[len(series) - n_steps :].astype(np.float32)
    rng = np.random.default_rng(seed)
    frames = rng.random((n_steps, cfg.channels, cfg.height, cfg.width), dtype=np.float32)
    times = pd.date_range("2024-01-01", periods=n_steps, freq="h")
    return grid_to_series(frames, times, [f"c{i}" for i in range(cfg.channels)])


def equal_work_kwargs(
    cfg: Config, layer_norm: bool, precision: str | None, cuda_graphs: bool = False
) -> dict:
    """MIMModel arguments for the configuration's network trained with the benchmarks' equal work:
    free-running decoder, MSE of the output chunk, no naive anchor (the literal network has none).

    ``precision``: Lightning's (``"32-true"``, ``"bf16-mixed"``...), passed as
    ``pl_trainer_kwargs={"precision": ...}``; ``"auto"`` for ``TrainingRecipe(bf16_autocast=True)``
    (bf16 autocast of the training steps on CPUs with native bf16); ``None`` for neither.
    ``cuda_graphs``: ``TrainingRecipe(cuda_graphs=...)``."""
    recipe = TrainingRecipe(
        input_window_loss=False,
        sampling_schedule="free_running",
        bf16_autocast=precision == "auto",
        cuda_graphs=cuda_graphs,
    )
    kwargs = dict(
        input_chunk_length=cfg.t_in,
        output_chunk_length=cfg.n_out,
        num_hidden=cfg.num_hidden,
        filter_size=cfg.filter_size,
        patch_size=cfg.patch_size,
        layer_norm=layer_norm,
        naive_anchor=False,
        batch_size=cfg.batch,
        training_recipe=recipe,
    )
    if precision not in (None, "auto"):
        kwargs["pl_trainer_kwargs"] = {"precision": precision}
    return kwargs


class BareEpochs(Callback):
    """After each training epoch of a fit, one epoch of :func:`bare_epoch` over another network
    (on the device the network is on)."""

    def __init__(self, net: nn.Module, cfg: Config, series):
        self.net, self.cfg = net, cfg
        n = len(series)
        values = series.values(copy=False).reshape(n, cfg.channels, cfg.height, cfg.width)
        self.values = np.ascontiguousarray(values, dtype=np.float32)
        self.opt = torch.optim.Adam(net.parameters(), lr=1e-4)
        self.times: list[float] = []
        self.batches = 0

    def on_train_epoch_end(self, trainer, pl_module):
        with torch.enable_grad():
            sec, self.batches = bare_epoch(
                self.net, self.cfg, self.values, self.opt, len(self.times)
            )
        self.times.append(sec)


def fit_epoch_seconds(
    series,
    epochs: int,
    bare: BareEpochs | None = None,
    accelerator: str = "cpu",
    fit_kwargs: dict | None = None,
    **model_kwargs,
) -> tuple[float, int, MIMModel]:
    """Median seconds per epoch of ``MIMModel(**model_kwargs).fit(series, **fit_kwargs)`` after
    the first epoch, the batches per epoch, and the fitted model; ``bare`` runs its epochs between
    the fit's; ``accelerator`` is Lightning's (``"cpu"`` or ``"gpu"``); ``pl_trainer_kwargs`` in
    ``model_kwargs`` (a precision) are added to the timing trainer's."""
    timer = EpochTimer()
    trainer_kwargs = {
        "accelerator": accelerator,
        "devices": 1,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "logger": False,
        "enable_checkpointing": False,
        "callbacks": [timer] if bare is None else [timer, bare],
    }
    trainer_kwargs.update(model_kwargs.pop("pl_trainer_kwargs", None) or {})
    with tempfile.TemporaryDirectory() as work_dir:
        model = MIMModel(
            n_epochs=epochs,
            random_state=0,
            work_dir=work_dir,
            pl_trainer_kwargs=trainer_kwargs,
            **model_kwargs,
        )
        model.fit(series, **(fit_kwargs or {}))
    return statistics.median(timer.times[1:]), timer.batches[-1], model


def bare_epoch(
    net: nn.Module, cfg: Config, values: np.ndarray, opt: torch.optim.Optimizer, seed: int
) -> tuple[float, int]:
    """Seconds and batches of one epoch of a plain torch loop training ``net`` on the shuffled
    sliding windows of ``values`` ``[T, C, H, W]``: free-running forward, MSE of the output chunk,
    backward, Adam."""
    length = cfg.t_in + cfg.n_out
    device = next(net.parameters()).device
    sync(device)
    start = time.perf_counter()
    order = np.random.default_rng(seed).permutation(len(values) - length + 1)
    n_batches = 0
    for first in range(0, len(order), cfg.batch):
        idx = order[first : first + cfg.batch]
        windows = torch.from_numpy(np.stack([values[i : i + length] for i in idx])).to(device)
        past, future = windows[:, : cfg.t_in], windows[:, cfg.t_in :]
        opt.zero_grad(set_to_none=True)
        out = net(past, cfg.n_out)
        loss = nn.functional.mse_loss(out[:, :, :, 0], future)
        loss.backward()
        opt.step()
        n_batches += 1
    sync(device)
    return time.perf_counter() - start, n_batches
