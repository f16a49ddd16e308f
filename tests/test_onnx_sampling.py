"""Probabilistic ONNX serving: numpy samples from likelihood parameters match torch's.

Two levels: every Darts likelihood's numpy sampler against ``likelihood.sample`` on the same raw
network output (fast, no model), then ``OnnxForecaster.predict(num_samples=...)`` against
``MIMModel.predict(num_samples=...)`` on tiny fitted models, autoregressively beyond
``output_chunk_length``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_kwargs
from darts import TimeSeries
from darts.utils.likelihood_models import torch as tl
from scipy import stats

from darts_mim import MIMModel
from darts_mim.onnx.export import _likelihood_info
from darts_mim.onnx.runtime import OnnxForecaster
from darts_mim.onnx.sampling import SUPPORTED_LIKELIHOODS, check_likelihood, draw

N_DRAWS = 4000

# Likelihoods whose samples take few values: compared by their mean and the frequencies of values.
DISCRETE = {
    "PoissonLikelihood",
    "NegativeBinomialLikelihood",
    "BernoulliLikelihood",
    "GeometricLikelihood",
}
LIKELIHOODS = [
    tl.GaussianLikelihood(),
    tl.PoissonLikelihood(),
    tl.NegativeBinomialLikelihood(),
    tl.BernoulliLikelihood(),
    tl.BetaLikelihood(),
    tl.CauchyLikelihood(),
    tl.ContinuousBernoulliLikelihood(),
    tl.DirichletLikelihood(),
    tl.ExponentialLikelihood(),
    tl.GammaLikelihood(),
    tl.GeometricLikelihood(),
    tl.GumbelLikelihood(),
    tl.HalfNormalLikelihood(),
    tl.LaplaceLikelihood(),
    tl.LogNormalLikelihood(),
    tl.WeibullLikelihood(),
    tl.QuantileRegression([0.05, 0.25, 0.5, 0.75, 0.95]),
]


def test_every_darts_likelihood_is_sampled():
    """Every torch likelihood of the installed Darts is supported and tested here: a Darts release
    that adds one fails this test."""
    darts_likelihoods = {
        name
        for name, obj in vars(tl).items()
        if isinstance(obj, type)
        and issubclass(obj, tl.TorchLikelihood)
        and obj is not tl.TorchLikelihood
    }
    assert darts_likelihoods == set(SUPPORTED_LIKELIHOODS)
    assert {type(lik).__name__ for lik in LIKELIHOODS} == darts_likelihoods


@pytest.mark.parametrize("likelihood", LIKELIHOODS, ids=lambda lik: type(lik).__name__)
def test_numpy_draws_match_torch_samples(likelihood):
    """Same raw output, many draws per entry: the two samples have the same distribution."""
    name = type(likelihood).__name__
    gen = torch.Generator().manual_seed(0)
    n_params = likelihood.num_parameters
    raw = torch.randn((1, 2, 3, n_params), generator=gen)  # 2 steps x 3 components
    if name == "QuantileRegression":
        raw = raw.sort(dim=-1).values  # quantile values increase with the level
    if name in ("PoissonLikelihood", "NegativeBinomialLikelihood"):
        raw = raw + 2.0  # rates of a few events
    params = likelihood.predict_likelihood_parameters(raw).reshape(raw.shape)
    torch.manual_seed(1)
    torch_draws = likelihood.sample(raw.expand(N_DRAWS, -1, -1, -1)).numpy()  # (N, 2, 3)
    info = _likelihood_info(likelihood)
    numpy_draws = draw(
        info,
        np.broadcast_to(params.numpy(), (N_DRAWS,) + params.shape[1:]),
        np.random.default_rng(2),
    )
    assert numpy_draws.shape == torch_draws.shape
    for t in range(2):
        for c in range(3):
            a, b = numpy_draws[:, t, c], torch_draws[:, t, c]
            if name in DISCRETE:
                # A chi-square-free check that works for any support: same mean within 5 standard
                # errors, and the same share of each of the commonest values within 0.04.
                se = np.sqrt((a.var() + b.var()) / N_DRAWS) + 1e-9
                assert abs(a.mean() - b.mean()) < 5 * se, (t, c, a.mean(), b.mean())
                for value in np.unique(b)[:5]:
                    assert abs((a == value).mean() - (b == value).mean()) < 0.04
            else:
                if name == "DirichletLikelihood":
                    # Small concentrations put mass at 0 and 1, where torch's float32 draws are
                    # clamped one ulp inside: compare away from the last float32 steps.
                    a = np.clip(a, 1e-6, 1 - 1e-6)
                    b = np.clip(b.astype(np.float64), 1e-6, 1 - 1e-6)
                # Kolmogorov-Smirnov: with 4000 draws each, the statistic is under 0.04 unless the
                # distributions differ (p < 1e-3 for a true difference of that size).
                assert stats.ks_2samp(a, b).statistic < 0.045, (t, c)


def test_quantile_draws_interpolate_and_clamp():
    info = {
        "name": "QuantileRegression",
        "parameter_names": ["q0.1", "q0.9"],
        "quantiles": [0.1, 0.9],
    }
    values = np.broadcast_to(np.array([[0.0, 8.0]]), (20000, 2))[:, None]  # (N, 1 component, 2)
    out = draw(info, values, np.random.default_rng(0))[:, 0]
    assert out.min() == 0.0 and out.max() == 8.0  # clamped to the edge quantiles
    assert np.mean(out == 0.0) == pytest.approx(0.1, abs=0.01)  # levels below 0.1
    inner = out[(out > 0) & (out < 8)]
    # between the quantiles, linear: uniform on (0, 8)
    assert stats.ks_2samp(inner, np.random.default_rng(1).uniform(0, 8, 5000)).pvalue > 1e-3


def test_missing_entries_give_nan_and_seed_reproduces():
    info = {"name": "PoissonLikelihood", "parameter_names": ["lambda"]}
    params = np.array([[[3.0], [np.nan]]])
    a = draw(info, np.repeat(params, 5, axis=0), np.random.default_rng(7))
    b = draw(info, np.repeat(params, 5, axis=0), np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert np.isnan(a[:, 1]).all() and np.isfinite(a[:, 0]).all()


def test_unsupported_likelihoods_are_refused():
    with pytest.raises(ValueError, match="only supported for probabilistic models"):
        check_likelihood(None)
    with pytest.raises(ValueError, match="'MultivariateNormal' is not supported"):
        check_likelihood({"name": "MultivariateNormal", "parameter_names": []})


# ---------------------------------------------------------------------- end to end
def _fit(tmp_path, likelihood, **kwargs) -> tuple[MIMModel, TimeSeries, OnnxForecaster]:
    rng = np.random.default_rng(3)
    t = np.arange(60)
    values = np.stack([np.sin(0.4 * t), np.cos(0.3 * t)], axis=1) + 0.1 * rng.standard_normal(
        (60, 2)
    )
    # Data in each likelihood's support (torch refuses a target outside it).
    if isinstance(likelihood, tl.PoissonLikelihood | tl.NegativeBinomialLikelihood):
        values = np.round(3 * (values + 1.5)).clip(0)
    elif isinstance(likelihood, tl.BetaLikelihood):
        values = 1 / (1 + np.exp(-values))
    elif isinstance(likelihood, tl.DirichletLikelihood):
        values = np.exp(values) / np.exp(values).sum(axis=1, keepdims=True)
    series = TimeSeries.from_times_and_values(
        pd.date_range("2024", periods=60, freq="h"), values.astype("float32"), columns=["x", "y"]
    )
    model = MIMModel(
        **tiny_kwargs(
            tmp_path,
            input_chunk_length=3,
            output_chunk_length=2,
            filter_size=1,
            n_epochs=3,
            likelihood=likelihood,
            **kwargs,
        )
    )
    model.fit(series)
    path = model.to_onnx(str(tmp_path / "model.onnx"))
    return model, series, OnnxForecaster(path)


def _compare_samples(
    torch_fc: TimeSeries,
    onnx_fc: TimeSeries,
    spread_tol: float,
    moments: bool = True,
    discrete: bool = False,
) -> None:
    """Per step and component: mean, std (``moments``: not for a Cauchy's, which do not exist) and
    the 10/50/90 % quantiles agree within ``spread_tol`` times the torch samples' spread (their
    10-90 % range); a count's quantiles within one more (``discrete``: near a level's boundary two
    samples' quantiles may take neighbouring integers)."""
    assert onnx_fc.time_index.equals(torch_fc.time_index)
    assert list(onnx_fc.components) == list(torch_fc.components)
    assert onnx_fc.n_samples == torch_fc.n_samples and onnx_fc.dtype == torch_fc.dtype
    a, b = onnx_fc.all_values(), torch_fc.all_values()  # (n, D, K)
    spread = np.quantile(b, 0.9, axis=-1) - np.quantile(b, 0.1, axis=-1)
    scale = spread_tol * np.maximum(spread, 1e-3)
    checks = [(lambda x, q=q: np.quantile(x, q, axis=-1), float(discrete)) for q in (0.1, 0.5, 0.9)]
    if moments:
        checks += [(lambda x: x.mean(-1), 0.0), (lambda x: x.std(-1), 0.0)]
    for stat, slack in checks:
        gap = np.abs(stat(a) - stat(b))
        assert (gap <= scale + slack).all(), gap.max()


