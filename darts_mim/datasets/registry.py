"""The data set registry: where each real data set comes from, its sha256, licence, and local copy.

Every data set that darts-mim bundles or benchmarks on has an entry in :data:`DATASETS`: its file
name, the folder of the data directory it lives in (``gridded/``, ``series/``, ``mnist/``), its
sha256, the public source it was taken from, a download URL where one exists, and its licence.
:func:`fetch` returns a local path to the file, looking in this order:

1. ``path``, when a loader is given one (a file, or a directory holding it);
2. the copy bundled with the package (``darts_mim/data``), for the data sets marked
   :attr:`Dataset.bundled`: the NYC bike-flow grid and the KNMI radar event;
3. the directory named by the environment variable ``DARTS_MIM_DATA`` (an offline copy with the
   layout ``gridded/``, ``series/``, ``mnist/``); when it is set, nothing is downloaded;
4. ``../shared/data`` beside a clone of the repository (the project's machines);
5. the cache folder (``DARTS_MIM_CACHE``, default ``~/.cache/darts-mim`` on Linux, the platform's
   cache folder elsewhere), where a downloaded file is kept after its sha256 is checked;
6. a download with `pooch <https://www.fatiando.org/pooch/>`_, from ``DARTS_MIM_DATA_URL`` when it
   is set (a mirror with the same layout: ``<url>/gridded/<file>``; ``python -m http.server`` over
   a copy of the data directory is one), else from the data set's public URL.

The CSV series are byte-identical to Darts' own copies (``unit8co/darts``, ``datasets/``) and MNIST
to its official files, so they download from those. The gridded ``.npz`` files were prepared for
this project from the public sources that :attr:`Dataset.source` names (crops, unit conversions,
pooling, described in :attr:`Dataset.description`); they have no public download of their own
(:attr:`Dataset.url` is ``None``), so they come from the package (the two bundled ones), a mirror
(``DARTS_MIM_DATA_URL``) or an offline copy (``DARTS_MIM_DATA``), and the error says so.

Licences travel with each entry (:attr:`Dataset.licence`) and with each loader's docstring; check
them before you redistribute a file.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .paths import DATA_ENV_VAR, DataNotFoundError, _find_data_file, _shared_data_dir

URL_ENV_VAR = "DARTS_MIM_DATA_URL"
"""Environment variable naming a mirror to download from (same layout as the data directory)."""

CACHE_ENV_VAR = "DARTS_MIM_CACHE"
"""Environment variable naming the cache folder for downloaded files."""

_DARTS_URL = "https://raw.githubusercontent.com/unit8co/darts/master/datasets"
_MNIST_URL = (
    "https://ossci-datasets.s3.amazonaws.com/mnist"  # torchvision's mirror of the originals
)
_PYSTEPS_DATA = "https://github.com/pySTEPS/pysteps-data"
_STSAN = "https://github.com/haoxingl/STSAN"

_NO_LICENCE = (
    "none stated in the pysteps-data README (it gives terms only for RMI data) nor in the files; "
    "ask the data provider before redistributing"
)
_BOM_LICENCE = (
    "none stated in the pysteps-data README; the files' `licence` attribute: "
    "http://www.bom.gov.au/other/copyright.shtml (Commonwealth of Australia, Bureau of Meteorology)"
)


@dataclass(frozen=True)
class Dataset:
    """One data set file of the registry.

    Attributes
    ----------
    name
        The registry key, e.g. ``"radar_knmi"``.
    filename
        The file's name in the data directory, the mirror and the cache.
    subdir
        Its folder in the data directory: ``"gridded"``, ``"series"`` or ``"mnist"``.
    sha256
        The file's SHA-256 checksum; a download that does not match it is refused.
    description
        What the file holds: shape, time step, units.
    source
        The public source the file was taken or prepared from (repository, path, citation).
    licence
        The licence or terms of use, as the source states them.
    url
        A public download URL of this exact file, or ``None`` when the file was prepared for
        darts-mim and has none (then only a mirror or an offline copy provides it).
    aliases
        Other names the same file may have in a local directory.
    bundled
        Whether the package ships the file (in ``darts_mim/data``, under its name or an alias):
        :func:`fetch` then needs no download nor data directory.
    """

    name: str
    filename: str
    subdir: str
    sha256: str
    description: str
    source: str
    licence: str
    url: str | None = None
    aliases: tuple[str, ...] = ()
    bundled: bool = False


def _gridded(
    name, filename, sha256, description, source, licence, aliases=(), bundled=False
) -> Dataset:
    return Dataset(
        name, filename, "gridded", sha256, description, source, licence, None, aliases, bundled
    )


def _darts_csv(name, filename, sha256, description, licence) -> Dataset:
    return Dataset(
        name,
        filename,
        "series",
        sha256,
        description,
        f"Darts' bundled data sets, repository unit8co/darts, datasets/{filename} (byte-identical; "
        f"md5 as in darts.datasets)",
        licence,
        f"{_DARTS_URL}/{filename}",
    )


_ENTRIES = [
    _gridded(
        "nycbike",
        "nycbike_dsan_2016-08-01_2016-10-29_T4320x2x14x8.npz",
        "55771b6382d7ff45e026591ee3bdad2ff584f56e3f44d20b7b4072b68140e31a",
        "NYC Citi Bike inflow/outflow on a 14 x 8 grid, 30 min, 90 days (4320, 2, 14, 8), with 65 "
        "calendar and weather covariates",
        f"STSAN/DSAN data sets (Lin et al., KDD 2020), {_STSAN}, data/NYBike/flow_*.npz, concatenated",
        "MIT (the haoxingl/STSAN repository); the trips are Citi Bike open data",
        aliases=("nycbike_2016-08-01_2016-10-29.npz",),
        bundled=True,
    ),
    _gridded(
        "nyctaxi",
        "nyctaxi_dsan_2016-01-01_2016-03-30_T4320x2x16x12.npz",
        "aeee358a837950e8f0810e412fe068ba8e046acea4797c12bbd6d933fb3e4c83",
        "NYC yellow-taxi inflow/outflow on a 16 x 12 grid, 30 min, 90 days (4320, 2, 16, 12), with "
        "the same 65 covariates",
        f"STSAN/DSAN data sets, {_STSAN}, data/NYTaxi/",
        "MIT (the haoxingl/STSAN repository); NYC TLC open data",
    ),
    _gridded(
        "bikenyc_2014",
        "bikenyc_2014-08-04_2014-09-30_T1369x2x16x8.npz",
        "199e35a0d82b10c9d9ca84e90ae87f0549ee406a66b025995c4b38d8e7ec4e32",
        "BikeNYC of ST-ResNet, last 1369 hours, new-flow / end-flow on 16 x 8 (1369, 2, 16, 8), 1 h",
        "ST-ResNet (Zhang et al., AAAI 2017), rebuilt from repository Echo-Ji/ST-SSL, data/NYCBike1/",
        "none stated; cite ST-ResNet",
    ),
    _gridded(
        "radar_knmi",
        "radar_knmi_2010-08-26_T92x128x128_mmh.npz",
        "6be8fe7a19b4f249c2b388a806ac1cc57ff9524715137606c376f693b8987d35",
        "KNMI (Netherlands) 5-minute rain-rate composite of a heavy-rain event, 256 x 256 km at 2 km "
        "(92, 128, 128) mm/h",
        f"{_PYSTEPS_DATA}, radar/KNMI/2010/08/",
        "KNMI open data",
        bundled=True,
    ),
    _gridded(
        "radar_bom_2018",
        "radar_bom_2018-06-16_T61x128x128_mmh.npz",
        "d4c20979a76ba971c1378d4d379c5b2e7353220b1925f68cb24dbdfb9e561fad",
        "Bureau of Meteorology Rainfields3, Melbourne radar, 6-min accumulation as mm/h, 2 km "
        "(61, 128, 128)",
        f"{_PYSTEPS_DATA}, radar/bom/prcp-cscn/2/2018/06/16/",
        _BOM_LICENCE,
    ),
    _gridded(
        "radar_bom_2020",
        "radar_bom_2020-10-31_T144x128x128_mmh.npz",
        "79659b07406193a2967228644a041c47a4346c4ad88e22bd5a91fde79c6bc5c3",
        "Bureau of Meteorology, Brisbane radar, 10-min accumulation as mm/h, a day of severe "
        "convection (144, 128, 128)",
        f"{_PYSTEPS_DATA}, radar/bom/prcp-c10/66/2020/10/31/",
        _BOM_LICENCE,
    ),
    _gridded(
        "radar_opera_2018",
        "radar_opera_2018-08-24_T24x128x128_mmh.npz",
        "24d5b056ab2009bc21f14761eae39fcb86c3c82fc486af05815e4a1821baf419",
        "EUMETNET OPERA ODYSSEY rain rate over southern England, 15 min, 2 km (24, 128, 128)",
        f"{_PYSTEPS_DATA}, radar/OPERA/20180824/",
        _NO_LICENCE,
    ),
    _gridded(
        "radar_opera_2024",
        "radar_opera_2024-11-26_T13x128x128_mmh.npz",
        "eb747939f7992119ce6fe3cda4d84d70faa48852f2942386a54eea5499d8b7a5",
        "OPERA CIRRUS maximum reflectivity as mm/h (Marshall-Palmer) over eastern Finland, 5 min, "
        "2 km (13, 128, 128)",
        f"{_PYSTEPS_DATA}, radar/OPERA/20241126/CIRRUS/",
        _NO_LICENCE,
    ),
    _gridded(
        "radar_mrms_2019",
        "radar_mrms_2019-06-10_T36x128x128_mmh.npz",
        "8049ab7bd84076e10473b34c1d35592ceca990e581ccff7d7bd0f47ffc887aea",
        "NOAA/NSSL MRMS PrecipRate over northern Michigan, 2 min, about 2 km (36, 128, 128)",
        f"{_PYSTEPS_DATA}, mrms/2019/06/10/",
        _NO_LICENCE,
    ),
    _gridded(
        "era5_t2m_uk",
        "era5_t2m_uk_2019-03_T744x33x49_K.npz",
        "09a9667a4e088483108e9bf1c08a56f424d3e00c684cf2a2760dd586e6684f32",
        "ERA5 2-m air temperature over the UK, hourly, March 2019, 0.25 deg (744, 33, 49) K",
        "repository pydata/xarray-data, era5-2mt-2019-03-uk.grib",
        "Copernicus licence: Contains modified Copernicus Climate Change Service information 2019",
    ),
    Dataset(
        "mnist_t10k_images",
        "t10k-images-idx3-ubyte.gz",
        "mnist",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "the MNIST test set: 10,000 digits of 28 x 28 uint8, idx format (Moving MNIST is generated "
        "from them)",
        "MNIST (LeCun, Cortes, Burges); the official t10k file",
        "CC BY-SA 3.0",
        f"{_MNIST_URL}/t10k-images-idx3-ubyte.gz",
    ),
    Dataset(
        "mnist_t10k_labels",
        "t10k-labels-idx1-ubyte.gz",
        "mnist",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "the MNIST test labels",
        "MNIST (LeCun, Cortes, Burges); the official t10k file",
        "CC BY-SA 3.0",
        f"{_MNIST_URL}/t10k-labels-idx1-ubyte.gz",
    ),
    _darts_csv(
        "air_passengers",
        "AirPassengers.csv",
        "5f8b316b84545d9cfb05612298df8415ce4c44421c7012d109465564b07ebc06",
        "monthly airline passengers 1949-1960 (144 x 1)",
        "none stated by Darts (Box and Jenkins' classic series, R datasets::AirPassengers)",
    ),
    _darts_csv(
        "etth1",
        "ETTh1.csv",
        "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066",
        "electricity transformer temperature and loads, hourly (17420 x 7; Zhou et al., AAAI 2021)",
        "CC BY-ND 4.0 (ETDataset)",
    ),
    _darts_csv(
        "exchange_rate",
        "exchange_rate.csv",
        "f790284d51ac8c3918d4c9754a4779744c5de287b492e9267ed6a2aa60fb70c5",
        "daily exchange rates of 8 countries (7588 x 8; Lai et al., LSTNet)",
        "none stated by Darts (source: repository laiguokun/multivariate-time-series-data)",
    ),
    _darts_csv(
        "sunspots",
        "monthly-sunspots.csv",
        "4b91dd8e13bdf6a95c3034c71ceca0152269986c6a91706c6eaf50c1d50081c8",
        "monthly sunspot numbers from 1749 (2820 x 1)",
        "none stated by Darts (source: R datasets::sunspots, from SILSO, whose data are CC BY-NC 4.0)",
    ),
    _darts_csv(
        "taxi_passengers",
        "taxi_new_york_passengers.csv",
        "cac434404cfaaf7809c50e2160ebeda9f39bb383854e62914f46748dc7f7569c",
        "NYC taxi passengers every 30 minutes (10320 x 1)",
        "none stated by Darts (source: kaggle.com/code/julienjta/nyc-taxi-traffic-analysis; NYC TLC open data)",
    ),
    _darts_csv(
        "ilinet",
        "ILINet.csv",
        "a63fef36d97d9fc6fa9561c093bb48d5d8dc2bc36d6b80621a7387c3529ab811",
        "CDC weekly influenza-like illness, with gaps (1301 x 11)",
        "none stated by Darts (source: US CDC FluView ILINet, a US government work)",
    ),
]

DATASETS: dict[str, Dataset] = {d.name: d for d in _ENTRIES}
"""Every registered data set by name."""


def get_dataset(name: str) -> Dataset:
    """The registry entry of a data set.

    Parameters
    ----------
    name
        A key of :data:`DATASETS`, e.g. ``"radar_knmi"``.

    Returns
    -------
    Dataset
    """
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"Unknown data set {name!r}; registered: {sorted(DATASETS)}.") from None


def data_cache_dir() -> Path:
    """The folder downloaded files are cached in (``DARTS_MIM_CACHE`` or the platform's cache).

    Returns
    -------
    pathlib.Path
        ``$DARTS_MIM_CACHE`` if set, else pooch's ``os_cache("darts-mim")`` (``~/.cache/darts-mim``
        on Linux). Files are kept in its ``gridded/``, ``series/`` and ``mnist/`` folders.
    """
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("darts-mim"))


def download_url(name: str) -> str | None:
    """Where :func:`fetch` downloads a data set from: the mirror if ``DARTS_MIM_DATA_URL`` is set,
    else the data set's public URL (``None`` when it has none)."""
    dataset = get_dataset(name)
    mirror = os.environ.get(URL_ENV_VAR)
    if mirror:
        return f"{mirror.rstrip('/')}/{dataset.subdir}/{dataset.filename}"
    return dataset.url


