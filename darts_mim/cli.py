"""The ``darts-mim`` command: demo, fit, predict, backtest, export and serve.

A thin layer over the library: it reads data files with :mod:`darts_mim.datasets`, calls
:class:`darts_mim.MIMModel` and writes results. Every error a user can cause (a missing or unreadable
file, a wrong option) ends the command with exit code 2 and one line on stderr, without a traceback;
set ``DARTS_MIM_DEBUG=1`` to see the traceback.

Hold-out: ``fit --holdout N`` trains on all but the last ``N`` steps and ``backtest --last N`` scores
only them; ``fit --val-last N`` validates on the ``N`` steps before (early stopping). ``backtest``
notes on stderr when it scores steps of the model's training data.

Scaling: ``fit`` min-max scales each component to [0, 1] with the training part's range (neither
validation nor held-out steps), with a
Darts ``Scaler`` (sklearn's ``MinMaxScaler``), and pickles that scaler next to the model as
``MODEL.pt.scaler``; with ``--no-scale`` it trains on raw values and stores an identity scaler, so that
every model written by ``fit`` says how its inputs were scaled. ``predict``, ``backtest`` and
``export`` read it (Darts' restricted unpickler: no arbitrary code), so that forecasts and errors are
on the original scale; ``export`` writes it into the ONNX graph, which then takes and returns raw
values (``--no-scaler``: a graph on scaled values, with the scaler beside it as ``OUT.scaler``). A
missing or unreadable scaler file is an error, never a silently unscaled forecast; a model saved
from Python without one is used with ``--no-scale``. Models from older
darts-mim versions, which stored the range as JSON in ``MODEL.pt.scaling.json``, are still read (with
a note to re-fit): the JSON range converts exactly into a ``Scaler``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import shutil
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from darts_mim.onnx.serve_options import add_arguments as add_serve_options
from darts_mim.onnx.serve_options import default_port, default_threads, default_workers
from darts_mim.onnx.serve_options import positive_int as _positive_int

if TYPE_CHECKING:
    from darts import TimeSeries
    from darts.dataprocessing.transformers import Scaler

__all__ = ["build_parser", "fit_scaler", "load_scaler", "main", "save_scaler"]

PROG = "darts-mim"
SCALER_SUFFIX = ".scaler"
#: The JSON range that older darts-mim versions stored beside a model; still read (see
#: :func:`_read_scaler`).
LEGACY_SCALING_SUFFIX = ".scaling.json"
DATA_EXTENSIONS = {".npz": "gridded .npz", ".csv": "CSV series", ".nc": "netCDF", ".nc4": "netCDF"}

EPILOG = """\
examples:
  darts-mim demo --out demo_output                  train, backtest, export, serve (a few minutes)
  darts-mim demo --quick --out /tmp/demo            the same in seconds, tiny models
  darts-mim fit --data flows.npz --out mim.pt --hidden 32,32 --epochs 5 --holdout 96
                                                    train on all but the last 96 steps (2 days)
  darts-mim backtest --model mim.pt --data flows.npz --last 96 --horizon 6 --stride 6
                                                    score the 96 held-out steps only
  darts-mim predict --model mim.pt --data flows.npz --n 6 --out forecast.npz
  darts-mim fit --data ETTh1.csv --out ett.pt --val-last 336
                                                    hourly: icl 96 (4 days), validation, early stop
  darts-mim export --model mim.pt --out mim.onnx
  darts-mim serve mim.onnx --port 8080 --workers 2 --threads 1
                                                    HTTP forecasts (needs the serve extra)

data files:
  .npz   a grid: `data` (T, C, H, W) or (T, H, W), `time` (T ISO strings), optional `channels`
  .csv   a (multivariate) series: a date column and numeric columns (e.g. ETTh1.csv); a column
         that is not numeric is an error unless left out with --drop COL (see --decimal, --sep)
  .nc    netCDF: one variable with a time dimension and two spatial ones (needs netCDF4 or h5netcdf)

Run `darts-mim COMMAND --help` for the options of one command.
"""


class CliError(Exception):
    """A user error: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument on one line (exit code 2) instead of usage + error."""

    def error(self, message: str):  # noqa: D401 - argparse's signature
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show "(default: X)" only where there is a meaningful default (not for required or flags)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or action.required:
            return action.help or ""
        return super()._get_help_string(action)


# ---------------------------------------------------------------------------------------------------
# helpers


def _load_series(path: str, args: argparse.Namespace | None = None):
    """Read a data file into a float32 ``TimeSeries`` (gridded for ``.npz`` / ``.nc``).

    ``args`` carries the CSV options ``--drop``, ``--decimal``, ``--sep`` and ``--date-order``.
    """
    from darts_mim.datasets import load_csv_series, load_grid_npz, load_netcdf

    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"data file {p} does not exist")
    if p.is_dir():
        raise CliError(f"{p} is a directory; pass a data file (.npz, .csv or .nc)")
    ext = p.suffix.lower()
    if ext not in DATA_EXTENSIONS:
        raise CliError(
            f"unknown data file extension {ext or '(none)'!r} for {p}; use .npz (grid), .csv (series) "
            "or .nc (netCDF)"
        )
    drop = getattr(args, "drop", None) or []
    decimal, sep = getattr(args, "decimal", "."), getattr(args, "sep", ",")
    sep = "\t" if sep in ("\\t", "tab") else sep  # `--sep '\t'` arrives as backslash + t
    order = getattr(args, "date_order", None)
    if ext != ".csv" and (drop or decimal != "." or sep != "," or order):
        raise CliError(
            f"--drop, --decimal, --sep and --date-order read .csv files; {p.name} is not one"
        )
    if ext == ".npz":
        series = load_grid_npz(p).series
    elif ext == ".csv":
        dayfirst = None if order is None else order == "day-first"
        series = load_csv_series(p, drop=drop, decimal=decimal, sep=sep, dayfirst=dayfirst)
    else:
        series = load_netcdf(p).series
    # ONNX Runtime has no float64 convolution: keep everything float32 from the start.
    return series.astype(np.float32)


def _plural(n: int, word: str) -> str:
    """``"1 forecast"``, ``"3 forecasts"``: counts in messages read as English."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def _scaler_path(model_path: str | os.PathLike) -> Path:
    return Path(os.fspath(model_path) + SCALER_SUFFIX)


