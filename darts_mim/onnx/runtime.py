"""Torch-free serving of exported MIM models with ONNX Runtime: :class:`OnnxForecaster`.

This module imports numpy, pandas, onnxruntime and Darts' ``TimeSeries`` and ``darts.utils.onnx``
(neither imports torch), never torch nor :mod:`darts_mim.model`. It reproduces what
``MIMModel.predict`` does around the network: it slices the input windows and covariates with
Darts' own :func:`darts.utils.onnx.prepare_onnx_inputs` (the files follow Darts' ONNX contract, see
:func:`darts_mim.onnx.format.darts_spec`), stacks many series into one batch per ``session.run``,
continues autoregressively for ``n > output_chunk_length`` with Darts' roll-and-feed-back rule,
draws sample paths from a likelihood model's parameters (:mod:`darts_mim.onnx.sampling`), computes
the encodings of a model fitted with ``add_encoders`` from the saved settings
(:mod:`darts_mim.onnx.encoders`), and rebuilds ``TimeSeries`` with the same time index, components,
static covariates and metadata as the torch model's forecasts. The array loop lives in
:mod:`darts_mim.onnx.core`, shared with the numpy-only :mod:`darts_mim.onnx.service`. Bad input is
refused with the same ``ValueError`` as ``MIMModel.predict`` (the checks of :mod:`darts_mim.grid`
and :mod:`darts_mim.validation` are shared; Darts' own live in its torch inference dataset, which
this module cannot import, and are repeated word for word).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import onnxruntime as ort
from darts import TimeSeries
from darts.utils.onnx import prepare_onnx_inputs
from darts.utils.onnx.inference import OnnxModelSpec
from darts.utils.utils import generate_index

from darts_mim.grid import GridSpec, check_series_grid
from darts_mim.integrity import FLOAT32_SAFE_INPUT, check_finite_forecasts
from darts_mim.onnx import core
from darts_mim.onnx.encoders import describe, encode, n_encoded
from darts_mim.onnx.format import darts_spec, read_metadata
from darts_mim.onnx.session import open_session
from darts_mim.validation import (
    check_covariate_grid,
    check_deterministic,
    check_fold_freq,
    check_some_series,
    check_window_values,
    input_name,
    series_list,
    warn_masked_with_values,
)

_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
_CPU = "CPUExecutionProvider"
_CUDA = "CUDAExecutionProvider"
# Shared libraries of the execution providers that onnxruntime-gpu lists as available even where
# CUDA is missing. Loading one ourselves (quietly, with ctypes) says which dependency is missing
# before onnxruntime tries and prints red errors about it.
_PROVIDER_LIBRARIES = {
    _CUDA: "onnxruntime_providers_cuda",
    "TensorrtExecutionProvider": "onnxruntime_providers_tensorrt",
    "ROCMExecutionProvider": "onnxruntime_providers_rocm",
    "MIGraphXExecutionProvider": "onnxruntime_providers_migraphx",
}
# onnxruntime's default logger severity (2, warning). onnxruntime has no getter for the current one,
# so this is what a probe restores after raising it.
_ORT_DEFAULT_SEVERITY = 2
# A one-node ONNX model (Identity on a float[1], opset 17, IR 8), serialised by onnx.helper; the
# provider probe opens sessions on it. Kept as bytes so that serving does not need the onnx package.
_PROBE_MODEL = (
    b'\x08\x08\x12\x00:7\n\x10\n\x01x\x12\x01y"\x08Identity\x12\x01pZ\x0f\n\x01x\x12\n\n\x08\x08'
    b"\x01\x12\x04\n\x02\x08\x01b\x0f\n\x01y\x12\n\n\x08\x08\x01\x12\x04\n\x02\x08\x01B\x04\n\x00"
    b"\x10\x11"
)


def _provider_name(provider: str | tuple[str, dict]) -> str:
    return provider[0] if isinstance(provider, tuple) else provider


def _library_problem(name: str) -> str | None:
    """Why ``name``'s shared library cannot load, when a dependency is missing; else ``None``."""
    stem = _PROVIDER_LIBRARIES.get(name)
    if stem is None:
        return None
    filename = f"{stem}.dll" if sys.platform == "win32" else f"lib{stem}.so"
    path = os.path.join(os.path.dirname(ort.__file__), "capi", filename)
    if not os.path.isfile(path):
        return None  # another layout: let the session probe decide
    try:
        ctypes.CDLL(path)
    except OSError as err:
        # Only a missing dependency (Linux: "cannot open shared object file"; Windows:
        # FileNotFoundError) is conclusive: onnxruntime's own load of the same path fails the same
        # way. Anything else (e.g. symbols that onnxruntime provides when it loads the library
        # itself) is left to the session probe.
        if isinstance(err, FileNotFoundError) or "cannot open shared object file" in str(err):
            return f"its library {filename} does not load ({err})"
    return None


@contextlib.contextmanager
def _ort_silenced() -> Iterator[None]:
    """Keep onnxruntime quiet while a provider is tried: its logger (provider load errors go to the
    default logger whatever ``SessionOptions.log_severity_level`` says) and the "EP Error ... Falling
    back" lines its Python wrapper prints to stdout."""
    ort.set_default_logger_severity(4)  # fatal only
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        ort.set_default_logger_severity(_ORT_DEFAULT_SEVERITY)