def sha256_of(path: str | os.PathLike) -> str:
    """The SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundled_path(name: str) -> Path | None:
    """The copy of a data set that the package ships (``darts_mim/data``), or ``None``.

    Parameters
    ----------
    name
        A key of :data:`DATASETS`; only those with :attr:`Dataset.bundled` have a copy.

    Returns
    -------
    pathlib.Path or None
        The file inside the installed package (a wheel installs it as a real file); from a zipped
        install it is first copied into the cache (:func:`data_cache_dir`).
    """
    dataset = get_dataset(name)
    if not dataset.bundled:
        return None
    folder = resources.files("darts_mim") / "data"
    for filename in (dataset.filename, *dataset.aliases):
        resource = folder / filename
        if not resource.is_file():
            continue
        if isinstance(resource, Path):
            return resource
        copy = data_cache_dir() / dataset.subdir / dataset.filename  # a zip: no path of its own
        if not copy.is_file() or sha256_of(copy) != dataset.sha256:
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(resource.read_bytes())
        return copy
    return None


def fetch(name: str, path: str | os.PathLike | None = None) -> Path:
    """A local path to a registered data set's file, downloading it into the cache if needed.

    Parameters
    ----------
    name
        A key of :data:`DATASETS`.
    path
        A file, or a directory holding it (directly or in its ``gridded/``, ``series/``, ``mnist/``
        folder). When given, it is the only place looked at; when not, a copy bundled with the
        package comes first (:func:`bundled_path`), then the places the module docstring lists.

    Returns
    -------
    pathlib.Path
        An existing file. Downloaded files have the registry's sha256; local copies are used as
        they are (crops of the same layout work).

    Raises
    ------
    DataNotFoundError
        When no copy is found and none can be downloaded (no network, no URL, a wrong checksum);
        the message says where it looked, the URL tried and how to provide the file.
    """
    dataset = get_dataset(name)
    names = (dataset.filename, *dataset.aliases)
    if path is not None:
        return _find_data_file(path, names, dataset.subdir)
    bundled = bundled_path(name)
    if bundled is not None:
        return bundled
    if os.environ.get(DATA_ENV_VAR):  # an offline copy: authoritative, never a download
        return _find_data_file(None, names, dataset.subdir)
    shared = _shared_data_dir()
    if shared is not None:
        for candidate in (shared / dataset.subdir / n for n in names):
            if candidate.is_file():
                return candidate
    cache = data_cache_dir() / dataset.subdir
    cached = cache / dataset.filename
    if cached.is_file() and sha256_of(cached) == dataset.sha256:
        return cached
    url = download_url(name)
    if url is None:
        raise DataNotFoundError(
            f"{dataset.filename} ({name}) is not in {cache} and has no public download: it was "
            f"prepared for darts-mim from {dataset.source}. Set {DATA_ENV_VAR} to a folder holding "
            f"{dataset.subdir}/{dataset.filename}, set {URL_ENV_VAR} to a mirror serving it, or pass "
            f"its path. Licence: {dataset.licence}."
        )
    import pooch

    try:
        got = pooch.retrieve(
            url,
            known_hash=f"sha256:{dataset.sha256}",
            fname=dataset.filename,
            path=cache,
            progressbar=False,
        )
    except ValueError as err:  # pooch's checksum mismatch
        raise DataNotFoundError(
            f"The download of {name} from {url} does not have the registry's sha256 "
            f"({dataset.sha256}): {err}"
        ) from err
    except Exception as err:  # network errors (requests'), HTTP errors, a mirror without the file
        raise DataNotFoundError(
            f"Could not download {name} from {url} ({type(err).__name__}: {err}). Without a "
            f"network, set {DATA_ENV_VAR} to a folder holding {dataset.subdir}/{dataset.filename} "
            f"or {URL_ENV_VAR} to a mirror. Licence: {dataset.licence}."
        ) from err
    return Path(got)


def _download_cell(d: Dataset) -> str:
    if d.bundled:
        return "bundled with the package" + (f"; {d.url}" if d.url else "")
    return d.url or "mirror or offline copy only"


def describe(name: str | None = None) -> str:
    """A markdown table of the registry (or one data set): name, file, source, licence, and where it
    comes from (a URL, "bundled with the package", or "mirror or offline copy only")."""
    rows = [get_dataset(name)] if name is not None else list(DATASETS.values())
    lines = [
        "| name | file | what | source | licence | download |",
        "|---|---|---|---|---|---|",
    ]
    for d in rows:
        lines.append(
            f"| `{d.name}` | `{d.subdir}/{d.filename}` | {d.description} | {d.source} | "
            f"{d.licence} | {_download_cell(d)} |"
        )
    return "\n".join(lines)
