"""MIMNetwork as a whole: no hidden state, batch invariance, gradient paths through every state kind,
device-agnostic construction of states, and constructor errors."""

from __future__ import annotations

import pytest
import torch

from darts_mim.nn import MIMNetwork
from darts_mim.nn.cells import space_to_depth


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny tensors: threads only add contention on the shared 2-core machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_net(**overrides) -> MIMNetwork:
    kwargs = dict(
        target_channels=2, cond_channels=0, height=4, width=4, num_hidden=(4, 4, 4), filter_size=3
    )
    kwargs.update(overrides)
    torch.manual_seed(0)
    return MIMNetwork(**kwargs)


def test_two_calls_give_identical_outputs():
    net = tiny_net()
    x = torch.randn(3, 4, 2, 4, 4)
    with torch.no_grad():
        first, second = net(x, 3), net(x, 3)
    torch.testing.assert_close(first, second, atol=0, rtol=0)
    assert not any(name for name, _ in net.named_buffers())  # nothing carried between calls


def test_sequence_forecast_independent_of_its_batch():
    net = tiny_net()
    gen = torch.Generator().manual_seed(1)
    data = torch.randn(64, 4, 2, 4, 4, generator=gen)
    with torch.no_grad():
        alone = net(data[5:6], 2)[0]
        for size in (1, 7, 64):  # changing batch sizes from call to call is fine too
            perm = torch.randperm(64, generator=gen)[:size]
            if 5 not in perm:
                perm[torch.randint(size, (1,), generator=gen)] = 5
            out = net(data[perm], 2)
            where = int((perm == 5).nonzero()[0])
            torch.testing.assert_close(out[where], alone, atol=1e-5, rtol=1e-5)


# The flat state layout of MIMNetwork._step for a 3-layer MIM: layer 0 (h, c), layers 1-2 (h, c, n, d, s),
# then the zigzag memory M.
STATE_INDEX = {
    "H": [0, 2, 7],
    "C": [1, 3, 8],
    "N": [4, 9],
    "D": [5, 10],
    "S": [6, 11],
    "M": [12],
}


def _grad_to_first_frame(net: MIMNetwork, frames: torch.Tensor, keep: list[int], cut: int) -> float:
    """|d last output / d frame 0| when, after step ``cut``, only the states ``keep`` carry gradient.

    Every other state is detached there, so any gradient reaching frame 0 went through the kept
    states between step ``cut`` and ``cut + 1``.
    """
    frames = frames.clone().requires_grad_()
    states = net._zero_states()
    for t in range(frames.shape[1]):
        gates = net.cells[0].conv_x(space_to_depth(frames[:, t], net.patch_size))
        states = net._step(gates, t == 0, *states)
        if t == cut:
            states = tuple(
                s if (k in keep or s is None) else s.detach() for k, s in enumerate(states)
            )
    out = net._frame_out(net._top_hidden(states))
    (grad,) = torch.autograd.grad(out.sum(), frames)
    return float(grad[:, 0].abs().sum())


@pytest.mark.parametrize("kind", sorted(STATE_INDEX))
def test_gradient_reaches_first_frame_through_each_state(kind):
    net = tiny_net().double()
    frames = torch.randn(2, 5, 2, 4, 4, dtype=torch.float64)
    # Cut after step 1: N and D are still zero (not computed) after step 0.
    assert _grad_to_first_frame(net, frames, STATE_INDEX[kind], cut=1) > 0
    # The control: with every state cut, nothing reaches frame 0, so the check can fail.
    assert _grad_to_first_frame(net, frames, [], cut=1) == 0


def test_states_follow_the_input_device_and_dtype():
    # On the meta device nothing is computed: any tensor made on the CPU by the network would fail.
    net = tiny_net(cond_channels=1).to("meta")
    x = torch.empty(2, 3, 2, 4, 4, device="meta")
    cond = torch.empty(2, 4, 1, 4, 4, device="meta")
    future = torch.empty(2, 2, 2, 4, 4, device="meta")
    mask = torch.ones(2, 1, device="meta")
    out = net(x, 2, cond=cond, future_frames=future, teacher_mask=mask)
    assert out.device.type == "meta" and out.shape == (2, 2, 2, 1, 4, 4)
    out64 = tiny_net().double()(torch.randn(1, 2, 2, 4, 4, dtype=torch.float64), 1)
    assert out64.dtype == torch.float64


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(height=5, patch_size=2), "must divide the grid"),
        (dict(filter_size=4), "positive odd integer"),
        (dict(diff_mode="second"), "diff_mode"),
        (dict(cell_type="lstm"), "cell_type"),
        (dict(num_hidden=()), "at least one positive width"),
        (dict(nr_params=2, feedback_param=2), "feedback_param"),
    ],
)
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_net(**kwargs)


