"""The recurrent cells of MIM (Wang et al., CVPR 2019), in plain torch.

Notation and equations follow ``docs/mim.md``: ``*`` is a stride-1, same-padded convolution with bias,
``LN`` an optional layer norm per sample over (C, H, W) with a per-channel scale and shift. Every cell
is a pure function of its inputs and states: no state lives on a module.

Gate convolutions that share an input are one convolution: ``W_x * X`` gives all of ``[i_x, g_x, f_x, o_x]``
at once (one layer norm over the whole output, as in the equations), so each cell runs one convolution
per input source rather than one per gate.

A state passed as ``None`` is a zero state (every state is zero at the start of a sequence). Its
convolution is then just the (normalised) bias, computed without convolving, and products with it are
skipped: at t = 0 most of the work of a step is known in advance. Tensors derived only from zero
states keep a batch dimension of 1 and broadcast, which is exact since they are equal for all samples.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# The forget gates get +1 inside the sigmoid so that memories are kept by default (authors' code).
FORGET_BIAS = 1.0


def conv_in_dtype(conv: nn.Module, x: Tensor) -> Tensor:
    """``conv(x)`` in the dtype of ``x``.

    Under bf16 autocast a convolution returns bf16; casting its output back keeps the gates, the norm
    and every recurrent state in float32, so that only the convolutions (where the speed is) lose
    precision and the memories do not accumulate bf16 rounding over the time steps. Without autocast
    the dtypes agree and nothing is cast (nor traced into an ONNX graph).
    """
    y = conv(x)
    return y if y.dtype == x.dtype else y.to(x.dtype)


def _crop_square_kernel(module: GateConv, state_dict: dict, prefix: str, *args) -> None:
    """A ``load_state_dict`` pre-hook of :class:`GateConv`: weights saved with a square kernel
    (darts-mim <= 0.3) on a frame one cell high (or wide) load into the kernel's kept middle
    (:meth:`GateConv.keep_middle`), since their outer rows only ever met the zero padding."""
    key = prefix + "conv.weight"
    saved, own = state_dict.get(key), module.conv.weight
    if saved is not None and saved.shape[:2] == own.shape[:2] and saved.shape[2:] != own.shape[2:]:
        top = (saved.shape[2] - own.shape[2]) // 2
        left = (saved.shape[3] - own.shape[3]) // 2
        state_dict[key] = saved[:, :, top : top + own.shape[2], left : left + own.shape[3]]


class GateConv(nn.Module):
    """``LN(W * x)``: one convolution producing several gates' pre-activations, optionally normalised.

    Parameters
    ----------
    in_channels
        Channels of the input.
    out_channels
        Channels of the output (number of gates times the hidden width).
    kernel_size
        Odd kernel size; padding keeps the spatial size.
    layer_norm
        Normalise each sample over (C, H, W) with a per-channel scale and shift (``GroupNorm`` with one
        group is exactly that).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, layer_norm: bool):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.norm = nn.GroupNorm(1, out_channels) if layer_norm else nn.Identity()
        self.register_load_state_dict_pre_hook(_crop_square_kernel)

    def keep_middle(self, row: bool, column: bool) -> None:
        """Keep only the kernel's middle row and/or column, for frames one cell high and/or wide.

        The kernel's other rows (columns) only ever meet the zero padding there, so the function is
        the same at ``1/k`` of the work, and so is training: the kept weights are the square kernel's
        own (same initialisation) and the others never had a gradient.
        """
        weight = self.conv.weight.detach()
        kh, kw = weight.shape[2:]
        rows = slice(kh // 2, kh // 2 + 1) if row else slice(None)
        cols = slice(kw // 2, kw // 2 + 1) if column else slice(None)
        self.conv.weight = nn.Parameter(weight[:, :, rows, cols].clone())
        self.conv.kernel_size = tuple(self.conv.weight.shape[2:])
        self.conv.padding = (0 if row else kh // 2, 0 if column else kw // 2)

    def forward(self, x: Tensor | None) -> Tensor:
        """``LN(W * x)``; for ``x=None`` (a zero input) the ``[1, C, 1, 1]`` result of ``LN(bias)``."""
        if x is not None:
            return self.norm(conv_in_dtype(self.conv, x))
        bias = self.conv.bias.reshape(1, -1, 1, 1)
        if isinstance(self.norm, nn.GroupNorm):
            # A map that is constant per channel: its (C, H, W) statistics are those of the biases.
            mean = bias.mean()
            var = (bias - mean).square().mean()
            scale = self.norm.weight.reshape(1, -1, 1, 1)
            shift = self.norm.bias.reshape(1, -1, 1, 1)
            return (bias - mean) * torch.rsqrt(var + self.norm.eps) * scale + shift
        return bias


def _mul(a: Tensor, state: Tensor | None) -> Tensor | None:
    """``a ⊙ state`` where ``None`` is a zero state."""
    return None if state is None else a * state


def _add(*terms: Tensor | None) -> Tensor:
    """Sum of the terms that are not ``None`` (zero)."""
    out = None
    for term in terms:
        if term is not None:
            out = term if out is None else out + term
    assert out is not None, "at least one term must be non-zero"
    return out


class STLSTMCell(nn.Module):
    """Layer 1 of MIM: the spatiotemporal LSTM of ``docs/mim.md`` (one output gate over ``x``, ``h``
    and ``m``).

    ``forward`` takes the input-side gates already computed (``conv_x(x)``), so that the network can run
    that convolution for every known input frame in one batched call.

    Parameters
    ----------
    in_channels
        Channels of the layer's input ``X_t``.
    hidden
        Hidden width ``nh`` (of ``H``, ``C`` and ``M``).
    kernel_size
        Kernel size of the gate convolutions.
    layer_norm
        Layer norm on each gate convolution.
    """

    n_states = 2  # (h, c)

    def __init__(self, in_channels: int, hidden: int, kernel_size: int, layer_norm: bool):
        super().__init__()
        self.hidden = hidden
        self.conv_x = GateConv(in_channels, 4 * hidden, kernel_size, layer_norm)
        self.conv_h = GateConv(hidden, 4 * hidden, kernel_size, layer_norm)
        self.conv_m = GateConv(hidden, 4 * hidden, kernel_size, layer_norm)
        self.conv_cm = nn.Conv2d(2 * hidden, hidden, 1)

    def forward(
        self, x_gates: Tensor, h: Tensor | None, c: Tensor | None, m: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One step from ``x_gates = conv_x(x)``; ``None`` states are zero. Returns ``(h_t, c_t, m_t)``."""
        i_x, g_x, f_x, o_x = x_gates.chunk(4, dim=1)
        i_t, g_t, f_t, o_t = self.conv_h(h).chunk(4, dim=1)
        i_s, g_s, f_s, o_s = self.conv_m(m).chunk(4, dim=1)
        i = torch.sigmoid(i_x + i_t)
        g = torch.tanh(g_x + g_t)
        f = torch.sigmoid(f_x + f_t + FORGET_BIAS)
        i_m = torch.sigmoid(i_x + i_s)
        g_m = torch.tanh(g_x + g_s)
        f_m = torch.sigmoid(f_x + f_s + FORGET_BIAS)
        o = torch.sigmoid(o_x + o_t + o_s)
        c_new = _add(_mul(f, c), i * g)
        m_new = _add(_mul(f_m, m), i_m * g_m)
        h_new = o * torch.tanh(conv_in_dtype(self.conv_cm, torch.cat([c_new, m_new], dim=1)))
        return h_new, c_new, m_new


class PeepholeCell(nn.Module):
    """The peephole ConvLSTM that MIM-N and MIM-S share.

    ``i = σ(i_h + i_x + W_ci ⊙ c)``, ``f = σ(f_h + f_x + W_cf ⊙ c + 1)``, ``g = tanh(g_h + g_x)``,
    ``c' = f ⊙ c + i ⊙ g``, ``out = σ(o_h + o_x + W_co ⊙ c') ⊙ tanh(c')``.

    Parameters
    ----------
    in_channels
        Channels of the input (``Δ`` for MIM-N, ``D`` for MIM-S).
    hidden
        Width of the hidden input, the cell and the output.
    height, width
        Spatial size (after patching): the peephole weights are per position, ``[hidden, H, W]``.
    kernel_size
        Kernel size of the gate convolutions.
    layer_norm
        Layer norm on each gate convolution.
    init_range
        When given, the convolution weights and biases are drawn from ``U(-init_range, init_range)``
        (MIM-N starts quiet with 0.001); otherwise PyTorch's default initialisation.
    """

    def __init__(
        self,
        in_channels: int,
        hidden: int,
        height: int,
        width: int,
        kernel_size: int,
        layer_norm: bool,
        init_range: float | None = None,
    ):
        super().__init__()
        self.conv_x = GateConv(in_channels, 4 * hidden, kernel_size, layer_norm)
        self.conv_h = GateConv(hidden, 4 * hidden, kernel_size, layer_norm)
        self.w_ci = nn.Parameter(torch.zeros(hidden, height, width))
        self.w_cf = nn.Parameter(torch.zeros(hidden, height, width))
        self.w_co = nn.Parameter(torch.zeros(hidden, height, width))
        if init_range is not None:
            for conv in (self.conv_x.conv, self.conv_h.conv):
                nn.init.uniform_(conv.weight, -init_range, init_range)
                nn.init.uniform_(conv.bias, -init_range, init_range)

    def forward(
        self, x: Tensor | None, h: Tensor | None, c: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """One step; ``None`` inputs and states are zero. Returns ``(out_t, c_t)``."""
        i_h, g_h, f_h, o_h = self.conv_h(h).chunk(4, dim=1)
        i_x, g_x, f_x, o_x = self.conv_x(x).chunk(4, dim=1)
        i = torch.sigmoid(_add(i_h + i_x, _mul(self.w_ci, c)))
        f = torch.sigmoid(_add(f_h + f_x + FORGET_BIAS, _mul(self.w_cf, c)))
        g = torch.tanh(g_h + g_x)
        c_new = _add(_mul(f, c), i * g)
        out = torch.sigmoid(o_h + o_x + self.w_co * c_new) * torch.tanh(c_new)
        return out, c_new


# MIM-N's convolutions start in U(-0.001, 0.001) so that the difference path starts quiet
# (docs/mim.md).
MIM_N_INIT_RANGE = 1e-3


class MIMBlock(nn.Module):
    """A MIM block (layers 2..L): ST-LSTM gates whose temporal forget path ``f ⊙ C_{t-1}`` is replaced by
    the cascade MIM-N (differences, non-stationary part) -> MIM-S (stationary part).

    Parameters
    ----------
    in_channels
        Channels of ``H^{l-1}`` (the layer below).
    hidden
        Hidden width ``nh`` of this block.
    diff_channels
        Channels of MIM-N's input ``Δ`` (the width of the layer below, or of the MIM-N below it).
    height, width
        Spatial size after patching (for the peephole weights).
    kernel_size
        Kernel size of the gate convolutions.
    layer_norm
        Layer norm on each gate convolution.
    """

    n_states = 5  # (h, c, n, d, s)

    def __init__(
        self,
        in_channels: int,
        hidden: int,
        diff_channels: int,
        height: int,
        width: int,
        kernel_size: int,
        layer_norm: bool,
    ):
        super().__init__()
        self.hidden = hidden
        self.conv_x = GateConv(in_channels, 4 * hidden, kernel_size, layer_norm)
        self.conv_h = GateConv(hidden, 3 * hidden, kernel_size, layer_norm)
        self.conv_m = GateConv(hidden, 4 * hidden, kernel_size, layer_norm)
        self.conv_cm = nn.Conv2d(2 * hidden, hidden, 1)
        self.mim_n = PeepholeCell(
            diff_channels, hidden, height, width, kernel_size, layer_norm, MIM_N_INIT_RANGE
        )
        self.mim_s = PeepholeCell(hidden, hidden, height, width, kernel_size, layer_norm)

    def forward(
        self,
        x: Tensor,
        delta: Tensor | None,
        h: Tensor | None,
        c: Tensor | None,
        m: Tensor,
        n: Tensor | None,
        d: Tensor | None,
        s: Tensor | None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor | None, Tensor]:
        """One step; ``None`` states are zero. ``delta`` is ``None`` at t = 0 (no difference yet: D is zero,
        returned as ``None``, and N is unchanged).

        Returns ``(h_t, c_t, m_t, n_t, d_t, s_t)``.
        """
        if delta is None:
            d_new, n_new = None, n
        else:
            d_new, n_new = self.mim_n(delta, d, n)
        t_mem, s_new = self.mim_s(d_new, c, s)
        i_x, g_x, f_x, o_x = self.conv_x(x).chunk(4, dim=1)
        i_t, g_t, o_t = self.conv_h(h).chunk(3, dim=1)
        i_s, g_s, f_s, o_s = self.conv_m(m).chunk(4, dim=1)
        i = torch.sigmoid(i_x + i_t)
        g = torch.tanh(g_x + g_t)
        i_m = torch.sigmoid(i_x + i_s)
        g_m = torch.tanh(g_x + g_s)
        f_m = torch.sigmoid(f_x + f_s + FORGET_BIAS)
        o = torch.sigmoid(o_x + o_t + o_s)
        m_new = f_m * m + i_m * g_m
        c_new = t_mem + i * g
        h_new = o * torch.tanh(conv_in_dtype(self.conv_cm, torch.cat([c_new, m_new], dim=1)))
        return h_new, c_new, m_new, n_new, d_new, s_new


def space_to_depth(x: Tensor, patch: int) -> Tensor:
    """``[N, C, H, W] -> [N, C*p*p, H/p, W/p]`` (a pure reshape/permute, exported as such to ONNX)."""
    if patch == 1:
        return x
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 1, 3, 5, 2, 4).reshape(n, c * patch * patch, h // patch, w // patch)


def depth_to_space(x: Tensor, patch: int) -> Tensor:
    """Inverse of :func:`space_to_depth`."""
    if patch == 1:
        return x
    n, cpp, hp, wp = x.shape
    c = cpp // (patch * patch)
    x = x.reshape(n, c, patch, patch, hp, wp)
    return x.permute(0, 1, 4, 2, 5, 3).reshape(n, c, hp * patch, wp * patch)


__all__ = [
    "GateConv",
    "STLSTMCell",
    "PeepholeCell",
    "MIMBlock",
    "space_to_depth",
    "depth_to_space",
]
