"""``MIMModel(linear_residual=True)``: a learned linear map of the input window added to the forecast."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tiny_kwargs
from darts import TimeSeries
from darts.utils.likelihood_models.torch import (
    GaussianLikelihood,
    PoissonLikelihood,
    QuantileRegression,
)

from darts_mim import MIMModel


def _ramp(n: int = 120, slope: float = 0.1) -> TimeSeries:
    """A straight line: persistence lags it by the slope per step, a linear map extrapolates it."""
    return TimeSeries.from_values((slope * np.arange(n)).astype(np.float32))


def _rmse(forecast: TimeSeries, truth: TimeSeries) -> float:
    return float(np.sqrt(np.mean((forecast.values() - truth.values()) ** 2)))


def test_untrained_linear_residual_is_the_anchor(tmp_path):
    # lr 0: the weights stay where they start; the linear map starts at zero, so the forecast is the
    # anchor (persistence), exactly as without the linear map
    series = _ramp()
    model = MIMModel(
        **tiny_kwargs(tmp_path, linear_residual=True, optimizer_kwargs={"lr": 0.0}),
        naive_anchor=True,
    )
    model.fit(series)
    assert model.config.linear_residual
    assert "linear residual" in str(model.config)
    forecast = model.predict(3, series=series)
    np.testing.assert_allclose(forecast.values()[:, 0], np.full(3, series.values()[-1, 0]), 1e-6)


def test_linear_residual_learns_a_trend_the_anchor_cannot(tmp_path):
    series = _ramp()
    train, test = series[:100], series[100:103]
    errors = {}
    for linear in (False, True):
        kwargs = tiny_kwargs(tmp_path, n_epochs=8, linear_residual=linear)
        model = MIMModel(**kwargs, naive_anchor=True)
        model.fit(train)
        errors[linear] = _rmse(model.predict(3, series=train), test)
    assert errors[True] < 0.5 * errors[False], errors


def test_linear_residual_round_trips_save_load_and_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    from darts_mim.onnx import OnnxForecaster

    series = _ramp()
    model = MIMModel(**tiny_kwargs(tmp_path, n_epochs=2, linear_residual=True))
    model.fit(series)
    expected = model.predict(5, series=series)
    path = tmp_path / "model.pt"
    model.save(path)
    loaded = MIMModel.load(path)
    assert loaded.config.linear_residual
    np.testing.assert_array_equal(loaded.predict(5, series=series).values(), expected.values())
    model.to_onnx(tmp_path / "model.onnx")
    served = OnnxForecaster(tmp_path / "model.onnx").predict(5, series=series)
    np.testing.assert_allclose(served.values(), expected.values(), atol=1e-4)


@pytest.mark.parametrize(
    "likelihood", [QuantileRegression([0.1, 0.5, 0.9]), GaussianLikelihood()], ids=str
)
def test_linear_residual_moves_locations_only(tmp_path, likelihood):
    series = _ramp()
    model = MIMModel(**tiny_kwargs(tmp_path, linear_residual=True, likelihood=likelihood))
    model.fit(series)
    module = model.model
    # a forecast of the location parameters only: the Gaussian's scale is left alone
    expected = [1.0, 1.0, 1.0] if isinstance(likelihood, QuantileRegression) else [1.0, 0.0]
    assert module._location_mask.tolist() == expected
    params = model.predict(3, series=series, predict_likelihood_parameters=True)
    assert np.isfinite(params.values()).all()


def test_linear_residual_refuses_a_likelihood_without_location(tmp_path):
    with pytest.raises(ValueError, match="linear_residual=True.*PoissonLikelihood"):
        MIMModel(**tiny_kwargs(tmp_path, linear_residual=True, likelihood=PoissonLikelihood()))
