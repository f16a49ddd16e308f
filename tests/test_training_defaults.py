"""The training recipe: learning-rate schedule, clipping, early stopping, and when Darts' semantics
apply instead (the user set ``optimizer_kwargs`` or ``lr_scheduler_cls``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_kwargs
from pytorch_lightning.callbacks import EarlyStopping

from darts_mim import MIMModel, TrainingRecipe, grid_to_series
from darts_mim.callbacks import RestoreBestWeights
from darts_mim.module import one_cycle_factor


def _scheduler_and_lr(model: MIMModel):
    configs = model.trainer.lr_scheduler_configs
    optimizer = model.trainer.optimizers[0]
    return (configs[0].scheduler if configs else None), optimizer.param_groups[0]["lr"]


def test_one_cycle_schedule_spans_the_planned_steps(tmp_path, grid_series):
    model = MIMModel(
        **tiny_kwargs(
            tmp_path,
            training_recipe=TrainingRecipe(),
            n_epochs=2,
            batch_size=8,
            optimizer_kwargs={"lr": 0.01},
        )
    ).fit(grid_series)
    scheduler, last_lr = _scheduler_and_lr(model)
    assert isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR)
    steps = model.trainer.global_step
    rates = [0.01 * one_cycle_factor(k, steps) for k in range(steps + 1)]
    peak = int(np.argmax(rates))
    assert rates[0] == pytest.approx(0.01 / 25) and max(rates) == pytest.approx(0.01, rel=0.05)
    assert 0.2 * steps <= peak <= 0.4 * steps  # warm-up over the first 30 %
    assert last_lr == pytest.approx(rates[steps])  # the schedule spans exactly this fit's steps
    assert last_lr < 0.01 / 1000


def test_one_cycle_resumes_and_continues(tmp_path, grid_series):
    """A fit resumed from a checkpoint, or continued, with more epochs re-plans the schedule instead
    of stepping past its end (which PyTorch's OneCycleLR refuses)."""
    common = dict(n_epochs=1, save_checkpoints=True, force_reset=True)
    part = MIMModel(**tiny_kwargs(tmp_path, model_name="part", **common)).fit(grid_series)
    resumed = MIMModel.load_from_checkpoint("part", work_dir=str(tmp_path), best=False)
    resumed.fit(grid_series, epochs=3)
    assert resumed.epochs_trained == 3
    part.fit(grid_series, epochs=2)  # continue training the fitted model
    assert np.isfinite(part.predict(3).values()).all()


def test_constant_rate_without_a_schedule(tmp_path, grid_series):
    recipe = TrainingRecipe(lr_schedule=None)
    model = MIMModel(**tiny_kwargs(tmp_path, training_recipe=recipe, optimizer_kwargs={"lr": 0.01}))
    scheduler, last_lr = _scheduler_and_lr(model.fit(grid_series))
    assert scheduler is None and last_lr == pytest.approx(0.01)


def test_darts_semantics_where_the_user_sets_darts_training_arguments(tmp_path, grid_series):
    """A Darts user who sets optimizer_kwargs or lr_scheduler_cls trains as with Darts' models: that
    rate, constant (or their scheduler), no clipping, no early stopping of ours."""
    model = MIMModel(**tiny_kwargs(tmp_path, optimizer_kwargs={"lr": 0.1}))
    assert model.training_recipe == TrainingRecipe.darts(peak_lr=0.1)  # the rate that applies
    assert "gradient_clip_val" not in model.trainer_params
    model.fit(grid_series[:40], val_series=grid_series[34:])
    scheduler, last_lr = _scheduler_and_lr(model)
    assert scheduler is None and last_lr == pytest.approx(0.1)
    assert not model.trainer.gradient_clip_val
    assert not _callbacks(model, EarlyStopping)
    assert model.config.recipe_source == "darts" and "Darts' semantics" in str(model.config)
    stepped = MIMModel(
        **tiny_kwargs(
            tmp_path / "s",
            lr_scheduler_cls=torch.optim.lr_scheduler.StepLR,
            lr_scheduler_kwargs={"step_size": 1},
        )
    )
    assert stepped.training_recipe == TrainingRecipe.darts()
    assert stepped.pl_module_params["optimizer_kwargs"] == {}  # Darts' default rate


def test_explicit_recipe_is_applied_as_given(tmp_path):
    recipe = TrainingRecipe(gradient_clip_val=0.5, early_stopping_patience=None)
    model = MIMModel(**tiny_kwargs(tmp_path, training_recipe=recipe, optimizer_kwargs={"lr": 0.2}))
    assert model.training_recipe == dataclasses.replace(recipe, peak_lr=0.2)  # as it applies
    assert model.trainer_params["gradient_clip_val"] == 0.5
    assert model.pl_module_params["optimizer_kwargs"] == {"lr": 0.2}  # the user's rate is the peak


def test_darts_scheduler_takes_precedence(tmp_path, grid_series):
    model = MIMModel(
        **tiny_kwargs(
            tmp_path,
            training_recipe=TrainingRecipe(),
            lr_scheduler_cls=torch.optim.lr_scheduler.StepLR,
            lr_scheduler_kwargs={"step_size": 1, "gamma": 0.5},
            optimizer_kwargs={"lr": 0.01},
            n_epochs=2,
        )
    ).fit(grid_series)
    scheduler, last_lr = _scheduler_and_lr(model)
    assert isinstance(scheduler, torch.optim.lr_scheduler.StepLR)
    assert last_lr == pytest.approx(0.0025)  # halved after each of the 2 epochs


def test_bad_schedule_is_a_clear_error():
    with pytest.raises(ValueError, match="`lr_schedule` must be one of"):
        TrainingRecipe(lr_schedule="cosine")
    with pytest.raises(ValueError, match="training_recipe=TrainingRecipe"):
        MIMModel(6, 3, lr_schedule="one_cycle")  # the options of 0.5 say where they moved
    with pytest.raises(ValueError, match="pl_trainer_kwargs=.*precision"):
        MIMModel(6, 3, precision="auto")
    with pytest.raises(ValueError, match="must be a darts_mim.TrainingRecipe"):
        MIMModel(6, 3, training_recipe={"lr_schedule": None})


def test_package_defaults_are_the_measured_ones(tmp_path, grid_series):
    model = MIMModel(96, 96)
    assert model.num_hidden == (32, 32)
    assert model.filter_size == 3
    assert model.naive_anchor == "auto"
    assert model.training_recipe == TrainingRecipe()
    assert model.training_recipe.lr_schedule == "one_cycle"
    assert model.trainer_params["gradient_clip_val"] == 1.0
    kwargs = tiny_kwargs(tmp_path)
    kwargs["pl_trainer_kwargs"] = {**kwargs["pl_trainer_kwargs"], "gradient_clip_val": 5.0}
    assert MIMModel(**kwargs).trainer_params["gradient_clip_val"] == 5.0  # the user's wins
    fitted = MIMModel(**tiny_kwargs(tmp_path / "d")).fit(grid_series)
    scheduler, _ = _scheduler_and_lr(fitted)
    assert isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR)
    assert scheduler.base_lrs == [3e-3]  # the default peak with Adam
    assert fitted.trainer.gradient_clip_val == 1.0
    assert fitted.config.recipe_source == "mim" and "MIM recipe" in str(fitted.config)
    sgd = MIMModel(
        **tiny_kwargs(tmp_path, optimizer_cls=torch.optim.SGD, optimizer_kwargs={"lr": 0.1})
    )
    assert sgd.pl_module_params["optimizer_kwargs"] == {"lr": 0.1}


