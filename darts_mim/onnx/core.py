"""The array core of ONNX serving: Darts' autoregressive forecast loop and sampling on numpy arrays.

Shared by :class:`darts_mim.onnx.runtime.OnnxForecaster` (which adds ``TimeSeries`` slicing and
checks) and :mod:`darts_mim.onnx.service` (which serves JSON arrays). Like
:mod:`darts_mim.onnx.sampling` it imports numpy only, so that a serving process needs neither torch,
Darts nor pandas.

The graph is called through ``run``: a callable that takes the feeds (every name of
:data:`FEATURE_NAMES`, ``None`` where absent) and returns the graph's ``prediction``, float32
``(rows, output_chunk_length, components, nr_params)``. How it runs (providers, IO binding, casts to
the graph's dtype, dropping the feeds the graph does not take) is the caller's business.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from darts_mim.integrity import FLOAT32_RANGE_ADVICE, FLOAT32_SAFE_INPUT
from darts_mim.onnx.sampling import check_likelihood, draw

Runner = Callable[[dict[str, "np.ndarray | None"]], np.ndarray]


# ---------------------------------------------------------------------- checks
# The checks of OnnxForecaster.predict_array, shared with the service so that both answer bad input
# with the same words as MIMModel.predict (Darts' own messages where Darts has one).


def needs_covariates(kind: str, how: str) -> ValueError:
    """Darts' error for missing covariates, plus what to pass and why the ONNX paths differ here
    from ``MIMModel.predict``: Darts falls back on the covariates the model was fitted with, which
    an ONNX file does not store."""
    # static covariates travel with the series, in torch too: Darts has nothing to reuse there
    differs = (
        f" MIMModel.predict would reuse the `{kind}` given to fit; the ONNX file holds no "
        "covariates, so pass them."
        if kind in ("past_covariates", "future_covariates")
        else ""
    )
    return ValueError(
        f"This model has been trained with `{kind}`; some `{kind}` of matching dimensionality are "
        f"needed for prediction: pass `{kind}` (one per series) {how}.{differs}"
    )


def refuse_unused(inputs: list[str], **covariates: Any) -> None:
    """Darts' error for covariates given to a model trained without them (not ignore them)."""
    for kind, value in covariates.items():
        if value is not None and kind not in inputs:
            raise ValueError(
                f"This model has been trained without `{kind}`; No `{kind}` should be provided "
                "for prediction."
            )


def static_shape(meta: Mapping[str, Any]) -> tuple[int, int] | None:
    """``(rows, columns)`` of the static covariates the model was trained with (one row for global
    ones, one per component otherwise), from the file's ``static_covariates`` entry, else its
    ``static_covariates_shape`` (a model saved with ``clean=True`` keeps only the shape); ``None``
    for a model without them or a file that does not say."""
    if "inputs" in meta and "static_covariates" not in meta["inputs"]:
        return None
    static = meta.get("static_covariates")
    if static:
        return len(static["values"]), len(static["columns"])
    shape = meta.get("static_covariates_shape")
    return (int(shape[0]), int(shape[1])) if shape else None


def check_static_count(meta: Mapping[str, Any], rows: int, columns: int) -> None:
    """Darts' error (word for word, as ``MIMModel.predict`` raises it) for static covariates of
    ``rows`` x ``columns`` values where the model was trained with another number."""
    expected = static_shape(meta)
    if expected is not None and rows * columns != expected[0] * expected[1]:
        raise ValueError(
            "The provided `static_covariates` must have equal number of components as the "
            "`static_covariates` used to train the model. Received number of components: "
            f"`{rows * columns}`, expected: `{expected[0] * expected[1]}`."
        )
    if expected is not None:
        check_static_shape(expected, rows, columns)


def check_static_shape(expected: tuple[int, int], rows: int, columns: int) -> None:
    """Refuse static covariates of ``rows`` x ``columns`` where the model was trained with
    ``expected`` (rows, columns) of the same count (Darts compares counts only).

    MIM reads the rows: one row is broadcast to every component, one row per component is read
    per component. Per-component values (2 x 1) in a model of one row of two columns (1 x 2) would
    be read as the two columns, the second component's value as the first's second covariate;
    ``MIMModel.predict`` and ``OnnxForecaster.predict`` refuse them in these words.
    """
    if (rows, columns) == tuple(expected):
        return

    def layout(n_rows: int) -> str:
        return "one row for all components" if n_rows == 1 else "one row per component"

    raise ValueError(
        f"The provided `static_covariates` are {rows} row(s) x {columns} column(s) "
        f"({layout(rows)}), the `static_covariates` used to train the model {expected[0]} row(s) "
        f"x {expected[1]} column(s) ({layout(expected[0])}): their values would be read in the "
        "wrong places. Attach static covariates of the training shape "
        "(series.with_static_covariates())."
    )


