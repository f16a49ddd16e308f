"""``benchmarks/gpu_check.sh --cpu-smoke`` runs every part of the GPU check end to end on a CPU, and
the check's whole-step CUDA graph (``benchmarks/_graphed_step.py``) selects its mode and falls back to
eager steps where no GPU is."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from darts_mim.nn import MIMNetwork

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPT = BENCHMARKS / "gpu_check.sh"


def _graphed_step():
    spec = importlib.util.spec_from_file_location("_graphed_step", BENCHMARKS / "_graphed_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_net() -> MIMNetwork:
    torch.manual_seed(0)
    return MIMNetwork(1, 0, 4, 4, num_hidden=(4, 4), filter_size=3)


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "GPU_CHECK_TIMEOUT": "300"}
    return subprocess.run(
        ["bash", str(SCRIPT), "--cpu-smoke", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=400,
    )


@pytest.mark.slow
def test_cpu_smoke_prints_every_table():
    done = _run()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "all parts ran." in out
    # the network and serving table, the fit table (three variants per case), the defaults check
    assert "| train fp32 steps/s (peak MiB) |" in out
    assert "eager)" in out  # the graphed step's column: no CUDA, so it ran eagerly
    assert out.count("| fp32 + CUDA graphs |") == 2
    assert "| cuda_graphs=True |" in out
    # on a CPU nothing is replayed and the two fits agree exactly
    assert "largest difference between the two forecasts: 0.00e+00" in out


def test_unknown_part_is_refused():
    done = _run("--parts", "fit,speed")
    assert done.returncode != 0
    assert "--parts takes network, fit, serve, defaults" in done.stderr


# ---------------------------------------------------------------- the whole-step CUDA graph
def test_step_mode_selection():
    select_step_mode = _graphed_step().select_step_mode
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert select_step_mode("auto", cuda, cuda_available=True) == "cuda_graph"
    assert select_step_mode("cuda_graph", cuda, cuda_available=True) == "cuda_graph"
    assert select_step_mode("eager", cuda, cuda_available=True) == "eager"
    assert select_step_mode("auto", cpu, cuda_available=True) == "eager"
    assert select_step_mode("cuda_graph", cpu, cuda_available=False) == "eager"
    assert select_step_mode("auto", cuda, cuda_available=False) == "eager"
    with pytest.raises(ValueError, match="mode"):
        select_step_mode("graphs", cpu, cuda_available=False)


@pytest.mark.parametrize("mode", ["auto", "cuda_graph", "eager"])
def test_cpu_step_falls_back_to_eager_and_trains_like_a_plain_loop(mode, _one_thread):
    TrainStep = _graphed_step().TrainStep
    past, future = torch.rand(2, 3, 1, 4, 4), torch.rand(2, 2, 1, 4, 4)
    losses = []
    for graphed in (True, False):
        net = tiny_net()
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)

        def loss_fn(p, f, net=net):
            return (net(p, 2)[:, :, :, 0] - f).square().mean()

        if graphed:
            step = TrainStep(net, opt, loss_fn, (past, future), mode=mode)
            assert step.mode == "eager"
            assert (step.fallback_reason is not None) is (mode == "cuda_graph")
            run = step
        else:

            def run(p, f, net=net, opt=opt, loss_fn=loss_fn):
                opt.zero_grad()
                loss = loss_fn(p, f)
                loss.backward()
                opt.step()
                return loss

        losses.append([float(run(past, future)) for _ in range(3)])
    assert losses[0] == losses[1]
    assert losses[0][-1] < losses[0][0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_step_matches_eager():
    TrainStep = _graphed_step().TrainStep
    past, future = torch.rand(2, 3, 1, 4, 4).cuda(), torch.rand(2, 2, 1, 4, 4).cuda()
    losses = []
    for mode in ("cuda_graph", "eager"):
        net = tiny_net().cuda()
        opt = torch.optim.Adam(net.parameters(), lr=1e-2, capturable=True)

        def loss_fn(p, f, net=net):
            return (net(p, 2)[:, :, :, 0] - f).square().mean()

        step = TrainStep(net, opt, loss_fn, (past, future), mode=mode, warmup=1)
        assert step.mode == mode, step.fallback_reason
        losses.append([float(step(past, future)) for _ in range(3)])
    # both ran one warm-up step before (graph) or not (eager): compare the trend, not the values
    assert losses[0][-1] < losses[0][0] and losses[1][-1] < losses[1][0]
