"""CUDA graphs of the training forward and backward (``darts_mim.nn.graphed_network``).

A CPU cannot capture CUDA graphs, so these tests check everything around the capture: that the CPU
path is the network itself, which calls are captured and replayed (with a stand-in for
``torch.cuda.make_graphed_callables`` that returns the wrapper unchanged), that a failed capture
warns and trains eagerly, and that ``MIMModel.fit`` routes its training calls through the runner.
``benchmarks/gpu_check.sh --parts fit,defaults`` checks the real graphs on a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_grid_series, tiny_kwargs

from darts_mim import MIMModel, TrainingRecipe
from darts_mim.nn import MIMNetwork, graphed_network
from darts_mim.nn.graphed_network import GraphedNetwork


def _net() -> MIMNetwork:
    torch.manual_seed(0)
    return MIMNetwork(1, 0, 6, 6, num_hidden=(4, 4), filter_size=3)


class StandInCapture:
    """Records what would be captured and returns the wrapper itself: a "graph" that runs eagerly."""

    def __init__(self, fail: bool = False):
        self.calls, self.present, self.fail = [], [], fail

    def __call__(self, module, sample, allow_unused_input=False):
        self.calls.append(sample)
        self.present.append(module.present)  # which optional inputs the graph takes
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing")
        return module


@pytest.fixture
def stand_in(monkeypatch):
    """CPU calls count as graph-able, and capture is the stand-in."""
    capture = StandInCapture()
    monkeypatch.setattr(graphed_network, "GRAPH_DEVICES", ("cpu",))
    monkeypatch.setattr(torch.cuda, "make_graphed_callables", capture)
    return capture


def test_on_a_cpu_the_runner_is_the_network():
    net = _net()
    run = GraphedNetwork(net)
    past = torch.rand(2, 3, 1, 6, 6)
    torch.testing.assert_close(run(past, 2), net(past, 2), rtol=0, atol=0)
    assert (run.graphed, run.replays, run.fallback_reason) == (False, 0, None)


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="`mode` must be one of"):
        GraphedNetwork(_net(), mode="graphs")


def test_first_training_call_is_captured_and_same_shapes_replay(stand_in):
    net = _net()
    run = GraphedNetwork(net)
    past = torch.rand(2, 3, 1, 6, 6, requires_grad=True)
    future, mask = torch.rand(2, 2, 1, 6, 6), torch.ones(2, 1)
    expected = net(past, 2, future_frames=future, teacher_mask=mask)
    got = run(past, 2, future_frames=future, teacher_mask=mask)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert run.graphed and run.replays == 1 and len(stand_in.calls) == 1
    sample = stand_in.calls[0]
    # captured on copies of the inputs, with their shapes and requires_grad
    assert [tuple(x.shape) for x in sample] == [(2, 3, 1, 6, 6), (2, 2, 1, 6, 6), (2, 1)]
    assert sample[0].requires_grad and sample[0].data_ptr() != past.data_ptr()
    run((past.detach() + 1).requires_grad_(), 2, future_frames=future, teacher_mask=mask)
    assert run.replays == 2 and len(stand_in.calls) == 1  # replayed, not captured again


@pytest.mark.parametrize(
    "change",
    ["other batch", "other horizon", "no teacher", "eval", "no grad", "autocast", "checkpointing"],
)
def test_other_calls_run_eagerly(stand_in, change):
    net = _net()
    run = GraphedNetwork(net)
    past, future, mask = torch.rand(2, 3, 1, 6, 6), torch.rand(2, 2, 1, 6, 6), torch.ones(2, 1)
    run(past, 2, future_frames=future, teacher_mask=mask)  # captures
    kwargs = dict(future_frames=future, teacher_mask=mask)
    n_out, context = 2, torch.enable_grad()
    if change == "other batch":
        past, kwargs = past[:1], dict(future_frames=future[:1], teacher_mask=mask[:1])
    elif change == "other horizon":
        n_out, kwargs = (
            3,
            dict(future_frames=torch.rand(2, 3, 1, 6, 6), teacher_mask=torch.ones(2, 2)),
        )
    elif change == "no teacher":
        kwargs = {}
    elif change == "eval":
        net.eval()
    elif change == "no grad":
        context = torch.no_grad()
    elif change == "autocast":
        context = torch.autocast("cpu", dtype=torch.bfloat16)
    else:
        net.activation_checkpointing = True
    with context:
        run(past, n_out, **kwargs)
    assert run.replays == 1 and len(stand_in.calls) == 1


def test_failed_capture_warns_once_and_trains_eagerly(monkeypatch):
    capture = StandInCapture(fail=True)
    monkeypatch.setattr(graphed_network, "GRAPH_DEVICES", ("cpu",))
    monkeypatch.setattr(torch.cuda, "make_graphed_callables", capture)
    net = _net()
    run = GraphedNetwork(net)
    past = torch.rand(2, 3, 1, 6, 6)
    with pytest.warns(RuntimeWarning, match="cuda_graphs=False"):
        out = run(past, 2)
    torch.testing.assert_close(out, net(past, 2), rtol=0, atol=0)
    assert "capture failed" in run.fallback_reason and not run.graphed
    run(past, 2)  # no second attempt, no second warning
    assert len(capture.calls) == 1


def test_cuda_graphs_must_be_a_bool():
    with pytest.raises(ValueError, match="`cuda_graphs` must be True or False"):
        TrainingRecipe(cuda_graphs="yes")


def _fit_predict(tmp_path, series, cuda_graphs: bool = False, **overrides):
    recipe = TrainingRecipe(cuda_graphs=cuda_graphs)
    model = MIMModel(**tiny_kwargs(tmp_path, n_epochs=2, training_recipe=recipe, **overrides))
    model.fit(series)
    return model, model.predict(3).values()


def test_fit_on_a_cpu_is_unchanged_by_cuda_graphs(tmp_path):
    series = make_grid_series(n_steps=40)
    _, eager = _fit_predict(tmp_path / "a", series)
    model, graphs = _fit_predict(tmp_path / "b", series, cuda_graphs=True)
    np.testing.assert_array_equal(graphs, eager)
    assert model.model.cuda_graph_replays == 0 and model.model.cuda_graph_fallback is None
    # the option is saved with the model and its module
    model.save(str(tmp_path / "mim.pt"))
    loaded = MIMModel.load(str(tmp_path / "mim.pt"))
    assert loaded.training_recipe.cuda_graphs and loaded.model.recipe.cuda_graphs
    np.testing.assert_array_equal(loaded.predict(3).values(), eager)


def test_fit_routes_full_training_batches_through_the_graphs(tmp_path, stand_in):
    # 40 steps, 6 + 3 per window: 32 windows, batch 16 -> 2 full batches per epoch, 2 epochs;
    # scheduled sampling and the input-window loss (the defaults) are inputs of the capture
    series = make_grid_series(n_steps=40)
    model, graphs = _fit_predict(tmp_path / "b", series, cuda_graphs=True)
    assert model.model.cuda_graph_replays == 4 and len(stand_in.calls) == 1
    assert model.model._graph_runner is None  # released after the fit
    _, eager = _fit_predict(tmp_path / "a", series)
    np.testing.assert_allclose(graphs, eager, rtol=0, atol=0)


def _plain_multivariate(n_steps: int = 40):
    import pandas as pd
    from darts import TimeSeries

    t = np.arange(n_steps)[:, None]
    values = np.sin(0.3 * t + np.arange(3)) + 0.05 * np.random.default_rng(0).standard_normal(
        (n_steps, 3)
    )
    times = pd.date_range("2024-01-01", periods=n_steps, freq="D")
    return TimeSeries.from_times_and_values(times, values.astype(np.float32))


@pytest.mark.parametrize("case", ["plain multivariate", "covariates"])
def test_graphed_fit_with_instance_norm_channels_and_covariates(tmp_path, stand_in, case):
    # a plain multivariate series: channel independence and instance norm ("auto"), so the captured
    # inputs require gradients; a grid with past covariates: the conditioning is a captured input
    if case == "plain multivariate":
        series, fit_kw = _plain_multivariate(), {}
    else:
        series = make_grid_series(n_steps=40)
        fit_kw = {"past_covariates": make_grid_series(n_steps=40, channels=1, seed=1)}
    runs = {}
    for graphs in (False, True):
        recipe = TrainingRecipe(cuda_graphs=graphs)
        model = MIMModel(**tiny_kwargs(tmp_path / str(graphs), n_epochs=2, training_recipe=recipe))
        model.fit(series, **fit_kw)
        runs[graphs] = (model, model.predict(3, **fit_kw).values())
    model = runs[True][0]
    assert model.model.cuda_graph_replays == 4 and len(stand_in.calls) == 1
    if case == "plain multivariate":
        assert model.model.channel_independent and model.model.rin is not None
        assert stand_in.calls[0][0].requires_grad  # through instance norm's affine weights
    else:
        assert stand_in.present[0][0] == "cond"
    np.testing.assert_array_equal(runs[True][1], runs[False][1])
