#!/usr/bin/env bash
# The GPU check of issues 14 and 16: MIMModel.fit with and without CUDA graphs (the defaults on the
# bike grid, same seed: speed, forecast error, difference; equal work against a literal loop), the
# network's training speed and memory in fp32 and bf16 and its whole step replayed from a CUDA
# graph, export, ONNX Runtime serving on CUDA in fp32 and fp16. Prints markdown tables.
#
#   benchmarks/gpu_check.sh                          # everything: about 8 minutes on an H200
#   benchmarks/gpu_check.sh --parts defaults,fit     # MIMModel.fit only: about 4 minutes
#   benchmarks/gpu_check.sh --cpu-smoke              # tiny shapes on the CPU: the script end to end
#
# It uses this checkout's code (PYTHONPATH), never an installed darts-mim, and the machine's own
# torch (the GPU machine's image has a CUDA build; torch 2.13 cannot be installed there offline).
# What the image lacks is installed from wheels in .whl/ at the repository root, when there are any:
# darts 0.48.1 and holidays (pure Python). Prepare them where pip can reach the index:
#
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 -d .whl darts==0.48.1 holidays
#
# and carry .whl to the machine. ONNX Runtime's CUDA provider needs the onnxruntime-gpu build (its
# CUDA library alone is about 280 MB, too big to carry): where the machine's onnxruntime has no
# working CUDA provider, serving runs on the CPU and the table says so.
#
# Environment: PYTHON (default: python3), GPU_CHECK_TIMEOUT (seconds for the Python part, default
# 450), GPU_CHECK_SITE (where wheels are installed, default /tmp/gpu_check_site).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cd "$repo"
python="${PYTHON:-python3}"
timeout_s="${GPU_CHECK_TIMEOUT:-450}"
site="${GPU_CHECK_SITE:-/tmp/gpu_check_site}"
smoke=0
for arg in "$@"; do
    [[ "$arg" == "--cpu-smoke" ]] && smoke=1
done

say() { printf 'gpu_check.sh: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 2
}

command -v "$python" >/dev/null 2>&1 || die "no Python interpreter '$python' (set PYTHON)."
if [[ $smoke -eq 0 ]]; then
    command -v nvidia-smi >/dev/null 2>&1 || die "nvidia-smi not found: no NVIDIA GPU here. Use --cpu-smoke to test the script on a CPU."
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2 \
        || die "nvidia-smi cannot read the GPU."
fi

# Install what is missing from carried wheels (no network on the GPU machine).
if ! "$python" -c "import darts" >/dev/null 2>&1; then
    shopt -s nullglob
    wheels=("$repo"/.whl/*.whl)
    shopt -u nullglob
    [[ ${#wheels[@]} -gt 0 ]] || die "darts is not importable and there are no wheels in .whl/ (see the comment at the top of this script)."
    say "installing ${#wheels[@]} wheel(s) from .whl/ into $site"
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" "${wheels[@]}" || die "pip could not install the wheels in .whl/."
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
# Lightning's tips and the dataloader's pin-memory note are not results.
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore::UserWarning}"

"$python" - <<'EOF' || die "the Python environment is not usable (see above)."
import importlib
missing = []
for name in ("numpy", "pandas", "torch", "darts", "onnx", "onnxruntime", "pytorch_lightning"):
    try:
        importlib.import_module(name)
    except Exception as err:
        missing.append(f"{name} ({err})")
if missing:
    raise SystemExit("cannot import: " + ", ".join(missing))
import darts_mim, torch
print(f"darts_mim from {darts_mim.__file__}, torch {torch.__version__}", flush=True)
EOF

status=0
timeout --signal=INT --kill-after=20 "$timeout_s" "$python" "$here/gpu_check.py" "$@" || status=$?
if [[ $status -eq 124 || $status -eq 130 ]]; then
    say "the Python part ran past ${timeout_s} s and was stopped (GPU_CHECK_TIMEOUT)."
elif [[ $status -ne 0 ]]; then
    say "the Python part failed (exit $status)."
fi
exit "$status"
