"""``MIMModel``: the MIM network as a Darts torch forecasting model.

The Darts side of the package: hyper-parameters and their checks, the grid layout resolved from the
training series and covariates (and saved with the model), input validation before fit and predict,
atomic saving, and single-device prediction after multi-process training. The tensor plumbing is in
:mod:`darts_mim.module`, the network in :mod:`darts_mim.nn`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np
import psutil
from darts import TimeSeries
from darts.models.forecasting.pl_forecasting_module import PLForecastingModule
from darts.models.forecasting.torch_forecasting_model import MixedCovariatesTorchModel
from darts.utils.serialization import add_safe_globals

from darts_mim.grid import GridSpec, always_missing_cells, grid_spec_of
from darts_mim.module import _likelihood_feedback_param, _MIMModule
from darts_mim.resources import available_bytes, check_fits_in_memory, estimate_training_bytes
from darts_mim.validation import check_hyper_parameters, check_series_values, check_target_grid


class MIMModel(MixedCovariatesTorchModel):
    def __init__(
        self,
        input_chunk_length: int,
        output_chunk_length: int,
        output_chunk_shift: int = 0,
        num_hidden: Sequence[int] = (64, 64, 64, 64),
        filter_size: int = 5,
        patch_size: int = 1,
        layer_norm: bool = True,
        diff_mode: str = "cascade",
        cell_type: str = "mim",
        grid_shape: Sequence[int] | None = None,
        sampling_schedule: str = "linear",
        sampling_start: float = 1.0,
        sampling_decay_steps: int | None = None,
        activation_checkpointing: bool = False,
        input_window_loss: bool = True,
        precision: str | None = None,
        use_static_covariates: bool = True,
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
            others are MIM blocks. Widths may differ. Default: ``(64, 64, 64, 64)`` (the paper's).
        filter_size
            Odd kernel size of the gate convolutions. Use 1 for multivariate (1x1) series. Default: ``5``.
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
        sampling_schedule
            How decoder inputs are chosen during training: ``"linear"`` (scheduled sampling: each sample and
            step gets the true previous frame with probability ``eta``, which falls linearly from
            ``sampling_start`` to 0 over ``sampling_decay_steps`` optimizer steps, as in the authors'
            recipe), ``"teacher_forcing"`` (always the true frame) or ``"free_running"`` (always the
            model's own prediction, as at prediction time). Validation and prediction always free-run.
        sampling_start
            Initial probability ``eta`` of feeding the true frame. Default: ``1.0``.
        sampling_decay_steps
            Optimizer steps over which ``eta`` reaches 0 (the authors use 50,000 of 80,000). Default:
            ``None``, 62.5 % of the steps planned for each fit (``n_epochs`` times the batches per
            epoch), the authors' proportion: a short run then also trains on its own predictions,
            which a fixed large value would prevent.
        activation_checkpointing
            Recompute each time step's activations in the backward pass instead of storing them: less
            memory for long sequences and big grids, at the cost of one more forward pass. Default:
            ``False``.
        input_window_loss
            Also train on the one-step predictions inside the input window (frames 2..T_in, read with
            teacher forcing), as the authors' code does: the loss is then the mean over all
            ``T_in - 1 + output_chunk_length`` predicted frames instead of the output chunk only.
            More training signal per window at little extra cost; prediction is unchanged. With a
            likelihood, the window is scored with the same likelihood loss. ``False`` gives Darts'
            usual loss on the output chunk only. Default: ``True`` (on the bike validation split it
            took MIM from RMSE 5.64 to 5.16, see ``benchmarks/accuracy_results.md``).
        precision
            Lightning training precision, e.g. ``"bf16-mixed"`` (CPUs with AVX-512 BF16 and recent GPUs) or
            ``"16-mixed"`` (GPUs). Shorthand for ``pl_trainer_kwargs={"precision": ...}``. Default: ``None``
            (follow the series' dtype).
        use_static_covariates
            Whether to use the target's static covariates when it has any: one row (broadcast to every
            cell) or one row per component (per cell and channel). Default: ``True``.
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
        use_reversible_instance_norm
            Whether to use reversible instance normalization ``RINorm`` on the target. Default: ``False``.
        batch_size
            Number of time series (input and output sequences) used in each training pass. Default: ``32``.
        n_epochs
            Number of epochs over which to train the model. Default: ``100``.
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
            training used several processes. Default: ``None``.
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
        if precision is not None:
            trainer_kwargs = dict(model_kwargs.get("pl_trainer_kwargs") or {})
            trainer_kwargs["precision"] = precision
            model_kwargs["pl_trainer_kwargs"] = trainer_kwargs
        super().__init__(**self._extract_torch_model_params(**model_kwargs))
        self.pl_module_params = self._extract_pl_module_params(**model_kwargs)

        self.num_hidden = tuple(int(n) for n in num_hidden)
        self.filter_size = filter_size
        self.patch_size = patch_size
        self.layer_norm = layer_norm
        self.diff_mode = diff_mode
        self.cell_type = cell_type
        self.grid_shape = tuple(grid_shape) if grid_shape is not None else None
        self.sampling_schedule = sampling_schedule
        self.sampling_start = sampling_start
        self.sampling_decay_steps = sampling_decay_steps
        self.activation_checkpointing = activation_checkpointing
        self.input_window_loss = bool(input_window_loss)
        self._considers_static_covariates = use_static_covariates
        # Resolved at the first fit from the series and covariates; saved with the model.
        self._mim_layout: dict[str, Any] | None = None

    # ------------------------------------------------------------------ Darts hooks
    @property
    def supports_static_covariates(self) -> bool:
        return True

    @property
    def supports_multivariate(self) -> bool:
        return True

    @property
    def grid(self) -> GridSpec | None:
        """The target grid the model was fitted on (``None`` before fitting)."""
        if self._mim_layout is None:
            return None
        return GridSpec(*self._mim_layout["grid"])

    def _create_model(self, train_sample) -> PLForecastingModule:
        layout = self._mim_layout
        if layout is None:
            raise ValueError(
                "The grid layout is unknown: call fit() (or load a saved model) before creating the network."
            )
        channels = len(layout["grid"][0])
        height, width = layout["grid"][1], layout["grid"][2]
        n_cells = height * width

        def cov_layout(sample: np.ndarray | None, grid_channels: int) -> tuple[int, int] | None:
            if sample is None:
                return None
            plain = sample.shape[1] - grid_channels * n_cells
            return (grid_channels, plain)

        past_layout = cov_layout(train_sample.past_covariates, layout["past_grid_channels"])
        future_cov = train_sample.future_covariates
        if future_cov is None:
            future_cov = train_sample.historic_future_covariates
        future_layout = cov_layout(future_cov, layout["future_grid_channels"])
        static_layout = None
        if train_sample.static_covariates is not None:
            rows, n_static = train_sample.static_covariates.shape
            if rows == channels * n_cells and rows > 1:
                static_layout = ("per_component", n_static)
            elif rows == 1:
                static_layout = ("global", n_static)
            else:
                raise ValueError(
                    f"Static covariates have {rows} rows; MIMModel takes one row (global) or one row per "
                    f"component ({channels * n_cells})."
                )
        nr_params = 1 if self.likelihood is None else self.likelihood.num_parameters
        return _MIMModule(
            grid=(channels, height, width),
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
            sampling_schedule=self.sampling_schedule,
            sampling_start=self.sampling_start,
            sampling_decay_steps=self.sampling_decay_steps,
            activation_checkpointing=self.activation_checkpointing,
            missing_components=layout["missing"],
            # models pickled before the option existed have no attribute: Darts' loss, as then
            input_window_loss=getattr(self, "input_window_loss", False),
            **self.pl_module_params,
        )

    def _check_ckpt_parameters(self, tfm_save):
        # Darts calls this with the saved model before rebuilding the network in load_weights(): adopt
        # the saved grid layout, which the network's shape depends on.
        super()._check_ckpt_parameters(tfm_save)
        if getattr(tfm_save, "_mim_layout", None) is not None:
            self._mim_layout = tfm_save._mim_layout

    def to_onnx(self, path: str | None = None, **kwargs) -> str:
        """Export the fitted model to one ONNX file for torch-free serving with
        :class:`darts_mim.OnnxForecaster`; see :func:`darts_mim.onnx.export.export_model` for the options.

        Returns the path written.
        """
        from darts_mim.onnx.export import export_model

        return export_model(self, path, **kwargs)

    def save(self, path: str | None = None, clean: bool = False) -> None:
        """Save the model to ``path`` (and its weights to ``path + ".ckpt"``) without ever leaving a
        half-written file in place of a good one.

        Both files are first written next to their destination under temporary names, then moved into
        place with an atomic rename; a crash or a full disk mid-save leaves any previous save intact.

        Parameters
        ----------
        path
            Destination, e.g. ``"mim.pt"``. Default: ``"MIMModel_<timestamp>.pt"``.
        clean
            Store a cleaned model without training series and trainer parameters (see Darts).
        """
        if path is None:
            path = self._default_save_path() + ".pt"
        path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        tmp_dir = tempfile.mkdtemp(prefix=".mim-save-", dir=directory)
        try:
            tmp_path = os.path.join(tmp_dir, os.path.basename(path))
            super().save(tmp_path, clean=clean)
            for suffix in ("", ".ckpt"):
                if os.path.exists(tmp_path + suffix):
                    os.replace(tmp_path + suffix, path + suffix)
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)

    @staticmethod
    def load(path: str, pl_trainer_kwargs: dict | None = None, trusted: bool = False, **kwargs):
        """Load a model saved with :meth:`save`; a corrupt, truncated or foreign file raises a
        ``ValueError`` that names it. See Darts' ``TorchForecastingModel.load`` for the arguments."""
        for file in (path, path + ".ckpt"):
            if os.path.exists(file) and os.path.getsize(file) == 0:
                raise ValueError(f"The saved model file {file} is empty (an interrupted copy?).")
        try:
            model = MixedCovariatesTorchModel.load(
                path, pl_trainer_kwargs=pl_trainer_kwargs, trusted=trusted, **kwargs
            )
        except FileNotFoundError:
            raise
        except Exception as err:
            raise ValueError(
                f"Could not load a MIMModel from {path} (and {path}.ckpt): the file is corrupt, "
                f"truncated, or was not written by MIMModel.save(). Cause: {type(err).__name__}: {err}"
            ) from err
        if not isinstance(model, MIMModel):
            raise ValueError(f"{path} holds a {type(model).__name__}, not a MIMModel.")
        return model

    # ------------------------------------------------------------------ layout and validation
    def _resolve_layout(
        self,
        series: Sequence[TimeSeries],
        past_covariates: Sequence[TimeSeries] | None,
        future_covariates: Sequence[TimeSeries] | None,
    ) -> dict[str, Any]:
        spec = check_target_grid(series, self.grid_shape)
        if self.patch_size < 1 or spec.height % self.patch_size or spec.width % self.patch_size:
            raise ValueError(
                f"patch_size={self.patch_size} does not divide the {spec.height}x{spec.width} grid; "
                "choose a patch size that divides both sides (or 1)."
            )

        def grid_channels(covs: Sequence[TimeSeries] | None, kind: str) -> int:
            if not covs:
                return 0
            counts = set()
            for cov in covs:
                cov_spec = grid_spec_of(cov)
                if cov_spec is None or cov_spec.n_cells == 1:
                    counts.add(0)
                elif (cov_spec.height, cov_spec.width) != (spec.height, spec.width):
                    raise ValueError(
                        f"The {kind} covariates are gridded on {cov_spec.height}x{cov_spec.width} but the "
                        f"target grid is {spec.height}x{spec.width}; regrid them, or pass plain "
                        "(non-gridded) covariates, which are broadcast to every cell."
                    )
                else:
                    counts.add(cov_spec.n_channels)
            if len(counts) > 1:
                raise ValueError(
                    f"All {kind} covariate series must share one layout (same grid channels)."
                )
            return counts.pop()

        missing = always_missing_cells(series)
        return {
            "grid": (spec.channels, spec.height, spec.width),
            "past_grid_channels": grid_channels(past_covariates, "past"),
            "future_grid_channels": grid_channels(future_covariates, "future"),
            "missing": [int(i) for i in np.flatnonzero(missing)] if missing.any() else None,
            "components": list(series[0].components),
        }

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

    def _check_memory(self, layout: dict[str, Any]) -> None:
        """Fail before training when one training step clearly cannot fit in memory."""
        _, height, width = layout["grid"]
        precision = str(self.trainer_params.get("precision", "32"))
        bytes_per_value = 8 if precision.startswith("64") else 4
        needed = estimate_training_bytes(
            self.num_hidden,
            self.cell_type,
            height,
            width,
            self.patch_size,
            self.batch_size,
            self.input_chunk_length + self.output_chunk_shift + self.output_chunk_length - 1,
            bytes_per_value,
            self.activation_checkpointing,
        )
        check_fits_in_memory(
            needed,
            available_bytes(self.trainer_params.get("accelerator")),
            "One training step of this configuration",
        )

    @staticmethod
    def _as_list(x) -> list[TimeSeries] | None:
        if x is None:
            return None
        return [x] if isinstance(x, TimeSeries) else list(x)

    def _prepare_fit(
        self,
        series,
        past_covariates=None,
        future_covariates=None,
        val_series=None,
        val_past_covariates=None,
        val_future_covariates=None,
    ) -> None:
        """Resolve the grid layout from the training data and validate it (before any training)."""
        series_l = self._as_list(series)
        pc_l, fc_l = self._as_list(past_covariates), self._as_list(future_covariates)
        layout = self._resolve_layout(series_l, pc_l, fc_l)
        if self._mim_layout is not None and self.model_created:
            _check_same_layout(self._mim_layout, layout)
        min_len = self.input_chunk_length + self.output_chunk_shift + self.output_chunk_length
        for s in series_l + (self._as_list(val_series) or []):
            if len(s) < min_len:
                raise ValueError(
                    f"A series has {len(s)} time steps but MIMModel needs at least input_chunk_length + "
                    f"output_chunk_shift + output_chunk_length = {min_len} to make one training sample. "
                    "Use a longer series or shorter chunks."
                )
        self._check_memory(layout)
        self._check_inputs(series_l, pc_l, fc_l, layout["missing"])
        if val_series is not None:
            self._check_inputs(
                self._as_list(val_series),
                self._as_list(val_past_covariates),
                self._as_list(val_future_covariates),
                layout["missing"],
            )
        self._mim_layout = layout

    def lr_find(
        self,
        series: TimeSeries | Sequence[TimeSeries],
        past_covariates: TimeSeries | Sequence[TimeSeries] | None = None,
        future_covariates: TimeSeries | Sequence[TimeSeries] | None = None,
        *args,
        **kwargs,
    ):
        """Learning-rate range test; see Darts' ``TorchForecastingModel.lr_find``."""
        self._prepare_fit(
            series,
            past_covariates,
            future_covariates,
            kwargs.get("val_series"),
            kwargs.get("val_past_covariates"),
            kwargs.get("val_future_covariates"),
        )
        return super().lr_find(series, past_covariates, future_covariates, *args, **kwargs)

    def fit(
        self,
        series: TimeSeries | Sequence[TimeSeries],
        past_covariates: TimeSeries | Sequence[TimeSeries] | None = None,
        future_covariates: TimeSeries | Sequence[TimeSeries] | None = None,
        val_series: TimeSeries | Sequence[TimeSeries] | None = None,
        val_past_covariates: TimeSeries | Sequence[TimeSeries] | None = None,
        val_future_covariates: TimeSeries | Sequence[TimeSeries] | None = None,
        *args,
        **kwargs,
    ) -> MIMModel:
        """Fit the model; see :meth:`darts.models.forecasting.torch_forecasting_model.TorchForecastingModel.fit`.

        Besides Darts' own checks, validates the grid (channels, ``patch_size``), NaN and infinite values
        (components that are NaN at every step are masked out of the loss and forecast as NaN), and that
        every series is long enough for one training sample.
        """
        self._prepare_fit(
            series,
            past_covariates,
            future_covariates,
            val_series,
            val_past_covariates,
            val_future_covariates,
        )
        return super().fit(
            series,
            past_covariates,
            future_covariates,
            val_series,
            val_past_covariates,
            val_future_covariates,
            *args,
            **kwargs,
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

        Checks that the series has the training grid and components and no NaN outside the masked cells
        before predicting. Forecasts keep the input series' metadata, so gridded forecasts convert back
        with :func:`darts_mim.series_to_grid`.
        """
        if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
            raise ValueError(f"`n` must be a positive integer, got {n!r}.")
        if self._mim_layout is not None:
            n_series = 1 if series is None else len(self._as_list(series))
            n_values = n * GridSpec(*self._mim_layout["grid"]).n_components * n_series
            check_fits_in_memory(
                8 * n_values * max(1, int(kwargs.get("num_samples", 1))),
                int(psutil.virtual_memory().available),
                f"A forecast of n={n} steps",
                "Forecast fewer steps at a time, or fewer samples or series per call.",
            )
        if self._mim_layout is not None and series is not None:
            series_l = self._as_list(series)
            layout = self._mim_layout
            expected = GridSpec(*layout["grid"])
            for s in series_l:
                spec = grid_spec_of(s)
                if s.n_components != expected.n_components or (
                    spec is not None and spec != expected
                ):
                    got = (
                        f"{spec.n_channels}x{spec.height}x{spec.width} grid"
                        if spec
                        else (f"{s.n_components} components")
                    )
                    raise ValueError(
                        f"The model was trained on a {expected.n_channels}x{expected.height}x"
                        f"{expected.width} grid ({expected.n_components} components) but got a series "
                        f"with a {got}. Predict on series with the training grid and components."
                    )
                trained = layout.get("components")
                if trained is not None and list(s.components) != list(trained):
                    differ = [c for c in s.components if c not in trained][:3]
                    raise ValueError(
                        f"The series' components differ from the training series' (e.g. {differ} "
                        f"not in {list(trained)[:3]}...). Pass the same components in the same order; "
                        "rename them with series.with_columns_renamed() if only the names changed."
                    )
            self._check_inputs(
                series_l,
                self._as_list(past_covariates),
                self._as_list(future_covariates),
                layout["missing"],
            )
        return super().predict(n, series, past_covariates, future_covariates, *args, **kwargs)

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
        return super().predict_from_dataset(*args, **kwargs)


def _is_multi_device(trainer_params: dict) -> bool:
    devices = trainer_params.get("devices", "auto")
    strategy = str(trainer_params.get("strategy", "auto"))
    multi = (isinstance(devices, int) and (devices > 1 or devices == -1)) or (
        isinstance(devices, list | tuple) and len(devices) > 1
    )
    return multi or "ddp" in strategy or int(trainer_params.get("num_nodes", 1)) > 1


def _check_same_layout(old: dict, new: dict) -> None:
    for key, what in (
        ("grid", "target grid"),
        ("past_grid_channels", "gridded past covariates"),
        ("future_grid_channels", "gridded future covariates"),
    ):
        if old[key] != new[key]:
            raise ValueError(
                f"This model was fitted with {what} {old[key]} but got {new[key]}. Fit a new model "
                "(or call reset_model()) to change the layout."
            )


# Darts loads saved models with a restricted unpickler: allow-list our classes where they are defined,
# so that loading works however the package was imported (darts_mim imports this module lazily).
add_safe_globals([MIMModel, _MIMModule])
