"""A deliberately literal MIM network, transcribed from docs/mim.md, to check the production network against.

Nothing here is fused or batched: one ``nn.Conv2d`` per gate per input (``W_xi``, ``W_xg``, ...), a layer
norm written out by hand, the input convolution run step by step, plain Python loops over time and layers,
and patching by strided slicing. It is slow on purpose: it exists so that every shortcut of
``darts_mim.nn`` (fused gate convolutions, the batched input convolution, skipped work at t = 0) is
checked against the equations.

Layer norm: docs/mim.md writes ``LN(W_x * X_t)`` over the whole ``4·nh`` output of one input's convolution.
Here the per-gate outputs of one input are concatenated and normalised together (mean and variance per
sample over C, H, W; a per-channel scale and shift), which is what the equations say.

:func:`load_production_weights` copies a production :class:`~darts_mim.nn.MIMNetwork`'s weights into a
reference (splitting each fused convolution into its gates), and :func:`reference_grads_as_production`
gathers the reference's gradients back into the production layout, so that outputs and gradients can be
compared parameter by parameter.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F  # noqa: N812 - torch's own spelling
from torch import Tensor, nn

LN_EPS = 1e-5  # the eps of torch.nn.GroupNorm, which the production layer norm uses
FORGET_BIAS = 1.0


def layer_norm(x: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
    """Per sample over (C, H, W): ``(x - mean) / sqrt(var + eps) * scale_c + shift_c`` (biased var)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) / torch.sqrt(var + LN_EPS) * scale[None, :, None, None] + shift[
        None, :, None, None
    ]


