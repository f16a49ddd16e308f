"""Input checks shared by the model, the ONNX runtime and the command line.

Each check raises a ``ValueError`` that says what is wrong, where, and how to fix it: bad data must fail
loudly here rather than become a confident forecast.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from darts import TimeSeries

from darts_mim.anchor import check_naive_anchor
from darts_mim.grid import GridLayout, GridSpec, always_missing_cells, grid_spec_of
from darts_mim.integrity import FLOAT32_RANGE_ADVICE, FLOAT32_SAFE_INPUT
from darts_mim.onnx.core import covariate_lengths
from darts_mim.options import CELL_TYPES, DIFF_MODES


def check_target_grid(series: Sequence[TimeSeries], grid_shape: Sequence[int] | None) -> GridSpec:
    """The grid shared by all target series: from ``grid_shape``, else their metadata, else 1x1.

    Parameters
    ----------
    series
        The target series (at least one).
    grid_shape
        ``(C, H, W)`` or ``(H, W)`` given by the user, or ``None``.

    Raises
    ------
    ValueError
        When ``grid_shape`` does not fit the series' components, or contradicts the grid metadata
        of a series that carries it (another height, width or channel count).
    """
    if not series:
        raise ValueError("Got no target series.")
    first = series[0]
    n_comp = first.n_components
    if grid_shape is not None:
        dims = [int(g) for g in grid_shape]
        height, width = dims[-2], dims[-1]
        if n_comp % (height * width):
            raise ValueError(
                f"The series has {n_comp} components, which is not a multiple of the {height}x{width} "
                f"grid's {height * width} cells. Check `grid_shape` (components must be channel-major: "
                "all cells of channel 0, then channel 1, ...)."
            )
        channels = n_comp // (height * width)
        if len(dims) == 3 and dims[0] != channels:
            raise ValueError(
                f"grid_shape={tuple(dims)} needs {dims[0] * height * width} components, the series has "
                f"{n_comp}."
            )
        # A series that carries its grid has the final word: a grid_shape that reads the same
        # components as another grid would train on scrambled neighbourhoods (other H x W) or
        # under other channel names, silently.
        for i, s in enumerate(series):
            meta = grid_spec_of(s)
            if meta is not None and meta.shape != (channels, height, width):
                what = "the series" if len(series) == 1 else f"the series at index {i}"
                raise ValueError(
                    f"grid_shape={tuple(dims)} (C, H, W = {channels}, {height}, {width}) contradicts "
                    f"the grid metadata: {what} is a {meta.describe()}, (C, H, W) = {meta.shape}. "
                    "Drop `grid_shape` (the metadata already gives the grid) or fix it to "
                    f"{meta.shape}."
                )
        meta_spec = grid_spec_of(first)
        names = (
            meta_spec.channels
            if meta_spec is not None
            else tuple(f"ch{i}" for i in range(channels))
        )
        spec = GridSpec(names, height, width)
    else:
        spec = grid_spec_of(first) or GridSpec(tuple(first.components), 1, 1)
    for s in series[1:]:
        other = grid_spec_of(s)
        if s.n_components != n_comp or (other is not None and grid_shape is None and other != spec):
            raise ValueError(
                f"All target series must share one grid: got {n_comp} and {s.n_components} components"
                f" ({spec} vs {other})."
            )
    return spec


def check_series_dtype(series: TimeSeries, name: str) -> None:
    """Reject a series whose values are not float32 or float64."""
    dtype = series.all_values(copy=False).dtype
    if dtype not in (np.float32, np.float64):
        raise ValueError(
            f"`{name}` has dtype {dtype}; MIMModel takes float32 or float64 series. Convert with "
            "series.astype(np.float32)."
        )


def check_series_values(
    series: TimeSeries, name: str, allowed_nan_components: Sequence[int] | None = None
) -> None:
    """Reject non-float dtypes, NaN (outside always-missing components) and infinite values."""
    check_series_dtype(series, name)
    values = series.all_values(copy=False)
    bad_inf = np.isinf(values)
    bad_nan = np.isnan(values)
    if allowed_nan_components:
        bad_nan[:, list(allowed_nan_components), :] = False
    for bad, what, fix in (
        (
            bad_nan,
            "NaN",
            "Fill the gaps first (e.g. darts.utils.missing_values.fill_missing_values); components that "
            "are NaN at every step of the training series (such as land cells) are supported and masked",
        ),
        (bad_inf, "infinite values", "Replace or clip them before fitting or predicting"),
    ):
        if bad.any():
            t_idx, c_idx, _ = np.argwhere(bad)[0]
            raise ValueError(
                f"`{name}` contains {what}: {int(bad.sum())} value(s), the first at time "
                f"{series.time_index[t_idx]} in component {series.components[c_idx]!r}. {fix}."
            )


def series_list(value: object, name: str) -> list[TimeSeries] | None:
    """``value`` (a series or a sequence of series) as a list, ``None`` as ``None``.

    The one check of ``MIMModel.predict`` and ``OnnxForecaster.predict``: Darts read ``[g, None]``
    or a numpy array until an ``AttributeError`` deep inside it.

    Parameters
    ----------
    value
        What was passed as ``name``.
    name
        The argument, for the message (``"series"``, ``"past_covariates"``...).

    Raises
    ------
    ValueError
        When ``value`` is neither a ``TimeSeries`` nor a sequence of them.
    """
    if value is None:
        return None
    if isinstance(value, TimeSeries):
        return [value]
    try:
        items = list(value)
    except TypeError:  # not iterable: a number, say
        items = None
    if items is None or not all(isinstance(item, TimeSeries) for item in items):
        raise ValueError(f"`{name}` must be a TimeSeries or a sequence of TimeSeries.")
    return items


def check_some_series(series: Sequence[TimeSeries]) -> None:
    """Refuse an empty sequence of series to forecast (Darts: an ``IndexError``)."""
    if not series:
        raise ValueError("Got no series to forecast.")


def _freq_name(freq: object) -> str:
    if isinstance(freq, int | np.integer):
        return f"{int(freq)} (an integer index)"
    return repr(pd.tseries.frequencies.to_offset(freq).freqstr)


def _same_freq(a: object, b: object) -> bool:
    """Whether two frequencies (pandas offsets, their strings, or integer steps) are one."""
    a_int, b_int = isinstance(a, int | np.integer), isinstance(b, int | np.integer)
    if a_int or b_int:
        return a_int and b_int and int(a) == int(b)
    try:
        return pd.tseries.frequencies.to_offset(a) == pd.tseries.frequencies.to_offset(b)
    except (TypeError, ValueError):
        return False


def check_fold_freq(freq: object, trained_freq: object, fold: int, what: str) -> None:
    """Refuse a series of another frequency than the training series' for a model that folds
    ``fold`` steps into each frame (``fold_period``).

    A folded model reads each frame as one period of the training frequency (24 hourly steps: a
    day); 24 steps of 30 minutes or of days are another span of time, forecast without a word.
    Unfolded models are not checked (nor are Darts' own). The one check of ``MIMModel.predict``
    and ``OnnxForecaster.predict``.

    Parameters
    ----------
    freq
        The series' frequency (``series.freq``).
    trained_freq
        The training series' (a pandas offset, its string as the ONNX metadata keeps it, or an
        integer step); ``None`` when unknown, which is not checked.
    fold
        Steps per frame (1: not folded).
    what
        How to name the series in the message (see :func:`input_name`).

    Raises
    ------
    ValueError
        Naming both frequencies and the fold, and how to fix it.
    """
    if fold <= 1 or trained_freq is None or _same_freq(freq, trained_freq):
        return
    try:
        trained = _freq_name(trained_freq)
    except (TypeError, ValueError):  # not a frequency pandas reads: unknown, as None
        return
    resample = (
        f" (e.g. series.resample({pd.tseries.frequencies.to_offset(trained_freq).freqstr!r}))"
        if not isinstance(trained_freq, int | np.integer)
        else ""
    )
    raise ValueError(
        f"{what} has frequency {_freq_name(freq)}, but this model folds {fold} steps of frequency "
        f"{trained} into each frame (fold_period): at another frequency a frame would span "
        f"another stretch of time. Resample the series to {trained}{resample}, or fit a model on "
        "its frequency."
    )


def input_name(kind: str, idx: int, count: int) -> str:
    """How forecast inputs are named in messages: ``"`series`"`` for a single series,
    ``"`past_covariates` at index 2"`` in a sequence of ``count``."""
    return f"`{kind}`" if count == 1 else f"`{kind}` at index {idx}"


def check_deterministic(series: TimeSeries, what: str) -> None:
    """Refuse a stochastic series (several samples) as the input of a forecast.

    The one check shared by ``MIMModel.predict`` and ``OnnxForecaster.predict``. Darts' torch
    inference would draw one of the samples at random on every call (a different forecast each
    time) and the ONNX runtime would read the first: neither is the observed history the model
    was trained to continue.

    Parameters
    ----------
    series
        A target or covariate series given to ``predict``.
    what
        How to name it in the message (see :func:`input_name`).

    Raises
    ------
    ValueError
        When ``series`` has more than one sample.
    """
    if series.n_samples > 1:
        raise ValueError(
            f"{what} is stochastic: it has {series.n_samples} samples, but the model reads one "
            "observed history. Pass a deterministic series, such as `series.mean()` or "
            "`series.median()` (e.g. for an ensemble forecast fed back in)."
        )


def check_deterministic_inputs(
    series: Sequence[TimeSeries] | None,
    past_covariates: Sequence[TimeSeries] | None,
    future_covariates: Sequence[TimeSeries] | None,
) -> None:
    """:func:`check_deterministic` on every series and covariate series of a forecast call
    (``predict``, ``historical_forecasts``), each named as :func:`input_name` names it; items that
    are not series are left to Darts' own checks."""
    for kind, group in (
        ("series", series),
        ("past_covariates", past_covariates),
        ("future_covariates", future_covariates),
    ):
        items = group or []
        for i, s in enumerate(items):
            if isinstance(s, TimeSeries):
                check_deterministic(s, input_name(kind, i, len(items)))


