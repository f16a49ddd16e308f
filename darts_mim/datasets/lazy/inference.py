"""The lazy inference dataset: :class:`LazyGridInferenceDataset`.

It stands in for Darts' ``SequentialTorchInferenceDataset`` over a grid opened lazily, one forecast
per input end, each reading its input window (and covariates) from the store through the shared
machinery of :mod:`darts_mim.datasets.lazy.windows`; ``MIMModel.predict_from_dataset`` and
:func:`~darts_mim.datasets.lazy.predict_to_zarr` forecast from it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr
from darts.utils.data.torch_datasets.inference_dataset import TorchInferenceDataset
from darts.utils.data.torch_datasets.utils import TorchInferenceSample

from darts_mim.grid import grid_to_series

from .stats import GridStats
from .windows import _LazyGrid


class LazyGridInferenceDataset(_LazyGrid, TorchInferenceDataset):
    def __init__(
        self,
        series: xr.DataArray,
        n: int,
        input_chunk_length: int,
        output_chunk_length: int,
        output_chunk_shift: int = 0,
        past_covariates: xr.DataArray | Sequence[xr.DataArray] | None = None,
        future_covariates: xr.DataArray | Sequence[xr.DataArray] | None = None,
        input_ends: Sequence | None = None,
        stats: GridStats | None = None,
        dtype: str | np.dtype = "float32",
    ):
        """Inference dataset over a lazily opened grid: one forecast per input end, read on demand.

        Sample ``i`` is what Darts' ``SequentialTorchInferenceDataset`` gives for the target cut
        after ``input_ends[i]``: the ``input_chunk_length`` steps up to it, the covariates of the
        input and of the ``n`` forecast steps, the forecast's schema (grid metadata with
        coordinates) and its first time. ``MIMModel.predict_from_dataset(n, dataset)`` forecasts
        from it; :func:`predict_to_zarr` does so block by block and writes the forecasts to Zarr.

        Parameters
        ----------
        series
            The target grid as a (lazy) ``xarray.DataArray`` (see :class:`LazyGridTrainingDataset`).
        n
            Forecast horizon in steps.
        input_chunk_length, output_chunk_length, output_chunk_shift
            The model's chunk lengths.
        past_covariates, future_covariates
            As for training; past covariates must reach ``n - output_chunk_length`` steps past each
            input end when ``n > output_chunk_length``, future covariates the end of each forecast.
        input_ends
            Times (or positions, for an integer time axis) of the last input step of each forecast;
            each forecast begins the step after (plus ``output_chunk_shift``). Default: the target's
            last step (one forecast of its future, as ``MIMModel.predict(n, series)``).
        stats
            Normalise the target with these statistics as it is read (as for training).
        dtype
            The samples' dtype. Default: ``"float32"``.
        """
        TorchInferenceDataset.__init__(self)
        if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
            raise ValueError(f"`n` must be a positive integer, got {n!r}.")
        if output_chunk_shift and n > output_chunk_length:
            raise ValueError(
                "Cannot forecast n > output_chunk_length autoregressively with a shifted output "
                "chunk (output_chunk_shift > 0)."
            )
        self._setup(series, past_covariates, future_covariates, stats, dtype)
        self.n = int(n)
        self.input_chunk_length = int(input_chunk_length)
        self.output_chunk_length = int(output_chunk_length)
        self.output_chunk_shift = int(output_chunk_shift)
        if input_ends is None:
            positions = [self.n_steps]
        else:
            positions = [self._position_after(t) for t in input_ends]
        self.positions = positions
        # the schema of every forecast: built once from three frames (the grid metadata and
        # coordinates, the frequency), shared by all samples
        head = series.isel({self._tdim: slice(0, min(3, self.n_steps))}).load()
        self._schema = grid_to_series(head).schema(copy=False)

    def _position_after(self, t) -> int:
        """The position just after the input end ``t``: the sample's ``series_end_idx``."""
        if isinstance(self.times, pd.RangeIndex) and isinstance(t, int | np.integer):
            if t not in self.times:
                raise ValueError(f"Input end {t} is not a step of the target ({self.times}).")
            pos = self.times.get_loc(int(t)) + 1
        else:
            ts = pd.Timestamp(t)
            if ts not in self.times:
                raise ValueError(
                    f"Input end {t} is not a time of the target (it spans {self.times[0]} to "
                    f"{self.times[-1]} every {self.freq})."
                )
            pos = int(self.times.get_loc(ts)) + 1
        if pos < self.input_chunk_length:
            raise ValueError(
                f"A forecast from {t} needs input_chunk_length={self.input_chunk_length} steps up to "
                f"it; the target has {pos}."
            )
        return int(pos)

    def _time_at(self, pos: int):
        if pos < self.n_steps:
            return self.times[pos]
        return self.times[-1] + (pos - self.n_steps + 1) * self.freq

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int) -> TorchInferenceSample:
        if not 0 <= index < len(self.positions):
            raise IndexError(f"Sample {index} of a dataset of {len(self.positions)}.")
        icl, ocl, ocs, n = (
            self.input_chunk_length,
            self.output_chunk_length,
            self.output_chunk_shift,
            self.n,
        )
        end = self.positions[index]  # the input ends just before this position
        start = end - icl
        past_target = self._read_target(start, end)
        past_cov = future_past_cov = None
        if self._past:
            past_cov = self._read_covariates(self._past, start, end, "past_covariates", self.dtype)
            if n > ocl:  # autoregression reads past covariates of the forecast steps
                future_past_cov = self._read_covariates(
                    self._past, end, end + n - ocl, "past_covariates", self.dtype
                )
        hist_future = future = None
        if self._future:
            hist_future = self._read_covariates(
                self._future, start, end, "future_covariates", self.dtype
            )
            future = self._read_covariates(
                self._future, end + ocs, end + ocs + max(n, ocl), "future_covariates", self.dtype
            )
        return TorchInferenceSample(
            past_target=past_target,
            past_covariates=past_cov,
            future_past_covariates=future_past_cov,
            historic_future_covariates=hist_future,
            future_covariates=future,
            static_covariates=None,
            series_schema=self._schema,
            pred_time=self._time_at(end + ocs),
        )
