"""Two-node training on one machine: two ``torchrun`` processes (one per node, gloo) train one
MIMModel from a Zarr store with Lightning's DDP; node 0 saves it and forecasts on one device."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_lazy import write_era5_like_store

pytest.importorskip("zarr")

SCRIPT = Path(__file__).with_name("multinode_train.py")
TIMEOUT_S = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(TIMEOUT_S + 60)
def test_two_nodes_with_torchrun_train_then_predict(tmp_path):
    store = write_era5_like_store(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    procs = []
    try:
        for rank in (0, 1):
            cmd = [
                sys.executable,
                "-m",
                "torch.distributed.run",  # torchrun
                "--nnodes",
                "2",
                "--nproc_per_node",
                "1",
                "--node_rank",
                str(rank),
                "--master_addr",
                "127.0.0.1",
                "--master_port",
                str(port),
                str(SCRIPT),
                store,
                str(out),
            ]
            log = open(tmp_path / f"node{rank}.log", "w")  # noqa: SIM115 (closed below)
            # own session: on failure or timeout the whole tree (torchrun and its worker) is killed
            procs.append(
                (
                    subprocess.Popen(
                        cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
                    ),
                    log,
                )
            )
        for proc, _ in procs:
            proc.wait(timeout=TIMEOUT_S)
    finally:
        for proc, log in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            log.close()
    logs = "\n".join((tmp_path / f"node{r}.log").read_text()[-3000:] for r in (0, 1))
    assert [p.returncode for p, _ in procs] == [0, 0], logs
    reports = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    for r, report in enumerate(reports):
        assert report["rank"] == r
        assert report["world_size"] == 2 and report["num_nodes"] == 2
    # each node trained on its half of the 52 windows (4 batches of 8 per epoch instead of 7)
    assert reports[0]["batches_per_epoch"] == 4
    assert reports[0]["global_step"] == 8
    # DDP kept the two nodes' weights identical
    assert reports[0]["weights_sum"] == reports[1]["weights_sum"]
    assert reports[0]["weights_abs_sum"] == reports[1]["weights_abs_sum"]
    forecast = np.load(out / "forecast.npy")
    assert forecast.shape == (4, 1, 4, 6)
    assert np.isfinite(forecast).all()
    assert 270 < forecast.mean() < 290  # back in kelvin, near the data's 280