def check_window_values(
    values: np.ndarray, what: str, times: Sequence, components: Sequence[str]
) -> None:
    """Refuse NaN or infinite values among the steps a forecast reads, and values beyond what
    float32 arithmetic holds (:data:`~darts_mim.integrity.FLOAT32_SAFE_INPUT`).

    The one message of ``MIMModel.predict`` and ``OnnxForecaster.predict``: values outside the
    input window (and the covariate steps the forecast reads) are never read, so a gap there is
    no error.

    Parameters
    ----------
    values
        ``(steps, components)``: what the forecast reads (always-missing components left out).
    what
        How to name the series in the message, e.g. ``"`series` at index 0"``.
    times, components
        The time of each row and the name of each column of ``values``, for the message.

    Raises
    ------
    ValueError
        Naming the first bad value's time and component.
    """
    bad = ~np.isfinite(values)
    if bad.any():
        t, c = np.argwhere(bad)[0]
        raise ValueError(
            f"{what} contains NaN or infinite values in the window the forecast reads: "
            f"{int(bad.sum())} value(s), the first at time {times[t]} in component "
            f"{components[c]!r}. Fill the gaps first (e.g. "
            "darts.utils.missing_values.fill_missing_values)."
        )
    huge = np.abs(values) > FLOAT32_SAFE_INPUT
    if huge.any():
        t, c = np.argwhere(huge)[0]
        raise ValueError(
            f"{what} reaches |x| = {float(np.abs(values[t, c])):.3g} at time {times[t]} in "
            f"component {components[c]!r}, {FLOAT32_RANGE_ADVICE}"
        )


