"""One resolved configuration: every "auto" decided once from the training data, saved, printable,
logged in one line; models and checkpoints of earlier versions read through darts_mim.legacy."""

from __future__ import annotations

import logging
import os
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_kwargs
from darts import TimeSeries

from darts_mim import MIMModel, ResolvedConfig, TrainingRecipe
from darts_mim.config import recipe_from_kwargs
from darts_mim.legacy import upgrade_checkpoint_hparams

LEGACY = os.path.join(os.path.dirname(__file__), "data", "legacy")


def _hourly(n_days: int = 8, n_components: int = 2) -> TimeSeries:
    t = np.arange(24 * n_days)
    rng = np.random.default_rng(0)
    values = np.stack(
        [
            np.sin(2 * np.pi * (t + 3 * k) / 24) + 0.1 * rng.normal(size=t.size)
            for k in range(n_components)
        ],
        axis=1,
    ).astype(np.float32)
    return TimeSeries.from_times_and_values(pd.date_range("2024", periods=t.size, freq="h"), values)


def test_a_plain_multivariate_series_resolves_every_auto_once(tmp_path):
    model = MIMModel(**tiny_kwargs(tmp_path, input_chunk_length=48, output_chunk_length=24))
    assert model.config is None  # nothing is decided before the data is seen
    model.fit(_hourly())
    config = model.config
    assert isinstance(config, ResolvedConfig)
    assert (config.layout.fold, config.anchor_lag, config.anchor_lag_steps) == (24, 1, 24)
    assert config.anchor == "the seasonal naive (24 steps)"
    assert config.channel_independent is True and config.instance_norm is True
    assert config.recipe == TrainingRecipe() and config.recipe_source == "mim"
    assert str(config) == (
        "folded by 24, anchored on the seasonal naive (24 steps), channel-independent, "
        "instance norm on; MIM recipe: one-cycle lr 0.003, clip 1, early stop 5 on val_series"
    )
    # the constructor's values stay as the user gave them; the network uses the resolved ones
    assert model.model_params["use_reversible_instance_norm"] == "auto"
    assert model.model.rin is not None and model.model.channel_independent is True
    assert model.model.config == config


def test_a_grid_and_the_config_round_trips(tmp_path, grid_series):
    model = MIMModel(**tiny_kwargs(tmp_path)).fit(grid_series)
    config = model.config
    assert str(config).startswith("2x4x6 grid (channels ['ch0', 'ch1']), anchored on")
    assert ResolvedConfig.from_dict(config.to_dict()) == config
    path = str(tmp_path / "m.pt")
    model.save(path)
    assert MIMModel.load(path).config == config
    # from the checkpoint alone (a model that never saw the data)
    fresh = MIMModel(**tiny_kwargs(tmp_path / "fresh"))
    fresh.load_weights(path)
    assert fresh.config == config
    ckpt = torch.load(path + ".ckpt", map_location="cpu", weights_only=False)
    assert ckpt["hyper_parameters"]["config"] == config.to_dict()


def test_the_fit_logs_the_configuration_in_one_line(tmp_path, grid_series, monkeypatch):
    lines = []
    monkeypatch.setattr(
        logging.getLogger("darts_mim"), "info", lambda msg, *args: lines.append(msg % args)
    )
    model = MIMModel(**tiny_kwargs(tmp_path)).fit(grid_series)
    assert lines == [f"MIMModel: {model.config}"]
    model.fit(grid_series)  # a second fit of the same network resolves nothing again
    assert len(lines) == 1


def test_trainer_chatter_is_gone_and_warnings_stay(tmp_path, grid_series, caplog):
    model = MIMModel(**tiny_kwargs(tmp_path)).fit(grid_series)
    with caplog.at_level(logging.INFO):
        model.predict(3)
    text = caplog.text
    assert "GPU available" not in text and "TPU available" not in text and "litlogger" not in text
    # only while our trainers are built: Lightning's logger itself is left as it was
    assert not logging.getLogger("pytorch_lightning.utilities.rank_zero").filters


def test_recipe_from_flat_kwargs():
    out = recipe_from_kwargs({"num_hidden": [8], "lr_schedule": None, "input_window_loss": False})
    assert out["num_hidden"] == [8]
    assert out["training_recipe"] == TrainingRecipe(lr_schedule=None, input_window_loss=False)
    assert recipe_from_kwargs({"n_epochs": 2}) == {"n_epochs": 2}
    nested = recipe_from_kwargs({"training_recipe": {"cuda_graphs": True}, "sampling_start": 0.5})
    assert nested["training_recipe"] == TrainingRecipe(cuda_graphs=True, sampling_start=0.5)