@pytest.fixture(scope="module")
def gaussian(tmp_path_factory):
    return _fit(tmp_path_factory.mktemp("g"), tl.GaussianLikelihood())


@pytest.fixture(scope="module")
def quantile(tmp_path_factory):
    return _fit(tmp_path_factory.mktemp("q"), tl.QuantileRegression([0.1, 0.3, 0.5, 0.7, 0.9]))


@pytest.mark.parametrize("n", [2, 5])
def test_gaussian_samples_match_torch_autoregressively(gaussian, n):
    model, series, forecaster = gaussian
    k = 2000
    expected = model.predict(n, series, num_samples=k, verbose=False)
    got = forecaster.predict(n, series, num_samples=k, random_state=0)
    # 2000 samples: the sample quantiles' standard error is about 3 % of the spread.
    _compare_samples(expected, got, 0.12)


def test_quantile_samples_match_torch_for_a_list(quantile):
    model, series, forecaster = quantile
    series_l = [series, series[:-9]]
    expected = model.predict(5, series_l, num_samples=2000, verbose=False)
    got = forecaster.predict(5, series_l, num_samples=2000, random_state=1, batch_size=512)
    for e, o in zip(expected, got, strict=True):
        _compare_samples(e, o, 0.12)


def test_sampling_is_reproducible_and_feeds_back_each_path(gaussian):
    _, series, forecaster = gaussian
    a = forecaster.predict(6, series, num_samples=50, random_state=5)
    b = forecaster.predict(6, series, num_samples=50, random_state=5)
    c = forecaster.predict(6, series, num_samples=50, random_state=6)
    np.testing.assert_array_equal(a.all_values(), b.all_values())
    assert not np.array_equal(a.all_values(), c.all_values())
    assert a.all_values().shape == (6, 2, 50)

    # Each path feeds its own draws back: steps 3-4 of path k are drawn from the parameters the
    # graph gives for the window that ends with path k's steps 1-2. Standardised by those
    # parameters, they are standard normal; fed back a shared value instead, they would not be.
    k = 400
    window = series.values()[-3:].astype(np.float32)  # input_chunk_length 3
    paths = forecaster.predict_array(window[None], 4, num_samples=k, random_state=0)[0]
    windows = np.concatenate(
        [np.repeat(window[None, -1:], k, axis=0), np.moveaxis(paths[:2], -1, 0)], axis=1
    )  # (k, 3, 2): the last observed step, then the path's first two draws
    params = forecaster.predict_array(windows, 2, predict_likelihood_parameters=True)
    z = (np.moveaxis(paths[2:], -1, 0) - params[..., 0]) / params[..., 1]
    assert abs(z.mean()) < 0.1 and abs(z.std() - 1) < 0.1, (z.mean(), z.std())