def check_n(
    n: Any, output_chunk_length: int, output_chunk_shift: int, parameters: bool = False
) -> int:
    """``n`` as an int; ``parameters``: a likelihood model's parameters are asked for, which Darts
    limits to one output chunk."""
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
        raise ValueError(f"`n` must be a positive integer, got {n!r}.")
    ocl = output_chunk_length
    if parameters and n > ocl:
        raise ValueError(
            "`predict_likelihood_parameters=True` is only supported for `n` smaller than or "
            f"equal to `output_chunk_length` ({ocl}): parameters cannot be fed back "
            "autoregressively. Pass num_samples (or predict_likelihood_parameters=False) to "
            "draw samples that are."
        )
    if output_chunk_shift and n > ocl:
        raise ValueError(
            f"Cannot forecast n={n} > output_chunk_length={ocl} autoregressively with "
            f"output_chunk_shift={output_chunk_shift}; use n <= {ocl}."
        )
    return int(n)


def check_parameters_flag(predict_likelihood_parameters: Any) -> None:
    """Refuse a ``predict_likelihood_parameters`` that is not a boolean or ``None``: read for its
    truthiness, the string ``"false"`` (a client's mistake over JSON) would be true. Shared by
    :func:`resolve_sampling` and ``MIMModel.predict``, so both answer in the same words."""
    if predict_likelihood_parameters is not None and not isinstance(
        predict_likelihood_parameters, bool | np.bool_
    ):
        raise ValueError(
            "`predict_likelihood_parameters` must be a boolean (true or false in JSON, True or "
            f"False in Python) or None, got {predict_likelihood_parameters!r}."
        )


# The seeds numpy's RandomState takes, which Darts' torch models use (sklearn's check_random_state).
MAX_SEED = 2**32 - 1


def check_random_state(random_state: Any, generator_ok: bool = False) -> None:
    """Refuse a ``random_state`` that is not ``None`` or an integer seed in ``[0, 2**32 - 1]``
    (or, where ``generator_ok``, a ``numpy.random.Generator``). Unchecked, a float or a string
    stopped numpy with a ``TypeError`` on the ONNX paths, and sklearn with its own message on the
    torch path; a list seeded ONNX's generator and was refused by torch. Shared by
    ``MIMModel.predict``, ``OnnxForecaster`` and the services, so all answer in the same words.
    """
    if random_state is None or (generator_ok and isinstance(random_state, np.random.Generator)):
        return
    integral = isinstance(random_state, int | np.integer) and not isinstance(random_state, bool)
    if not integral or not 0 <= random_state <= MAX_SEED:
        raise ValueError(
            f"`random_state` must be None or an integer seed in [0, 2**32 - 1], got {random_state!r}."
        )


def check_num_samples(num_samples: Any) -> int:
    """``num_samples`` as an int; refuses anything but a positive integer (``2.0`` and ``True``
    included: torch stopped on them with a ``TypeError`` from ``tile()``). Shared by
    :func:`resolve_sampling` and ``MIMModel.predict``, so both answer in the same words."""
    integral = isinstance(num_samples, int | np.integer) and not isinstance(num_samples, bool)
    if not integral or num_samples < 1:
        raise ValueError(f"`num_samples` must be a positive integer, got {num_samples!r}.")
    return int(num_samples)


def resolve_sampling(
    likelihood: Mapping[str, Any] | None,
    num_samples: Any,
    predict_likelihood_parameters: bool | None,
) -> int | None:
    """What a call returns: ``None`` for the deterministic forecast or the likelihood parameters,
    else the number of samples to draw. Refuses what Darts refuses, in its words.

    ``predict_likelihood_parameters=None`` (the default) gives a likelihood model's parameters
    with ``num_samples=1`` (what the runtime returned before it could sample) and samples for
    ``num_samples > 1``; ``False`` draws samples, even one.
    """
    check_parameters_flag(predict_likelihood_parameters)
    num_samples = check_num_samples(num_samples)
    if predict_likelihood_parameters:
        if likelihood is None:
            raise ValueError(
                "`predict_likelihood_parameters=True` is only supported for probabilistic "
                "models fitted with a likelihood."
            )
        if num_samples != 1:
            raise ValueError(
                "`predict_likelihood_parameters=True` is only supported for `num_samples=1`, "
                f"received {num_samples}."
            )
        return None
    if likelihood is None:
        if num_samples > 1:
            raise ValueError("`num_samples > 1` is only supported for probabilistic models.")
        return None
    if predict_likelihood_parameters is None and num_samples == 1:
        return None
    check_likelihood(likelihood)
    return num_samples


