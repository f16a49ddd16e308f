"""Export a fitted :class:`~darts_mim.MIMModel` to one self-describing ONNX file.

The graph holds the whole forecast of one call of the network: reversible instance norm, the masked
cells, the encode-then-decode recurrence and, for a likelihood model, the likelihood's parameter
transform (a Gaussian's softplus on sigma), so its output equals ``MIMModel.predict(...,
predict_likelihood_parameters=True)``. The recurrence is one traced encoder step and one traced
decoder step run by ONNX ``Loop`` nodes (:mod:`darts_mim.onnx._loop`: seconds, a file whose size does
not depend on the chunk lengths); a model that graph does not reproduce, as checked against torch
before writing, is exported unrolled by the dynamo exporter. Everything the torch-free
:class:`darts_mim.onnx.runtime.OnnxForecaster` needs to slice inputs and rebuild ``TimeSeries`` is
written into the file's metadata, in the schema of :mod:`darts_mim.onnx.format`, and so is the spec
Darts' own ONNX code reads (``darts.onnx_spec``), so that ``darts.utils.onnx.run_onnx_prediction``
runs the file where Darts' contract can describe the model.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

import onnx
import torch
from darts.utils.data.torch_datasets.utils import ModuleStage, PLModuleInput
from darts.utils.likelihood_models.torch import QuantileRegression
from darts.utils.onnx.inference import ONNX_SPEC_METADATA_KEY, OnnxModelSpec
from torch import Tensor, nn

from darts_mim.integrity import atomic_path, write_checksums
from darts_mim.onnx import _loop
from darts_mim.onnx import scaling as scaling_mod
from darts_mim.onnx.encoders import settings_from_model
from darts_mim.onnx.format import DARTS_SPEC_KEY, FEATURE_NAMES, darts_spec, metadata_props

_DTYPES = {"float32": torch.float32, "float16": torch.float16}

# What the exporter logs on every export that says nothing about this model, by logger and message
# template (matched exactly, so that anything else these loggers say still gets through):
_EXPORT_NOISE = {
    # torch.onnx builds its op table with torchvision's ops too and, where torchvision is not
    # installed, warns once per op (4 lines); MIM uses none of them.
    "torch.onnx._internal.exporter._registration": ("torchvision is not installed. Skipping %s",),
    # onnxscript's optimizer does not constant-fold ops with several outputs and warns once per
    # Split node (a dozen lines for a small MIM); the graph is correct, just not folded there.
    "onnxscript.optimizer._constant_folding": (
        "Skipping constant folding for op %s with multiple outputs.",
    ),
}
# Python warnings of every export that say nothing about this model, by category and a regular
# expression of the message's start:
_EXPORT_WARNINGS = (
    # torch 2.13's export deep-copies pytree specs with a check that torch itself deprecated.
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
    # Every input shares the one `batch` dimension on purpose; the exporter names it once.
    (UserWarning, r"# The axis name: batch will not be used, since it shares the same shape"),
    # Darts' reversible instance norm keeps each call's statistics (mean, stdev, in either order)
    # as attributes; in the graph they are computed from the input of every call, as they must be.
    (
        UserWarning,
        r"The tensor attributes self\.module\.rin\.\w+, self\.module\.rin\.\w+ were assigned "
        r"during export",
    ),
)


class _DropTemplates(logging.Filter):
    """Drop log records whose message template is one of ``templates``."""

    def __init__(self, templates: tuple[str, ...]):
        super().__init__()
        self.templates = frozenset(templates)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in self.templates


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence :data:`_EXPORT_NOISE` and :data:`_EXPORT_WARNINGS` for the duration of an export.

    Filters on the emitting loggers, removed afterwards, rather than raised levels: other warnings and
    errors of those loggers, and every other logger and warning, are left as they are.
    """
    installed = []
    with warnings.catch_warnings():
        for category, message in _EXPORT_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
        try:
            for name, templates in _EXPORT_NOISE.items():
                drop = _DropTemplates(templates)
                logging.getLogger(name).addFilter(drop)
                installed.append((name, drop))
            yield
        finally:
            for name, drop in installed:
                logging.getLogger(name).removeFilter(drop)


