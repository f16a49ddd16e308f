#!/usr/bin/env bash
# The wheel as users get it: build the wheel and sdist, install the wheel with every extra ([all]:
# radar, lazy, plot, serve, netcdf) into a clean virtual environment, and run every ```python block of
# README.md and docs/**/*.md there (.ci/docs_examples.py; not docs/tutorials/, which
# tests/test_tutorials.py covers), outside the clone: `python -I` from a temporary directory, and
# darts_mim must be imported from site-packages. Each page runs in its own process and temporary
# working directory. Data come as a user's would: the bundled bike grid and KNMI radar event from the
# package, the others downloaded by the loaders, here from a local mirror (python -m http.server on
# 127.0.0.1 over ../shared/data) through DARTS_MIM_DATA_URL; without ../shared/data the blocks marked
# needs-data are skipped (and needs-gpu ones without a GPU). Prints each page's time and the total.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PY:-python3}
WORK=$(mktemp -d)
SERVER=""
cleanup() { if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; fi; rm -rf "$WORK"; }
trap cleanup EXIT
start=$(date +%s)

.venv/bin/python -m build --wheel --sdist --outdir "$WORK/dist" . > "$WORK/build.log" 2>&1 \
    || { tail -30 "$WORK/build.log"; exit 1; }
ls "$WORK"/dist
tar tzf "$WORK"/dist/*.tar.gz > "$WORK/sdist.txt"
for f in nycbike_2016-08-01_2016-10-29.npz radar_knmi_2010-08-26_T92x128x128_mmh.npz; do
    grep -q "darts_mim/data/$f" "$WORK/sdist.txt" || { echo "the sdist lacks $f"; exit 1; }
done
$PY -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --upgrade pip
"$WORK/venv/bin/pip" install -q torch==2.13.0          # the CPU build, first (see README)
wheel=$(ls "$WORK"/dist/*.whl)
"$WORK/venv/bin/pip" install -q "${wheel}[all]"
echo "installed in $(( $(date +%s) - start )) s"

unset DARTS_MIM_DATA DARTS_MIM_DATA_URL PYTHONPATH
export DARTS_MIM_CACHE="$WORK/cache" MPLBACKEND=Agg OMP_NUM_THREADS=1
mkdir -p "$WORK/run" && cd "$WORK/run"   # not the clone: only the installed package is importable
# the bundled data sets are in the wheel, as files of the installed package
"$WORK/venv/bin/python" -I -c '
from darts_mim.datasets.registry import DATASETS, bundled_path, sha256_of
for name, entry in DATASETS.items():
    if entry.bundled:
        path = bundled_path(name)
        assert path is not None and "site-packages" in str(path), (name, path)
        assert sha256_of(path) == entry.sha256, name
        print("bundled:", name, path)
'
if [ -d "$ROOT/../shared/data" ]; then
    port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    $PY -m http.server "$port" --bind 127.0.0.1 --directory "$ROOT/../shared/data" > "$WORK/http.log" 2>&1 &
    SERVER=$!
    export DARTS_MIM_DATA_URL="http://127.0.0.1:$port"
    sleep 1
else
    echo "no ../shared/data: the blocks that need data are skipped"
fi
"$WORK/venv/bin/python" -I "$ROOT/.ci/docs_examples.py" --root "$ROOT" --installed
echo "wheel check passed in $(( $(date +%s) - start )) s"
