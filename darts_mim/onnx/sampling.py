"""Draw forecast samples from likelihood parameters with numpy: the torch-free half of
``MIMModel.predict(..., num_samples=K)``.

An exported likelihood model's graph returns the parameters after Darts' transform (a Gaussian's
``(mu, sigma)`` with sigma through softplus, a quantile regression's quantile values, ...), in the
layout ``(..., components, nr_params)``. :func:`draw` turns them into one sample per entry the way
Darts' ``TorchLikelihood.sample`` does, with the same parameterisation as the ``torch.distributions``
class Darts uses (e.g. a negative binomial's ``p`` in PyTorch's convention, a geometric counting the
failures before the first success, a quantile regression interpolating linearly between the fitted
quantiles and clamping outside them). Draws come from a ``numpy.random.Generator``, so they are
reproducible with a seed but are not the same numbers as torch's; their distribution is.

This module imports numpy only: it serves from processes without torch, Darts or pandas.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

# The smallest positive float64: keeps log(u) finite for u drawn as exactly 0.
_TINY = np.finfo(np.float64).tiny
# torch.distributions.ContinuousBernoulli's default unstable region around probs = 0.5, where its
# inverse CDF is replaced by the uniform's (the limit of the formula there).
_CB_LIMS = (0.499, 0.501)


def _normal(rng: np.random.Generator, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return rng.normal(mu, sigma)


def _poisson(rng: np.random.Generator, lam: np.ndarray) -> np.ndarray:
    return rng.poisson(lam).astype(np.float64)


def _negative_binomial(rng: np.random.Generator, r: np.ndarray, p: np.ndarray) -> np.ndarray:
    # PyTorch's NegativeBinomial(total_count=r, probs=p) counts successes before r failures (mean
    # r p / (1 - p)): a Poisson with a Gamma(r, scale p / (1 - p)) rate, which is how torch draws it.
    # numpy's negative_binomial counts the other outcome; the mixture avoids converting p, which
    # loses precision when p is close to 1.
    p = np.clip(p, 0.0, 1.0 - 1e-12)
    rate = rng.gamma(r, p / (1.0 - p))
    return rng.poisson(rate).astype(np.float64)


def _bernoulli(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    return (rng.random(p.shape) < p).astype(np.float64)


def _beta(rng: np.random.Generator, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    return rng.beta(alpha, beta)


def _cauchy(rng: np.random.Generator, xzero: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    return xzero + gamma * rng.standard_cauchy(xzero.shape)


def _continuous_bernoulli(rng: np.random.Generator, lam: np.ndarray) -> np.ndarray:
    # torch's inverse-CDF sampling, with its cut of the unstable region around 0.5.
    u = rng.random(lam.shape)
    outside = (lam <= _CB_LIMS[0]) | (lam > _CB_LIMS[1])
    cut = np.where(outside, lam, _CB_LIMS[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        icdf = (np.log1p(-cut + u * (2.0 * cut - 1.0)) - np.log1p(-cut)) / (
            np.log(cut) - np.log1p(-cut)
        )
    return np.where(outside, icdf, u)


def _exponential(rng: np.random.Generator, lam: np.ndarray) -> np.ndarray:
    return rng.exponential(1.0 / lam)


def _gamma(rng: np.random.Generator, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    # torch's Gamma takes a rate, numpy's a scale.
    return rng.gamma(alpha, 1.0 / beta)


def _geometric(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    # torch's Geometric counts the failures before the first success (support 0, 1, ...); numpy's
    # counts trials. torch's own formula, which also takes p = 0 and p = 1.
    u = np.maximum(rng.random(p.shape), _TINY)
    with np.errstate(divide="ignore"):
        return np.floor(np.log(u) / np.log1p(-p))


def _gumbel(rng: np.random.Generator, mu: np.ndarray, beta: np.ndarray) -> np.ndarray:
    return rng.gumbel(mu, beta)


def _half_normal(rng: np.random.Generator, sigma: np.ndarray) -> np.ndarray:
    return np.abs(rng.normal(0.0, sigma))


def _laplace(rng: np.random.Generator, mu: np.ndarray, b: np.ndarray) -> np.ndarray:
    return rng.laplace(mu, b)


def _log_normal(rng: np.random.Generator, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return rng.lognormal(mu, sigma)


def _weibull(rng: np.random.Generator, lam: np.ndarray, k: np.ndarray) -> np.ndarray:
    # torch's Weibull(scale, concentration); numpy's weibull has scale 1.
    return lam * rng.weibull(k)


# Element-wise samplers by Darts likelihood class name: each takes the generator and the parameters
# (float64 arrays of one shape, in the order of the likelihood's parameter_names).
_ELEMENTWISE: dict[str, Callable[..., np.ndarray]] = {
    "GaussianLikelihood": _normal,
    "PoissonLikelihood": _poisson,
    "NegativeBinomialLikelihood": _negative_binomial,
    "BernoulliLikelihood": _bernoulli,
    "BetaLikelihood": _beta,
    "CauchyLikelihood": _cauchy,
    "ContinuousBernoulliLikelihood": _continuous_bernoulli,
    "ExponentialLikelihood": _exponential,
    "GammaLikelihood": _gamma,
    "GeometricLikelihood": _geometric,
    "GumbelLikelihood": _gumbel,
    "HalfNormalLikelihood": _half_normal,
    "LaplaceLikelihood": _laplace,
    "LogNormalLikelihood": _log_normal,
    "WeibullLikelihood": _weibull,
}
# Likelihoods sampled jointly or from extra settings, handled by draw() itself.
_SPECIAL = ("QuantileRegression", "DirichletLikelihood")
SUPPORTED_LIKELIHOODS: tuple[str, ...] = tuple(sorted((*_ELEMENTWISE, *_SPECIAL)))


def check_likelihood(likelihood: Mapping[str, Any] | None) -> None:
    """Refuse sampling from a likelihood this module cannot sample.

    Parameters
    ----------
    likelihood
        The ``likelihood`` entry of an exported file's metadata: ``{"name", "parameter_names"[,
        "quantiles"]}``, or ``None`` for a deterministic model.

    Raises
    ------
    ValueError
        For a deterministic model (Darts' message for ``num_samples > 1``), an unknown likelihood, or
        a quantile regression whose file lacks its quantiles.
    """
    if likelihood is None:
        raise ValueError("`num_samples > 1` is only supported for probabilistic models.")
    name = likelihood.get("name")
    if name not in SUPPORTED_LIKELIHOODS:
        raise ValueError(
            f"Sampling from the likelihood {name!r} is not supported by the ONNX runtime (it samples "
            f"{', '.join(SUPPORTED_LIKELIHOODS)}); forecast its parameters with "
            "predict_likelihood_parameters=True and sample them yourself, or use MIMModel.predict."
        )
    if name == "QuantileRegression" and not likelihood.get("quantiles"):
        raise ValueError(
            "This file's QuantileRegression metadata lacks its quantiles; export the model again."
        )


def _quantile_draw(rng: np.random.Generator, values: np.ndarray, quantiles: Sequence[float]):
    """Darts' ``QuantileRegression.sample``: a uniform level, then linear interpolation between the
    two fitted quantiles around it; below the first and above the last quantile the edge value."""
    q = np.asarray(quantiles, dtype=np.float64)
    u = rng.random(values.shape[:-1])
    # Padded levels 0 and 1 carry the edge values, so samples outside the fitted range are clamped.
    levels = np.concatenate([[0.0], q, [1.0]])
    padded = np.concatenate([values[..., :1], values, values[..., -1:]], axis=-1)
    left = np.sum(u[..., None] > q, axis=-1)  # index into the padded arrays
    left_value = np.take_along_axis(padded, left[..., None], axis=-1)[..., 0]
    right_value = np.take_along_axis(padded, left[..., None] + 1, axis=-1)[..., 0]
    weight = (u - levels[left]) / (levels[left + 1] - levels[left])
    return left_value + weight * (right_value - left_value)


def draw(likelihood: Mapping[str, Any], params: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One sample per entry from likelihood parameters.

    Parameters
    ----------
    likelihood
        The file's ``likelihood`` metadata entry (see :func:`check_likelihood`).
    params
        ``(..., components, nr_params)`` parameters as the graph returns them. Entries whose
        parameters are not all finite (the always-missing components, forecast as NaN) get NaN
        samples, as ``MIMModel.predict`` gives them.
    rng
        The generator to draw from.

    Returns
    -------
    numpy.ndarray
        float64 samples of shape ``params.shape[:-1]``.
    """
    check_likelihood(likelihood)
    name = likelihood["name"]
    params = np.asarray(params, dtype=np.float64)
    n_params = params.shape[-1]
    expected = len(likelihood["parameter_names"])
    if n_params != expected:
        raise ValueError(
            f"Got {n_params} parameters per component for {name}, which has {expected} "
            f"({likelihood['parameter_names']})."
        )
    valid = np.isfinite(params).all(axis=-1)
    out = np.full(params.shape[:-1], np.nan)
    if name == "DirichletLikelihood":
        # Jointly over the components (the last axis before the parameters), as torch draws it:
        # independent Gamma(alpha, 1) draws normalised to sum to one.
        alpha = np.where(valid, params[..., 0], 1.0)
        g = np.where(valid, rng.gamma(alpha), 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(valid, g / g.sum(axis=-1, keepdims=True), np.nan)
        return out
    if not valid.any():
        return out
    kept = params[valid]  # (M, nr_params): only the entries with real parameters are drawn
    if name == "QuantileRegression":
        out[valid] = _quantile_draw(rng, kept, likelihood["quantiles"])
    else:
        out[valid] = _ELEMENTWISE[name](rng, *(kept[:, i] for i in range(n_params)))
    return out
