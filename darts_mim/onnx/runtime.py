"""Torch-free serving of exported MIM models with ONNX Runtime: :class:`OnnxForecaster`.

This module imports numpy, pandas, onnxruntime and Darts' ``TimeSeries`` (which does not import
torch), never torch nor :mod:`darts_mim.model`. It reproduces what ``MIMModel.predict`` does around the
network: it slices the input windows and covariates by time exactly as Darts' inference dataset does,
stacks many series into one batch per ``session.run``, continues autoregressively for
``n > output_chunk_length`` with Darts' roll-and-feed-back rule, and rebuilds ``TimeSeries`` with the
same time index, components, static covariates and metadata as the torch model's forecasts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
from darts import TimeSeries
from darts.utils.utils import generate_index

METADATA_PREFIX = "darts_mim."
FORMAT_VERSION = 1
FEATURE_NAMES = (
    "past_target",
    "past_covariates",
    "historic_future_covariates",
    "future_covariates",
    "static_covariates",
)
_GRID_KEY = "darts_mim_grid"  # darts_mim.grid.GRID_KEY, repeated to keep this module light
_REQUIRED_KEYS = (
    "format_version",
    "grid",
    "components",
    "input_chunk_length",
    "output_chunk_length",
    "output_chunk_shift",
    "inputs",
    "past_covariates",
    "future_covariates",
    "likelihood",
    "nr_params",
    "dtype",
    "training_dtype",
    "missing_components",
)
_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def select_providers(
    requested: str | Sequence[str | tuple[str, dict]] | None, available: Sequence[str]
) -> list[str | tuple[str, dict]]:
    """Choose ONNX Runtime execution providers.

    Parameters
    ----------
    requested
        ``None`` for the default: CUDA then CPU when ``"CUDAExecutionProvider"`` is available (the
        ``onnxruntime-gpu`` build on a machine with a GPU), else CPU only. Otherwise one provider name
        or a sequence of names or ``(name, options)`` pairs, in priority order; each must be available.
    available
        The available providers, e.g. ``onnxruntime.get_available_providers()``.

    Returns
    -------
    list
        The providers to pass to ``onnxruntime.InferenceSession``.
    """
    available = list(available)
    if requested is None:
        if "CUDAExecutionProvider" in available:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]
    if isinstance(requested, str) or (
        isinstance(requested, tuple) and len(requested) == 2 and isinstance(requested[1], dict)
    ):
        requested = [requested]
    chosen = list(requested)
    if not chosen:
        raise ValueError(f"`providers` is empty; choose from the available ones: {available}.")
    for provider in chosen:
        name = provider[0] if isinstance(provider, tuple) else provider
        if name not in available:
            hint = (
                " CUDAExecutionProvider needs the onnxruntime-gpu package and a CUDA GPU."
                if name == "CUDAExecutionProvider"
                else ""
            )
            raise ValueError(
                f"Execution provider {name!r} is not available in this onnxruntime build; available: "
                f"{available}.{hint} Pass providers=None for the default."
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


class OnnxForecaster:
    """Forecast with a MIM model exported by ``MIMModel.to_onnx()``, without torch.

    Parameters
    ----------
    path
        The ``.onnx`` file written by :func:`darts_mim.onnx.export.export_model`.
    providers
        ONNX Runtime execution providers (see :func:`select_providers`). Default: CUDA then CPU when
        CUDA is available, else CPU.
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
        self.providers = select_providers(providers, ort.get_available_providers())
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
        self.path = path
        self.metadata = self._read_metadata(path)
        meta = self.metadata
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

    # ------------------------------------------------------------------ metadata
    def _read_metadata(self, path: str) -> dict[str, Any]:
        custom = self.session.get_modelmeta().custom_metadata_map
        if METADATA_PREFIX + "format_version" not in custom:
            raise ValueError(
                f"{path!r} is an ONNX model but was not written by darts-mim (no "
                f"'{METADATA_PREFIX}*' metadata). Export MIM models with MIMModel.to_onnx(); for "
                "other Darts models use darts.utils.onnx.run_onnx_prediction."
            )
        try:
            meta = {
                k[len(METADATA_PREFIX) :]: json.loads(v)
                for k, v in custom.items()
                if k.startswith(METADATA_PREFIX)
            }
        except json.JSONDecodeError as err:
            raise ValueError(f"{path!r} has corrupt darts-mim metadata: {err}.") from err
        if meta["format_version"] > FORMAT_VERSION:
            raise ValueError(
                f"{path!r} was written in darts-mim ONNX format {meta['format_version']}, newer than "
                f"this runtime's {FORMAT_VERSION}; upgrade darts-mim."
            )
        missing = [k for k in _REQUIRED_KEYS if k not in meta]
        if missing:
            raise ValueError(
                f"{path!r} lacks darts-mim metadata entries {missing}; export it again."
            )
        graph_inputs = [i.name for i in self.session.get_inputs()]
        if graph_inputs != meta["inputs"]:
            raise ValueError(
                f"{path!r}: the graph's inputs {graph_inputs} differ from its metadata's "
                f"{meta['inputs']}; export it again."
            )
        return meta

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

    def _check_series(self, series: TimeSeries, idx: int) -> None:
        expected = self.metadata["grid"]
        n_comp = len(self.components)
        grid = (series.metadata or {}).get(_GRID_KEY)
        grid_ok = grid is None or (
            list(grid["channels"]) == list(expected["channels"])
            and (grid["height"], grid["width"]) == (expected["height"], expected["width"])
        )
        if series.n_components != n_comp or not grid_ok:
            got = (
                f"a {len(grid['channels'])}x{grid['height']}x{grid['width']} grid with channels "
                f"{list(grid['channels'])}"
                if grid is not None
                else f"{series.n_components} components"
            )
            raise ValueError(
                f"The model was trained on a {len(expected['channels'])}x{expected['height']}x"
                f"{expected['width']} grid with channels {list(expected['channels'])} ({n_comp} "
                f"components) but `series` at index {idx} has {got}. Predict on series with the "
                "training grid and components."
            )
        if len(series) < self.input_chunk_length:
            raise ValueError(
                f"`series` at index {idx} has {len(series)} time steps but the model needs at least "
                f"input_chunk_length={self.input_chunk_length}."
            )

    def _check_covariates(self, cov: TimeSeries, kind: str, idx: int) -> None:
        info = self.metadata[kind]
        if cov.n_components != info["n_components"] or (
            info["components"] is not None and list(cov.components) != info["components"]
        ):
            names = info["components"] or f"{info['n_components']} components"
            raise ValueError(
                f"`{kind}` at index {idx} have components {list(cov.components)} but the model was "
                f"trained with {names}."
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
    ) -> dict[str, np.ndarray]:
        """One series' arrays in the layout of :meth:`predict_array` (no batch axis)."""
        icl, ocl, ocs = self.input_chunk_length, self.output_chunk_length, self.output_chunk_shift
        self._check_series(series, idx)
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
                raise ValueError(
                    "The model was trained with past covariates: pass `past_covariates` (one per "
                    "series) covering the input window"
                    + (" and the forecast horizon beyond output_chunk_length." if n > ocl else ".")
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
                raise ValueError(
                    "The model was trained with future covariates: pass `future_covariates` (one per "
                    "series) covering the input window and the forecast horizon."
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
        arr = np.asarray(past_target)
        grid = self.metadata["grid"]
        frame = (len(grid["channels"]), grid["height"], grid["width"])
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
                raise ValueError(f"The model was trained with {name}: pass `{name}`.")
            if used:
                info = self.metadata[name]
                shape = (batch, length, info["n_components"])
                if np.shape(value) != shape:
                    raise ValueError(f"`{name}` must have shape {shape}, got {np.shape(value)}.")
        if self.uses_static_covariates and static_covariates is None:
            raise ValueError("The model was trained with static covariates: pass them.")
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
            One series or a sequence of series with the training grid and components; at least
            ``input_chunk_length`` steps each. A stochastic series' first sample is read.
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
                    f"Got {len(value_l)} `{name}` for {len(series_l)} series: pass one per series."
                )
            covs[name] = value_l
        per_series = [
            self._series_inputs(
                i,
                s,
                covs["past_covariates"][i] if covs["past_covariates"] else None,
                covs["future_covariates"][i] if covs["future_covariates"] else None,
                n,
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
