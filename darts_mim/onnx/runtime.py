"""Torch-free serving of exported MIM models with ONNX Runtime: :class:`OnnxForecaster`.

This module imports numpy, pandas, onnxruntime and Darts' ``TimeSeries`` (which does not import
torch), never torch nor :mod:`darts_mim.model`. It reproduces what ``MIMModel.predict`` does around the
network: it slices the input windows and covariates by time exactly as Darts' inference dataset does,
stacks many series into one batch per ``session.run``, continues autoregressively for
``n > output_chunk_length`` with Darts' roll-and-feed-back rule, and rebuilds ``TimeSeries`` with the
same time index, components, static covariates and metadata as the torch model's forecasts. Bad input
is refused with the same ``ValueError`` as ``MIMModel.predict`` (the checks of :mod:`darts_mim.grid`
and :mod:`darts_mim.validation` are shared, Darts' own are repeated word for word).
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
import pandas as pd
from darts import TimeSeries
from darts.utils.utils import generate_index

from darts_mim.grid import GridSpec, check_series_grid
from darts_mim.onnx.format import read_metadata
from darts_mim.validation import warn_masked_with_values

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


def _is_series(x: Any) -> bool:
    return isinstance(x, TimeSeries)


def _as_list(x: Any, name: str) -> list[TimeSeries] | None:
    if x is None:
        return None
    items = [x] if _is_series(x) else list(x)
    for item in items:
        if not _is_series(item):
            raise ValueError(f"`{name}` must be a TimeSeries or a sequence of TimeSeries.")
    return items


def _needs_covariates(kind: str, how: str) -> ValueError:
    """Darts' error for missing covariates, plus what to pass (Darts falls back on the covariates
    the model was fitted with, which an ONNX file does not store)."""
    return ValueError(
        f"This model has been trained with `{kind}`; some `{kind}` of matching dimensionality are "
        f"needed for prediction: pass `{kind}` (one per series) {how}."
    )


class OnnxForecaster:
    """Forecast with a MIM model exported by ``MIMModel.to_onnx()``, without torch.

    Parameters
    ----------
    path
        The ``.onnx`` file written by :func:`darts_mim.onnx.export.export_model`.
    providers
        ONNX Runtime execution providers (see :func:`select_providers`). Default: CUDA then CPU when
        CUDA can run here (see :func:`provider_problem`), else CPU. A provider asked for explicitly
        must run: one that cannot is a ``ValueError`` (onnxruntime would silently use the CPU), and
        the session does not fall back to the CPU when a run fails on it.
    session_options
        Optional ``onnxruntime.SessionOptions``.
    intra_op_num_threads
        Optional number of threads ONNX Runtime uses inside one operator.

    Examples
    --------
    >>> from darts_mim.onnx.runtime import OnnxForecaster  # doctest: +SKIP
    >>> forecaster = OnnxForecaster("mim.onnx")  # doctest: +SKIP
    >>> forecasts = forecaster.predict(6, [series_a, series_b])  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike,
        providers: str | Sequence[str | tuple[str, dict]] | None = None,
        session_options: ort.SessionOptions | None = None,
        intra_op_num_threads: int | None = None,
    ):
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No ONNX file at {path!r}.")
        self.providers = select_providers(providers)
        options = session_options if session_options is not None else ort.SessionOptions()
        if intra_op_num_threads is not None:
            options.intra_op_num_threads = int(intra_op_num_threads)
        try:
            self.session = ort.InferenceSession(
                path, sess_options=options, providers=self.providers
            )
        except Exception as err:  # ORT raises its own exception types for unreadable files
            raise ValueError(
                f"{path!r} could not be read as an ONNX model (not an ONNX file, truncated or "
                f"corrupt): {err}. Export it again with MIMModel.to_onnx()."
            ) from err
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
        self._missing = np.zeros(len(self.components), dtype=bool)
        if meta["missing_components"]:
            self._missing[meta["missing_components"]] = True
        self._input_dtypes = {i.name: _ORT_DTYPES[i.type] for i in self.session.get_inputs()}
        self._output_dtype = np.dtype(meta["training_dtype"])

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
    def _check_n(self, n: Any) -> int:
        if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
            raise ValueError(f"`n` must be a positive integer, got {n!r}.")
        ocl = self.output_chunk_length
        if self.likelihood is not None and n > ocl:
            raise ValueError(
                "`n` must be smaller than or equal to `output_chunk_length` "
                f"({ocl}) for a likelihood model: the ONNX graph returns the likelihood parameters "
                "(as predict_likelihood_parameters=True), which cannot be fed back autoregressively."
            )
        if self.output_chunk_shift and n > ocl:
            raise ValueError(
                f"Cannot forecast n={n} > output_chunk_length={ocl} autoregressively with "
                f"output_chunk_shift={self.output_chunk_shift}; use n <= {ocl}."
            )
        return int(n)

    def _check_series(self, series: TimeSeries, idx: int, what: str) -> None:
        """The grid and length checks of ``MIMModel.predict`` and Darts, with the same messages."""
        check_series_grid(series, self.grid, what)
        if len(series) < self.input_chunk_length:
            raise ValueError(
                f"The target `series` at series sequence idx `{idx}` is too short to extract the model "
                f"input for prediction. Expected min length: `{self.input_chunk_length}` "
                f"(input_chunk_length), received length `{len(series)}`."
            )
        warn_masked_with_values(series, self.metadata["missing_components"], what)

    def _check_covariates(self, cov: TimeSeries, kind: str, idx: int) -> None:
        # By count, as Darts checks the torch model's covariates: names may differ.
        expected = self.metadata[kind]["n_components"]
        if cov.n_components != expected:
            raise ValueError(
                f"The provided `{kind}` must have equal number of components as the `{kind}` used "
                f"to train the model. Received number of components: `{cov.n_components}`, "
                f"expected: `{expected}` (at series sequence idx `{idx}`)."
            )

    def _refuse_unused(self, **covariates: Any) -> None:
        """Darts' error for covariates given to a model trained without them (not ignore them)."""
        for kind, value in covariates.items():
            if value is not None and kind not in self.metadata["inputs"]:
                raise ValueError(
                    f"This model has been trained without `{kind}`; No `{kind}` should be provided "
                    "for prediction."
                )

    @staticmethod
    def _check_finite(
        values: np.ndarray, what: str, idx: int, times: pd.Index, components: Sequence[str]
    ) -> None:
        bad = ~np.isfinite(values)
        if bad.any():
            t, c = np.argwhere(bad)[0]
            raise ValueError(
                f"`{what}` at index {idx} contains NaN or infinite values in the window the forecast "
                f"reads: {int(bad.sum())} value(s), the first at time {times[t]} in component "
                f"{components[c]!r}. Fill the gaps first (e.g. "
                "darts.utils.missing_values.fill_missing_values)."
            )

    # ------------------------------------------------------------------ slicing
    @staticmethod
    def _window(
        cov: TimeSeries, start, length: int, kind: str, idx: int, n: int, ocl: int
    ) -> tuple[np.ndarray, pd.Index]:
        """``length`` steps of ``cov`` from time ``start``, with Darts' errors when not covered."""
        index = cov.time_index
        freq = cov.freq
        end = start + (length - 1) * freq
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
        try:
            pos = index.get_loc(start)
        except KeyError as err:
            raise ValueError(
                f"`{kind}` at index {idx} has no time step {start}: its frequency ({freq}) or "
                "alignment does not match the target series'."
            ) from err
        values = cov.all_values(copy=False)[pos : pos + length, :, 0]
        return values, index[pos : pos + length]

    def _series_inputs(
        self,
        idx: int,
        series: TimeSeries,
        past_cov: TimeSeries | None,
        future_cov: TimeSeries | None,
        n: int,
        what: str,
    ) -> dict[str, np.ndarray]:
        """One series' arrays in the layout of :meth:`predict_array` (no batch axis); ``what`` names
        the series in messages."""
        icl, ocl, ocs = self.input_chunk_length, self.output_chunk_length, self.output_chunk_shift
        self._check_series(series, idx, what)
        freq = series.freq
        past_times = series.time_index[-icl:]
        target = series.all_values(copy=False)[-icl:, :, 0]
        window = target[:, ~self._missing] if self._missing.any() else target
        keep = [c for c, m in zip(self.components, self._missing, strict=True) if not m]
        self._check_finite(window, "series", idx, past_times, keep)
        out = {"past_target": target}
        start = past_times[0]
        if self.uses_past_covariates:
            if past_cov is None:
                raise _needs_covariates(
                    "past_covariates",
                    "covering the input window"
                    + (" and the forecast horizon beyond output_chunk_length" if n > ocl else ""),
                )
            self._check_covariates(past_cov, "past_covariates", idx)
            self._check_freq(past_cov, freq, "past_covariates", idx)
            values, times = self._window(
                past_cov, start, icl + max(0, n - ocl), "past_covariates", idx, n, ocl
            )
            self._check_finite(values, "past_covariates", idx, times, past_cov.components)
            out["past_covariates"] = values
        if self.uses_future_covariates:
            if future_cov is None:
                raise _needs_covariates(
                    "future_covariates", "covering the input window and the forecast horizon"
                )
            self._check_covariates(future_cov, "future_covariates", idx)
            self._check_freq(future_cov, freq, "future_covariates", idx)
            values, times = self._window(
                future_cov, start, icl + ocs + max(n, ocl), "future_covariates", idx, n, ocl
            )
            self._check_finite(values, "future_covariates", idx, times, future_cov.components)
            out["future_covariates"] = values
        if self.uses_static_covariates:
            static = series.static_covariates
            if static is None:
                raise ValueError(
                    f"The model was trained with static covariates but `series` at index {idx} has "
                    "none; attach them with series.with_static_covariates()."
                )
            out["static_covariates"] = static.values.astype(np.float64)
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
        feeds = {k: np.ascontiguousarray(v, dtype=self._input_dtypes[k]) for k, v in feeds.items()}
        (out,) = self.session.run(["prediction"], feeds)
        return out.astype(np.float32, copy=False)

    def _forecast(
        self,
        past_target: np.ndarray,
        n: int,
        past_covariates: np.ndarray | None,
        future_covariates: np.ndarray | None,
        static_covariates: np.ndarray | None,
    ) -> np.ndarray:
        """Darts' ``_get_batch_prediction`` on arrays: ``(B, n, D)`` or ``(B, n, D, P)``."""
        icl, ocl, ocs = self.input_chunk_length, self.output_chunk_length, self.output_chunk_shift
        pt = np.array(past_target, dtype=np.float32)
        pc = fpc = hfc = fc = None
        if past_covariates is not None:
            pc, fpc = np.array(past_covariates[:, :icl]), past_covariates[:, icl:]
        if future_covariates is not None:
            hfc, fc = np.array(future_covariates[:, :icl]), future_covariates[:, icl + ocs :]

        def run(fc_slice: np.ndarray | None) -> np.ndarray:
            feeds = {"past_target": pt}
            for name, value in (
                ("past_covariates", pc),
                ("historic_future_covariates", hfc),
                ("future_covariates", fc_slice),
                ("static_covariates", static_covariates),
            ):
                if name in self._input_dtypes:
                    feeds[name] = value
            return self._run(feeds)

        out = run(None if fc is None else fc[:, :ocl])
        if self.likelihood is not None:
            return out[:, :n]
        out = out[..., 0]
        roll = ocl
        chunks = [out[:, :roll]]
        done = roll
        min_n = max(n, ocl)
        while done < min_n:
            # The last chunk ends exactly at min_n: step back and truncate the previous one.
            if done + ocl > min_n:
                spill = done + ocl - min_n
                roll -= spill
                done -= spill
                chunks[-1] = chunks[-1][:, :roll]
            pt = np.roll(pt, -roll, axis=1)
            if pc is not None:
                pc = np.roll(pc, -roll, axis=1)
            if hfc is not None:
                hfc = np.roll(hfc, -roll, axis=1)
            if icl >= roll:
                pt[:, -roll:] = out[:, :roll]
                left, right = done - roll, done
            else:
                pt[:, :] = out[:, -icl:]
                left, right = done - icl, done
            if pc is not None:
                pc[:, -(right - left) :] = fpc[:, left:right]
            if hfc is not None:
                hfc[:, -(right - left) :] = fc[:, left:right]
            out = run(None if fc is None else fc[:, right : right + ocl])[..., 0]
            chunks.append(out)
            done += ocl
        return np.concatenate(chunks, axis=1)[:, :n]

    def predict_array(
        self,
        past_target: np.ndarray,
        n: int,
        past_covariates: np.ndarray | None = None,
        future_covariates: np.ndarray | None = None,
        static_covariates: np.ndarray | None = None,
        batch_size: int = 256,
    ) -> np.ndarray:
        """Forecast from arrays.

        Parameters
        ----------
        past_target
            ``(B, input_chunk_length, C*H*W)`` or ``(B, input_chunk_length, C, H, W)``: the last
            ``input_chunk_length`` frames of each series. Masked (always-missing) components may be NaN.
        n
            Forecast horizon (``<= output_chunk_length`` for likelihood models and shifted outputs).
        past_covariates
            ``(B, input_chunk_length + max(0, n - output_chunk_length), K)``: the past covariates of
            the input window, then those of the autoregressive part of the horizon.
        future_covariates
            ``(B, input_chunk_length + output_chunk_shift + max(n, output_chunk_length), K)``: the
            future covariates from the first input step to the last forecast step.
        static_covariates
            ``(B, rows, S)`` static covariates.
        batch_size
            Largest number of series per ``session.run`` call.

        Returns
        -------
        numpy.ndarray
            float32 ``(B, n, C*H*W)`` (``(B, n, C, H, W)`` for 5-d input); likelihood models add a last
            axis of ``nr_params`` likelihood parameters.
        """
        n = self._check_n(n)
        self._refuse_unused(
            past_covariates=past_covariates,
            future_covariates=future_covariates,
            static_covariates=static_covariates,
        )
        arr = np.asarray(past_target)
        frame = self.grid.shape
        five_d = arr.ndim == 5
        if five_d:
            if tuple(arr.shape[2:]) != frame:
                raise ValueError(f"`past_target` frames are {arr.shape[2:]}, the model's {frame}.")
            arr = arr.reshape(arr.shape[0], arr.shape[1], -1)
        icl = self.input_chunk_length
        if arr.ndim != 3 or arr.shape[1:] != (icl, len(self.components)):
            raise ValueError(
                f"`past_target` must be (B, {icl}, {len(self.components)}) or (B, {icl}, "
                f"{', '.join(map(str, frame))}), got {np.shape(past_target)}."
            )
        batch = arr.shape[0]
        ocl, ocs = self.output_chunk_length, self.output_chunk_shift
        expected = {
            "past_covariates": (past_covariates, icl + max(0, n - ocl), self.uses_past_covariates),
            "future_covariates": (
                future_covariates,
                icl + ocs + max(n, ocl),
                self.uses_future_covariates,
            ),
        }
        for name, (value, length, used) in expected.items():
            if used and value is None:
                raise _needs_covariates(name, f"of shape (B, {length}, K)")
            if used:
                info = self.metadata[name]
                shape = (batch, length, info["n_components"])
                if np.shape(value) != shape:
                    raise ValueError(f"`{name}` must have shape {shape}, got {np.shape(value)}.")
        if self.uses_static_covariates and static_covariates is None:
            raise _needs_covariates("static_covariates", "of shape (B, rows, S)")
        results = []
        for lo in range(0, batch, max(1, int(batch_size))):
            hi = lo + max(1, int(batch_size))

            def part(x, lo=lo, hi=hi):
                return None if x is None else np.asarray(x)[lo:hi]

            results.append(
                self._forecast(
                    arr[lo:hi],
                    n,
                    part(past_covariates) if self.uses_past_covariates else None,
                    part(future_covariates) if self.uses_future_covariates else None,
                    part(static_covariates) if self.uses_static_covariates else None,
                )
            )
        out = np.concatenate(results, axis=0)
        if five_d:
            # (B, n, D[, P]) -> (B, n, C, H, W[, P])
            out = out.reshape(out.shape[:2] + frame + out.shape[3:])
        return out

    def predict(
        self,
        n: int,
        series: TimeSeries | Sequence[TimeSeries],
        past_covariates: TimeSeries | Sequence[TimeSeries] | None = None,
        future_covariates: TimeSeries | Sequence[TimeSeries] | None = None,
        batch_size: int = 256,
    ) -> TimeSeries | list[TimeSeries]:
        """Forecast ``n`` steps after the end of each series, like ``MIMModel.predict``.

        Parameters
        ----------
        n
            Forecast horizon. Beyond ``output_chunk_length`` the forecast continues autoregressively
            (not for likelihood models nor with ``output_chunk_shift``, as in Darts).
        series
            One series or a sequence of series with the training grid's shape and channel count (a
            plain series: the training number of components; names may differ, as in
            ``MIMModel.predict``); at least ``input_chunk_length`` steps each. A stochastic series'
            first sample is read. Components that were missing at every training step are forecast
            as NaN; a series with values there gets a warning, as from ``MIMModel.predict``.
        past_covariates
            One per series when the model uses them, covering the input window (and the steps after
            the series end up to ``n - output_chunk_length`` when ``n > output_chunk_length``).
        future_covariates
            One per series when the model uses them, covering the input window and the horizon.
        batch_size
            Largest number of series per ``session.run`` call.

        Returns
        -------
        TimeSeries or list of TimeSeries
            Same time index, components, static covariates and metadata as ``MIMModel.predict``; for a
            likelihood model the likelihood parameters (components ``<component>_<parameter>``, e.g.
            ``x_mu``/``x_sigma`` or ``x_q0.05``), as ``predict(..., predict_likelihood_parameters=True)``.
        """
        n = self._check_n(n)
        self._refuse_unused(past_covariates=past_covariates, future_covariates=future_covariates)
        single = _is_series(series)
        series_l = _as_list(series, "series")
        if not series_l:
            raise ValueError("Got no series to forecast.")
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
                # as MIMModel.predict names them, so that both answer bad input word for word
                "`series`" if len(series_l) == 1 else f"`series` at index {i}",
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
        ).astype(self._output_dtype, copy=False)
        forecasts = [self._to_series(s, v) for s, v in zip(series_l, values, strict=True)]
        return forecasts[0] if single else forecasts

    def _to_series(self, series: TimeSeries, values: np.ndarray) -> TimeSeries:
        """Build the forecast like Darts' ``_build_forecast_series_from_schema``."""
        start = series.end_time() + (1 + self.output_chunk_shift) * series.freq
        times = generate_index(
            start=start, freq=series.freq, length=values.shape[0], name=series.time_index.name
        )
        if self.likelihood is not None:
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
