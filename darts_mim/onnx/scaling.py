"""Raw values in, raw values out: a fitted Darts ``Scaler`` written into an exported graph.

A model trained on scaled values (``Scaler().fit_transform(train)``) forecasts scaled values. With
``MIMModel.to_onnx(path, scaler=scaler)`` the export puts the scaler's affine map per component into
the graph: ``(x - center) * factor + offset`` on the target input ``past_target`` before the network
and its inverse on the output ``prediction``, so that the served file takes and returns the user's
units (``past_covariates_scaler`` and ``future_covariates_scaler`` do the same for the covariate
inputs, forward only). The file's ``scaling`` metadata entry says so, and the runtime and the service
pass values through unchanged, as always: nothing is scaled twice.

Supported: a Darts ``Scaler`` fitted on one series (or with ``global_fit=True``) around an affine
scikit-learn scaler: ``MinMaxScaler`` (Darts' default, without ``clip``), ``StandardScaler``,
``RobustScaler``, ``MaxAbsScaler``, any other scaler exposing per-feature ``scale_`` and ``min_``
(``x * scale_ + min_``, as MinMaxScaler) or ``mean_`` and ``scale_`` (``(x - mean_) / scale_``, as
StandardScaler), and the identity
(``FunctionTransformer()``, what ``darts-mim fit --no-scale`` stores). The map read from the
attributes is checked against the scaler's own ``transform`` before it is written.

Outputs: a deterministic model's forecasts and a quantile regression's quantiles are values of the
target (the inverse map); a location-scale likelihood's location goes through the inverse map and
its scale is multiplied by the inverse factor's magnitude (Gaussian ``mu``/``sigma``, Laplace
``mu``/``b``, Cauchy ``xzero``/``gamma``, Gumbel ``mu``/``beta``), so that samples drawn from the
parameters are the raw-unit samples. Other likelihoods' parameters do not follow a change of units
(a Poisson rate, a Beta's shapes, ...): their export with a scaler is refused.

This module imports numpy only at import time (onnx when a graph is changed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: The metadata entry's key (see :mod:`darts_mim.onnx.format`).
METADATA_KEY = "scaling"
#: What :func:`affine_from_scaler` accepts, for messages.
SUPPORTED = (
    "a Darts Scaler fitted on one series (or with global_fit=True) around scikit-learn's "
    "MinMaxScaler (Darts' default; without clip), StandardScaler, RobustScaler, MaxAbsScaler, "
    "another scaler with per-feature `scale_` and `min_` or `mean_` attributes, or the identity "
    "FunctionTransformer()"
)
# Likelihoods whose parameters follow an affine change of units: which parameter is the location
# (inverse map) and which the scale (times the inverse factor's magnitude).
_LOCATION_SCALE = {
    "GaussianLikelihood": ("mu", "sigma"),
    "LaplaceLikelihood": ("mu", "b"),
    "CauchyLikelihood": ("xzero", "gamma"),
    "GumbelLikelihood": ("mu", "beta"),
}
_INTERNAL = "__darts_mim_scaled"


@dataclass(frozen=True)
class Affine:
    """``y = (x - center) * factor + offset`` per component (float64 arrays of one length)."""

    center: np.ndarray
    factor: np.ndarray
    offset: np.ndarray
    transformer: str

    @property
    def identity(self) -> bool:
        return bool(
            np.all(self.center == 0) and np.all(self.factor == 1) and np.all(self.offset == 0)
        )

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The forward map on ``(..., components)`` values."""
        return (np.asarray(x, dtype=np.float64) - self.center) * self.factor + self.offset

    def padded(self, n_columns: int) -> Affine:
        """The map on ``n_columns`` columns: these first, the identity on the rest (the encoded
        covariate columns, which Darts stacks after the user's and scales itself)."""
        extra = n_columns - self.factor.size
        if extra <= 0:
            return self
        return Affine(
            np.concatenate([self.center, np.zeros(extra)]),
            np.concatenate([self.factor, np.ones(extra)]),
            np.concatenate([self.offset, np.zeros(extra)]),
            self.transformer,
        )


