"""The training regimes of issue 16: the automatic bf16 precision (its choice, and that only training
steps are autocast) and the CUDA-graph training step (its selection and its quiet CPU fallback)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from darts_mim import MIMModel, grid_to_series
from darts_mim.nn import MIMNetwork
from darts_mim.nn import precision as precision_mod
from darts_mim.nn.graphed_step import TrainStep, select_step_mode
from darts_mim.nn.precision import training_autocast, use_auto_bf16


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_net() -> MIMNetwork:
    torch.manual_seed(0)
    return MIMNetwork(1, 0, 4, 4, num_hidden=(4, 4), filter_size=3)


# ---------------------------------------------------------------- automatic precision
@pytest.mark.parametrize("native", [True, False])
def test_auto_bf16_only_on_cpus_with_native_bf16(monkeypatch, native):
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: native)
    cpu = torch.device("cpu")
    assert use_auto_bf16(cpu, torch.float32) is native
    assert not use_auto_bf16(cpu, torch.float64)  # a float64 model keeps its precision
    assert not use_auto_bf16(torch.device("cuda"), torch.float32)  # GPUs: the user's choice
    with training_autocast(cpu, torch.float32, auto=True):
        assert torch.is_autocast_enabled("cpu") is native
    with training_autocast(cpu, torch.float32, auto=False):
        assert not torch.is_autocast_enabled("cpu")


def test_user_autocast_is_left_alone(monkeypatch):
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: True)
    with torch.autocast("cpu", dtype=torch.float16):
        with training_autocast(torch.device("cpu"), torch.float32, auto=True):
            assert torch.get_autocast_dtype("cpu") == torch.float16


def _series(n: int = 30):
    rng = np.random.default_rng(0)
    frames = rng.random((n, 1, 4, 4), dtype=np.float32)
    return grid_to_series(frames, pd.date_range("2024-01-01", periods=n, freq="h"), ["v"])


def _model(tmp_path, **kwargs) -> MIMModel:
    return MIMModel(
        input_chunk_length=3,
        output_chunk_length=2,
        num_hidden=(4,),
        n_epochs=1,
        batch_size=8,
        random_state=0,
        work_dir=str(tmp_path),
        pl_trainer_kwargs={
            "accelerator": "cpu",
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": False,
        },
        **kwargs,
    )


@pytest.mark.parametrize(
    ("kwargs", "auto"),
    [
        ({}, False),
        ({"precision": "auto"}, True),
        ({"precision": "32-true"}, False),
        ({"precision": "bf16-mixed"}, False),
    ],
)
def test_model_trains_in_bf16_autocast_with_auto_precision(tmp_path, monkeypatch, kwargs, auto):
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: True)
    seen = []
    forward = MIMNetwork.forward

    def spy(self, *args, **kw):
        out = forward(self, *args, **kw)
        seen.append((self.training, torch.is_autocast_enabled("cpu")))
        return out

    monkeypatch.setattr(MIMNetwork, "forward", spy)
    model = _model(tmp_path, **kwargs)
    assert model.auto_bf16 is auto
    given = kwargs.get("precision")
    # "auto" is darts-mim's own: Lightning gets no precision from it
    assert model.trainer_params.get("precision") == (None if given == "auto" else given)
    model.fit(_series())
    assert model.model.auto_bf16 is auto
    trained = {autocast for training, autocast in seen if training}
    assert trained == {auto or kwargs.get("precision") == "bf16-mixed"}
    seen.clear()
    forecast = model.predict(2)
    if auto:  # prediction stays float32: only training steps are autocast
        assert {autocast for _, autocast in seen} == {False}
    assert forecast.dtype == np.float32 and np.isfinite(forecast.values()).all()


# ---------------------------------------------------------------- CUDA-graph training step
def test_step_mode_selection():
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
def test_cpu_step_falls_back_to_eager_and_trains_like_a_plain_loop(mode):
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
