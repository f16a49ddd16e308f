"""A fixed-shape training step, captured once as a CUDA graph on a GPU and replayed: the GPU check's
upper bound (``gpu_check.py``'s "train fp32 CUDA graph" column), private to the benchmarks.

The package's own CUDA-graph mechanism is :class:`darts_mim.nn.graphed_network.GraphedNetwork`
(``TrainingRecipe(cuda_graphs=True)``), which graphs the network's forward and backward and leaves
the loss, the optimizer and Lightning eager. This helper records the whole step (forward, loss,
backward, optimizer step) instead, so that the check can say how much of a launch-bound step a graph
can save at most. The shapes must stay fixed. Elsewhere (CPU, or a capture that fails) the same step
runs eagerly, so the code path that selects the graph is testable without a GPU
(``tests/test_gpu_check_script.py``).

Example
-------
>>> import torch
>>> from darts_mim.nn import MIMNetwork
>>> from _graphed_step import TrainStep  # with benchmarks/ on sys.path
>>> net = MIMNetwork(1, 0, 8, 8, num_hidden=(4,), filter_size=3)
>>> opt = torch.optim.Adam(net.parameters(), lr=1e-3)
>>> def loss_fn(past, future):
...     return (net(past, future.shape[1])[:, :, :, 0] - future).square().mean()
>>> past, future = torch.rand(2, 3, 1, 8, 8), torch.rand(2, 2, 1, 8, 8)
>>> step = TrainStep(net, opt, loss_fn, (past, future))  # "auto": a CUDA graph on a GPU
>>> step.mode
'eager'
>>> loss = step(past, future)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from darts_mim.nn.graphed_network import MODES


def select_step_mode(requested: str, device: torch.device, cuda_available: bool) -> str:
    """The mode a step runs in: ``"cuda_graph"`` where asked for (or ``"auto"``) on a CUDA device,
    else ``"eager"`` (a CUDA graph needs a GPU: on a CPU it quietly falls back).

    Raises
    ------
    ValueError
        For a mode that is not one of :data:`MODES`.
    """
    if requested not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}, got {requested!r}.")
    if requested == "eager" or device.type != "cuda" or not cuda_available:
        return "eager"
    return "cuda_graph"


class TrainStep:
    """One training step, ``loss_fn(*inputs)`` then backward and ``optimizer.step()``, replayed from a
    CUDA graph on a GPU.

    Parameters
    ----------
    net
        The module being trained (its parameters' device decides the mode).
    optimizer
        Its optimizer. For a CUDA graph it must be capturable (``torch.optim.Adam(...,
        capturable=True)``); :class:`TrainStep` sets the flag on optimizers that have it.
    loss_fn
        ``loss_fn(*inputs) -> Tensor``: forward and loss, a scalar.
    example_inputs
        Inputs of the shapes and dtypes every later call will have; the graph is captured on them.
    mode
        ``"auto"`` (default: a CUDA graph on a CUDA device, else eager), ``"cuda_graph"`` (the same;
        falls back to eager where no GPU is) or ``"eager"``.
    warmup
        Eager steps on a side stream before capture (CUDA's libraries choose their kernels there, and
        the optimizer creates its state).

    Attributes
    ----------
    mode
        What runs: ``"cuda_graph"`` or ``"eager"``.
    fallback_reason
        Why a CUDA graph was asked for (or chosen by ``"auto"``) and not used: ``None`` when it is
        used or was never in question.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable[..., Tensor],
        example_inputs: Sequence[Tensor],
        mode: str = "auto",
        warmup: int = 3,
    ):
        self.net, self.optimizer, self.loss_fn = net, optimizer, loss_fn
        device = next(net.parameters()).device
        self.mode = select_step_mode(mode, device, torch.cuda.is_available())
        self.fallback_reason: str | None = None
        if mode == "cuda_graph" and self.mode == "eager":
            self.fallback_reason = f"no CUDA device (parameters on {device})"
        self._graph = None
        if self.mode == "cuda_graph":
            try:
                self._capture(list(example_inputs), warmup)
            except RuntimeError as err:  # e.g. an op that cannot be captured: run eagerly instead
                self.mode, self._graph = "eager", None
                self.fallback_reason = f"capture failed: {err}"
                self.optimizer.zero_grad(set_to_none=True)

    def _eager(self, *inputs: Tensor) -> Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(*inputs)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def _capture(self, inputs: list[Tensor], warmup: int) -> None:
        for group in self.optimizer.param_groups:
            if "capturable" in group:
                group["capturable"] = True
        self._static = [x.detach().clone() for x in inputs]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                self._eager(*self._static)
        torch.cuda.current_stream().wait_stream(side)
        # Gradients are allocated inside the graph's memory pool; backward then writes them there.
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            loss = self.loss_fn(*self._static)
            loss.backward()
            self.optimizer.step()
        self._graph, self._loss = graph, loss.detach()

    def __call__(self, *inputs: Tensor) -> Tensor:
        """One step on ``inputs`` (same shapes as the example); returns the loss (before the step).

        In graph mode the returned tensor is the graph's own output buffer: the next call overwrites
        it, so read it (``float(loss)``) or clone it before then.
        """
        if self._graph is None:
            return self._eager(*inputs)
        for static, x in zip(self._static, inputs, strict=True):
            static.copy_(x)
        self._graph.replay()
        return self._loss


__all__ = ["MODES", "TrainStep", "select_step_mode"]