def _refuse(what: str, why: str) -> ValueError:
    return ValueError(
        f"The {what} cannot be written into the ONNX graph: {why}. Supported: {SUPPORTED}. Export "
        "without it and scale the inputs and forecasts yourself."
    )


def _size_error(what: str, fitted: int, expected: int) -> ValueError:
    inputs = "target" if what == "scaler" else what.removesuffix("_scaler") + " (without encodings)"
    return ValueError(
        f"The {what} was fitted on {fitted} components, the model's {inputs} have {expected}: "
        "pass the scaler fitted on the model's training data."
    )


def affine_from_scaler(scaler: Any, n_components: int, what: str = "scaler") -> Affine:
    """The per-component affine map of a fitted Darts ``Scaler``.

    Parameters
    ----------
    scaler
        A fitted ``darts.dataprocessing.transformers.Scaler`` (see the module docstring for which).
    n_components
        How many components the scaler must have been fitted on (the model's target, or the user's
        covariate components).
    what
        The scaler's role, for messages (``"scaler"``, ``"past_covariates_scaler"``, ...).

    Returns
    -------
    Affine
        ``(x - center) * factor + offset`` equal to ``scaler.transform`` (checked on probe values).

    Raises
    ------
    ValueError
        For anything else: not a fitted Darts ``Scaler``, per-series scalers of a list, a
        ``columns`` selection, a non-affine scikit-learn transformer, another number of components.
    """
    from darts.dataprocessing.transformers import Scaler

    if not isinstance(scaler, Scaler):
        raise _refuse(what, f"it is a {type(scaler).__name__}, not a darts Scaler")
    fitted = getattr(scaler, "_fitted_params", None)
    if not getattr(scaler, "_fit_called", False) or not fitted:
        raise _refuse(what, "it is not fitted; fit it on the training series first")
    if len(fitted) != 1:
        raise _refuse(
            what,
            f"it holds {len(fitted)} scalers, one per series of the list it was fitted on, and one "
            "graph can apply one; fit one Scaler on all series with Scaler(..., global_fit=True)",
        )
    if getattr(scaler, "_columns", None):
        raise _refuse(what, "it transforms only the `columns` it was given")
    sk = fitted[0]
    kind = type(sk).__name__
    n_in = getattr(sk, "n_features_in_", None)
    if n_in is not None and n_in != n_components:
        raise _size_error(what, n_in, n_components)
    ones, zeros = np.ones(n_components), np.zeros(n_components)
    if kind == "FunctionTransformer":
        if sk.func is not None or sk.inverse_func is not None:
            raise _refuse(what, "its FunctionTransformer applies functions, not an affine map")
        affine = Affine(zeros, ones, zeros, "identity")
    else:
        scale = getattr(sk, "scale_", None)
        if getattr(sk, "clip", False):
            raise _refuse(what, f"its {kind} clips (clip=True), which is not an affine map")
        if hasattr(sk, "min_") and scale is not None:
            # MinMaxScaler: x * scale_ + min_ = (x - data_min_) * scale_ + feature_range[0], the
            # latter without the cancellation of large values (where the attributes allow it).
            factor, min_ = np.asarray(scale, float), np.asarray(sk.min_, float)
            affine = Affine(zeros, factor, min_, kind)
            data_min = getattr(sk, "data_min_", None)
            low = getattr(sk, "feature_range", None)
            if data_min is not None and low is not None and np.size(data_min) == n_components:
                anchored = Affine(np.asarray(data_min, float), factor, low[0] + zeros, kind)
                if np.allclose(anchored.apply(zeros), min_, rtol=1e-9, atol=1e-12, equal_nan=True):
                    affine = anchored
        elif hasattr(sk, "scale_") and (hasattr(sk, "mean_") or hasattr(sk, "center_")):
            # StandardScaler (mean_), RobustScaler (center_): (x - center) / scale_, each part only
            # where it is switched on.
            mean = getattr(sk, "mean_", None) if hasattr(sk, "mean_") else sk.center_
            centered = getattr(sk, "with_mean", True) and getattr(sk, "with_centering", True)
            center = np.asarray(mean, float) if centered and mean is not None else zeros
            factor = 1.0 / np.asarray(scale, float) if scale is not None else ones
            affine = Affine(center, factor, zeros, kind)
        elif scale is not None and hasattr(sk, "max_abs_"):
            # MaxAbsScaler: x / scale_.
            affine = Affine(zeros, 1.0 / np.asarray(scale, float), zeros, kind)
        else:
            raise _refuse(what, f"its scikit-learn transformer {kind} is not an affine scaler")
    sizes = {affine.center.size, affine.factor.size, affine.offset.size}
    if sizes != {n_components}:
        raise _size_error(what, max(sizes), n_components)
    _check_against_transform(scaler, affine, what)
    return affine


