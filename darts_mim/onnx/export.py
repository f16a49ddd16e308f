"""Export a fitted :class:`~darts_mim.MIMModel` to one self-describing ONNX file.

The graph holds the whole forecast of one call of the network: reversible instance norm, the masked
cells, the encode-then-decode unroll (the network's python loop is unrolled into the graph) and, for a
likelihood model, the likelihood's parameter transform (a Gaussian's softplus on sigma), so its output
equals ``MIMModel.predict(..., predict_likelihood_parameters=True)``. Everything the torch-free
:class:`darts_mim.onnx.runtime.OnnxForecaster` needs to slice inputs and rebuild ``TimeSeries`` is
written into the file's metadata, in the schema of :mod:`darts_mim.onnx.format`.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

import onnx
import torch
from darts.utils.data.torch_datasets.utils import ModuleStage, PLModuleInput
from darts.utils.likelihood_models.torch import QuantileRegression
from torch import Tensor, nn

from darts_mim.onnx.format import FEATURE_NAMES, metadata_props

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


def _example_inputs(module: nn.Module, dtype: torch.dtype, batch: int) -> dict[str, Tensor]:
    """Random inputs shaped like the training sample (batch > 1 so the batch axis stays symbolic)."""
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
        shape = tuple(shape) if time_dims[name] is None else (time_dims[name], shape[-1])
        inputs[name] = torch.rand((batch,) + shape, dtype=dtype)
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
    series = model.training_series
    if series is None:
        return None
    freq = series.freq
    return int(freq) if isinstance(freq, int) else str(freq.freqstr)


def build_metadata(model: Any, feature_names: list[str], dtype: str) -> dict[str, Any]:
    """Everything the runtime needs, as :mod:`darts_mim.onnx.format` describes it (unprefixed).

    Parameters
    ----------
    model
        The fitted ``MIMModel``.
    feature_names
        The graph's input names.
    dtype
        ``"float32"`` or ``"float16"``: the graph's input and output dtype.
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
        "likelihood": _likelihood_info(model.likelihood),
        "nr_params": int(module.net.nr_params),
        "freq": _freq_info(model),
        "dtype": dtype,
        "training_dtype": str(module.dtype).removeprefix("torch."),
        "missing_components": [int(i) for i in layout.missing],
    }


def _torch_export(
    graph: nn.Module, inputs: dict[str, Tensor], opset: int | None
) -> onnx.ModelProto:
    """Dynamo export with a symbolic batch axis.

    The TorchScript exporter (``dynamo=False``) is not used as a fallback: it traces the network's
    reshapes with the example batch size baked in, so its graphs fail at any other batch size.
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


def export_model(
    model: Any,
    path: str | os.PathLike | None = None,
    fp16: bool = False,
    opset: int | None = None,
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
        A fitted ``MIMModel``. Models with ``add_encoders`` are refused: encoders are not computed on
        the ONNX side; pass the encodings as explicit covariates instead.
    path
        Where to write the file. Default: Darts' ``"{ModelClass}_{date}.onnx"`` in the working directory.
    fp16
        Export the network in half precision (inputs and outputs float16; for GPU serving). The
        runtime casts inputs to float16 and forecasts back to float32.
    opset
        ONNX opset; ``None`` for the exporter's default.

    Returns
    -------
    str
        The path written.
    """
    if not getattr(model, "_fit_called", False) or model.model is None:
        raise ValueError(
            "The model is not fitted: call fit() (or load a fitted model) before export."
        )
    encoders = getattr(model, "encoders", None)
    if encoders is not None and encoders.encoding_available:
        raise ValueError(
            "This model uses `add_encoders`, which the ONNX runtime does not compute. Build the "
            "encodings yourself (e.g. darts.utils.timeseries_generation.datetime_attribute_timeseries), "
            "fit with them as explicit covariates, and pass them to OnnxForecaster.predict()."
        )
    if path is None:
        path = model._default_save_path() + ".onnx"
    path = os.fspath(path)
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
    with torch.inference_mode(False), torch.no_grad():
        proto = _torch_export(graph, inputs, opset)

    meta = build_metadata(model, list(inputs), dtype_name)
    onnx.helper.set_model_props(proto, metadata_props(meta))
    onnx.checker.check_model(proto)
    onnx.save(proto, path)
    return path
