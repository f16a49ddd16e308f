"""Shared fixtures: tiny gridded and multivariate series and fast trainer settings."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
# Tests never use the network: a data set that is neither local nor cached would be downloaded from
# this mirror, a closed port on the loopback, so it fails at once (tests that download start their
# own server on 127.0.0.1 and set DARTS_MIM_DATA_URL themselves). Subprocesses inherit it.
os.environ.setdefault("DARTS_MIM_DATA_URL", "http://127.0.0.1:9/no-network-in-tests")

from darts_mim import grid_to_series  # noqa: E402

FAST_TRAINER = {
    "accelerator": "cpu",
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "logger": False,
}


def tiny_kwargs(tmp_path, **overrides) -> dict:
    """Keyword arguments for a MIMModel that trains in about a second."""
    kwargs = dict(
        input_chunk_length=6,
        output_chunk_length=3,
        num_hidden=(4, 4),
        filter_size=3,
        n_epochs=1,
        batch_size=16,
        random_state=0,
        pl_trainer_kwargs=dict(FAST_TRAINER),
        work_dir=str(tmp_path),
    )
    kwargs.update(overrides)
    return kwargs


def make_grid_series(
    n_steps: int = 60,
    channels: int = 2,
    height: int = 4,
    width: int = 6,
    seed: int = 0,
    dtype=np.float32,
    start: str = "2024-01-01",
    freq: str = "h",
):
    """A smooth travelling wave on a grid plus a little noise: learnable, deterministic by seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps)[:, None, None, None]
    c = np.arange(channels)[None, :, None, None]
    y = np.arange(height)[None, None, :, None]
    x = np.arange(width)[None, None, None, :]
    values = np.sin(0.3 * t + 0.5 * x + 0.2 * y + c) + 0.05 * rng.standard_normal(
        (n_steps, channels, height, width)
    )
    times = pd.date_range(start, periods=n_steps, freq=freq)
    return grid_to_series(values.astype(dtype), times, [f"ch{i}" for i in range(channels)])


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # The tests' tensors are tiny: one thread avoids synchronisation overhead and is up to 10x
    # faster when the machine's two cores are shared.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def grid_series():
    return make_grid_series()


def load_docs_runner():
    """``.ci/docs_examples.py``, the one home of how documentation blocks are found and run, as a
    module (it is a CI script, not part of the package); loaded once per test session."""
    import importlib.util
    import sys
    from pathlib import Path

    if "docs_examples" in sys.modules:
        return sys.modules["docs_examples"]
    path = Path(__file__).resolve().parents[1] / ".ci" / "docs_examples.py"
    spec = importlib.util.spec_from_file_location("docs_examples", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module