def _check_against_transform(scaler: Any, affine: Affine, what: str) -> None:
    """Compare the map with ``scaler.transform`` on values inside and outside the fitted range."""
    from darts import TimeSeries

    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(np.isfinite(affine.factor) & (affine.factor != 0), affine.factor, 1.0)
        center = np.where(np.isfinite(affine.center), affine.center, 0.0)
        offset = np.where(np.isfinite(affine.offset), affine.offset, 0.0)
        # Values that the scaler maps to -1, 0.5 and 2 (outside a min-max range on both sides).
        probe = center + (np.array([-1.0, 0.5, 2.0])[:, None] - offset) / factor
    series = TimeSeries.from_values(probe)
    want = scaler.transform(series).values(copy=False)
    got = affine.apply(probe)
    if not np.allclose(got, want, rtol=1e-6, atol=1e-6, equal_nan=True):
        raise _refuse(
            what,
            f"its {affine.transformer} does not transform like (x - mean) / scale or x * scale + "
            "min per component",
        )


def output_affine(
    target: Affine, likelihood: dict | None, nr_params: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The inverse map on the graph's ``prediction`` ``(B, ocl, D, nr_params)``: ``(y - offset) *
    factor + center`` with ``(D, nr_params)`` arrays.

    Parameters
    ----------
    target
        The target's forward map.
    likelihood
        The file's ``likelihood`` metadata entry (``None`` for a deterministic model).
    nr_params
        Parameters per component.

    Raises
    ------
    ValueError
        For a likelihood whose parameters do not follow a change of units, and for a decreasing map
        with a likelihood (a quantile regression's quantiles would change places).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = 1.0 / target.factor
    offset = np.repeat(target.offset[:, None], nr_params, axis=1)
    factor = np.repeat(inverse[:, None], nr_params, axis=1)
    center = np.repeat(target.center[:, None], nr_params, axis=1)
    if likelihood is None:
        return offset, factor, center
    name = likelihood["name"]
    names = list(likelihood["parameter_names"])
    if np.any(target.factor < 0):
        raise _refuse("scaler", f"it is decreasing for some components, which {name} cannot follow")
    if name == "QuantileRegression":
        return offset, factor, center
    if name not in _LOCATION_SCALE or set(names) != set(_LOCATION_SCALE[name]):
        raise ValueError(
            f"A model with {name} cannot take the scaler into its ONNX graph: its parameters "
            f"({', '.join(names)}) do not follow a change of units. The graph applies a scaler to "
            f"QuantileRegression, {', '.join(_LOCATION_SCALE)} and deterministic models; export "
            "this one without it and scale the inputs and forecasts yourself."
        )
    scale_param = names.index(_LOCATION_SCALE[name][1])
    offset[:, scale_param] = 0.0
    center[:, scale_param] = 0.0
    factor[:, scale_param] = np.abs(inverse)
    return offset, factor, center


def describe(affine: Affine | None) -> dict[str, Any] | None:
    """A metadata sub-entry: the transformer's name and component count."""
    if affine is None:
        return None
    return {"transformer": affine.transformer, "n_components": int(affine.factor.size)}


# ---------------------------------------------------------------------- graph surgery


def _rename_uses(graph: Any, old: str, new: str) -> None:
    """Point every use of the value ``old`` (in ``graph`` and its subgraphs) at ``new``."""
    import onnx

    for node in graph.node:
        node.input[:] = [new if v == old else v for v in node.input]
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                _rename_uses(attribute.g, old, new)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for sub in attribute.graphs:
                    _rename_uses(sub, old, new)


def _affine_nodes(
    graph: Any,
    source: str,
    result: str,
    parts: tuple[np.ndarray, ...],
    ops: tuple[str, ...],
    stem: str,
) -> list[Any]:
    """Nodes ``source -> op0(part0) -> op1(part1) -> ... -> result`` with float32 initializers."""
    import onnx
    from onnx import numpy_helper

    nodes = []
    current = source
    for i, (op, part) in enumerate(zip(ops, parts, strict=True)):
        name = f"darts_mim_scaling/{stem}/{op.lower()}"
        graph.initializer.append(numpy_helper.from_array(part.astype(np.float32), name))
        out = result if i == len(ops) - 1 else f"{name}_out"
        nodes.append(onnx.helper.make_node(op, [current, name], [out], name=f"{name}_node"))
        current = out
    return nodes


def _cast(source: str, result: str, to: int) -> Any:
    import onnx

    return onnx.helper.make_node("Cast", [source], [result], to=to, name=f"{result}_cast")


def wrap_graph(
    proto: Any,
    inputs: dict[str, Affine],
    output: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
) -> None:
    """Put the maps into ``proto`` (in place): ``inputs`` by graph input name, forward; ``output``
    (:func:`output_affine`) on ``prediction``.

    The maps run in float32; in a float16 graph the scaled inputs are cast to float16 and the output
    back to float32, so that raw values beyond float16's range can be served: such a graph's inputs
    and output are float32.
    """
    import onnx

    graph = proto.graph
    float32 = onnx.TensorProto.FLOAT
    front: list[Any] = []
    for value in graph.input:
        affine = inputs.get(value.name)
        if affine is None or affine.identity:
            continue
        name = value.name
        inner = name + _INTERNAL
        _rename_uses(graph, name, inner)
        elem = value.type.tensor_type.elem_type
        scaled = inner if elem == float32 else inner + "_f32"
        front += _affine_nodes(
            graph,
            name,
            scaled,
            (affine.center, affine.factor, affine.offset),
            ("Sub", "Mul", "Add"),
            name,
        )
        if elem != float32:
            front.append(_cast(scaled, inner, elem))
            value.type.tensor_type.elem_type = float32
    back: list[Any] = []
    if output is not None:
        offset, factor, center = output
        (out_value,) = [v for v in graph.output if v.name == "prediction"]
        inner = "prediction" + _INTERNAL
        for node in graph.node:
            node.output[:] = [inner if v == "prediction" else v for v in node.output]
        _rename_uses(graph, "prediction", inner)
        for value in graph.value_info:
            if value.name == "prediction":
                value.name = inner
        elem = out_value.type.tensor_type.elem_type
        source = inner
        if elem != float32:
            back.append(_cast(inner, inner + "_f32", float32))
            source = inner + "_f32"
            out_value.type.tensor_type.elem_type = float32
        back += _affine_nodes(
            graph,
            source,
            "prediction",
            (offset, factor, center),
            ("Sub", "Mul", "Add"),
            "prediction",
        )
    nodes = front + list(graph.node) + back
    del graph.node[:]
    graph.node.extend(nodes)