class Window(NamedTuple):
    """The steps of one input series that a forecast reads (see :func:`prediction_windows`)."""

    kind: str  # "series", "past_covariates" or "future_covariates"
    idx: int  # of the target series it belongs to
    times: Sequence
    values: np.ndarray  # (steps, components), the first sample
    components: Sequence[str]


def prediction_windows(
    series: Sequence[TimeSeries],
    past_covariates: Sequence[TimeSeries] | None,
    future_covariates: Sequence[TimeSeries] | None,
    n: int,
    *,
    input_chunk_length: int,
    output_chunk_length: int,
    output_chunk_shift: int,
) -> Iterator[Window]:
    """The steps a forecast of ``n`` steps reads: the last ``input_chunk_length`` steps of each
    target series, and of its covariates those given by :func:`darts_mim.onnx.core.covariate_lengths` (as far as they
    reach). A series too short for the input window, and covariates at another frequency or on
    another kind of index, are skipped: Darts refuses them with its own message.

    Parameters
    ----------
    series
        The target series.
    past_covariates, future_covariates
        One per target series, or ``None``.
    n
        The forecast horizon.
    input_chunk_length, output_chunk_length, output_chunk_shift
        The model's.
    """
    icl = input_chunk_length
    lengths = covariate_lengths(n, icl, output_chunk_length, output_chunk_shift)
    for idx, s in enumerate(series):
        if len(s) < icl:
            continue
        yield Window(
            "series", idx, s.time_index[-icl:], s.values(copy=False)[-icl:], list(s.components)
        )
        start = s.time_index[-icl]
        for kind, covs in (
            ("past_covariates", past_covariates),
            ("future_covariates", future_covariates),
        ):
            if not covs or idx >= len(covs):
                continue
            cov = covs[idx]
            if cov.has_datetime_index != s.has_datetime_index or cov.freq != s.freq:
                continue
            end = start + (lengths[kind] - 1) * s.freq
            read = (cov.time_index >= start) & (cov.time_index <= end)
            yield Window(
                kind,
                idx,
                cov.time_index[read],
                cov.values(copy=False)[read],
                list(cov.components),
            )


