"""Training from a grid larger than memory: peak RSS and steps/s, lazy (Zarr) against in memory.

Builds an ERA5-like cube on disk with dask, written to Zarr chunk by chunk (never held in memory):
the ERA5 2-m temperature sample of ``../shared/data`` (744 hourly UK frames, 33x49) tiled to the
grid and repeated along time, each repetition shifted and perturbed by a smooth anomaly and
noise (or, with ``--source synthetic``, travelling waves: no data file needed). Then, each in its
own process, with one torch thread:

* ``lazy``: ``MIMModel.fit_from_dataset`` on a :class:`LazyGridTrainingDataset` over the whole
  cube (windows spread over all of it by the stride, shuffled, read by loader workers),
  normalised by statistics computed out of core (timed separately);
* ``memory``: the same model on the first ``--memory-steps`` steps loaded as a ``TimeSeries``
  (Darts' in-memory dataset), the path a cube that fits takes.

Peak memory counts the process and its loader workers, sampled every 0.1 s: PSS (shared pages split
between the processes that share them: what the tree holds) and the sum of RSS (shared pages counted
once per process: an upper bound). Steps/s is measured
between the end of the 5th and of the last training step. The cube is deleted at the end unless
``--keep``.

Usage: ``python benchmarks/big_grid.py [--size-gb 26] [--steps 300] [--work /tmp/big_grid]``;
``--quick`` for a seconds-long run (tests).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ERA5 = "gridded/era5_t2m_uk_2019-03_T744x33x49_K.npz"


def _source(kind: str) -> np.ndarray:
    """The frames the cube is tiled from, ``(T0, h, w)`` float32."""
    if kind == "era5":
        from darts_mim.datasets import default_data_dir

        with np.load(default_data_dir() / ERA5) as f:
            return np.asarray(f["data"], dtype=np.float32)
    t = np.arange(96)[:, None, None]
    y, x = np.mgrid[0:24, 0:32]
    return (280 + 5 * np.sin(0.26 * t + 0.4 * x + 0.2 * y)).astype(np.float32)


def _block(base: np.ndarray, t0: int, t1: int, height: int, width: int) -> np.ndarray:
    """Steps ``t0:t1`` of the cube: the base frames tiled to the grid, each repetition of the base
    shifted in space and given its own smooth anomaly, plus noise (seeded by position)."""
    n0, h0, w0 = base.shape
    t = np.arange(t0, t1)
    rep = t // n0
    reps_y, reps_x = -(-height // h0), -(-width // w0)
    tiled = np.tile(base[t % n0], (1, reps_y, reps_x))
    out = np.empty((t1 - t0, height, width), dtype=np.float32)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng([7, t0])
    for i, r in enumerate(rep):
        shift = int(r * 7) % (h0 * reps_y - height + 1)
        frame = tiled[i, shift : shift + height, :width]
        anomaly = 1.5 * np.sin(2 * np.pi * (x / width + 0.37 * r)) * np.cos(np.pi * y / height)
        out[i] = frame + anomaly
    out += 0.2 * rng.standard_normal(out.shape, dtype=np.float32)
    return out


def build_cube(
    path: Path, size_gb: float, height: int, width: int, chunk: int, source: str
) -> dict:
    """Write the cube to a Zarr store with dask, one time chunk at a time."""
    import dask.array as dsa
    import pandas as pd
    import xarray as xr

    base = _source(source)
    frame_bytes = height * width * 4
    n_steps = int(size_gb * 1e9 // frame_bytes) // chunk * chunk

    def fill(block_info=None):
        (t0, t1), _, _ = block_info[None]["array-location"]
        return _block(base, t0, t1, height, width)

    data = dsa.map_blocks(
        fill,
        chunks=((chunk,) * (n_steps // chunk), (height,), (width,)),
        dtype=np.float32,
        meta=np.empty((0, 0, 0), dtype=np.float32),
    )
    times = pd.date_range("2000-01-01", periods=n_steps, freq="h")
    da = xr.DataArray(
        data,
        dims=("time", "lat", "lon"),
        coords={
            "time": times,
            "lat": np.linspace(72.0, 72.0 - 0.25 * (height - 1), height),
            "lon": np.linspace(-25.0, -25.0 + 0.25 * (width - 1), width),
        },
        name="t2m",
    )
    start = time.perf_counter()
    # uncompressed, so that the size on disk is the size asked for (real ERA5 stores compress)
    da.to_dataset().to_zarr(
        path, mode="w", encoding={"t2m": {"compressors": None}}, consolidated=False
    )
    return {
        "n_steps": n_steps,
        "write_s": time.perf_counter() - start,
        "bytes": n_steps * frame_bytes,
    }


def _model(args, work: Path, steps_log: list):
    import pytorch_lightning as pl

    from darts_mim import MIMModel

    class Timer(pl.Callback):
        def on_train_batch_end(self, trainer, *a):
            steps_log.append(time.perf_counter())

    return MIMModel(
        input_chunk_length=args.icl,
        output_chunk_length=args.ocl,
        num_hidden=(8, 8),
        patch_size=args.patch,
        batch_size=args.batch,
        n_epochs=1,
        naive_anchor=True,
        random_state=0,
        work_dir=str(work / "darts"),
        pl_trainer_kwargs={
            "accelerator": "cpu",
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": False,
            "enable_checkpointing": False,
            "callbacks": [Timer()],
        },
    )


def measure(args, mode: str) -> dict:
    """One run (in a child process): train ``--steps`` steps, lazily or in memory."""
    import torch
    import xarray as xr

    torch.set_num_threads(1)
    from darts.utils.data import SequentialTorchTrainingDataset

    from darts_mim import grid_to_series
    from darts_mim.datasets import LazyGridTrainingDataset, grid_stats, open_grid

    work = Path(args.work)
    da = open_grid(work / "cube.zarr", "t2m")
    samples = args.steps * args.batch
    out: dict = {"mode": mode}
    steps_log: list[float] = []
    model = _model(args, work, steps_log)
    if mode == "lazy":
        start = time.perf_counter()
        stats = grid_stats(da)
        out["stats_s"] = time.perf_counter() - start
        (work / "stats.json").write_text(json.dumps(stats.to_dict()))
        probe = LazyGridTrainingDataset(da, args.icl, args.ocl, stats=stats)
        stride = max(1, probe.n_windows // samples)  # windows spread over the whole cube
        dataset = LazyGridTrainingDataset(
            da, args.icl, args.ocl, stride=stride, max_samples_per_ts=samples, stats=stats
        )
        loader = {"num_workers": args.workers, "persistent_workers": False}
        out["cube_steps_read"] = f"1 window every {stride} steps over {da.sizes['time']}"
    else:
        stats = grid_stats(da.isel(time=slice(0, args.memory_steps)))
        frames = stats.normalise(
            np.asarray(da.isel(time=slice(0, args.memory_steps)).values)[:, None]
        )
        series = grid_to_series(frames, da.time.values[: args.memory_steps], ["t2m"])
        del frames
        dataset = SequentialTorchTrainingDataset(
            series,
            input_chunk_length=args.icl,
            output_chunk_length=args.ocl,
            max_samples_per_ts=samples,
        )
        loader = {"num_workers": 0}
        out["cube_steps_read"] = f"first {args.memory_steps} steps in memory"
        del xr
    start = time.perf_counter()
    model.fit_from_dataset(dataset, dataloader_kwargs=loader)
    out["fit_s"] = time.perf_counter() - start
    warm = min(5, len(steps_log) - 2)
    out["steps"] = len(steps_log)
    out["steps_per_s"] = (len(steps_log) - 1 - warm) / (steps_log[-1] - steps_log[warm])
    return out


def _tree_memory(pid: int) -> tuple[int, int]:
    """RSS and PSS summed over a process and its children (loader workers). RSS counts the pages
    the forked workers share with their parent once per process; PSS splits them between the
    sharers, so its sum is the memory the tree actually holds."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    rss = pss = 0
    for p in procs:
        try:
            info = p.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return rss, pss