def _session_problem(name: str) -> str | None:
    """Open a session on a one-node model with ``name`` first, quietly, and check that it started."""
    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        with _ort_silenced():
            session = ort.InferenceSession(
                _PROBE_MODEL, sess_options=options, providers=[name, _CPU]
            )
    except Exception as err:  # onnxruntime raises its own types when a provider fails to start
        return f"a session with it fails ({err})"
    if name not in session.get_providers():
        return "onnxruntime could not start it (no usable device or driver, or missing libraries)"
    return None


@functools.cache
def provider_problem(name: str) -> str | None:
    """Why the execution provider ``name`` cannot run in this process, or ``None`` when it can.

    ``onnxruntime.get_available_providers()`` lists what the installed build contains, not what runs:
    ``onnxruntime-gpu`` lists ``CUDAExecutionProvider`` on machines without CUDA. This probe loads
    the provider's shared library (a missing CUDA library is reported without trying further), then
    opens a session on a one-node model with the provider and checks that it really started, with
    onnxruntime's logging silenced so that a machine without a GPU prints nothing. The answer is
    cached for the life of the process (``provider_problem.cache_clear()`` to probe again).

    Parameters
    ----------
    name
        An execution provider name, e.g. ``"CUDAExecutionProvider"``.

    Returns
    -------
    str or None
        ``None`` when the provider runs, else a sentence saying what is missing.
    """
    if name == _CPU:
        return None
    available = ort.get_available_providers()
    if name not in available:
        return f"it is not in this onnxruntime build (available: {available})"
    return _library_problem(name) or _session_problem(name)


def select_providers(
    requested: str | Sequence[str | tuple[str, dict]] | None,
    available: Sequence[str] | None = None,
    problem: Callable[[str], str | None] | None = None,
) -> list[str | tuple[str, dict]]:
    """Choose ONNX Runtime execution providers.

    Parameters
    ----------
    requested
        ``None`` for the default: CUDA then CPU when ``"CUDAExecutionProvider"`` is available and can
        really run (the ``onnxruntime-gpu`` build on a machine with a usable GPU), else CPU only.
        Otherwise one provider name or a sequence of names or ``(name, options)`` pairs, in priority
        order; each must be available and able to run.
    available
        The available providers. Default: ``onnxruntime.get_available_providers()``.
    problem
        Says why a provider cannot run, or ``None`` when it can. Default: :func:`provider_problem`.

    Returns
    -------
    list
        The providers to pass to ``onnxruntime.InferenceSession``.

    Raises
    ------
    ValueError
        When a requested provider is not available or cannot run, naming what is missing.
    """
    available = list(ort.get_available_providers() if available is None else available)
    problem = provider_problem if problem is None else problem
    if requested is None:
        if _CUDA in available and problem(_CUDA) is None:
            return [_CUDA, _CPU]
        return [_CPU]
    if isinstance(requested, str) or (
        isinstance(requested, tuple) and len(requested) == 2 and isinstance(requested[1], dict)
    ):
        requested = [requested]
    chosen = list(requested)
    if not chosen:
        raise ValueError(f"`providers` is empty; choose from the available ones: {available}.")
    for provider in chosen:
        name = _provider_name(provider)
        if name not in available:
            hint = (
                " CUDAExecutionProvider needs the onnxruntime-gpu package and a CUDA GPU."
                if name == _CUDA
                else ""
            )
            raise ValueError(
                f"Execution provider {name!r} is not available in this onnxruntime build; available: "
                f"{available}.{hint} Pass providers=None for the default."
            )
        reason = None if name == _CPU else problem(name)
        if reason is not None:
            raise ValueError(
                f"Execution provider {name!r} is installed but cannot run here: {reason}. Install "
                "what it needs, or pass providers=None for the default (CUDA where it runs, else "
                "the CPU)."
            )
    return chosen


def _in_float32_range(values: np.ndarray) -> bool:
    """Whether every value is finite and within what float32 arithmetic holds (one pass; NaN
    compares False): else :func:`check_window_values` names the first bad value."""
    return bool((np.abs(values) <= FLOAT32_SAFE_INPUT).all())