def _legacy_scaling_path(model_path: str | os.PathLike) -> Path:
    return Path(os.fspath(model_path) + LEGACY_SCALING_SUFFIX)


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)  # also through hard links and case-insensitive names
    return a.resolve() == b.resolve()


def _check_outputs(
    written: Sequence[str | os.PathLike], inputs: dict[str, str | os.PathLike], option: str
) -> None:
    """Refuse an output path that would replace one of the command's input files.

    ``predict --data sales.csv --out sales.csv`` would replace the user's data with the forecast,
    ``export --model mim.pt --out mim.pt`` the model with its graph: checked before any work, so
    that nothing is written and no training time is lost.
    """
    for out in written:
        out_path = Path(out).expanduser()
        for what, path in inputs.items():
            if _same_file(out_path, Path(path).expanduser()):
                raise CliError(
                    f"{option} {out_path} would overwrite {what} {Path(path).expanduser()}, an "
                    f"input of this command; write to another file"
                )


def fit_scaler(series: TimeSeries, scale: bool = True) -> Scaler:
    """The Darts ``Scaler`` that ``darts-mim fit`` fits: min-max per component to [0, 1].

    Parameters
    ----------
    series
        The training series.
    scale
        ``False`` gives an identity scaler (sklearn's ``FunctionTransformer``), for a model trained
        on raw values. Default: ``True``.

    Returns
    -------
    darts.dataprocessing.transformers.Scaler
        A fitted scaler. A component that is NaN at every step (a land cell) gets offset 0 and scale
        1, so that its NaN stays NaN both ways; a constant component maps to 0 (sklearn's rule for a
        zero range). NaN in other components is ignored by the fit.
    """
    from darts.dataprocessing.transformers import Scaler
    from sklearn.preprocessing import FunctionTransformer, MinMaxScaler

    if not scale:
        scaler = Scaler(FunctionTransformer())
        scaler.fit(series)
        return scaler
    values = series.all_values(copy=False)
    empty = np.isnan(values).all(axis=(0, 2))
    if empty.any():
        # sklearn ignores NaN in a fit but leaves an all-NaN column's range NaN (with a warning),
        # which would turn that component's forecasts into NaN even where the model gives a value.
        # Filling those columns with 0 for the fit only gives offset 0 and (zero range ->) scale 1.
        series = series.with_values(np.where(empty[None, :, None], 0.0, values))
    scaler = Scaler(MinMaxScaler(feature_range=(0, 1)))
    scaler.fit(series)
    return scaler


def save_scaler(scaler: Scaler, path: str | os.PathLike) -> Path:
    """Pickle ``scaler`` to ``path`` atomically (temporary file + ``os.replace``), with its checksum
    file ``path + ".sha256"`` (``sha256sum`` format, see :mod:`darts_mim.integrity`).

    An interrupted save leaves the previous file intact, never a truncated one beside a new model
    (interrupted between the scaler and its checksum file, it leaves one that :func:`load_scaler`
    refuses).

    Parameters
    ----------
    scaler
        A fitted Darts ``Scaler``.
    path
        File to write, by convention ``MODEL.pt.scaler``.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    from darts_mim.integrity import atomic_path, write_checksums

    target = Path(path)
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        # Protocol 4, as Darts' own model files: protocol 5 stores numpy arrays through
        # `numpy._core.numeric._frombuffer`, which Darts' restricted unpickler refuses.
        pickle.dump(scaler, fh, protocol=4)
    write_checksums([target])
    return target


#: How to get an intact scaler file again, for the integrity messages.
_SCALER_FIX = (
    "re-fit the model with `darts-mim fit` (or write the scaler again with "
    "darts_mim.cli.save_scaler; `darts-mim export --no-scaler` copies it beside the ONNX file)"
)


def load_scaler(path: str | os.PathLike) -> Scaler:
    """Read a scaler written by :func:`save_scaler` with Darts' restricted unpickler.

    Darts' unpickler only rebuilds allow-listed classes (Darts, sklearn, numpy, ...), so a crafted
    file cannot run code. Torch-free: usable beside :class:`darts_mim.onnx.runtime.OnnxForecaster`.
    The file is first checked against its checksum file (``path + ".sha256"``, written by
    :func:`save_scaler`); a scaler saved without one (darts-mim 0.5 or older) is read with a
    warning, once, that its integrity cannot be verified.

    Parameters
    ----------
    path
        A ``MODEL.pt.scaler`` (or ``MODEL.onnx.scaler``) file.

    Returns
    -------
    darts.dataprocessing.transformers.Scaler
        Use ``scaler.transform(series)`` on the model's inputs and ``scaler.inverse_transform`` on
        its forecasts.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When it does not match its checksum file (modified or corrupted after it was saved), or is
        not a readable pickle of a Darts ``Scaler``.
    """
    from darts.dataprocessing.transformers import Scaler
    from darts.utils.serialization.base import restricted_pickle_load

    from darts_mim.integrity import verify_checksums

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"scaler file {p} does not exist")
    verify_checksums([p], what="scaler", fix=_SCALER_FIX)
    try:
        with open(p, "rb") as fh:
            scaler = restricted_pickle_load(fh)
    except Exception as err:  # any unpickling failure: truncated, foreign, not allow-listed
        raise ValueError(
            f"scaler file {p} is corrupt or not a Darts Scaler ({type(err).__name__}: "
            f"{_one_line(err)}); re-fit the model with `darts-mim fit`"
        ) from err
    if not isinstance(scaler, Scaler):
        raise ValueError(
            f"scaler file {p} holds a {type(scaler).__name__}, not a Darts Scaler; re-fit the model "
            "with `darts-mim fit`"
        )
    return scaler


def _read_legacy_scaling(path: Path) -> Scaler:
    """A ``Scaler`` equal to an older darts-mim's JSON range (``(x - offset) / scale``)."""
    from darts import TimeSeries
    from darts.dataprocessing.transformers import Scaler
    from sklearn.preprocessing import MinMaxScaler

    try:
        scaling = json.loads(path.read_text())
        offset = np.asarray(scaling["offset"], dtype=np.float64)
        scale = np.asarray(scaling["scale"], dtype=np.float64)
    except (ValueError, KeyError, TypeError) as err:
        raise CliError(f"scaling file {path} is corrupt ({err}); re-fit the model") from err
    if offset.shape != scale.shape or offset.ndim != 1 or not np.all(scale > 0):
        raise CliError(f"scaling file {path} is corrupt (bad offset or scale); re-fit the model")
    # A min-max fit on the two rows [offset, offset + scale] has exactly that offset and range
    # (the JSON writer used scale 1 for constant and all-NaN components: every range is positive).
    scaler = Scaler(MinMaxScaler(feature_range=(0, 1)))
    scaler.fit(TimeSeries.from_values(np.stack([offset, offset + scale])))
    return scaler


