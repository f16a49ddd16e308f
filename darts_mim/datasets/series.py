"""The plain series of the benchmarks (Darts' bundled CSV files), by registry name.

They are byte-identical to the files Darts' own loaders download (``darts.datasets``), so
:func:`load_series` downloads them from the same place (repository unit8co/darts, ``datasets/``),
checks their sha256 and caches them; ``DARTS_MIM_DATA`` or ``path`` gives an offline copy.
"""

from __future__ import annotations

import os
from typing import Any

from darts import TimeSeries

from .io import load_csv_series
from .registry import fetch

# how each file is read: load_csv_series' arguments
_READ: dict[str, dict[str, Any]] = {
    "air_passengers": {},
    "etth1": {},
    "exchange_rate": {},
    "sunspots": {},
    "taxi_passengers": {},
    "ilinet": {
        "time_col": "DATE",
        "value_cols": "% WEIGHTED ILI",
        "fill_missing_dates": True,
    },
}

SERIES_DATASETS = tuple(_READ)
"""Registry names :func:`load_series` reads."""


def load_series(name: str, path: str | os.PathLike | None = None) -> TimeSeries:
    """One of the benchmarks' plain series as a ``TimeSeries``.

    ============== ============================================== =================================
    name           what                                           licence (as the source states it)
    ============== ============================================== =================================
    air_passengers monthly airline passengers 1949-1960 (144)     none stated by Darts
    etth1          transformer loads and oil temperature, hourly  CC BY-ND 4.0 (ETDataset)
                   (17420 x 7; Zhou et al., AAAI 2021)
    exchange_rate  daily exchange rates of 8 countries (7588 x 8) none stated by Darts
    sunspots       monthly sunspot numbers from 1749 (2820)       none stated (SILSO: CC BY-NC 4.0)
    taxi_passengers NYC taxi passengers every 30 minutes (10320)  none stated by Darts
    ilinet         CDC weekly ILI, ``% WEIGHTED ILI`` (1301 rows, none stated (US CDC data)
                   1305 weeks: missing weeks are NaN)
    ============== ============================================== =================================

    :mod:`darts_mim.datasets.registry` has each file's source, sha256 and URL.

    Parameters
    ----------
    name
        One of :data:`SERIES_DATASETS`.
    path
        A file or a directory holding it; ``None``: ``DARTS_MIM_DATA``, ``../shared/data``, the
        cache, else a download (Darts' URL, or the mirror ``DARTS_MIM_DATA_URL``).

    Returns
    -------
    darts.TimeSeries
        Every numeric column as a component (ILINet: one column); ``exchange_rate`` has a
        ``RangeIndex`` (the file has no dates).
    """
    if name not in _READ:
        raise ValueError(f"Unknown series {name!r}; choose one of {SERIES_DATASETS}.")
    return load_csv_series(fetch(name, path), **_READ[name])
