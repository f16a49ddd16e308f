"""The lazy training dataset: :class:`LazyGridTrainingDataset`.

It stands in for Darts' ``SequentialTorchTrainingDataset`` over a grid opened lazily
(:func:`~darts_mim.datasets.lazy.open_grid`), each sample reading only its own window from the store
through the shared machinery of :mod:`darts_mim.datasets.lazy.windows`; it is what
``MIMModel.fit_from_dataset`` trains on when the grid does not fit in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import ceil

import numpy as np
import xarray as xr
from darts.utils.data.torch_datasets.training_dataset import TorchTrainingDataset
from darts.utils.data.torch_datasets.utils import TorchTrainingSample

from .stats import GridStats
from .windows import _LazyGrid


class LazyGridTrainingDataset(_LazyGrid, TorchTrainingDataset):
    def __init__(
        self,
        series: xr.DataArray,
        input_chunk_length: int,
        output_chunk_length: int,
        output_chunk_shift: int = 0,
        past_covariates: xr.DataArray | Sequence[xr.DataArray] | None = None,
        future_covariates: xr.DataArray | Sequence[xr.DataArray] | None = None,
        stride: int = 1,
        max_samples_per_ts: int | None = None,
        stats: GridStats | None = None,
        dtype: str | np.dtype = "float32",
    ):
        """Training dataset over a lazily opened grid: each sample reads its own window from the store.

        The samples are those of Darts' ``SequentialTorchTrainingDataset`` for the same data in memory
        (``grid_to_series(series)`` and the covariates as series): sample ``i`` is the window whose
        output chunk ends ``i * stride`` steps before the end of the target, the past target and
        past covariates cover its ``input_chunk_length`` input steps, the future covariates the input
        and output steps, all components in channel-major order. Train with
        ``MIMModel.fit_from_dataset(dataset)``; shuffling (Darts' default) and loader workers
        (``dataloader_kwargs={"num_workers": k}``) work as with any dataset.

        Parameters
        ----------
        series
            The target grid as a (lazy) ``xarray.DataArray``: time, an optional channel dimension and
            two spatial dimensions, found by name (see :func:`darts_mim.grid.dataarray_to_grid`).
            Open it with :func:`open_grid`; select the training period lazily
            (``da.sel(time=slice("2010", "2019"))``).
        input_chunk_length
            The model's ``input_chunk_length``.
        output_chunk_length
            The model's ``output_chunk_length``.
        output_chunk_shift
            The model's ``output_chunk_shift``. Default: ``0``.
        past_covariates
            Optionally, one DataArray or a list: gridded ones (on the target's grid, e.g. other
            variables of the same store) are fed per cell, plain ones (dims ``(time,)`` or
            ``(time, component)``) are broadcast to every cell. Each must share the target's time
            steps and start at or before it. Default: ``None``.
        future_covariates
            Optionally, the same for future-known covariates; they must also cover the output chunk.
            Default: ``None``.
        stride
            Steps between consecutive windows, counted from the end. Default: ``1``.
        max_samples_per_ts
            At most this many windows, the most recent ones. Default: ``None`` (all).
        stats
            Optionally, normalise the target per channel with these statistics (from
            :func:`grid_stats`) as it is read; their always-missing cells are masked by the model.
            Default: ``None`` (values as stored; nothing has checked them for NaN, which
            :func:`grid_stats` does in the same pass).
        dtype
            ``"float32"`` (default) or ``"float64"``: the samples' dtype, which the model trains in.

        Examples
        --------
        >>> from darts_mim import MIMModel
        >>> from darts_mim.datasets.lazy import LazyGridTrainingDataset, grid_stats, open_grid
        >>> da = open_grid("era5.zarr", "t2m")  # lazy: nothing read yet
        >>> train = da.sel(time=slice(None, "2019"))
        >>> stats = grid_stats(train)  # out of core, one pass
        >>> dataset = LazyGridTrainingDataset(train, 12, 6, stats=stats)
        >>> model = MIMModel(12, 6, patch_size=4, n_epochs=1)
        >>> model.fit_from_dataset(dataset, dataloader_kwargs={"num_workers": 2})
        """
        TorchTrainingDataset.__init__(self)
        for name, value, low in (
            ("input_chunk_length", input_chunk_length, 1),
            ("output_chunk_length", output_chunk_length, 1),
            ("output_chunk_shift", output_chunk_shift, 0),
            ("stride", stride, 1),
        ):
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
                raise ValueError(f"`{name}` must be an integer >= {low}, got {value!r}.")
        self._setup(series, past_covariates, future_covariates, stats, dtype)
        self.input_chunk_length = int(input_chunk_length)
        self.output_chunk_length = int(output_chunk_length)
        self.output_chunk_shift = int(output_chunk_shift)
        self.stride = int(stride)
        size = self.input_chunk_length + self.output_chunk_shift + self.output_chunk_length
        n_windows = ceil((self.n_steps - size + 1) / self.stride)
        if n_windows < 1:
            raise ValueError(
                f"The target has {self.n_steps} steps; one training window needs input_chunk_length + "
                f"output_chunk_shift + output_chunk_length = {size}. Use a longer period or shorter "
                "chunks."
            )
        if max_samples_per_ts is not None and max_samples_per_ts < 1:
            raise ValueError(f"`max_samples_per_ts` must be >= 1, got {max_samples_per_ts}.")
        self.n_windows = n_windows
        self.n_samples = min(n_windows, max_samples_per_ts or n_windows)

    def __len__(self) -> int:
        return self.n_samples

    def __getitem__(self, index: int) -> TorchTrainingSample:
        if not 0 <= index < self.n_samples:
            raise IndexError(f"Sample {index} of a dataset of {self.n_samples}.")
        icl, ocl, ocs = self.input_chunk_length, self.output_chunk_length, self.output_chunk_shift
        # as Darts counts: the first sample is the last window
        end = self.n_steps - index * self.stride
        start = end - ocl - ocs - icl
        # one read of the whole window, split into input and output chunks
        window = self._read_target(start, end)
        past_cov = self._read_covariates(
            self._past, start, start + icl, "past_covariates", self.dtype
        )
        hist_future, future = None, None
        if self._future:
            fut = self._read_covariates(self._future, start, end, "future_covariates", self.dtype)
            hist_future, future = fut[:icl], fut[icl + ocs :]
        return TorchTrainingSample(
            past_target=window[:icl],
            past_covariates=past_cov,
            historic_future_covariates=hist_future,
            future_covariates=future,
            static_covariates=None,
            future_target=window[icl + ocs :],
            sample_weight=None,
        )
