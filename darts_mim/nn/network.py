"""The MIM stack: patching, zigzag memory, encode-then-decode unroll, scheduled sampling hook.

Plain torch: nothing here knows about Darts. Every recurrent state is a local variable of ``forward``,
zero at the start of each sequence, so a sequence's forecast never depends on the batch it runs in and
gradients flow through every state over time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from darts_mim.nn.cells import (
    GateConv,
    MIMBlock,
    STLSTMCell,
    conv_in_dtype,
    depth_to_space,
    space_to_depth,
)
from darts_mim.options import CELL_TYPES, DIFF_MODES


class MIMNetwork(nn.Module):
    """Memory In Memory network (Wang et al., CVPR 2019) as an encoder-decoder over one call.

    Layer 1 is an ST-LSTM, layers 2..L are MIM blocks (or ST-LSTMs for ``cell_type="stlstm"``, the
    PredRNN-style ablation). The spatiotemporal memory ``M`` zigzags up the layers within a step and from
    the top layer at ``t-1`` to the bottom at ``t``. A 1x1 convolution maps the top hidden state to the
    next frame.

    Parameters
    ----------
    target_channels
        Channels ``C`` of the frames to forecast.
    cond_channels
        Channels of conditioning inputs (covariates) concatenated to the frame at every step; 0 for none.
    height, width
        Spatial size of the frames; both must be divisible by ``patch_size``.
    num_hidden
        Hidden width of each layer (``len(num_hidden)`` layers). Widths may differ: the memory ``M`` is
        projected by a 1x1 convolution where it passes between layers of different widths.
    filter_size
        Odd kernel size of the gate convolutions.
    patch_size
        Space-to-depth factor applied to the inputs and inverted after the head.
    layer_norm
        Layer norm on each gate convolution.
    diff_mode
        ``"cascade"`` (the authors' code): the first MIM block's MIM-N differences ``H^1``, higher blocks
        take the MIM-N output ``D`` of the block below. ``"difference"`` (the paper's text): every block
        differences its own input ``H^{l-1}_t - H^{l-1}_{t-1}``.
    cell_type
        ``"mim"`` (ST-LSTM then MIM blocks) or ``"stlstm"`` (ST-LSTM layers only).
    nr_params
        Outputs per target channel (likelihood parameters); the head emits ``C * nr_params`` channels.
    feedback_param
        Which of the ``nr_params`` outputs is fed back as the next input frame when decoding (the mean
        of a Gaussian, the median quantile).
    activation_checkpointing
        Recompute each time step in the backward pass instead of storing its activations (less memory,
        about one extra forward pass of compute).
    anchored_params
        Outputs that forecast the change from the step's input frame instead of the value itself:
        ``frame_{t+1} = frame_t + head(H_t)`` for these parameters (locations: a Gaussian's mean,
        every quantile), the head starting at zero, so an untrained network is the naive forecast that
        repeats the last frame and training learns the correction. Empty (default): plain outputs.
    anchor_lag
        Which frame the anchored outputs start from: the one ``anchor_lag`` frames before the frame
        being forecast (1: the last frame, persistence; ``P``: one period earlier, the seasonal naive).
        A step with fewer than ``anchor_lag`` frames before it (early in the input window) starts from
        the last frame. Default: ``1``.
    zero_start_params
        Outputs whose head starts at zero without an anchor (its fed-back row, as for the anchored
        ones): under reversible instance norm the untrained network then forecasts the input
        window's mean. Empty (default): the head's default random start.
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
        activation_checkpointing: bool = False,
        anchored_params: Sequence[int] = (),
        anchor_lag: int = 1,
        zero_start_params: Sequence[int] = (),
    ):
        super().__init__()
        num_hidden = [int(n) for n in num_hidden]
        if not num_hidden or min(num_hidden) < 1:
            raise ValueError(f"`num_hidden` needs at least one positive width, got {num_hidden}.")
        if filter_size < 1 or filter_size % 2 == 0:
            raise ValueError(f"`filter_size` must be a positive odd integer, got {filter_size}.")
        if patch_size < 1 or height % patch_size or width % patch_size:
            raise ValueError(
                f"`patch_size`={patch_size} must divide the grid ({height}x{width}); choose a divisor "
                "of both sides or pad the grid."
            )
        if diff_mode not in DIFF_MODES:
            raise ValueError(f"`diff_mode` must be one of {DIFF_MODES}, got {diff_mode!r}.")
        if cell_type not in CELL_TYPES:
            raise ValueError(f"`cell_type` must be one of {CELL_TYPES}, got {cell_type!r}.")
        if not 0 <= feedback_param < nr_params:
            raise ValueError(f"`feedback_param` must be in [0, {nr_params}), got {feedback_param}.")
        self.target_channels = target_channels
        self.cond_channels = cond_channels
        self.height, self.width = height, width
        self.num_hidden = num_hidden
        self.patch_size = patch_size
        self.diff_mode = diff_mode
        self.cell_type = cell_type
        self.nr_params = nr_params
        self.feedback_param = feedback_param
        self.activation_checkpointing = activation_checkpointing

        pp = patch_size * patch_size
        hp, wp = height // patch_size, width // patch_size
        in_channels = (target_channels + cond_channels) * pp
        cells: list[nn.Module] = []
        for layer, hidden in enumerate(num_hidden):
            below = in_channels if layer == 0 else num_hidden[layer - 1]
            if layer == 0 or cell_type == "stlstm":
                cells.append(STLSTMCell(below, hidden, filter_size, layer_norm))
            else:
                # Cascade: blocks above the first difference the MIM-N output of the block below,
                # which is as wide as that block; otherwise Δ is a difference of H^{l-1}.
                cells.append(
                    MIMBlock(below, hidden, num_hidden[layer - 1], hp, wp, filter_size, layer_norm)
                )
        self.cells = nn.ModuleList(cells)
        if hp == 1 or wp == 1:
            # On frames one cell high (a folded series' 1 x P strip) or wide, a kernel's other rows
            # (columns) only ever meet the zero padding: keep its middle. The same function and the
            # same training at 1/k of the convolutions' work (a 3x3 kernel on a strip is 1x3).
            for module in self.modules():
                if isinstance(module, GateConv):
                    module.keep_middle(row=hp == 1, column=wp == 1)
        # M enters layer l from layer l-1 (from the top layer for l = 0): project where widths differ.
        self.memory_proj = nn.ModuleList(
            nn.Identity()
            if num_hidden[layer - 1] == hidden
            else nn.Conv2d(num_hidden[layer - 1], hidden, 1, bias=False)
            for layer, hidden in enumerate(num_hidden)
        )
        self.head = nn.Conv2d(num_hidden[-1], target_channels * nr_params * pp, 1)
        for name, params in (
            ("anchored_params", anchored_params),
            ("zero_start_params", zero_start_params),
        ):
            for param in params:
                if not 0 <= param < nr_params:
                    raise ValueError(f"`{name}` must be in [0, {nr_params}), got {param}.")
        self.anchored_params = tuple(sorted({int(p) for p in anchored_params}))
        if int(anchor_lag) < 1:
            raise ValueError(f"`anchor_lag` must be >= 1, got {anchor_lag}.")
        self.anchor_lag = int(anchor_lag)
        started = set(self.anchored_params) | {int(p) for p in zero_start_params}
        if started:
            # The correction starts at zero: the untrained network is the naive forecast (or, with
            # zero_start_params under instance norm, the window's mean). Other such parameters
            # (the quantiles besides the one fed back) keep the default random start: zero, they
            # would all start at the anchor and, under Adam's sign-like first steps, move together
            # and stay tied.
            spread = started - {int(feedback_param)}
            param_of_row = torch.arange(self.head.out_channels) // pp % nr_params
            zero = ~torch.isin(param_of_row, torch.tensor(sorted(spread), dtype=torch.long))
            with torch.no_grad():
                self.head.weight[zero] = 0.0
                self.head.bias[zero] = 0.0

    # ------------------------------------------------------------------ state bookkeeping
    def _is_mim(self, layer: int) -> bool:
        return isinstance(self.cells[layer], MIMBlock)

    def _zero_states(self) -> list[Tensor | None]:
        """Flat list of zero states (``None``, see :mod:`darts_mim.nn.cells`): per layer (h, c) or
        (h, c, n, d, s); then the memory M."""
        states: list[Tensor | None] = []
        for layer in range(len(self.cells)):
            states += [None] * (MIMBlock.n_states if self._is_mim(layer) else STLSTMCell.n_states)
        states.append(None)
        return states

    def _step(
        self, x_gates: Tensor, first_step: bool, *states: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        """Advance the whole stack by one time step; returns the new flat state list."""
        memory = states[-1]
        new_states: list[Tensor | None] = []
        offset = 0
        h_below_old = h_below = d_below = None
        for layer, cell in enumerate(self.cells):
            if memory is not None:
                memory = conv_in_dtype(self.memory_proj[layer], memory)
            if isinstance(cell, MIMBlock):
                h, c, n, d, s = states[offset : offset + 5]
                offset += 5
                if first_step:
                    delta = None
                elif self.diff_mode == "difference" or not self._is_mim(layer - 1):
                    delta = h_below - h_below_old
                else:
                    delta = d_below
                h_new, c_new, memory, n_new, d_new, s_new = cell(
                    h_below, delta, h, c, memory, n, d, s
                )
                new_states += [h_new, c_new, n_new, d_new, s_new]
                d_below = d_new
            else:
                h, c = states[offset : offset + 2]
                offset += 2
                gates = x_gates if layer == 0 else cell.conv_x(h_below)
                h_new, c_new, memory = cell(gates, h, c, memory)
                new_states += [h_new, c_new]
            h_below_old, h_below = h, h_new
        new_states.append(memory)
        return tuple(new_states)

    def _frame_out(self, top_hidden: Tensor, frame_in: Tensor | None = None) -> Tensor:
        """Head and inverse patching, plus the step's input frame ``[B, C, H, W]`` on the anchored
        outputs: ``[B, C, nr_params, H, W]``."""
        y = depth_to_space(conv_in_dtype(self.head, top_hidden), self.patch_size)
        y = y.reshape(y.shape[0], self.target_channels, self.nr_params, self.height, self.width)
        if not self.anchored_params or frame_in is None:
            return y
        if len(self.anchored_params) == self.nr_params:
            return y + frame_in[:, :, None]
        # Locations only (a Gaussian's mean, not its scale): rebuild the parameter axis.
        params = [
            y[:, :, p] + frame_in if p in self.anchored_params else y[:, :, p]
            for p in range(self.nr_params)
        ]
        return torch.stack(params, dim=2)

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        past_frames: Tensor,
        n_out: int,
        cond: Tensor | None = None,
        future_frames: Tensor | None = None,
        teacher_mask: Tensor | None = None,
        return_all: bool = False,
    ) -> Tensor:
        """Read ``T_in`` frames, then forecast ``n_out`` frames autoregressively.

        Parameters
        ----------
        past_frames
            ``[B, T_in, C, H, W]`` observed frames.
        n_out
            Number of frames to forecast (>= 1).
        cond
            ``[B, T_in + n_out - 1, cond_channels, H, W]``: the conditioning concatenated to the input of
            step ``t`` (the step that reads frame ``t`` and predicts frame ``t + 1``).
        future_frames
            ``[B, n_out, C, H, W]`` true future frames for teacher forcing (training only).
        teacher_mask
            ``[B, n_out - 1]`` in {0, 1}: 1 feeds the true frame ``future_frames[:, k]`` as the input of
            decoding step ``k + 1``, 0 feeds the model's own prediction. ``None`` is free running.
        return_all
            Also return the one-step predictions inside the input window (frames 1..T_in-1).

        Returns
        -------
        Tensor
            ``[B, n_out, C, nr_params, H, W]`` (``[B, T_in - 1 + n_out, ...]`` with ``return_all``).
        """
        batch, t_in, channels, height, width = past_frames.shape
        if channels != self.target_channels or (height, width) != (self.height, self.width):
            raise ValueError(
                f"Expected frames of shape [B, T, {self.target_channels}, {self.height}, "
                f"{self.width}], got {list(past_frames.shape)}."
            )
        if n_out < 1 or t_in < 1:
            raise ValueError(
                f"Need at least one input and one output frame, got {t_in} and {n_out}."
            )
        n_steps = t_in - 1 + n_out
        if self.cond_channels:
            if cond is None or cond.shape[1] != n_steps or cond.shape[2] != self.cond_channels:
                got = None if cond is None else list(cond.shape)
                raise ValueError(
                    f"Expected `cond` of shape [B, {n_steps}, {self.cond_channels}, H, W], got {got}."
                )
        if teacher_mask is not None and future_frames is None:
            raise ValueError("`teacher_mask` needs `future_frames`.")

        # The input-side convolution of layer 1 runs once over every known input frame.
        known = past_frames if cond is None else torch.cat([past_frames, cond[:, :t_in]], dim=2)
        known = space_to_depth(known.flatten(0, 1), self.patch_size)
        first = self.cells[0]
        # One view per step, taken at once: indexing ``[:, t]`` per step would make the backward pass
        # allocate and zero a gradient of the whole ``[B, T_in, ...]`` tensor for every step (a
        # visible share of a training step); ``unbind`` stacks the step gradients once.
        known_gates = first.conv_x(known).unflatten(0, (batch, t_in)).unbind(1)

        states = self._zero_states()
        outputs: list[Tensor] = []
        fed: list[Tensor] = []  # the frame read at each step: the anchors of later steps
        for t in range(n_steps):
            if t < t_in:
                gates = known_gates[t]
                frame = past_frames[:, t]
            else:
                frame = outputs[-1][:, :, self.feedback_param]
                if teacher_mask is not None:
                    w = teacher_mask[:, t - t_in].to(frame.dtype).reshape(batch, 1, 1, 1)
                    frame = w * future_frames[:, t - t_in] + (1 - w) * frame
                frame_cond = frame if cond is None else torch.cat([frame, cond[:, t]], dim=1)
                gates = first.conv_x(space_to_depth(frame_cond, self.patch_size))
            fed.append(frame)
            if self.activation_checkpointing and torch.is_grad_enabled():
                states = checkpoint(self._step, gates, t == 0, *states, use_reentrant=False)
            else:
                states = self._step(gates, t == 0, *states)
            # Steps before t_in - 1 predict frames inside the input window: skip their head unless
            # asked for, since the forecast never feeds on them.
            if return_all or t >= t_in - 1:
                # step t forecasts frame t + 1: anchored on frame t + 1 - lag where there is one
                anchor = fed[t + 1 - self.anchor_lag] if t + 1 >= self.anchor_lag else frame
                outputs.append(self._frame_out(self._top_hidden(states), anchor))
        return torch.stack(outputs, dim=1)

    def _top_hidden(self, states: Sequence[Tensor]) -> Tensor:
        top = len(self.cells) - 1
        n_top = MIMBlock.n_states if self._is_mim(top) else STLSTMCell.n_states
        return states[-1 - n_top]