def test_forward_errors():
    net = tiny_net(cond_channels=1)
    x = torch.randn(1, 3, 2, 4, 4)
    with pytest.raises(ValueError, match="Expected frames of shape"):
        net(torch.randn(1, 3, 1, 4, 4), 1)
    with pytest.raises(ValueError, match="Expected `cond`"):
        net(x, 2)
    with pytest.raises(ValueError, match="at least one input and one output"):
        net(x, 0, cond=torch.randn(1, 2, 1, 4, 4))


@pytest.mark.parametrize("height, width, kernel", [(1, 12, (1, 3)), (1, 1, (1, 1)), (6, 1, (3, 1))])
def test_kernel_rows_that_only_meet_padding_are_left_out(height, width, kernel):
    from darts_mim.nn.cells import GateConv

    torch.manual_seed(0)
    kwargs = dict(target_channels=2, cond_channels=0, height=height, width=width)
    net = MIMNetwork(**kwargs, num_hidden=(8, 8), filter_size=3).eval()
    convs = [m.conv for m in net.modules() if isinstance(m, GateConv)]
    assert convs and all(c.kernel_size == kernel for c in convs)
    # Weights saved with square 3x3 kernels (darts-mim <= 0.3) load: their outer rows and columns only
    # ever met the zero padding, whatever their values.
    square = {}
    for name, value in net.state_dict().items():
        if name.endswith("conv.weight") and value.dim() == 4 and value.shape[2:] == kernel:
            padded = torch.randn(*value.shape[:2], 3, 3)
            top, left = (3 - kernel[0]) // 2, (3 - kernel[1]) // 2
            padded[:, :, top : top + kernel[0], left : left + kernel[1]] = value
            value = padded
        square[name] = value
    loaded = MIMNetwork(**kwargs, num_hidden=(8, 8), filter_size=3).eval()
    loaded.load_state_dict(square)
    frames = torch.randn(3, 4, 2, height, width)
    torch.testing.assert_close(loaded(frames, 3), net(frames, 3))
    # and they compute what the square kernels computed on these frames
    square_conv = torch.nn.Conv2d(convs[0].in_channels, convs[0].out_channels, 3, padding=1)
    name = next(n for n, m in net.named_modules() if getattr(m, "conv", None) is convs[0])
    square_conv.weight.data = square[f"{name}.conv.weight"]
    square_conv.bias.data = convs[0].bias.data
    x = torch.randn(2, convs[0].in_channels, height, width)
    torch.testing.assert_close(square_conv(x), convs[0](x))


def test_kept_kernel_middles_are_the_square_kernels_own(monkeypatch):
    """Same seed, same initialisation and outputs as the square kernels of darts-mim <= 0.3."""
    from darts_mim.nn.cells import GateConv

    frames = torch.randn(3, 4, 1, 1, 24)
    torch.manual_seed(0)
    kept = MIMNetwork(1, 0, 1, 24, num_hidden=(16, 16), filter_size=5).eval()
    monkeypatch.setattr(GateConv, "keep_middle", lambda self, row, column: None)
    torch.manual_seed(0)
    square = MIMNetwork(1, 0, 1, 24, num_hidden=(16, 16), filter_size=5).eval()
    for (name, a), (_, b) in zip(kept.named_parameters(), square.named_parameters(), strict=True):
        if a.shape != b.shape:
            assert a.shape[2:] == (1, 5) and b.shape[2:] == (5, 5), name
            b = b[:, :, 2:3]
        torch.testing.assert_close(a, b, msg=name)
    torch.testing.assert_close(kept(frames, 3), square(frames, 3))
