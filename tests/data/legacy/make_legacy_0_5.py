"""Write the darts-mim 0.5 model fixtures of ``tests/test_config.py`` (a grid with an always-missing
cell; a folded, channel-independent plain series with instance norm).

Run with the package of 0.5.0 (commit 26b6502) first on the path, from the repository root::

    git worktree add /tmp/v05 26b6502
    PYTHONPATH=/tmp/v05 python tests/data/legacy/make_legacy_0_5.py
"""

import os
import sys
import tempfile

import numpy as np
import pandas as pd
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))  # tests/, for conftest
from conftest import make_grid_series, tiny_kwargs  # noqa: E402
from darts import TimeSeries  # noqa: E402

from darts_mim import MIMModel  # noqa: E402

torch.set_num_threads(1)
series = make_grid_series(n_steps=40, channels=1, height=2, width=3)
values = series.all_values().copy()
values[:, 1] = np.nan
series = series.with_values(values)
model = MIMModel(**tiny_kwargs(tempfile.mkdtemp(), num_hidden=(2,), n_epochs=1))
model.fit(series)
model.save(os.path.join(HERE, "mim_v0_5_grid.pt"))
np.save(os.path.join(HERE, "forecast_v0_5_grid.npy"), model.predict(3).values())
rng = np.random.default_rng(0)
t = np.arange(24 * 6)
vals = np.stack(
    [np.sin(2 * np.pi * t / 24) + 0.1 * rng.normal(size=t.size), np.cos(2 * np.pi * t / 24)], 1
).astype("float32")
plain = TimeSeries.from_times_and_values(pd.date_range("2024", periods=t.size, freq="h"), vals)
kw = tiny_kwargs(tempfile.mkdtemp(), num_hidden=(2,), n_epochs=1)
kw.update(input_chunk_length=48, output_chunk_length=24)
m2 = MIMModel(**kw)
m2.fit(plain)
m2.save(os.path.join(HERE, "mim_v0_5_folded.pt"))
np.save(os.path.join(HERE, "forecast_v0_5_folded.npy"), m2.predict(24).values())
