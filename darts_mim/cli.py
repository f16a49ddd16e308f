"""The ``darts-mim`` command: demo, fit, predict, backtest and export.

A thin layer over the library: it reads data files with :mod:`darts_mim.datasets`, calls
:class:`darts_mim.MIMModel` and writes results. Every error a user can cause (a missing or unreadable
file, a wrong option) ends the command with exit code 2 and one line on stderr, without a traceback;
set ``DARTS_MIM_DEBUG=1`` to see the traceback.

Scaling: ``fit`` min-max scales each component with the training data's range (unless
``--no-scale``) and stores that range next to the model in ``MODEL.pt.scaling.json``; ``predict``,
``backtest`` and ``export`` read it, so that forecasts and errors are on the original scale.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["main", "build_parser"]

PROG = "darts-mim"
SCALING_SUFFIX = ".scaling.json"
DATA_EXTENSIONS = {".npz": "gridded .npz", ".csv": "CSV series", ".nc": "netCDF", ".nc4": "netCDF"}

EPILOG = """\
examples:
  darts-mim demo --out demo_output                  train, backtest, export, serve (a few minutes)
  darts-mim demo --quick --out /tmp/demo            the same in seconds, tiny models
  darts-mim fit --data flows.npz --out mim.pt --icl 12 --ocl 6 --hidden 32,32 --epochs 5
  darts-mim predict --model mim.pt --data flows.npz --n 6 --out forecast.npz
  darts-mim backtest --model mim.pt --data flows.npz --start 0.8 --horizon 6 --stride 6
  darts-mim export --model mim.pt --out mim.onnx

data files:
  .npz   a grid: `data` (T, C, H, W) or (T, H, W), `time` (T ISO strings), optional `channels`
  .csv   a (multivariate) series: a date column and numeric columns (e.g. ETTh1.csv)
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


def _load_series(path: str):
    """Read a data file into a float32 ``TimeSeries`` (gridded for ``.npz`` / ``.nc``)."""
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
    if ext == ".npz":
        series = load_grid_npz(p).series
    elif ext == ".csv":
        series = load_csv_series(p)
    else:
        series = load_netcdf(p).series
    # ONNX Runtime has no float64 convolution: keep everything float32 from the start.
    return series.astype(np.float32)


def _scaling_path(model_path: str | os.PathLike) -> Path:
    return Path(os.fspath(model_path) + SCALING_SUFFIX)


def _fit_scaling(series) -> dict:
    values = series.values(copy=False).astype(np.float64)
    lo, hi = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
    lo = np.where(np.isfinite(lo), lo, 0.0)
    span = np.where(np.isfinite(hi) & (hi > lo), hi - lo, 1.0)
    return {"offset": lo.tolist(), "scale": span.tolist()}


def _read_scaling(model_path: str) -> dict | None:
    path = _scaling_path(model_path)
    if not path.exists():
        return None
    try:
        scaling = json.loads(path.read_text())
        offset = np.asarray(scaling["offset"], dtype=np.float64)
        scale = np.asarray(scaling["scale"], dtype=np.float64)
    except (ValueError, KeyError, TypeError) as err:
        raise CliError(f"scaling file {path} is corrupt ({err}); delete it and re-fit") from err
    if offset.shape != scale.shape or offset.ndim != 1:
        raise CliError(f"scaling file {path} is corrupt (offset and scale differ in shape)")
    return {"offset": offset, "scale": scale}


def _apply_scaling(series, scaling: dict | None, inverse: bool = False):
    if scaling is None:
        return series
    offset, scale = np.asarray(scaling["offset"]), np.asarray(scaling["scale"])
    if len(offset) != series.n_components:
        raise CliError(
            f"the model was fitted on {len(offset)} components but the data has "
            f"{series.n_components}; use data with the training layout"
        )
    values = series.all_values(copy=False).astype(np.float64)
    if inverse:
        out = values * scale[None, :, None] + offset[None, :, None]
    else:
        out = (values - offset[None, :, None]) / scale[None, :, None]
    return series.with_values(out.astype(series.dtype))


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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _start(text: str) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--start is a fraction in (0, 1) or a time step index, got {text!r}"
        ) from None
    if 0 < value < 1:
        return value
    if value >= 1 and value == int(value):
        return int(value)
    raise argparse.ArgumentTypeError(
        f"--start is a fraction in (0, 1) or a positive integer index, got {text!r}"
    )


def _errors(forecasts, series) -> tuple[float, float, np.ndarray]:
    pred = np.stack([f.values(copy=False) for f in forecasts]).astype(np.float64)
    true = np.stack([series.slice_intersect(f).values(copy=False) for f in forecasts])
    diff = pred - true.astype(np.float64)
    by_step = np.sqrt(np.nanmean(diff**2, axis=(0, 2)))
    return float(np.sqrt(np.nanmean(diff**2))), float(np.nanmean(np.abs(diff))), by_step


# ---------------------------------------------------------------------------------------------------
# commands


