"""Forecast latency and throughput: ``MIMModel.predict`` (torch + Darts + Lightning) vs
``OnnxForecaster.predict`` (ONNX Runtime), end to end (TimeSeries in and out) and bare network calls.

Models (both trained for one epoch on a short slice, so the weights are real but barely fitted):

- gridded: the NYC bike flows bundled with the package (2 channels on a 14x8 grid, 30-minute steps),
  num_hidden=(32, 32, 32), filter_size=3, input_chunk_length=12, output_chunk_length=6;
- multivariate: random data with 7 columns (ETTh1-like width; the values do not matter for timing),
  same widths, filter_size=1, same chunks.

Usage::

    python benchmarks/onnx_vs_torch.py [--repeats 10] [--out-dir /tmp/onnx_bench]

Prints a markdown table, the ONNX/torch speed-up ratios and the largest torch/ONNX difference seen.
With ``--out-dir``, the fitted models and their ONNX files are kept there and reused by later runs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from darts import TimeSeries
from darts.utils.data.torch_datasets.utils import ModuleStage, PLModuleInput

from darts_mim import MIMModel
from darts_mim.datasets import load_bike_flows
from darts_mim.onnx.runtime import OnnxForecaster

TRAINER = {"accelerator": "cpu", "enable_progress_bar": False, "enable_model_summary": False}
ICL, OCL, BATCH = 12, 6, 64


def _timed(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` in seconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


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


def bench(name: str, series: TimeSeries, filter_size: int, out_dir: Path, repeats: int) -> dict:
    stem = name.replace(" ", "_")
    model_path, path = out_dir / f"{stem}.pt", str(out_dir / f"{stem}.onnx")
    export_s = float("nan")
    if model_path.is_file() and Path(path).is_file():
        # Reuse a previous run's model and export (the dynamo export takes minutes on 2 cores).
        model = MIMModel.load(str(model_path))
    else:
        model = _fit(series, filter_size, str(out_dir))
        model.save(str(model_path))
        start = time.perf_counter()
        model.to_onnx(path)
        export_s = time.perf_counter() - start
    forecaster = OnnxForecaster(path)
    many = [series[: len(series) - k] for k in range(BATCH)]
    one = series

    # End to end, TimeSeries in and out.
    torch_1 = _timed(lambda: model.predict(OCL, one, verbose=False), repeats)
    onnx_1 = _timed(lambda: forecaster.predict(OCL, one), repeats)
    torch_64 = _timed(lambda: model.predict(OCL, many, batch_size=BATCH, verbose=False), repeats)
    onnx_64 = _timed(lambda: forecaster.predict(OCL, many), repeats)

    # Bare network call on the same arrays.
    windows = np.stack([s.values(copy=False)[-ICL:] for s in many]).astype(np.float32)
    module = model.model.eval()

    def torch_bare(b: int):
        x_in = PLModuleInput(past_target=torch.from_numpy(windows[:b]), stage=ModuleStage.PREDICT)
        with torch.inference_mode():
            return module(x_in).prediction

    def onnx_bare(b: int):
        return forecaster.session.run(["prediction"], {"past_target": windows[:b]})[0]

    bare = {
        b: (_timed(lambda b=b: torch_bare(b), repeats), _timed(lambda b=b: onnx_bare(b), repeats))
        for b in (1, BATCH)
    }

    # Agreement.
    diffs = [np.abs(torch_bare(BATCH).numpy() - onnx_bare(BATCH)).max()]
    for t, o in zip(
        model.predict(OCL, many, batch_size=BATCH, verbose=False),
        forecaster.predict(OCL, many),
        strict=True,
    ):
        diffs.append(np.abs(t.values() - o.values()).max())
    return {
        "name": name,
        "export_s": export_s,
        "e2e_1": (torch_1, onnx_1),
        "e2e_64": (torch_64, onnx_64),
        "bare_1": bare[1],
        "bare_64": bare[BATCH],
        "max_diff": float(max(diffs)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out-dir", type=Path, default=None)
    args = parser.parse_args()
    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="onnx_bench_"))
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)

    bike = load_bike_flows().series.astype(np.float32)[-400:]
    rng = np.random.default_rng(0)
    multi = TimeSeries.from_times_and_values(
        pd.date_range("2016-07-01", periods=400, freq="h"),
        rng.standard_normal((400, 7)).astype(np.float32),
        columns=["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"],
    )
    results = []
    for name, series, filter_size in (("gridded 2x14x8", bike, 3), ("multivariate 7", multi, 1)):
        results.append(bench(name, series, filter_size, out_dir, args.repeats))
        print(results[-1], flush=True)

    print(
        f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"median of {args.repeats} runs; n = output_chunk_length = {OCL}\n"
    )
    print("| model | measure | torch | ONNX | ONNX speed-up |")
    print("|---|---|---|---|---|")
    for r in results:
        for key, label, per in (
            ("e2e_1", "end to end, 1 series (ms)", 1),
            ("e2e_64", f"end to end, {BATCH} series (series/s)", BATCH),
            ("bare_1", "bare forward, batch 1 (ms)", 1),
            ("bare_64", f"bare forward, batch {BATCH} (series/s)", BATCH),
        ):
            t, o = r[key]
            if per == 1:
                cells = f"{t * 1e3:.1f} | {o * 1e3:.1f}"
            else:
                cells = f"{per / t:.0f} | {per / o:.0f}"
            print(f"| {r['name']} | {label} | {cells} | {t / o:.1f}x |")
    print()
    for r in results:
        print(
            f"{r['name']}: "
            + ("export reused" if np.isnan(r["export_s"]) else f"export {r['export_s']:.0f} s")
            + f"; largest |torch - ONNX| = {r['max_diff']:.2e}"
        )


if __name__ == "__main__":
    main()
