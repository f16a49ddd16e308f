"""The network's training forward and backward replayed from CUDA graphs
(``TrainingRecipe(cuda_graphs=True)``).

On a GPU a MIM training step on a small grid is launch-bound: thousands of small kernels (a few per
gate, per layer, per time step, forward and backward), each finishing faster than the CPU launches
the next. ``torch.cuda.make_graphed_callables`` records the network's forward and its backward once
each and replays each with one launch. The loss, the optimizer, gradient clipping, the learning-rate
schedule and Lightning's bookkeeping stay eager, so a fit behaves as before: only the shapes must
stay fixed, which they are for a training run's full batches.

:class:`GraphedNetwork` calls a :class:`~darts_mim.nn.MIMNetwork` like the network itself. The first
training call on a CUDA device (gradients on, no autocast) is captured; later calls of the same shapes
replay the graphs, every other call (validation, prediction, the last partial batch, the CPU) runs
eagerly, and so the selection is testable without a GPU. ``benchmarks/gpu_check.py`` measures it.
This is the package's one CUDA-graph mechanism.

Example
-------
>>> import torch
>>> from darts_mim.nn import MIMNetwork
>>> from darts_mim.nn.graphed_network import GraphedNetwork
>>> net = MIMNetwork(1, 0, 8, 8, num_hidden=(4,), filter_size=3)
>>> run = GraphedNetwork(net)  # "auto": graphs for training calls on a GPU
>>> out = run(torch.rand(2, 3, 1, 8, 8), 2)  # on the CPU: the network itself
>>> run.graphed, run.fallback_reason
(False, None)
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

# The runner's modes: "auto" and "cuda_graph" capture training calls on a CUDA device, "eager" never.
MODES = ("auto", "eager", "cuda_graph")
# Devices whose training calls are captured (a module constant so that tests can stand a CPU in).
GRAPH_DEVICES = ("cuda",)
# The optional tensor inputs of MIMNetwork.forward, in the order the graphed wrapper takes them.
_OPTIONAL = ("cond", "future_frames", "teacher_mask")


class _Unroll(nn.Module):
    """``net(past, n_out, **present)`` with tensor-only positional inputs, as
    ``make_graphed_callables`` requires; ``n_out``, ``return_all`` and which optional inputs are
    given are fixed for one graph."""

    def __init__(self, net: nn.Module, n_out: int, present: tuple[str, ...], return_all: bool):
        super().__init__()
        self.net, self.n_out, self.present, self.return_all = net, n_out, present, return_all

    def forward(self, past: Tensor, *optional: Tensor) -> Tensor:
        given = dict(zip(self.present, optional, strict=True))
        return self.net(past, self.n_out, return_all=self.return_all, **given)


def _signature(tensors: tuple[Tensor, ...]) -> tuple:
    return tuple((t.shape, t.dtype, t.device, t.requires_grad) for t in tensors)


class GraphedNetwork:
    """Calls ``net`` as ``net(past_frames, n_out, cond=, future_frames=, teacher_mask=,
    return_all=)``, replaying the training forward and backward from CUDA graphs on a GPU.

    Parameters
    ----------
    net
        The network (a :class:`~darts_mim.nn.MIMNetwork`). It is not copied: the graphs read and
        update its parameters in place, so the optimizer, checkpoints and exports see one network.
    mode
        ``"auto"`` (default) or ``"cuda_graph"``: graphs for training calls on a CUDA device, eager
        elsewhere; ``"eager"``: never.

    Attributes
    ----------
    graphed
        Whether a graph has been captured (the next training call of its shapes replays it).
    fallback_reason
        Why a capture was tried and failed (the runner is eager from then on); ``None`` otherwise.
    replays
        Calls answered from the graphs so far.

    Notes
    -----
    One set of shapes is captured: the first eligible call's, which in a fit is the first full
    batch. A call is eligible when the network trains (``net.training``, gradients on), its inputs
    are on a CUDA device, no autocast is active (Lightning's autocast caches casts, which graphs do
    not support: ``bf16-mixed`` training runs eagerly) and the network does not checkpoint its
    activations. The graphs hold their own memory pool, about one eager step's activations.
    """

    def __init__(self, net: nn.Module, mode: str = "auto"):
        if mode not in MODES:
            raise ValueError(f"`mode` must be one of {MODES}, got {mode!r}.")
        self.net, self.mode = net, mode
        self._key: tuple | None = None
        self._graphed: nn.Module | None = None
        self.fallback_reason: str | None = None
        self.replays = 0

    @property
    def graphed(self) -> bool:
        return self._graphed is not None

    def _eligible(self, past: Tensor) -> bool:
        return (
            self.mode != "eager"
            and self.fallback_reason is None
            and past.device.type in GRAPH_DEVICES
            and self.net.training
            and torch.is_grad_enabled()
            and not torch.is_autocast_enabled(past.device.type)
            and not getattr(self.net, "activation_checkpointing", False)
        )

    def __call__(
        self,
        past_frames: Tensor,
        n_out: int,
        cond: Tensor | None = None,
        future_frames: Tensor | None = None,
        teacher_mask: Tensor | None = None,
        return_all: bool = False,
    ) -> Tensor:
        given = {"cond": cond, "future_frames": future_frames, "teacher_mask": teacher_mask}
        if self._eligible(past_frames):
            present = tuple(name for name in _OPTIONAL if given[name] is not None)
            inputs = (past_frames, *(given[name] for name in present))
            key = (n_out, return_all, present, _signature(inputs))
            if self._graphed is None:
                self._capture(key, inputs, n_out, present, return_all)
            if self._graphed is not None and key == self._key:
                self.replays += 1
                return self._graphed(*inputs)
        # not a training call on a GPU, other shapes than the captured ones, or a failed capture
        return self.net(past_frames, n_out, return_all=return_all, **given)

    def _capture(self, key, inputs, n_out, present, return_all) -> None:
        # The warm-up and capture run on copies: their values do not matter, only their shapes.
        sample = tuple(x.detach().clone().requires_grad_(x.requires_grad) for x in inputs)
        unroll = _Unroll(self.net, n_out, present, return_all)
        try:
            # allow_unused_input: a parameter unused in one configuration gets no gradient, as eagerly
            self._graphed = torch.cuda.make_graphed_callables(
                unroll, sample, allow_unused_input=True
            )
            self._key = key
        except (RuntimeError, AssertionError) as err:
            self.fallback_reason = f"the CUDA graph capture failed: {err}"
            warnings.warn(
                f"darts-mim: training runs without CUDA graphs ({self.fallback_reason}). "
                "Pass training_recipe=TrainingRecipe(cuda_graphs=False) to MIMModel to skip the "
                "attempt.",
                RuntimeWarning,
                stacklevel=3,
            )


__all__ = ["MODES", "GraphedNetwork"]