def check_finite(
    values: np.ndarray,
    name: str,
    components: list[str] | None = None,
    skip: list[int] | None = None,
    unit: str = "step",
) -> None:
    """Refuse NaN or infinite values in an input array the graph reads, naming the first, and
    values beyond what float32 arithmetic holds (as ``MIMModel.predict`` refuses them).

    The array counterpart of :func:`darts_mim.validation.check_window_values` (the message of
    ``MIMModel.predict`` and ``OnnxForecaster.predict``): a gap in the input is the caller's to
    fill, not a forecast of NaN later blamed on the model's weights.

    Parameters
    ----------
    values
        ``(B, steps, components)`` numbers.
    name
        The argument's name, e.g. ``"past_target"``.
    components
        Names of the last axis' columns (a column beyond them is named by its index).
    skip
        Columns where NaN is allowed: the always-missing components, which the graph masks.
    unit
        What the middle axis counts, for the message (``"step"``, ``"row"``).

    Raises
    ------
    ValueError
        Naming how many values are bad and where the first is.
    """
    if values.dtype.kind == "O":
        try:  # numbers and None (a gap) in Python lists
            values = values.astype(np.float64)
        except (TypeError, ValueError):
            return  # not numbers: the cast before the graph names it
    if values.dtype.kind not in "fc":
        return  # integers and booleans hold no NaN
    bad = ~np.isfinite(values)
    if skip:
        bad[..., skip] = False
    with np.errstate(invalid="ignore"):
        huge = np.abs(values) > FLOAT32_SAFE_INPUT  # NaN compares False
    if not bad.any() and not huge.any():
        return

    def first(mask: np.ndarray) -> tuple[str, tuple[int, int, int]]:
        b, t, c = np.unravel_index(int(np.argmax(mask)), mask.shape)
        column = repr(components[c]) if components is not None and c < len(components) else str(c)
        at = f"{unit} {t}" + (f" (of {mask.shape[1]}, 0 the oldest)" if unit == "step" else "")
        return f"{at} of series {b}, component {column}", (b, t, c)

    if bad.any():
        at, _ = first(bad)
        where = " in the window the forecast reads" if unit == "step" else ""
        raise ValueError(
            f"`{name}` contains NaN or infinite values{where}: {int(bad.sum())} value(s), the "
            f"first at {at}. Fill the gaps first (e.g. darts.utils.missing_values."
            "fill_missing_values; over HTTP, a JSON null is such a gap)."
        )
    at, index = first(huge)
    raise ValueError(
        f"`{name}` reaches |x| = {float(np.abs(values[index])):.3g} at {at}, {FLOAT32_RANGE_ADVICE}"
    )


def covariate_lengths(
    n: int, input_chunk_length: int, output_chunk_length: int, output_chunk_shift: int
) -> dict[str, int]:
    """How many steps of each kind of covariates a forecast of ``n`` steps reads, from the first
    step of the input window: the past covariates of the window and of the autoregressive part of
    the horizon, the future covariates from the window's start to the last step of the output.
    The one rule of :func:`check_arrays`, ``OnnxForecaster`` and ``MIMModel.predict``'s checks."""
    icl, ocl, ocs = input_chunk_length, output_chunk_length, output_chunk_shift
    return {
        "past_covariates": icl + max(0, n - ocl),
        "future_covariates": icl + ocs + max(n, ocl),
    }