def covariate_grid_message(what: str, cov_spec: GridSpec, target: GridSpec, fix: str) -> str:
    """The one wording of a covariate gridded on other cells than the target, at fit and predict."""
    return (
        f"{what} are gridded on {cov_spec.height}x{cov_spec.width} but the target grid is "
        f"{target.height}x{target.width}; {fix}."
    )


def check_covariate_grid(cov: TimeSeries, target: GridSpec, grid_channels: int, what: str) -> None:
    """Refuse covariates gridded on other cells than the grid the model was fitted on.

    The one check shared by ``MIMModel.predict`` and ``OnnxForecaster.predict``, refusing what
    ``fit`` refuses (:func:`resolve_layout`): the forecast would otherwise read the covariate's
    values on the wrong cells without a word, since both paths count only components (an 8x14 grid
    has as many as a 14x8 one). Covariates without grid metadata (or on a 1x1 grid) are plain and
    pass, as do gridded ones on the target's cells; their component count is checked afterwards.

    Parameters
    ----------
    cov
        A past or future covariate series given to ``predict``.
    target
        The target grid the model was fitted on.
    grid_channels
        The gridded channels of this kind of covariates at fit (0: plain covariates), which choose
        the advice given.
    what
        How to name the covariates in the message (see :func:`input_name`).

    Raises
    ------
    ValueError
        When ``cov`` carries grid metadata of more than one cell that differs from ``target``'s
        ``height x width``.
    """
    cov_spec = grid_spec_of(cov)
    if cov_spec is None or cov_spec.n_cells == 1:
        return
    if (cov_spec.height, cov_spec.width) == (target.height, target.width):
        return
    if grid_channels:
        fix = f"regrid them onto the {target.height}x{target.width} target grid, as at fit"
    else:
        fix = (
            "the model was fitted with plain (non-gridded) covariates, which are broadcast to "
            "every cell: pass them as at fit"
        )
    raise ValueError(covariate_grid_message(what, cov_spec, target, fix))


def check_prediction_inputs(
    series: Sequence[TimeSeries],
    past_covariates: Sequence[TimeSeries] | None,
    future_covariates: Sequence[TimeSeries] | None,
    n: int,
    *,
    input_chunk_length: int,
    output_chunk_length: int,
    output_chunk_shift: int,
    missing: Sequence[int] | None,
) -> None:
    """The value checks of ``MIMModel.predict``, as ``OnnxForecaster.predict`` makes them.

    Each series and covariate series must be deterministic (:func:`check_deterministic`) and of a
    float dtype; the steps the forecast reads (:func:`prediction_windows`; the target's
    always-missing components left out) must be finite (:func:`check_window_values`). Gaps
    elsewhere are never read and pass.

    Parameters
    ----------
    series
        The target series.
    past_covariates, future_covariates
        One per target series, or ``None``: only those the model uses.
    n
        The forecast horizon.
    input_chunk_length, output_chunk_length, output_chunk_shift
        The model's.
    missing
        Indices of the target components that were missing at every training step.
    """
    check_deterministic_inputs(series, past_covariates, future_covariates)
    for kind, group in (
        ("series", series),
        ("past_covariates", past_covariates),
        ("future_covariates", future_covariates),
    ):
        for s in group or []:
            check_series_dtype(s, kind)
    for window in prediction_windows(
        series,
        past_covariates,
        future_covariates,
        n,
        input_chunk_length=input_chunk_length,
        output_chunk_length=output_chunk_length,
        output_chunk_shift=output_chunk_shift,
    ):
        values, components = window.values, window.components
        if window.kind == "series" and missing:
            keep = np.ones(values.shape[1], dtype=bool)
            keep[list(missing)] = False
            values, components = (
                values[:, keep],
                [c for c, k in zip(components, keep, strict=True) if k],
            )
        check_window_values(
            values, f"`{window.kind}` at index {window.idx}", window.times, components
        )


