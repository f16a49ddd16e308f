"""Memory-aware settings for big grids: before training, a patch size and batch that fit are named
from the memory estimate (estimates only: nothing here trains)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import make_grid_series, tiny_kwargs

import darts_mim.model as model_module
from darts_mim import MIMModel
from darts_mim.grid import GridLayout, GridSpec
from darts_mim.resources import (
    COMFORTABLE_SHARE,
    check_training_memory,
    estimate_training_bytes,
    suggest_patch_and_batch,
)

GIB = 2**30
# The configuration of the issue: 256x256, one channel, 4-wide layers, patch_size=1.
BIG = dict(num_hidden=(4, 4), cell_type="mim", height=256, width=256, n_steps=17)


def test_suggestion_for_a_256x256_grid_fits_and_divides_the_grid():
    budget = 6 * GIB * COMFORTABLE_SHARE
    assert estimate_training_bytes(patch_size=1, batch_size=8, **BIG) > budget
    s = suggest_patch_and_batch(patch_size=1, batch_size=8, budget_bytes=budget, **BIG)
    assert s.patch_size > 1 and 256 % s.patch_size == 0
    assert s.batch_size == 8  # a larger patch was enough: the batch is kept
    assert s.needed_bytes == estimate_training_bytes(patch_size=s.patch_size, batch_size=8, **BIG)
    assert s.needed_bytes <= budget
    # the smallest patch that fits: the one below it does not
    smaller = [p for p in range(1, s.patch_size) if 256 % p == 0][-1]
    assert estimate_training_bytes(patch_size=smaller, batch_size=8, **BIG) > budget


def test_batch_is_halved_when_no_patch_is_enough():
    # the largest patch keeps >= 8 cells a side: 256 / 32; a tiny budget then needs a smaller batch
    budget = estimate_training_bytes(patch_size=32, batch_size=4, **BIG)
    s = suggest_patch_and_batch(patch_size=1, batch_size=32, budget_bytes=budget, **BIG)
    assert (s.patch_size, s.batch_size) == (32, 4)
    assert suggest_patch_and_batch(patch_size=1, batch_size=32, budget_bytes=1, **BIG) is None


def test_warns_with_the_suggestion_then_fails_when_it_cannot_fit():
    with pytest.warns(UserWarning, match=r"patch_size=\d+ \(the cells run on a \d+x\d+ grid"):
        s = check_training_memory(patch_size=1, batch_size=8, available=24 * GIB, **BIG)
    assert s is not None and s.patch_size > 1
    with pytest.raises(ValueError, match=r"needs about .* GiB.*patch_size=\d+"):
        check_training_memory(patch_size=1, batch_size=32, available=8 * GIB, **BIG)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a small grid: no warning
        assert check_training_memory((4, 4), "mim", 16, 16, 1, 8, 17, available=24 * GIB) is None


def test_model_names_a_patch_size_before_training_a_256x256_grid(tmp_path, monkeypatch):
    monkeypatch.setattr("darts_mim.model.available_bytes", lambda accelerator=None: 24 * GIB)
    model = MIMModel(
        input_chunk_length=12,
        output_chunk_length=6,
        num_hidden=(4, 4),
        batch_size=8,
        work_dir=str(tmp_path),
    )
    layout = GridLayout(GridSpec(("t2m",), 256, 256))
    with pytest.warns(
        UserWarning,
        match=r"256x256 grid, patch_size=1, batch_size=8.*patch_size=2 \(the cells run on a 128x128",
    ):
        model._check_memory(layout)  # what fit() and fit_from_dataset() run before training
    patched = MIMModel(
        input_chunk_length=12,
        output_chunk_length=6,
        num_hidden=(4, 4),
        batch_size=8,
        patch_size=4,
        work_dir=str(tmp_path),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        patched._check_memory(layout)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_estimate_counts_the_bytes_of_the_dtype_the_network_trains_in(tmp_path, monkeypatch, dtype):
    """Darts trains a float64 series in float64 (8 bytes a value); the first fit's estimate
    counted 4, half the memory, so a configuration twice too big for the device passed."""
    seen = []
    real = model_module.check_training_memory

    def spy(*args, **kwargs):
        seen.append(args[8])  # bytes_per_value
        return real(*args, **kwargs)

    monkeypatch.setattr(model_module, "check_training_memory", spy)
    series = make_grid_series(n_steps=20, dtype=dtype)
    # n_epochs=0: fit builds the network (in the series' dtype) and trains nothing
    model = MIMModel(**tiny_kwargs(tmp_path, n_epochs=0))
    model.fit(series)
    itemsize = next(model.model.parameters()).element_size()
    assert itemsize == np.dtype(dtype).itemsize
    assert seen == [itemsize]


def test_a_float64_step_is_refused_where_its_float32_twin_fits(tmp_path, monkeypatch):
    layout = GridLayout(GridSpec(("t2m",), 256, 256))
    config = dict(input_chunk_length=12, output_chunk_length=6, num_hidden=(4, 4), batch_size=8)
    model = MIMModel(**config, work_dir=str(tmp_path))
    needed = estimate_training_bytes(patch_size=1, batch_size=8, **BIG)
    # between the float32 and the float64 estimates: the float32 step fits (with a warning)
    monkeypatch.setattr(model_module, "available_bytes", lambda accelerator=None: needed + GIB)
    with pytest.warns(UserWarning, match="more than a quarter"):
        model._check_memory(layout, np.float32)
    with pytest.raises(ValueError, match="needs about"):
        model._check_memory(layout, np.float64)