def _read_scaler(model_path: str, no_scale: bool = False) -> Scaler | None:
    """The scaler of a saved model: ``MODEL.pt.scaler``, else a legacy JSON range, else an error.

    ``None`` (raw values) only when asked with ``no_scale`` and the model has no scaler file.
    """
    path, legacy = _scaler_path(model_path), _legacy_scaling_path(model_path)
    if no_scale:
        if path.exists() and _is_identity(load_scaler(path)):
            return None  # written by `fit --no-scale`: consistent with the flag
        found = path if path.exists() else legacy if legacy.exists() else None
        if found is not None:
            raise CliError(
                f"--no-scale contradicts {found}: the model was trained on scaled values; drop "
                f"--no-scale (or delete {found.name} if the model was trained on raw values)"
            )
        return None
    if path.exists():
        return load_scaler(path)
    if legacy.exists():
        scaler = _read_legacy_scaling(legacy)
        print(
            f"{PROG}: note: {legacy} is the JSON scaling file of an older darts-mim; it is read "
            f"this time, but run `darts-mim fit` again to write {path.name}",
            file=sys.stderr,
        )
        return scaler
    raise CliError(
        f"scaler file {path} is missing: `darts-mim fit` writes it beside the model; put it back, "
        "re-fit, or pass --no-scale for a model trained on raw values (e.g. saved with "
        "MIMModel.save())"
    )


def _is_identity(scaler: Scaler | None) -> bool:
    from sklearn.preprocessing import FunctionTransformer

    return scaler is None or isinstance(scaler.transformer, FunctionTransformer)


def _scale(scaler: Scaler | None, series: TimeSeries, model_path: str) -> TimeSeries:
    """``scaler.transform(series)``, with a CLI message when the layouts differ."""
    if scaler is None:
        return series
    try:
        return scaler.transform(series)
    except ValueError as err:
        raise CliError(
            f"the data ({_plural(series.n_components, 'component')}) does not match the layout the "
            f"model {model_path} was fitted on ({_one_line(err)}); use data with the training layout"
        ) from err


def _unscale(scaler: Scaler | None, forecast: TimeSeries) -> TimeSeries:
    """Forecasts back on the original scale."""
    return forecast if scaler is None else scaler.inverse_transform(forecast)


def _model_files(path: str) -> dict[str, Path]:
    """A saved model's files, named for :func:`_check_outputs`'s message."""
    p = Path(path).expanduser()
    return {
        "the model file": p,
        "the model's weights": Path(str(p) + ".ckpt"),
        "the model's scaler": _scaler_path(p),
    }


def _load_model(path: str):
    from darts_mim.model import MIMModel

    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"model file {p} does not exist (write one with `darts-mim fit`)")
    if not Path(str(p) + ".ckpt").is_file():
        raise CliError(
            f"model weights {p}.ckpt are missing; MIMModel.save() writes them next to {p.name}"
        )
    # These replace the saved trainer parameters whole (Darts' `load`), so `logger=False` must be
    # repeated, or Lightning writes TensorBoard logs to ./lightning_logs at every prediction.
    trainer = {
        "accelerator": "cpu",
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    return MIMModel.load(str(p), pl_trainer_kwargs=trainer)


def _parse_hidden(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(",") if w.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--hidden takes comma-separated layer widths such as 32,32; got {text!r}"
        ) from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"--hidden widths must be positive integers; got {text!r}")
    return widths


def _start(text: str):
    try:
        value = float(text)
    except ValueError:
        # Not a number: a time stamp, as Darts' historical_forecasts(start=pd.Timestamp(...)).
        import pandas as pd

        try:
            return pd.Timestamp(text)
        except (ValueError, TypeError):
            raise argparse.ArgumentTypeError(
                f"--start is a fraction in (0, 1), a time step index or a time stamp, got {text!r}"
            ) from None
    if 0 < value < 1:
        return value
    if value >= 1 and value == int(value):
        return int(value)
    raise argparse.ArgumentTypeError(
        f"--start is a fraction in (0, 1) or a positive integer index, got {text!r}"
    )


