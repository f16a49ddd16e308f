"""Data sets for spatiotemporal forecasting: real gridded data and the Moving MNIST generator.

Every loader returns Darts objects: a gridded ``TimeSeries`` (see :mod:`darts_mim.grid`) wrapped in
:class:`GriddedData` together with its covariates, or a plain multivariate ``TimeSeries`` for CSV files.

Where the data comes from
-------------------------
* :func:`load_bike_flows` and :func:`load_radar` (its default KNMI event) read the copies bundled
  with the package (``darts_mim/data``): no download, no data directory.
* :func:`load_taxi_flows`, :func:`load_bikenyc_2014`, :func:`load_radar` (the other events),
  :func:`load_temperature`, :func:`load_series` and :func:`load_mnist_digits` read the real data sets
  of the registry (:mod:`.registry`: source, sha256, licence of each): a file or directory you pass,
  else the ``DARTS_MIM_DATA`` directory (an offline copy), else ``<repo>/../shared/data``, else the
  cache, else a download (:func:`fetch`; ``DARTS_MIM_DATA_URL`` names a mirror).
* :func:`load_grid_npz`, :func:`load_grid_array`, :func:`load_netcdf` and :func:`load_csv_series` read
  your own data.
* :func:`open_grid`, :class:`LazyGridTrainingDataset`, :class:`LazyGridInferenceDataset`,
  :func:`grid_stats` and :func:`predict_to_zarr` train and forecast from grids larger than memory,
  read lazily from Zarr or netCDF (:mod:`.lazy`).
* :func:`moving_mnist` generates Moving MNIST (Srivastava et al., 2015) from MNIST digits read by
  :func:`load_mnist_digits`.

One module per source or concern
--------------------------------
* :mod:`.paths`: the data directory, file look-up, :class:`DataNotFoundError`;
* :mod:`.registry`: every real data set's file, sha256, source, licence, URL; :func:`fetch`;
* :mod:`.series`: the benchmarks' plain series (Darts' CSV files) by name;
* :mod:`.io`: the generic readers (in-memory arrays, ``.npz``, netCDF, CSV) and :class:`GriddedData`;
* :mod:`.covariates`: per-time-step covariates and the crowd-flow covariate names;
* :mod:`.crowd_flows`: NYC bike and taxi flows; :mod:`.radar`: the radar events one at a time;
  :mod:`.radar_events`: several radar events as training windows that never straddle two events;
  :mod:`.climate`: ERA5 temperature;
* :mod:`.mnist`: MNIST idx files and the Moving MNIST generator;
* :mod:`.lazy`: datasets over Zarr / netCDF through dask for grids larger than memory.

This package re-exports the public names of all of them.
"""

from __future__ import annotations

from .climate import TEMPERATURE_FILE, load_temperature
from .covariates import crowd_flow_covariate_names
from .crowd_flows import (
    BIKE_FILE,
    BIKE_SHARED_FILE,
    TAXI_FILE,
    load_bike_flows,
    load_bikenyc_2014,
    load_taxi_flows,
)
from .io import GriddedData, load_csv_series, load_grid_array, load_grid_npz, load_netcdf
from .lazy import (
    GridStats,
    LazyGridInferenceDataset,
    LazyGridTrainingDataset,
    grid_stats,
    open_grid,
    predict_to_zarr,
)
from .mnist import load_mnist_digits, moving_mnist
from .paths import DATA_ENV_VAR, DataNotFoundError, default_data_dir
from .radar import RADAR_EVENTS, RADAR_FILE, load_radar
from .radar_events import event_windows, load_radar_events, pool_frames, radar_event
from .registry import DATASETS, Dataset, data_cache_dir, describe, fetch
from .series import SERIES_DATASETS, load_series
from .synthetic import SYNTHETIC_KINDS as SYNTHETIC_KINDS
from .synthetic import advection as advection
from .synthetic import blobs_growth_decay as blobs_growth_decay
from .synthetic import diffusion as diffusion
from .synthetic import linear_trend as linear_trend
from .synthetic import seasonality as seasonality
from .synthetic import synthetic_grid as synthetic_grid

__all__ = [
    "BIKE_FILE",
    "BIKE_SHARED_FILE",
    "DATA_ENV_VAR",
    "DATASETS",
    "Dataset",
    "DataNotFoundError",
    "GriddedData",
    "GridStats",
    "LazyGridInferenceDataset",
    "LazyGridTrainingDataset",
    "RADAR_EVENTS",
    "RADAR_FILE",
    "SERIES_DATASETS",
    "TAXI_FILE",
    "TEMPERATURE_FILE",
    "crowd_flow_covariate_names",
    "data_cache_dir",
    "describe",
    "fetch",
    "default_data_dir",
    "event_windows",
    "grid_stats",
    "load_bike_flows",
    "load_bikenyc_2014",
    "load_csv_series",
    "load_grid_array",
    "load_grid_npz",
    "load_mnist_digits",
    "load_netcdf",
    "load_radar",
    "load_radar_events",
    "load_series",
    "load_taxi_flows",
    "load_temperature",
    "moving_mnist",
    "open_grid",
    "pool_frames",
    "predict_to_zarr",
    "radar_event",
]
