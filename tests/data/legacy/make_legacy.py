"""Write the darts-mim 0.1 model fixture of ``test_models_saved_by_darts_mim_0_1_still_load``.

Run with the package of commit d4c8d58 first on the path, from the repository root::

    git worktree add /tmp/v01 d4c8d58
    PYTHONPATH=/tmp/v01 python tests/data/legacy/make_legacy.py
"""

import os
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))  # tests/, for conftest's helpers

from conftest import make_grid_series, tiny_kwargs  # noqa: E402

from darts_mim import MIMModel  # noqa: E402

torch.set_num_threads(1)
series = make_grid_series(n_steps=40, channels=1, height=2, width=3)
values = series.all_values().copy()
values[:, 1] = np.nan  # an always-missing cell: part of the layout that must survive
series = series.with_values(values)
model = MIMModel(**tiny_kwargs(tempfile.mkdtemp(), num_hidden=(2,), n_epochs=1))
model.fit(series)
model.save(os.path.join(HERE, "mim_v0_1.pt"))
np.save(os.path.join(HERE, "forecast.npy"), model.predict(3).values())
