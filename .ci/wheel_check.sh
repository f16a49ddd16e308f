#!/usr/bin/env bash
# The wheel as users get it: build the wheel and sdist, install the wheel (with the radar, lazy and plot
# extras) into a clean virtual environment, and run README examples there, outside the clone: the
# quickstart, the xarray example and the radar nowcast. Data come as a user's would, downloaded by the
# loaders, here from a local mirror (python -m http.server on 127.0.0.1 over ../shared/data) through
# DARTS_MIM_DATA_URL; without ../shared/data the radar example is skipped. Prints the time taken.
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
$PY -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --upgrade pip
"$WORK/venv/bin/pip" install -q torch==2.13.0          # the CPU build, first (see README)
wheel=$(ls "$WORK"/dist/*.whl)
"$WORK/venv/bin/pip" install -q "${wheel}[radar,lazy,plot]"
echo "installed in $(( $(date +%s) - start )) s"

unset DARTS_MIM_DATA
export DARTS_MIM_CACHE="$WORK/cache" MPLBACKEND=Agg OMP_NUM_THREADS=1
blocks="quickstart xarray"
if [ -d "$ROOT/../shared/data" ]; then
    port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    $PY -m http.server "$port" --bind 127.0.0.1 --directory "$ROOT/../shared/data" > "$WORK/http.log" 2>&1 &
    SERVER=$!
    export DARTS_MIM_DATA_URL="http://127.0.0.1:$port"
    blocks="$blocks radar"
    sleep 1
else
    echo "no ../shared/data: the radar example is skipped"
fi
mkdir -p "$WORK/run" && cd "$WORK/run"   # not the clone: only the installed package is importable
"$WORK/venv/bin/python" -I "$ROOT/.ci/readme_examples.py" "$ROOT/README.md" $blocks
echo "wheel check passed in $(( $(date +%s) - start )) s"