def check_arrays(
    meta: Mapping[str, Any],
    frame: tuple[int, ...],
    past_target: Any,
    n: int,
    past_covariates: Any = None,
    future_covariates: Any = None,
    static_covariates: Any = None,
) -> tuple[np.ndarray, bool, dict[str, np.ndarray | None]]:
    """Check and shape :meth:`OnnxForecaster.predict_array`'s inputs.

    Parameters
    ----------
    meta
        The file's metadata (:func:`darts_mim.onnx.format.read_metadata`).
    frame
        The grid's ``(C, H, W)``.
    past_target, n, past_covariates, future_covariates, static_covariates
        As ``predict_array`` takes them (``n`` checked already).

    Returns
    -------
    tuple
        ``past_target`` as ``(B, input_chunk_length, D)``; whether it was 5-d; the covariates the
        graph takes, as arrays (``None`` for the others).
    """
    inputs = meta["inputs"]
    refuse_unused(
        inputs,
        past_covariates=past_covariates,
        future_covariates=future_covariates,
        static_covariates=static_covariates,
    )
    icl, ocl = meta["input_chunk_length"], meta["output_chunk_length"]
    ocs, n_components = meta["output_chunk_shift"], len(meta["components"])
    arr = np.asarray(past_target)
    five_d = arr.ndim == 5
    if five_d:
        if tuple(arr.shape[2:]) != tuple(frame):
            raise ValueError(f"`past_target` frames are {arr.shape[2:]}, the model's {frame}.")
        arr = arr.reshape(arr.shape[0], arr.shape[1], int(np.prod(frame)))  # -1: not for B = 0
    if arr.ndim != 3 or arr.shape[1:] != (icl, n_components):
        raise ValueError(
            f"`past_target` must be (B, {icl}, {n_components}) or (B, {icl}, "
            f"{', '.join(map(str, frame))}), got {np.shape(past_target)}."
        )
    if arr.shape[0] == 0:  # else numpy's "need at least one array to concatenate", later
        raise ValueError(
            f"`past_target` holds no window (shape {np.shape(past_target)}): pass at least one, "
            f"(B, {icl}, {n_components}) or (B, {icl}, {', '.join(map(str, frame))}) with B >= 1."
        )
    # NaN only where the graph masks it (the components missing at every training step): a gap
    # elsewhere would be forecast as NaN and then blamed on the weights.
    check_finite(arr, "past_target", meta["components"], meta.get("missing_components"))
    batch = arr.shape[0]
    lengths = covariate_lengths(n, icl, ocl, ocs)
    given = {
        "past_covariates": past_covariates,
        "future_covariates": future_covariates,
        "static_covariates": static_covariates,
    }
    out: dict[str, np.ndarray | None] = dict.fromkeys(given)
    for name, length in lengths.items():
        if name not in inputs:
            continue
        value = given[name]
        if value is None:
            raise needs_covariates(name, f"of shape (B, {length}, K)")
        shape = (batch, length, meta[name]["n_components"])
        if np.shape(value) != shape:
            raise ValueError(f"`{name}` must have shape {shape}, got {np.shape(value)}.")
        out[name] = np.asarray(value)
        check_finite(out[name], name, (meta[name] or {}).get("components"))
    if "static_covariates" in inputs:
        if static_covariates is None:
            raise needs_covariates("static_covariates", "of shape (B, rows, S)")
        value = np.asarray(static_covariates)
        # Checked here rather than left to onnxruntime, whose InvalidArgument names no fix.
        expected = static_shape(meta)
        if value.ndim != 3 or value.shape[0] != batch:
            raise ValueError(
                f"`static_covariates` must have shape ({batch}, rows, S) (one row per component, "
                f"or one for all), got {value.shape}."
            )
        if expected is not None and value.shape[1:] != expected:
            rows, cols = expected
            raise ValueError(
                f"`static_covariates` must have shape {(batch, rows, cols)}: the model was trained "
                f"with {cols} static covariate column(s) in {rows} row(s); got {value.shape}. Pass "
                "the static covariates the model was fitted with."
            )
        check_finite(value, "static_covariates", unit="row")
        out["static_covariates"] = value
    return arr, five_d, out


def _chunk_loop(
    run: Runner,
    past_target: np.ndarray,
    n: int,
    icl: int,
    ocl: int,
    ocs: int,
    past_covariates: np.ndarray | None,
    future_covariates: np.ndarray | None,
    static_covariates: np.ndarray | None,
    feedback: Callable[[np.ndarray], np.ndarray] | None,
) -> np.ndarray:
    """Darts' ``_get_batch_prediction`` on arrays.

    ``feedback`` turns the graph's ``(rows, ocl, D, P)`` output into the ``(rows, ocl, D)`` values
    forecast and fed back (the value itself, or one draw per row from the likelihood); ``None``
    returns the first call's parameters, ``(rows, n, D, P)``.
    """
    pt = np.array(past_target, dtype=np.float32)
    pc = fpc = hfc = fc = None
    if past_covariates is not None:
        pc, fpc = np.array(past_covariates[:, :icl]), past_covariates[:, icl:]
    if future_covariates is not None:
        hfc, fc = np.array(future_covariates[:, :icl]), future_covariates[:, icl + ocs :]

    def call(fc_slice: np.ndarray | None) -> np.ndarray:
        return run(
            {
                "past_target": pt,
                "past_covariates": pc,
                "historic_future_covariates": hfc,
                "future_covariates": fc_slice,
                "static_covariates": static_covariates,
            }
        )

    raw = call(None if fc is None else fc[:, :ocl])
    if feedback is None:
        return raw[:, :n]
    out = feedback(raw)
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
        out = feedback(call(None if fc is None else fc[:, right : right + ocl]))
        chunks.append(out)
        done += ocl
    return np.concatenate(chunks, axis=1)[:, :n]