# Training options that MIMModel took before 0.6 and TrainingRecipe holds since.
MOVED_TO_RECIPE = {
    "sampling_schedule": "sampling_schedule",
    "sampling_start": "sampling_start",
    "sampling_decay_steps": "sampling_decay_steps",
    "activation_checkpointing": "activation_checkpointing",
    "input_window_loss": "input_window_loss",
    "lr_schedule": "lr_schedule",
    "early_stopping_patience": "early_stopping_patience",
    "cuda_graphs": "cuda_graphs",
}


def _is_integer(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_training_sizes(params: dict) -> None:
    """Clear errors for Darts' training sizes, which Darts takes as they are: ``batch_size=0``
    failed in the first data loader, a negative ``n_epochs`` trained until interrupted
    (Lightning's ``max_epochs=-1``), and a fractional one or a string reached Lightning.

    Parameters
    ----------
    params
        The model's arguments (``MIMModel.model_params``); one not given has Darts' default.

    Raises
    ------
    ValueError
        Naming the parameter and the value: ``batch_size`` not a positive integer, ``n_epochs`` not
        an integer >= 0 (0 builds the network without training it, as in Darts), or
        ``nr_epochs_val_period`` neither a positive integer nor ``None``.
    """
    batch_size = params.get("batch_size", 32)
    if not _is_integer(batch_size) or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive integer (training samples per step), got "
            f"{batch_size!r}."
        )
    n_epochs = params.get("n_epochs", 100)
    if not _is_integer(n_epochs) or n_epochs < 0:
        raise ValueError(
            "`n_epochs` must be an integer >= 0 (0 builds the network without training it), got "
            f"{n_epochs!r}."
        )
    period = params.get("nr_epochs_val_period", 1)
    if period is not None and (not _is_integer(period) or period < 1):
        raise ValueError(
            "`nr_epochs_val_period` must be a positive integer (epochs between validation "
            f"scores), got {period!r}."
        )


def check_accelerator(trainer_params: dict) -> None:
    """Refuse a GPU accelerator that torch cannot see, before Lightning fails on it in its own
    words ("No supported gpu backend found!").

    Parameters
    ----------
    trainer_params
        The Lightning ``Trainer``'s arguments (``pl_trainer_kwargs`` and Darts' own). Only the
        strings ``"gpu"`` and ``"cuda"`` are checked: ``"auto"`` falls back to the CPU by itself,
        and an ``Accelerator`` object is Lightning's to check.

    Raises
    ------
    ValueError
        When ``accelerator`` is ``"cuda"`` and ``torch.cuda.is_available()`` is ``False``, or
        ``"gpu"`` and neither CUDA nor Apple's MPS (which Lightning also takes for ``"gpu"``) is
        available.
    """
    import torch

    accelerator = trainer_params.get("accelerator")
    if not isinstance(accelerator, str) or accelerator.lower() not in ("gpu", "cuda"):
        return
    if torch.cuda.is_available():
        return
    mps = getattr(torch.backends, "mps", None)
    if accelerator.lower() == "gpu" and mps is not None and mps.is_available():
        return
    raise ValueError(
        f"pl_trainer_kwargs={{'accelerator': {accelerator!r}}} asks for a GPU, but no CUDA GPU is "
        "visible to torch (torch.cuda.is_available() is False: a CPU-only torch build, no NVIDIA "
        "driver, or CUDA_VISIBLE_DEVICES hides the devices). Use accelerator='auto' (falls back to "
        "the CPU) or accelerator='cpu'; a model trained on a GPU loads for the CPU with "
        "MIMModel.load(path, pl_trainer_kwargs={'accelerator': 'cpu'}, map_location='cpu')."
    )