def test_the_recipe_reports_the_rate_and_clipping_darts_arguments_set(tmp_path):
    """An explicit recipe with Darts' own lr and clipping: the configuration says what training
    does (Darts' arguments win), not the recipe's defaults."""
    recipe = TrainingRecipe(lr_schedule=None)
    model = MIMModel(
        **tiny_kwargs(tmp_path, n_epochs=1),
        training_recipe=recipe,
        optimizer_kwargs={"lr": 5e-4},
    )
    assert model.training_recipe.peak_lr == 5e-4
    assert model.pl_module_params["optimizer_kwargs"]["lr"] == 5e-4
    kwargs = tiny_kwargs(tmp_path, n_epochs=1)
    kwargs["pl_trainer_kwargs"] = {**kwargs.get("pl_trainer_kwargs", {}), "gradient_clip_val": None}
    model = MIMModel(**kwargs, training_recipe=recipe)
    assert model.training_recipe.gradient_clip_val is None
    assert model.training_recipe.describe() == "constant lr 0.003, early stop 5 on val_series"
    model.fit(_hourly(4, 1))
    assert "clip" not in str(model.config) and model.trainer.gradient_clip_val is None
    # an optimizer other than Adam keeps its own rate: the recipe names none
    sgd = MIMModel(**tiny_kwargs(tmp_path), training_recipe=recipe, optimizer_cls=torch.optim.SGD)
    assert sgd.training_recipe.peak_lr is None
    assert "lr" not in sgd.pl_module_params["optimizer_kwargs"]
    # Darts' scheduler replaces the one-cycle schedule, the user's EarlyStopping the recipe's
    from pytorch_lightning.callbacks import EarlyStopping

    kwargs = tiny_kwargs(tmp_path, n_epochs=1)
    kwargs["pl_trainer_kwargs"] = {
        **kwargs["pl_trainer_kwargs"],
        "callbacks": [EarlyStopping("val_loss", patience=1)],
    }
    step = MIMModel(
        **kwargs,
        training_recipe=TrainingRecipe(),
        lr_scheduler_cls=torch.optim.lr_scheduler.StepLR,
        lr_scheduler_kwargs={"step_size": 1},
    )
    assert step.training_recipe.lr_schedule is None
    assert step.training_recipe.early_stopping_patience is None
    step.fit(_hourly(4, 1)[:72], val_series=_hourly(4, 1)[24:])
    assert str(step.config).endswith("user recipe: StepLR from lr 0.003, clip 1")
    # the default recipe is unchanged
    assert MIMModel(**tiny_kwargs(tmp_path)).training_recipe == TrainingRecipe()


def test_fold_period_off_the_frequency_cycle_warns(tmp_path):
    model = MIMModel(
        **tiny_kwargs(tmp_path, input_chunk_length=28, output_chunk_length=7, fold_period=7)
    )
    with pytest.warns(
        UserWarning, match="fold_period=7 is neither a multiple nor a divisor of the 24"
    ):
        model.fit(_hourly(n_components=1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kwargs = tiny_kwargs(
            tmp_path / "b", input_chunk_length=48, output_chunk_length=12, fold_period=12
        )
        MIMModel(**kwargs).fit(_hourly(n_components=1))  # 12 divides 24: no word
    assert not [w for w in caught if "fold_period" in str(w.message)]


@pytest.mark.parametrize(
    "name, n, expected",
    [
        (
            "grid",
            3,
            "1x2x3 grid (channels ['ch0']), anchored on persistence, channels joint, "
            "instance norm off; MIM recipe: one-cycle lr 0.003, clip 1, early stop 5 on val_series",
        ),
        (
            "folded",
            24,
            "folded by 24, anchored on the seasonal naive (24 steps), "
            "channel-independent, instance norm on; MIM recipe: one-cycle lr 0.003, clip 1, early stop 5 on val_series",
        ),
    ],
)
def test_models_saved_by_darts_mim_0_5_load_with_their_configuration(tmp_path, name, n, expected):
    # written by darts-mim 0.5.0 (commit 26b6502), see tests/data/legacy/make_legacy_0_5.py
    path = os.path.join(LEGACY, f"mim_v0_5_{name}.pt")
    forecast = np.load(os.path.join(LEGACY, f"forecast_v0_5_{name}.npy"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no checksum file: saved before 0.6
        model = MIMModel.load(path)
    assert str(model.config) == expected
    np.testing.assert_allclose(model.predict(n).values(), forecast, atol=1e-6)
    # the constructor arguments of 0.5 rebuild an untrained model of today's form
    untrained = model.untrained_model()
    assert untrained.training_recipe == TrainingRecipe()
    assert "lr_schedule" not in untrained.model_params


def test_checkpoint_hyper_parameters_of_0_5_are_upgraded():
    ckpt = torch.load(
        os.path.join(LEGACY, "mim_v0_5_folded.pt.ckpt"), map_location="cpu", weights_only=False
    )
    old = ckpt["hyper_parameters"]
    assert "grid_layout" in old and "config" not in old
    new = upgrade_checkpoint_hparams(old)
    assert not {"grid_layout", "anchor_lag", "lr_schedule", "auto_bf16"} & set(new)
    config = ResolvedConfig.from_dict(new["config"])
    assert (config.layout.fold, config.anchor_lag, config.channel_independent) == (24, 1, True)
    assert config.recipe.input_window_loss is True and config.recipe.lr_schedule == "one_cycle"
    assert upgrade_checkpoint_hparams(new) == new  # a current form is left as it is