def forecast(
    run: Runner,
    past_target: np.ndarray,
    n: int,
    *,
    input_chunk_length: int,
    output_chunk_length: int,
    output_chunk_shift: int = 0,
    likelihood: Mapping[str, Any] | None = None,
    past_covariates: np.ndarray | None = None,
    future_covariates: np.ndarray | None = None,
    static_covariates: np.ndarray | None = None,
    num_samples: int | None = None,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Forecast ``n`` steps for a batch of input windows, at most ``batch_size`` rows per graph call.

    Parameters
    ----------
    run
        Calls the graph (see the module docstring).
    past_target
        ``(B, input_chunk_length, D)``.
    n
        Horizon; beyond ``output_chunk_length`` autoregressive (checked by the caller: not with
        ``output_chunk_shift``, nor when forecasting likelihood parameters).
    input_chunk_length, output_chunk_length, output_chunk_shift
        The model's.
    likelihood
        The file's ``likelihood`` metadata entry, ``None`` for a deterministic model.
    past_covariates, future_covariates, static_covariates
        As :meth:`darts_mim.onnx.runtime.OnnxForecaster.predict_array` takes them.
    num_samples
        ``None``: the deterministic forecast, or a likelihood model's parameters (``n <=
        output_chunk_length``). An integer: that many sample paths per window, drawn from the
        likelihood; each path feeds its own draws back beyond ``output_chunk_length``, as Darts
        does.
    rng
        The one generator the whole batch draws from, when ``seed`` is ``None`` (default: a fresh
        unseeded one).
    seed
        Each window draws from its own generator seeded with it: a window's samples are then those
        it gets alone, whatever the other windows of the batch, its position and ``batch_size``.
    batch_size
        Largest number of rows (windows times samples) per graph call.

    Returns
    -------
    numpy.ndarray
        float32 ``(B, n, D)`` deterministic; ``(B, n, D, nr_params)`` parameters; ``(B, n, D,
        num_samples)`` samples.
    """
    icl, ocl, ocs = input_chunk_length, output_chunk_length, output_chunk_shift
    batch = past_target.shape[0]
    inputs = {
        "past_target": past_target,
        "past_covariates": past_covariates,
        "future_covariates": future_covariates,
        "static_covariates": static_covariates,
    }
    if num_samples is not None:
        check_likelihood(likelihood)
        if seed is not None:
            rngs = [np.random.default_rng(seed) for _ in range(batch)]

            def feedback(raw: np.ndarray) -> np.ndarray:
                # Window b's rows (b, B + b, ...: sample-major) from its own generator, all its
                # samples of a chunk in one draw: what it draws alone.
                out = np.empty(raw.shape[:-1], dtype=np.float32)
                for b, own in enumerate(rngs):
                    out[b::batch] = draw(likelihood, raw[b::batch], own)
                return out

        else:
            shared = np.random.default_rng() if rng is None else rng

            def feedback(raw: np.ndarray) -> np.ndarray:
                return draw(likelihood, raw, shared).astype(np.float32)

        # Sample-major rows, as Darts tiles a batch: row s * B + b is sample s of window b.
        inputs = {
            k: None if v is None else np.concatenate([v] * num_samples, axis=0)
            for k, v in inputs.items()
        }
    elif likelihood is None:

        def feedback(raw: np.ndarray) -> np.ndarray:
            return raw[..., 0]

    else:
        feedback = None  # parameters
    step = max(1, int(batch_size))

    def run_in_parts(feeds: dict[str, np.ndarray | None]) -> np.ndarray:
        # Every row advances chunk by chunk together, the graph called on at most `step` rows at
        # a time: the draws of a chunk are then made over all rows at once, in the same order
        # whatever `batch_size` (each part running its own loop drew them part by part).
        rows = feeds["past_target"].shape[0]
        if rows <= step:
            return run(feeds)
        return np.concatenate(
            [
                run({k: None if v is None else v[lo : lo + step] for k, v in feeds.items()})
                for lo in range(0, rows, step)
            ],
            axis=0,
        )

    out = _chunk_loop(
        run_in_parts,
        inputs["past_target"],
        n,
        icl,
        ocl,
        ocs,
        inputs["past_covariates"],
        inputs["future_covariates"],
        inputs["static_covariates"],
        feedback,
    )
    if num_samples is not None:
        # (K * B, n, D) -> (B, n, D, K)
        out = np.moveaxis(out.reshape((num_samples, batch) + out.shape[1:]), 0, -1)
    return out
