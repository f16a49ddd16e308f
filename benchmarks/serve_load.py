"""Latency and throughput of the HTTP forecast servers under concurrent requests.

Starts the server in a separate process where torch, Darts and pandas cannot be imported (as in a
production image without them): ``--server asgi`` (the default) the micro-batching Starlette/uvicorn
server (``darts_mim.onnx.asgi``, the ``serve`` extra), ``--server stdlib`` the standard-library one
(``darts_mim.onnx.service``), ``--server ray`` the Ray Serve one (``darts_mim.onnx.ray_serve``, the
``ray`` extra; ``--workers`` replicas; Ray's own processes count in the server's CPU time). Then,
for each request batch size and number of concurrent clients,
has that many client threads send requests over keep-alive connections on loopback and times each
round trip (JSON encoding of the request is done beforehand; the answer is read but not decoded).
With ``--server asgi`` or ``ray`` the same run also measures the stdlib server (unless
``--no-baseline``), the
two side by side taking turns (``--rounds``), and prints the ratio of their throughputs at batch 1
and 16 clients.

Model: the bike-grid demo size (2 channels on 14x8 cells, num_hidden=(16, 16), filter_size=3,
input_chunk_length=12, output_chunk_length=6), trained for one epoch on a short slice; or
``--onnx FILE`` for any exported model without covariates.

Usage::

    python benchmarks/serve_load.py [--server asgi|stdlib|ray] [--onnx FILE] [--out-dir DIR]
        [--batches 1] [--concurrency 1,16,64] [--requests 20] [--threads 1]
        [--rounds 4] [--workers 1] [--max-batch 64] [--max-wait-ms 2] [--no-baseline]

Prints a markdown table: server, batch, clients, latency p50/p95/p99 (ms), requests/s and series/s,
the server's CPU time per request (its process and workers, user + system: what a request costs
whatever else runs on the machine), and the median time of the same forecast in the benchmark's
process without HTTP or JSON (what the server adds is the difference).
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

SERVER = """
import sys
for name in ("torch", "darts", "pandas", "xarray"):
    sys.modules[name] = None  # the service must not need them
from darts_mim.onnx.{module} import main
main({args!r})
"""


def export_demo(out_dir: Path) -> tuple[str, np.ndarray]:
    """The demo-sized bike model's ONNX file (reused from ``out_dir``) and input windows."""
    from darts_mim import MIMModel
    from darts_mim.datasets import load_bike_flows

    series = load_bike_flows().series.astype(np.float32)[-400:]
    path = out_dir / "serve_bike.onnx"
    if not path.is_file():
        model = MIMModel(
            input_chunk_length=12,
            output_chunk_length=6,
            num_hidden=(16, 16),
            filter_size=3,
            n_epochs=1,
            batch_size=32,
            random_state=0,
            work_dir=str(out_dir),
            pl_trainer_kwargs={
                "accelerator": "cpu",
                "enable_progress_bar": False,
                "enable_model_summary": False,
            },
        )
        model.fit(series[-200:])
        start = time.perf_counter()
        model.to_onnx(str(path))
        print(f"exported {path} in {time.perf_counter() - start:.0f} s", flush=True)
    values = series.values(copy=False)
    windows = np.stack([values[len(values) - 12 - k : len(values) - k] for k in range(256)])
    return str(path), windows.astype(np.float32)


def start_server(
    path: str, threads: int, server: str = "asgi", extra: list[str] | None = None
) -> tuple[subprocess.Popen, str, int]:
    """Start ``server`` (``asgi`` or ``stdlib``) on a free loopback port; its process, host, port."""
    module = {"asgi": "asgi", "stdlib": "service"}[server]
    args = [path, "--port", "0", "--threads", str(threads)] + (extra or [])
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER.format(module=module, args=args)],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    if not line.startswith("serving"):
        proc.kill()
        raise RuntimeError(f"the {server} server did not start: {line!r}")
    url = urlparse(next(w for w in line.split() if w.startswith("http://")))
    return proc, url.hostname, url.port


