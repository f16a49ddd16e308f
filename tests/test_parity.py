"""MIMModel.predict and OnnxForecaster.predict keep the project's promises alike: a seeded series'
samples do not depend on the batch it ran in, and a model folded by a period refuses a series of
another frequency, in the same words.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_kwargs
from darts import TimeSeries
from darts.utils.likelihood_models.torch import GaussianLikelihood

from darts_mim import MIMModel
from darts_mim.onnx.runtime import OnnxForecaster
from darts_mim.onnx.service import ForecastService


def _plain(n_steps: int, seed: int, freq: str = "h") -> TimeSeries:
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps)[:, None]
    values = np.sin(2 * np.pi * t / 6 + np.arange(3)) + 0.1 * rng.standard_normal((n_steps, 3))
    return TimeSeries.from_times_and_values(
        pd.date_range("2024", periods=n_steps, freq=freq),
        values.astype("float32"),
        columns=["a", "b", "c"],
    )


@pytest.fixture(scope="module")
def gaussian(tmp_path_factory):
    """A Gaussian model of a plain series: samples on both paths."""
    tmp = tmp_path_factory.mktemp("parity_gaussian")
    series = _plain(60, 0)
    model = MIMModel(**tiny_kwargs(tmp, filter_size=1, likelihood=GaussianLikelihood()))
    model.fit(series)
    path = model.to_onnx(str(tmp / "gaussian.onnx"))
    return {"model": model, "path": path, "forecaster": OnnxForecaster(path), "series": series}


def _batches(series: TimeSeries) -> tuple[list[TimeSeries], list[TimeSeries]]:
    """Two calls that hold ``series`` among others, at index 1 and at index 0."""
    other = series[:-7] * 2
    short = series[:30] + 1
    return [other, series, short], [series, short]


@pytest.mark.parametrize("path", ["torch", "onnx"])
def test_seeded_samples_do_not_depend_on_the_batch(gaussian, path):
    """The same seed gives a series the samples it gets alone, whatever other series are in the
    call, its position there and batch_size (Darts drew every series from one stream: a series'
    samples changed with its company, by up to 1.5)."""
    if path == "torch":
        model = gaussian["model"]

        def predict(*args, **kwargs):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Darts' autoregression notice
                return model.predict(*args, verbose=False, **kwargs)

    else:
        predict = gaussian["forecaster"].predict
    series = gaussian["series"]
    first, second = _batches(series)
    kwargs = dict(num_samples=8, random_state=0)
    for batch_size in (3, 64):  # several passes per series, and one
        alone = predict(5, series, batch_size=batch_size, **kwargs).all_values()
        assert alone.shape == (5, 3, 8)
        in_first = predict(5, first, batch_size=batch_size, **kwargs)[1].all_values()
        in_second = predict(5, second, batch_size=batch_size, **kwargs)[0].all_values()
        np.testing.assert_allclose(in_first, alone, atol=1e-6, rtol=0)
        np.testing.assert_allclose(in_second, alone, atol=1e-6, rtol=0)
    if path == "onnx":
        # each window draws a chunk's samples at once, however many rows a graph call takes
        np.testing.assert_allclose(
            predict(5, first, batch_size=3, **kwargs)[1].all_values(),
            predict(5, series, batch_size=256, **kwargs).all_values(),
            atol=1e-6,
            rtol=0,
        )
    # another seed, other samples: the loop passes the seed on
    other = predict(5, first, num_samples=8, random_state=1)[1].all_values()
    assert not np.allclose(other, alone)


def test_seeded_windows_of_an_array_or_a_request_do_not_depend_on_the_batch(gaussian):
    """predict_array and the service: a window's samples are those it gets alone."""
    f: OnnxForecaster = gaussian["forecaster"]
    series = gaussian["series"]
    windows = np.stack([s.values()[-6:] for s in _batches(series)[0]])  # (3, 6, 3)
    alone = f.predict_array(windows[1:2], 5, num_samples=8, random_state=4)
    batch = f.predict_array(windows, 5, num_samples=8, random_state=4, batch_size=5)
    np.testing.assert_allclose(batch[1:2], alone, atol=1e-6, rtol=0)
    service = ForecastService(gaussian["path"], intra_op_num_threads=1)
    out, kind = service.forecast(5, windows, num_samples=8, random_state=4)
    assert kind == "samples"
    np.testing.assert_allclose(out[1:2], alone, atol=1e-6, rtol=0)