def _fold_period(text: str) -> int | str | None:
    value = text.strip().lower()
    if value == "auto":
        return "auto"
    if value == "none":
        return None
    try:
        period = int(value)
    except ValueError:
        period = 0
    if period < 2:
        raise argparse.ArgumentTypeError(
            f"--fold-period takes 'auto', 'none' or an integer period >= 2, got {text!r}"
        )
    return period


def _likelihood(name: str | None):
    """The Darts likelihood of ``--likelihood``."""
    if name is None:
        return None
    from darts.utils.likelihood_models.torch import GaussianLikelihood, QuantileRegression

    return {"gaussian": GaussianLikelihood, "quantile": QuantileRegression}[name]()


#: ``--icl`` without a period to fold: MIM's usual input on grids.
DEFAULT_ICL = 12
#: ``--icl`` of a plain series with a period P is this many periods (fewer for a short series).
ICL_PERIODS = 4


def default_input_chunk_length(
    series: TimeSeries, output_chunk_length: int, fold_period="auto", n_train: int | None = None
) -> tuple[int, str]:
    """The input length ``darts-mim fit`` uses without ``--icl``, and why.

    A plain series with a natural period ``P`` (:func:`darts_mim.folding.infer_period`: 24 for
    hourly steps, 7 for daily ones, 12 for months, ...) or an integer ``fold_period`` reads
    ``4 P`` steps (96 hourly, 28 daily), so that MIMModel folds it into periods; ``3 P`` or ``2 P``
    when the training part is too short for ``4 P`` (the input and output of a window must fit in
    half of it). Grids, series without a period and ``fold_period=None`` read 12 steps.

    Parameters
    ----------
    series
        The training data (its frequency and grid).
    output_chunk_length
        The model's output length.
    fold_period
        ``"auto"``, ``None`` or an integer period, as ``MIMModel(fold_period=...)``.
    n_train
        Steps of the training part; default ``len(series)``.

    Returns
    -------
    tuple[int, str]
        The input length and a short reason for the command's output.
    """
    from darts_mim.folding import infer_period
    from darts_mim.grid import grid_spec_of

    n_train = len(series) if n_train is None else n_train
    spec = grid_spec_of(series)
    if spec is not None and spec.height * spec.width > 1:
        return DEFAULT_ICL, "a grid"
    if fold_period is None:
        return DEFAULT_ICL, "--fold-period none"
    period = fold_period if isinstance(fold_period, int) else infer_period(series.freq)
    if period is None or period < 2:
        return DEFAULT_ICL, f"no seasonal period for steps of {series.freq_str}"
    for k in range(ICL_PERIODS, 1, -1):
        if k * period + output_chunk_length <= n_train // 2:
            return k * period, f"{k} periods of {period} steps"
    return DEFAULT_ICL, f"too short for 2 periods of {period} steps"


def _num_samples(model, samples: int | None) -> int:
    """Samples per forecast: ``--samples``, else 1 (point model) or :data:`DEFAULT_SAMPLES`."""
    probabilistic = bool(getattr(model, "supports_probabilistic_prediction", False))
    if samples is None:
        return DEFAULT_SAMPLES if probabilistic else 1
    if samples > 1 and not probabilistic:
        raise CliError(
            f"--samples {samples} needs a probabilistic model (fitted with --likelihood); this one "
            "gives point forecasts"
        )
    return samples


#: Samples per forecast of a model fitted with ``--likelihood``; the forecast is their median.
DEFAULT_SAMPLES = 100


def _median(forecast: TimeSeries) -> TimeSeries:
    """The per-step, per-component median of a stochastic forecast (itself when deterministic)."""
    if not forecast.is_stochastic:
        return forecast
    values = forecast.all_values(copy=False)
    return forecast.with_values(np.median(values, axis=2, keepdims=True))


# ---------------------------------------------------------------------------------------------------
# commands


def cmd_demo(args: argparse.Namespace) -> int:
    from darts_mim.demo import run_demo

    run_demo(
        out=args.out, epochs=args.epochs, quick=args.quick, seed=args.seed, onnx=not args.skip_onnx
    )
    return 0


def _split(series: TimeSeries, args: argparse.Namespace):
    """``fit``'s parts of the data: training, validation (or ``None``) and the input length.

    The last ``--holdout`` steps are left out; of the rest, the last ``--val-last`` steps are the
    validation targets (the validation series starts ``icl`` steps earlier, for their inputs).
    """
    n, holdout, val_last = len(series), args.holdout or 0, args.val_last or 0
    if holdout + val_last >= n:
        raise CliError(
            f"--holdout {holdout} and --val-last {val_last} leave no training data of the "
            f"{_plural(n, 'step')} in {args.data}"
        )
    fit_part = series[: n - holdout] if holdout else series
    n_train = len(fit_part) - val_last
    if args.icl is None:
        icl, why = default_input_chunk_length(fit_part, args.ocl, args.fold_period, n_train)
    else:
        icl, why = args.icl, ""
    if n_train < icl + args.ocl:
        raise CliError(
            f"the training part has {_plural(n_train, 'step')}, fewer than icl + ocl = "
            f"{icl + args.ocl}; use a shorter --icl/--ocl or a smaller --holdout/--val-last"
        )
    if not val_last:
        return fit_part, None, icl, why
    if val_last < args.ocl:
        raise CliError(
            f"--val-last {val_last} is shorter than --ocl {args.ocl}: the validation part must "
            "hold at least one output chunk"
        )
    return fit_part[:n_train], fit_part[n_train - icl :], icl, why


