"""The cells of ``darts_mim.nn.cells`` against docs/mim.md's equations evaluated by hand in numpy.

The numpy code below is written from the equations, not from the torch code: 1x1 kernels make every
convolution a channel matrix product, so each gate is a few explicit lines. Also: float64 gradcheck of
every cell, zero (``None``) states against explicit zeros, MIM-N's initial range, and patching.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from darts_mim.nn.cells import (
    GateConv,
    MIMBlock,
    PeepholeCell,
    STLSTMCell,
    depth_to_space,
    space_to_depth,
)


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny tensors: threads only add contention on the shared 2-core machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------- numpy by hand
def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def conv1x1(weight, bias, x):
    """A 1x1 convolution with bias: ``out[n, o, y, x] = sum_i W[o, i] x[n, i, y, x] + b[o]``."""
    return np.einsum("oi,nihw->nohw", weight[:, :, 0, 0], x) + bias[None, :, None, None]


def layer_norm(z, scale, shift, eps=1e-5):
    """Per sample over (C, H, W), biased variance, per-channel scale and shift."""
    mean = z.mean(axis=(1, 2, 3), keepdims=True)
    var = ((z - mean) ** 2).mean(axis=(1, 2, 3), keepdims=True)
    return (z - mean) / np.sqrt(var + eps) * scale[None, :, None, None] + shift[None, :, None, None]


def npy(t):
    return t.detach().double().numpy()


def gates_by_hand(gate_conv: GateConv, x, n_gates: int):
    """``LN(W * x)`` split into its gates, from the module's weights."""
    z = conv1x1(npy(gate_conv.conv.weight), npy(gate_conv.conv.bias), x)
    if isinstance(gate_conv.norm, torch.nn.GroupNorm):
        z = layer_norm(z, npy(gate_conv.norm.weight), npy(gate_conv.norm.bias))
    return np.split(z, n_gates, axis=1)