# ---------------------------------------------------------------------- folded models
@pytest.fixture(scope="module")
def folded(tmp_path_factory):
    """Hourly plain series folded by 3 steps per frame, fitted on two series (Darts then keeps no
    training series: the frequency is the model's own record)."""
    tmp = tmp_path_factory.mktemp("parity_folded")
    series = _plain(60, 1)
    model = MIMModel(**tiny_kwargs(tmp, fold_period=3))
    model.fit([series, series[:50] * 2])
    assert model.layout.fold == 3 and model.training_series is None
    path = model.to_onnx(str(tmp / "folded.onnx"))
    return {"model": model, "forecaster": OnnxForecaster(path), "series": series}


def _reindexed(series: TimeSeries, freq: str | None) -> TimeSeries:
    if freq is None:
        return TimeSeries.from_values(series.values(), columns=series.components)
    times = pd.date_range("2024", periods=len(series), freq=freq)
    return TimeSeries.from_times_and_values(times, series.values(), columns=series.components)


@pytest.mark.parametrize(
    "freq, shown", [("30min", "'30min'"), ("D", "'D'"), (None, "1 (an integer index)")]
)
def test_folded_model_refuses_another_frequency(folded, freq, shown):
    """A frame of 3 hourly steps read from 3 half hours or 3 days was forecast without a word on
    both paths; both now refuse it, word for word."""
    other = _reindexed(folded["series"], freq)
    messages = []
    for predict in (
        lambda: folded["model"].predict(3, other, verbose=False),
        lambda: folded["forecaster"].predict(3, other),
    ):
        with pytest.raises(ValueError) as err:
            predict()
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert re.match(
        rf"^`series` has frequency {re.escape(shown)}, but this model folds 3 steps of frequency "
        r"'h' into each frame \(fold_period\).* Resample the series to 'h' "
        r"\(e\.g\. series\.resample\('h'\)\), or fit a model on its frequency\.$",
        messages[0],
    )
    # in a list, the series is named by its index
    with pytest.raises(ValueError, match=r"^`series` at index 1 has frequency"):
        folded["forecaster"].predict(3, [folded["series"], other])
    with pytest.raises(ValueError, match=r"^`series` at index 1 has frequency"):
        folded["model"].predict(3, [folded["series"], other], verbose=False)


def test_folded_model_takes_the_training_frequency_however_spelled(folded):
    same = _reindexed(folded["series"], "60min")
    torch_fc = folded["model"].predict(3, same, verbose=False)
    onnx_fc = folded["forecaster"].predict(3, same)
    np.testing.assert_allclose(onnx_fc.values(), torch_fc.values(), atol=1e-4)
    assert folded["forecaster"].metadata["fold"] == 3
    assert folded["forecaster"].metadata["freq"] == "h"


def test_unfolded_model_forecasts_another_frequency_as_before(gaussian):
    """Unfolded models are not checked (nor are Darts' own): a step is a step."""
    daily = _reindexed(gaussian["series"], "D")
    torch_fc = gaussian["model"].predict(
        3, daily, predict_likelihood_parameters=True, verbose=False
    )
    onnx_fc = gaussian["forecaster"].predict(3, daily, predict_likelihood_parameters=True)
    assert torch_fc.freq == onnx_fc.freq == daily.freq
    np.testing.assert_allclose(onnx_fc.values(), torch_fc.values(), atol=1e-4)


def test_seeded_series_forecast_alone_are_named_by_their_index(gaussian):
    """Darts' errors name a series by its index in the call, also when each is forecast alone."""
    series = gaussian["series"]
    batch = [series, series[:4]]  # the second shorter than input_chunk_length
    messages = []
    for predict in (
        lambda: gaussian["model"].predict(2, batch, num_samples=4, random_state=0, verbose=False),
        lambda: gaussian["forecaster"].predict(2, batch, num_samples=4, random_state=0),
    ):
        with pytest.raises(ValueError) as err:
            predict()
        messages.append(str(err.value))
    for message in messages:  # Darts' words and the runtime's differ, not the index
        assert "too short" in message and "series sequence idx `1`" in message, message