def cmd_fit(args: argparse.Namespace) -> int:
    from darts_mim.folding import resolve_fold
    from darts_mim.grid import grid_spec_of
    from darts_mim.model import MIMModel

    out = Path(args.out).expanduser()
    _check_outputs(
        [out, str(out) + ".ckpt", _scaler_path(out)], {"the data file": args.data}, "--out"
    )
    series = _load_series(args.data, args)
    train, val, icl, why = _split(series, args)
    spec = grid_spec_of(series)
    gridded = spec is not None and spec.height * spec.width > 1
    auto = args.fold_period == "auto" and not gridded  # then the data decide, as in the model
    values = [train.values(copy=False)] if auto else None
    fold = resolve_fold(args.fold_period, series.freq, icl, gridded, values)
    from darts_mim.resources import available_cpus, default_threads, torch_threads

    # never more threads than the process has CPUs (torch_threads caps the same way)
    threads = min(args.threads or default_threads(), available_cpus())
    # The scaler learns the range of the training part only: nothing of the validation or
    # held-out steps leaks into the model.
    scaler = fit_scaler(train, scale=not args.no_scale)
    print(
        f"fitting MIMModel on {args.data}: {_plural(len(series), 'step')}, "
        f"{_plural(series.n_components, 'component')}, icl={icl}"
        + (f" ({why}; --icl to change)" if why else "")
        + f", ocl={args.ocl}, hidden={args.hidden}, "
        + (f"folded into periods of {fold} steps" if fold > 1 else "not folded")
        + (f", {args.likelihood} likelihood" if args.likelihood else "")
        + (", linear residual" if args.linear_residual else "")
        + f", {_plural(args.epochs, 'epoch')}, {_plural(threads, 'thread')}"
    )
    parts = [
        f"training on {_plural(len(train), 'step')} ({train.start_time()} to {train.end_time()})"
    ]
    if val is not None:
        parts.append(
            f"validating on the next {_plural(args.val_last, 'step')} (early stopping, best epoch kept)"
        )
    if args.holdout:
        first = series.time_index[len(series) - args.holdout]
        parts.append(
            f"holding out the last {_plural(args.holdout, 'step')} (from {first}): score them with "
            f"`darts-mim backtest --last {args.holdout}`"
        )
    if val is not None or args.holdout:
        print("  " + "; ".join(parts))
    if out.exists():
        # Said before the training, not after: there is still time to stop and pick another name.
        print(
            f"{PROG} fit: note: {out} exists; the new model will replace it (and its weights and "
            "scaler) when the training ends",
            file=sys.stderr,
        )
    # Lightning's logs go to a temporary work dir: the model file is the only output.
    work_dir = tempfile.mkdtemp(prefix="darts-mim-fit-")
    try:
        with torch_threads(threads):
            model = MIMModel(
                input_chunk_length=icl,
                output_chunk_length=args.ocl,
                num_hidden=args.hidden,
                filter_size=args.filter_size,
                patch_size=args.patch_size,
                fold_period=args.fold_period,
                linear_residual=args.linear_residual,
                likelihood=_likelihood(args.likelihood),
                n_epochs=args.epochs,
                batch_size=args.batch_size,
                random_state=args.seed,
                work_dir=work_dir,
                pl_trainer_kwargs={
                    "accelerator": "cpu",
                    "enable_progress_bar": not args.quiet,
                    "enable_model_summary": False,
                },
            )
            model.fit(
                scaler.transform(train),
                val_series=None if val is None else scaler.transform(val),
            )
            model.save(str(out))
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    scaler_file = save_scaler(scaler, _scaler_path(out))
    # A JSON range from an earlier fit by an older darts-mim is ignored now, but would mislead.
    _legacy_scaling_path(out).unlink(missing_ok=True)
    kind = "identity scaler, raw values" if args.no_scale else "min-max scaler"
    print(f"saved {out} (+ {out.name}.ckpt, {scaler_file.name}: {kind})")
    return 0


def _check_columns(model, series: TimeSeries, model_path: str) -> None:
    """Refuse data whose columns are not the training series' (other names, or another order):
    each component feeds the network's channel of its position, so a reordered file would be
    forecast as if its columns were the training ones."""
    from darts import TimeSeries

    from darts_mim.grid import grid_spec_of

    train = getattr(model, "training_series", None)
    if not isinstance(train, TimeSeries) or grid_spec_of(train) is not None:
        return  # several training series, or a grid: its cells are named by the grid
    expected, got = list(train.components), list(series.components)
    if got == expected:
        return
    if sorted(got) == sorted(expected):
        raise CliError(
            f"the data's columns are in another order than the training data's of {model_path}: "
            f"got {got}, expected {expected}; reorder the columns"
        )
    missing = [c for c in expected if c not in got]
    extra = [c for c in got if c not in expected]
    raise CliError(
        f"the data's columns do not match the training data's of {model_path} (missing "
        f"{missing or 'none'}, not in training {extra or 'none'}); use data with the training "
        f"columns {expected}"
    )


