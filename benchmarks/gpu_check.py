"""The GPU check of issue 14: training speed and memory, export, and ONNX Runtime serving on CUDA.

Run by ``benchmarks/gpu_check.sh`` (which installs what is missing and sets the paths); on its own::

    python benchmarks/gpu_check.py [--steps 200] [--repeats 5]   # on a machine with a CUDA GPU
    python benchmarks/gpu_check.py --cpu-smoke                    # tiny shapes on the CPU, ~1 min

For each configuration (the bike grid, 2x14x8 with 3x32 and 3x3 kernels, 12+6 frames; Moving MNIST,
64x64 patch 4 with 4x64 and 5x5 kernels, 10+10 frames):

1. trains the bare ``MIMNetwork`` (forward, MSE loss, backward, Adam) for ``--steps`` steps on
   random batches in float32 and in bf16 autocast: steps/s and peak device memory; then the same
   float32 step captured once as a CUDA graph and replayed (``_graphed_step.TrainStep``, this
   directory's whole-step graph: small grids are launch-bound), steps/s and the speed-up over eager
   float32 (on the CPU smoke run the step falls back to eager and the table says so);
2. times ``MIMModel.fit`` epochs (Darts and Lightning included, ``accelerator="gpu"``) in float32
   and bf16-mixed at the benchmarks' equal work, alternating with epochs of a bare torch loop over
   the literal network (``_fit_timing``, as ``train_speed.py`` does on the CPU): seconds per epoch
   and the ratio;
3. fits a ``MIMModel`` of that shape for a few steps and exports it to ONNX in float32 and float16
   (wall seconds);
4. serves each file with ONNX Runtime (CUDA provider with IO binding where it runs, else the CPU,
   said in the table): latency at batch 1, throughput at batch 64 and 256 (``predict_array``, one
   forecast of ``output_chunk_length`` steps), and the largest difference to the torch network on
   the same inputs (torch float32 on the same device); a third, unrolled float32 graph (no ``Loop``
   nodes) is served with CUDA graphs (``enable_cuda_graph``), which ONNX Runtime refuses for
   graphs with control flow.

Prints markdown tables (the defaults with and without CUDA graphs; the network and serving; the
fit) and a line on what ran where. Exits non-zero when a part fails, after printing what the other
parts measured.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _common import Config  # noqa: E402
from _fit_timing import sync  # noqa: E402
from _gpu_fit import FIT_VARIANTS, defaults_check, defaults_table, fit_speed, fit_table  # noqa: E402
from _graphed_step import TrainStep  # noqa: E402

from darts_mim import MIMModel, grid_to_series  # noqa: E402
from darts_mim.nn import MIMNetwork  # noqa: E402

# Case(name, channels, height, width, num_hidden, filter_size, patch_size, train batch, frames in,
# frames out): the benchmarks' one configuration type.
Case = Config


FULL = (
    Case("bike grid 2x14x8, 3x32", 2, 14, 8, (32, 32, 32), 3, 1, 16, 12, 6),
    Case("Moving MNIST 64x64 p4, 4x64", 1, 64, 64, (64, 64, 64, 64), 5, 4, 16, 10, 10),
)
PARTS = ("network", "fit", "serve", "defaults")
# The graphs served: looped float32 and float16, and float32 unrolled (no Loop nodes) for CUDA graphs.
GRAPHS = ("fp32", "fp16", "fp32 unrolled")
SMOKE = (
    Case("bike grid 2x14x8, 2x8 (smoke)", 2, 14, 8, (8, 8), 3, 1, 2, 4, 2),
    Case("MNIST-like 16x16 p4, 2x8 (smoke)", 1, 16, 16, (8, 8), 3, 4, 2, 3, 2),
)


def _net_and_batch(
    case: Case, device: torch.device
) -> tuple[MIMNetwork, torch.Tensor, torch.Tensor]:
    """The case's network (seed 0) and one random batch of input and target frames on ``device``."""
    torch.manual_seed(0)
    net = MIMNetwork(
        target_channels=case.channels,
        cond_channels=0,
        height=case.height,
        width=case.width,
        num_hidden=case.num_hidden,
        filter_size=case.filter_size,
        patch_size=case.patch_size,
    ).to(device)
    shape = (case.batch, case.t_in, case.channels, case.height, case.width)
    past = torch.rand(shape, device=device)
    future = torch.rand((case.batch, case.n_out, *shape[2:]), device=device)
    return net, past, future