def _callbacks(model: MIMModel, kind):
    return [cb for cb in model.trainer.callbacks if isinstance(cb, kind)]


def test_validation_series_stops_early_and_keeps_the_best_weights(tmp_path, grid_series):
    train, val = grid_series[:40], grid_series[34:]
    # a learning rate far too high: the validation loss soon stops improving
    model = MIMModel(
        **tiny_kwargs(
            tmp_path,
            n_epochs=40,
            training_recipe=TrainingRecipe(early_stopping_patience=2),
            optimizer_kwargs={"lr": 0.5},
        )
    ).fit(train, val_series=val)
    (stopper,) = _callbacks(model, EarlyStopping)
    (keeper,) = _callbacks(model, RestoreBestWeights)
    assert model.trainer.current_epoch < 40  # stopped early
    assert keeper.best_epoch is not None and keeper.best_epoch <= model.trainer.current_epoch
    for key, value in model.model.state_dict().items():
        torch.testing.assert_close(value.cpu(), keeper._best_state[key])
    # the callbacks belong to that fit only: not saved with the model, not kept for the next fit
    assert not model.trainer_params.get("callbacks")
    model.save(str(tmp_path / "m.pt"))
    MIMModel.load(str(tmp_path / "m.pt")).predict(3)


def test_the_untrained_weights_compete_for_the_best_epoch(tmp_path):
    """Issue 24: with a validation series an anchored model is never left worse than its naive
    forecast. On a random walk persistence is the best forecast; a ruinous learning rate makes every
    trained epoch worse, so the restore returns the untrained weights: persistence exactly."""
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.standard_normal((60, 1, 4, 4)), axis=0).astype(np.float32)
    series = grid_to_series(walk, pd.date_range("2024", periods=60, freq="h"))
    model = MIMModel(
        **tiny_kwargs(
            tmp_path,
            n_epochs=3,
            naive_anchor=True,
            training_recipe=TrainingRecipe(peak_lr=5.0, early_stopping_patience=5),
        )
    ).fit(series[:40], val_series=series[34:])
    (keeper,) = _callbacks(model, RestoreBestWeights)
    assert keeper.best_epoch == -1  # the sanity check's score of the untrained weights
    np.testing.assert_allclose(
        model.predict(3).values(), np.repeat(series[:40].values()[-1:], 3, axis=0), atol=1e-5
    )
    assert model.trainer.num_sanity_val_steps == float("inf")  # every validation batch
    assert not model.trainer_params.get("num_sanity_val_steps")  # not kept for the next fit