def check_hyper_parameters(params: dict) -> None:
    """Clear errors for hyper-parameters that would fail deep inside the network, and for the
    training options that moved into :class:`darts_mim.TrainingRecipe`."""
    for old, new in MOVED_TO_RECIPE.items():
        if old in params:
            raise ValueError(
                f"`{old}` is a field of the training recipe since darts-mim 0.6: pass "
                f"`training_recipe=TrainingRecipe({new}=...)` (from darts_mim import TrainingRecipe)."
            )
    if "precision" in params:
        raise ValueError(
            "`precision` is no longer a MIMModel parameter since darts-mim 0.6: pass Lightning's "
            "precision as `pl_trainer_kwargs={'precision': ...}` (as for any Darts model), or "
            "`training_recipe=TrainingRecipe(bf16_autocast=True)` for what precision='auto' did."
        )

    def positive_int(name: str, value, minimum: int = 1) -> None:
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
            raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")

    positive_int("input_chunk_length", params["input_chunk_length"])
    positive_int("output_chunk_length", params["output_chunk_length"])
    positive_int("output_chunk_shift", params.get("output_chunk_shift", 0), minimum=0)
    check_training_sizes(params)
    num_hidden = params.get("num_hidden", (32, 32))
    if (
        not isinstance(num_hidden, Sequence | np.ndarray)
        or isinstance(num_hidden, str)
        or not len(num_hidden)
    ):
        raise ValueError(
            f"`num_hidden` must be a sequence of layer widths, e.g. (64, 64, 64, 64); got {num_hidden!r}."
        )
    for width in num_hidden:
        positive_int("num_hidden entries", width)
    filter_size = params.get("filter_size", 5)
    positive_int("filter_size", filter_size)
    if filter_size % 2 == 0:
        raise ValueError(f"`filter_size` must be odd (same padding), got {filter_size}.")
    positive_int("patch_size", params.get("patch_size", 1))
    if params.get("diff_mode", "cascade") not in DIFF_MODES:
        raise ValueError(f"`diff_mode` must be one of {DIFF_MODES}, got {params['diff_mode']!r}.")
    if params.get("cell_type", "mim") not in CELL_TYPES:
        raise ValueError(f"`cell_type` must be one of {CELL_TYPES}, got {params['cell_type']!r}.")
    check_naive_anchor(params.get("naive_anchor", "auto"))
    fold = params.get("fold_period", "auto")
    if fold not in ("auto", None) and (
        isinstance(fold, bool) or not isinstance(fold, int | np.integer) or fold < 2
    ):
        raise ValueError(
            f"`fold_period` must be 'auto', None or an integer period >= 2, got {fold!r}."
        )
    if fold not in ("auto", None) and fold > params["input_chunk_length"]:
        raise ValueError(
            f"fold_period={fold} is longer than input_chunk_length={params['input_chunk_length']}: "
            "the input must hold at least one whole period."
        )
    if params.get("channel_independent", "auto") not in ("auto", True, False):
        raise ValueError(
            "`channel_independent` must be 'auto', True or False, got "
            f"{params['channel_independent']!r}."
        )
    rin = params.get("use_reversible_instance_norm", "auto")
    if not (rin in ("auto", True, False) or isinstance(rin, dict)):
        raise ValueError(
            "`use_reversible_instance_norm` must be 'auto', True, False or a dict of RINorm "
            f"arguments, got {rin!r}."
        )
    for name in ("layer_norm", "linear_residual", "use_static_covariates"):
        # bool("no") and bool("False") are True: a string would switch the option on, silently
        if isinstance(params.get(name), str):
            raise ValueError(f"`{name}` must be True or False, got the string {params[name]!r}.")
    rows = params.get("fold_rows", 1)
    if isinstance(rows, bool) or not isinstance(rows, int | np.integer) or rows < 1:
        raise ValueError(f"`fold_rows` must be an integer >= 1 (1: a 1 x P strip), got {rows!r}.")
    grid_shape = params.get("grid_shape")
    # integers only: int() would truncate 2.5 rows to 2 (the rest read as channels, silently)
    if grid_shape is not None and (
        not isinstance(grid_shape, Sequence | np.ndarray)
        or isinstance(grid_shape, str)
        or len(grid_shape) not in (2, 3)
        or any(
            isinstance(g, bool) or not isinstance(g, int | np.integer) or g < 1 for g in grid_shape
        )
    ):
        raise ValueError(
            "`grid_shape` must be (C, H, W) or (H, W) of positive integers, e.g. (2, 14, 8); "
            f"got {grid_shape!r}."
        )


