"""KNMI weather radar: the rain-rate composites of 2010-08-26 (``gridded/`` of the data directory)."""

from __future__ import annotations

import os

from .io import GriddedData, load_grid_npz
from .paths import _find_data_file

RADAR_FILE = "radar_knmi_2010-08-26_T92x128x128_mmh.npz"


def load_radar(path: str | os.PathLike | None = None) -> GriddedData:
    """KNMI radar rain rate (mm/h), 5-minute composites of 2010-08-26 on 128 x 128 cells of 2 km.

    One channel, ``rain_rate``. Source: repository pySTEPS/pysteps-data; KNMI open data.

    Parameters
    ----------
    path
        A file (any crop in the same layout), a directory holding the full file, or ``None`` for
        :func:`default_data_dir`.

    Returns
    -------
    GriddedData

    See Also
    --------
    darts_mim.nowcast : pysteps' optical-flow extrapolation as gridded covariates, the recommended
        way to forecast these frames with MIMModel (README, "Radar nowcasting").
    """
    return load_grid_npz(
        _find_data_file(path, (RADAR_FILE,), "gridded"), ["rain_rate"], name="radar_knmi"
    )