def run_child(args, mode: str) -> dict:
    """Run :func:`measure` in a fresh process, sampling the RSS of it and its loader workers."""
    cmd = [sys.executable, __file__, "--measure", mode, *sys.argv[1:]]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO)
    peak = [0, 0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            rss, pss = _tree_memory(child.pid)
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = child.communicate()
    done.set()
    sampler.join()
    if child.returncode:
        raise RuntimeError(f"the {mode} run failed (exit {child.returncode})")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_rss_gb"], result["peak_pss_gb"] = peak[0] / 1e9, peak[1] / 1e9
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=26.0, help="cube size on disk (GB)")
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=384)
    parser.add_argument("--chunk", type=int, default=16, help="time steps per Zarr chunk")
    parser.add_argument("--steps", type=int, default=300, help="training steps per run")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--patch", type=int, default=8)
    parser.add_argument("--icl", type=int, default=12)
    parser.add_argument("--ocl", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2, help="loader workers of the lazy run")
    parser.add_argument(
        "--memory-steps", type=int, default=2000, help="steps of the in-memory cube"
    )
    parser.add_argument("--source", choices=["era5", "synthetic"], default="era5")
    parser.add_argument("--work", default="/tmp/darts_mim_big_grid", help="where the cube goes")
    parser.add_argument("--keep", action="store_true", help="keep the cube")
    parser.add_argument("--quick", action="store_true", help="a tiny cube and 10 steps (tests)")
    parser.add_argument("--measure", choices=["lazy", "memory"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.size_gb, args.height, args.width, args.steps = 0.02, 32, 48, 10
        args.memory_steps, args.workers, args.source = 400, 1, "synthetic"
    if args.measure:
        print(json.dumps(measure(args, args.measure)), flush=True)
        return {}
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    try:
        cube = build_cube(
            work / "cube.zarr", args.size_gb, args.height, args.width, args.chunk, args.source
        )
        print(
            f"cube: {cube['n_steps']} hourly steps x {args.height}x{args.width}, "
            f"{cube['bytes'] / 1e9:.1f} GB, written in {cube['write_s']:.0f} s",
            flush=True,
        )
        lazy = run_child(args, "lazy")
        memory = run_child(args, "memory")
    finally:
        if not args.keep:
            shutil.rmtree(work / "cube.zarr", ignore_errors=True)
    ratio = lazy["steps_per_s"] / memory["steps_per_s"]
    rows = [
        ("lazy, Zarr", f"{cube['bytes'] / 1e9:.1f} GB", lazy),
        ("in memory", f"{args.memory_steps * args.height * args.width * 4 / 1e9:.2f} GB", memory),
    ]
    print(
        f"\nMIMModel(num_hidden=(8, 8), patch_size={args.patch}), batch {args.batch}, "
        f"{args.icl} in / {args.ocl} out, {args.height}x{args.width} grid, one torch thread\n"
    )
    print("| data | cube | samples read | peak PSS (GB) | peak RSS sum (GB) | steps/s | steps |")
    print("|---|---|---|---|---|---|---|")
    for name, size, r in rows:
        print(
            f"| {name} | {size} | {r['cube_steps_read']} | {r['peak_pss_gb']:.2f} | "
            f"{r['peak_rss_gb']:.2f} | {r['steps_per_s']:.2f} | {r['steps']} |"
        )
    print(
        f"\nlazy / in memory steps/s: {ratio:.0%}; out-of-core statistics: {lazy['stats_s']:.0f} s"
    )
    return {"cube": cube, "lazy": lazy, "memory": memory, "ratio": ratio}


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
