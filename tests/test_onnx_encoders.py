"""Encoders at serving time: a model fitted with ``add_encoders`` exports, and the torch-free runtime
recomputes the encodings from the saved settings, matching Darts' encoders and ``MIMModel.predict``.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_kwargs
from darts import TimeSeries
from darts.dataprocessing.encoders import SequentialEncoder
from darts.dataprocessing.transformers import Scaler
from sklearn.preprocessing import MaxAbsScaler, StandardScaler

from darts_mim import MIMModel
from darts_mim.onnx.encoders import encode, function_path, settings_from_model
from darts_mim.onnx.runtime import OnnxForecaster

TOL = 1e-4


def year_fraction(index: pd.DatetimeIndex) -> np.ndarray:
    """A custom encoder the serving process can import (module-level, pointwise)."""
    return (index.dayofyear.to_numpy() - 1) / 365.0


def two_columns(index: pd.Index) -> np.ndarray:
    """A custom encoder with two output columns, for any index type."""
    x = np.asarray(index, dtype=np.float64) if not isinstance(index, pd.DatetimeIndex) else None
    if x is None:
        x = index.hour.to_numpy(dtype=np.float64)
    return np.stack([np.sin(x), np.cos(2 * x)], axis=1)


def _fitted(add_encoders: dict, series: TimeSeries, icl=3, ocl=2, past=None, future=None):
    """Darts' own SequentialEncoder, fitted as a model's is at fit time, in a stand-in model."""
    seq = SequentialEncoder(
        add_encoders=add_encoders,
        input_chunk_length=icl,
        output_chunk_length=ocl,
        takes_past_covariates=True,
        takes_future_covariates=True,
    )
    pc, fc = seq.encode_train(series, past_covariates=past, future_covariates=future)
    shapes = {
        "past_covariates": None if pc is None else (icl, pc.n_components),
        "future_covariates": None if fc is None else (ocl, fc.n_components),
    }
    model = SimpleNamespace(encoders=seq, model=SimpleNamespace(train_sample_shape=shapes))
    return seq, settings_from_model(model)


@pytest.mark.parametrize(
    ("freq", "add_encoders"),
    [
        (
            "h",
            {
                "datetime_attribute": {"past": ["hour", "dayofweek"], "future": ["month"]},
                "cyclic": {"future": ["hour"]},
                "position": {"past": ["relative"], "future": ["relative"]},
                "custom": {"future": [year_fraction, two_columns]},
                "transformer": Scaler(),
                "tz": "CET",
            },
        ),
        (
            "MS",
            {
                "cyclic": {"past": ["month"]},
                "datetime_attribute": {"future": ["week", "year"]},
                "position": {"future": ["relative"]},
                "transformer": Scaler(StandardScaler()),
            },
        ),
        (
            1,
            {
                "position": {"past": ["relative"], "future": ["relative"]},
                "custom": {"past": [two_columns]},
                "transformer": Scaler(MaxAbsScaler()),
            },
        ),
    ],
    ids=["hourly", "monthly", "range_index"],
)
def test_encode_matches_darts_encoders(freq, add_encoders):
    if freq == 1:
        times = pd.RangeIndex(100, 160)
    else:
        times = pd.date_range("2023-11-20", periods=60, freq=freq)
    series = TimeSeries.from_times_and_values(times, np.random.rand(60, 2).astype("float32"))
    seq, settings = _fitted(add_encoders, series)
    target = series[:45]
    for n in (1, 2, 7):
        past, future = seq.encode_inference(n, target)
        for side, expected in (("past", past), ("future", future)):
            if settings[side] is None:
                assert expected is None
                continue
            got = encode(
                settings[side], expected.time_index, target.end_time(), series.freq, np.float32
            )
            assert settings[side]["components"] == list(expected.components)
            np.testing.assert_allclose(got, expected.values(), atol=1e-6, rtol=1e-6)


def test_what_cannot_be_saved_is_refused():
    series = TimeSeries.from_times_and_values(
        pd.date_range("2024", periods=30, freq="h"), np.random.rand(30, 1)
    )

    def local(idx):  # Darts itself refuses lambdas; a local function it takes
        return idx.hour

    with pytest.raises(
        ValueError, match="cannot be saved in an ONNX file: it is a lambda or a local"
    ):
        _fitted({"custom": {"past": [local]}}, series)
    assert function_path(year_fraction) == f"{__name__}:year_fraction"
    from sklearn.preprocessing import QuantileTransformer

    with pytest.raises(ValueError, match=r"Scaler\(QuantileTransformer\) cannot be saved"):
        _fitted(
            {
                "datetime_attribute": {"past": ["hour"]},
                "transformer": Scaler(QuantileTransformer(n_quantiles=10)),
            },
            series,
        )


# ---------------------------------------------------------------------- end to end with torch
@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    """Hourly 2x2 grid; user future covariates plus every kind of encoder, scaled."""
    tmp = tmp_path_factory.mktemp("encoders")
    rng = np.random.default_rng(0)
    times = pd.date_range("2024-03-29", periods=60, freq="h")
    t = np.arange(60)
    values = np.sin(0.26 * t)[:, None] + 0.1 * rng.standard_normal((60, 4))
    series = TimeSeries.from_times_and_values(times, values.astype("float32"), columns=list("abcd"))
    future = TimeSeries.from_times_and_values(
        pd.date_range(times[0], periods=80, freq="h"),
        np.cos(0.1 * np.arange(80.0))[:, None].astype("float32"),
        columns=["user"],
    )
    model = MIMModel(
        **tiny_kwargs(
            tmp,
            input_chunk_length=3,
            output_chunk_length=2,
            filter_size=1,
            n_epochs=2,
            add_encoders={
                "datetime_attribute": {"past": ["hour"], "future": ["dayofweek"]},
                "cyclic": {"future": ["hour"]},
                "position": {"past": ["relative"]},
                "custom": {"future": [year_fraction]},
                "transformer": Scaler(),
                "tz": "Europe/Berlin",  # a DST change on 2024-03-31 inside the data
            },
        )
    )
    model.fit(series, future_covariates=future)
    path = model.to_onnx(str(tmp / "encoded.onnx"))
    return {
        "model": model,
        "forecaster": OnnxForecaster(path),
        "series": series,
        "future": future,
    }


@pytest.mark.parametrize("n", [1, 2, 6])
def test_encoded_model_matches_torch(encoded, n):
    e = encoded
    series = [e["series"], e["series"][:-11]]
    expected = e["model"].predict(n, series, future_covariates=[e["future"]] * 2, verbose=False)
    got = e["forecaster"].predict(n, series, future_covariates=[e["future"]] * 2)
    for a, b in zip(expected, got, strict=True):
        assert b.time_index.equals(a.time_index)
        np.testing.assert_allclose(b.values(), a.values(), atol=TOL, rtol=0)


def test_encoded_model_metadata_and_errors(encoded):
    f: OnnxForecaster = encoded["forecaster"]
    settings = f.metadata["encoders"]
    assert [x["kind"] for x in settings["past"]["encoders"]] == ["datetime_attribute", "position"]
    assert settings["future"]["n_user_components"] == 1
    # Darts orders them cyclic (sine, cosine: never scaled), datetime attribute, custom
    assert settings["future"]["transform"]["mask"] == [False, False, True, True]
    with pytest.raises(ValueError, match="trained without user `past_covariates`"):
        f.predict(2, encoded["series"], past_covariates=encoded["future"])
    with pytest.raises(ValueError, match="some `future_covariates` of matching dimensionality"):
        f.predict(2, encoded["series"])
    with pytest.raises(ValueError, match="equal number of components"):
        f.predict(
            2, encoded["series"], future_covariates=encoded["future"].stack(encoded["future"])
        )