class _ForecastGraph(nn.Module):
    """Named feature tensors in, ``prediction`` ``(B, ocl, components, nr_params)`` out.

    Parameters
    ----------
    module
        The fitted ``_MIMModule`` (a copy: it is cast to the export dtype).
    feature_names
        Which of :data:`FEATURE_NAMES` the graph takes, in order.
    """

    def __init__(self, module: nn.Module, feature_names: list[str]):
        super().__init__()
        self.module = module
        self.feature_names = list(feature_names)

    def forward(self, *tensors: Tensor) -> Tensor:
        x_in = PLModuleInput(
            **dict(zip(self.feature_names, tensors, strict=True)), stage=ModuleStage.PREDICT
        )
        raw = self.module(x_in).prediction  # (B, ocl, components, nr_params)
        likelihood = self.module.likelihood
        if likelihood is None:
            return raw
        # Darts' own transform (softplus for sigma, ...), interleaved per component: back to 4-d.
        return likelihood.predict_likelihood_parameters(raw).reshape(raw.shape)


def _example_inputs(
    module: nn.Module,
    dtype: torch.dtype,
    batch: int,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Random inputs shaped like the training sample (batch > 1 so the batch axis stays symbolic)."""
    return {
        name: torch.rand((batch,) + shape, generator=generator).to(dtype)
        for name, shape in _input_shapes(module).items()
    }


def _input_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    """The graph's inputs and their shapes after the batch axis, in :data:`FEATURE_NAMES` order:
    ``(input_chunk_length, D)`` for the target, the past covariates and the future covariates of
    the input window (``historic_future_covariates``), ``(output_chunk_length, K)`` for those of the
    output chunk (``future_covariates``), ``(rows, S)`` for the static covariates."""
    shapes = module.train_sample_shape
    icl, ocl = module.input_chunk_length, module.output_chunk_length
    time_dims = {
        "past_target": icl,
        "past_covariates": icl,
        "historic_future_covariates": icl,
        "future_covariates": ocl,
        "static_covariates": None,
    }
    inputs = {}
    for name in FEATURE_NAMES:
        shape = shapes.get(name)
        if not shape:
            continue
        inputs[name] = tuple(shape) if time_dims[name] is None else (time_dims[name], shape[-1])
    return inputs


def _covariate_info(model: Any, kind: str, n_components: int | None) -> dict | None:
    if n_components is None:
        return None
    series = getattr(model, f"{kind}_covariate_series", None)
    return {
        "n_components": int(n_components),
        # Known when the model was fitted on one series; informative only: the runtime checks the
        # count, as Darts does for the torch model.
        "components": list(series.components) if series is not None else None,
        "grid_channels": int(getattr(model.layout, f"{kind}_grid_channels")),
    }


def _likelihood_info(likelihood: Any) -> dict | None:
    if likelihood is None:
        return None
    info = {
        "name": type(likelihood).__name__,
        "parameter_names": list(likelihood.parameter_names),
    }
    if isinstance(likelihood, QuantileRegression):
        info["quantiles"] = [float(q) for q in likelihood.quantiles]
    return info


def _freq_info(model: Any) -> str | int | None:
    """The training frequency as the file keeps it: an offset's string, or an integer step."""
    freq = model._fitted_freq()
    if freq is None:
        return None
    return int(freq) if isinstance(freq, int) else str(freq.freqstr)


def build_metadata(
    model: Any,
    feature_names: list[str],
    dtype: str,
    encoder_settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the runtime needs, as :mod:`darts_mim.onnx.format` describes it (unprefixed).

    Parameters
    ----------
    model
        The fitted ``MIMModel``.
    feature_names
        The graph's input names.
    dtype
        ``"float32"`` or ``"float16"``: the graph's input and output dtype.
    encoder_settings
        The ``encoders`` entry (:func:`darts_mim.onnx.encoders.settings_from_model`); computed from
        ``model`` when not given.
    """
    from darts_mim import __version__

    module = model.model
    layout = model.layout
    shapes = module.train_sample_shape
    static = None
    if "static_covariates" in feature_names and model.static_covariates is not None:
        static = {
            "columns": [str(c) for c in model.static_covariates.columns],
            "values": model.static_covariates.values.astype(float).tolist(),
        }
    return {
        "version": __version__,
        "grid": layout.grid,
        "components": layout.component_names(),
        "input_chunk_length": int(model.input_chunk_length),
        "output_chunk_length": int(model.output_chunk_length),
        "output_chunk_shift": int(model.output_chunk_shift),
        "inputs": list(feature_names),
        "past_covariates": _covariate_info(
            model, "past", (shapes.get("past_covariates") or [None])[-1]
        ),
        "future_covariates": _covariate_info(
            model, "future", (shapes.get("future_covariates") or [None])[-1]
        ),
        "static_covariates": static,
        # the shape alone survives save(clean=True), which drops the values: the runtime checks
        # the width of a request's static covariates against it
        "static_covariates_shape": (
            [int(d) for d in shapes["static_covariates"][-2:]]
            if "static_covariates" in feature_names and shapes.get("static_covariates")
            else None
        ),
        "likelihood": _likelihood_info(model.likelihood),
        "nr_params": int(module.net.nr_params),
        "freq": _freq_info(model),
        # steps per frame: the runtime refuses series of another frequency than `freq` when > 1
        "fold": int(layout.fold),
        "dtype": dtype,
        "training_dtype": str(module.dtype).removeprefix("torch."),
        "missing_components": [int(i) for i in layout.missing],
        "encoders": (settings_from_model(model) if encoder_settings is None else encoder_settings),
    }


def darts_spec_json(meta: dict[str, Any]) -> str:
    """The ``darts.onnx_spec`` entry: :func:`darts_mim.onnx.format.darts_spec` as the installed
    Darts' ``OnnxModelSpec`` takes it (a field it lacks or requires is an error here, at export, not
    in a user's ``OnnxModelSpec.from_session``), in the JSON Darts' own export writes."""
    if ONNX_SPEC_METADATA_KEY != DARTS_SPEC_KEY:
        raise RuntimeError(
            f"This Darts reads its ONNX spec under {ONNX_SPEC_METADATA_KEY!r}, darts-mim writes "
            f"{DARTS_SPEC_KEY!r}: update darts-mim."
        )
    spec = OnnxModelSpec(**darts_spec(meta))
    return json.dumps(dataclasses.asdict(spec), separators=(",", ":"))


def _scaling(
    model: Any,
    encoder_settings: dict[str, Any] | None,
    scaler: Any,
    past_covariates_scaler: Any,
    future_covariates_scaler: Any,
) -> dict[str, Any] | None:
    """The maps of :mod:`darts_mim.onnx.scaling` by graph input, checked against the model, and
    the metadata entry; ``None`` without scalers."""
    if scaler is None and past_covariates_scaler is None and future_covariates_scaler is None:
        return None
    from darts_mim.onnx.encoders import n_encoded

    shapes = model.model.train_sample_shape
    target = None
    if scaler is not None:
        target = scaling_mod.affine_from_scaler(scaler, len(model.layout.component_names()))
        if not target.identity:
            # A likelihood whose parameters cannot follow the scaler: refused before the export.
            scaling_mod.output_affine(
                target, _likelihood_info(model.likelihood), int(model.model.net.nr_params)
            )
    maps: dict[str, Any] = {}
    if target is not None:
        maps["past_target"] = target
    entry: dict[str, Any] = {
        "in_graph": True,
        "units": "raw",
        "target": scaling_mod.describe(target),
    }
    for kind, given in (("past", past_covariates_scaler), ("future", future_covariates_scaler)):
        entry[f"{kind}_covariates"] = None
        if given is None:
            continue
        total = (shapes.get(f"{kind}_covariates") or [None])[-1]
        if total is None:
            raise ValueError(
                f"`{kind}_covariates_scaler` was given, but this model was trained without "
                f"`{kind}_covariates`."
            )
        side = (encoder_settings or {}).get(kind)
        user = int(total) - n_encoded(side)
        if user < 1:
            raise ValueError(
                f"`{kind}_covariates_scaler` was given, but this model's `{kind}_covariates` are "
                "all encodings (add_encoders), which Darts scales itself."
            )
        affine = scaling_mod.affine_from_scaler(given, user, f"{kind}_covariates_scaler")
        entry[f"{kind}_covariates"] = scaling_mod.describe(affine)
        names = (
            ["past_covariates"]
            if kind == "past"
            else ["historic_future_covariates", "future_covariates"]
        )
        for name in names:
            maps[name] = affine.padded(int(total))
    return {"target": target, "inputs": maps, "entry": entry}


def _torch_export(
    graph: nn.Module, inputs: dict[str, Tensor], opset: int | None
) -> onnx.ModelProto:
    """Dynamo export of the unrolled network with a symbolic batch axis: the fallback of the looped
    export (minutes for large models, and a file that grows with the number of steps).

    The TorchScript exporter on the unrolled network is not used: with its shape inference on, it
    bakes the example batch size into reshapes; without it, its graphs of tens of thousands of nodes
    take ONNX Runtime minutes to load.
    """
    kwargs: dict[str, Any] = {"input_names": list(inputs), "output_names": ["prediction"]}
    if opset is not None:
        kwargs["opset_version"] = opset
    args = tuple(inputs.values())
    batch = torch.export.Dim("batch", min=1, max=65536)
    try:
        with _quiet_exporter():
            program = torch.onnx.export(
                graph,
                args,
                dynamo=True,
                external_data=False,
                dynamic_shapes=(tuple({0: batch} for _ in args),),
                verbose=False,
                **kwargs,
            )
    except Exception as err:
        raise RuntimeError(f"torch.onnx.export (dynamo) failed for this MIMModel: {err}") from err
    return program.model_proto


def _loop_export(
    module: nn.Module,
    inputs: dict[str, Tensor],
    opset: int | None,
    elem_type: int,
    calibration: dict[str, Tensor] | None = None,
    compact: bool = False,
) -> onnx.ModelProto:
    """The fast export (:mod:`darts_mim.onnx._loop`): outer graph and one encoder and one decoder step
    traced with the TorchScript exporter, the recurrence as ONNX ``Loop`` nodes; with
    ``calibration`` (graph inputs), the steps' convolutions in int8; ``compact``: see
    :func:`darts_mim.onnx._loop.splice`.

    ``module`` is changed (its network's ``forward``): pass a copy.
    """
    opset = _loop.DEFAULT_OPSET if opset is None else opset
    net = module.net
    _loop.install_looped_forward(net)
    graph = _ForecastGraph(module, list(inputs)).eval()
    names = list(inputs)
    with _quiet_exporter(), warnings.catch_warnings():
        # The tracer warns where Python ints leave the trace (chunk lengths, loop bounds): they are
        # constants of the model, and the parity check below catches any that is not.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # torch 2.9+ calls the TorchScript exporter legacy. It is used here for its speed; if a
        # torch release drops it, the export below falls back to the dynamo exporter.
        warnings.filterwarnings(
            "ignore",
            message=r"You are using the legacy TorchScript-based ONNX export",
            category=DeprecationWarning,
        )
        # ... and its logging setup, which it calls on every export.
        warnings.filterwarnings(
            "ignore",
            message=r"The feature will be removed. Please remove usage of this function",
            category=DeprecationWarning,
            module=r"torch\.onnx",
        )
        outer = _loop.torchscript_export(
            graph, tuple(inputs.values()), names, ["prediction"], opset, custom_domain=True
        )
        examples = net._loop_examples
        states = [s.detach().clone() for s in examples["states"]]
        prev = None if examples["prev"] is None else examples["prev"].detach().clone()
        cond_t = None if examples["cond_t"] is None else examples["cond_t"].detach().clone()
        encoder, decoder = _loop.trace_steps(net, states, prev, cond_t, opset)
    if calibration is not None:
        # Forecast the calibration windows eagerly, recording every step's inputs.
        net._loop_record = record = {"encoder": [], "decoder": []}
        try:
            graph(*calibration.values())
        finally:
            del net._loop_record
        with _quiet_quantizer():
            if record["encoder"]:
                encoder = _loop.quantize_step(encoder, record["encoder"])
            if decoder is not None and record["decoder"]:
                decoder = _loop.quantize_step(decoder, record["decoder"])
    return _loop.splice(outer, encoder, decoder, examples["t_in"], elem_type, compact=compact)


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """onnxruntime's quantizer logs advice on the root logger ("Please consider to run
    pre-processing before quantization"), which the step graphs do not need (their shapes are
    known to ONNX Runtime when it fuses): drop those lines only."""
    drop = _DropPrefix(("Please consider",))
    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


class _DropPrefix(logging.Filter):
    """Drop log records whose message starts with one of ``prefixes``."""

    def __init__(self, prefixes: tuple[str, ...]):
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


def _calibration_inputs(
    model: Any, calibration: Any, names: list[str], dtype: torch.dtype
) -> dict[str, Tensor]:
    """Graph inputs for int8 calibration: a dict of arrays as the graph takes them, or series (for
    a model that takes the target alone) cut into at most 64 windows of ``input_chunk_length``."""
    import numpy as np
    from darts import TimeSeries

    if isinstance(calibration, dict):
        missing = [n for n in names if n not in calibration]
        if missing:
            raise ValueError(f"`int8_calibration` lacks the graph inputs {missing}.")
        expected = _input_shapes(model.model)
        arrays = {n: np.asarray(calibration[n], dtype=np.float32) for n in names}
        for name, array in arrays.items():
            shape_ok = array.ndim == 1 + len(expected[name]) and array.shape[1:] == expected[name]
            if not shape_ok or not len(array):
                want = ", ".join(str(d) for d in expected[name])
                raise ValueError(
                    f"`int8_calibration['{name}']` has the shape {array.shape}; the graph takes "
                    f"(B, {want}), B >= 1 windows (see the ONNX guide: int8 calibration with "
                    "covariates)."
                )
        return {n: torch.from_numpy(a).to(dtype) for n, a in arrays.items()}
    series = [calibration] if isinstance(calibration, TimeSeries) else list(calibration)
    if names != ["past_target"]:
        # The graph's own inputs: the future covariates split at the forecast's start (not the one
        # array of OnnxForecaster.predict_array), the encoded columns after the user's.
        shapes = ", ".join(
            f"{name} (B, {', '.join(str(d) for d in shape)})"
            for name, shape in _input_shapes(model.model).items()
        )
        raise ValueError(
            f"This model's graph takes {names}: pass `int8_calibration` as a dict of arrays with "
            f"those names, batch first, as the graph takes them: {shapes}. See the ONNX guide "
            "(int8 calibration with covariates)."
        )
    icl = int(model.input_chunk_length)
    windows = []
    for s in series:
        values = s.values(copy=False)
        if len(values) < icl:
            raise ValueError(f"A calibration series has {len(values)} steps, fewer than {icl}.")
        ends = np.linspace(icl, len(values), num=min(len(values) - icl + 1, 64), dtype=int)
        windows += [values[end - icl : end] for end in np.unique(ends)]
    picked = np.linspace(0, len(windows) - 1, num=min(len(windows), 64), dtype=int)
    stacked = np.stack([windows[i] for i in picked]).astype(np.float32)
    return {"past_target": torch.from_numpy(stacked).to(dtype)}


def _parity_problem(
    proto: onnx.ModelProto,
    graph: nn.Module,
    module: nn.Module,
    dtype: torch.dtype,
    int8: bool = False,
) -> str | None:
    """Compare the exported graph with the torch module on random inputs; ``None`` when they agree,
    else what differs.

    One torch forward at batch size 3; ONNX Runtime at batch size 3 and on the first sample alone
    (the example batch size of the export is 2, so a batch size baked into the graph fails here, and
    a forecast never depends on the rest of its batch).
    """
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    # The graph as written, not as optimised: what is checked is the export, and an unrolled graph
    # (``unroll=True``) takes ONNX Runtime's optimiser far longer than running it.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(
            proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    except Exception as err:  # onnxruntime's own exception types
        return f"ONNX Runtime cannot load the graph ({err})"
    # float16 graphs round every step: compare on the output's scale, loosely.
    rtol, atol = (1e-3, 1e-4) if dtype == torch.float32 else (3e-2, 3e-2)
    inputs = _example_inputs(module, dtype, batch=3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = graph(*inputs.values()).float().numpy()
    scale = float(np.nanmax(np.abs(expected), initial=1.0))
    for rows in (slice(0, 3), slice(0, 1)):
        feeds = {k: v[rows].numpy() for k, v in inputs.items()}
        try:
            (got,) = session.run(["prediction"], feeds)
        except Exception as err:  # onnxruntime's own exception types
            return f"the graph fails at batch size {rows.stop} ({err})"
        want = expected[rows]
        got = got.astype(np.float32)
        if got.shape != want.shape:
            return f"at batch size {rows.stop} its output is {got.shape}, torch's {want.shape}"
        if int8:
            # Random inputs lie outside the calibrated ranges: check the structure (shapes, the
            # masked components) here, the error on calibration data in _int8_error.
            if not np.array_equal(np.isnan(got), np.isnan(want)):
                return f"at batch size {rows.stop} its NaN pattern differs from torch's"
            continue
        if not np.allclose(got, want, rtol=rtol, atol=atol * scale, equal_nan=True):
            diff = float(np.nanmax(np.abs(got - want)))
            return f"at batch size {rows.stop} it differs from torch by up to {diff:.3g}"
    return None


def _int8_error(
    proto: onnx.ModelProto,
    graph: nn.Module,
    calibration: dict[str, Tensor],
    feeds: dict[str, Tensor],
    output: tuple[Any, Any, Any] | None = None,
    units: str = "model",
) -> dict[str, Any]:
    """The int8 file's error against the float32 torch network on the calibration windows, in the
    units the file serves, for the file's ``quantization`` metadata entry.

    Parameters
    ----------
    proto
        The int8 graph as it is written (the scalers already in it, when there are some).
    graph
        The float32 torch network.
    calibration
        The calibration windows as the network takes them (scaled, as in training).
    feeds
        The same windows as ``proto`` takes them: raw values when the scalers are in the graph,
        else ``calibration``.
    output
        The inverse map the graph applies to ``prediction`` (:func:`scaling.output_affine`), or
        ``None``: applied to the torch forecasts too, as the graph applies it (float32), so that
        the error is in the file's (raw) units rather than the network's scaled ones.
    units
        What the entry says the errors are in: ``"raw"`` for a file with its scalers in the graph,
        else ``"model"`` (the units the model was trained on).
    """
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    with torch.no_grad():
        expected = graph(*calibration.values()).float().numpy()
    if output is not None:
        offset, factor, center = (np.asarray(a, dtype=np.float32) for a in output)
        expected = (expected - offset) * factor + center
    (got,) = session.run(["prediction"], {k: v.numpy() for k, v in feeds.items()})
    diff = got.astype(np.float64) - expected
    keep = np.isfinite(diff)
    rms = (
        float(np.sqrt(np.mean(np.square(expected[keep], dtype=np.float64)))) if keep.any() else 0.0
    )
    rmse = float(np.sqrt(np.mean(np.square(diff[keep])))) if keep.any() else 0.0
    return {
        "weights": "int8 per channel",
        "activations": "uint8",
        "quantized": "Conv in the recurrent steps",
        "calibration_windows": int(expected.shape[0]),
        # What the errors below are in: those the file takes and returns.
        "units": units,
        "max_abs_diff": float(np.max(np.abs(diff[keep]), initial=0.0)),
        "rmse": rmse,
        "relative_rmse": rmse / rms if rms else 0.0,
    }


def export_model(
    model: Any,
    path: str | os.PathLike | None = None,
    fp16: bool = False,
    opset: int | None = None,
    int8_calibration: Any = None,
    unroll: bool = False,
    scaler: Any = None,
    past_covariates_scaler: Any = None,
    future_covariates_scaler: Any = None,
    compact: bool = False,
) -> str:
    """Write a fitted ``MIMModel`` as an ONNX file for :class:`darts_mim.OnnxForecaster`.

    The graph is float32 whatever the training dtype (ONNX Runtime's CPU convolution has no float64
    kernel), has a dynamic batch axis, inputs ``past_target`` ``(B, input_chunk_length, C*H*W)`` and,
    when the model uses them, ``past_covariates``, ``historic_future_covariates``, ``future_covariates``
    and ``static_covariates``, and one output ``prediction`` ``(B, output_chunk_length, C*H*W,
    nr_params)`` (likelihood parameters after Darts' transform for a likelihood model).

    Parameters
    ----------
    model
        A fitted ``MIMModel``. With ``add_encoders``, the encoder settings are saved in the file and
        the runtime recomputes the encodings (see :mod:`darts_mim.onnx.encoders`: datetime
        attributes, cyclic, position, importable custom functions, a fitted ``Scaler``); an encoder
        that cannot be saved (a lambda, another transformer) is a ``ValueError`` before export.
    path
        Where to write the file (its folder is created if need be, as by ``MIMModel.save``).
        Default: Darts' ``"{ModelClass}_{date}.onnx"`` in the working directory.
    fp16
        Export the network in half precision (inputs and outputs float16; for GPU serving). The
        runtime casts inputs to float16 and forecasts back to float32.
    opset
        ONNX opset; ``None`` for the exporter's default.
    int8_calibration
        Write an int8 graph for CPU serving: the recurrent steps' convolutions quantized (QDQ, int8
        per-channel weights, uint8 activations) with ranges from forecasting this data: series
        (cut into up to 64 input windows; models without covariates) or a dict of arrays named and
        shaped like the graph's inputs, batch first (not as ``predict_array`` takes them):
        ``past_target`` ``(B, input_chunk_length, D)``, ``past_covariates`` and
        ``historic_future_covariates`` ``(B, input_chunk_length, K)``, ``future_covariates``
        ``(B, output_chunk_length, K)`` (the output chunk's), ``static_covariates``
        ``(B, rows, S)``; covariates with the ``add_encoders`` columns after the user's. Inputs and outputs stay float32. The error against the float32 network
        on the calibration windows is saved in the metadata (``quantization``: ``max_abs_diff``,
        ``rmse``, ``relative_rmse``), in the units the file serves (its ``units``: ``"raw"`` with
        ``scaler``, else ``"model"``). Not with ``fp16``. With ``scaler``, in the units the graph
        takes: raw values.
    unroll
        Write every recurrent step into the graph instead of ONNX ``Loop`` nodes: a graph without
        control flow, for ONNX Runtime's CUDA graphs (``enable_cuda_graph`` in the CUDA provider's
        options), at the price of a file and a session start that grow with the number of steps.
    scaler
        The fitted Darts ``Scaler`` whose transformed values the model was trained on: its affine map
        per component goes into the graph, on ``past_target`` before the network and inverted on
        ``prediction`` (forecasts, quantiles, a location-scale likelihood's parameters), so that the
        file takes and returns raw values (see :mod:`darts_mim.onnx.scaling` for the supported
        scalers; others are a ``ValueError`` before export). The metadata entry ``scaling`` says so.
        With ``fp16`` the scaling runs in float32 and the graph's inputs and output are float32.
    past_covariates_scaler, future_covariates_scaler
        The same for the user's covariate components (forward only; encoded columns are left as
        they are); each needs the model to take those covariates.
    compact
        Store every weight once, outside the ``Loop`` bodies (darts-mim 0.7's layout): a file about
        half the size, whose float32 forecasts ONNX Runtime's CPU provider runs more slowly (it
        optimises a loop body's convolutions only when the body holds their weights: about 1.2x
        slower on the bike demo at batch 16 to 256). By default each body keeps its step's weights
        (see :func:`darts_mim.onnx._loop.splice`). Same forecasts either way.

    Returns
    -------
    str
        The path written (atomically: temporary file + ``os.replace``), beside its checksum file
        ``path + ".sha256"`` (``sha256sum`` format) that :class:`darts_mim.OnnxForecaster` verifies.
    """
    if not getattr(model, "_fit_called", False) or model.model is None:
        raise ValueError(
            "The model is not fitted: call fit() (or load a fitted model) before export."
        )
    # Encoder settings and scalers first: what cannot be saved is refused before the (slow) export.
    encoder_settings = settings_from_model(model)
    scaling = _scaling(
        model, encoder_settings, scaler, past_covariates_scaler, future_covariates_scaler
    )
    if path is None:
        path = model._default_save_path() + ".onnx"
    path = os.fspath(path)
    # As MIMModel.save: the folder is created now, before the (slow) export. Without it the write
    # at the end failed on the hidden temporary file's name, after the whole export.
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    dtype_name = "float16" if fp16 else "float32"
    dtype = _DTYPES[dtype_name]

    module = model.model
    trainer = getattr(module, "_trainer", None)
    try:
        # Do not deep-copy the Lightning trainer along with the module.
        module._trainer = None
        export_module = copy.deepcopy(module)
    finally:
        module._trainer = trainer
    export_module = export_module.to(device="cpu", dtype=dtype).eval()
    inputs = _example_inputs(export_module, dtype, batch=2)
    graph = _ForecastGraph(export_module, list(inputs)).eval()
    elem_type = onnx.TensorProto.FLOAT16 if fp16 else onnx.TensorProto.FLOAT
    calibration = file_feeds = None
    if int8_calibration is not None:
        if fp16:
            raise ValueError("`int8_calibration` and `fp16` exclude each other: choose one.")
        calibration = _calibration_inputs(model, int8_calibration, list(inputs), dtype)
        # What the written file takes (raw values when the scaler goes into the graph): its error
        # is measured on these, after the wrapping, in the units it serves.
        file_feeds = calibration
        if scaling is not None:
            # Given in the graph's (raw) units; the network is calibrated on the scaled values.
            calibration = {
                name: torch.as_tensor(
                    scaling["inputs"][name].apply(value.double().numpy())
                    if name in scaling["inputs"]
                    else value
                ).to(dtype)
                for name, value in calibration.items()
            }
    method = "loop"
    with torch.inference_mode(False), torch.no_grad():
        try:
            looped = copy.deepcopy(export_module)
            proto = _loop_export(looped, inputs, opset, elem_type, calibration, compact=compact)
            if unroll:
                proto = _loop.unroll(proto)
            problem = _parity_problem(
                proto, graph, export_module, dtype, int8=calibration is not None
            )
        except _loop.UnsupportedNetwork as err:
            problem = str(err)
        except Exception as err:  # any exporter failure: the unrolled export below still works
            problem = f"{type(err).__name__}: {err}"
        if problem is not None:
            # Slow but general: the dynamo exporter traces the unrolled recurrence.
            warnings.warn(
                f"The fast (looped) ONNX export does not reproduce this model ({problem}); "
                "exporting the unrolled network instead, which takes minutes for large models.",
                UserWarning,
                stacklevel=2,
            )
            if calibration is not None:
                raise RuntimeError(
                    f"The int8 export needs the looped graph, which does not reproduce this model "
                    f"({problem}); export it without `int8_calibration`."
                )
            method = "unrolled"
            proto = _torch_export(graph, inputs, opset)

    meta = build_metadata(model, list(inputs), dtype_name, encoder_settings)
    meta["export_method"] = "loop, unrolled" if unroll and method == "loop" else method
    output = None
    if scaling is not None:
        output = (
            scaling_mod.output_affine(scaling["target"], meta["likelihood"], meta["nr_params"])
            if scaling["target"] is not None and not scaling["target"].identity
            else None
        )
        scaling_mod.wrap_graph(proto, scaling["inputs"], output)
        meta[scaling_mod.METADATA_KEY] = scaling["entry"]
    if calibration is not None:
        # After the wrapping: the error of the file as served, on the windows as it takes them.
        meta["quantization"] = _int8_error(
            proto,
            graph,
            calibration,
            file_feeds,
            output,
            units="raw" if scaling is not None else "model",
        )
    props = metadata_props(meta)
    props[DARTS_SPEC_KEY] = darts_spec_json(meta)
    onnx.helper.set_model_props(proto, props)
    onnx.checker.check_model(proto)
    # Atomically, then its checksum file, which OnnxForecaster checks.
    with atomic_path(path, suffix=".tmp.onnx") as tmp:
        onnx.save(proto, tmp)
    write_checksums([path])
    return path
