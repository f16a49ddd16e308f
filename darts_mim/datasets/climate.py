"""ERA5 reanalysis: 2-m air temperature over the UK, March 2019 (``gridded/`` of the data directory)."""

from __future__ import annotations

import os

from .io import GriddedData, load_grid_npz
from .paths import _find_data_file

TEMPERATURE_FILE = "era5_t2m_uk_2019-03_T744x33x49_K.npz"


def load_temperature(path: str | os.PathLike | None = None) -> GriddedData:
    """ERA5 2-m air temperature (K) over the UK, hourly, March 2019, on a 33 x 49 grid of 0.25 deg.

    One channel, ``t2m``; ``extras`` holds ``lat`` and ``lon``. Contains modified Copernicus Climate
    Change Service information 2019.

    Parameters
    ----------
    path
        A file, a directory holding it, or ``None`` for :func:`default_data_dir`.

    Returns
    -------
    GriddedData
    """
    return load_grid_npz(
        _find_data_file(path, (TEMPERATURE_FILE,), "gridded"), ["t2m"], name="era5_t2m_uk"
    )
