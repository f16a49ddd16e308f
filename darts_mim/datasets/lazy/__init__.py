"""Grids larger than memory: Darts datasets over Zarr / netCDF read lazily through dask.

A ``TimeSeries`` holds all its values in memory, so a decade of hourly ERA5 cannot be one. The
datasets here stand in for Darts' ``SequentialTorchTrainingDataset`` and
``SequentialTorchInferenceDataset`` over an ``xarray.DataArray`` opened lazily (:func:`open_grid`):
each sample reads only its own window of time steps from the store, so memory holds one batch, not
the cube. They yield exactly the samples Darts' datasets yield for the same data held in memory
(components in the channel-major order of :func:`darts_mim.grid_to_series`), so
``MIMModel.fit_from_dataset`` and ``predict_from_dataset`` use them unchanged, with shuffling (seeded
by the model's ``random_state``), loader workers (``dataloader_kwargs={"num_workers": k}``) and
multi-process / multi-node training.

* :func:`open_grid` (:mod:`.store`): a variable (or several, as channels) of a Zarr store or netCDF
  file, lazily;
* :func:`grid_stats` / :class:`GridStats` (:mod:`.stats`): per-channel mean and standard deviation
  and the always-missing cells, computed out of core by dask in one pass over the store;
* :class:`LazyGridTrainingDataset` (:mod:`.training`), :class:`LazyGridInferenceDataset`
  (:mod:`.inference`): the datasets, on the window-reading machinery they share (:mod:`.windows`);
* :func:`predict_to_zarr` (:mod:`.writer`): forecasts from a lazy grid, written block by block to a
  Zarr store with their coordinates.

This package re-exports the public names of all of them.
"""

from __future__ import annotations

from .inference import LazyGridInferenceDataset
from .stats import GridStats, grid_stats
from .store import open_grid
from .training import LazyGridTrainingDataset
from .writer import predict_to_zarr

__all__ = [
    "GridStats",
    "LazyGridInferenceDataset",
    "LazyGridTrainingDataset",
    "grid_stats",
    "open_grid",
    "predict_to_zarr",
]
