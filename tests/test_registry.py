"""The data set registry: sha256-checked downloads into a cache, from a local HTTP server on
127.0.0.1 (never the network), offline copies, and the registry's hashes against the shared data."""

from __future__ import annotations

import dataclasses
import functools
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from darts_mim.datasets import load_bike_flows, load_radar, load_series, paths, registry
from darts_mim.datasets.paths import DataNotFoundError, _shared_data_dir
from darts_mim.datasets.registry import (
    DATASETS,
    bundled_path,
    describe,
    download_url,
    fetch,
    sha256_of,
)

DATA = Path(__file__).resolve().parent / "data"
RADAR_CROP = DATA / "radar_knmi_2010-08-26_T24x64x64_mmh.npz"
ROOT = Path(__file__).resolve().parents[1]
# the KNMI event is bundled with the package, so downloads are tested with an event that is not:
# the mirror serves the KNMI crop (same layout) under this event's file name
EVENT = "radar_bom_2018"


class _Mirror:
    """A local HTTP server over a folder laid out like the data directory; counts requests."""

    def __init__(self, root: Path):
        self.root, self.requests = root, []
        mirror = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                mirror.requests.append(self.path)

        handler = functools.partial(Handler, directory=str(root))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A mirror serving the radar crop as gridded/<EVENT's file>; a fresh cache; no local data."""
    root = tmp_path / "mirror"
    (root / "gridded").mkdir(parents=True)
    shutil.copy(RADAR_CROP, root / "gridded" / DATASETS[EVENT].filename)
    m = _Mirror(root)
    monkeypatch.delenv("DARTS_MIM_DATA", raising=False)
    monkeypatch.setenv("DARTS_MIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DARTS_MIM_DATA_URL", m.url)
    _no_shared_data(monkeypatch)  # as in a pip install
    yield m
    m.close()


def _no_shared_data(monkeypatch) -> None:
    monkeypatch.setattr(paths, "_SHARED", Path("/nonexistent/shared/data"))
    monkeypatch.setattr(paths, "_shared_data_dir", lambda: None)
    monkeypatch.setattr(registry, "_shared_data_dir", lambda: None)


def _registered_as(monkeypatch, name: str, path: Path) -> None:
    """Register ``path``'s sha256 for ``name`` (the mirror serves a small crop, not the full file)."""
    entry = dataclasses.replace(DATASETS[name], sha256=sha256_of(path))
    monkeypatch.setitem(DATASETS, name, entry)


def test_download_from_mirror_is_checked_and_cached(mirror, monkeypatch, tmp_path):
    _registered_as(monkeypatch, EVENT, RADAR_CROP)
    data = load_radar(event=EVENT)
    assert len(data.series) == 24
    cached = tmp_path / "cache" / "gridded" / DATASETS[EVENT].filename
    assert cached.is_file() and sha256_of(cached) == sha256_of(RADAR_CROP)
    assert mirror.requests == [f"/gridded/{cached.name}"]
    mirror.close()  # offline from now on: the cache answers
    assert len(load_radar(event=EVENT).series) == 24
    assert fetch(EVENT) == cached
    assert len(mirror.requests) == 1


def test_download_with_a_wrong_checksum_is_refused(mirror, tmp_path):
    # the registry holds the full file's sha256; the mirror serves a crop
    with pytest.raises(DataNotFoundError, match="sha256"):
        load_radar(event=EVENT)
    assert not (tmp_path / "cache" / "gridded" / DATASETS[EVENT].filename).exists()


def test_a_file_the_mirror_lacks(mirror):
    with pytest.raises(DataNotFoundError, match="Could not download nyctaxi from http://127.0.0.1"):
        fetch("nyctaxi")


def test_offline_copy_wins_and_never_downloads(mirror, monkeypatch, tmp_path):
    offline = tmp_path / "offline"
    (offline / "gridded").mkdir(parents=True)
    monkeypatch.setenv("DARTS_MIM_DATA", str(offline))
    with pytest.raises(DataNotFoundError, match="Could not find radar_bom_2018"):
        load_radar(event=EVENT)
    shutil.copy(RADAR_CROP, offline / "gridded" / DATASETS[EVENT].filename)
    assert len(load_radar(event=EVENT).series) == 24  # used as it is: crops of the same layout work
    assert len(load_radar(RADAR_CROP).series) == 24  # and a path argument
    assert mirror.requests == []


