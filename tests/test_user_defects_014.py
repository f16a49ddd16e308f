"""Defects a Darts user hit in the Darts-native API (hunt 014): each test failed before its fix."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_kwargs
from darts import TimeSeries
from darts.utils.likelihood_models.torch import PoissonLikelihood

from darts_mim import MIMModel


def _plain(n_steps: int = 60, seed: int = 0) -> TimeSeries:
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps)[:, None]
    values = np.sin(0.3 * t) + 2 + 0.05 * rng.standard_normal((n_steps, 1))
    times = pd.date_range("2024-01-01", periods=n_steps, freq="h")
    return TimeSeries.from_times_and_values(times, values.astype(np.float32))


@pytest.mark.parametrize("overrides", [{"input_chunk_length": 8}, {"output_chunk_length": 4}])
def test_combined_weights_into_other_chunk_lengths_are_refused_at_load(tmp_path, overrides):
    # load_weights(skip_checks=True) into a model with another window loaded, and every predict
    # then stopped on torch's "einsum(): subscript t has size 8 ..." (the combination's matrix
    # is fitted for the checkpoint's chunk lengths)
    series = _plain()
    model = MIMModel(**tiny_kwargs(tmp_path / "a", naive_anchor="combined")).fit(series)
    path = str(tmp_path / "combined.pt")
    model.save(path)
    other = MIMModel(**tiny_kwargs(tmp_path / "b", naive_anchor="combined", **overrides))
    with pytest.raises(ValueError, match="fitted for input_chunk_length=6 and a horizon of 3"):
        other.load_weights(path, skip_checks=True, load_encoders=False)
    # the same chunk lengths still load, and forecast as the saved model
    same = MIMModel(**tiny_kwargs(tmp_path / "c", naive_anchor="combined"))
    same.load_weights(path, skip_checks=True, load_encoders=False)
    np.testing.assert_allclose(
        same.predict(3, series=series).values(), model.predict(3).values(), rtol=1e-6
    )


@pytest.mark.parametrize("anchor", ["combined", "zero", "mean"])
def test_a_likelihood_without_location_names_the_anchor_given(tmp_path, anchor):
    # the message said "naive_anchor (True, 'seasonal' or a lag) needs ..." for any value
    with pytest.raises(
        ValueError, match=rf"naive_anchor \('{anchor}'\) needs outputs on the target"
    ):
        MIMModel(**tiny_kwargs(tmp_path, naive_anchor=anchor, likelihood=PoissonLikelihood()))


def test_a_short_series_is_named_by_argument_and_index(tmp_path):
    # "A series has 7 time steps" did not say whether the training or the validation series
    # (or which of several) was short
    model = MIMModel(**tiny_kwargs(tmp_path))
    with pytest.raises(ValueError, match=r"^`val_series` has 7 time steps"):
        model.fit(_plain(), val_series=_plain(7))
    with pytest.raises(ValueError, match=r"^`series` at index 1 has 5 time steps"):
        model.fit([_plain(), _plain(5)])


def test_save_and_load_expand_the_home_directory(tmp_path, monkeypatch):
    # save("~/models/mim.pt") made a directory literally named "~" in the working directory, and
    # load("~/models/mim.pt") then looked for the weights in the real home directory
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    series = _plain()
    model = MIMModel(**tiny_kwargs(tmp_path / "wd")).fit(series)
    model.save("~/models/mim.pt")
    assert not os.path.exists(work / "~")
    assert sorted(os.listdir(home / "models")) == ["mim.pt", "mim.pt.ckpt", "mim.pt.sha256"]
    loaded = MIMModel.load("~/models/mim.pt")
    np.testing.assert_allclose(loaded.predict(3).values(), model.predict(3).values(), rtol=1e-6)
    fresh = MIMModel(**tiny_kwargs(tmp_path / "wd2"))
    fresh.load_weights("~/models/mim.pt")
    np.testing.assert_allclose(
        fresh.predict(3, series=series).values(), model.predict(3).values(), rtol=1e-6
    )


def test_save_to_a_directory_says_to_name_a_file(tmp_path):
    # an IsADirectoryError named the save's hidden temporary directory
    model = MIMModel(**tiny_kwargs(tmp_path / "wd")).fit(_plain())
    (tmp_path / "existing").mkdir()
    for path in (str(tmp_path / "existing"), str(tmp_path / "new") + "/"):
        with pytest.raises(ValueError, match="needs a file name.*is a directory"):
            model.save(path)
    assert os.listdir(tmp_path / "existing") == []


@pytest.mark.parametrize("second", [None, {"a": [0.0], "b": [1.0], "c": [2.0]}])
def test_training_series_with_and_without_static_covariates_are_named(tmp_path, second):
    # a series without the first one's static covariates stopped training inside the network
    # with "Expected `cond` of shape [B, 8, 2, H, W], got None."; other columns stopped it in
    # numpy's batch stacking ("all input arrays must have the same shape")
    first = _plain().with_static_covariates(pd.DataFrame({"a": [1.0], "b": [0.0]}))
    other = _plain(40, seed=1)
    if second is not None:
        other = other.with_static_covariates(pd.DataFrame(second))
    model = MIMModel(**tiny_kwargs(tmp_path))
    with pytest.raises(ValueError, match="index 0 has static covariates .* index 1 has"):
        model.fit([first, other])
    # without static covariates in the first series, Darts ignores them all, as before
    MIMModel(**tiny_kwargs(tmp_path / "b")).fit([other.with_static_covariates(None), first])
    # and use_static_covariates=False trains on the mix
    MIMModel(**tiny_kwargs(tmp_path / "c", use_static_covariates=False)).fit([first, other])