def cmd_predict(args: argparse.Namespace) -> int:
    from darts_mim.grid import GridSpec, grid_spec_of, series_to_grid

    out = Path(args.out).expanduser()
    if out.suffix.lower() not in (".csv", ".npz"):
        raise CliError(f"--out must end in .csv or .npz, got {out.name!r}")
    _check_outputs([out], {"the data file": args.data, **_model_files(args.model)}, "--out")
    model = _load_model(args.model)
    series = _load_series(args.data, args)
    _check_columns(model, series, args.model)
    scaler = _read_scaler(args.model, args.no_scale)
    samples = _num_samples(model, args.samples)
    from darts_mim.resources import torch_threads

    with torch_threads(args.threads):
        forecast = model.predict(
            args.n,
            series=_scale(scaler, series, args.model),
            num_samples=samples,
            verbose=False,
        )
    forecast = _unscale(scaler, _median(forecast))
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npz":
        spec = grid_spec_of(forecast) or GridSpec(tuple(forecast.components), 1, 1)
        np.savez_compressed(
            out,
            data=series_to_grid(forecast, spec),
            time=np.asarray([str(t) for t in forecast.time_index]),
            channels=np.asarray(spec.channels),
        )
    else:
        frame = forecast.to_dataframe()
        # Without a name the time column reads back as "Unnamed: 0".
        frame.index.name = series.time_index.name or "time"
        frame.to_csv(out)
    median = f" (median of {samples} samples)" if samples > 1 else ""
    print(f"wrote {_plural(args.n, 'forecast step')}{median} after {series.end_time()} to {out}")
    return 0


def _in_sample_note(model, series: TimeSeries, forecasts: list) -> str | None:
    """A note when backtest forecasts score steps of the data the model was trained on."""
    import pandas as pd

    train = getattr(model, "training_series", None)
    if not isinstance(train, type(series)):
        return None
    dated = isinstance(series.time_index, pd.DatetimeIndex)
    if dated != isinstance(train.time_index, pd.DatetimeIndex):
        return None
    end = train.end_time()
    scored = pd.Index(np.unique(np.concatenate([f.time_index.to_numpy() for f in forecasts])))
    inside = int((scored <= end).sum())
    if not inside:
        return None
    return (
        f"{inside} of the {_plural(len(scored), 'scored step')} (from {scored[0]}) "
        f"{'is' if inside == 1 else 'are'} in the data the model was trained on (up to {end}): "
        "these errors are in-sample. For an out-of-sample score, fit with --holdout N and "
        "backtest with --last N (or --start after the training data)"
    )


def cmd_backtest(args: argparse.Namespace) -> int:
    from darts_mim.evaluation import forecast_windows, mae, rmse, rmse_by_step

    model = _load_model(args.model)
    series = _load_series(args.data, args)
    _check_columns(model, series, args.model)
    scaler = _read_scaler(args.model, args.no_scale)
    start = 0.8 if args.start is None else args.start
    if args.last is not None:
        if args.last < args.horizon:
            raise CliError(
                f"--last {args.last} is shorter than --horizon {args.horizon}: no forecast fits in it"
            )
        if args.last >= len(series):
            raise CliError(
                f"--last {args.last} is not shorter than the data ({_plural(len(series), 'step')})"
            )
        start = series.time_index[len(series) - args.last]
    samples = _num_samples(model, args.samples)
    from darts_mim.resources import torch_threads

    with torch_threads(args.threads):
        forecasts = model.historical_forecasts(
            _scale(scaler, series, args.model),
            start=start,
            forecast_horizon=args.horizon,
            stride=args.stride,
            retrain=False,
            last_points_only=False,
            num_samples=samples,
            verbose=False,
        )
    forecasts = [_unscale(scaler, _median(f)) for f in forecasts]
    pred, true = forecast_windows(forecasts, series)
    median = f" (medians of {samples} samples)" if samples > 1 else ""
    print(
        f"backtest of {args.model} on {args.data}: {_plural(len(forecasts), 'forecast')}{median} "
        f"of {_plural(args.horizon, 'step')} every {_plural(args.stride, 'step')} from "
        f"{forecasts[0].start_time()}"
    )
    note = _in_sample_note(model, series, forecasts)
    if note:
        print(f"{PROG} backtest: note: {note}", file=sys.stderr)
    print(f"RMSE {rmse(pred, true):.4f}")
    print(f"MAE  {mae(pred, true):.4f}")
    print("RMSE by horizon step: " + ", ".join(f"{x:.4f}" for x in rmse_by_step(pred, true)))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    if args.workers is None:  # each engine's own default: 1 uvicorn worker, 2 Ray Serve replicas
        args.workers = default_workers(args.engine)
    if args.port is None:  # and its own port: 8080 for uvicorn, Ray Serve's 8000
        args.port = default_port(args.engine)
    if args.threads is None:  # and threads: 1 per Ray replica (as build_app), uvicorn divides
        args.threads = default_threads(args.engine)
    try:
        if args.engine == "ray":
            from darts_mim.onnx import ray_serve as server
        else:
            from darts_mim.onnx import asgi as server
    except ImportError as err:  # the engine's extra is missing: its one-line message
        raise CliError(str(err)) from err
    server.run_from_args(args)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from darts_mim.integrity import CHECKSUM_SUFFIX

    out = Path(args.out).expanduser()
    _check_outputs([out, _scaler_path(out)], _model_files(args.model), "--out")
    model = _load_model(args.model)
    # Read before exporting (tens of seconds): a missing scaler fails the command at once.
    scaler = _read_scaler(args.model, args.no_scale)
    out.parent.mkdir(parents=True, exist_ok=True)
    beside = _scaler_path(out)
    if scaler is not None and not args.no_scaler:
        # The scaler goes into the graph: raw values in, raw values out.
        written = model.to_onnx(str(out), scaler=scaler)
        print(f"wrote {written}")
        # A scaler file left beside the graph by an earlier `--no-scaler` export would invite
        # scaling the inputs twice.
        for stale in (beside, Path(str(beside) + CHECKSUM_SUFFIX)):
            if stale.exists():
                stale.unlink()
                print(f"removed {stale.name} (the graph now scales itself)")
        if not _is_identity(scaler):
            print(
                "the graph applies the model's scaler itself: pass raw values to "
                "OnnxForecaster or the service, forecasts come back in raw units"
            )
        return 0
    written = model.to_onnx(str(out))
    print(f"wrote {written}")
    if scaler is not None:
        # Re-saved rather than copied: a legacy JSON range becomes a Scaler file like any other.
        target = save_scaler(scaler, _scaler_path(written))
        if _is_identity(scaler):
            print(f"wrote {target.name} (identity: the model works on raw values)")
        else:
            print(
                f"the graph works on min-max scaled values: load the Darts Scaler in {target.name} "
                "with darts_mim.cli.load_scaler(), transform the inputs with it and "
                "inverse_transform the forecasts"
            )
    return 0


