"""Weather radar: rain-rate composites of the registry (``gridded/`` of the data directory).

The KNMI event of 2010-08-26 is the default and is bundled with the package (``darts_mim/data``, 1 MB):
it loads without a download or a data directory. The BoM, OPERA and MRMS events of the robustness
data sets load with ``event=``, from a data directory or a mirror. Every file is prepared from the
pysteps-data repository; see :mod:`darts_mim.datasets.registry` for sources, checksums and licences.
"""

from __future__ import annotations

import os

from .io import GriddedData, load_grid_npz
from .registry import fetch

RADAR_FILE = "radar_knmi_2010-08-26_T92x128x128_mmh.npz"

RADAR_EVENTS = (
    "radar_knmi",
    "radar_bom_2018",
    "radar_bom_2020",
    "radar_opera_2018",
    "radar_opera_2024",
    "radar_mrms_2019",
)
"""Registry names of the radar events :func:`load_radar` reads."""


def load_radar(path: str | os.PathLike | None = None, *, event: str = "radar_knmi") -> GriddedData:
    """Radar rain rate (mm/h): by default KNMI's 5-minute composites of 2010-08-26, 128 x 128 cells
    of 2 km (92 frames).

    One channel, ``rain_rate``. The default KNMI event is bundled with the package: without
    ``path`` it needs no download, no data directory and no network. The other events are found by
    :func:`darts_mim.datasets.registry.fetch`: ``path``, else ``DARTS_MIM_DATA``, else
    ``../shared/data`` beside a clone, else the cache, else a download (from the mirror
    ``DARTS_MIM_DATA_URL``; these prepared files have no public URL).

    Source: repository pySTEPS/pysteps-data, ``radar/KNMI/2010/08/`` (KNMI), cropped to 256 x 256 km.
    Licence: KNMI open data (redistributable with attribution to KNMI; see
    ``darts_mim/data/README.md``). The other events' sources and licences are in the registry
    (``describe("radar_bom_2018")``); several state none.

    Parameters
    ----------
    path
        A file (any crop in the same layout), a directory holding the full file, or ``None``
        (the bundled copy for the KNMI event).
    event
        One of :data:`RADAR_EVENTS` (registry names).

    Returns
    -------
    GriddedData

    See Also
    --------
    darts_mim.nowcast : pysteps' optical-flow extrapolation as gridded covariates, the recommended
        way to forecast these frames with MIMModel (guide "Radar nowcasting").
    """
    if event not in RADAR_EVENTS:
        raise ValueError(f"Unknown radar event {event!r}; choose one of {RADAR_EVENTS}.")
    return load_grid_npz(fetch(event, path), ["rain_rate"], name=event)
