"""MIMModel as a Darts model: everything a Darts user expects from a torch model."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FAST_TRAINER, make_grid_series, tiny_kwargs
from darts import TimeSeries, concatenate
from darts.metrics import mae, rmse
from darts.utils.likelihood_models.torch import GaussianLikelihood, QuantileRegression
from pytorch_lightning.callbacks import EarlyStopping

from darts_mim import MIMModel, TrainingRecipe, grid_to_series, series_to_grid
from darts_mim.grid import GRID_KEY


def _fit(tmp_path, series, **overrides):
    model = MIMModel(**tiny_kwargs(tmp_path, **overrides))
    model.fit(series)
    return model


def test_grid_fit_predict_shapes_index_and_metadata(tmp_path, grid_series):
    model = _fit(tmp_path, grid_series, patch_size=2)
    pred = model.predict(3)
    assert pred.n_timesteps == 3
    assert list(pred.components) == list(grid_series.components)
    assert pred.start_time() == grid_series.end_time() + grid_series.freq
    assert pred.metadata[GRID_KEY] == grid_series.metadata[GRID_KEY]
    assert series_to_grid(pred).shape == (3, 2, 4, 6)
    assert np.isfinite(pred.values()).all()
    assert model.grid.height == 4 and model.grid.width == 6


def test_n_above_output_chunk_length_is_autoregressive(tmp_path, grid_series):
    model = _fit(tmp_path, grid_series)
    long = model.predict(8)
    short = model.predict(3)
    assert long.n_timesteps == 8
    np.testing.assert_allclose(long.values()[:3], short.values(), atol=1e-6)


def test_multivariate_and_univariate_series(tmp_path):
    rng = np.random.default_rng(0)
    times = pd.date_range("2024", periods=80, freq="h")
    values = np.cumsum(rng.standard_normal((80, 7)), axis=0).astype(np.float32)
    multi = TimeSeries.from_times_and_values(times, values, columns=[f"c{i}" for i in range(7)])
    model = _fit(tmp_path, multi, filter_size=1)
    assert model.grid.n_channels == 7 and model.grid.n_cells == 1
    pred = model.predict(5)
    assert pred.n_components == 7 and list(pred.components) == list(multi.components)

    uni = multi["c0"]
    model = _fit(tmp_path / "uni", uni, filter_size=1)
    pred = model.predict(4)
    assert pred.n_components == 1 and pred.n_timesteps == 4


def test_grid_shape_argument_for_series_without_metadata(tmp_path, grid_series):
    plain = TimeSeries.from_times_and_values(grid_series.time_index, grid_series.values())
    model = _fit(tmp_path, plain, grid_shape=(4, 6))
    assert (model.grid.n_channels, model.grid.height, model.grid.width) == (2, 4, 6)
    assert model.predict(2).n_components == 48


def test_grid_shape_contradicting_the_metadata_is_refused(tmp_path, grid_series):
    """A 2x4x6 series with grid_shape (6, 4) would train on scrambled neighbourhoods, with
    (4, 2, 6) under renamed channels: refused, naming both shapes; an agreeing one is fine."""
    for grid_shape in ((6, 4), (2, 6, 4), (4, 2, 6)):
        with pytest.raises(
            ValueError,
            match=r"grid_shape=.* contradicts the grid metadata: the series is a 2x4x6 grid .*"
            r"\(C, H, W\) = \(2, 4, 6\)\. Drop `grid_shape`",
        ):
            _fit(tmp_path, grid_series, grid_shape=grid_shape)
    other = make_grid_series(height=6, width=4)
    with pytest.raises(ValueError, match="the series at index 1 is a 2x6x4 grid"):
        _fit(tmp_path, [grid_series.with_metadata(None), other], grid_shape=(4, 6))
    named = grid_to_series(series_to_grid(grid_series), grid_series.time_index, ["u", "v"])
    model = _fit(tmp_path, named, grid_shape=(2, 4, 6))
    assert model.grid.channels == ("u", "v")  # the metadata's names


def test_several_series_in_one_fit_and_predict(tmp_path):
    series = [make_grid_series(seed=s, n_steps=40 + 5 * s) for s in range(3)]
    model = _fit(tmp_path, series)
    preds = model.predict(4, series=series)
    assert len(preds) == 3
    for s, p in zip(series, preds, strict=True):
        assert p.start_time() == s.end_time() + s.freq


def test_covariates_gridded_plain_and_static(tmp_path, grid_series):
    times = grid_series.time_index
    rng = np.random.default_rng(1)
    gridded_past = grid_to_series(
        rng.random((len(times), 1, 4, 6)).astype(np.float32), times, ["rain"]
    )
    future_times = pd.date_range(times[0], periods=len(times) + 10, freq="h")
    plain_future = TimeSeries.from_times_and_values(
        future_times,
        np.stack(
            [np.sin(np.arange(len(future_times))), np.cos(np.arange(len(future_times)))], 1
        ).astype(np.float32),
        columns=["sin", "cos"],
    )
    static = pd.DataFrame({"elevation": [1.5]})
    target = grid_series.with_static_covariates(static)
    model = MIMModel(**tiny_kwargs(tmp_path))
    model.fit(target, past_covariates=gridded_past, future_covariates=plain_future)
    module = model.model
    assert module.past_cov_layout == (1, 0)
    assert module.future_cov_layout == (0, 2)
    assert module.static_cov_layout == ("global", 1)
    assert module.net.cond_channels == 1 + 2 + 1
    pred = model.predict(
        3, series=target, past_covariates=gridded_past, future_covariates=plain_future
    )
    assert pred.n_timesteps == 3
    # Future covariates change the forecast: they are really used.
    shifted = plain_future.with_values(plain_future.all_values() + 3.0)
    pred2 = model.predict(3, series=target, past_covariates=gridded_past, future_covariates=shifted)
    assert not np.allclose(pred.values(), pred2.values())


def test_per_component_static_covariates(tmp_path, grid_series):
    static = pd.DataFrame({"land": np.arange(grid_series.n_components) % 2})
    target = grid_series.with_static_covariates(static)
    model = MIMModel(**tiny_kwargs(tmp_path))
    model.fit(target)
    assert model.model.static_cov_layout == ("per_component", 1)
    assert model.model.net.cond_channels == 2  # one static value per channel
    assert model.predict(3).n_timesteps == 3


def test_encoders_are_plain_covariates(tmp_path, grid_series):
    model = MIMModel(**tiny_kwargs(tmp_path, add_encoders={"cyclic": {"future": ["hour"]}}))
    model.fit(grid_series)
    assert model.model.future_cov_layout == (0, 2)
    assert model.predict(5).n_timesteps == 5


def test_output_chunk_shift(tmp_path, grid_series):
    model = _fit(tmp_path, grid_series, output_chunk_shift=2)
    pred = model.predict(3)
    assert pred.start_time() == grid_series.end_time() + 3 * grid_series.freq


def test_validation_series_and_early_stopping(tmp_path, grid_series):
    train, val = grid_series[:40], grid_series[30:]
    stopper = EarlyStopping(monitor="val_loss", patience=1, min_delta=10.0, mode="min")
    trainer = dict(FAST_TRAINER, callbacks=[stopper])
    model = MIMModel(**tiny_kwargs(tmp_path, n_epochs=20, pl_trainer_kwargs=trainer))
    model.fit(train, val_series=val)
    assert model.epochs_trained < 20  # min_delta=10 can never be met: stops after patience
    assert "val_loss" in model.trainer.callback_metrics


@pytest.mark.parametrize(
    "likelihood, n_params", [(GaussianLikelihood(), 2), (QuantileRegression([0.1, 0.5, 0.9]), 3)]
)
def test_likelihoods(tmp_path, grid_series, likelihood, n_params):
    model = _fit(tmp_path, grid_series, likelihood=likelihood)
    assert model.model.net.nr_params == n_params
    samples = model.predict(3, num_samples=20)
    assert samples.n_samples == 20
    assert series_to_grid(samples).shape == (3, 2, 4, 6, 20)
    params = model.predict(3, predict_likelihood_parameters=True)
    assert params.n_components == grid_series.n_components * n_params
    if isinstance(likelihood, QuantileRegression):
        vals = params.values().reshape(3, -1, 3)
        assert (vals[..., 0] <= vals[..., 2] + 1e-6).mean() > 0.5
    else:
        sigma = params.values()[:, 1::2]
        assert (sigma > 0).all()


def test_instance_norm_with_a_scale_parameter_is_refused(tmp_path):
    """Darts' instance norm maps a Gaussian's sigma back with the series' mean: a sigma of the
    series' level. An explicit norm with such a likelihood is an error (as in Darts' NLinear);
    "auto" leaves the norm off, and quantiles (values of the series) keep it."""
    for norm in (True, {"affine": False}):
        with pytest.raises(ValueError, match="GaussianLikelihood.*scale parameters"):
            MIMModel(
                **tiny_kwargs(tmp_path),
                likelihood=GaussianLikelihood(),
                use_reversible_instance_norm=norm,
            )
    MIMModel(**tiny_kwargs(tmp_path), likelihood=GaussianLikelihood())  # "auto"
    MIMModel(
        **tiny_kwargs(tmp_path),
        likelihood=QuantileRegression([0.1, 0.5, 0.9]),
        use_reversible_instance_norm=True,
    )


def test_a_float64_series_is_forecast_by_a_float32_model(tmp_path, grid_series):
    """A float64 series into a model trained on float32 (e.g. after pandas arithmetic) is cast, as
    the ONNX runtime casts it: the same forecast, not a dtype error from the first convolution."""
    model = _fit(tmp_path, grid_series)
    wide = grid_series.astype(np.float64)
    np.testing.assert_allclose(
        model.predict(3, series=wide).values(), model.predict(3, series=grid_series).values()
    )
    backtest = model.historical_forecasts(
        wide, start=len(wide) - 3, forecast_horizon=3, retrain=False, last_points_only=False
    )
    assert np.isfinite(backtest[0].values()).all()


def test_quantile_feedback_is_the_median(tmp_path):
    from darts_mim.model import _likelihood_feedback_param

    assert _likelihood_feedback_param(QuantileRegression([0.1, 0.5, 0.9])) == 1
    assert _likelihood_feedback_param(GaussianLikelihood()) == 0
    assert _likelihood_feedback_param(None) == 0


def test_historical_forecasts_and_backtest(tmp_path, grid_series):
    model = _fit(tmp_path, grid_series[:45])
    hf = model.historical_forecasts(
        grid_series, start=45, forecast_horizon=3, stride=3, retrain=False, last_points_only=False
    )
    assert len(hf) == 5  # origins 45, 48, 51, 54, 57
    errors = model.backtest(
        grid_series, start=45, forecast_horizon=3, stride=3, retrain=False, metric=[mae, rmse]
    )
    assert np.all(np.isfinite(errors))
    retrained = model.backtest(
        grid_series, start=50, forecast_horizon=3, stride=5, retrain=True, metric=rmse
    )
    assert np.isfinite(retrained)


def test_save_load_and_predict_identically(tmp_path, grid_series):
    model = _fit(tmp_path, grid_series)
    before = model.predict(4)
    path = tmp_path / "mim.pt"
    model.save(str(path))
    loaded = MIMModel.load(str(path))
    np.testing.assert_array_equal(loaded.predict(4).values(), before.values())
    assert loaded.grid == model.grid


def test_load_from_checkpoint_and_load_weights(tmp_path, grid_series):
    kwargs = tiny_kwargs(tmp_path, save_checkpoints=True, model_name="ckpt_model", force_reset=True)
    model = MIMModel(**kwargs)
    model.fit(grid_series)
    expected = model.predict(3).values()
    restored = MIMModel.load_from_checkpoint("ckpt_model", work_dir=str(tmp_path), best=False)
    np.testing.assert_allclose(restored.predict(3).values(), expected, atol=1e-6)

    path = tmp_path / "weights.pt"
    model.save(str(path))
    fresh = MIMModel(**kwargs)
    fresh.load_weights(str(path))
    np.testing.assert_allclose(fresh.predict(3, series=grid_series).values(), expected, atol=1e-6)


def test_lr_find(tmp_path, grid_series):
    model = MIMModel(**tiny_kwargs(tmp_path, batch_size=4))  # 13 batches: room for 10 trials
    result = model.lr_find(series=grid_series, num_training=10, min_lr=1e-4, max_lr=1e-1)
    lrs, losses = result.results["lr"], result.results["loss"]
    assert len(lrs) == 10 and lrs[0] < lrs[-1]
    assert np.isfinite(losses).all()


def test_same_random_state_same_forecast(tmp_path, grid_series):
    a = _fit(tmp_path / "a", grid_series).predict(3)
    b = _fit(tmp_path / "b", grid_series).predict(3)
    np.testing.assert_array_equal(a.values(), b.values())
    c = _fit(tmp_path / "c", grid_series, random_state=1).predict(3)
    assert not np.array_equal(a.values(), c.values())


def test_float64_series(tmp_path):
    series = make_grid_series(dtype=np.float64)
    model = _fit(tmp_path, series)
    assert model.model.dtype == torch.float64
    pred = model.predict(3)
    assert pred.dtype == np.float64


def test_predict_does_not_change_the_model(tmp_path, grid_series):
    model = _fit(tmp_path, grid_series)
    state = {k: v.clone() for k, v in model.model.state_dict().items()}
    model.predict(7)
    model.predict(3, num_samples=1)
    for key, value in model.model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_fit_and_predict_never_run_more_threads_than_the_process_has_cpus(
    tmp_path, grid_series, monkeypatch
):
    """torch counts the machine's cores; a container's quota or an affinity mask may give the
    process fewer: fit and predict cap torch's threads there, and restore the setting after."""
    from darts_mim import resources
    from darts_mim.nn.network import MIMNetwork

    seen = []
    forward = MIMNetwork.forward

    def spy(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(MIMNetwork, "forward", spy)
    torch.set_num_threads(2)
    monkeypatch.setattr(resources, "available_cpus", lambda: 1)
    model = _fit(tmp_path, grid_series)
    model.predict(3)
    assert seen and set(seen) == {1} and torch.get_num_threads() == 2
    seen.clear()
    monkeypatch.setattr(resources, "available_cpus", lambda: 4)
    model.predict(3)  # within the quota: torch's own setting
    assert set(seen) == {2}


def test_prediction_does_not_depend_on_batch(tmp_path):
    series = [make_grid_series(seed=s) for s in range(9)]
    model = _fit(tmp_path, series)
    alone = model.predict(3, series=series[4]).values()
    for batch_size in (1, 4, 32):
        batch = model.predict(3, series=series[::-1], batch_size=batch_size)
        np.testing.assert_allclose(batch[4].values(), alone, atol=1e-5)


def test_bf16_precision_trains(tmp_path, grid_series):
    model = _fit(
        tmp_path, grid_series, pl_trainer_kwargs={**FAST_TRAINER, "precision": "bf16-mixed"}
    )
    assert model.trainer_params["precision"] == "bf16-mixed"
    assert np.isfinite(model.predict(3).values()).all()


def test_activation_checkpointing_matches(tmp_path, grid_series):
    on = TrainingRecipe(activation_checkpointing=True)
    a = _fit(tmp_path / "a", grid_series).predict(3)
    b = _fit(tmp_path / "b", grid_series, training_recipe=on).predict(3)
    np.testing.assert_allclose(a.values(), b.values(), atol=1e-5)


@pytest.mark.parametrize("schedule", ["linear", "teacher_forcing", "free_running"])
def test_sampling_schedules_train(tmp_path, grid_series, schedule):
    model = _fit(tmp_path, grid_series, training_recipe=TrainingRecipe(sampling_schedule=schedule))
    assert np.isfinite(model.predict(3).values()).all()


def test_scheduled_sampling_eta_decays(tmp_path, grid_series, monkeypatch):
    model = _fit(tmp_path, grid_series, training_recipe=TrainingRecipe(sampling_decay_steps=100))
    module = model.model
    ref = torch.zeros(1)
    torch.manual_seed(0)

    def at_step(step: int, batch: int) -> float:
        # global_step counts optimizer steps; eta falls linearly from 1 to 0 over 100 of them.
        monkeypatch.setattr(type(module), "global_step", property(lambda self: step))
        return module._teacher_mask(batch, 3, ref).mean().item()

    assert at_step(0, 2000) == 1.0
    assert abs(at_step(50, 4000) - 0.5) < 0.05
    assert at_step(500, 100) == 0.0
    module.recipe = dataclasses.replace(module.recipe, sampling_schedule="teacher_forcing")
    assert at_step(500, 100) == 1.0
    module.recipe = dataclasses.replace(module.recipe, sampling_schedule="free_running")
    assert module._teacher_mask(10, 3, ref) is None


def test_default_decay_follows_the_planned_steps(tmp_path, grid_series):
    model = _fit(tmp_path, grid_series, n_epochs=3, batch_size=8)
    module = model.model
    planned = module.trainer.estimated_stepping_batches  # 3 epochs x 7 batches
    assert planned == 21
    assert module._decay_steps_of_fit() == round(0.625 * 21)


# ---------------------------------------------------------------------- bad input
def test_components_not_divisible_by_grid(tmp_path, grid_series):
    plain = TimeSeries.from_times_and_values(grid_series.time_index, grid_series.values())
    with pytest.raises(ValueError, match="not a multiple"):
        _fit(tmp_path, plain, grid_shape=(5, 5))


def test_patch_size_must_divide_grid(tmp_path, grid_series):
    with pytest.raises(ValueError, match="patch_size=4 does not divide the 4x6 grid"):
        _fit(tmp_path, grid_series, patch_size=4)


def test_series_too_short(tmp_path, grid_series):
    with pytest.raises(ValueError, match="needs at least input_chunk_length"):
        _fit(tmp_path, grid_series[:8])


def test_nan_in_target_says_where(tmp_path, grid_series):
    values = grid_series.all_values().copy()
    values[10, 5, 0] = np.nan
    bad = grid_series.with_values(values)
    with pytest.raises(ValueError, match=r"NaN: 1 value\(s\), the first at time 2024-01-01 10:00"):
        _fit(tmp_path, bad)


def test_nan_and_inf_in_covariates(tmp_path, grid_series):
    cov = TimeSeries.from_times_and_values(
        grid_series.time_index, np.ones((len(grid_series), 1), dtype=np.float32), columns=["x"]
    )
    values = cov.all_values().copy()
    values[3] = np.inf
    model = MIMModel(**tiny_kwargs(tmp_path))
    with pytest.raises(ValueError, match="past_covariates` contains infinite values"):
        model.fit(grid_series, past_covariates=cov.with_values(values))


def test_always_missing_cells_are_masked(tmp_path, grid_series):
    values = grid_series.all_values().copy()
    land = [0, 7, 30]
    values[:, land] = np.nan
    sea = grid_series.with_values(values)
    model = _fit(tmp_path, sea)
    assert list(model.layout.missing) == land
    pred = model.predict(4)
    out = pred.values()
    assert np.isnan(out[:, land]).all()
    keep = np.setdiff1d(np.arange(sea.n_components), land)
    assert np.isfinite(out[:, keep]).all()
    hf = model.historical_forecasts(sea, start=50, forecast_horizon=3, retrain=False)
    assert np.isfinite(hf.values()[:, keep]).all()


def test_predict_on_different_components_or_grid(tmp_path, grid_series):
    model = _fit(tmp_path, grid_series)
    other = make_grid_series(height=6, width=4)
    with pytest.raises(ValueError, match=r"fitted on a 2x4x6 grid .* has a 2x6x4 grid"):
        model.predict(3, series=other)
    one_channel = make_grid_series(channels=1)
    with pytest.raises(ValueError, match=r"has a 1x4x6 grid"):
        model.predict(3, series=one_channel)
    fewer = TimeSeries.from_times_and_values(grid_series.time_index, grid_series.values()[:, :10])
    with pytest.raises(ValueError, match=r"fitted on a 2x4x6 grid .* has 10 components\."):
        model.predict(3, series=fewer)
    single = TimeSeries.from_times_and_values(grid_series.time_index, grid_series.values()[:, :1])
    with pytest.raises(ValueError, match=r"has 1 component\."):
        model.predict(3, series=single)
    # selecting components keeps the grid metadata of the whole grid: say so, not "grids differ"
    subset = grid_series[list(grid_series.components[:24])]
    with pytest.raises(ValueError, match=r"metadata was probably kept after selecting"):
        model.predict(3, series=subset)


def test_predict_on_grid_with_other_channel_names(tmp_path, grid_series):
    model = _fit(tmp_path, grid_series)
    renamed = grid_to_series(series_to_grid(grid_series), grid_series.time_index, ["u", "v"])
    forecast = model.predict(3, series=renamed)
    np.testing.assert_allclose(forecast.values(), model.predict(3).values(), atol=1e-6)
    assert forecast.metadata[GRID_KEY]["channels"] == ["u", "v"]


def test_predict_on_renamed_components_follows_darts(tmp_path):
    # Darts' own models forecast a series with other component names (same count): so does MIMModel
    times = pd.date_range("2024", periods=40, freq="h")
    values = np.random.default_rng(0).random((40, 3)).astype(np.float32)
    series = TimeSeries.from_times_and_values(times, values, columns=["a", "b", "c"])
    model = _fit(tmp_path, series, filter_size=1)
    other = TimeSeries.from_times_and_values(times, values, columns=["a", "b", "z"])
    forecast = model.predict(3, series=other)
    assert list(forecast.components) == ["a", "b", "z"]
    np.testing.assert_allclose(forecast.values(), model.predict(3).values(), atol=1e-6)
    with pytest.raises(ValueError, match=r"has 2 components"):
        model.predict(3, series=other[["a", "b"]])


def test_always_missing_cells_with_values_at_predict_warn(tmp_path, grid_series):
    values = grid_series.all_values().copy()
    values[:, [0, 7]] = np.nan
    model = _fit(tmp_path, grid_series.with_values(values))
    with pytest.warns(UserWarning, match=r"missing at every step of the training data"):
        forecast = model.predict(3, series=grid_series)
    assert np.isnan(forecast.values()[:, [0, 7]]).all()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.predict(3)  # the training series: no values there, no warning
    assert not [w for w in caught if "missing at every step" in str(w.message)]


@pytest.mark.parametrize("n", [0, -1, 2.5])
def test_invalid_n(tmp_path, grid_series, n):
    model = _fit(tmp_path, grid_series)
    with pytest.raises(ValueError, match="positive integer"):
        model.predict(n)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"input_chunk_length": 0}, "input_chunk_length"),
        ({"output_chunk_length": -2}, "output_chunk_length"),
        ({"num_hidden": ()}, "num_hidden"),
        ({"num_hidden": (8, 0)}, "num_hidden entries"),
        ({"filter_size": 4}, "odd"),
        ({"patch_size": 0}, "patch_size"),
        ({"diff_mode": "sideways"}, "diff_mode"),
        ({"cell_type": "gru"}, "cell_type"),
        ({"grid_shape": (0, 3)}, "grid_shape"),
        # a fractional size was truncated (2.5 rows: a 2-row grid, the rest read as channels)
        ({"grid_shape": (2.5, 4)}, "grid_shape"),
        ({"grid_shape": ("a", 4)}, "grid_shape"),
        ({"grid_shape": "44"}, "grid_shape"),
        ({"num_hidden": None}, "num_hidden"),
        # bool("no") is True: these switched the option on
        ({"layer_norm": "no"}, "layer_norm"),
        ({"linear_residual": "False"}, "linear_residual"),
        ({"use_static_covariates": "no"}, "use_static_covariates"),
    ],
)
def test_invalid_hyper_parameters(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        MIMModel(**tiny_kwargs(tmp_path, **overrides))


@pytest.mark.parametrize(
    "overrides, message",
    [
        # Darts took these as they were: batch_size=0 failed in torch's data loader at fit, a
        # negative n_epochs trained until interrupted (Lightning's max_epochs=-1), a float or a
        # string reached Lightning's Trainer
        ({"batch_size": 0}, r"`batch_size` must be a positive integer .*got 0\."),
        ({"batch_size": -4}, r"`batch_size` must be a positive integer .*got -4\."),
        ({"batch_size": 8.0}, r"`batch_size` must be a positive integer .*got 8\.0\."),
        ({"batch_size": True}, r"`batch_size` must be a positive integer .*got True\."),
        ({"n_epochs": -1}, r"`n_epochs` must be an integer >= 0 .*got -1\."),
        ({"n_epochs": 1.5}, r"`n_epochs` must be an integer >= 0 .*got 1\.5\."),
        ({"n_epochs": "3"}, r"`n_epochs` must be an integer >= 0 .*got '3'\."),
        ({"nr_epochs_val_period": 0}, r"`nr_epochs_val_period` must be a positive integer"),
    ],
)
def test_invalid_training_sizes_are_refused_at_construction(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        MIMModel(**tiny_kwargs(tmp_path, **overrides))


def test_zero_epochs_and_numpy_integer_sizes_still_work(tmp_path, grid_series):
    """``n_epochs=0`` is Darts' way to build the network without training it (an anchored model
    then forecasts its naive anchor); numpy integers (from a grid search) are cast to int, which
    torch's data loader needs."""
    model = MIMModel(**tiny_kwargs(tmp_path, n_epochs=0, batch_size=np.int64(8)))
    assert (model.n_epochs, model.batch_size) == (0, 8) and type(model.batch_size) is int
    model.fit(grid_series)
    assert model.model.epochs_trained == 0
    assert model.predict(3).n_timesteps == 3


@pytest.mark.parametrize("accelerator", ["gpu", "cuda", "GPU"])
def test_gpu_accelerator_without_a_visible_gpu_is_a_clear_error(
    tmp_path, grid_series, monkeypatch, accelerator
):
    """Lightning failed deep in its Trainer ("No supported gpu backend found!"); the error now says
    what is wrong and what to use instead, before the network is built."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    trainer = {**FAST_TRAINER, "accelerator": accelerator}
    model = MIMModel(**tiny_kwargs(tmp_path, pl_trainer_kwargs=trainer))
    with pytest.raises(ValueError, match="no CUDA GPU is visible to torch") as err:
        model.fit(grid_series)
    assert "accelerator='auto' (falls back to the CPU) or accelerator='cpu'" in str(err.value)
    assert not model.model_created
    # a model fitted elsewhere (here on the CPU) and then asked for a GPU: predict says it too
    fitted = _fit(tmp_path / "cpu", grid_series)
    fitted.trainer_params["accelerator"] = accelerator
    with pytest.raises(ValueError, match="no CUDA GPU is visible to torch"):
        fitted.predict(3)


def test_auto_accelerator_falls_back_to_the_cpu_without_a_gpu(tmp_path, grid_series, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    trainer = {**FAST_TRAINER, "accelerator": "auto"}
    model = _fit(tmp_path, grid_series, pl_trainer_kwargs=trainer)
    assert model.predict(3).n_timesteps == 3


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"sampling_schedule": "sometimes"}, "sampling_schedule"),
        ({"sampling_start": 1.5}, "sampling_start"),
        ({"sampling_decay_steps": 0}, "sampling_decay_steps"),
        ({"cuda_graphs": "yes"}, "cuda_graphs"),
        ({"gradient_clip_val": -1.0}, "gradient_clip_val"),
    ],
)
def test_invalid_recipe(fields, message):
    with pytest.raises(ValueError, match=message):
        TrainingRecipe(**fields)


def test_a_loaded_model_saves_with_its_weights(tmp_path, grid_series):
    """Darts' save() writes weights only from a trainer: a model just loaded and saved again lost
    them (its .pt loaded 'without weights')."""
    model = _fit(tmp_path, grid_series)
    model.save(str(tmp_path / "a.pt"))
    loaded = MIMModel.load(str(tmp_path / "a.pt"))
    loaded.save(str(tmp_path / "b.pt"))
    again = MIMModel.load(str(tmp_path / "b.pt"))
    np.testing.assert_array_equal(again.predict(3).values(), model.predict(3).values())
    (tmp_path / "a.pt.ckpt").unlink()
    with pytest.raises(ValueError, match="weights cannot be saved.*is gone"):
        loaded.save(str(tmp_path / "c.pt"))
    assert not (tmp_path / "c.pt").exists()  # nothing half-saved


def test_corrupt_and_truncated_saved_model(tmp_path, grid_series):
    model = _fit(tmp_path, grid_series)
    path = tmp_path / "m.pt"
    model.save(str(path))
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="corrupt, truncated"):
        MIMModel.load(str(path))
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        MIMModel.load(str(path))


def test_save_never_leaves_a_half_written_file(tmp_path, grid_series, monkeypatch):
    model = _fit(tmp_path, grid_series)
    path = tmp_path / "keep.pt"
    model.save(str(path))
    original = path.read_bytes(), (tmp_path / "keep.pt.ckpt").read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(model.trainer, "save_checkpoint", crash)
    with pytest.raises(OSError, match="disk full"):
        model.save(str(path))
    assert (path.read_bytes(), (tmp_path / "keep.pt.ckpt").read_bytes()) == original
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".mim-save-")]
    assert MIMModel.load(str(path)).predict(2).n_timesteps == 2


def test_concatenated_series_keep_grid(grid_series):
    joined = concatenate([grid_series[:20], grid_series[20:]])
    assert series_to_grid(joined).shape == (60, 2, 4, 6)