# ---------------------------------------------------------------------------------------------------
# parser and entry point


def _add_data_options(p: argparse.ArgumentParser) -> None:
    """``--drop``, ``--decimal``, ``--sep`` and ``--date-order`` (CSV data) and ``--threads``."""
    p.add_argument(
        "--drop",
        action="append",
        metavar="COL",
        help="CSV column to leave out (repeatable); every other column but the time column is "
        "loaded, and a column that is not numeric is an error",
    )
    p.add_argument("--decimal", default=".", help="decimal mark of a CSV file, e.g. ','")
    p.add_argument("--sep", default=",", help="field separator of a CSV file, e.g. ';'")
    p.add_argument(
        "--date-order",
        choices=("day-first", "month-first"),
        default=None,
        help="how to read CSV dates like 01/02/2020 (1 February day first); default: the order "
        "the whole column allows, an error when both read every date",
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="torch threads (default: OMP_NUM_THREADS if set, else 1: the small convolutions of "
        "MIM gain little from more, and lose much when other work shares the cores)",
    )


def _add_samples_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--samples",
        type=_positive_int,
        default=None,
        help="samples per forecast of a model fitted with --likelihood; the forecast is their "
        f"median (default: {DEFAULT_SAMPLES} for such a model, else 1)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``darts-mim`` argument parser."""
    parser = _Parser(
        prog=PROG,
        description="Memory In Memory (MIM) forecasting for Darts: demo, fit, predict, backtest, "
        "export to ONNX and serve.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    fmt = _DefaultsFormatter

    p = sub.add_parser(
        "demo",
        help="train, backtest, export and serve on the bundled bike-flow grid",
        description="Train MIM on NYC bike flows (12 steps in, 6 out), backtest it against seasonal "
        "naive, TCN and ARIMA, export it to ONNX and serve it; writes pictures and results.md.",
        formatter_class=fmt,
    )
    p.add_argument("--out", default="demo_output", help="output directory")
    p.add_argument("--epochs", type=_positive_int, default=None, help="MIM epochs (default: 8)")
    p.add_argument(
        "--quick", action="store_true", help="tiny models and data: seconds, not minutes"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--skip-onnx", action="store_true", help="skip the ONNX export and serving")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "fit",
        help="fit a MIMModel on a data file and save it",
        description="Fit a MIMModel on a .npz grid, .csv series or .nc file; save it with "
        "MIMModel.save (MODEL.pt and MODEL.pt.ckpt), plus its Darts Scaler in MODEL.pt.scaler.",
        epilog="example: darts-mim fit --data flows.npz --out mim.pt --hidden 32,32 --epochs 5",
        formatter_class=fmt,
    )
    p.add_argument("--data", required=True, help="training data (.npz, .csv or .nc)")
    p.add_argument("--out", required=True, help="model file to write, e.g. mim.pt")
    p.add_argument(
        "--icl",
        type=_positive_int,
        default=None,
        help=f"input chunk length (default: {ICL_PERIODS} periods of the data's seasonal period "
        f"for a plain series, e.g. 96 for hourly steps and 28 for daily ones, so that it is "
        f"folded; {DEFAULT_ICL} for grids and series without a period)",
    )
    p.add_argument("--ocl", type=_positive_int, default=6, help="output chunk length")
    p.add_argument("--hidden", type=_parse_hidden, default="32,32", help="layer widths, e.g. 32,32")
    p.add_argument("--filter-size", type=_positive_int, default=3, help="odd convolution size")
    p.add_argument("--patch-size", type=_positive_int, default=1, help="space-to-depth factor")
    p.add_argument("--epochs", type=_positive_int, default=5, help="training epochs")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="batch size")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument(
        "--no-scale", action="store_true", help="train on the raw values (identity scaler)"
    )
    p.add_argument(
        "--fold-period",
        type=_fold_period,
        default="auto",
        help="fold a plain series into periods of this many steps: an integer, 'auto' (the "
        "period of the frequency when the input holds two and the training data show that "
        "season) or 'none'",
    )
    p.add_argument(
        "--linear-residual",
        action="store_true",
        help="add a learned linear map of the input window to the forecast (NLinear-style, "
        "starting at zero): MIMModel(linear_residual=True)",
    )
    p.add_argument(
        "--likelihood",
        choices=("gaussian", "quantile"),
        default=None,
        help="train a probabilistic model (Darts' GaussianLikelihood or QuantileRegression); "
        "predict and backtest then give the median of --samples samples",
    )
    p.add_argument(
        "--val-last",
        type=_positive_int,
        default=None,
        metavar="N",
        help="validate on the last N steps before the held-out ones (they are not trained on): "
        "training stops early when the validation loss stops improving, and the best epoch is "
        "kept",
    )
    p.add_argument(
        "--holdout",
        type=_positive_int,
        default=None,
        metavar="N",
        help="leave the last N steps out of training (and of the scaler), to score them "
        "afterwards with `darts-mim backtest --last N`",
    )
    _add_data_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser(
        "predict",
        help="forecast the steps after the end of a data file",
        description="Forecast N steps after the end of the data with a saved model. A .npz output "
        "holds `data` (T, C, H, W), `time` (ISO strings) and `channels`; a .csv one a column per "
        "component.",
        epilog="example: darts-mim predict --model mim.pt --data flows.npz --n 6 --out forecast.npz",
        formatter_class=fmt,
    )
    p.add_argument("--model", required=True, help="model file written by `fit`")
    p.add_argument("--data", required=True, help="history to forecast from (.npz, .csv or .nc)")
    p.add_argument("--n", type=_positive_int, default=6, help="steps to forecast")
    p.add_argument("--out", required=True, help="forecast file (.npz or .csv)")
    p.add_argument(
        "--no-scale",
        action="store_true",
        help="the model works on raw values and has no MODEL.pt.scaler file (e.g. saved with "
        "MIMModel.save() from Python)",
    )
    _add_samples_option(p)
    _add_data_options(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "backtest",
        help="historical forecasts of a saved model, with RMSE and MAE",
        description="Forecast HORIZON steps every STRIDE steps from START (or over the last N "
        "steps) to the end of the data (no retraining) and print RMSE and MAE on the original "
        "scale. Score data the model was not trained on: fit with --holdout N, then backtest with "
        "--last N; a note on stderr says when scored steps are in the model's training data.",
        epilog="example: darts-mim fit --data flows.npz --out mim.pt --holdout 96 && darts-mim "
        "backtest --model mim.pt --data flows.npz --last 96",
        formatter_class=fmt,
    )
    p.add_argument("--model", required=True, help="model file written by `fit`")
    p.add_argument("--data", required=True, help="data to backtest on (.npz, .csv or .nc)")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--start",
        type=_start,
        default=None,
        help="first forecast step, as Darts' historical_forecasts(start=...): a fraction of the "
        "data in (0, 1), a time step index or a time stamp (default: 0.8)",
    )
    where.add_argument(
        "--last",
        type=_positive_int,
        default=None,
        metavar="N",
        help="score the last N steps only (the part `fit --holdout N` left out)",
    )
    p.add_argument("--horizon", type=_positive_int, default=6, help="forecast horizon")
    p.add_argument("--stride", type=_positive_int, default=6, help="steps between forecasts")
    p.add_argument(
        "--no-scale",
        action="store_true",
        help="the model works on raw values and has no MODEL.pt.scaler file (e.g. saved with "
        "MIMModel.save() from Python)",
    )
    _add_samples_option(p)
    _add_data_options(p)
    p.set_defaults(func=cmd_backtest)

    p = sub.add_parser(
        "export",
        help="export a saved model to ONNX",
        description="Export a saved model to one ONNX file for torch-free serving with "
        "darts_mim.OnnxForecaster.",
        epilog="example: darts-mim export --model mim.pt --out mim.onnx",
        formatter_class=fmt,
    )
    p.add_argument("--model", required=True, help="model file written by `fit`")
    p.add_argument("--out", required=True, help="ONNX file to write")
    p.add_argument(
        "--no-scale",
        action="store_true",
        help="the model works on raw values and has no MODEL.pt.scaler file (e.g. saved with "
        "MIMModel.save() from Python)",
    )
    p.add_argument(
        "--no-scaler",
        action="store_true",
        help="leave the model's scaler out of the graph (by default the graph scales its inputs "
        "and unscales its forecasts itself: raw values in and out); the graph then works on "
        "scaled values and the scaler is written beside it as OUT.scaler",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "serve",
        help="serve an exported ONNX model over HTTP (the serve extra)",
        description="Serve an ONNX file written by `export` (or MIMModel.to_onnx) over HTTP with "
        "Starlette and uvicorn: POST /forecast (concurrent requests micro-batched into one ONNX "
        "call), GET /metadata, /health and Prometheus /metrics. Needs neither torch nor Darts at "
        'run time, but the serve extra: pip install "darts-mim[serve]". Stop it with Ctrl-C or '
        "SIGTERM: open requests are answered first. With --engine ray, the same endpoints (but "
        "/metrics) on Ray Serve instead, --workers being replicas (2 by default, as for "
        "python -m darts_mim.onnx.ray_serve).",
        epilog="example: darts-mim serve mim.onnx --host 0.0.0.0 --port 8080 --workers 2 "
        "--threads 1 (see darts_mim.onnx.asgi; darts_mim.onnx.ray_serve for --engine ray)",
        formatter_class=fmt,
    )
    add_serve_options(p, engine="any")
    p.add_argument(
        "--engine",
        choices=["uvicorn", "ray"],
        default="uvicorn",
        help="uvicorn (the serve extra), or Ray Serve (the ray extra; --workers replicas across "
        "the Ray cluster at $RAY_ADDRESS, else on this machine; see darts_mim.onnx.ray_serve)",
    )
    p.set_defaults(func=cmd_serve)
    return parser


def _one_line(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``darts-mim``; returns the exit code (0 ok, 2 user error, 1 unexpected failure)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command = f"{PROG} {args.command}"
    from darts_mim.logs import quiet_logs

    # `serve` imports neither torch nor Lightning (whose logs quiet_logs tames): it starts fast, in
    # images without them.
    logs = contextlib.nullcontext() if args.command == "serve" else quiet_logs()
    try:
        with logs:
            return int(args.func(args))
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except (CliError, FileNotFoundError, ValueError, OSError, KeyError) as err:
        if os.environ.get("DARTS_MIM_DEBUG"):
            traceback.print_exc()
        print(f"{command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except Exception as err:  # keep tracebacks away from users; DARTS_MIM_DEBUG=1 shows them
        if os.environ.get("DARTS_MIM_DEBUG"):
            traceback.print_exc()
        print(
            f"{command}: failed: {type(err).__name__}: {_one_line(err)} "
            "(set DARTS_MIM_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