def warn_masked_with_values(
    series: TimeSeries, missing: Sequence[int] | None, what: str = "series"
) -> None:
    """Warn when components that were always missing in training have values in ``series``.

    The model never learnt those components (they were NaN at every training step, e.g. land or
    cells outside a radar's range) and forecasts them as NaN whatever the input; a user passing data
    where they now have values should hear it rather than find NaN in the forecast.
    """
    if not missing:
        return
    values = series.all_values(copy=False)[:, list(missing), :]
    observed = ~np.isnan(values).all(axis=(0, 2))
    if observed.any():
        names = [series.components[missing[i]] for i in np.flatnonzero(observed)[:3]]
        warnings.warn(
            f"{what} has values in {int(observed.sum())} component(s) (e.g. {names}) that were "
            "missing at every step of the training data; the model did not learn them and "
            "forecasts them as NaN. Refit on data where they are observed to forecast them.",
            UserWarning,
            stacklevel=3,
        )


def resolve_layout(
    series: Sequence[TimeSeries],
    past_covariates: Sequence[TimeSeries] | None,
    future_covariates: Sequence[TimeSeries] | None,
    grid_shape: Sequence[int] | None,
    patch_size: int,
) -> GridLayout:
    """The grid layout of a model's training data: the target grid, the gridded covariate channels and
    the always-missing components.

    Parameters
    ----------
    series
        The target series (at least one).
    past_covariates, future_covariates
        The covariate series, one per target series, or ``None``.
    grid_shape
        The model's ``grid_shape`` argument, or ``None`` (read the grid from the metadata).
    patch_size
        The model's ``patch_size``, which must divide the grid's sides.
    """
    spec = check_target_grid(series, grid_shape)
    if spec.height % patch_size or spec.width % patch_size:
        raise ValueError(
            f"patch_size={patch_size} does not divide the {spec.height}x{spec.width} grid; "
            "choose a patch size that divides both sides (or 1)."
        )

    def grid_channels(covs: Sequence[TimeSeries] | None, kind: str) -> int:
        if not covs:
            return 0
        counts = set()
        for cov in covs:
            cov_spec = grid_spec_of(cov)
            if cov_spec is None or cov_spec.n_cells == 1:
                counts.add(0)
            elif (cov_spec.height, cov_spec.width) != (spec.height, spec.width):
                raise ValueError(
                    covariate_grid_message(
                        f"The {kind} covariates",
                        cov_spec,
                        spec,
                        "regrid them, or pass plain (non-gridded) covariates, which are broadcast "
                        "to every cell",
                    )
                )
            else:
                counts.add(cov_spec.n_channels)
        if len(counts) > 1:
            raise ValueError(
                f"All {kind} covariate series must share one layout (same grid channels)."
            )
        return counts.pop()

    missing = always_missing_cells(series)
    return GridLayout(
        spec,
        past_grid_channels=grid_channels(past_covariates, "past"),
        future_grid_channels=grid_channels(future_covariates, "future"),
        missing=tuple(int(i) for i in np.flatnonzero(missing)),
        components=tuple(str(c) for c in series[0].components),
    )


def check_same_layout(old: GridLayout, new: GridLayout) -> None:
    """Refuse to train a fitted network on data laid out differently (its weights' shapes differ)."""
    if old.grid.shape != new.grid.shape:
        raise ValueError(
            f"This model was fitted on a {old.grid.describe()} but got a {new.grid.describe()}. Fit "
            "a new model (or call reset_model()) to change the grid."
        )
    for what, before, after in (
        ("gridded past covariate channels", old.past_grid_channels, new.past_grid_channels),
        ("gridded future covariate channels", old.future_grid_channels, new.future_grid_channels),
    ):
        if before != after:
            raise ValueError(
                f"This model was fitted with {what} {before} but got {after}. Fit a new model (or "
                "call reset_model()) to change the layout."
            )