class _DeviceBinding:
    """Run a session through IO binding with buffers kept on its device.

    One buffer per graph input and one for the output, per batch shape, allocated on first use and
    then updated in place (``OrtValue.update_inplace``: one host-to-device copy, no allocation), so
    that repeated calls (the chunks of an autoregressive forecast, steady batches of a service) reuse
    device memory at fixed addresses. With ``enable_cuda_graph`` among the CUDA provider's options
    each batch shape gets its own captured graph (``gpu_graph_id``); ONNX Runtime refuses CUDA graphs
    for graphs with ``Loop`` nodes (darts-mim's looped export), so that option only serves unrolled
    files.

    Parameters
    ----------
    session
        The inference session.
    device
        ``"cuda"`` or ``"cpu"`` (the same code path, for tests and CPU serving).
    device_id
        The device's index.
    cuda_graph
        Whether the session captures CUDA graphs.
    """

    # More shapes than this (ragged batch sizes) are served by fresh buffers, not kept (except with
    # CUDA graphs, which need every shape's buffers).
    MAX_SHAPES = 8

    def __init__(
        self, session: ort.InferenceSession, device: str, device_id: int, cuda_graph: bool
    ):
        self.session = session
        self.device, self.device_id = device, int(device_id)
        self.cuda_graph = bool(cuda_graph)
        self.output = session.get_outputs()[0]
        self.buffers: dict[tuple, tuple[dict[str, ort.OrtValue], ort.OrtValue, int]] = {}

    @classmethod
    def for_session(
        cls, session: ort.InferenceSession, requested: bool | None
    ) -> _DeviceBinding | None:
        """The binding a forecaster uses: on CUDA by default, on request elsewhere; ``None`` for
        plain ``session.run``."""
        providers = session.get_providers()
        on_cuda = bool(providers) and providers[0] == _CUDA
        if requested is None:
            requested = on_cuda
        if not requested:
            return None
        if not on_cuda:
            return cls(session, "cpu", 0, False)
        options = session.get_provider_options().get(_CUDA, {})
        return cls(
            session,
            "cuda",
            int(options.get("device_id", 0)),
            str(options.get("enable_cuda_graph", "0")) == "1",
        )

    def _buffers(self, feeds: dict[str, np.ndarray]) -> tuple[dict, ort.OrtValue | None, int]:
        """The kept buffers for these feeds' shapes (made on first use) and their CUDA graph id."""
        key = tuple((name, feeds[name].shape, feeds[name].dtype.str) for name in sorted(feeds))
        kept = self.buffers.get(key)
        if kept is not None:
            return kept
        # Own buffers, filled by update_inplace in run(): on the CPU ortvalue_from_numpy would
        # share the caller's array, which later calls would then overwrite.
        inputs = {
            name: ort.OrtValue.ortvalue_from_shape_and_type(
                value.shape, value.dtype, self.device, self.device_id
            )
            for name, value in feeds.items()
        }
        # (B, ocl, D, P): the batch from the first input, the rest from the graph's declared shape
        batch = next(iter(feeds.values())).shape[0]
        shape = [batch, *self.output.shape[1:]]
        output = None  # a graph that does not declare its output's sizes: ONNX Runtime allocates
        if all(isinstance(d, int) for d in shape):
            dtype = _ORT_DTYPES[self.output.type]
            output = ort.OrtValue.ortvalue_from_shape_and_type(
                shape, dtype, self.device, self.device_id
            )
        graph_id = len(self.buffers) + 1  # 0 would ask ONNX Runtime for its default graph
        # A captured CUDA graph replays at its buffers' addresses: with CUDA graphs every shape's
        # buffers are kept (one graph each), however many shapes come.
        if self.cuda_graph or len(self.buffers) < self.MAX_SHAPES:
            self.buffers[key] = (inputs, output, graph_id)
        return inputs, output, graph_id

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """One call: inputs copied into the device buffers, the output copied back to numpy."""
        inputs, output, graph_id = self._buffers(feeds)
        for name, value in feeds.items():
            inputs[name].update_inplace(value)
        binding = self.session.io_binding()
        for name, value in inputs.items():
            binding.bind_ortvalue_input(name, value)
        if output is not None:
            binding.bind_ortvalue_output(self.output.name, output)
        else:
            binding.bind_output(self.output.name, self.device, self.device_id)
        options = None
        if self.cuda_graph:
            options = ort.RunOptions()
            options.add_run_config_entry("gpu_graph_id", str(graph_id))
        binding.synchronize_inputs()
        self.session.run_with_iobinding(binding, options)
        binding.synchronize_outputs()
        if output is None:
            return binding.copy_outputs_to_cpu()[0]
        # On the CPU numpy() is a view of the kept buffer, which the next call overwrites.
        return output.numpy().copy() if self.device == "cpu" else output.numpy()


def _is_series(x: Any) -> bool:
    return isinstance(x, TimeSeries)


_as_list = series_list  # the check MIMModel.predict makes, in its words


_needs_covariates = core.needs_covariates


