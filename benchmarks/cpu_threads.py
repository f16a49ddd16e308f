"""Torch threads for MIM on a CPU: one epoch of the README quickstart with 1 and more threads, on an
idle machine and with other work sharing the cores.

Each configuration runs in its own process (torch's thread pool is set once per process). ``--busy K``
also starts K processes that spin on a core each while the fits run, as other jobs on a shared machine
do. Prints a table with wall and CPU seconds and the ratio to one thread in the same setting.

Run: ``python benchmarks/cpu_threads.py [--threads 1,2] [--busy 0,1] [--days 28]``
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import time

FIT = """
import sys, time, warnings
warnings.simplefilter("ignore")
import torch
torch.set_num_threads(int(sys.argv[1]))
from darts_mim import MIMModel
from darts_mim.datasets import load_bike_flows
days = int(sys.argv[2])
flows = load_bike_flows().series
train = flows[-(days + 1) * 48 : -48]
model = MIMModel(input_chunk_length=12, output_chunk_length=6, num_hidden=(16, 16), filter_size=3,
                 n_epochs=1, random_state=0,
                 pl_trainer_kwargs={"enable_progress_bar": False, "logger": False,
                                    "enable_model_summary": False})
wall, cpu = time.perf_counter(), time.process_time()
model.fit(train)
print(time.perf_counter() - wall, time.process_time() - cpu)
"""


def _spin(stop) -> None:
    while not stop.is_set():
        pass


def measure(threads: int, busy: int, days: int) -> tuple[float, float]:
    """Wall and CPU seconds of one epoch with ``threads`` torch threads and ``busy`` spinning
    processes beside it."""
    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(busy)]
    for p in spinners:
        p.start()
    try:
        out = subprocess.run(
            [sys.executable, "-c", FIT, str(threads), str(days)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "OMP_NUM_THREADS": str(threads)},
        )
    finally:
        stop.set()
        for p in spinners:
            p.join()
    wall, cpu = (float(x) for x in out.stdout.split()[-2:])
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument(
        "--busy", default="0,1", help="comma-separated counts of spinning processes"
    )
    parser.add_argument("--days", type=int, default=28, help="days of bike flows to train on")
    args = parser.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",")]
    busy = [int(b) for b in args.busy.split(",")]
    print(f"CPUs: {os.cpu_count()}, affinity {len(os.sched_getaffinity(0))}; {time.ctime()}")
    print(
        "| other busy processes | torch threads | wall (s) | CPU (s) | wall / first row's "
        "| load before |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for b in busy:
        base = None
        for t in threads:
            load = os.getloadavg()[0]  # other jobs on the machine, beyond the spinners started here
            wall, cpu = measure(t, b, args.days)
            base = wall if base is None else base
            row = f"| {b} | {t} | {wall:.1f} | {cpu:.1f} | {wall / base:.2f} | {load:.2f} |"
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
