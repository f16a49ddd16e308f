"""The Lightning module behind ``MIMModel``: Darts tensors in, one ``MIMNetwork`` call, Darts tensors out.

``(batch, time, C*H*W)`` target windows become ``(batch, time, C, H, W)`` frames, covariates become extra
channels (gridded ones per cell, plain ones broadcast to every cell), and the network's
``(batch, time, C, params, H, W)`` output becomes Darts' ``(batch, time, components, params)``. Scheduled
sampling and the masking of always-missing cells live here; nothing about gates does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from darts.models.forecasting.pl_forecasting_module import PLForecastingModule, io_processor
from darts.utils.data.torch_datasets.utils import (
    ModuleStage,
    PLModuleInput,
    PLModuleOutput,
    TorchTrainingBatch,
)
from darts.utils.likelihood_models.torch import QuantileRegression
from torch import Tensor, nn

from darts_mim.config import ResolvedConfig
from darts_mim.legacy import upgrade_checkpoint_hparams
from darts_mim.naive_combination import NaiveCombination
from darts_mim.nn.graphed_network import GraphedNetwork
from darts_mim.nn.network import MIMNetwork
from darts_mim.nn.precision import training_autocast, use_auto_bf16

# Scheduled sampling reaches free running after this fraction of the planned optimizer steps (the
# authors' 50k of 80k), or after DEFAULT_DECAY_STEPS when the plan is unknown (max_epochs=-1).
DECAY_FRACTION = 0.625
DEFAULT_DECAY_STEPS = 5000


def _cov_to_channels(cov: Tensor, grid_channels: int, height: int, width: int) -> Tensor:
    """``(B, T, G*H*W + K) -> (B, T, G + K, H, W)``: gridded channels per cell, plain ones broadcast."""
    g = grid_channels * height * width
    n_plain = int(cov.shape[-1]) - g  # channel counts are constants of the model
    # No empty part is built: an empty tensor's reshape is refused by ONNX Runtime once the batch
    # axis is symbolic (plain covariates on a grid have no gridded part).
    parts = []
    if grid_channels:
        parts.append(cov[..., :g].unflatten(-1, (grid_channels, height, width)))
    if n_plain:
        parts.append(cov[..., g:, None, None].expand(-1, -1, -1, height, width))
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)


# The one-cycle schedule of PyTorch's OneCycleLR defaults: 30 % of the steps warm up from peak / 25 to
# the peak, the rest anneal to peak / 25e4, both along a cosine.
ONE_CYCLE_WARMUP = 0.3
ONE_CYCLE_START = 1 / 25
ONE_CYCLE_END = 1 / 25e4


def _cosine(start: float, end: float, progress: float) -> float:
    progress = min(max(progress, 0.0), 1.0)
    return end + (start - end) / 2 * (1 + math.cos(math.pi * progress))


def one_cycle_factor(step: int, total: int) -> float:
    """The learning rate at optimizer step ``step`` of ``total``, as a fraction of the peak: PyTorch's
    ``OneCycleLR`` with its defaults, step for step; steps past the end stay at the final rate."""
    warm_end = ONE_CYCLE_WARMUP * total - 1  # OneCycleLR's phase boundaries
    if step <= warm_end:
        return _cosine(ONE_CYCLE_START, 1.0, step / warm_end)
    span = (total - 1) - warm_end
    return _cosine(1.0, ONE_CYCLE_END, (step - warm_end) / span if span > 0 else 1.0)


class _MIMModule(PLForecastingModule):
    """Lightning module: Darts batches in, :class:`MIMNetwork` call, Darts predictions out."""

    def __init__(
        self,
        past_cov_layout: tuple[int, int] | None,
        future_cov_layout: tuple[int, int] | None,
        static_cov_layout: tuple[str, int] | None,
        num_hidden: Sequence[int],
        filter_size: int,
        patch_size: int,
        layer_norm: bool,
        diff_mode: str,
        cell_type: str,
        nr_params: int,
        feedback_param: int,
        config: dict | None = None,  # None in modules saved by darts-mim 0.1-0.5 (darts_mim.legacy)
        **kwargs,
    ):
        if config is None:
            kwargs = upgrade_checkpoint_hparams(kwargs)
            config = kwargs.pop("config")
        # The configuration resolved from the training data (darts_mim.config) is a hyper-parameter:
        # Lightning saves it in every checkpoint, so that load_weights() and load_from_checkpoint()
        # rebuild the network without the training data. Instance norm is Darts' own module
        # parameter: the resolved value replaces the model's "auto".
        resolved = ResolvedConfig.from_dict(config)
        kwargs["use_reversible_instance_norm"] = resolved.instance_norm
        super().__init__(**kwargs)
        self.config = resolved
        self.layout = resolved.layout
        recipe = resolved.recipe
        self.recipe = recipe
        self.grid = self.layout.grid.shape
        # Period folding: the network runs across periods on 1 x P strips of every component, or
        # on rows x P / rows frames (a 2-D fold).
        self.fold = self.layout.fold
        rows = self.layout.fold_rows
        self.frame_shape = (self.grid[0], rows, self.fold // rows) if self.fold > 1 else self.grid
        # Channel independence: each component is its own sample of one channel, with shared weights.
        self.channel_independent = resolved.channel_independent
        if self.channel_independent:
            self.frame_shape = (1, *self.frame_shape[1:])
        self.past_cov_layout = past_cov_layout
        self.future_cov_layout = future_cov_layout
        self.static_cov_layout = static_cov_layout
        # Decided per fit in on_train_start, from the device and the steps Lightning plans:
        self._bf16 = False  # recipe.bf16_autocast on a CPU with native bf16
        self._planned_decay_steps = DEFAULT_DECAY_STEPS  # scheduled sampling's decay
        # Training on one GPU replays the network's forward and backward from CUDA graphs
        # (darts_mim.nn.graphed_network); the runner lives for one fit (on_train_start/end).
        self._graph_runner: GraphedNetwork | None = None
        # What the last fit did: training calls replayed from graphs, and why none were if so.
        self.cuda_graph_replays = 0
        self.cuda_graph_fallback: str | None = None
        lag = resolved.anchor_lag
        self.anchor_lag = lag
        channels, height, width = self.frame_shape
        cond = 0
        for layout in (past_cov_layout, future_cov_layout):
            if layout is not None:
                cond += layout[0] + layout[1]
        if static_cov_layout is not None:
            kind, n_static = static_cov_layout
            # per-component rows: one value per channel of a frame (one row per sample when
            # channel-independent)
            per_frame = kind == "per_component" and not self.channel_independent
            cond += n_static * channels if per_frame else n_static
        self.net = MIMNetwork(
            target_channels=channels,
            cond_channels=cond,
            height=height,
            width=width,
            num_hidden=num_hidden,
            filter_size=filter_size,
            patch_size=patch_size,
            layer_norm=layer_norm,
            diff_mode=diff_mode,
            cell_type=cell_type,
            nr_params=nr_params,
            feedback_param=feedback_param,
            activation_checkpointing=recipe.activation_checkpointing,
            anchored_params=_anchored_params(self.likelihood, nr_params) if lag else (),
            anchor_lag=max(lag, 1),
            zero_start_params=_anchored_params(self.likelihood, nr_params)
            if resolved.window_mean or resolved.zero_start
            else (),
        )
        # A linear map from the input window to the output chunk, added to the forecast's location
        # (NLinear-style, one map for every component): it starts at zero, so the untrained model is
        # still its anchor, and it carries what the recurrence learns slowly (a trend's slope).
        self.linear_residual = None
        if resolved.linear_residual:
            self.linear_residual = nn.Linear(self.input_chunk_length, self.output_chunk_length)
            with torch.no_grad():
                self.linear_residual.weight.zero_()
                self.linear_residual.bias.zero_()
        # naive_anchor="combined": the fitted per-lead combination of naive forecasts, a fixed linear
        # map of the window plus a constant, added to the anchored forecast (darts_mim.naive_combination)
        self.naive_combination = None
        if resolved.naive_combination is not None:
            combination = NaiveCombination.from_dict(resolved.naive_combination)
            self.naive_combination = combination
            # the forecast's leads: after output_chunk_shift
            leads = slice(self.output_chunk_shift, None)
            matrix = torch.as_tensor(combination.matrix[leads], dtype=torch.float32)
            offset = torch.as_tensor(combination.offset[leads], dtype=torch.float32)
            self.register_buffer("_combination_matrix", matrix, persistent=False)
            self.register_buffer("_combination_offset", offset, persistent=False)
        if self.linear_residual is not None or self.naive_combination is not None:
            # 1 on the location parameters they move (all of them for points and quantiles)
            mask = torch.zeros(nr_params)
            mask[list(_anchored_params(self.likelihood, nr_params))] = 1.0
            self.register_buffer("_location_mask", mask, persistent=False)
        missing = torch.zeros(self.layout.grid.n_components, dtype=torch.bool)
        missing_components = list(self.layout.missing)
        if missing_components:
            missing[missing_components] = True
        # Components that are NaN at every step of the training data (land, outside the radar range):
        # fed as 0, left out of the loss, forecast as NaN.
        self.register_buffer("missing", missing, persistent=False)
        # Seed of the scheduled-sampling draws, taken from the (seeded) global RNG at creation and saved
        # with the weights.
        self.register_buffer("sampling_seed", torch.randint(0, 2**31 - 1, ()), persistent=True)
        self.has_missing = bool(missing_components)

    def configure_optimizers(self):
        """Darts' optimizer and scheduler; with the recipe's ``lr_schedule="one_cycle"`` and no
        scheduler of the user's, a one-cycle schedule over the steps Lightning plans for this fit (its
        length is only known here, so it cannot be passed as Darts' ``lr_scheduler_kwargs``)."""
        configured = super().configure_optimizers()
        if self.recipe.lr_schedule != "one_cycle" or self.lr_scheduler_cls is not None:
            return configured
        optimizer = configured[0][0] if isinstance(configured, tuple | list) else configured
        total = max(int(self.trainer.estimated_stepping_batches), 1)

        # A function, not a callable object: LambdaLR then leaves it out of its state, so a fit
        # resumed from a checkpoint keeps the step count but follows this fit's plan (a longer
        # resumed run re-plans instead of stepping past the end of the old schedule).
        def factor(step: int) -> float:
            return one_cycle_factor(step, total)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return [optimizer], [{"scheduler": scheduler, "interval": "step", "frequency": 1}]

    # ------------------------------------------------------------------ tensors <-> frames
    def _frames(self, values: Tensor) -> Tensor:
        """``(B, T, C*H*W) -> (B, T, C, H, W)``; folded: ``(B, T, D) -> (B, T / P, D, R, P / R)``,
        frame ``k`` holding steps ``kP .. (k+1)P - 1`` of each component, row-major in ``R`` rows (a
        ``1 x P`` strip for ``R = 1``; ``T`` a multiple of P)."""
        b, t, d = values.shape
        if self.fold == 1:
            return values.reshape(b, t, *self.frame_shape)
        k = t // self.fold
        steps = values.reshape(b, k, self.fold, d).permute(0, 1, 3, 2)
        return steps.reshape(b, k, d, *self.frame_shape[1:])

    def _split(self, values: Tensor) -> Tensor:
        """Channel independence: ``(B, T, D) -> (B * D, T, 1)``, each component its own sample."""
        if not self.channel_independent:
            return values
        b, t, d = values.shape
        return values.permute(0, 2, 1).reshape(b * d, t, 1)

    def _merge(self, steps: Tensor, b: int) -> Tensor:
        """The inverse of :meth:`_split` on predictions: ``(B * D, T, 1, P) -> (B, T, D, P)``."""
        if not self.channel_independent:
            return steps
        _, t, _, p = steps.shape
        return steps.reshape(b, -1, t, p).permute(0, 2, 1, 3)

    def _cov_frames(self, cov: Tensor, grid_channels: int) -> Tensor:
        """Covariates as frame channels: gridded ones per cell, plain ones broadcast to every cell;
        folded like the target (a plain series has no gridded covariates)."""
        if self.fold > 1:
            return self._frames(cov)
        _, height, width = self.grid
        return _cov_to_channels(cov, grid_channels, height, width)

    def _steps(self, t_in: int, n_out: int) -> tuple[int, int, int]:
        """``(offset, frames in, frames out)``: the input steps left out at the start (a folded input
        uses whole periods, the most recent ones), and the number of input and output frames."""
        if self.fold == 1:
            return 0, t_in, n_out
        return t_in % self.fold, t_in // self.fold, -(-n_out // self.fold)

    def _conditioning(self, x_in: PLModuleInput, n_out: int) -> Tensor | None:
        """Per-step covariate channels ``[B, K_in + K_out - 1, cond, H, W]`` over the network's steps.

        Step ``k`` reads frame ``k`` and predicts frame ``k + 1``: it sees the past covariates observed
        in frame ``k`` (zero once they are unknown, in the decoder) and the future covariates of frame
        ``k + 1``, the one it forecasts (zero inside an ``output_chunk_shift`` gap, where Darts provides
        none, and after the output chunk's end in a last partial folded frame).
        """
        past_target = x_in.past_target
        b, t_in, _ = past_target.shape
        offset, k_in, k_out = self._steps(t_in, n_out)
        n_steps = k_in - 1 + k_out
        parts = []
        if self.past_cov_layout is not None and x_in.past_covariates is not None:
            pc = self._cov_frames(x_in.past_covariates[:, offset:], self.past_cov_layout[0])
            pad = pc.new_zeros(b, n_steps - k_in, *pc.shape[2:])
            parts.append(torch.cat([pc, pad], dim=1))
        if self.future_cov_layout is not None and x_in.future_covariates is not None:
            hist, fut = x_in.historic_future_covariates[:, offset:], x_in.future_covariates
            # the gap of output_chunk_shift, and the tail of a last partial frame: no covariates
            gap = fut.new_zeros(b, n_out - fut.shape[1], fut.shape[2])
            tail = fut.new_zeros(b, k_out * self.fold - n_out, fut.shape[2])
            steps = torch.cat([hist, gap, fut, tail], dim=1)
            parts.append(self._cov_frames(steps, self.future_cov_layout[0])[:, 1:])
        if self.static_cov_layout is not None and x_in.static_covariates is not None:
            static = x_in.static_covariates  # (B, rows, S)
            channels, height, width = self.frame_shape
            if self.static_cov_layout[0] == "per_component" and self.channel_independent:
                # one row per component: each component's sample gets its own row
                rows = static.shape[1]
                static = static.reshape(b * rows, -1, 1, 1).expand(-1, -1, height, width)
                return self._with_static(parts, static, n_steps, b, rows)
            if self.static_cov_layout[0] == "per_component" and self.fold == 1:
                static = static.reshape(b, channels, height, width, -1)
                static = static.permute(0, 1, 4, 2, 3).reshape(b, -1, height, width)
            else:  # global rows; folded: one row per component (channel) along the whole strip
                static = static.reshape(b, -1, 1, 1).expand(-1, -1, height, width)
            parts.append(static.unsqueeze(1).expand(-1, n_steps, -1, -1, -1))
        if not parts:
            return None
        cond = torch.cat(parts, dim=2).to(past_target.dtype)
        return self._per_channel(cond) if self.channel_independent else cond

    def _per_channel(self, cond: Tensor) -> Tensor:
        """Channel independence: the same covariates for every component's sample."""
        # expand + reshape rather than repeat_interleave, which the looped ONNX export cannot trace
        b, rest = cond.shape[0], cond.shape[1:]
        return cond.unsqueeze(1).expand(b, self.grid[0], *rest).reshape(-1, *rest)

    def _with_static(self, parts: list, static: Tensor, n_steps: int, b: int, rows: int) -> Tensor:
        """Channel-independent conditioning with per-component static rows: the shared covariates
        repeated per component, each component's own static row beside them."""
        static = static.unsqueeze(1).expand(-1, n_steps, -1, -1, -1)
        if not parts:
            return static.to(self.dtype)
        shared = self._per_channel(torch.cat(parts, dim=2))
        return torch.cat([shared, static.to(shared.dtype)], dim=2)

    def _decay_steps_of_fit(self) -> int:
        """Optimizer steps over which ``eta`` falls to 0: as the recipe gives, or by default 62.5 % of
        the steps planned for this fit (the authors reach 0 at 50k of 80k iterations), so that a
        short run is trained on its own predictions too."""
        if self.recipe.sampling_decay_steps is not None:
            return self.recipe.sampling_decay_steps
        planned = self.trainer.estimated_stepping_batches
        if not math.isfinite(planned):
            return DEFAULT_DECAY_STEPS
        return max(1, round(DECAY_FRACTION * planned))

    def _teacher_mask(self, batch: int, n_out: int, ref: Tensor) -> Tensor | None:
        """Scheduled sampling over the ``K_out - 1`` decoder inputs: 1 feeds the true frame, with
        probability ``eta`` decaying over steps, where a whole true frame exists (not in an
        ``output_chunk_shift`` gap, not a partial folded frame)."""
        _, _, k_out = self._steps(self.input_chunk_length, n_out)
        schedule = self.recipe.sampling_schedule
        if schedule == "free_running" or k_out < 2:
            return None
        if schedule == "teacher_forcing":
            eta = 1.0
        else:
            progress = min(1.0, self.global_step / self._planned_decay_steps)
            eta = self.recipe.sampling_start * (1.0 - progress)
        shift, fold = self.output_chunk_shift, self.fold
        known = [k * fold >= shift and (k + 1) * fold <= n_out for k in range(k_out - 1)]
        first = known.index(True) if any(known) else k_out - 1
        n_known = sum(known)  # the frames with true values are contiguous
        # The draws depend only on the module's sampling seed and the step, not on the global RNG's
        # history, so training resumed from a checkpoint draws exactly what an uninterrupted run draws.
        generator = torch.Generator(device=ref.device)
        generator.manual_seed(int(self.sampling_seed) * 1_000_003 + int(self.global_step))
        uniform = torch.rand(batch, n_known, device=ref.device, generator=generator)
        draws = (uniform < eta).to(ref.dtype)
        after = k_out - 1 - first - n_known
        return torch.cat([ref.new_zeros(batch, first), draws, ref.new_zeros(batch, after)], dim=1)

    def _to_components(self, frames: Tensor) -> Tensor:
        """``(B, K, C, P, H, W) -> (B, T, C*H*W, P)``, channel-major like the series' components; a
        folded ``(B, K, D, P, R, fold / R)`` unfolds to ``K * fold`` steps."""
        b, k, d = frames.shape[:3]
        nr_params = self.net.nr_params
        if self.fold == 1:
            return frames.permute(0, 1, 2, 4, 5, 3).reshape(b, k, -1, nr_params)
        # (B, K, D, P, R, fold / R) -> (B, K, D, P, fold) -> (B, K, fold, D, P) -> (B, K * fold, D, P)
        steps = frames.reshape(b, k, d, nr_params, self.fold).permute(0, 1, 4, 2, 3)
        return steps.reshape(b, k * self.fold, -1, nr_params)

    def _window_steps(self, t_in: int, stage: ModuleStage) -> int:
        """Steps of the input window that training scores (``input_window_loss``): the one-step
        predictions of frames 2..K_in (teacher-forced), ``t_in - 1`` steps unfolded, whole periods
        folded; none otherwise."""
        _, k_in, _ = self._steps(t_in, 1)
        if self.recipe.input_window_loss and stage is ModuleStage.TRAIN and k_in > 1:
            return (k_in - 1) * self.fold
        return 0

    @io_processor
    def forward(self, x_in: PLModuleInput) -> PLModuleOutput:
        """Forecast the output chunk; in training with ``input_window_loss``, every predicted step.

        Like Darts' TCN, training returns the one-step predictions inside the input window before
        the forecast, and :meth:`training_step` extends the target to match, so that Darts' own loss,
        metrics and instance norm (``io_processor``) cover every predicted step without a side channel.
        """
        past = x_in.past_target
        if self.has_missing:
            past = past.masked_fill(self.missing, 0.0)
        b, t_in = past.shape[:2]
        shift, ocl = self.output_chunk_shift, self.output_chunk_length
        n_out = shift + ocl
        offset, _, k_out = self._steps(t_in, n_out)
        n_window = self._window_steps(t_in, x_in.stage)
        future_frames = teacher = None
        if x_in.stage is ModuleStage.TRAIN and x_in.future_target is not None:
            n_samples = b * self.grid[0] if self.channel_independent else b
            teacher = self._teacher_mask(n_samples, n_out, past)
            if teacher is not None:
                future = x_in.future_target[:, n_window:]  # the forecast part of the target
                if self.has_missing:  # before instance norm's affine map: see training_step
                    future = future.masked_fill(self.missing, 0.0)
                if self.rin is not None:
                    future = self.rin.transform(future)
                gap = future.new_zeros(b, shift, future.shape[-1])
                tail = future.new_zeros(b, k_out * self.fold - n_out, future.shape[-1])
                future_frames = self._frames(self._split(torch.cat([gap, future, tail], dim=1)))
        # training calls go through the CUDA-graph runner during a fit on one GPU
        net = self.net if self._graph_runner is None else self._graph_runner
        out = net(
            self._frames(self._split(past[:, offset:])),
            k_out,
            cond=self._conditioning(x_in, n_out),
            future_frames=future_frames,
            teacher_mask=teacher,
            return_all=n_window > 0,
        )
        steps = self._merge(self._to_components(out), b)
        # steps: the window's predictions (when scored), the output_chunk_shift gap, the forecast,
        # and the tail of a last partial folded frame
        forecast = steps[:, n_window + shift : n_window + n_out]
        if self.linear_residual is not None:
            forecast = self._add_linear_residual(forecast, past)
        if self.naive_combination is not None:
            forecast = self._add_naive_combination(forecast, past)
        if n_window:
            forecast = torch.cat([steps[:, :n_window], forecast], dim=1)
        if self.has_missing and x_in.stage is ModuleStage.PREDICT:
            forecast = forecast.masked_fill(self.missing[:, None], float("nan"))
        return PLModuleOutput(prediction=forecast)

    def _add_linear_residual(self, forecast: Tensor, past: Tensor) -> Tensor:
        """``forecast (B, ocl, D, P)`` plus the linear map of ``past (B, icl, D)`` on the location
        parameters (all of them for point forecasts and quantiles)."""
        linear = self.linear_residual(past.transpose(1, 2)).transpose(1, 2)  # (B, ocl, D)
        return forecast + linear[..., None] * self._location_mask.to(forecast.dtype)

    def _add_naive_combination(self, forecast: Tensor, past: Tensor) -> Tensor:
        """``forecast (B, ocl, D, P)`` plus the fitted combination of ``past (B, icl, D)``'s naive
        forecasts (minus the anchor's, which the forecast already holds) on the location parameters."""
        matrix = self._combination_matrix.to(past.dtype)
        combined = torch.einsum("ht,btd->bhd", matrix, past) + self._combination_offset.to(
            past.dtype
        )
        return forecast + combined[..., None] * self._location_mask.to(forecast.dtype)

    # ------------------------------------------------------------------ training steps
    def _prepare_batch(self, batch: TorchTrainingBatch, stage: ModuleStage) -> TorchTrainingBatch:
        if self.has_missing:
            # Always-missing components are NaN in the batch. Zero them before instance norm: its
            # affine weights would otherwise get NaN gradients (0 * NaN) even though the loss leaves
            # those components out, and pass them on to every weight.
            batch = batch.replace(past_target=batch.past_target.masked_fill(self.missing, 0.0))
        n_window = self._window_steps(batch.past_target.shape[1], stage)
        if not n_window:
            return batch
        # The authors' loss: the target of every predicted frame, the input window's frames 2..T_in
        # and then the output chunk; the loss is their mean. With sample weights, the window frames
        # weigh as the first frame of the output chunk (Darts' batches carry no weights for the
        # input's times), so a sample of weight 0 adds nothing to the loss.
        weight = batch.sample_weight
        if weight is not None:
            window = weight[:, :1].expand(-1, n_window, -1)
            weight = torch.cat([window, weight], dim=1)
        return batch.replace(
            future_target=torch.cat([batch.past_target[:, -n_window:], batch.future_target], dim=1),
            sample_weight=weight,
        )

    def on_train_start(self) -> None:
        super().on_train_start()
        # Several devices (DDP) keep eager steps: their gradient hooks were not measured with graphs.
        # On a CPU the runner exists but answers every call eagerly (it checks each call's device).
        self.cuda_graph_replays, self.cuda_graph_fallback = 0, None
        self._bf16 = self.recipe.bf16_autocast and use_auto_bf16(self.device, self.dtype)
        self._planned_decay_steps = self._decay_steps_of_fit()
        if self.recipe.cuda_graphs and self.trainer.world_size == 1:
            self._graph_runner = GraphedNetwork(self.net)

    def on_train_end(self) -> None:
        super().on_train_end()
        runner = self._graph_runner
        if runner is not None:
            self.cuda_graph_replays = runner.replays
            self.cuda_graph_fallback = runner.fallback_reason
        self._graph_runner = None  # frees the graphs' memory pool; nothing of it is saved

    def training_step(self, train_batch: TorchTrainingBatch, batch_idx: int) -> Tensor:
        with training_autocast(self.device, self.dtype, self._bf16):
            return super().training_step(
                self._prepare_batch(train_batch, ModuleStage.TRAIN), batch_idx
            )

    def predict_step(self, batch, batch_idx: int, dataloader_idx: int | None = None):
        # Inputs of another float dtype than the weights (a float64 series into a model trained on
        # float32) would stop the first convolution with a dtype error: cast them, as the ONNX
        # runtime casts its inputs to the graph's float32.
        casts = {
            name: value.to(self.dtype)
            for name in _BATCH_TENSORS
            if isinstance(value := getattr(batch, name, None), Tensor)
            and value.is_floating_point()
            and value.dtype != self.dtype
        }
        if casts:
            batch = batch.replace(**casts)
        return super().predict_step(batch, batch_idx, dataloader_idx)

    def validation_step(self, val_batch: TorchTrainingBatch, batch_idx: int) -> Tensor:
        return super().validation_step(
            self._prepare_batch(val_batch, ModuleStage.VALIDATE), batch_idx
        )

    def _produce_predict_output(self, x: PLModuleInput) -> PLModuleOutput:
        if not (self.has_missing and self.likelihood and not self.predict_likelihood_parameters):
            return super()._produce_predict_output(x)
        # Sampling: forward() forecasts always-missing components as NaN, which distributions
        # refuse as parameters. Sample them from placeholder parameters, then mask the samples.
        output = self(x)
        raw = output.prediction.masked_fill(self.missing[:, None], 0.0)
        samples = self.likelihood.sample(raw)
        b, t = samples.shape[:2]
        masked = samples.reshape(b, t, self.missing.numel(), -1).masked_fill(
            self.missing[:, None], float("nan")
        )
        return output.replace(prediction=masked.reshape(samples.shape))

    # ------------------------------------------------------------------ masked loss
    def _drop_missing(self, prediction: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        keep = ~self.missing
        return prediction[:, :, keep], target[:, :, keep]

    def _compute_loss(self, output: PLModuleOutput, target, criterion, sample_weight):
        if self.has_missing:
            prediction, target = self._drop_missing(output.prediction, target)
            output = output.replace(prediction=prediction)
            if sample_weight is not None and sample_weight.shape[-1] == self.missing.numel():
                sample_weight = sample_weight[:, :, ~self.missing]
        return super()._compute_loss(output, target, criterion, sample_weight)

    def _update_metrics(self, output: PLModuleOutput, target: Tensor, metrics):
        if self.has_missing and len(metrics):
            prediction, target = self._drop_missing(output.prediction, target)
            # torchmetrics expect whole components: flatten kept components into rows.
            n_keep = prediction.shape[2]
            prediction = prediction.reshape(-1, 1, n_keep, prediction.shape[-1])
            target = target.reshape(-1, 1, n_keep)
            saved = self.n_targets
            self.n_targets = n_keep
            try:
                return super()._update_metrics(
                    output.replace(prediction=prediction), target, metrics
                )
            finally:
                self.n_targets = saved
        return super()._update_metrics(output, target, metrics)


# Likelihoods whose first parameter is a location on the target's scale (mean, median, mode):
# The tensors of Darts' inference batch that feed the network.
_BATCH_TENSORS = (
    "past_target",
    "past_covariates",
    "future_past_covariates",
    "historic_future_covariates",
    "future_covariates",
    "static_covariates",
)


# an anchored output adds the naive forecast to it and leaves the scale parameters alone.
_LOCATION_SCALE = ("GaussianLikelihood", "LaplaceLikelihood", "CauchyLikelihood")


def _anchored_params(likelihood, nr_params: int, naive_anchor=True) -> tuple[int, ...]:
    """The outputs that forecast a change from the naive forecast: the value itself without a
    likelihood, every quantile of a quantile regression, the location of a location-scale likelihood.

    Raises
    ------
    ValueError
        For likelihoods whose parameters are not on the target's scale (Poisson's rate, a Beta's
        shape...), where adding the last frame means nothing; the message names ``naive_anchor``,
        the value given (``'combined'``, ``'zero'`` and ``'mean'`` are refused for the same reason).
    """
    if likelihood is None or isinstance(likelihood, QuantileRegression):
        return tuple(range(nr_params))
    if type(likelihood).__name__ in _LOCATION_SCALE:
        return (0,)
    raise ValueError(
        f"naive_anchor ({naive_anchor!r}) needs outputs on the target's scale (it starts them from "
        f"a naive forecast or from zero), which {type(likelihood).__name__}'s parameters are not. "
        "Use no likelihood, QuantileRegression, or a Gaussian, Laplace or Cauchy likelihood; or "
        "naive_anchor=False or 'auto' (which does not anchor such a likelihood)."
    )


def _has_location(likelihood) -> bool:
    """Whether the outputs of a model with this likelihood can be anchored (see
    :func:`_anchored_params`)."""
    return (
        likelihood is None
        or isinstance(likelihood, QuantileRegression)
        or (type(likelihood).__name__ in _LOCATION_SCALE)
    )


def _likelihood_feedback_param(likelihood) -> int:
    """Which likelihood parameter is fed back as the next frame: the median of a quantile regression,
    the first parameter (the location: mean, mu, lambda...) otherwise."""
    if likelihood is None:
        return 0
    if isinstance(likelihood, QuantileRegression):
        return (
            likelihood.quantiles.index(0.5)
            if 0.5 in likelihood.quantiles
            else len(likelihood.quantiles) // 2
        )
    return 0
