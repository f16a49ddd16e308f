"""ERA5 reanalysis: 2-m air temperature over the UK, March 2019 (``gridded/`` of the data directory)."""

from __future__ import annotations

import os

from .io import GriddedData, load_grid_npz
from .registry import fetch

TEMPERATURE_FILE = "era5_t2m_uk_2019-03_T744x33x49_K.npz"


def load_temperature(path: str | os.PathLike | None = None) -> GriddedData:
    """ERA5 2-m air temperature (K) over the UK, hourly, March 2019, on a 33 x 49 grid of 0.25 deg.

    One channel, ``t2m``; ``extras`` holds ``lat`` and ``lon``. Source: repository
    pydata/xarray-data, ``era5-2mt-2019-03-uk.grib``. Licence: Copernicus licence, "Contains modified
    Copernicus Climate Change Service information 2019". Found (or downloaded from the mirror
    ``DARTS_MIM_DATA_URL``) by :func:`darts_mim.datasets.registry.fetch`.

    Parameters
    ----------
    path
        A file, a directory holding it, or ``None``: ``DARTS_MIM_DATA``, ``../shared/data``, the
        cache, a download.

    Returns
    -------
    GriddedData
    """
    return load_grid_npz(fetch("era5_t2m_uk", path), ["t2m"], name="era5_t2m_uk")
