"""Forecast latency and throughput: ``MIMModel.predict`` (torch + Darts + Lightning) vs
``OnnxForecaster.predict`` (ONNX Runtime), end to end (TimeSeries in and out) and bare network calls.

Models (both trained for one epoch on a short slice, so the weights are real but barely fitted):

- gridded: the NYC bike flows bundled with the package (2 channels on a 14x8 grid, 30-minute steps),
  num_hidden=(32, 32, 32), filter_size=3, input_chunk_length=12, output_chunk_length=6;
- multivariate: random data with 7 columns (ETTh1-like width; the values do not matter for timing),
  same widths, filter_size=1, same chunks.
- probabilistic: the multivariate model with a Gaussian likelihood and ``add_encoders`` (time of
  day, day of week, scaled): sample paths (autoregressive, each path feeding back its own draws)
  timed on both runtimes, their statistics compared, and the encodings each runtime computes checked
  through the likelihood parameters.

Usage::

    python benchmarks/onnx_vs_torch.py [--repeats 3] [--batches 1,16,64,256] [--threads 1]
        [--dynamo] [--quick] [--no-old-layout] [--out-dir /tmp/onnx_bench]

Prints two markdown tables: export (wall and CPU seconds, file size, session start; with
``--dynamo`` the old unrolled dynamo export beside it) for the bike demo size and a 4x64 Moving MNIST
model, and end-to-end forecasts at each batch size on the float32 graph (the file ``to_onnx`` writes
by default), the int8 graph and, unless ``--no-old-layout``, the float32 graph with its weights
outside the ``Loop`` bodies (``to_onnx(compact=True)``, darts-mim 0.7's layout)
against ``MIMModel.predict`` (torch and ONNX Runtime both on ``--threads`` threads, timed in turns),
then per model and batch size the times, the speed-ups and the forecast RMSE of each graph relative
to torch's, and the largest torch/ONNX differences. With ``--out-dir``, the fitted models are kept
there and reused by later runs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import torch
from darts import TimeSeries

from darts_mim import MIMModel, grid_to_series
from darts_mim.datasets import load_bike_flows
from darts_mim.onnx.runtime import OnnxForecaster

TRAINER = {"accelerator": "cpu", "enable_progress_bar": False, "enable_model_summary": False}
ICL, OCL, BATCH = 12, 6, 64


def _fit(series: TimeSeries, filter_size: int, work_dir: str) -> MIMModel:
    model = MIMModel(
        input_chunk_length=ICL,
        output_chunk_length=OCL,
        num_hidden=(32, 32, 32),
        filter_size=filter_size,
        n_epochs=1,
        batch_size=32,
        random_state=0,
        work_dir=work_dir,
        pl_trainer_kwargs=TRAINER,
    )
    return model.fit(series[-200:])


def _export_timed(model: MIMModel, path: str, **kwargs) -> tuple[float, float]:
    """(wall, CPU) seconds of ``model.to_onnx(path, **kwargs)``; CPU time is what one core spends,
    which a shared machine's load does not inflate."""
    wall, cpu = time.perf_counter(), time.process_time()
    model.to_onnx(path, **kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu


def _forecaster(path: str, threads: int) -> OnnxForecaster:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return OnnxForecaster(path, providers=["CPUExecutionProvider"], session_options=options)


def _interleaved(fns: dict, repeats: int) -> dict[str, float]:
    """Median wall time of each function, the functions taking turns (so that a busy machine's load
    falls on all of them alike), after one warm-up call each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {key: [] for key in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return {key: float(np.median(v)) for key, v in times.items()}


def bench(
    name: str,
    series: TimeSeries,
    filter_size: int,
    out_dir: Path,
    repeats: int,
    batches: list[int],
    threads: int,
    old_layout: bool = True,
) -> dict:
    """Export (float32 and int8) and end-to-end forecasts of ``batch`` series for each batch size:
    ``MIMModel.predict`` vs ``OnnxForecaster.predict`` on the float32 and on the int8 graph (and on
    the float32 graph with the weights outside the loop bodies, with ``old_layout``)."""
    stem = name.replace(" ", "_")
    model_path = out_dir / f"{stem}.pt"
    path, path8 = str(out_dir / f"{stem}.onnx"), str(out_dir / f"{stem}.int8.onnx")
    if model_path.is_file():
        model = MIMModel.load(str(model_path))
    else:
        model = _fit(series[:-400], filter_size, str(out_dir))
        model.save(str(model_path))
    served = series[-400:]
    # Calibrate on the weeks before the served part.
    export = _export_timed(model, path)
    export8 = _export_timed(model, path8, int8_calibration=series[:-400])
    forecaster, forecaster8 = _forecaster(path, threads), _forecaster(path8, threads)
    quantization = forecaster8.metadata.get("quantization") or {}
    graphs = {"onnx": forecaster, "int8": forecaster8}
    if old_layout:
        path_old = str(out_dir / f"{stem}.outside.onnx")
        model.to_onnx(path_old, compact=True)
        graphs["outside"] = _forecaster(path_old, threads)

    rows = {}
    for batch in batches:
        many = [served[: len(served) - k] for k in range(batch)]
        fns = {"torch": lambda m=many, b=batch: model.predict(OCL, m, batch_size=b, verbose=False)}
        for key, f in graphs.items():
            fns[key] = lambda m=many, f=f: f.predict(OCL, m)
        rows[batch] = _interleaved(fns, repeats)

    # Agreement with torch, and the forecast error against what happened, on 64 origins of the
    # served part (each forecasts the OCL steps after it).
    origins = [served[: len(served) - OCL - k] for k in range(0, 64 * 3, 3)]
    truth = np.stack([served.values()[len(o) : len(o) + OCL] for o in origins])

    def values(forecasts) -> np.ndarray:
        return np.stack([f.values() for f in forecasts])

    torch_fc = values(model.predict(OCL, origins, batch_size=64, verbose=False))
    onnx_fc = values(forecaster.predict(OCL, origins))
    int8_fc = values(forecaster8.predict(OCL, origins))

    def rmse(fc: np.ndarray) -> float:
        return float(np.sqrt(np.nanmean(np.square(fc - truth))))

    outside_diff = (
        float(np.nanmax(np.abs(torch_fc - values(graphs["outside"].predict(OCL, origins)))))
        if old_layout
        else float("nan")
    )
    return {
        "outside_max_diff": outside_diff,
        "sizes_mb": {k: Path(f.path).stat().st_size / 1e6 for k, f in graphs.items()},
        "name": name,
        "export": export,
        "export8": export8,
        "size_mb": Path(path).stat().st_size / 1e6,
        "rows": rows,
        "max_diff": float(np.nanmax(np.abs(torch_fc - onnx_fc))),
        "int8_max_diff": float(np.nanmax(np.abs(torch_fc - int8_fc))),
        "rmse": (rmse(torch_fc), rmse(onnx_fc), rmse(int8_fc)),
        "int8_calibration_relative_rmse": quantization.get("relative_rmse", float("nan")),
    }


def bench_export(name: str, kwargs: dict, frames: np.ndarray, out_dir: Path, dynamo: bool) -> dict:
    """Export time and file size of a model fitted for one step (export does not depend on the
    weights' values); with ``dynamo``, the unrolled dynamo export too, for comparison."""
    times = pd.date_range("2024-01-01", periods=len(frames), freq="h")
    series = grid_to_series(frames, times, [f"c{i}" for i in range(frames.shape[1])])
    trainer = dict(TRAINER, max_steps=1)
    model = MIMModel(
        **kwargs,
        n_epochs=1,
        batch_size=2,
        random_state=0,
        work_dir=str(out_dir),
        pl_trainer_kwargs=trainer,
    ).fit(series)
    path = str(out_dir / f"export_{name.split()[0]}.onnx")
    wall, cpu = _export_timed(model, path)
    start = time.perf_counter()
    _forecaster(path, 1)
    session_s = time.perf_counter() - start
    out = {
        "name": name,
        "export": (wall, cpu),
        "size_mb": Path(path).stat().st_size / 1e6,
        "session_s": session_s,
        "dynamo": None,
    }
    if dynamo:
        from darts_mim.onnx import export as onnx_export

        module = model.model
        module._trainer = None
        graph = onnx_export._ForecastGraph(module.float().eval(), ["past_target"]).eval()
        inputs = onnx_export._example_inputs(module, torch.float32, batch=2)
        wall, cpu = time.perf_counter(), time.process_time()
        with torch.no_grad():
            proto = onnx_export._torch_export(graph, inputs, None)
        out["dynamo"] = (time.perf_counter() - wall, time.process_time() - cpu)
        out["dynamo_size_mb"] = len(proto.SerializeToString()) / 1e6
    return out


def bench_probabilistic(
    series: TimeSeries, out_dir: Path, repeats: int, threads: int = 1, k: int = 100
) -> dict:
    """Sampling and encoders: a Gaussian model with ``add_encoders`` (time of day, day of week,
    scaled), ``k`` sample paths of 2 * output_chunk_length steps (autoregressive) from torch and from
    the ONNX runtime (``threads`` each, timed in turns), and the agreement of their sample statistics
    and of the parameters."""
    from darts.dataprocessing.transformers import Scaler
    from darts.utils.likelihood_models.torch import GaussianLikelihood

    model_path, path = out_dir / "probabilistic.pt", str(out_dir / "probabilistic.onnx")
    export_s = float("nan")
    if model_path.is_file() and Path(path).is_file():
        model = MIMModel.load(str(model_path))
    else:
        model = MIMModel(
            input_chunk_length=ICL,
            output_chunk_length=OCL,
            num_hidden=(32, 32, 32),
            filter_size=1,
            n_epochs=1,
            batch_size=32,
            random_state=0,
            likelihood=GaussianLikelihood(),
            add_encoders={
                "cyclic": {"future": ["hour"]},
                "datetime_attribute": {"future": ["dayofweek"]},
                "transformer": Scaler(),
            },
            work_dir=str(out_dir),
            pl_trainer_kwargs=TRAINER,
        ).fit(series[-200:])
        model.save(str(model_path))
        start = time.perf_counter()
        model.to_onnx(path)
        export_s = time.perf_counter() - start
    forecaster = _forecaster(path, threads)
    n = 2 * OCL
    timed = _interleaved(
        {
            "torch": lambda: model.predict(n, series, num_samples=k, verbose=False),
            "onnx": lambda: forecaster.predict(n, series, num_samples=k, random_state=0),
        },
        repeats,
    )
    torch_s, onnx_s = timed["torch"], timed["onnx"]
    # Sample statistics over 2000 paths, relative to the torch samples' 10-90 % spread.
    a = forecaster.predict(n, series, num_samples=2000, random_state=1).all_values()
    b = model.predict(n, series, num_samples=2000, verbose=False).all_values()
    spread = np.quantile(b, 0.9, axis=-1) - np.quantile(b, 0.1, axis=-1)
    gaps = {
        "mean": np.abs(a.mean(-1) - b.mean(-1)) / spread,
        "std": np.abs(a.std(-1) - b.std(-1)) / spread,
        "q10": np.abs(np.quantile(a, 0.1, -1) - np.quantile(b, 0.1, -1)) / spread,
        "q90": np.abs(np.quantile(a, 0.9, -1) - np.quantile(b, 0.9, -1)) / spread,
    }
    params = model.predict(OCL, series, predict_likelihood_parameters=True, verbose=False)
    params_onnx = forecaster.predict(OCL, series, predict_likelihood_parameters=True)
    return {
        "export_s": export_s,
        "k": k,
        "n": n,
        "time": (torch_s, onnx_s),
        "gaps": {key: float(v.max()) for key, v in gaps.items()},
        "params_diff": float(np.abs(params.values() - params_onnx.values()).max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out-dir", type=Path, default=None)
    parser.add_argument("--batches", default="1,16,64,256", help="comma-separated batch sizes")
    parser.add_argument(
        "--no-old-layout",
        action="store_true",
        help="do not time the float32 graph with its weights outside the loop bodies (0.7's layout)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch and ONNX Runtime threads (default 1)"
    )
    parser.add_argument(
        "--dynamo",
        action="store_true",
        help="also time the old unrolled dynamo export of the demo-sized model (about a minute)",
    )
    parser.add_argument("--quick", action="store_true", help="batches 1,16 only, no Moving MNIST")
    args = parser.parse_args()
    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="onnx_bench_"))
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    batches = [1, 16] if args.quick else [int(b) for b in args.batches.split(",")]

    rng = np.random.default_rng(0)
    exports = [
        bench_export(
            "bike demo 2x16, 12+6",
            dict(input_chunk_length=12, output_chunk_length=6, num_hidden=(16, 16), filter_size=3),
            rng.random((60, 2, 14, 8), dtype=np.float32),
            out_dir,
            args.dynamo,
        )
    ]
    if not args.quick:
        exports.append(
            bench_export(
                "Moving MNIST 4x64, 10+10",
                dict(
                    input_chunk_length=10,
                    output_chunk_length=10,
                    num_hidden=(64, 64, 64, 64),
                    filter_size=5,
                    patch_size=4,
                ),
                rng.random((40, 1, 64, 64), dtype=np.float32),
                out_dir,
                False,  # the unrolled dynamo export of 20 steps of 4x64 takes many minutes
            )
        )
    for e in exports:
        print(e, flush=True)

    bike = load_bike_flows().series.astype(np.float32)
    multi = TimeSeries.from_times_and_values(
        pd.date_range("2016-07-01", periods=1000, freq="h"),
        rng.standard_normal((1000, 7)).astype(np.float32),
        columns=["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"],
    )
    results = []
    for name, series, filter_size in (("gridded 2x14x8", bike, 3), ("multivariate 7", multi, 1)):
        results.append(
            bench(
                name,
                series,
                filter_size,
                out_dir,
                args.repeats,
                batches,
                args.threads,
                old_layout=not args.no_old_layout,
            )
        )
        print(results[-1], flush=True)
    p = bench_probabilistic(multi, out_dir, args.repeats, args.threads)
    print(p, flush=True)

    print(
        f"\ntorch {torch.__version__}, onnxruntime {ort.__version__}, {args.threads} thread(s) "
        f"each; median of {args.repeats} interleaved runs; n = output_chunk_length = {OCL}; "
        "end to end (TimeSeries in and out)\n"
    )
    print("| model | export s, wall / CPU | file MB | session s | unrolled dynamo export s |")
    print("|---|---|---|---|---|")
    for e in exports:
        dyn = (
            "-"
            if e["dynamo"] is None
            else (f"{e['dynamo'][0]:.1f} / {e['dynamo'][1]:.1f} ({e['dynamo_size_mb']:.1f} MB)")
        )
        print(
            f"| {e['name']} | {e['export'][0]:.1f} / {e['export'][1]:.1f} | {e['size_mb']:.1f} | "
            f"{e['session_s']:.2f} | {dyn} |"
        )
    print()
    print(
        "| model | batch | torch predict ms | ONNX float32 ms (the default file) | float32 x torch "
        "| int8 ms | int8 x torch | float32, weights outside the loops (0.7) ms | x torch |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for b in batches:
            row = r["rows"][b]
            t = row["torch"]

            def cell(key: str, row=row, t=t) -> str:
                if key not in row:
                    return "- | -"
                return f"{row[key] * 1e3:.0f} | **{t / row[key]:.2f}x**"

            print(
                f"| {r['name']} | {b} | {t * 1e3:.0f} | {cell('onnx')} | {cell('int8')} | "
                f"{cell('outside')} |"
            )
    print()
    for r in results:
        t, o, q = r["rmse"]
        sizes = ", ".join(f"{k} {v:.1f} MB" for k, v in r["sizes_mb"].items())
        print(
            f"{r['name']}: export s (wall / CPU) float32 {r['export'][0]:.1f} / "
            f"{r['export'][1]:.1f}, int8 {r['export8'][0]:.1f} / {r['export8'][1]:.1f}; files: "
            f"{sizes}; largest |torch - ONNX| = {r['max_diff']:.2e} (float32), "
            f"{r['outside_max_diff']:.2e} (float32, weights outside), {r['int8_max_diff']:.2e} "
            f"(int8); forecast RMSE against the truth over 64 origins: torch {t:.4f}, ONNX float32 "
            f"{o:.4f} ({(o / t - 1) * 100:+.3f} % of torch's), int8 {q:.4f} "
            f"({(q / t - 1) * 100:+.2f} %); int8 vs float32 on the calibration windows: relative "
            f"RMSE {r['int8_calibration_relative_rmse']:.2%}"
        )
    print()
    t, o = p["time"]
    print("| model | forecast | torch ms | ONNX ms | x torch |")
    print("|---|---|---|---|---|")
    print(
        f"| multivariate 7, Gaussian + encoders | {p['k']} sample paths of {p['n']} steps, "
        f"autoregressive (ms) | {t * 1e3:.1f} | {o * 1e3:.1f} | {t / o:.1f}x |"
    )
    print()
    print(
        "sampling (2000 paths, largest gap over steps and components, in units of torch's 10-90 % "
        "spread): " + ", ".join(f"{key} {v:.3f}" for key, v in p["gaps"].items())
    )
    print(
        "encoders (computed by each runtime from the time index): largest |torch - ONNX| "
        f"likelihood parameter = {p['params_diff']:.2e}"
        + ("" if np.isnan(p["export_s"]) else f"; export {p['export_s']:.0f} s")
    )


if __name__ == "__main__":
    main()