def randomise(module: torch.nn.Module, seed: int) -> None:
    """Random values everywhere (layer-norm scales, peephole weights too) so every term matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))


def rand(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ----------------------------------------------------------------------------- values by hand
@pytest.mark.parametrize("layer_norm_on", [True, False])
def test_stlstm_by_hand(layer_norm_on):
    cell = STLSTMCell(1, 2, 1, layer_norm_on).double()
    randomise(cell, 0)
    x, h, c, m = rand(1, 1, 2, 2, seed=1), *(rand(1, 2, 2, 2, seed=s) for s in (2, 3, 4))
    h_t, c_t, m_t = cell(cell.conv_x(x), h, c, m)

    xi, xg, xf, xo = gates_by_hand(cell.conv_x, npy(x), 4)
    ti, tg, tf, to = gates_by_hand(cell.conv_h, npy(h), 4)
    si, sg, sf, so = gates_by_hand(cell.conv_m, npy(m), 4)
    i, g, f = sigmoid(xi + ti), np.tanh(xg + tg), sigmoid(xf + tf + 1)
    i2, g2, f2 = sigmoid(xi + si), np.tanh(xg + sg), sigmoid(xf + sf + 1)
    o = sigmoid(xo + to + so)
    c_exp = f * npy(c) + i * g
    m_exp = f2 * npy(m) + i2 * g2
    w, b = npy(cell.conv_cm.weight), npy(cell.conv_cm.bias)
    h_exp = o * np.tanh(conv1x1(w, b, np.concatenate([c_exp, m_exp], axis=1)))
    np.testing.assert_allclose(npy(c_t), c_exp, atol=1e-12)
    np.testing.assert_allclose(npy(m_t), m_exp, atol=1e-12)
    np.testing.assert_allclose(npy(h_t), h_exp, atol=1e-12)


def peephole_by_hand(cell: PeepholeCell, x, hid, state):
    """MIM-N / MIM-S of docs/mim.md: returns (out, new cell)."""
    hi, hg, hf, ho = gates_by_hand(cell.conv_h, hid, 4)
    xi, xg, xf, xo = gates_by_hand(cell.conv_x, x, 4)
    w_ci, w_cf, w_co = npy(cell.w_ci)[None], npy(cell.w_cf)[None], npy(cell.w_co)[None]
    i = sigmoid(hi + xi + w_ci * state)
    f = sigmoid(hf + xf + w_cf * state + 1)
    g = np.tanh(hg + xg)
    new = f * state + i * g
    return sigmoid(ho + xo + w_co * new) * np.tanh(new), new


def test_peephole_by_hand():
    cell = PeepholeCell(1, 2, 2, 2, 1, True).double()
    randomise(cell, 5)
    x, hid, state = rand(1, 1, 2, 2, seed=6), rand(1, 2, 2, 2, seed=7), rand(1, 2, 2, 2, seed=8)
    out, new = cell(x, hid, state)
    out_exp, new_exp = peephole_by_hand(cell, npy(x), npy(hid), npy(state))
    np.testing.assert_allclose(npy(out), out_exp, atol=1e-12)
    np.testing.assert_allclose(npy(new), new_exp, atol=1e-12)


@pytest.mark.parametrize("first_step", [False, True])
def test_mim_block_by_hand(first_step):
    block = MIMBlock(2, 2, 1, 2, 2, 1, True).double()  # input width 2, width 2, Δ of 1 channel
    randomise(block, 9)
    x, delta = rand(1, 2, 2, 2, seed=10), rand(1, 1, 2, 2, seed=11)
    h, c, m, n, d, s = (rand(1, 2, 2, 2, seed=12 + k) for k in range(6))
    if first_step:  # t = 0: no Δ, and D, N are zero
        delta = None
        n = torch.zeros_like(n)
        d = torch.zeros_like(d)
    h_t, c_t, m_t, n_t, d_t, s_t = block(x, delta, h, c, m, n, d, s)

    if first_step:
        d_exp, n_exp = np.zeros((1, 2, 2, 2)), npy(n)
    else:
        d_exp, n_exp = peephole_by_hand(block.mim_n, npy(delta), npy(d), npy(n))
    t_exp, s_exp = peephole_by_hand(block.mim_s, d_exp, npy(c), npy(s))
    ti, tg, to = gates_by_hand(block.conv_h, npy(h), 3)
    si, sg, sf, so = gates_by_hand(block.conv_m, npy(m), 4)
    xi, xg, xf, xo = gates_by_hand(block.conv_x, npy(x), 4)
    i, g = sigmoid(xi + ti), np.tanh(xg + tg)
    i2, g2, f2 = sigmoid(xi + si), np.tanh(xg + sg), sigmoid(xf + sf + 1)
    o = sigmoid(xo + to + so)
    m_exp = f2 * npy(m) + i2 * g2
    c_exp = t_exp + i * g
    w, b = npy(block.conv_cm.weight), npy(block.conv_cm.bias)
    h_exp = o * np.tanh(conv1x1(w, b, np.concatenate([c_exp, m_exp], axis=1)))
    for got, exp in ((h_t, h_exp), (c_t, c_exp), (m_t, m_exp), (s_t, s_exp)):
        np.testing.assert_allclose(npy(got), exp, atol=1e-12)
    if first_step:
        assert d_t is None  # D stays zero at t = 0 (passed on as the zero state None)
        np.testing.assert_allclose(npy(n_t), n_exp, atol=0)
    else:
        np.testing.assert_allclose(npy(d_t), d_exp, atol=1e-12)
        np.testing.assert_allclose(npy(n_t), n_exp, atol=1e-12)


# ----------------------------------------------------------------------------- zero states
@pytest.mark.parametrize("layer_norm_on", [True, False])
def test_gate_conv_of_zero_is_normalised_bias(layer_norm_on):
    gate_conv = GateConv(3, 8, 3, layer_norm_on).double()
    randomise(gate_conv, 20)
    zeros = torch.zeros(2, 3, 4, 5, dtype=torch.float64)
    shortcut = gate_conv(None)
    assert shortcut.shape == (1, 8, 1, 1)
    torch.testing.assert_close(shortcut.expand(2, 8, 4, 5), gate_conv(zeros), atol=1e-12, rtol=0)


def test_none_states_equal_zero_states():
    block = MIMBlock(2, 3, 2, 3, 3, 3, True).double()
    randomise(block, 21)
    x, m = rand(2, 2, 3, 3, seed=22), rand(2, 3, 3, 3, seed=23)
    z3 = torch.zeros(2, 3, 3, 3, dtype=torch.float64)
    explicit = block(x, None, z3, z3, m, z3, z3, z3)
    shortcut = block(x, None, None, None, m, None, None, None)
    for k in (0, 1, 2, 5):  # h, c, m, s; n and d stay zero at t = 0
        torch.testing.assert_close(
            shortcut[k].expand_as(explicit[k]), explicit[k], atol=1e-12, rtol=0
        )
    assert shortcut[4] is None
    cell = STLSTMCell(2, 3, 3, True).double()
    randomise(cell, 24)
    gates = cell.conv_x(x)
    for a, b in zip(cell(gates, None, None, None), cell(gates, z3, z3, z3), strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


# ----------------------------------------------------------------------------- gradcheck
def test_gradcheck_stlstm():
    cell = STLSTMCell(1, 2, 3, True).double()
    randomise(cell, 30)
    args = [rand(1, 1, 3, 3, seed=31)] + [rand(1, 2, 3, 3, seed=32 + k) for k in range(3)]
    args = [a.requires_grad_() for a in args]
    assert torch.autograd.gradcheck(lambda x, h, c, m: cell(cell.conv_x(x), h, c, m), args)


def test_gradcheck_peephole():
    cell = PeepholeCell(1, 2, 3, 3, 3, True).double()
    randomise(cell, 33)
    args = [rand(1, 1, 3, 3, seed=34), rand(1, 2, 3, 3, seed=35), rand(1, 2, 3, 3, seed=36)]
    assert torch.autograd.gradcheck(cell, [a.requires_grad_() for a in args])


def test_gradcheck_mim_block():
    block = MIMBlock(2, 2, 2, 3, 3, 3, True).double()
    randomise(block, 37)
    args = [rand(1, 2, 3, 3, seed=38 + k).requires_grad_() for k in range(8)]
    assert torch.autograd.gradcheck(block, args)


# ----------------------------------------------------------------------------- init, patching
def test_mim_n_starts_quiet():
    torch.manual_seed(0)
    block = MIMBlock(8, 8, 8, 4, 4, 3, True)
    for conv in (block.mim_n.conv_x.conv, block.mim_n.conv_h.conv):
        for p in (conv.weight, conv.bias):
            assert p.abs().max() <= 1e-3
            assert p.std() > 1e-4  # drawn uniformly, not all zero or constant
    # MIM-S keeps PyTorch's default (larger) initialisation.
    assert block.mim_s.conv_h.conv.weight.abs().max() > 1e-2


@pytest.mark.parametrize("patch", [1, 2, 4])
def test_patching_round_trip_and_layout(patch):
    x = torch.randn(3, 2, 8, 12)
    y = space_to_depth(x, patch)
    assert y.shape == (3, 2 * patch * patch, 8 // patch, 12 // patch)
    torch.testing.assert_close(depth_to_space(y, patch), x, atol=0, rtol=0)
    # Channel c*p*p + i*p + j holds the pixels at offset (i, j) of each p x p patch.
    for ch in range(2):
        for i in range(patch):
            for j in range(patch):
                k = ch * patch * patch + i * patch + j
                torch.testing.assert_close(y[:, k], x[:, ch, i::patch, j::patch], atol=0, rtol=0)


def test_under_bf16_autocast_only_convolutions_are_bf16():
    # The automatic precision (issue 16): gates, norm and memories stay float32, so the states do
    # not accumulate bf16 rounding over time; the result is close to the float32 step.
    torch.manual_seed(0)
    cell = MIMBlock(4, 4, 4, 5, 5, 3, layer_norm=True)
    x, delta, h, c, m, n, d, s = (torch.randn(2, 4, 5, 5) for _ in range(8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = cell(x, delta, h, c, m, n, d, s)
    full = cell(x, delta, h, c, m, n, d, s)
    for lo, hi in zip(low, full, strict=True):
        assert lo.dtype == torch.float32
        torch.testing.assert_close(lo, hi, atol=0.05, rtol=0.05)
