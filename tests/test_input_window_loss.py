"""``input_window_loss``: the authors' loss on the one-step predictions inside the input window."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from conftest import make_grid_series, tiny_kwargs
from darts.utils.data.torch_datasets.utils import TorchTrainingBatch
from darts.utils.likelihood_models.torch import QuantileRegression

from darts_mim import MIMModel, TrainingRecipe, grid_to_series, series_to_grid


def _fitted(tmp_path, series, input_window_loss: bool = True, **overrides) -> MIMModel:
    recipe = TrainingRecipe(input_window_loss=input_window_loss)
    model = MIMModel(**tiny_kwargs(tmp_path, training_recipe=recipe, **overrides))
    model.fit(series)
    return model


def test_loss_is_the_mean_over_window_and_forecast_frames(tmp_path, grid_series, monkeypatch):
    model = _fitted(tmp_path, grid_series, input_window_loss=True)
    module = model.model
    # deterministic decoder inputs, and a float32 step compared with the float32 computation below
    module.recipe = dataclasses.replace(module.recipe, sampling_schedule="teacher_forcing")
    module._bf16 = False
    monkeypatch.setattr(module, "log", lambda *args, **kwargs: None)  # no trainer loop here
    values = torch.from_numpy(grid_series.values()[:18].astype(np.float32))
    past, future = values[None, :6].repeat(2, 1, 1), values[None, 6:9].repeat(2, 1, 1)
    past[1], future[1] = past[1] * 0.5, future[1] * 0.5  # two different samples
    batch = TorchTrainingBatch(past_target=past, future_target=future)
    loss = module.training_step(batch, 0)

    frames = past.reshape(2, 6, *module.grid)
    teacher = torch.ones(2, 2)
    out = module.net(
        frames,
        3,
        future_frames=future.reshape(2, 3, *module.grid),
        teacher_mask=teacher,
        return_all=True,
    )[:, :, :, 0]  # (B, 5 + 3, C, H, W)
    window_mse = torch.mean((out[:, :5].reshape(2, 5, -1) - past[:, 1:]) ** 2)
    forecast_mse = torch.mean((out[:, 5:].reshape(2, 3, -1) - future) ** 2)
    expected = (3 * forecast_mse + 5 * window_mse) / 8
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-7)
    assert not torch.isclose(loss, forecast_mse)  # the window really counts

    module.recipe = dataclasses.replace(module.recipe, input_window_loss=False)  # Darts' loss
    loss_off = module.training_step(batch, 0)
    torch.testing.assert_close(loss_off, forecast_mse, rtol=1e-5, atol=1e-7)


def test_changes_training_not_prediction(tmp_path, grid_series):
    with_window = _fitted(tmp_path / "a", grid_series, input_window_loss=True)
    without = _fitted(tmp_path / "b", grid_series, input_window_loss=False)
    a, b = with_window.predict(3), without.predict(3)
    assert not np.allclose(a.values(), b.values())  # different training signal, different weights
    # the flag does not touch the forecast path
    module = with_window.model
    module.recipe = dataclasses.replace(module.recipe, input_window_loss=False)
    np.testing.assert_array_equal(with_window.predict(3).values(), a.values())
    assert with_window.training_recipe.input_window_loss is True
    assert MIMModel(4, 2).training_recipe.input_window_loss is True  # the authors' recipe


@pytest.mark.parametrize("window_loss", [False, True])
def test_with_likelihood_instance_norm_and_missing_cells(tmp_path, window_loss):
    # with instance norm, the NaN statistics of an always-missing cell once made every weight NaN
    arr = series_to_grid(make_grid_series(n_steps=60))
    arr[:, 0, 1, 2] = np.nan  # a cell missing at every step: masked from both losses
    series = grid_to_series(arr, make_grid_series(n_steps=60).time_index, ["ch0", "ch1"])
    model = _fitted(
        tmp_path,
        series,
        input_window_loss=window_loss,
        likelihood=QuantileRegression(
            [0.1, 0.5, 0.9]
        ),  # (a Gaussian's sigma and the norm: refused)
        use_reversible_instance_norm=True,
    )
    assert np.isfinite(float(model.trainer.callback_metrics["train_loss"]))
    forecast = series_to_grid(model.predict(3, num_samples=4))
    assert np.isnan(forecast[:, 0, 1, 2]).all()
    forecast[:, 0, 1, 2] = 0.0
    assert np.isfinite(forecast).all()


@pytest.mark.parametrize("input_chunk_length", [1, 2])
def test_short_input_windows(tmp_path, grid_series, input_chunk_length):
    # one input frame has no window prediction: the loss is Darts' own
    model = _fitted(
        tmp_path, grid_series, input_window_loss=True, input_chunk_length=input_chunk_length
    )
    assert np.isfinite(model.predict(3).values()).all()
