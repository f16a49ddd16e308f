"""Reliability: resumable training, no silent wrong forecasts, resources checked before work starts."""

from __future__ import annotations

import gc
import os

import numpy as np
import pandas as pd
import psutil
import pytest
import torch
from conftest import make_grid_series, tiny_kwargs
from darts import TimeSeries

from darts_mim import MIMModel, TrainingRecipe, grid_to_series
from darts_mim.resources import estimate_training_bytes


def test_resume_from_checkpoint_matches_uninterrupted_run(tmp_path, grid_series):
    # A fresh dict per call: Darts pops "shuffle" out of the dict it is given.
    # A constant learning rate: a one-cycle schedule is planned for each fit's length, which this
    # simulated crash (a fit of 1 epoch, then 2) changes (resuming it: test_training_defaults.py).
    common = dict(
        n_epochs=2,
        save_checkpoints=True,
        force_reset=True,
        training_recipe=TrainingRecipe(sampling_decay_steps=6, lr_schedule=None),
    )

    full = MIMModel(**tiny_kwargs(tmp_path, model_name="full", **common))
    full.fit(grid_series, dataloader_kwargs={"shuffle": False})

    part = MIMModel(**tiny_kwargs(tmp_path, model_name="part", **common))
    part.fit(grid_series, epochs=1, dataloader_kwargs={"shuffle": False})
    del part  # the "crash"
    resumed = MIMModel.load_from_checkpoint("part", work_dir=str(tmp_path), best=False)
    # Resuming from a checkpoint, `epochs` is the total to reach (Lightning's max_epochs).
    resumed.fit(grid_series, epochs=2, dataloader_kwargs={"shuffle": False})

    assert resumed.epochs_trained == full.epochs_trained == 2
    for (name, a), (_, b) in zip(
        full.model.state_dict().items(), resumed.model.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    np.testing.assert_allclose(full.predict(3).values(), resumed.predict(3).values(), atol=1e-6)


def test_constant_series_gives_finite_forecasts(tmp_path):
    times = pd.date_range("2024", periods=40, freq="h")
    flat = grid_to_series(np.full((40, 1, 3, 3), 5.0, dtype=np.float32), times)
    for rin in (False, True):
        model = MIMModel(**tiny_kwargs(tmp_path / str(rin), use_reversible_instance_norm=rin))
        model.fit(flat)
        assert np.isfinite(model.predict(4).values()).all()


def test_non_numeric_and_object_grids_are_refused():
    times = pd.date_range("2024", periods=5, freq="h")
    with pytest.raises(ValueError, match="must be numeric"):
        grid_to_series(np.array([["a"] * 4] * 5, dtype=object).reshape(5, 1, 2, 2), times)


def test_duplicated_time_index_is_refused():
    times = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 01:00"])
    with pytest.raises(ValueError, match="(?i)duplicate"):
        grid_to_series(np.zeros((3, 1, 2, 2), dtype=np.float32), times)


def test_irregular_time_index_is_refused():
    times = pd.DatetimeIndex(
        ["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 03:00", "2024-01-01 04:00"]
    )
    with pytest.raises(ValueError, match="(?i)freq"):
        grid_to_series(np.zeros((4, 1, 2, 2), dtype=np.float32), times)


def test_covariates_that_do_not_cover_the_span(tmp_path, grid_series):
    short_future = TimeSeries.from_times_and_values(
        grid_series.time_index, np.ones((len(grid_series), 1), dtype=np.float32), columns=["x"]
    )
    model = MIMModel(**tiny_kwargs(tmp_path))
    model.fit(grid_series, future_covariates=short_future)
    # Forecasting past the series' end needs future covariates beyond it: Darts says which.
    with pytest.raises(ValueError, match="(?i)future_covariates"):
        model.predict(3, series=grid_series, future_covariates=short_future)


def test_huge_n_fails_early_with_the_memory_it_needs(tmp_path, grid_series):
    model = MIMModel(**tiny_kwargs(tmp_path))
    model.fit(grid_series)
    with pytest.raises(ValueError, match=r"A forecast of n=\d+ steps needs about [\d.]+ GiB"):
        model.predict(10**12)


def test_grid_too_large_for_memory_fails_before_training(tmp_path):
    times = pd.date_range("2024", periods=12, freq="h")
    big = grid_to_series(np.zeros((12, 1, 512, 512), dtype=np.float32), times)
    model = MIMModel(
        **tiny_kwargs(tmp_path, input_chunk_length=6, output_chunk_length=4, num_hidden=(64,) * 4)
    )
    with pytest.raises(ValueError, match=r"needs about [\d.]+ GiB.*activation_checkpointing=True"):
        model.fit(big)
    assert not model.model_created


def test_memory_estimate_is_close_to_a_measured_peak():
    # Measured once on CPU for the small-grid configuration (2x14x8, 3 layers of 32, batch 16, 12+6
    # steps): about 820 MB. The estimate must be of that order so that the early refusal is honest.
    estimate = estimate_training_bytes((32, 32, 32), "mim", 14, 8, 1, 16, 17) / 2**20
    assert 400 < estimate < 1600
    checkpointed = estimate_training_bytes((32, 32, 32), "mim", 14, 8, 1, 16, 17, 4, True) / 2**20
    assert checkpointed < estimate / 3


@pytest.mark.slow
def test_repeated_predictions_do_not_grow_memory(tmp_path, grid_series):
    model = MIMModel(**tiny_kwargs(tmp_path))
    model.fit(grid_series)
    process = psutil.Process(os.getpid())
    for _ in range(20):  # warm-up: allocator pools, lazily imported modules
        model.predict(3)
    gc.collect()
    start = process.memory_info().rss
    for _ in range(200):
        model.predict(3)
    gc.collect()
    growth_mb = (process.memory_info().rss - start) / 2**20
    assert growth_mb < 30, f"RSS grew by {growth_mb:.1f} MB over 200 predict calls"


def test_prediction_identical_alone_or_in_batches_of_1_7_64(tmp_path):
    series = [make_grid_series(seed=s, n_steps=30) for s in range(64)]
    model = MIMModel(**tiny_kwargs(tmp_path))
    model.fit(series[:4])
    target = 10
    alone = model.predict(3, series=series[target]).values()
    rng = np.random.default_rng(0)
    for size in (1, 7, 64):
        others = [s for i, s in enumerate(series) if i != target][: size - 1]
        batch = [*others, series[target]]
        order = rng.permutation(len(batch))
        shuffled = [batch[i] for i in order]
        preds = model.predict(3, series=shuffled, batch_size=64)
        position = int(np.flatnonzero(order == len(batch) - 1)[0])
        np.testing.assert_allclose(preds[position].values(), alone, atol=1e-5)