class OnnxForecaster:
    """Forecast with a MIM model exported by ``MIMModel.to_onnx()``, without torch.

    Parameters
    ----------
    path
        The ``.onnx`` file written by :func:`darts_mim.onnx.export.export_model`. It must match the
        checksum file written beside it (``path + ".sha256"``): a file modified or corrupted after
        the export is a ``ValueError``; a file exported without one (darts-mim 0.5 or older) loads
        with a warning, once, that its integrity cannot be verified.
    providers
        ONNX Runtime execution providers (see :func:`select_providers`). Default: CUDA then CPU when
        CUDA can run here (see :func:`provider_problem`), else CPU. A provider asked for explicitly
        must run: one that cannot is a ``ValueError`` (onnxruntime would silently use the CPU), and
        the session does not fall back to the CPU when a run fails on it.
    session_options
        Optional ``onnxruntime.SessionOptions``.
    intra_op_num_threads
        Optional number of threads ONNX Runtime uses inside one operator.
    io_binding
        Bind inputs and outputs to buffers on the session's device that are kept and reused across
        calls (the chunks of an autoregressive forecast, batches of the same size): no allocation
        per call, one copy in and one out, and the fixed addresses CUDA graphs need. ``None``
        (default): on when the session runs on CUDA, off on the CPU (where it saves nothing).

    Units: a file exported with ``MIMModel.to_onnx(..., scaler=scaler)`` (or by ``darts-mim
    export``) scales inside its graph and takes and returns raw values (:attr:`scaling` says which
    scalers); a file exported without one takes and returns the values the model was trained on.
    The forecaster itself never scales.

    Examples
    --------
    >>> from darts_mim.onnx.runtime import OnnxForecaster  # doctest: +SKIP
    >>> forecaster = OnnxForecaster("mim.onnx")  # doctest: +SKIP
    >>> forecasts = forecaster.predict(6, [series_a, series_b])  # doctest: +SKIP
    >>> paths = forecaster.predict(24, series_a, num_samples=200, random_state=0)  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike,
        providers: str | Sequence[str | tuple[str, dict]] | None = None,
        session_options: ort.SessionOptions | None = None,
        intra_op_num_threads: int | None = None,
        io_binding: bool | None = None,
    ):
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No ONNX file at {path!r}.")
        self.providers = select_providers(providers)
        if session_options is not None:
            options = session_options
        else:
            options = ort.SessionOptions()
            # Errors only: loading a float16 graph on the CPU logs a warning per node that the
            # optimizer cannot constant-fold in float16, which says nothing about the forecasts.
            options.log_severity_level = 3
        if intra_op_num_threads is not None:
            options.intra_op_num_threads = int(intra_op_num_threads)
        # Its checksum file (written by the export) first: a corrupted graph can load and forecast;
        # a file without one is read before it is warned about, so that a file that is not ONNX
        # gets that error alone.
        self.session = open_session(path, options, self.providers)
        if providers is not None:
            self._check_started(self.session, self.providers)
        self.path = path
        self.metadata = read_metadata(
            self.session.get_modelmeta().custom_metadata_map,
            path,
            [i.name for i in self.session.get_inputs()],
        )
        meta = self.metadata
        self.grid: GridSpec = meta["grid"]
        self.input_chunk_length: int = meta["input_chunk_length"]
        self.output_chunk_length: int = meta["output_chunk_length"]
        self.output_chunk_shift: int = meta["output_chunk_shift"]
        self.components: list[str] = list(meta["components"])
        self.likelihood: dict | None = meta["likelihood"]
        self.nr_params: int = meta["nr_params"]
        #: The ``scaling`` metadata entry: ``None`` for a graph on the model's (scaled) values, else
        #: which scalers the graph applies itself (:mod:`darts_mim.onnx.scaling`): series and
        #: arrays are then passed and returned in raw units, never scaled here.
        self.scaling: dict | None = meta.get("scaling")
        self._missing = np.zeros(len(self.components), dtype=bool)
        if meta["missing_components"]:
            self._missing[meta["missing_components"]] = True
        self._input_dtypes = {i.name: _ORT_DTYPES[i.type] for i in self.session.get_inputs()}
        self._output_dtype = np.dtype(meta["training_dtype"])
        self._binding = _DeviceBinding.for_session(self.session, io_binding)

    # ------------------------------------------------------------------ providers
    @staticmethod
    def _check_started(session: ort.InferenceSession, requested: Sequence) -> None:
        """Refuse a session that left out a provider asked for explicitly.

        onnxruntime starts what it can and silently runs the rest on the CPU; the probe of
        :func:`select_providers` catches the usual causes first, this catches the others.
        """
        started = session.get_providers()
        left_out = [_provider_name(p) for p in requested if _provider_name(p) not in started]
        if left_out:
            raise ValueError(
                f"Execution provider(s) {left_out} could not start (the session runs on {started}): "
                "check the device, its driver and the provider's libraries, or pass providers=None "
                "for the default."
            )
        # A failing run must not retry on the CPU either: the user asked for these providers.
        session.disable_fallback()

    @property
    def uses_past_covariates(self) -> bool:
        return "past_covariates" in self.metadata["inputs"]

    @property
    def uses_future_covariates(self) -> bool:
        return "future_covariates" in self.metadata["inputs"]

    @property
    def uses_static_covariates(self) -> bool:
        return "static_covariates" in self.metadata["inputs"]

    # ------------------------------------------------------------------ checks
    def _check_n(self, n: Any, parameters: bool = False) -> int:
        """``n`` as an int; ``parameters``: likelihood parameters are asked for, which Darts limits to
        one chunk."""
        return core.check_n(
            n,
            self.output_chunk_length,
            self.output_chunk_shift,
            parameters and bool(self.likelihood),
        )

    def _sampling(self, num_samples: Any, predict_likelihood_parameters: bool | None) -> int | None:
        """``None`` for the deterministic forecast or the parameters, else the number of samples
        (see :func:`darts_mim.onnx.core.resolve_sampling`)."""
        return core.resolve_sampling(self.likelihood, num_samples, predict_likelihood_parameters)

    def _check_series(self, series: TimeSeries, idx: int, what: str) -> None:
        """The grid and length checks of ``MIMModel.predict`` and Darts, with the same messages."""
        check_series_grid(series, self.grid, what)
        # a file exported before darts-mim 0.13 does not say whether it folds: not checked
        check_fold_freq(series.freq, self.metadata.get("freq"), self.metadata.get("fold", 1), what)
        if len(series) < self.input_chunk_length:
            raise ValueError(
                f"The target `series` at series sequence idx `{idx}` is too short to extract the model "
                f"input for prediction. Expected min length: `{self.input_chunk_length}` "
                f"(input_chunk_length), received length `{len(series)}`."
            )
        warn_masked_with_values(series, self.metadata["missing_components"], what)

    @functools.cached_property
    def _functions(self) -> dict[str, Callable]:
        """Custom encoder functions, imported once per forecaster."""
        return {}

    def _encoder_side(self, kind: str) -> dict | None:
        """The saved ``add_encoders`` settings of ``kind`` (``"past_covariates"`` or
        ``"future_covariates"``), ``None`` without encoders there."""
        settings = self.metadata.get("encoders") or {}
        return settings.get(kind.removesuffix("_covariates"))

    def _user_components(self, kind: str) -> int:
        """How many covariate components of ``kind`` the user passes: the graph's, less those that
        the model's encoders compute."""
        if kind not in self.metadata["inputs"]:
            return 0
        return self.metadata[kind]["n_components"] - n_encoded(self._encoder_side(kind))

    def _check_covariates(self, cov: TimeSeries, kind: str, idx: int, count: int = 1) -> None:
        # Their grid first, as MIMModel.predict checks it: a count alone passes an 8x14 grid for
        # a 14x8 one.
        grid_channels = int((self.metadata.get(kind) or {}).get("grid_channels") or 0)
        check_covariate_grid(cov, self.grid, grid_channels, input_name(kind, idx, count))
        # By count, as Darts checks the torch model's covariates: names may differ.
        expected = self._user_components(kind)
        if cov.n_components != expected:
            raise ValueError(
                f"The provided `{kind}` must have equal number of components as the `{kind}` used "
                f"to train the model. Received number of components: `{cov.n_components}`, "
                f"expected: `{expected}` (at series sequence idx `{idx}`)."
            )

    def _refuse_unused(self, **covariates: Any) -> None:
        """Darts' error for covariates given to a model trained without them (not ignore them)."""
        core.refuse_unused(self.metadata["inputs"], **covariates)

    def _refuse_encoded_only(self, **covariates: Any) -> None:
        """Covariates given where the model's encoders compute all of them (Darts would stack them
        before the encodings and fail on the count)."""
        for kind, value in covariates.items():
            if (
                value is not None
                and kind in self.metadata["inputs"]
                and self._user_components(kind) == 0
            ):
                raise ValueError(
                    f"This model has been trained without user `{kind}`: its `{kind}` "
                    f"({', '.join(describe(self._encoder_side(kind)))}) are computed from the time "
                    f"index by its encoders (add_encoders). No `{kind}` should be provided for "
                    "prediction."
                )

    # ------------------------------------------------------------------ slicing
    @staticmethod
    def _check_covers(
        cov: TimeSeries, start: Any, length: int, kind: str, idx: int, n: int, ocl: int
    ) -> None:
        """Darts' errors (word for word, from its torch inference dataset, which this torch-free
        module cannot import) when ``cov`` lacks the ``length`` steps from time ``start``."""
        end = start + (length - 1) * cov.freq
        if cov.start_time() > start:
            raise ValueError(
                f"For the given forecasting case, the provided `{kind}` at series sequence index "
                f"`{idx}` do not extend far enough into the past. The `{kind}` must start at or "
                f"before time step `{start}`, whereas now the start is at time step "
                f"`{cov.start_time()}`."
            )
        if cov.end_time() < end:
            case = "n > output_chunk_length" if n > ocl else "n <= output_chunk_length"
            raise ValueError(
                f"For the given forecasting horizon `n={n}`, the provided `{kind}` at series "
                f"sequence index `{idx}` do not extend far enough into the future. As `{case}` the "
                f"`{kind}` must end at or after time step `{end}`, whereas now the end is at time "
                f"step `{cov.end_time()}`."
            )
        if start not in cov.time_index:
            raise ValueError(
                f"`{kind}` at index {idx} has no time step {start}: its frequency ({cov.freq}) or "
                "alignment does not match the target series'."
            )

    @functools.cached_property
    def _slicing_spec(self) -> OnnxModelSpec:
        """The Darts spec :func:`darts.utils.onnx.prepare_onnx_inputs` slices this model's windows
        with. Darts' slicing ends the future covariates at ``max(n, output_chunk_length)`` steps
        after the series, whatever the shift; the graph reads ``output_chunk_shift`` steps more, so
        the shift is counted in the chunk here (``n > output_chunk_length`` with a shift is refused
        before slicing, so the past covariates' part after the series is unchanged). Historic
        future covariates are always sliced: :func:`darts_mim.onnx.core.forecast` takes the future
        covariates from the first input step."""
        spec = darts_spec(self.metadata)
        uses = {"past_target", *spec["feature_input_names"]}
        if spec["uses_future_covariates"]:
            uses.add("historic_future_covariates")
        uses = sorted(uses)
        spec.update(
            output_chunk_length=self.output_chunk_length + self.output_chunk_shift,
            output_chunk_shift=0,
            feature_input_names=uses,
            input_names=uses,
        )
        return OnnxModelSpec(**spec)

    def _series_inputs(
        self,
        idx: int,
        series: TimeSeries,
        past_cov: TimeSeries | None,
        future_cov: TimeSeries | None,
        n: int,
        count: int = 1,
    ) -> dict[str, np.ndarray]:
        """One series' arrays in the layout of :meth:`predict_array` (no batch axis); ``idx`` and
        ``count`` (how many series the call forecasts) name the inputs in messages.

        The series and covariates are checked here (with Darts' messages), sliced by Darts' own
        :func:`darts.utils.onnx.prepare_onnx_inputs`, and joined into this runtime's layout: the
        past covariates of the input window then those beyond ``output_chunk_length``, the future
        covariates from the first input step to the last forecast step, then the encodings of a
        model fitted with ``add_encoders`` appended.
        """
        icl, ocl, ocs = self.input_chunk_length, self.output_chunk_length, self.output_chunk_shift
        # as MIMModel.predict names them, so that both answer bad input word for word
        self._check_series(series, idx, input_name("series", idx, count))
        # Darts' slicing reads the first sample of a stochastic series, its torch inference a
        # random one: both refuse it, with one message (covariates too, in MIMModel.predict's order).
        for kind, value in (
            ("series", series),
            ("past_covariates", past_cov),
            ("future_covariates", future_cov),
        ):
            if value is not None:
                check_deterministic(value, input_name(kind, idx, count))
        # NaN in the target window first, as before Darts' slicing: checked on a view.
        window = series.values(copy=False)[-icl:]
        window = window[:, ~self._missing] if self._missing.any() else window
        if not _in_float32_range(window):
            keep = [c for c, m in zip(self.components, self._missing, strict=True) if not m]
            check_window_values(window, f"`series` at index {idx}", series.time_index[-icl:], keep)
        freq = series.freq
        start = series.time_index[-icl]
        inputs = self.metadata["inputs"]
        lengths = core.covariate_lengths(n, icl, ocl, ocs)
        how = {
            "past_covariates": "covering the input window"
            + (" and the forecast horizon beyond output_chunk_length" if n > ocl else ""),
            "future_covariates": "covering the input window and the forecast horizon",
        }
        user: dict[str, TimeSeries] = {}
        for kind, cov in (("past_covariates", past_cov), ("future_covariates", future_cov)):
            if kind in inputs and self._user_components(kind):
                if cov is None:
                    raise _needs_covariates(kind, how[kind])
                self._check_covariates(cov, kind, idx, count)
                self._check_freq(cov, freq, kind, idx)
                self._check_covers(cov, start, lengths[kind], kind, idx, n, ocl)
                # The steps the forecast reads, in the covariates' own dtype: Darts' slicing casts
                # them to the series' (float32), where 1e39 would read as an infinite gap to fill
                # rather than a value to scale (MIMModel.predict's message).
                pos = cov.time_index.get_loc(start)
                read = slice(pos, pos + lengths[kind])
                values = cov.values(copy=False)[read]
                if not _in_float32_range(values):
                    check_window_values(
                        values, f"`{kind}` at index {idx}", cov.time_index[read], cov.components
                    )
                user[kind] = cov
        if self.uses_static_covariates and series.static_covariates is None:
            raise ValueError(
                f"The model was trained with static covariates but `series` at index {idx} has "
                "none; attach them with series.with_static_covariates()."
            )
        if self.uses_static_covariates:
            # Darts' count check, as MIMModel.predict makes it, before onnxruntime's InvalidArgument
            core.check_static_count(self.metadata, *series.static_covariates.shape)
        sliced = {
            k: v[0] for k, v in prepare_onnx_inputs(series, self._slicing_spec, n=n, **user).items()
        }
        out = {"past_target": sliced["past_target"]}
        if "static_covariates" in sliced:
            out["static_covariates"] = sliced["static_covariates"]
        # Darts' names for the parts of the runtime's covariate arrays.
        parts_of = {
            "past_covariates": ("past_covariates", "future_past_covariates"),
            "future_covariates": ("historic_future_covariates", "future_covariates"),
        }
        for kind in ("past_covariates", "future_covariates"):
            if kind not in inputs:
                continue
            parts = []
            if kind in user:
                # checked (as read, before the cast) in the loop above
                parts.append(np.concatenate([sliced[p] for p in parts_of[kind] if p in sliced]))
            side = self._encoder_side(kind)
            if side:
                # Darts stacks the encodings after the user's covariates. It encodes the index of
                # the user's covariates when there are some, else the steps the forecast reads;
                # so does this, since a few attributes depend on the whole index (a cyclic
                # day of year's period is 366 when any step is in a leap year).
                if parts:
                    index = user[kind].time_index
                    pos = index.get_loc(start)
                else:
                    index, pos = generate_index(start=start, length=lengths[kind], freq=freq), 0
                encoded = encode(
                    side, index, series.end_time(), freq, series.dtype, self._functions
                )
                parts.append(encoded[pos : pos + lengths[kind]])
            out[kind] = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        return out

    @staticmethod
    def _check_freq(cov: TimeSeries, freq, kind: str, idx: int) -> None:
        if cov.freq != freq:
            raise ValueError(
                f"The `{kind}` frequency `{cov.freq}` does not match the target `series` frequency "
                f"`{freq}` (at series sequence idx `{idx}`)."
            )

    # ------------------------------------------------------------------ inference
    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """One call of the graph: numpy in (cast to the graph's dtype), float32 numpy out; through
        :class:`_DeviceBinding` when the forecaster binds its inputs and outputs."""
        feeds = {k: np.ascontiguousarray(v, dtype=self._input_dtypes[k]) for k, v in feeds.items()}
        if self._binding is not None:
            out = self._binding.run(feeds)
        else:
            (out,) = self.session.run(["prediction"], feeds)
        return out.astype(np.float32, copy=False)

    def _graph_runner(self) -> core.Runner:
        """The graph as :func:`darts_mim.onnx.core.forecast` calls it: the feeds it takes, cast."""

        def run(feeds: dict[str, np.ndarray | None]) -> np.ndarray:
            return self._run({k: v for k, v in feeds.items() if k in self._input_dtypes})

        return run

    def predict_array(
        self,
        past_target: np.ndarray,
        n: int,
        past_covariates: np.ndarray | None = None,
        future_covariates: np.ndarray | None = None,
        static_covariates: np.ndarray | None = None,
        batch_size: int = 256,
        num_samples: int = 1,
        random_state: int | np.random.Generator | None = None,
        predict_likelihood_parameters: bool | None = None,
    ) -> np.ndarray:
        """Forecast from arrays.

        Parameters
        ----------
        past_target
            ``(B, input_chunk_length, C*H*W)`` or ``(B, input_chunk_length, C, H, W)``: the last
            ``input_chunk_length`` frames of each series. Masked (always-missing) components may be NaN.
        n
            Forecast horizon (``<= output_chunk_length`` for likelihood parameters and shifted
            outputs).
        past_covariates
            ``(B, input_chunk_length + max(0, n - output_chunk_length), K)``: the past covariates of
            the input window, then those of the autoregressive part of the horizon. These are the
            graph's covariates: for a model fitted with ``add_encoders``, the user's components
            followed by the encoded ones (:meth:`predict` computes those from the time index).
        future_covariates
            ``(B, input_chunk_length + output_chunk_shift + max(n, output_chunk_length), K)``: the
            future covariates from the first input step to the last forecast step (encodings
            included, as for ``past_covariates``).
        static_covariates
            ``(B, rows, S)`` static covariates.
        batch_size
            Largest number of rows (series times samples) per ``session.run`` call.
        num_samples
            For a likelihood model, the number of sample paths to draw per series (see
            :meth:`predict`).
        random_state
            Seed or ``numpy.random.Generator`` for the draws. With a seed each window draws from its
            own generator seeded with it, so that a window gets the samples it gets alone, whatever
            the other windows, its position and ``batch_size``; a ``Generator`` is one stream for
            the whole batch.
        predict_likelihood_parameters
            As in :meth:`predict`.

        Returns
        -------
        numpy.ndarray
            float32 ``(B, n, C*H*W)`` (``(B, n, C, H, W)`` for 5-d input); a last axis of ``nr_params``
            likelihood parameters when those are returned, of ``num_samples`` samples when samples
            are drawn.

        Raises
        ------
        ValueError
            For bad input, and when the graph forecasts NaN or infinite values outside the
            always-missing components (corrupt weights or a diverged fit), never returned.
        """
        samples = self._sampling(num_samples, predict_likelihood_parameters)
        n = self._check_n(n, parameters=self.likelihood is not None and samples is None)
        frame = self.grid.shape
        arr, five_d, covariates = core.check_arrays(
            self.metadata,
            frame,
            past_target,
            n,
            past_covariates=past_covariates,
            future_covariates=future_covariates,
            static_covariates=static_covariates,
        )
        core.check_random_state(random_state, generator_ok=True)
        # A seed gives each window its own generator (its samples as alone); a Generator is one
        # stream that the whole batch draws from, in order.
        generator = isinstance(random_state, np.random.Generator)
        out = core.forecast(
            self._graph_runner(),
            arr,
            n,
            input_chunk_length=self.input_chunk_length,
            output_chunk_length=self.output_chunk_length,
            output_chunk_shift=self.output_chunk_shift,
            likelihood=self.likelihood,
            **covariates,
            num_samples=samples,
            rng=random_state if generator else None,
            seed=None if generator else random_state,
            batch_size=batch_size,
        )
        # NaN or inf outside the always-missing components: corrupt weights or a diverged fit.
        check_finite_forecasts(
            out,
            np.flatnonzero(self._missing),
            component_axis=2,
            components=self.components,
            source=f"The ONNX model {self.path}",
        )
        if five_d:
            # (B, n, D[, P or K]) -> (B, n, C, H, W[, P or K])
            out = out.reshape(out.shape[:2] + frame + out.shape[3:])
        return out

    def predict(
        self,
        n: int,
        series: TimeSeries | Sequence[TimeSeries],
        past_covariates: TimeSeries | Sequence[TimeSeries] | None = None,
        future_covariates: TimeSeries | Sequence[TimeSeries] | None = None,
        batch_size: int = 256,
        num_samples: int = 1,
        random_state: int | np.random.Generator | None = None,
        predict_likelihood_parameters: bool | None = None,
    ) -> TimeSeries | list[TimeSeries]:
        """Forecast ``n`` steps after the end of each series, like ``MIMModel.predict``.

        Parameters
        ----------
        n
            Forecast horizon. Beyond ``output_chunk_length`` the forecast continues autoregressively
            (not for likelihood parameters nor with ``output_chunk_shift``, as in Darts).
        series
            One series or a sequence of series with the training grid's shape and channel count (a
            plain series: the training number of components; names may differ, as in
            ``MIMModel.predict``); at least ``input_chunk_length`` steps each, deterministic (a
            stochastic series or covariates are refused, as by ``MIMModel.predict``: pass e.g.
            ``series.mean()``). Only the last ``input_chunk_length`` steps (and the covariate steps
            the forecast reads) must be finite. Components that were missing at every training
            step are forecast as NaN; a series with values there gets a warning, as from
            ``MIMModel.predict``.
        past_covariates
            One per series when the model uses them, covering the input window (and the steps after
            the series end up to ``n - output_chunk_length`` when ``n > output_chunk_length``).
        future_covariates
            One per series when the model uses them, covering the input window and the horizon.
        batch_size
            Largest number of rows (series times samples) per ``session.run`` call.
        num_samples
            For a likelihood model, the number of sample paths per series, drawn with numpy from the
            likelihood parameters the graph returns (every Darts likelihood, see
            :mod:`darts_mim.onnx.sampling`); beyond ``output_chunk_length`` each path feeds its own
            draws back, as ``MIMModel.predict(n, num_samples=...)`` does. ``> 1`` for a
            deterministic model is Darts' ``ValueError``.
        random_state
            Seed or ``numpy.random.Generator`` for the draws (not torch's numbers: the same
            distribution). With a seed, each series is sampled as if forecast alone with that
            seed, so its samples do not depend on the other series in the call, their order or
            ``batch_size``.
        predict_likelihood_parameters
            ``True``: the likelihood parameters (``num_samples=1`` and ``n <= output_chunk_length``,
            as in Darts). ``False``: samples. ``None`` (default): parameters for a likelihood model
            called with ``num_samples=1`` (what this runtime has always returned), samples for
            ``num_samples > 1``.

        Returns
        -------
        TimeSeries or list of TimeSeries
            Same time index, components, static covariates and metadata as ``MIMModel.predict``:
            deterministic, or stochastic with ``num_samples`` samples; for likelihood parameters the
            components ``<component>_<parameter>`` (e.g. ``x_mu``/``x_sigma`` or ``x_q0.05``), as
            ``predict(..., predict_likelihood_parameters=True)``.
        """
        samples = self._sampling(num_samples, predict_likelihood_parameters)
        parameters = self.likelihood is not None and samples is None
        n = self._check_n(n, parameters=parameters)
        self._refuse_unused(past_covariates=past_covariates, future_covariates=future_covariates)
        self._refuse_encoded_only(
            past_covariates=past_covariates, future_covariates=future_covariates
        )
        single = _is_series(series)
        series_l = _as_list(series, "series")
        check_some_series(series_l)
        covs = {}
        for name, value in (
            ("past_covariates", past_covariates),
            ("future_covariates", future_covariates),
        ):
            value_l = _as_list(value, name)
            if value_l is not None and len(value_l) != len(series_l):
                raise ValueError(
                    f"The sequence of `{name}` must have the same length as the sequence of target "
                    f"`series` (got {len(value_l)} for {len(series_l)}): pass one per series."
                )
            covs[name] = value_l
        per_series = [
            self._series_inputs(
                i,
                s,
                covs["past_covariates"][i] if covs["past_covariates"] else None,
                covs["future_covariates"][i] if covs["future_covariates"] else None,
                n,
                len(series_l),
            )
            for i, s in enumerate(series_l)
        ]
        stacked = {
            key: np.stack([inp[key] for inp in per_series]).astype(np.float32, copy=False)
            for key in per_series[0]
        }
        values = self.predict_array(
            stacked.pop("past_target"),
            n,
            past_covariates=stacked.get("past_covariates"),
            future_covariates=stacked.get("future_covariates"),
            static_covariates=stacked.get("static_covariates"),
            batch_size=batch_size,
            num_samples=num_samples,
            random_state=random_state,
            predict_likelihood_parameters=predict_likelihood_parameters,
        ).astype(self._output_dtype, copy=False)
        forecasts = [
            self._to_series(s, v, parameters) for s, v in zip(series_l, values, strict=True)
        ]
        return forecasts[0] if single else forecasts

    def _to_series(self, series: TimeSeries, values: np.ndarray, parameters: bool) -> TimeSeries:
        """Build the forecast like Darts' ``_build_forecast_series_from_schema``: ``values`` are
        ``(n, D)``, ``(n, D, K)`` samples, or ``(n, D, P)`` likelihood parameters (``parameters``)."""
        start = series.end_time() + (1 + self.output_chunk_shift) * series.freq
        times = generate_index(
            start=start, freq=series.freq, length=values.shape[0], name=series.time_index.name
        )
        if parameters:
            names = self.likelihood["parameter_names"]
            components = [f"{c}_{p}" for c in series.components for p in names]
            values = values.reshape(values.shape[0], -1)
            static, hierarchy = None, None
        else:
            components = series.components
            static, hierarchy = series.static_covariates, series.hierarchy
        return TimeSeries(
            times=times,
            values=np.ascontiguousarray(values),
            components=components,
            static_covariates=static,
            hierarchy=hierarchy,
            metadata=series.metadata,
            copy=False,
        )