def test_prepared_files_without_a_mirror_say_where_to_get_them(mirror, monkeypatch):
    monkeypatch.delenv("DARTS_MIM_DATA_URL")
    assert DATASETS[EVENT].url is None
    with pytest.raises(DataNotFoundError) as info:
        load_radar(event=EVENT)
    message = str(info.value)
    for words in ("DARTS_MIM_DATA", "DARTS_MIM_DATA_URL", "pysteps-data", "bom.gov.au"):
        assert words in message


def test_urls_and_descriptions(monkeypatch):
    monkeypatch.delenv("DARTS_MIM_DATA_URL", raising=False)
    assert download_url("etth1") == (
        "https://raw.githubusercontent.com/unit8co/darts/master/datasets/ETTh1.csv"
    )
    assert download_url("mnist_t10k_images").startswith("https://")
    monkeypatch.setenv("DARTS_MIM_DATA_URL", "http://127.0.0.1:8000/data/")
    assert download_url("etth1") == "http://127.0.0.1:8000/data/series/ETTh1.csv"
    table = describe()
    assert len(table.splitlines()) == 2 + len(DATASETS)
    for entry in DATASETS.values():
        assert len(entry.sha256) == 64 and entry.licence and entry.source
        assert entry.subdir in ("gridded", "series", "mnist")
    with pytest.raises(ValueError, match="Unknown data set"):
        fetch("nope")
    with pytest.raises(ValueError, match="Unknown series"):
        load_series("nope")


def test_bundled_bike_grid_is_the_registered_file():
    bundled = ROOT / "darts_mim" / "data" / "nycbike_2016-08-01_2016-10-29.npz"
    assert sha256_of(bundled) == DATASETS["nycbike"].sha256


def test_bundled_files_are_the_registered_ones():
    bundled = {name for name, entry in DATASETS.items() if entry.bundled}
    assert bundled == {"nycbike", "radar_knmi"}
    for name in bundled:
        path = bundled_path(name)
        assert path.is_file() and path.parent == ROOT / "darts_mim" / "data", name
        assert sha256_of(path) == DATASETS[name].sha256, name
    assert bundled_path("radar_bom_2018") is None and bundled_path("etth1") is None


def test_bundled_copies_need_no_data_dir_cache_or_network(monkeypatch, tmp_path):
    """As after `pip install` on a machine without network: no DARTS_MIM_DATA, no shared data, an
    empty cache, and a mirror URL that answers nothing."""
    monkeypatch.delenv("DARTS_MIM_DATA", raising=False)
    monkeypatch.setenv("DARTS_MIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DARTS_MIM_DATA_URL", "http://127.0.0.1:9")  # nothing listens there
    _no_shared_data(monkeypatch)
    assert fetch("radar_knmi") == ROOT / "darts_mim" / "data" / DATASETS["radar_knmi"].filename
    rain = load_radar()
    assert rain.name == "radar_knmi" and len(rain.series) == 92
    assert rain.to_array().shape == (92, 1, 128, 128)
    assert len(load_bike_flows().series) == 4320
    assert not (tmp_path / "cache").exists()  # nothing downloaded nor copied
    with pytest.raises(DataNotFoundError, match="Could not download"):
        fetch("radar_bom_2018")  # the others still need a copy or a mirror


def test_a_path_comes_before_the_bundled_copy_and_the_bundled_copy_before_an_offline_copy(
    monkeypatch, tmp_path
):
    offline = tmp_path / "offline"
    (offline / "gridded").mkdir(parents=True)
    shutil.copy(RADAR_CROP, offline / "gridded" / DATASETS["radar_knmi"].filename)
    monkeypatch.setenv("DARTS_MIM_DATA", str(offline))
    assert len(load_radar(offline).series) == 24  # the explicit path
    assert len(load_radar().series) == 92  # the bundled, registered file


@pytest.mark.skipif(_shared_data_dir() is None, reason="needs ../shared/data (the project's data)")
def test_registry_hashes_match_the_shared_data():
    shared = _shared_data_dir()
    for entry in DATASETS.values():
        assert sha256_of(shared / entry.subdir / entry.filename) == entry.sha256, entry.name


def test_docs_list_the_registry():
    """docs/datasets.md shows the registry as describe() prints it (regenerate the table if not)."""
    assert describe() in (ROOT / "docs" / "datasets.md").read_text()