def cmd_demo(args: argparse.Namespace) -> int:
    from darts_mim.demo import run_demo

    run_demo(
        out=args.out, epochs=args.epochs, quick=args.quick, seed=args.seed, onnx=not args.skip_onnx
    )
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    from darts_mim.model import MIMModel

    series = _load_series(args.data)
    out = Path(args.out).expanduser()
    scaling = None if args.no_scale else _fit_scaling(series)
    train = _apply_scaling(series, scaling)
    print(
        f"fitting MIMModel on {args.data}: {len(series)} steps, {series.n_components} components, "
        f"icl={args.icl}, ocl={args.ocl}, hidden={args.hidden}, {args.epochs} epoch(s)"
    )
    # Lightning's logs go to a temporary work dir: the model file is the only output.
    work_dir = tempfile.mkdtemp(prefix="darts-mim-fit-")
    try:
        model = MIMModel(
            input_chunk_length=args.icl,
            output_chunk_length=args.ocl,
            num_hidden=args.hidden,
            filter_size=args.filter_size,
            patch_size=args.patch_size,
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
        model.fit(train)
        model.save(str(out))
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    scaling_file = _scaling_path(out)
    if scaling is not None:
        scaling_file.write_text(json.dumps(scaling))
    elif scaling_file.exists():
        scaling_file.unlink()  # a stale range from an earlier fit would corrupt the forecasts
    print(f"saved {out} (+ {out.name}.ckpt" + (f", {scaling_file.name})" if scaling else ")"))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from darts_mim.grid import GridSpec, grid_spec_of, series_to_grid

    out = Path(args.out).expanduser()
    if out.suffix.lower() not in (".csv", ".npz"):
        raise CliError(f"--out must end in .csv or .npz, got {out.name!r}")
    model = _load_model(args.model)
    series = _load_series(args.data)
    scaling = _read_scaling(args.model)
    forecast = model.predict(args.n, series=_apply_scaling(series, scaling), verbose=False)
    forecast = _apply_scaling(forecast, scaling, inverse=True)
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
        forecast.to_dataframe().to_csv(out)
    print(f"wrote {args.n} forecast steps after {series.end_time()} to {out}")
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    model = _load_model(args.model)
    series = _load_series(args.data)
    scaling = _read_scaling(args.model)
    forecasts = model.historical_forecasts(
        _apply_scaling(series, scaling),
        start=args.start,
        forecast_horizon=args.horizon,
        stride=args.stride,
        retrain=False,
        last_points_only=False,
        verbose=False,
    )
    forecasts = [_apply_scaling(f, scaling, inverse=True) for f in forecasts]
    rmse, mae, by_step = _errors(forecasts, series)
    print(
        f"backtest of {args.model} on {args.data}: {len(forecasts)} forecasts of {args.horizon} "
        f"steps every {args.stride} steps from {forecasts[0].start_time()}"
    )
    print(f"RMSE {rmse:.4f}")
    print(f"MAE  {mae:.4f}")
    print("RMSE by horizon step: " + ", ".join(f"{x:.4f}" for x in by_step))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    model = _load_model(args.model)
    out = Path(args.out).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    written = model.to_onnx(str(out))
    print(f"wrote {written}")
    scaling_file = _scaling_path(args.model)
    if scaling_file.exists():
        target = _scaling_path(written)
        shutil.copyfile(scaling_file, target)
        print(
            f"the graph works on min-max scaled values: scale inputs with {target.name} "
            "((x - offset) / scale) and invert its forecasts (y * scale + offset)"
        )
    return 0


# ---------------------------------------------------------------------------------------------------
# parser and entry point


def build_parser() -> argparse.ArgumentParser:
    """The ``darts-mim`` argument parser."""
    parser = _Parser(
        prog=PROG,
        description="Memory In Memory (MIM) forecasting for Darts: demo, fit, predict, backtest and "
        "export to ONNX.",
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
        "MIMModel.save (MODEL.pt and MODEL.pt.ckpt, plus MODEL.pt.scaling.json).",
        epilog="example: darts-mim fit --data flows.npz --out mim.pt --hidden 32,32 --epochs 5",
        formatter_class=fmt,
    )
    p.add_argument("--data", required=True, help="training data (.npz, .csv or .nc)")
    p.add_argument("--out", required=True, help="model file to write, e.g. mim.pt")
    p.add_argument("--icl", type=_positive_int, default=12, help="input chunk length")
    p.add_argument("--ocl", type=_positive_int, default=6, help="output chunk length")
    p.add_argument("--hidden", type=_parse_hidden, default="32,32", help="layer widths, e.g. 32,32")
    p.add_argument("--filter-size", type=_positive_int, default=3, help="odd convolution size")
    p.add_argument("--patch-size", type=_positive_int, default=1, help="space-to-depth factor")
    p.add_argument("--epochs", type=_positive_int, default=5, help="training epochs")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="batch size")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--no-scale", action="store_true", help="train on the raw values")
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
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "backtest",
        help="historical forecasts of a saved model, with RMSE and MAE",
        description="Forecast HORIZON steps every STRIDE steps from START to the end of the data "
        "(no retraining) and print RMSE and MAE on the original scale.",
        epilog="example: darts-mim backtest --model mim.pt --data flows.npz --start 0.8",
        formatter_class=fmt,
    )
    p.add_argument("--model", required=True, help="model file written by `fit`")
    p.add_argument("--data", required=True, help="data to backtest on (.npz, .csv or .nc)")
    p.add_argument("--start", type=_start, default=0.8, help="first forecast: fraction or index")
    p.add_argument("--horizon", type=_positive_int, default=6, help="forecast horizon")
    p.add_argument("--stride", type=_positive_int, default=6, help="steps between forecasts")
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
    p.set_defaults(func=cmd_export)
    return parser


def _one_line(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``darts-mim``; returns the exit code (0 ok, 2 user error, 1 unexpected failure)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command = f"{PROG} {args.command}"
    from darts_mim.demo import quiet_logs

    try:
        with quiet_logs():
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