def load(host: str, port: int, body: bytes, clients: int, requests: int) -> tuple[list, float]:
    """``clients`` threads, ``requests`` each; returns the latencies (s) and the wall time (s)."""
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)
    errors: list[str] = []

    def client() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=300)
        mine = []
        barrier.wait()
        try:
            for _ in range(requests):
                start = time.perf_counter()
                conn.request("POST", "/forecast", body, {"Content-Type": "application/json"})
                answer = conn.getresponse()
                data = answer.read()
                mine.append(time.perf_counter() - start)
                if answer.status != 200:
                    errors.append(data.decode()[:300])
        except OSError as err:  # a reset connection fails the run instead of a silent thread
            errors.append(repr(err))
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, e.g. {errors[0]}")
    return latencies, wall


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_ray(path: str, args: argparse.Namespace) -> tuple[subprocess.Popen, str, int]:
    """Ray Serve (``darts_mim.onnx.ray_serve``, the ``ray`` extra) with ``--workers`` replicas on a
    fixed loopback port (Ray's proxy needs one); healthy once every replica answers."""
    port = _free_port()
    command = [sys.executable, "-m", "darts_mim.onnx.ray_serve", path, "--port", str(port)]
    command += ["--replicas", str(args.workers), "--threads", str(args.threads)]
    command += ["--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_healthy("127.0.0.1", port, timeout=300)
    except BaseException:
        proc.terminate()
        raise
    return proc, "127.0.0.1", port


def _start(server: str, path: str, args: argparse.Namespace) -> tuple[subprocess.Popen, str, int]:
    if server == "ray":
        return _start_ray(path, args)
    extra = []
    if server == "asgi":
        extra = ["--workers", str(args.workers), "--max-batch", str(args.max_batch)]
        extra += ["--max-wait-ms", str(args.max_wait_ms)]
        if args.workers > 1:  # several workers share a fixed port
            extra += ["--port", str(_free_port())]
    proc, host, port = start_server(path, args.threads, server, extra)
    try:
        if args.workers > 1 and server == "asgi":
            _wait_healthy(host, port)
    except BaseException:
        proc.terminate()
        raise
    return proc, host, port


def measure(
    servers: list[str],
    path: str,
    args: argparse.Namespace,
    windows: np.ndarray,
    batches: list[int],
    levels: list[int],
) -> list[tuple]:
    """Rows ``(server, batch, clients, p50, p95, p99, requests/s, series/s, request MB, server
    CPU ms per request)``.

    The servers run side by side and take turns, ``args.rounds`` rounds of ``args.requests /
    rounds`` requests per client each, so that a change in the machine's other load (it is shared)
    falls on all of them alike.
    """
    started = {}
    try:
        for server in servers:
            started[server] = _start(server, path, args)
        rows = []
        per_round = max(1, args.requests // args.rounds)
        for batch in batches:
            body = json.dumps({"n": args.n, "past_target": windows[:batch].tolist()}).encode()
            for _, host, port in started.values():
                load(host, port, body, 1, 2)  # warm-up
            for clients in levels:
                got = {server: ([], 0.0, 0.0) for server in servers}
                for _ in range(args.rounds):
                    for server, (proc, host, port) in started.items():
                        cpu = _cpu_seconds(proc.pid)
                        latencies, wall = load(host, port, body, clients, per_round)
                        spent = _cpu_seconds(proc.pid) - cpu
                        old = got[server]
                        got[server] = (old[0] + latencies, old[1] + wall, old[2] + spent)
                for server, (latencies, wall, spent) in got.items():
                    ms = np.percentile(np.array(latencies) * 1e3, [50, 95, 99])
                    rate = len(latencies) / wall
                    cpu_ms = spent / len(latencies) * 1e3
                    row = (server, batch, clients, *ms, rate, rate * batch, len(body) / 1e6, cpu_ms)
                    rows.append(row)
                    print(row, flush=True)
    finally:
        for proc, _, _ in started.values():
            proc.terminate()
            proc.wait(timeout=60)
    return rows


def _cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of the server process and its workers so far."""
    import psutil

    parent = psutil.Process(pid)
    total = 0.0
    for p in [parent, *parent.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _wait_healthy(host: str, port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection(host, port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not become healthy")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=("asgi", "stdlib", "ray"), default="asgi")
    parser.add_argument("--onnx", default=None, help="an exported model without covariates")
    parser.add_argument("--out-dir", type=Path, default=None, help="keep/reuse the demo model here")
    parser.add_argument("--batches", default="1")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--requests", type=int, default=20, help="per client and setting")
    parser.add_argument(
        "--rounds", type=int, default=4, help="turns the servers take at each setting"
    )
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per ONNX call")
    parser.add_argument("--n", type=int, default=6, help="forecast horizon")
    parser.add_argument(
        "--workers", type=int, default=1, help="asgi: server processes; ray: replicas"
    )
    parser.add_argument("--max-batch", type=int, default=64, help="asgi, ray: series per ONNX call")
    parser.add_argument("--max-wait-ms", type=float, default=2.0, help="asgi, ray: batching wait")
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="asgi, ray: do not measure the stdlib server too",
    )
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    levels = [int(c) for c in args.concurrency.split(",")]

    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="serve_load_"))
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.onnx:
        import onnxruntime as ort

        path = args.onnx
        shape = ort.InferenceSession(path).get_inputs()[0].shape
        windows = np.random.default_rng(0).random((max(batches), shape[1], shape[2]))
    else:
        path, windows = export_demo(out_dir)

    # The same forecast in this process, without HTTP and JSON: what the service adds to it.
    from darts_mim.onnx.service import ForecastService

    local = ForecastService(path, intra_op_num_threads=args.threads)
    in_process = {}
    for batch in batches:
        local.forecast(args.n, windows[:batch])
        times = []
        for _ in range(args.requests):
            start = time.perf_counter()
            local.forecast(args.n, windows[:batch])
            times.append(time.perf_counter() - start)
        in_process[batch] = float(np.median(times)) * 1e3
    del local

    servers = [args.server]
    if args.server != "stdlib" and not args.no_baseline:
        servers.append("stdlib")
    rows = measure(servers, path, args, windows, batches, levels)
    rows.sort(key=lambda r: servers.index(r[0]))
    baseline = None
    rates = {(r[0], r[1], r[2]): r[6] for r in rows}
    clients = 16 if 16 in levels else max(levels)
    if (args.server, 1, clients) in rates and ("stdlib", 1, clients) in rates:
        baseline = (clients, rates[(args.server, 1, clients)] / rates[("stdlib", 1, clients)])

    import onnxruntime as ort

    unit = {"asgi": "worker(s)", "ray": "replica(s)"}.get(args.server)
    workers = f", {args.workers} {unit}" if unit else ""
    print(
        f"\nonnxruntime {ort.__version__}, {args.threads} intra-op thread(s) per ONNX call"
        f"{workers}, {args.server} max_batch={args.max_batch} max_wait_ms={args.max_wait_ms:g}, "
        f"n={args.n}, {args.requests} requests per client, loopback\n"
    )
    print(
        "| server | batch | clients | p50 ms | p95 ms | p99 ms | requests/s | series/s "
        "| request MB | server CPU ms / request | in-process p50 ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for server, batch, clients, p50, p95, p99, rate, series_rate, mb, cpu_ms in rows:
        print(
            f"| {server} | {batch} | {clients} | {p50:.1f} | {p95:.1f} | {p99:.1f} | {rate:.1f} | "
            f"{series_rate:.0f} | {mb:.2f} | {cpu_ms:.1f} | {in_process[batch]:.1f} |"
        )
    if baseline is not None:
        clients, ratio = baseline
        print(f"\n{args.server} / stdlib throughput at batch 1, {clients} clients: {ratio:.2f}x")


if __name__ == "__main__":
    main()