def test_validation_holdout_without_a_validation_series(tmp_path, grid_series):
    """TrainingRecipe(validation_holdout=...) holds the last steps out for early stopping; predict
    still continues the whole series the user gave."""
    recipe = TrainingRecipe(validation_holdout=0.25)
    model = MIMModel(**tiny_kwargs(tmp_path, n_epochs=2, training_recipe=recipe))
    model.fit(grid_series)
    (keeper,) = _callbacks(model, RestoreBestWeights)
    assert keeper.best_epoch is not None
    # trained on the first 45 of 60 steps: 37 windows of 6 + 3 (3 batches of 16); validated on
    # the last 15 with the 6 before them: 13 windows (1 batch)
    assert model.trainer.num_training_batches == 3
    assert model.trainer.num_val_batches == [1]
    assert model.training_series == grid_series
    assert model.predict(2).start_time() == grid_series.end_time() + grid_series.freq
    assert "early stop 5 on val_series or the last 25%" in str(model.config)
    plain = MIMModel(**tiny_kwargs(tmp_path / "p", n_epochs=2)).fit(grid_series)
    assert not _callbacks(plain, RestoreBestWeights)  # the default holds nothing out
    assert plain.trainer.num_training_batches == 4  # 52 windows
    short = MIMModel(**tiny_kwargs(tmp_path / "s", n_epochs=1, training_recipe=recipe))
    short.fit(grid_series[:10])  # too short to spare a quarter: every step, no early stopping
    assert not _callbacks(short, RestoreBestWeights)


@pytest.mark.parametrize("share", [0, 1, 1.5, -0.1, True, "0.1"])
def test_bad_validation_holdout_is_a_clear_error(share):
    with pytest.raises(ValueError, match="`validation_holdout` is a share"):
        TrainingRecipe(validation_holdout=share)


def test_no_early_stopping_without_validation_or_when_the_user_has_one(tmp_path, grid_series):
    plain = MIMModel(**tiny_kwargs(tmp_path)).fit(grid_series)
    assert not _callbacks(plain, EarlyStopping) and not _callbacks(plain, RestoreBestWeights)
    mine = EarlyStopping(monitor="val_loss", patience=7)
    kwargs = tiny_kwargs(tmp_path / "u")
    kwargs["pl_trainer_kwargs"] = {**kwargs["pl_trainer_kwargs"], "callbacks": [mine]}
    user = MIMModel(**kwargs).fit(grid_series[:40], val_series=grid_series[34:])
    assert _callbacks(user, EarlyStopping) == [mine]
    assert not _callbacks(user, RestoreBestWeights)
    off = MIMModel(
        **tiny_kwargs(tmp_path / "o", training_recipe=TrainingRecipe(early_stopping_patience=None))
    )
    off.fit(grid_series[:40], val_series=grid_series[34:])
    assert not _callbacks(off, EarlyStopping)


@pytest.mark.parametrize("patience", [0, -1, 2.5, True])
def test_bad_patience_is_a_clear_error(patience):
    with pytest.raises(ValueError, match="`early_stopping_patience` must be"):
        TrainingRecipe(early_stopping_patience=patience)


@pytest.mark.parametrize("total", [1, 2, 7, 50, 320])
def test_one_cycle_is_pytorchs_one_cycle_step_for_step(total):
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([weight], lr=3e-3)
    reference = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=total)
    for step in range(total):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(
            3e-3 * one_cycle_factor(step, total)
        )
        optimizer.step()
        if step < total - 1:
            reference.step()
    assert one_cycle_factor(total + 5, total) == one_cycle_factor(
        total - 1, total
    )  # stays at the end