class GateConvs(nn.Module):
    """``LN(W * x)`` with one convolution per gate, e.g. ``W_xi, W_xg, W_xf, W_xo``.

    Parameters
    ----------
    gates
        Gate names, in the order the production network stacks them (``"igfo"`` or ``"igo"``).
    in_channels, hidden, kernel_size
        Each gate's convolution is ``in_channels -> hidden`` with a ``kernel_size`` kernel.
    use_ln
        Apply the hand-written layer norm over the concatenated gate outputs.
    """

    # The benchmarks' literal baseline with layer norm sets this (ReferenceMIM(native_norm=True)): the
    # same normalisation by torch's fused group_norm kernel, so that a speed ratio measures the
    # network's levers and not how the norm is written.
    native_norm = False

    def __init__(self, gates: str, in_channels: int, hidden: int, kernel_size: int, use_ln: bool):
        super().__init__()
        self.gates = gates
        self.convs = nn.ModuleDict(
            {
                g: nn.Conv2d(in_channels, hidden, kernel_size, padding=kernel_size // 2)
                for g in gates
            }
        )
        self.use_ln = use_ln
        if use_ln:
            self.ln_scale = nn.Parameter(torch.ones(len(gates) * hidden))
            self.ln_shift = nn.Parameter(torch.zeros(len(gates) * hidden))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        outs = [self.convs[g](x) for g in self.gates]
        joined = torch.cat(outs, dim=1)
        if self.use_ln and self.native_norm:
            joined = F.group_norm(joined, 1, self.ln_scale, self.ln_shift, LN_EPS)
        elif self.use_ln:
            joined = layer_norm(joined, self.ln_scale, self.ln_shift)
        return dict(zip(self.gates, joined.chunk(len(self.gates), dim=1), strict=True))


class RefSTLSTM(nn.Module):
    """Layer 1 of docs/mim.md (and every layer with ``cell_type="stlstm"``)."""

    def __init__(self, in_channels: int, hidden: int, kernel_size: int, use_ln: bool):
        super().__init__()
        self.w_x = GateConvs("igfo", in_channels, hidden, kernel_size, use_ln)
        self.w_h = GateConvs("igfo", hidden, hidden, kernel_size, use_ln)
        self.w_m = GateConvs("igfo", hidden, hidden, kernel_size, use_ln)
        self.w_1x1 = nn.Conv2d(2 * hidden, hidden, 1)

    def forward(
        self, x: Tensor, h: Tensor, c: Tensor, m_in: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        gx, gt, gs = self.w_x(x), self.w_h(h), self.w_m(m_in)
        i = torch.sigmoid(gx["i"] + gt["i"])
        g = torch.tanh(gx["g"] + gt["g"])
        f = torch.sigmoid(gx["f"] + gt["f"] + FORGET_BIAS)
        i2 = torch.sigmoid(gx["i"] + gs["i"])
        g2 = torch.tanh(gx["g"] + gs["g"])
        f2 = torch.sigmoid(gx["f"] + gs["f"] + FORGET_BIAS)
        o = torch.sigmoid(gx["o"] + gt["o"] + gs["o"])
        c_t = f * c + i * g
        m_t = f2 * m_in + i2 * g2
        h_t = o * torch.tanh(self.w_1x1(torch.cat([c_t, m_t], dim=1)))
        return h_t, c_t, m_t


class RefPeephole(nn.Module):
    """MIM-N / MIM-S: the peephole ConvLSTM of docs/mim.md (``hid`` is D for MIM-N, C_{t-1} for MIM-S)."""

    def __init__(self, in_channels: int, hidden: int, hw: tuple[int, int], k: int, use_ln: bool):
        super().__init__()
        self.w_h = GateConvs("igfo", hidden, hidden, k, use_ln)
        self.w_x = GateConvs("igfo", in_channels, hidden, k, use_ln)
        self.w_ci = nn.Parameter(torch.zeros(hidden, *hw))
        self.w_cf = nn.Parameter(torch.zeros(hidden, *hw))
        self.w_co = nn.Parameter(torch.zeros(hidden, *hw))

    def forward(self, x: Tensor, hid: Tensor, cell: Tensor) -> tuple[Tensor, Tensor]:
        gh, gx = self.w_h(hid), self.w_x(x)
        i = torch.sigmoid(gh["i"] + gx["i"] + self.w_ci * cell)
        f = torch.sigmoid(gh["f"] + gx["f"] + self.w_cf * cell + FORGET_BIAS)
        g = torch.tanh(gh["g"] + gx["g"])
        cell_t = f * cell + i * g
        out = torch.sigmoid(gh["o"] + gx["o"] + self.w_co * cell_t) * torch.tanh(cell_t)
        return out, cell_t


class RefMIMBlock(nn.Module):
    """A MIM block (layers 2..L) of docs/mim.md."""

    def __init__(
        self, in_ch: int, hidden: int, diff_ch: int, hw: tuple[int, int], k: int, use_ln: bool
    ):
        super().__init__()
        self.w_h = GateConvs("igo", hidden, hidden, k, use_ln)
        self.w_m = GateConvs("igfo", hidden, hidden, k, use_ln)
        self.w_x = GateConvs("igfo", in_ch, hidden, k, use_ln)
        self.w_1x1 = nn.Conv2d(2 * hidden, hidden, 1)
        self.mim_n = RefPeephole(diff_ch, hidden, hw, k, use_ln)
        self.mim_s = RefPeephole(hidden, hidden, hw, k, use_ln)

    def forward(self, x, delta, h, c, m_below, n, d, s):  # noqa: ANN001 - names of the equations
        """One step; ``delta`` is ``None`` at t = 0."""
        if delta is None:  # t = 0: no difference yet, D = 0 and N stays 0
            d_t, n_t = torch.zeros_like(d), n
        else:
            d_t, n_t = self.mim_n(delta, d, n)
        t_mem, s_t = self.mim_s(d_t, c, s)
        gt, gs, gx = self.w_h(h), self.w_m(m_below), self.w_x(x)
        i = torch.sigmoid(gx["i"] + gt["i"])
        g = torch.tanh(gx["g"] + gt["g"])
        i2 = torch.sigmoid(gx["i"] + gs["i"])
        g2 = torch.tanh(gx["g"] + gs["g"])
        f2 = torch.sigmoid(gx["f"] + gs["f"] + FORGET_BIAS)
        o = torch.sigmoid(gx["o"] + gt["o"] + gs["o"])
        m_t = f2 * m_below + i2 * g2
        c_t = t_mem + i * g
        h_t = o * torch.tanh(self.w_1x1(torch.cat([c_t, m_t], dim=1)))
        return h_t, c_t, m_t, n_t, d_t, s_t


def patch(x: Tensor, p: int) -> Tensor:
    """Space to depth by strided slicing: channel ``c*p*p + i*p + j`` is ``x[:, c, i::p, j::p]``."""
    parts = [x[:, ch, i::p, j::p] for ch in range(x.shape[1]) for i in range(p) for j in range(p)]
    return torch.stack(parts, dim=1)


def unpatch(y: Tensor, p: int) -> Tensor:
    """Inverse of :func:`patch`, by writing each slice back."""
    n, cpp, hp, wp = y.shape
    out = y.new_zeros(n, cpp // (p * p), hp * p, wp * p)
    for k in range(cpp):
        ch, rest = divmod(k, p * p)
        i, j = divmod(rest, p)
        out[:, ch, i::p, j::p] = y[:, k]
    return out


class ReferenceMIM(nn.Module):
    """The literal network; same constructor arguments and ``forward`` as ``MIMNetwork``.

    ``native_norm=True`` computes the same layer norm with torch's ``group_norm`` kernel instead of
    the hand-written one (the benchmarks' literal baseline with layer norm).
    """

    def __init__(
        self,
        target_channels: int,
        cond_channels: int,
        height: int,
        width: int,
        num_hidden: Sequence[int] = (64, 64, 64, 64),
        filter_size: int = 5,
        patch_size: int = 1,
        layer_norm: bool = True,
        diff_mode: str = "cascade",
        cell_type: str = "mim",
        nr_params: int = 1,
        feedback_param: int = 0,
        native_norm: bool = False,
    ):
        super().__init__()
        self.c, self.cond_channels = target_channels, cond_channels
        self.height, self.width, self.p = height, width, patch_size
        self.num_hidden = list(num_hidden)
        self.diff_mode, self.nr_params, self.feedback_param = diff_mode, nr_params, feedback_param
        pp = patch_size * patch_size
        hw = (height // patch_size, width // patch_size)
        k = filter_size
        layers = []
        for layer, nh in enumerate(self.num_hidden):
            below = (target_channels + cond_channels) * pp if layer == 0 else num_hidden[layer - 1]
            if layer == 0 or cell_type == "stlstm":
                layers.append(RefSTLSTM(below, nh, k, layer_norm))
            else:
                layers.append(RefMIMBlock(below, nh, num_hidden[layer - 1], hw, k, layer_norm))
        self.layers = nn.ModuleList(layers)
        # M passes from layer l-1 (the top layer at t-1 for layer 1): a 1x1 projection where widths differ
        self.m_proj = nn.ModuleDict(
            {
                str(layer): nn.Conv2d(num_hidden[layer - 1], nh, 1, bias=False)
                for layer, nh in enumerate(self.num_hidden)
                if num_hidden[layer - 1] != nh
            }
        )
        self.head = nn.Conv2d(self.num_hidden[-1], target_channels * nr_params * pp, 1)
        for module in self.modules():
            if isinstance(module, GateConvs):
                module.native_norm = native_norm

    def forward(
        self,
        past_frames: Tensor,
        n_out: int,
        cond: Tensor | None = None,
        future_frames: Tensor | None = None,
        teacher_mask: Tensor | None = None,
        return_all: bool = False,
    ) -> Tensor:
        """Same arguments and output as ``MIMNetwork.forward``, computed step by step."""
        b, t_in = past_frames.shape[:2]
        hw = (self.height // self.p, self.width // self.p)
        n_layers = len(self.layers)
        zeros = [past_frames.new_zeros(b, nh, *hw) for nh in self.num_hidden]
        H, C = list(zeros), list(zeros)  # noqa: N806 - the names of the equations
        N, D, S = list(zeros), list(zeros), list(zeros)  # noqa: N806
        M = zeros[-1]  # noqa: N806 - the top layer's memory entering layer 1 at t = 0
        preds = []
        outputs = []
        for t in range(t_in - 1 + n_out):
            if t < t_in:
                frame = past_frames[:, t]
            else:
                frame = preds[-1]
                if teacher_mask is not None:
                    for j in range(b):  # per sample: the true frame or the model's own
                        if teacher_mask[j, t - t_in] == 1:
                            frame = frame.clone()
                            frame[j] = future_frames[j, t - t_in]
            x = frame if cond is None else torch.cat([frame, cond[:, t]], dim=1)
            x = patch(x, self.p) if self.p > 1 else x
            H_prev = list(H)  # noqa: N806
            for layer in range(n_layers):
                cell = self.layers[layer]
                if str(layer) in self.m_proj:
                    M = self.m_proj[str(layer)](M)  # noqa: N806
                if isinstance(cell, RefSTLSTM):
                    H[layer], C[layer], M = cell(
                        x if layer == 0 else H[layer - 1], H[layer], C[layer], M
                    )
                else:
                    if t == 0:
                        delta = None
                    elif self.diff_mode == "cascade" and isinstance(
                        self.layers[layer - 1], RefMIMBlock
                    ):
                        delta = D[layer - 1]  # already D^{l-1}_t: the layer below ran first
                    else:
                        delta = H[layer - 1] - H_prev[layer - 1]
                    H[layer], C[layer], M, N[layer], D[layer], S[layer] = cell(
                        H[layer - 1], delta, H[layer], C[layer], M, N[layer], D[layer], S[layer]
                    )
            y = self.head(H[-1])
            y = unpatch(y, self.p) if self.p > 1 else y
            y = y.reshape(b, self.c, self.nr_params, self.height, self.width)
            preds.append(y[:, :, self.feedback_param])
            if return_all or t >= t_in - 1:
                outputs.append(y)
        return torch.stack(outputs, dim=1)


# --------------------------------------------------------------------------- weight mapping
def _gate_convs_map(prefix: str, ref: GateConvs) -> list[tuple[str, list[Tensor]]]:
    """Production ``{prefix}.conv.weight`` etc. as lists of reference tensors stacked along dim 0."""
    pairs = [
        (f"{prefix}.conv.weight", [ref.convs[g].weight for g in ref.gates]),
        (f"{prefix}.conv.bias", [ref.convs[g].bias for g in ref.gates]),
    ]
    if ref.use_ln:
        pairs += [
            (f"{prefix}.norm.weight", [ref.ln_scale]),
            (f"{prefix}.norm.bias", [ref.ln_shift]),
        ]
    return pairs


def _param_map(reference: ReferenceMIM) -> list[tuple[str, list[Tensor]]]:
    """Every production parameter name with the reference parameters it is made of (dim-0 stacked)."""
    pairs: list[tuple[str, list[Tensor]]] = []
    for layer, cell in enumerate(reference.layers):
        pre = f"cells.{layer}"
        pairs += _gate_convs_map(f"{pre}.conv_x", cell.w_x)
        pairs += _gate_convs_map(f"{pre}.conv_h", cell.w_h)
        pairs += _gate_convs_map(f"{pre}.conv_m", cell.w_m)
        pairs += [(f"{pre}.conv_cm.weight", [cell.w_1x1.weight])]
        pairs += [(f"{pre}.conv_cm.bias", [cell.w_1x1.bias])]
        if isinstance(cell, RefMIMBlock):
            for name in ("mim_n", "mim_s"):
                sub = getattr(cell, name)
                pairs += _gate_convs_map(f"{pre}.{name}.conv_x", sub.w_x)
                pairs += _gate_convs_map(f"{pre}.{name}.conv_h", sub.w_h)
                pairs += [
                    (f"{pre}.{name}.{w}", [getattr(sub, w)]) for w in ("w_ci", "w_cf", "w_co")
                ]
    for layer, proj in reference.m_proj.items():
        pairs.append((f"memory_proj.{layer}.weight", [proj.weight]))
    pairs += [("head.weight", [reference.head.weight]), ("head.bias", [reference.head.bias])]
    return pairs


def load_production_weights(reference: ReferenceMIM, production: nn.Module) -> None:
    """Copy ``production``'s (a ``MIMNetwork``) weights into ``reference``, splitting fused convolutions.

    Raises
    ------
    ValueError
        If the two networks' parameters do not correspond one to one (different configurations).
    """
    prod = dict(production.named_parameters())
    pairs = _param_map(reference)
    names = {name for name, _ in pairs}
    if names != set(prod):
        raise ValueError(
            f"Parameter sets differ: only in production {sorted(set(prod) - names)}, only in the "
            f"reference {sorted(names - set(prod))}. Build both with the same arguments."
        )
    n_ref = sum(1 for _ in reference.parameters())
    if sum(len(parts) for _, parts in pairs) != n_ref:
        raise ValueError("Some reference parameters have no production counterpart.")
    with torch.no_grad():
        for name, parts in pairs:
            sizes = [p.shape[0] for p in parts]
            for part, chunk in zip(parts, prod[name].split(sizes, dim=0), strict=True):
                part.copy_(_fit_kernel(chunk, part.shape).reshape(part.shape))


def _fit_kernel(tensor: Tensor, shape: torch.Size) -> Tensor:
    """A production kernel padded (or a reference one cropped) to ``shape``, centred: production
    leaves out the kernel rows (columns) that a frame one cell high (wide) only meets as padding."""
    if tensor.dim() != 4 or len(shape) != 4 or tensor.shape[2:] == shape[2:]:
        return tensor
    dh, dw = shape[2] - tensor.shape[2], shape[3] - tensor.shape[3]
    if dh >= 0 and dw >= 0:
        return torch.nn.functional.pad(tensor, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
    top, left = -dh // 2, -dw // 2
    return tensor[:, :, top : top + shape[2], left : left + shape[3]]


def reference_grads_as_production(
    reference: ReferenceMIM, production: nn.Module | None = None
) -> dict[str, Tensor]:
    """The reference's ``.grad`` gathered into production parameter names and shapes (kernels cropped
    to ``production``'s where it leaves out rows that only meet padding)."""
    shapes = {} if production is None else {n: p.shape for n, p in production.named_parameters()}
    out = {}
    for name, parts in _param_map(reference):
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parts]
        grad = torch.cat(grads, dim=0)
        out[name] = _fit_kernel(grad, shapes[name]) if name in shapes else grad
    return out
