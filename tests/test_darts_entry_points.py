"""Every Darts entry point that builds or restores the network works on MIMModel, with the grid
layout derived from the data or read from the checkpoint (issue 11, item 3), and unreadable files
raise a ValueError naming them (item 7)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import make_grid_series, tiny_kwargs
from darts.utils.data import SequentialTorchTrainingDataset, TorchTrainingDataset

from darts_mim import MIMModel, series_to_grid


def _dataset(series, model_kwargs, covariates=None):
    return SequentialTorchTrainingDataset(
        series,
        past_covariates=covariates,
        input_chunk_length=model_kwargs["input_chunk_length"],
        output_chunk_length=model_kwargs["output_chunk_length"],
    )


def test_fit_from_dataset_on_a_model_never_fitted(tmp_path, grid_series):
    kwargs = tiny_kwargs(tmp_path)
    model = MIMModel(**kwargs)
    model.fit_from_dataset(_dataset(grid_series, kwargs))
    assert model.grid.shape == (2, 4, 6)
    assert model.grid.channels == ("ch0", "ch1")
    forecast = model.predict(3, series=grid_series)
    assert series_to_grid(forecast).shape == (3, 2, 4, 6)
    # the same weights and data through fit() give the same layout
    fitted = MIMModel(**kwargs).fit(grid_series)
    assert fitted.layout == model.layout


def test_fit_from_dataset_with_gridded_covariates(tmp_path, grid_series):
    kwargs = tiny_kwargs(tmp_path)
    covariates = make_grid_series(channels=1, seed=3)
    model = MIMModel(**kwargs)
    model.fit_from_dataset(_dataset(grid_series, kwargs, covariates))
    assert model.layout.past_grid_channels == 1
    assert model.model.past_cov_layout == (1, 0)


class _Opaque(TorchTrainingDataset):
    """A custom dataset that does not expose its series (as a user-written one may not)."""

    def __init__(self, inner):
        super().__init__()
        self._inner = inner

    def __len__(self):
        return len(self._inner)

    def __getitem__(self, idx):
        return self._inner[idx]


def test_fit_from_dataset_without_series_uses_grid_shape(tmp_path, grid_series):
    model = MIMModel(**tiny_kwargs(tmp_path, grid_shape=(4, 6)))
    model.fit_from_dataset(_Opaque(_dataset(grid_series, tiny_kwargs(tmp_path))))
    assert model.grid.shape == (2, 4, 6)
    plain = MIMModel(**tiny_kwargs(tmp_path / "plain", filter_size=1))
    plain.fit_from_dataset(_Opaque(_dataset(grid_series, tiny_kwargs(tmp_path))))
    assert plain.grid.shape == (48, 1, 1)


def test_scale_batch_size_and_lr_find_on_a_model_never_fitted(tmp_path, grid_series):
    model = MIMModel(**tiny_kwargs(tmp_path))
    batch = model.scale_batch_size(grid_series, method="fit", max_trials=2, steps_per_trial=1)
    assert batch >= 2
    finder = MIMModel(**tiny_kwargs(tmp_path / "lr")).lr_find(grid_series, num_training=5)
    assert len(finder.results["lr"]) > 0


@pytest.mark.parametrize("skip_checks", [False, True])
def test_load_weights_on_a_model_never_fitted(tmp_path, grid_series, skip_checks):
    kwargs = tiny_kwargs(tmp_path)
    model = MIMModel(**kwargs).fit(grid_series)
    path = str(tmp_path / "mim.pt")
    model.save(path)
    fresh = MIMModel(**kwargs)
    fresh.load_weights(path, skip_checks=skip_checks, load_encoders=not skip_checks)
    assert fresh.layout == model.layout
    np.testing.assert_allclose(
        fresh.predict(3, series=grid_series).values(), model.predict(3).values(), atol=1e-6
    )


def test_load_from_checkpoint(tmp_path, grid_series):
    kwargs = tiny_kwargs(tmp_path, save_checkpoints=True, model_name="ckpt", force_reset=True)
    model = MIMModel(**kwargs).fit(grid_series)
    loaded = MIMModel.load_from_checkpoint("ckpt", work_dir=str(tmp_path), best=False)
    assert loaded.layout == model.layout
    np.testing.assert_allclose(loaded.predict(3).values(), model.predict(3).values(), atol=1e-6)


def _truncate(path: str) -> None:
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def test_truncated_files_raise_value_errors_naming_them(tmp_path, grid_series):
    kwargs = tiny_kwargs(tmp_path, save_checkpoints=True, model_name="cut", force_reset=True)
    model = MIMModel(**kwargs).fit(grid_series)
    path = str(tmp_path / "mim.pt")
    model.save(path)
    _truncate(path + ".ckpt")
    with pytest.raises(ValueError, match=r"mim\.pt\.ckpt.*truncated"):
        MIMModel(**tiny_kwargs(tmp_path)).load_weights(path)
    folder = tmp_path / "cut" / "checkpoints"
    (last,) = [f for f in os.listdir(folder) if f.startswith("last-")]
    _truncate(str(folder / last))
    with pytest.raises(ValueError, match=rf"{last}.*truncated"):
        MIMModel.load_from_checkpoint("cut", work_dir=str(tmp_path), best=False)


def test_weights_of_another_shape_are_not_called_truncated(tmp_path, grid_series):
    model = MIMModel(**tiny_kwargs(tmp_path)).fit(grid_series)
    path = str(tmp_path / "mim.pt")
    model.save(path)
    wider = MIMModel(**tiny_kwargs(tmp_path, num_hidden=(8, 8)))
    with pytest.raises(ValueError) as err:
        wider.load_weights(path)
    assert "truncated" not in str(err.value)


LEGACY = os.path.join(os.path.dirname(__file__), "data", "legacy")


def test_models_saved_by_darts_mim_0_1_still_load(tmp_path):
    # written by tests/data/legacy/make_legacy.py at the commit before the layout moved into the
    # network's hyper-parameters: the layout was then an attribute of the pickled model
    path = os.path.join(LEGACY, "mim_v0_1.pt")
    expected = np.load(os.path.join(LEGACY, "forecast.npy"))
    model = MIMModel.load(path)
    assert model.grid.shape == (1, 2, 3)
    assert model.layout.missing == (1,)
    np.testing.assert_allclose(model.predict(3).values(), expected, atol=1e-6)
    fresh = MIMModel(**tiny_kwargs(tmp_path, num_hidden=(2,)))
    fresh.load_weights(path, skip_checks=True, load_encoders=False)  # from the old checkpoint alone
    assert fresh.grid.shape == (1, 2, 3) and fresh.layout.missing == (1,)
    np.testing.assert_allclose(
        fresh.predict(3, series=model.training_series).values(), expected, atol=1e-6
    )
