"""``MIMModel``: the MIM network as a Darts torch forecasting model.

The Darts side of the package: hyper-parameters and their checks, the grid layout resolved from the
training series and covariates (and saved with the model), input validation before fit and predict,
atomic saving, and single-device prediction after multi-process training. The tensor plumbing is in
:mod:`darts_mim.module`, the network in :mod:`darts_mim.nn`.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import pickle
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import psutil
import torch
from darts import TimeSeries
from darts.models.forecasting.pl_forecasting_module import PLForecastingModule
from darts.models.forecasting.torch_forecasting_model import (
    DEFAULT_DARTS_FOLDER,
    MixedCovariatesTorchModel,
    _get_checkpoint_fname,
    _get_checkpoint_folder,
)
from darts.utils.likelihood_models.torch import QuantileRegression
from darts.utils.serialization import add_safe_globals
from darts.utils.serialization.torch import load_ckpt_safely

from darts_mim.anchor import resolve_anchor
from darts_mim.callbacks import early_stopping_callbacks, has_early_stopping
from darts_mim.config import (
    ResolvedConfig,
    TrainingRecipe,
    applied_recipe,
    describe_anchor,
    resolve_recipe,
)
from darts_mim.folding import (
    check_fold_rows,
    infer_period,
    resolve_fold,
    resolve_multivariate_options,
)
from darts_mim.grid import GridLayout, GridSpec, check_series_grid
from darts_mim.legacy import upgrade_checkpoint_hparams, upgrade_model_state
from darts_mim.logs import logger, quiet_trainer_setup
from darts_mim.module import (
    _anchored_params,
    _has_location,
    _likelihood_feedback_param,
    _MIMModule,
)
from darts_mim.naive_combination import fit_naive_combination
from darts_mim.resources import (
    available_bytes,
    capped_threads,
    check_fits_in_memory,
    check_training_memory,
)
from darts_mim.validation import (
    check_accelerator,
    check_fold_freq,
    check_hyper_parameters,
    check_same_layout,
    check_series_values,
    check_some_series,
    resolve_layout,
    series_list,
    warn_masked_with_values,
)


class MIMModel(MixedCovariatesTorchModel):
    def __init__(
        self,
        input_chunk_length: int,
        output_chunk_length: int,
        output_chunk_shift: int = 0,
        num_hidden: Sequence[int] = (32, 32),
        filter_size: int = 3,
        patch_size: int = 1,
        layer_norm: bool = True,
        diff_mode: str = "cascade",
        cell_type: str = "mim",
        grid_shape: Sequence[int] | None = None,
        naive_anchor: bool | int | str = "auto",
        fold_period: int | str | None = "auto",
        fold_rows: int = 1,
        channel_independent: bool | str = "auto",
        use_reversible_instance_norm: bool | dict | str = "auto",
        training_recipe: TrainingRecipe | None = None,
        use_static_covariates: bool = True,
        linear_residual: bool = False,
        **kwargs,
    ):
        """Memory In Memory network (MIM, Wang et al., CVPR 2019) for gridded and multivariate series.

        MIM is a stack of recurrent convolutional cells: an ST-LSTM first layer, then MIM blocks whose
        temporal forget path is replaced by two cascaded memories, MIM-N (modelling the non-stationary part
        from differences of hidden states) and MIM-S (the stationary part). A spatiotemporal memory zigzags
        up the layers and from the top layer back to the bottom at the next step. The model reads
        ``input_chunk_length`` frames, then forecasts ``output_chunk_length`` frames autoregressively inside
        one call (each prediction is the next input); ``n > output_chunk_length`` continues the same way.

        A grid of ``C`` channels on ``H x W`` cells is one ``TimeSeries`` of ``C*H*W`` components in
        channel-major order (see :func:`darts_mim.grid_to_series`); the grid is read from the series'
        metadata unless ``grid_shape`` is given. A series without grid metadata is treated as ``C``
        channels on a 1x1 grid, where the convolutional cells reduce to fully connected LSTM-like cells.

        Past and future covariates become extra input channels: a covariate series with the same grid
        metadata contributes its channels per cell, any other (plain) covariate is broadcast to every cell.
        Future covariates of the step being forecast are fed to the step that predicts it; past covariates
        are zero in the decoder, where they are not observed. Static covariates (one row, or one row per
        component) are constant extra channels.

        Parameters
        ----------
        input_chunk_length
            Number of past frames the network reads before forecasting.
        output_chunk_length
            Number of frames forecast by one call of the network (autoregressively, inside the call).
        output_chunk_shift
            Optionally, the number of steps to shift the start of the output chunk into the future; the
            network free-runs through the gap. Default: ``0``.
        num_hidden
            Hidden width of each layer; its length is the number of layers. Layer 1 is an ST-LSTM, the
            others are MIM blocks. Widths may differ. Default: ``(32, 32)``, sized for a CPU; the
            paper's ``(64, 64, 64, 64)`` with ``filter_size=5`` suits video-like data on a GPU.
        filter_size
            Odd kernel size of the gate convolutions. Use 1 for unfolded multivariate (1x1) series.
            Default: ``3`` (the paper's is 5).
        patch_size
            Space-to-depth factor (must divide height and width): frames are cut into ``p x p`` patches
            stacked as channels, which shrinks the grid the cells run on by ``p^2``. Default: ``1``.
        layer_norm
            Layer norm on each gate convolution, as in the authors' code. Default: ``True``.
        diff_mode
            ``"cascade"`` (the authors' code, default): MIM blocks above the first take the MIM-N output of
            the block below as their difference signal. ``"difference"`` (the paper's text): every block
            differences its own input ``H^{l-1}_t - H^{l-1}_{t-1}``.
        cell_type
            ``"mim"`` (default) or ``"stlstm"``: ST-LSTM layers only, the PredRNN-style ablation.
        grid_shape
            ``(C, H, W)`` or ``(H, W)`` of the target grid, for series without grid metadata. Default:
            ``None`` (read from the metadata, else a 1x1 grid).
        naive_anchor
            Forecast the change from a naive forecast instead of the value itself: each predicted frame
            is a naive forecast (an input frame, or the model's own earlier prediction) plus the
            network's output, whose head starts at zero, so an untrained model *is* the naive forecast
            and training learns the correction (the paper's differencing applied to the output).
            ``True``: the last frame (persistence; for a folded series the period before, i.e. the
            seasonal naive); an integer ``k``: the value ``k`` time steps earlier (at most
            ``input_chunk_length``; for a folded series a multiple of the period); ``"seasonal"``: the
            period of the frequency (hourly 24, daily 7, monthly 12...); ``"mean"``: the input
            window's mean (no naive lag; reversible instance norm turned on and the head starting
            at zero, so that the untrained model forecasts it); ``"zero"``: no anchor and the head
            starting at zero, so that the untrained model forecasts zero (in the normalised space
            where instance norm is on: the window's mean), for a target that is a correction to
            another forecast, such as the radar recipe's residual on pysteps' extrapolation;
            ``"auto"``: for a grid, of
            persistence and the seasonal naive, the one with the lower error on the training series
            over the output horizon; for a plain series the last frame (for a folded series, the
            seasonal naive); no anchor where the training series' mean forecasts it better than
            that naive forecast; ``"combined"``: "auto"'s naive forecast (persistence where "auto"
            chooses none) plus a fixed combination, per lead, of the naive forecasts the input
            window holds (persistence, the seasonal naive of the frequency's period and of the
            fold, the window's mean, the drift line) and the training mean (left out under instance
            norm), with weights fitted by least squares on the training series, so that the
            untrained model forecasts that combination (:mod:`darts_mim.naive_combination`);
            ``False``: no anchor, better for mean-zero targets such as differences.
            With a likelihood, the location (a Gaussian's mean, every quantile) is anchored and the
            scale is not; likelihoods without a location on the target's scale (Poisson, Beta, ...)
            are refused, and not anchored by ``"auto"``. The choice is made once, when the network is
            built, and shown by ``model.config``. Default: ``"auto"``.
        fold_period
            Period folding for plain (non-gridded) series: with a period ``P``, the network's frame
            ``k`` holds steps ``kP .. (k+1)P - 1`` of each component as a ``1 x P`` strip, so the
            recurrence runs across periods, MIM-N differences consecutive periods (learned seasonal
            differencing), the convolutions run along the phase, and ``naive_anchor`` becomes the
            seasonal naive forecast. ``"auto"``: the period of the series' frequency (hourly 24,
            30-minute 48, daily 7, weekly 52, monthly 12, quarterly 4) when the input holds at least
            two periods and the training series shows that season (Darts' autocorrelation test,
            :func:`darts_mim.folding.shows_season`), else no folding; an integer sets the period (a warning says when it is not
            a multiple or divisor of the frequency's period); ``None`` keeps one value per step (a
            1x1 grid). Grids are never folded. Chunk lengths stay in time steps: an input that is not
            whole periods reads its most recent whole periods, an output is forecast in whole periods
            and cut (see :mod:`darts_mim.folding`). Default: ``"auto"``.
        fold_rows
            Rows of a folded frame (a 2-D fold, as TimesNet's): its ``P`` steps are laid out row-major
            as ``fold_rows x P / fold_rows``, so the convolutions also see steps ``P / fold_rows``
            apart as neighbours. Must divide the period; only for folded series. Default: ``1`` (a
            ``1 x P`` strip).
        channel_independent
            For plain multivariate series: forecast each component as its own one-channel sample with
            shared weights (as PatchTST and DLinear do), so a component's forecast depends on its own
            history and the covariates only. Grids are refused (their components are cells).
            ``"auto"``: on for a plain multivariate series of up to 32 components, off for univariate
            series and grids. Default: ``"auto"``.
        use_reversible_instance_norm
            Darts' reversible instance normalization ``RINorm`` of the target (a dict passes arguments
            to ``RINorm``). ``"auto"``: on for a plain multivariate series without a likelihood or with
            ``QuantileRegression`` (Darts maps every output back through the norm, a scale parameter
            too), and with ``naive_anchor="mean"``; off otherwise and for univariate series and
            grids. Refused with a likelihood that has scale or shape parameters (a Gaussian's
            sigma would be shifted by the series' level). Default: ``"auto"``.
        training_recipe
            How the network is trained (:class:`darts_mim.TrainingRecipe`): learning-rate schedule,
            gradient clipping, early stopping, the input-window loss, scheduled sampling, bf16
            autocast, CUDA graphs and activation checkpointing. ``None`` (default): the MIM recipe
            (Adam at a one-cycle peak of 3e-3, gradient clipping at norm 1, early stopping with the
            best weights when ``fit`` gets a ``val_series``) where ``optimizer_kwargs`` and
            ``lr_scheduler_cls`` are not given, and Darts' semantics
            (:meth:`TrainingRecipe.darts`: Darts' learning rate, no schedule, clipping or early
            stopping of ours) where either is. ``model.config`` shows the recipe that applies.
        use_static_covariates
            Whether to use the target's static covariates when it has any: one row (broadcast to every
            cell) or one row per component (per cell and channel). Default: ``True``.
        linear_residual
            Add a learned linear map from the input window to the output chunk to the forecast, as
            Darts' NLinear does (one map of ``input_chunk_length`` to ``output_chunk_length`` steps,
            shared by every component and cell, on the instance-normalized values when instance norm
            is on). It starts at zero, so that an untrained model still forecasts its naive anchor;
            training fits the linear part and the recurrent correction together, which lets the
            model extrapolate a trend that the anchor cannot. Default: ``False``.
        **kwargs
            Optional arguments to initialize the pytorch_lightning.Module, pytorch_lightning.Trainer, and
            Darts' :class:`TorchForecastingModel`.

        loss_fn
            PyTorch loss function used for training. Ignored for probabilistic models if the ``likelihood``
            parameter is specified. Default: ``torch.nn.MSELoss()``.
        likelihood
            One of Darts' :meth:`Likelihood <darts.utils.likelihood_models.torch.TorchLikelihood>` models to
            be used for probabilistic forecasts (e.g. ``GaussianLikelihood()``, ``QuantileRegression()``).
            The point estimate fed back while decoding is the first parameter (the mean) or the median
            quantile. Default: ``None``.
        torch_metrics
            A torch metric or a ``MetricCollection`` used for evaluation. Default: ``None``.
        optimizer_cls
            The PyTorch optimizer class to be used. Default: ``torch.optim.Adam``.
        optimizer_kwargs
            Keyword arguments for the optimizer, e.g. ``{"lr": 1e-3, "betas": (0.95, 0.9995)}`` (the authors').
            Default: ``None``.
        lr_scheduler_cls
            Optionally, the PyTorch learning rate scheduler class. Default: ``None``.
        lr_scheduler_kwargs
            Optionally, keyword arguments for the learning rate scheduler. Default: ``None``.
        batch_size
            Number of time series (input and output sequences) used in each training pass, a positive
            integer. Default: ``32``.
        n_epochs
            Number of epochs over which to train the model, an integer >= 0 (``0``: ``fit`` builds the
            network without training it, e.g. to forecast the naive anchor). Default: ``100``.
        model_name
            Name of the model. Used for creating checkpoints and saving tensorboard data.
        work_dir
            Path of the working directory, where to save checkpoints and Tensorboard summaries. Pass it
            explicitly: Darts' default is the working directory at the time darts was imported.
        log_tensorboard
            If set, use Tensorboard to log the different parameters. Default: ``False``.
        nr_epochs_val_period
            Number of epochs to wait before evaluating the validation loss. Default: ``1``.
        force_reset
            If set to ``True``, any previously-existing model with the same name will be reset. Default:
            ``False``.
        save_checkpoints
            Whether to automatically save the untrained model and checkpoints from training. Default:
            ``False``.
        add_encoders
            A large number of past and future covariates can be automatically generated with
            ``add_encoders`` (see Darts' ``SequentialEncoder``); they are plain covariates, broadcast to
            every cell. Default: ``None``.
        random_state
            Controls the randomness of the weights initialization, of scheduled sampling and of
            probabilistic forecasts. Default: ``None``.
        pl_trainer_kwargs
            Keyword arguments for the PyTorch Lightning Trainer, e.g. ``{"accelerator": "gpu", "devices":
            [0]}``, ``{"devices": 2, "strategy": "ddp"}`` for data-parallel training, or
            ``{"callbacks": [EarlyStopping(...)]}``. Prediction always runs on a single device, even when
            training used several processes. ``accelerator="gpu"`` or ``"cuda"`` where torch sees no
            CUDA GPU is a ``ValueError`` at ``fit`` (and ``predict``); ``"auto"`` falls back to the
            CPU. Default: ``None``.
        show_warnings
            Whether to show warnings raised from PyTorch Lightning. Default: ``False``.

        References
        ----------
        .. [1] Y. Wang, J. Zhang, H. Zhu, M. Long, J. Wang, P. S. Yu, "Memory In Memory: A Predictive Neural
               Network for Learning Higher-Order Non-Stationarity from Spatiotemporal Dynamics", CVPR 2019,
               https://arxiv.org/abs/1811.07490

        Examples
        --------
        >>> from darts_mim import MIMModel
        >>> from darts_mim.datasets import load_bike_flows
        >>> flows = load_bike_flows().series  # 2 channels on a 14x8 grid, 30-minute steps
        >>> train, test = flows[:-48], flows[-48:]
        >>> model = MIMModel(
        ...     input_chunk_length=12,
        ...     output_chunk_length=6,
        ...     num_hidden=(32, 32),
        ...     filter_size=3,
        ...     n_epochs=1,
        ... )
        >>> model.fit(train)
        >>> forecast = model.predict(6)  # a gridded TimeSeries: series_to_grid(forecast) is (6, 2, 14, 8)
        """
        model_kwargs = dict(self.model_params)
        check_hyper_parameters(model_kwargs)
        # The training recipe, resolved once: the MIM recipe where the user configured none of Darts'
        # optimizer and scheduler arguments, Darts' semantics where they did (darts_mim.config).
        recipe, self._recipe_source = resolve_recipe(
            training_recipe,
            model_kwargs.get("optimizer_kwargs"),
            model_kwargs.get("lr_scheduler_cls"),
        )
        trainer_kwargs = dict(model_kwargs.get("pl_trainer_kwargs") or {})
        optimizer_kwargs = dict(model_kwargs.get("optimizer_kwargs") or {})
        adam = model_kwargs.get("optimizer_cls") in (None, torch.optim.Adam)
        # Darts' arguments win over the recipe's rate and clipping; the recipe says so (model.config)
        recipe = applied_recipe(
            recipe,
            optimizer_kwargs,
            trainer_kwargs,
            adam,
            lr_scheduler=model_kwargs.get("lr_scheduler_cls") is not None,
            user_early_stopping=has_early_stopping(trainer_kwargs.get("callbacks")),
        )
        self.training_recipe = recipe
        if recipe.gradient_clip_val is not None:
            trainer_kwargs.setdefault("gradient_clip_val", recipe.gradient_clip_val)
        model_kwargs["pl_trainer_kwargs"] = trainer_kwargs
        if recipe.peak_lr is not None and adam:
            optimizer_kwargs.setdefault("lr", recipe.peak_lr)
        model_kwargs["optimizer_kwargs"] = optimizer_kwargs
        for name in ("batch_size", "n_epochs"):  # checked: integers; torch's loader takes int only
            if name in model_kwargs:
                model_kwargs[name] = int(model_kwargs[name])
        super().__init__(**self._extract_torch_model_params(**model_kwargs))
        self.pl_module_params = self._extract_pl_module_params(**model_kwargs)

        self.num_hidden = tuple(int(n) for n in num_hidden)
        self.filter_size = filter_size
        self.patch_size = patch_size
        self.layer_norm = layer_norm
        self.diff_mode = diff_mode
        self.cell_type = cell_type
        self.grid_shape = tuple(grid_shape) if grid_shape is not None else None
        self.naive_anchor = naive_anchor
        self.linear_residual = bool(linear_residual)
        self.fold_period = fold_period
        self.fold_rows = int(fold_rows)
        self.channel_independent = (
            channel_independent if channel_independent == "auto" else bool(channel_independent)
        )
        self._stop_early = False  # set by each fit: a validation series and no user EarlyStopping
        self._loaded_weights: str | None = None  # set by load(): the checkpoint read
        likelihood = model_kwargs.get("likelihood")
        norm = use_reversible_instance_norm
        if norm not in ("auto", False, None) and not _outputs_are_values(likelihood):
            # Darts maps every output back through the norm, a scale parameter too: a sigma of
            # the series' level, silently (Darts' NLinear refuses this pair as well)
            raise ValueError(
                f"use_reversible_instance_norm={norm!r} with {type(likelihood).__name__}: Darts' "
                "reversible instance norm maps every output back with the series' mean and scale, "
                "so the likelihood's scale parameters would be shifted by the series' level. Use "
                "use_reversible_instance_norm='auto' (off with this likelihood) or False, or "
                "QuantileRegression(), whose outputs are all values of the series."
            )
        if naive_anchor not in (False, "auto"):  # refuse a likelihood without a location now
            n_params = 1 if likelihood is None else likelihood.num_parameters
            _anchored_params(likelihood, n_params, naive_anchor)
        if self.linear_residual and not _has_location(likelihood):
            raise ValueError(
                "linear_residual=True adds a linear forecast to the outputs' location, which "
                f"{type(likelihood).__name__} does not have. Use no likelihood, QuantileRegression, "
                "or a Gaussian, Laplace or Cauchy likelihood, or linear_residual=False."
            )
        self._considers_static_covariates = use_static_covariates

    # ------------------------------------------------------------------ Darts hooks
    @property
    def supports_static_covariates(self) -> bool:
        return True

    @property
    def supports_multivariate(self) -> bool:
        return True

    @property
    def config(self) -> ResolvedConfig | None:
        """Every choice the model made from its parameters and the training data (layout and period
        folding, naive anchor, channel independence, instance norm, training recipe), resolved once
        when the network was built; ``None`` before that. ``print(model.config)`` gives it in one
        line, the one the fit logs.

        The network is built by ``fit``, ``fit_from_dataset``, ``lr_find`` or ``scale_batch_size``,
        or read from a checkpoint (``load_weights``). The configuration is one of the network's
        hyper-parameters, so Darts saves it with the model and Lightning with every checkpoint.
        """
        values = (self.pl_module_params or {}).get("config")
        return None if values is None else ResolvedConfig.from_dict(values)

    @property
    def layout(self) -> GridLayout | None:
        """The grid layout of the training data (target grid, gridded covariate channels,
        always-missing components, period folding), ``None`` before the network exists."""
        config = self.config
        return None if config is None else config.layout

    @property
    def grid(self) -> GridSpec | None:
        """The target grid the model was fitted on (``None`` before fitting)."""
        layout = self.layout
        return None if layout is None else layout.grid

    def _layout_of_dataset(self, dataset) -> GridLayout:
        """The layout of a training dataset: from its series when it has them (Darts' datasets do),
        else from ``grid_shape``, else a 1x1 grid with one channel per target component."""
        lazy_layout = getattr(dataset, "grid_layout", None)
        if isinstance(lazy_layout, GridLayout):  # a lazy grid (darts_mim.datasets.lazy) knows it
            spec = lazy_layout.grid
            if spec.height % self.patch_size or spec.width % self.patch_size:
                raise ValueError(
                    f"patch_size={self.patch_size} does not divide the {spec.height}x{spec.width} "
                    "grid; choose a patch size that divides both sides (or 1)."
                )
            return lazy_layout
        series = getattr(dataset, "series", None)
        if series:
            series = _as_list(series)
            layout = resolve_layout(
                series,
                _as_list(getattr(dataset, "past_covariates", None)),
                _as_list(getattr(dataset, "future_covariates", None)),
                self.grid_shape,
                self.patch_size,
            )
            gridded = layout.grid.n_cells > 1
            fold = resolve_fold(
                self.fold_period,
                series[0].freq,
                self.input_chunk_length,
                gridded=gridded,
                # "auto" folds only by a season the training data show
                values=_values_of(series) if self.fold_period == "auto" and not gridded else None,
            )
            if self.channel_independent is True and layout.grid.n_cells > 1:
                raise ValueError(
                    "channel_independent=True forecasts each component of a plain series on its own; "
                    f"this target is a {layout.grid.describe()}, whose components are cells. Use "
                    "channel_independent=False for grids."
                )
            if fold > 1 and self.patch_size > 1:
                raise ValueError(
                    f"patch_size={self.patch_size} cannot cut a folded series' 1 x {fold} frames; use "
                    "patch_size=1 (or fold_period=None)."
                )
            rows = check_fold_rows(self.fold_rows, fold)
            return dataclasses.replace(layout, fold=fold, fold_rows=rows)
        sample = dataset[
            0
        ]  # a TorchTrainingSample, or a tuple in datasets written for Darts <= 0.47
        past_target = sample.past_target if hasattr(sample, "past_target") else sample[0]
        n_components = past_target.shape[-1]
        if self.grid_shape is None:
            channels = tuple(f"ch{i}" for i in range(n_components))
            return GridLayout(GridSpec(channels, 1, 1))
        height, width = (int(g) for g in self.grid_shape[-2:])
        n_channels = n_components // (height * width)
        if n_channels * height * width != n_components:
            raise ValueError(
                f"The dataset's samples have {n_components} target components, which a "
                f"{height}x{width} grid (grid_shape={tuple(self.grid_shape)}) cannot hold."
            )
        return GridLayout(GridSpec(tuple(f"ch{i}" for i in range(n_channels)), height, width))

    def _fitted_freq(self) -> Any:
        """The training series' frequency (a pandas offset, or an integer step), ``None`` when
        unknown: a model built by an earlier darts-mim on several series, or from a dataset
        that does not say."""
        freq = getattr(self, "_training_freq", None)
        if freq is None and self.training_series is not None:
            freq = self.training_series.freq
        return freq

    @property
    def anchor_lag(self) -> int | None:
        """The anchor's lag in time steps (0: no anchor, 1: persistence, ``P``: the seasonal naive),
        chosen from ``naive_anchor`` and the training data when the network is built; ``None``
        before that. ``model.config`` has it in network frames and in words."""
        config = self.config
        return None if config is None else config.anchor_lag_steps

    def _resolve_config(self, dataset, layout: GridLayout) -> ResolvedConfig:
        """Resolve every ``"auto"`` from the training dataset's series (only ``naive_anchor="auto"``
        reads their values; a lazy grid without series offers a recent window instead)."""
        series = _as_list(getattr(dataset, "series", None)) or []
        freq = series[0].freq if series else getattr(dataset, "freq", None)
        values = []
        if self.naive_anchor in ("auto", "combined"):
            values = _values_of(series)
            if not series and hasattr(dataset, "recent_values"):
                values = [dataset.recent_values()]
        lag, window_mean = resolve_anchor(
            self.naive_anchor,
            freq,
            self.input_chunk_length,
            self.output_chunk_length + self.output_chunk_shift,
            layout.fold,
            values,
            has_location=_has_location(self.likelihood),
            gridded=layout.grid.n_cells > 1,
        )
        outputs_are_values = _outputs_are_values(self.likelihood)
        norm = self.pl_module_params.get("use_reversible_instance_norm", False)
        if window_mean:
            # the window's mean is what instance norm with a zero output forecasts
            if norm is False or norm is None or not outputs_are_values:
                raise ValueError(
                    "naive_anchor='mean' starts from the input window's mean through reversible "
                    "instance norm, which "
                    + (
                        "use_reversible_instance_norm=False turns off"
                        if outputs_are_values
                        else f"cannot map a {type(self.likelihood).__name__}'s parameters back"
                    )
                    + ". Use naive_anchor='auto' or True, or keep use_reversible_instance_norm="
                    "'auto' (point forecasts or QuantileRegression)."
                )
            norm = norm if isinstance(norm, dict) else True
        instance_norm, independent = resolve_multivariate_options(
            norm,
            self.channel_independent,
            layout.grid.n_components,
            gridded=layout.grid.n_cells > 1,
            outputs_are_values=outputs_are_values,
        )
        zero_start = self.naive_anchor == "zero"
        period = infer_period(freq)
        combination = None
        if self.naive_anchor == "combined":
            combination = fit_naive_combination(
                values,
                self.input_chunk_length,
                self.output_chunk_length + self.output_chunk_shift,
                lag * layout.fold,
                periods=[p for p in (period, layout.fold) if p is not None],
                climatology=not instance_norm,
            )
        if combination is not None:
            anchor = combination.describe(describe_anchor(lag * layout.fold, period))
        elif window_mean:
            anchor = "the input window's mean (instance norm, no naive anchor)"
        elif zero_start:
            anchor = "none (the outputs start from zero)"
        elif lag or self.naive_anchor != "auto" or not _has_location(self.likelihood):
            anchor = describe_anchor(lag * layout.fold, period)
        else:
            anchor = "none (the series' mean forecast it better than a naive forecast)"
        return ResolvedConfig(
            layout=layout,
            anchor_lag=lag,
            anchor=anchor,
            window_mean=window_mean,
            zero_start=zero_start,
            channel_independent=independent,
            instance_norm=instance_norm,
            linear_residual=self.linear_residual,
            naive_combination=None if combination is None else combination.to_dict(),
            recipe=self.training_recipe,
            recipe_source=self._recipe_source,
            lr_scheduler=getattr(self.pl_module_params.get("lr_scheduler_cls"), "__name__", None),
        )

    def _setup_for_train(self, train_dataset, val_dataset=None, *args, **kwargs):
        # Darts' one path from a training dataset to a network, shared by fit, fit_from_dataset,
        # lr_find and scale_batch_size: derive the layout from the data here, check the data, and
        # resolve the configuration once, where _create_model reads it.
        check_accelerator(self.trainer_params)  # before any work (_init_trainer checks it too)
        layout = self._layout_of_dataset(train_dataset)
        if self.model_created and self.layout is not None:
            check_same_layout(self.layout, layout)
        self._check_training_data(train_dataset, layout)
        if val_dataset is not None:
            self._check_training_data(val_dataset, layout, kind="val_series")
        self._check_memory(layout, _dataset_dtype(train_dataset))
        if not self.model_created:
            config = self._resolve_config(train_dataset, layout)
            self.pl_module_params["config"] = config.to_dict()
            logger.info("MIMModel: %s", config)
            # kept for predict: a model folded by a period refuses series of another frequency
            # (Darts keeps none when it is fitted on several series)
            series = _as_list(getattr(train_dataset, "series", None)) or []
            self._training_freq = series[0].freq if series else getattr(train_dataset, "freq", None)
        patience = self.config.recipe.early_stopping_patience
        self._stop_early = (
            val_dataset is not None
            and patience is not None
            and not has_early_stopping(self.trainer_params.get("callbacks"))
        )
        return super()._setup_for_train(train_dataset, val_dataset, *args, **kwargs)

    @staticmethod
    def _init_trainer(trainer_params: dict, max_epochs: int | None = None):
        # Darts builds a Trainer for every fit and predict (lr_find, scale_batch_size and a loaded
        # model's too): a GPU that torch cannot see is refused here in our words, not Lightning's.
        check_accelerator(trainer_params)
        # Lightning then logs its device inventory and a tip each time. Warnings (e.g. a GPU left
        # unused) still show.
        with quiet_trainer_setup():
            return MixedCovariatesTorchModel._init_trainer(
                trainer_params=trainer_params, max_epochs=max_epochs
            )

    def _setup_trainer(self, trainer, model, verbose=None, epochs: int = 0):
        # Darts builds the trainer from `trainer_params`; the early-stopping callbacks of this fit are
        # added to a copy, so that they are neither pickled with the model nor kept for the next fit.
        if trainer is not None or not epochs or not self._stop_early:
            return super()._setup_trainer(trainer, model, verbose, epochs)
        saved = self.trainer_params
        callbacks = list(saved.get("callbacks") or [])
        callbacks += early_stopping_callbacks(int(self.config.recipe.early_stopping_patience))
        # the sanity check scores the untrained weights on the whole validation series, so that
        # the best-weights restore can return them (an anchored model's naive forecast)
        self.trainer_params = {"num_sanity_val_steps": -1, **saved, "callbacks": callbacks}
        try:
            return super()._setup_trainer(trainer, model, verbose, epochs)
        finally:
            self.trainer_params = saved

    def _create_model(self, train_sample) -> PLForecastingModule:
        layout = self.layout
        if layout is None:
            raise ValueError(
                "The grid layout is unknown: fit the model, or load it with MIMModel.load(), "
                "load_weights() or load_from_checkpoint()."
            )
        n_cells = layout.grid.n_cells

        def cov_layout(sample: np.ndarray | None, grid_channels: int) -> tuple[int, int] | None:
            if sample is None:
                return None
            plain = sample.shape[1] - grid_channels * n_cells
            return (grid_channels, plain)

        past_layout = cov_layout(train_sample.past_covariates, layout.past_grid_channels)
        future_cov = train_sample.future_covariates
        if future_cov is None:
            future_cov = train_sample.historic_future_covariates
        future_layout = cov_layout(future_cov, layout.future_grid_channels)
        static_layout = None
        n_components = layout.grid.n_components
        if train_sample.static_covariates is not None:
            rows, n_static = train_sample.static_covariates.shape
            if rows == n_components and rows > 1:
                static_layout = ("per_component", n_static)
            elif rows == 1:
                static_layout = ("global", n_static)
            else:
                raise ValueError(
                    f"Static covariates have {rows} rows; MIMModel takes one row (global) or one row per "
                    f"component ({n_components})."
                )
        nr_params = 1 if self.likelihood is None else self.likelihood.num_parameters
        return _MIMModule(
            past_cov_layout=past_layout,
            future_cov_layout=future_layout,
            static_cov_layout=static_layout,
            num_hidden=self.num_hidden,
            filter_size=self.filter_size,
            patch_size=self.patch_size,
            layer_norm=self.layer_norm,
            diff_mode=self.diff_mode,
            cell_type=self.cell_type,
            nr_params=nr_params,
            feedback_param=_likelihood_feedback_param(self.likelihood),
            # the resolved configuration, and Darts' own module parameters
            **self.pl_module_params,
        )

    def __setstate__(self, state: dict) -> None:
        # Models pickled by earlier versions keep their choices in other attributes and keys.
        super().__setstate__(upgrade_model_state(state))

    def to_onnx(self, path: str | None = None, *, scaler: Any = None, **kwargs) -> str:
        """Export the fitted model to one ONNX file for torch-free serving with
        :class:`darts_mim.OnnxForecaster`; see :func:`darts_mim.onnx.export.export_model` for the options.

        Parameters
        ----------
        path
            The file to write; default ``"MIMModel_<date>.onnx"`` in the working directory.
        scaler
            The fitted Darts ``Scaler`` the training series went through (``scaler.transform``).
            Its affine map goes into the graph, forward on the target input and inverted on the
            forecasts, so that the file takes and returns raw values (its metadata entry ``scaling``
            says so). ``None`` (default): the file works on the values the model was trained on.
            Supported: MinMaxScaler (Darts' default), StandardScaler and other affine scikit-learn
            scalers, fitted on one series or with ``global_fit=True`` (see
            :mod:`darts_mim.onnx.scaling`); ``past_covariates_scaler`` and
            ``future_covariates_scaler`` do the same for the covariates.
        **kwargs
            The other options of :func:`darts_mim.onnx.export.export_model` (``fp16``,
            ``int8_calibration``, ``unroll``, ``opset``, the covariate scalers).

        Returns
        -------
        str
            The path written.
        """
        from darts_mim.onnx.export import export_model

        return export_model(self, path, scaler=scaler, **kwargs)

    def save(self, path: str | None = None, clean: bool = False) -> None:
        """Save the model to ``path`` (and its weights to ``path + ".ckpt"``) without ever leaving a
        half-written file in place of a good one.

        Both files are first written next to their destination under temporary names, then moved into
        place with an atomic rename; a crash or a full disk mid-save leaves any previous save intact.
        After multi-process (DDP) training every process calls ``save`` (Lightning's checkpoint write
        is collective) and the process of global rank 0 writes the files.
        A checksum file ``path + ".sha256"`` (``sha256sum`` format) lists the SHA-256 of both, moved
        into place last; :meth:`load` and :meth:`load_weights` refuse files that do not match it
        (see :mod:`darts_mim.integrity`).

        Parameters
        ----------
        path
            Destination, e.g. ``"mim.pt"``. Default: ``"MIMModel_<timestamp>.pt"``.
        clean
            Store a cleaned model without training series and trainer parameters (see Darts).
        """
        from darts_mim.integrity import CHECKSUM_SUFFIX, write_model_checksums

        if path is None:
            path = self._default_save_path() + ".pt"
        # "~/models/mim.pt" means the home directory, as for the CLI: without expanding it, the
        # missing-directory creation below made a directory literally named "~" in the working
        # directory, and load("~/models/mim.pt") then looked for the weights in the home directory
        path = os.path.expanduser(os.fspath(path))
        if path.endswith(("/", os.sep)) or os.path.isdir(path):
            raise ValueError(
                f"MIMModel.save() needs a file name, but {path!r} is a directory. Pass a file path "
                f"such as {os.path.join(path, 'mim.pt')!r}."
            )
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        tmp_dir = tempfile.mkdtemp(prefix=".mim-save-", dir=directory)
        try:
            tmp_path = os.path.join(tmp_dir, os.path.basename(path))
            super().save(tmp_path, clean=clean)  # collective after multi-process training
            trainer = self.trainer
            if trainer is not None and trainer.global_rank != 0:
                return  # the process of global rank 0 writes the files (Lightning's checkpoint too)
            if self.model_created and not os.path.exists(tmp_path + ".ckpt"):
                self._copy_loaded_weights(tmp_path + ".ckpt")
            write_model_checksums(tmp_path)  # lists the final base names
            # The checksum file last: an interrupted save fails verification instead of mixing
            # files of two saves silently.
            for suffix in ("", ".ckpt", CHECKSUM_SUFFIX):
                if os.path.exists(tmp_path + suffix):
                    os.replace(tmp_path + suffix, path + suffix)
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)

    def _copy_loaded_weights(self, destination: str) -> None:
        """The weights of a model that has neither a trainer nor a checkpoint Darts copies: those of
        the file it was loaded from, or an error rather than a save without weights."""
        source = getattr(self, "_loaded_weights", None)
        if source is None or not os.path.exists(source):
            raise ValueError(
                "This model's weights cannot be saved: it has no trainer and the checkpoint it was "
                f"loaded from ({source}) is gone. Save it before deleting or moving that file, or "
                "fit it again."
            )
        shutil.copyfile(source, destination)

    @staticmethod
    def load(path: str, pl_trainer_kwargs: dict | None = None, trusted: bool = False, **kwargs):
        """Load a model saved with :meth:`save`; a corrupt, truncated or foreign file raises a
        ``ValueError`` that names it. See Darts' ``TorchForecastingModel.load`` for the arguments.

        Before anything is unpickled, ``path`` and ``path + ".ckpt"`` are checked against the checksum
        file :meth:`save` wrote (``path + ".sha256"``); a file that does not match it was modified or
        corrupted after it was saved and is refused. Files saved by darts-mim 0.5 or older have no
        checksum file: they load, with a warning (once per file) that their integrity cannot be
        verified, unless their zip archive's own CRCs fail. A missing ``path + ".ckpt"`` that the
        checksum file lists (a copy that left the weights behind) is refused too.
        """
        from darts_mim.integrity import (
            MODEL_FIX,
            corrupt_pickle_error,
            file_containing,
            quiet_unsafe_global_log,
            saved_weights_missing,
            short_cause,
            unsafe_global_of,
            verify_model_files,
        )

        path = os.path.expanduser(os.fspath(path))  # as save() writes "~/mim.pt"
        for file in (path, path + ".ckpt"):
            if os.path.exists(file) and os.path.getsize(file) == 0:
                raise ValueError(f"The saved model file {file} is empty (an interrupted copy?).")
        if saved_weights_missing(path):  # Darts would load the model without its weights
            raise ValueError(
                f"The model's weights {path}.ckpt are missing: MIMModel.save() wrote them next to "
                f"{os.path.basename(path)} (its checksum file lists them). Copy them beside it, or "
                "save the model again."
            )
        verify_model_files(path)
        try:
            with quiet_unsafe_global_log():
                model = MixedCovariatesTorchModel.load(
                    path, pl_trainer_kwargs=pl_trainer_kwargs, trusted=trusted, **kwargs
                )
        except FileNotFoundError:
            raise
        except Exception as err:
            files = [path, path + ".ckpt"]
            qualname = unsafe_global_of(err)
            where = (qualname and file_containing(files, qualname)) or f"{path} (or {path}.ckpt)"
            corrupt = corrupt_pickle_error(where, err, MODEL_FIX)
            if corrupt is not None:  # a garbled class name: never advise trusted loading
                raise corrupt from err
            if qualname is not None:  # a real class Darts does not allow: its advice applies
                raise ValueError(f"Could not load a MIMModel from {where}: {err}") from err
            raise ValueError(
                f"Could not load a MIMModel from {path} (and {path}.ckpt): the file is corrupt, "
                f"truncated, or was not written by MIMModel.save(). Cause: {short_cause(err)}"
            ) from err
        if not isinstance(model, MIMModel):
            raise ValueError(f"{path} holds a {type(model).__name__}, not a MIMModel.")
        # Darts' save() writes weights only from a trainer or a checkpoint it resumes from; a model
        # just loaded has neither: save() copies the checkpoint it was loaded from instead.
        model._loaded_weights = path + ".ckpt" if model.model_created else None
        return model

    def load_weights(self, path: str, *args, **kwargs) -> None:
        """Load the weights saved with :meth:`save` at ``path``; see Darts'
        ``TorchForecastingModel.load_weights``. ``"~"`` is the home directory, as in :meth:`save`."""
        super().load_weights(os.path.expanduser(os.fspath(path)), *args, **kwargs)

    def _check_combination_fits(self, config: dict, path: str) -> None:
        """Refuse a checkpoint's ``naive_anchor="combined"`` weights for other chunk lengths.

        The recurrent network reads any window length, so ``load_weights(..., skip_checks=True)``
        into a model with another ``input_chunk_length`` or ``output_chunk_length`` works, except
        for the fitted combination, a fixed ``(horizon, input_chunk_length)`` matrix: it loaded, and
        every ``predict`` then stopped on a torch einsum or broadcasting error.
        """
        combination = config.get("naive_combination")
        if combination is None:
            return
        rows = len(combination["matrix"])
        columns = len(combination["matrix"][0]) if rows else 0
        horizon = self.output_chunk_length + self.output_chunk_shift
        if (rows, columns) == (horizon, self.input_chunk_length):
            return
        raise ValueError(
            f"The checkpoint {path} holds a naive_anchor='combined' model whose combination was "
            f"fitted for input_chunk_length={columns} and a horizon of {rows} steps "
            "(output_chunk_length + output_chunk_shift); this model has "
            f"input_chunk_length={self.input_chunk_length} and a horizon of {horizon}. Create the "
            "model with the checkpoint's chunk lengths, or fit a new model with these."
        )

    def load_weights_from_checkpoint(
        self,
        model_name: str | None = None,
        work_dir: str | None = None,
        file_name: str | None = None,
        best: bool = True,
        strict: bool = True,
        load_encoders: bool = True,
        skip_checks: bool = False,
        trusted: bool = False,
        **kwargs,
    ):
        """Load weights from a checkpoint; see Darts' ``TorchForecastingModel.load_weights_from_checkpoint``.

        The grid layout the network's shape depends on is read from the checkpoint itself, so this
        works on a model that was never fitted, with ``skip_checks=True`` too. A truncated or corrupt
        checkpoint raises a ``ValueError`` that names the file; a ``MODEL.pt.ckpt`` written by
        :meth:`save` must match its checksum file ``MODEL.pt.sha256``.
        """
        from darts_mim.integrity import verify_checkpoint_file

        path = _checkpoint_path(
            model_name or self.model_name,
            work_dir or os.path.join(os.getcwd(), DEFAULT_DARTS_FOLDER),
            file_name,
            best,
        )
        if os.path.isfile(path) and os.path.getsize(path) > 0:
            verify_checkpoint_file(path)  # its checksum (MIMModel.save), else its zip CRCs
        with _readable(path):
            ckpt = load_ckpt_safely(
                load_fn=torch.load,
                path=path,
                trusted=trusted,
                map_location=kwargs.get("map_location", "cpu"),
            )
            hparams = ckpt.get("hyper_parameters") or {}
        # the configuration the network's shape depends on (checkpoints of 0.1-0.5 in their form)
        config = upgrade_checkpoint_hparams(hparams).get("config")
        if config is not None:
            self._check_combination_fits(config, path)
            self.pl_module_params["config"] = config
        with _readable(path):
            super().load_weights_from_checkpoint(
                model_name=model_name,
                work_dir=work_dir,
                file_name=file_name,
                best=best,
                strict=strict,
                load_encoders=load_encoders,
                skip_checks=skip_checks,
                trusted=trusted,
                **kwargs,
            )

    @staticmethod
    def load_from_checkpoint(
        model_name: str,
        work_dir: str | None = None,
        file_name: str | None = None,
        best: bool = True,
        trusted: bool = False,
        **kwargs,
    ) -> MIMModel:
        """Load a model from the checkpoints that ``save_checkpoints=True`` wrote; see Darts'
        ``TorchForecastingModel.load_from_checkpoint``. A truncated or corrupt checkpoint (its zip
        CRCs, as :meth:`load_weights_from_checkpoint` checks them) raises a ``ValueError`` that names
        the file."""
        path = _checkpoint_path(
            model_name,
            work_dir or os.path.join(os.getcwd(), DEFAULT_DARTS_FOLDER),
            file_name,
            best,
        )
        from darts_mim.integrity import verify_checkpoint_file

        if os.path.isfile(path) and os.path.getsize(path) > 0:
            verify_checkpoint_file(path)  # its zip CRCs: a damaged file must not load silently
        with _readable(path):
            model = MixedCovariatesTorchModel.load_from_checkpoint(
                model_name, work_dir, file_name, best, trusted, **kwargs
            )
        if not isinstance(model, MIMModel):
            raise ValueError(f"{path} holds a {type(model).__name__}, not a MIMModel.")
        return model

    # ------------------------------------------------------------------ validation
    def _check_training_data(self, dataset, layout: GridLayout, kind: str = "series") -> None:
        """NaN and infinite values (outside always-missing components) in a training or validation
        dataset that holds its series (Darts' datasets do)."""
        series = _as_list(getattr(dataset, "series", None)) or []
        self._check_inputs(
            series,
            _as_list(getattr(dataset, "past_covariates", None)),
            _as_list(getattr(dataset, "future_covariates", None)),
            layout.missing,
        )
        self._check_static_covariates_alike(series, kind)

    def _check_static_covariates_alike(self, series: Sequence[TimeSeries], kind: str) -> None:
        """Static covariates of one shape in every training series, once the first has some.

        Darts reads them from every series when the first has them; a series without them, or with
        other columns, stopped training with an error from inside the network ("Expected `cond`
        of shape ..., got None") or from numpy's batch stacking (Darts' own models share the
        latter), which named neither the series nor the fix.
        """
        if not getattr(self, "_considers_static_covariates", True) or not series:
            return
        first = series[0].static_covariates
        if first is None:
            return  # Darts then ignores every series' static covariates
        for i, s in enumerate(series[1:], start=1):
            static = s.static_covariates
            if static is not None and static.shape == first.shape:
                continue
            got = "none" if static is None else f"shape {static.shape}"
            raise ValueError(
                f"`{kind}` at index 0 has static covariates of shape {first.shape} "
                f"(rows x columns), but the one at index {i} has {got}: the model reads them from "
                "every series. Give every series static covariates with the same columns (and "
                "one row, or one per component), or pass use_static_covariates=False."
            )

    def fit(
        self,
        series: TimeSeries | Sequence[TimeSeries],
        past_covariates: TimeSeries | Sequence[TimeSeries] | None = None,
        future_covariates: TimeSeries | Sequence[TimeSeries] | None = None,
        val_series: TimeSeries | Sequence[TimeSeries] | None = None,
        *args,
        **kwargs,
    ) -> MIMModel:
        """Fit the model; see :meth:`darts.models.forecasting.torch_forecasting_model.TorchForecastingModel.fit`.

        Besides Darts' own checks, validates the grid (channels, ``patch_size``), NaN and infinite values
        (components that are NaN at every step are masked out of the loss and forecast as NaN), and that
        every series is long enough for one training sample.
        """
        min_len = self.input_chunk_length + self.output_chunk_shift + self.output_chunk_length
        for kind, given_series in (("series", series), ("val_series", val_series)):
            # name the argument and index: "a series" did not say which of several was short
            given_list = _as_list(given_series) or []
            for i, s in enumerate(given_list):
                if len(s) >= min_len:
                    continue
                what = f"`{kind}`" if len(given_list) == 1 else f"`{kind}` at index {i}"
                raise ValueError(
                    f"{what} has {len(s)} time steps but MIMModel needs at least "
                    "input_chunk_length + output_chunk_shift + output_chunk_length = "
                    f"{min_len} to make one training sample. Use a longer series or shorter chunks."
                )
        given = series
        if val_series is None and not args:
            series, val_series = self._hold_out_validation(series)
            if val_series is not None:  # the covariates cover the held-out steps as given
                kwargs.setdefault("val_past_covariates", past_covariates)
                kwargs.setdefault("val_future_covariates", future_covariates)
        with capped_threads():  # never more torch threads than the process has CPUs
            super().fit(series, past_covariates, future_covariates, val_series, *args, **kwargs)
        if series is not given and isinstance(given, TimeSeries):
            # predict(n) continues the series the user gave, not its training part
            self.training_series = given
        return self

    def _hold_out_validation(self, series):
        """``(train, validation)``: the recipe's ``validation_holdout`` share of each series' most
        recent steps as the validation series (with the input window before it), or ``(series,
        None)`` when the recipe holds nothing out or a series is too short to spare it."""
        recipe = self.training_recipe
        # the user's own EarlyStopping (the recipe's patience is then None) uses it too
        stops = recipe.early_stopping_patience is not None or has_early_stopping(
            self.trainer_params.get("callbacks")
        )
        if recipe.validation_holdout is None or not stops:
            return series, None
        icl, horizon = self.input_chunk_length, self.output_chunk_shift + self.output_chunk_length
        train, val = [], []
        for s in _as_list(series):
            n_val = max(horizon, round(recipe.validation_holdout * len(s)))
            if len(s) - n_val < icl + horizon:
                logger.info(
                    "MIMModel: a training series of %d steps is too short to hold out %d for "
                    "validation; training on every step without early stopping.",
                    len(s),
                    n_val,
                )
                return series, None
            train.append(s[: len(s) - n_val])
            val.append(s[len(s) - n_val - icl :])
        if isinstance(series, TimeSeries):
            return train[0], val[0]
        return train, val

    def _check_inputs(
        self,
        series: Sequence[TimeSeries],
        past_covariates: Sequence[TimeSeries] | None,
        future_covariates: Sequence[TimeSeries] | None,
        missing: Sequence[int] | None,
    ) -> None:
        for s in series:
            check_series_values(s, "series", allowed_nan_components=missing)
        for kind, covs in (
            ("past_covariates", past_covariates),
            ("future_covariates", future_covariates),
        ):
            for cov in covs or []:
                check_series_values(cov, kind)

    def _check_memory(self, layout: GridLayout, dtype: np.dtype | type | None = None) -> None:
        """Fail before training when one training step clearly cannot fit in memory.

        Parameters
        ----------
        layout
            The training data's grid layout.
        dtype
            The training samples' dtype: without a Lightning ``precision`` of the user's, Darts
            trains the network in it (float64 series: 8 bytes a value). ``None``: float32.
        """
        precision = self.trainer_params.get("precision")
        if precision is None:  # the first fit: Darts sets "64-true" for float64 data, else 32 bits
            bytes_per_value = 8 if dtype is not None and np.dtype(dtype).itemsize >= 8 else 4
        else:
            bytes_per_value = 8 if str(precision).startswith("64") else 4
        steps = self.input_chunk_length + self.output_chunk_shift + self.output_chunk_length
        height, width = layout.grid.height, layout.grid.width
        if layout.fold > 1:  # the network runs over R x P / R frames, one per period
            rows = layout.fold_rows
            height, width, steps = rows, layout.fold // rows, -(-steps // layout.fold)
        # Fails when a step cannot fit; warns, naming a patch size and batch that fit, when it
        # would take more than a comfortable share of the memory (big grids with patch_size=1).
        check_training_memory(
            self.num_hidden,
            self.cell_type,
            height,
            width,
            self.patch_size,
            self.batch_size,
            steps - 1,
            available_bytes(self.trainer_params.get("accelerator")),
            bytes_per_value,
            self.training_recipe.activation_checkpointing,
        )

    def predict(
        self,
        n: int,
        series: TimeSeries | Sequence[TimeSeries] | None = None,
        past_covariates: TimeSeries | Sequence[TimeSeries] | None = None,
        future_covariates: TimeSeries | Sequence[TimeSeries] | None = None,
        *args,
        **kwargs,
    ):
        """Forecast ``n`` steps; see :meth:`TorchForecastingModel.predict`.

        Checks that each series has the training grid's shape and channel count (a plain series: the
        training number of components; names may differ, as for Darts' own models), that gridded
        covariates lie on the target grid's cells (as ``fit`` requires), that the series
        and covariates are deterministic (a stochastic one would be forecast from a random sample)
        and have no NaN or infinite values in the steps the forecast reads (outside the
        always-missing components; earlier gaps are never read), as ``OnnxForecaster.predict``
        checks them, and warns when those components have values. Forecasts keep
        the input series' metadata, so gridded forecasts convert back with
        :func:`darts_mim.series_to_grid`. A forecast with NaN or infinite values outside the
        always-missing components (corrupt weights, a diverged fit) raises a ``ValueError``, here
        and in ``historical_forecasts`` / ``backtest`` (checked in :meth:`predict_from_dataset`).
        A model folded by a period (``fold_period``) refuses a series of another frequency than
        the training series'.

        Samples drawn with a ``random_state`` (a likelihood's, or ``mc_dropout``) are drawn for
        each series alone with that seed, so that a series gets the same samples whatever other
        series are in the call and their order (for one ``batch_size``: Darts draws the samples
        in groups of that size).
        """
        if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
            raise ValueError(f"`n` must be a positive integer, got {n!r}.")
        from darts_mim.onnx.core import check_num_samples, check_parameters_flag, check_random_state

        args, kwargs = _by_name(args, kwargs)
        # Darts reads its truthiness: the string "false" would return the parameters
        check_parameters_flag(kwargs.get("predict_likelihood_parameters"))
        check_random_state(kwargs.get("random_state"))
        # the ONNX runtime's words; torch stopped on 2.0 or True with a TypeError from tile()
        num_samples = check_num_samples(kwargs.get("num_samples", 1))
        # [], [g, None] or an array: Darts stopped on an IndexError or AttributeError
        series_l = series_list(series, "series")
        if series_l is not None:
            check_some_series(series_l)
        series_list(past_covariates, "past_covariates")
        series_list(future_covariates, "future_covariates")
        layout = self.layout
        if layout is not None:
            n_series = 1 if series is None else len(series_l)
            n_values = n * layout.grid.n_components * n_series
            check_fits_in_memory(
                8 * n_values * num_samples,
                int(psutil.virtual_memory().available),
                f"A forecast of n={n} steps",
                "Forecast fewer steps at a time, or fewer samples or series per call.",
            )
        if layout is not None and series is not None:
            for i, s in enumerate(series_l):
                what = "`series`" if len(series_l) == 1 else f"`series` at index {i}"
                check_series_grid(s, layout.grid, what)
                check_fold_freq(s.freq, self._fitted_freq(), layout.fold, what)
                warn_masked_with_values(s, layout.missing, what)
        if layout is not None:
            # Darts counts covariate components only: one gridded on other cells (8x14 for a 14x8
            # target) would be read on the wrong cells. Refused as fit and OnnxForecaster refuse it.
            from darts_mim.validation import check_covariate_grid, input_name

            for kind, given, uses, grid_channels in (
                (
                    "past_covariates",
                    past_covariates,
                    self.uses_past_covariates,
                    layout.past_grid_channels,
                ),
                (
                    "future_covariates",
                    future_covariates,
                    self.uses_future_covariates,
                    layout.future_grid_channels,
                ),
            ):
                covs = _as_list(given) if uses else None
                for i, cov in enumerate(covs or []):
                    if isinstance(cov, TimeSeries):
                        what = input_name(kind, i, len(covs))
                        check_covariate_grid(cov, layout.grid, grid_channels, what)
        if layout is not None and series is not None:
            # The steps the forecast reads, checked as OnnxForecaster.predict checks them (a gap
            # long before the input window is never read); stochastic inputs refused by both.
            from darts_mim.validation import check_prediction_inputs

            check_prediction_inputs(
                series_l,
                _as_list(past_covariates) if self.uses_past_covariates else None,
                _as_list(future_covariates) if self.uses_future_covariates else None,
                n,
                input_chunk_length=self.input_chunk_length,
                output_chunk_length=self.output_chunk_length,
                output_chunk_shift=self.output_chunk_shift,
                missing=layout.missing,
            )
        if series_l is not None and len(series_l) > 1 and self._draws_seeded(kwargs):
            each = _per_series(past_covariates, future_covariates, len(series_l))
            if each is not None:
                # Darts draws every series' samples from one seeded stream, in the batch's order
                # and tiling: a series' samples depended on the others, their order and
                # batch_size. Alone, with the same seed, each gets what it gets on its own.
                forecasts = []
                for i, (s, (pc, fc)) in enumerate(zip(series_l, each, strict=True)):
                    with _named_at(i):
                        forecasts.append(super().predict(n, s, pc, fc, *args, **kwargs))
                return forecasts
        return super().predict(n, series, past_covariates, future_covariates, *args, **kwargs)

    def _draws_seeded(self, kwargs: dict) -> bool:
        """Whether a ``predict`` call with these keyword arguments draws random numbers (a
        likelihood's samples, Monte Carlo dropout) from a ``random_state``."""
        if kwargs.get("random_state") is None:
            return False
        samples = self.likelihood is not None and not kwargs.get("predict_likelihood_parameters")
        return bool(samples or kwargs.get("mc_dropout"))

    def _validate_predict_ds_output(self, train_sample, inference_sample) -> None:
        """Darts' checks, and static covariates of the training shape: Darts compares their
        counts only, and MIM reads the rows (one for all components, or one per component), so
        that per-component values (2 x 1) in a model of one row of two columns (1 x 2) were read
        as the two columns, silently; ``OnnxForecaster.predict`` refuses them in the same words."""
        super()._validate_predict_ds_output(train_sample, inference_sample)
        trained = getattr(train_sample, "static_covariates", None)
        given = getattr(inference_sample, "static_covariates", None)
        if trained is not None and given is not None:
            from darts_mim.onnx.core import check_static_shape

            check_static_shape(tuple(trained.shape[-2:]), *given.shape[-2:])

    def fit_from_dataset(self, *args, **kwargs):
        # never more torch threads than the process has CPUs (torch counts the machine's cores,
        # which a container's quota may not give the process)
        with capped_threads():
            return super().fit_from_dataset(*args, **kwargs)

    def historical_forecasts(
        self, series, past_covariates=None, future_covariates=None, *args, **kwargs
    ):
        """Backtest forecasts; see Darts' ``historical_forecasts``. Stochastic series or covariates
        are refused as :meth:`predict` refuses them (Darts' optimised path would otherwise read a
        random sample at every origin)."""
        from darts_mim.validation import check_deterministic_inputs

        check_deterministic_inputs(
            _as_list(series), _as_list(past_covariates), _as_list(future_covariates)
        )
        return super().historical_forecasts(
            series, past_covariates, future_covariates, *args, **kwargs
        )

    def predict_from_dataset(self, *args, **kwargs):
        # Predicting with a multi-process (DDP) trainer fails in Darts (issues 1385, 1945, 2265):
        # prediction always runs on one device of the training accelerator instead.
        if kwargs.get("trainer") is None and _is_multi_device(self.trainer_params):
            params = {
                k: v
                for k, v in self.trainer_params.items()
                if k not in ("strategy", "devices", "num_nodes")
            }
            params["devices"] = 1
            verbose = kwargs.get("verbose")
            if verbose is not None:
                params["enable_progress_bar"] = bool(verbose)
            kwargs["trainer"] = self._init_trainer(trainer_params=params, max_epochs=self.n_epochs)
        with capped_threads():  # never more torch threads than the process has CPUs
            forecasts = super().predict_from_dataset(*args, **kwargs)
        # predict, historical_forecasts and backtest all come here: a NaN or inf outside the
        # always-missing components (corrupt weights, a diverged fit) is an error, never a result
        from darts_mim.integrity import check_model_forecasts

        check_model_forecasts(forecasts, self.layout)
        return forecasts


def _as_list(x) -> list[TimeSeries] | None:
    if x is None:
        return None
    return [x] if isinstance(x, TimeSeries) else list(x)


def _by_name(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """``predict``'s positional arguments after ``future_covariates`` (Darts' ``trainer``,
    ``batch_size``, ...) moved to the keywords, so that the checks find them and Darts seeds
    with a ``random_state`` (its ``random_method`` reads the keyword only). Left as they are when
    Darts would refuse them (too many, or also given by keyword)."""
    if not args:
        return args, kwargs
    names = list(inspect.signature(MixedCovariatesTorchModel.predict).parameters)[5:]
    if len(args) > len(names) or set(names[: len(args)]) & set(kwargs):
        return args, kwargs
    return (), {**dict(zip(names, args, strict=False)), **kwargs}


@contextmanager
def _named_at(idx: int) -> Iterator[None]:
    """Darts' errors for a series forecast alone, naming it by its index ``idx`` in the call (alone
    it is "series sequence index `0`"), as the batched call and ``OnnxForecaster`` name it."""
    try:
        yield
    except ValueError as err:
        message = re.sub(r"(series sequence (?:index|idx) )`0`", rf"\g<1>`{idx}`", str(err))
        if idx == 0 or message == str(err):
            raise
        raise ValueError(message).with_traceback(err.__traceback__) from None


def _per_series(
    past_covariates: Any, future_covariates: Any, count: int
) -> list[tuple[TimeSeries | None, TimeSeries | None]] | None:
    """Each of ``count`` series' own covariates (``None`` where none are given: Darts then uses
    the fit's for each alike), or ``None`` when they are not one per series (Darts' error)."""
    columns = []
    for covariates in (past_covariates, future_covariates):
        if covariates is None:
            columns.append([None] * count)
            continue
        covs = _as_list(covariates)
        if len(covs) != count:
            return None
        columns.append(covs)
    return list(zip(*columns, strict=True))


def _dataset_dtype(dataset) -> np.dtype:
    """The dtype of a training dataset's samples, which Darts trains the network in (without a
    Lightning ``precision`` of the user's): its series', a lazy grid's, else its first sample's."""
    series = _as_list(getattr(dataset, "series", None))
    if series:
        return np.dtype(series[0].dtype)
    if getattr(dataset, "dtype", None) is not None:  # a lazy grid (darts_mim.datasets.lazy)
        return np.dtype(dataset.dtype)
    sample = dataset[0]  # a TorchTrainingSample, or a tuple in datasets written for Darts <= 0.47
    past_target = sample.past_target if hasattr(sample, "past_target") else sample[0]
    return np.dtype(past_target.dtype)


def _values_of(series: Sequence[TimeSeries]) -> list[np.ndarray]:
    """Each series' values as a ``(T, D)`` array (no copy where possible): what the "auto" choices
    read."""
    return [s.values(copy=False).reshape(len(s), -1) for s in series]


def _checkpoint_path(model_name: str, work_dir: str, file_name: str | None, best: bool) -> str:
    """The checkpoint file Darts' loaders read, resolved the way they resolve it."""
    if file_name is None:
        file_name = _get_checkpoint_fname(work_dir, model_name, best=best)
    if file_name[:5] in ("last-", "best-"):  # written by Lightning's checkpoint callback
        return os.path.join(_get_checkpoint_folder(work_dir, model_name), file_name)
    return file_name


@contextmanager
def _readable(path: str) -> Iterator[None]:
    """Turn the errors of reading a truncated or corrupt checkpoint (torch's zip, pickle and OS
    errors) into a ValueError that names the file; a missing file stays a FileNotFoundError. A
    garbled class name is reported as corruption, without Darts' advice to load it trusted."""
    from darts_mim.integrity import (
        MODEL_FIX,
        corrupt_pickle_error,
        quiet_unsafe_global_log,
        short_cause,
    )

    try:
        with quiet_unsafe_global_log():
            yield
    except FileNotFoundError:
        raise
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
        corrupt = corrupt_pickle_error(path, err, MODEL_FIX)
        if corrupt is not None:  # a garbled class name: never advise trusted loading
            raise corrupt from err
        if isinstance(err, RuntimeError) and os.path.isfile(path) and _is_valid_zip(path):
            raise  # a readable checkpoint: a genuine error (e.g. weights of another shape)
        raise ValueError(
            f"Could not read the checkpoint {path}: the file is truncated, corrupt or not a "
            f"checkpoint written by MIMModel. Cause: {short_cause(err)}"
        ) from err


def _is_valid_zip(path: str) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False


def _is_multi_device(trainer_params: dict) -> bool:
    devices = trainer_params.get("devices", "auto")
    strategy = str(trainer_params.get("strategy", "auto"))
    multi = (isinstance(devices, int) and (devices > 1 or devices == -1)) or (
        isinstance(devices, list | tuple) and len(devices) > 1
    )
    return multi or "ddp" in strategy or int(trainer_params.get("num_nodes", 1)) > 1


# Darts loads saved models with a restricted unpickler: allow-list our classes where they are defined,
# so that loading works however the package was imported (darts_mim imports this module lazily).
add_safe_globals([MIMModel, _MIMModule, TrainingRecipe])


def _outputs_are_values(likelihood) -> bool:
    """Whether every output of the network is a value of the series (no likelihood, or quantiles),
    so that Darts' reversible instance norm may map them all back."""
    return likelihood is None or isinstance(likelihood, QuantileRegression)