def train_speed(case: Case, device: torch.device, bf16: bool, steps: int) -> dict:
    """Steps/s and peak memory of ``steps`` training steps of the bare network (after 3 warm-ups)."""
    net, past, future = _net_and_batch(case, device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    )

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            out = net(past, case.n_out)[:, :, :, 0]
            loss = nn.functional.mse_loss(out.float(), future)
        loss.backward()
        optimizer.step()
        return loss

    for _ in range(3):
        step()
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync(device)
    elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    if not torch.isfinite(loss):
        raise RuntimeError(f"{case.name}: the training loss is {float(loss)}")
    return {"steps_s": steps / elapsed, "peak_mib": peak}


def graphed_train_speed(case: Case, device: torch.device, steps: int) -> dict:
    """Steps/s of the float32 training step of :func:`train_speed` replayed from a CUDA graph
    (``TrainStep``; eager where no GPU is: ``mode`` says which ran)."""
    net, past, future = _net_and_batch(case, device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, capturable=device.type == "cuda")

    def loss_fn(past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(net(past, case.n_out)[:, :, :, 0], future)

    start = time.perf_counter()
    step = TrainStep(net, optimizer, loss_fn, (past, future))
    sync(device)
    capture_s = time.perf_counter() - start
    for _ in range(3):
        step(past, future)
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        loss = step(past, future)
    sync(device)
    elapsed = time.perf_counter() - start
    if not torch.isfinite(loss):
        raise RuntimeError(f"{case.name}: the graphed training loss is {float(loss)}")
    return {"steps_s": steps / elapsed, "mode": step.mode, "capture_s": capture_s}


def fit_model(case: Case, device: torch.device, work_dir: str) -> MIMModel:
    """A ``MIMModel`` of the case's shape fitted for a few steps (export does not depend on how well
    it is trained, the comparisons are against the same weights)."""
    rng = np.random.default_rng(0)
    length = 3 * (case.t_in + case.n_out) + 20
    frames = rng.random((length, case.channels, case.height, case.width), dtype=np.float32)
    times = pd.date_range("2024-01-01", periods=length, freq="h")
    series = grid_to_series(frames, times, [f"c{i}" for i in range(case.channels)])
    trainer = {
        "accelerator": "gpu" if device.type == "cuda" else "cpu",
        "devices": 1,
        "max_steps": 5,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "logger": False,
        "enable_checkpointing": False,
    }
    model = MIMModel(
        input_chunk_length=case.t_in,
        output_chunk_length=case.n_out,
        num_hidden=case.num_hidden,
        filter_size=case.filter_size,
        patch_size=case.patch_size,
        n_epochs=1,
        batch_size=4,
        random_state=0,
        work_dir=work_dir,
        pl_trainer_kwargs=trainer,
    )
    return model.fit(series)


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up: session initialisation, CUDA kernels chosen, buffers bound
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def serve(
    model: MIMModel,
    path: str,
    device: torch.device,
    providers: list[str],
    batches: tuple[int, ...],
    repeats: int,
) -> dict:
    """Latency (batch 1), throughput (other batches) and the largest difference to torch."""
    from darts.utils.data.torch_datasets.utils import ModuleStage, PLModuleInput

    from darts_mim.onnx.runtime import OnnxForecaster

    forecaster = OnnxForecaster(path, providers=providers)
    ocl = forecaster.output_chunk_length
    rng = np.random.default_rng(1)
    width = len(forecaster.components)
    windows = rng.random((max(batches), forecaster.input_chunk_length, width), dtype=np.float32)
    module = model.model.to(device=device, dtype=torch.float32).eval()
    with torch.no_grad():
        x_in = PLModuleInput(
            past_target=torch.from_numpy(windows[:64]).to(device), stage=ModuleStage.PREDICT
        )
        expected = module(x_in).prediction[..., 0].float().cpu().numpy()
    got = forecaster.predict_array(windows[:64], ocl)
    out = {
        "provider": forecaster.session.get_providers()[0].replace("ExecutionProvider", ""),
        "io_binding": forecaster._binding is not None,
        "cuda_graph": forecaster._binding is not None and forecaster._binding.cuda_graph,
        "max_diff": float(np.nanmax(np.abs(got - expected))),
    }
    for batch in batches:
        seconds = _median_time(lambda b=batch: forecaster.predict_array(windows[:b], ocl), repeats)
        out[batch] = seconds
    return out


def main_table(rows: list[dict], batches: tuple[int, ...]) -> list[str]:
    """The network's training speed and the export and serving of each graph, one row per graph."""
    big = batches[1:]
    lines: list[str] = []
    head = " | ".join(f"series/s b{b}" for b in big)
    lines.append(
        "| config | train fp32 steps/s (peak MiB) | train bf16 steps/s (peak MiB) | "
        "train fp32 CUDA graph steps/s (x eager fp32) | graph | "
        f"export s | provider | latency b{batches[0]} ms | {head} | max diff to torch |"
    )
    lines.append("|---|---|---|---|---|---|---|---|" + "---|" * len(big) + "---|")
    for row in rows:

        def train(key: str, row=row) -> str:
            t = row.get(key)
            if t is None:
                return "failed"
            mem = "" if t["peak_mib"] is None else f" ({t['peak_mib']:.0f})"
            return f"{t['steps_s']:.1f}{mem}"

        def graphed(row=row) -> str:
            t, eager = row.get("train_graph"), row.get("train_fp32")
            if t is None:
                return "failed"
            ratio = f"x{t['steps_s'] / eager['steps_s']:.2f}, " if eager else ""
            return f"{t['steps_s']:.1f} ({ratio}{t['mode'].replace('_', ' ')})"

        for label in GRAPHS:
            s = row.get(f"serve_{label}")
            export = row.get(f"export_{label}")
            cells = [
                row["case"],
                train("train_fp32") if label == "fp32" else "",
                train("train_bf16") if label == "fp32" else "",
                graphed() if label == "fp32" else "",
                label,
                "failed" if export is None else f"{export:.1f}",
            ]
            if s is None:
                cells += ["failed", "-"] + ["-"] * len(big) + ["-"]
            else:
                provider = s["provider"] + (" + IO binding" if s["io_binding"] else "")
                provider += " + CUDA graphs" if s["cuda_graph"] else ""
                cells += [provider, f"{s[batches[0]] * 1e3:.1f}"]
                cells += [f"{b / s[b]:.0f}" for b in big]
                cells.append(f"{s['max_diff']:.1e}")
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on the CPU")
    parser.add_argument("--steps", type=int, default=200, help="timed training steps per case")
    parser.add_argument("--repeats", type=int, default=5, help="timed serving calls per batch")
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated parts to run, of {', '.join(PARTS)} (default: all)",
    )
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    if not parts <= set(PARTS):
        parser.error(f"--parts takes {', '.join(PARTS)}; got {args.parts!r}")

    import onnxruntime as ort

    from darts_mim.onnx.runtime import provider_problem

    smoke = args.cpu_smoke
    cases = SMOKE if smoke else FULL
    steps = 2 if smoke else args.steps
    batches = (1, 4, 8) if smoke else (1, 64, 256)
    if smoke:
        device = torch.device("cpu")
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    else:
        print("gpu_check: torch sees no CUDA device; run with --cpu-smoke to test the script.")
        return 2
    cuda_problem = provider_problem("CUDAExecutionProvider")
    providers = (
        ["CPUExecutionProvider"]
        if smoke or cuda_problem
        else ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    if providers[0] == "CPUExecutionProvider" and not smoke:
        # serving on the GPU machine's CPU says little (the CPU tables are in serve_load.py) and
        # batch 256 took a minute per case there: batch 1 and 64 only
        batches = batches[:2]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"gpu_check on {name}: torch {torch.__version__}, onnxruntime {ort.__version__} "
        f"({', '.join(ort.get_available_providers())}); ONNX serving on {providers[0]}"
        + (f" (CUDA provider: {cuda_problem})" if cuda_problem and not smoke else ""),
        flush=True,
    )

    rows, failures, defaults = [], [], []
    if "defaults" in parts:  # first: the check of MIMModel.fit with CUDA graphs matters most
        try:
            check = defaults_check(device, smoke)
            defaults = defaults_table(check)
            print("\n".join(defaults), flush=True)
            failures += [f"MIMModel.fit with CUDA graphs: {p}" for p in check["problems"]]
        except Exception as err:
            failures.append(f"defaults with and without CUDA graphs: {err!r}")
            traceback.print_exc()
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        for case in cases:
            row = {"case": case.name}
            rows.append(row)
            if "network" in parts:
                for label, bf16 in (("fp32", False), ("bf16", True)):
                    try:
                        row[f"train_{label}"] = train_speed(case, device, bf16, steps)
                    except Exception as err:  # report and go on with the other parts
                        failures.append(f"{case.name}, training {label}: {err!r}")
                        traceback.print_exc()
                    print(f"{case.name}: training {label} {row.get(f'train_{label}')}", flush=True)
                try:
                    row["train_graph"] = graphed_train_speed(case, device, steps)
                except Exception as err:
                    failures.append(f"{case.name}, training with a CUDA graph: {err!r}")
                    traceback.print_exc()
                print(f"{case.name}: training fp32 graphed {row.get('train_graph')}", flush=True)
            for variant in FIT_VARIANTS if "fit" in parts else ():
                key = f"fit_{variant[0]}"
                try:
                    row[key] = fit_speed(case, device, variant, smoke)
                except Exception as err:
                    failures.append(f"{case.name}, MIMModel.fit {variant[0]}: {err!r}")
                    traceback.print_exc()
                print(f"{case.name}: fit {variant[0]} {row.get(key)}", flush=True)
            if "serve" not in parts:
                continue
            try:
                model = fit_model(case, device, tmp)
            except Exception as err:
                failures.append(f"{case.name}, fit: {err!r}")
                traceback.print_exc()
                continue
            for label in GRAPHS:
                path = str(Path(tmp) / f"{case.name.split()[0]}_{label}.onnx".replace(" ", "_"))
                serving = providers
                if label == GRAPHS[2]:
                    # no control flow: CUDA graphs where the CUDA provider runs, else the same
                    # unrolled graph on the CPU (the code path, not the speed)
                    if providers[0] == "CUDAExecutionProvider":
                        cuda = ("CUDAExecutionProvider", {"enable_cuda_graph": "1"})
                        serving = [cuda, "CPUExecutionProvider"]
                try:
                    start = time.perf_counter()
                    model.to_onnx(path, fp16=label == "fp16", unroll=label == GRAPHS[2])
                    row[f"export_{label}"] = time.perf_counter() - start
                    # on the CPU (no CUDA provider) fewer repeats keep the run inside 8 minutes
                    repeats = args.repeats if smoke or serving[0] != "CPUExecutionProvider" else 2
                    row[f"serve_{label}"] = serve(model, path, device, serving, batches, repeats)
                except Exception as err:
                    failures.append(f"{case.name}, export/serve {label}: {err!r}")
                    traceback.print_exc()
                print(f"{case.name}: {label} {row.get(f'serve_{label}')}", flush=True)

    if parts & {"network", "serve"}:
        print("\n" + "\n".join(main_table(rows, batches)))
    if "fit" in parts:
        print("\n" + "\n".join(fit_table(rows)))
    if defaults:
        print("\n" + "\n".join(defaults))
    if failures:
        print("\nFAILED parts:\n- " + "\n- ".join(failures))
        return 1
    print("\nall parts ran.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
