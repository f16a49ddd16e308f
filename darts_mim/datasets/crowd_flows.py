"""NYC crowd flows: Citi Bike and yellow-taxi inflow / outflow grids with their covariates.

The bike grid is bundled with the package (``darts_mim/data``); the taxi grid and the shared copy of
the bike grid are in ``gridded/`` of the data directory. Their 65 calendar and weather covariates are
named as described in :func:`darts_mim.datasets.covariates.crowd_flow_covariate_names`.
"""

from __future__ import annotations

import os

from .io import GriddedData, load_grid_npz
from .registry import fetch

BIKE_FILE = "nycbike_2016-08-01_2016-10-29.npz"
BIKE_SHARED_FILE = "nycbike_dsan_2016-08-01_2016-10-29_T4320x2x14x8.npz"
TAXI_FILE = "nyctaxi_dsan_2016-01-01_2016-03-30_T4320x2x16x12.npz"


def load_bike_flows(path: str | os.PathLike | None = None) -> GriddedData:
    """NYC Citi Bike inflow / outflow on a 14 x 8 grid, every 30 minutes, 2016-08-01 to 2016-10-29.

    4320 time steps, channels ``inflow`` and ``outflow`` (224 components), values 0..323, with the 65
    calendar and weather covariates described in :func:`crowd_flow_covariate_names`. Source: the
    STSAN / DSAN data sets (Lin et al., KDD 2020), repository haoxingl/STSAN (MIT licence); Citi Bike
    open data.

    Parameters
    ----------
    path
        ``None`` for the copy bundled with the package; or a file, or a directory holding it.

    Returns
    -------
    GriddedData
    """
    return load_grid_npz(fetch("nycbike", path), name="nycbike")  # None: the bundled copy


def load_taxi_flows(path: str | os.PathLike | None = None) -> GriddedData:
    """NYC yellow-taxi inflow / outflow on a 16 x 12 grid, every 30 minutes, 2016-01-01 to 2016-03-30.

    4320 time steps, values 0..1518, with the same 65 covariates as :func:`load_bike_flows`. Source:
    repository haoxingl/STSAN, ``data/NYTaxi/``. Licence: MIT (the repository); NYC TLC open data.
    Found (or downloaded from the mirror ``DARTS_MIM_DATA_URL``) by
    :func:`darts_mim.datasets.registry.fetch`.

    Parameters
    ----------
    path
        A file, a directory holding it, or ``None``: ``DARTS_MIM_DATA``, ``../shared/data``, the
        cache, a download.

    Returns
    -------
    GriddedData
    """
    return load_grid_npz(fetch("nyctaxi", path), name="nyctaxi")


def load_bikenyc_2014(path: str | os.PathLike | None = None) -> GriddedData:
    """BikeNYC of ST-ResNet: new-flow / end-flow on a 16 x 8 grid, hourly, the last 1369 hours to
    2014-09-30.

    Source: ST-ResNet (Zhang et al., AAAI 2017), rebuilt from the windowed files of repository
    Echo-Ji/ST-SSL (``data/NYCBike1/``). Licence: none stated; cite ST-ResNet. Found (or downloaded
    from the mirror ``DARTS_MIM_DATA_URL``) by :func:`darts_mim.datasets.registry.fetch`.

    Parameters
    ----------
    path
        A file, a directory holding it, or ``None``.

    Returns
    -------
    GriddedData
    """
    return load_grid_npz(fetch("bikenyc_2014", path), name="bikenyc_2014")