def test_likelihood_parameters_and_single_sample(gaussian):
    model, series, forecaster = gaussian
    params = forecaster.predict(2, series)  # parameters by default with num_samples=1
    expected = model.predict(2, series, predict_likelihood_parameters=True, verbose=False)
    np.testing.assert_allclose(params.values(), expected.values(), atol=1e-4)
    one = forecaster.predict(2, series, predict_likelihood_parameters=False, random_state=0)
    assert one.n_samples == 1 and list(one.components) == ["x", "y"]
    with pytest.raises(ValueError, match="only supported for `num_samples=1`"):
        forecaster.predict(2, series, num_samples=3, predict_likelihood_parameters=True)
    with pytest.raises(ValueError, match="smaller than or equal to `output_chunk_length`"):
        forecaster.predict(3, series, predict_likelihood_parameters=True)
    with pytest.raises(ValueError, match="`num_samples` must be a positive integer"):
        forecaster.predict(2, series, num_samples=0)


def test_deterministic_model_refuses_samples(tmp_path):
    model, series, forecaster = _fit(tmp_path, None)
    with pytest.raises(ValueError, match="only supported for probabilistic models"):
        forecaster.predict(2, series, num_samples=5)
    with pytest.raises(ValueError, match="only supported for probabilistic models fitted"):
        forecaster.predict(2, series, predict_likelihood_parameters=True)
    # num_samples=1 is the deterministic forecast, as in Darts
    np.testing.assert_allclose(
        forecaster.predict(3, series, num_samples=1).values(),
        model.predict(3, series, verbose=False).values(),
        atol=1e-4,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "likelihood",
    [
        tl.PoissonLikelihood(),
        tl.NegativeBinomialLikelihood(),
        tl.LaplaceLikelihood(),
        tl.CauchyLikelihood(),
        tl.BetaLikelihood(),
        tl.DirichletLikelihood(),
    ],
    ids=lambda lik: type(lik).__name__,
)
def test_other_likelihoods_export_and_sample_like_torch(tmp_path, likelihood):
    """Beyond Gaussian and quantiles: the graph's parameters and the samples, end to end."""
    model, series, forecaster = _fit(tmp_path, likelihood)
    np.testing.assert_allclose(
        forecaster.predict(2, series, predict_likelihood_parameters=True).values(),
        model.predict(2, series, predict_likelihood_parameters=True, verbose=False).values(),
        atol=1e-4,
    )
    expected = model.predict(4, series, num_samples=2000, verbose=False)
    got = forecaster.predict(4, series, num_samples=2000, random_state=0)
    counts = isinstance(likelihood, tl.PoissonLikelihood | tl.NegativeBinomialLikelihood)
    cauchy = isinstance(likelihood, tl.CauchyLikelihood)
    _compare_samples(expected, got, 0.15, moments=not cauchy, discrete=counts)
    if counts:
        assert np.array_equal(got.all_values(), np.round(got.all_values()))  # counts
