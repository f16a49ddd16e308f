"""Shared helpers of the benchmarks: the benchmark configurations, building the production and the literal
reference network, timing a training step, counting convolution FLOPs, markdown tables.

Run from the repository root (``python benchmarks/<name>.py``); the literal reference lives in
``tests/reference_mim.py`` and is imported from there.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the literal reference network
sys.path.insert(0, str(REPO))

from reference_mim import ReferenceMIM, load_production_weights  # noqa: E402

from darts_mim.nn import MIMNetwork  # noqa: E402


@dataclass(frozen=True)
class Config:
    """One benchmark configuration: network shape, batch and sequence lengths."""

    name: str
    channels: int
    height: int
    width: int
    num_hidden: tuple[int, ...]
    filter_size: int
    patch_size: int
    batch: int
    t_in: int
    n_out: int

    def net_kwargs(self) -> dict:
        return dict(
            target_channels=self.channels,
            cond_channels=0,
            height=self.height,
            width=self.width,
            num_hidden=self.num_hidden,
            filter_size=self.filter_size,
            patch_size=self.patch_size,
        )


# The two configurations of issue 7: the bike-flow grid and Moving MNIST (64x64, patch 4 -> 16x16x16).
SMALL = Config("small grid 2x14x8", 2, 14, 8, (32, 32, 32), 3, 1, 16, 12, 6)
MNIST = Config("Moving MNIST 64x64 p4", 1, 64, 64, (64, 64, 64, 64), 5, 4, 4, 10, 10)


def build(cfg: Config, kind: str, seed: int = 0, **extra) -> nn.Module:
    """``kind="production"`` (MIMNetwork), ``"reference"`` (the literal network of
    ``tests/reference_mim.py``, its layer norm written out by hand) or ``"literal"`` (the same literal
    network, its layer norm by torch's ``group_norm``: the honest baseline), with the production's
    weights. ``layer_norm`` in ``extra`` applies to every kind."""
    torch.manual_seed(seed)
    prod = MIMNetwork(**cfg.net_kwargs(), **extra)
    if kind == "production":
        return prod
    ln = extra.get("layer_norm", True)
    ref = ReferenceMIM(**cfg.net_kwargs(), layer_norm=ln, native_norm=kind == "literal")
    load_production_weights(ref, prod)
    return ref


def make_batch(cfg: Config, seed: int = 0) -> dict:
    """Past and future frames and a random teacher-forcing mask (scheduled sampling mid-way)."""
    gen = torch.Generator().manual_seed(seed)
    shape = (cfg.batch, cfg.t_in, cfg.channels, cfg.height, cfg.width)
    past = torch.rand(shape, generator=gen)
    future = torch.rand((cfg.batch, cfg.n_out, *shape[2:]), generator=gen)
    mask = torch.randint(0, 2, (cfg.batch, cfg.n_out - 1), generator=gen)
    return dict(past=past, future=future, mask=mask)


def autocast_ctx(precision: str):
    """``"32"`` (no autocast) or ``"bf16-mixed"`` (CPU autocast to bfloat16)."""
    if precision == "bf16-mixed":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_train_step(net: nn.Module, cfg: Config, batch: dict, precision: str) -> Callable[[], None]:
    """One training step as the authors train: loss over every next-frame prediction, Adam."""
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.95, 0.9995))
    target = torch.cat([batch["past"][:, 1:], batch["future"]], dim=1)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast_ctx(precision):
            out = net(
                batch["past"],
                cfg.n_out,
                future_frames=batch["future"],
                teacher_mask=batch["mask"],
                return_all=True,
            )
            loss = (out[:, :, :, 0].float() - target).square().mean()
        loss.backward()
        opt.step()

    return step


def make_equal_work_step(
    net: nn.Module, cfg: Config, batch: dict, precision: str
) -> Callable[[], None]:
    """One training step as ``MIMModel`` trains with
    ``TrainingRecipe(input_window_loss=False, sampling_schedule="free_running")``: the decoder feeds
    back its own predictions, the loss is the MSE of the output chunk, Adam. The work is the same for
    every network."""
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast_ctx(precision):
            out = net(batch["past"], cfg.n_out)
            loss = (out[:, :, :, 0].float() - batch["future"]).square().mean()
        loss.backward()
        opt.step()

    return step


def time_calls(fns: Sequence[Callable[[], None]], repeats: int, warmup: int = 1) -> list[float]:
    """Median seconds per call of each function, interleaving them so load changes hit all alike."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def count_flops(fn: Callable[[], None]) -> int:
    """FLOPs of one call (forward and backward convolutions, matmuls) by torch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def big_conv_rate(cfg: Config, precision: str, repeats: int = 3) -> float:
    """FLOP/s of one large convolution of the network's kind (k x k, nh -> 4 nh, over every frame of
    the batch at once), forward and backward, in the same precision: the machine's attainable rate."""
    call, flops = big_conv_call(cfg, precision)
    (sec,) = time_calls([call], repeats)
    return flops / sec


def big_conv_call(cfg: Config, precision: str) -> tuple[Callable[[], None], int]:
    """The large convolution of :func:`big_conv_rate` as a call to time beside others, and its FLOPs."""
    nh = cfg.num_hidden[0]
    hp, wp = cfg.height // cfg.patch_size, cfg.width // cfg.patch_size
    conv = nn.Conv2d(nh, 4 * nh, cfg.filter_size, padding=cfg.filter_size // 2)
    x = torch.randn(cfg.batch * (cfg.t_in + cfg.n_out), nh, hp, wp, requires_grad=True)

    def call() -> None:
        with autocast_ctx(precision):
            y = conv(x)
        y.float().sum().backward()

    return call, count_flops(call)


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], digits: int = 3
) -> str:
    """A GitHub markdown table; floats get ``digits`` significant digits."""

    def fmt(v: object) -> str:
        return f"{v:.{digits}g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def current_rss_mb() -> float:
    """Resident set size of this process now, in MiB (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
    except OSError:
        return 0.0
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def child_train(spec: dict) -> dict:
    """Time training steps of one production configuration and measure the step's peak memory.

    Meant to run in a fresh process (see :func:`run_child`): ``ru_maxrss`` is the process's peak, so the
    peak minus the RSS before the first step is what the step needs (activations, gradients, Adam).
    """
    import resource

    cfg = Config(**{k: tuple(v) if k == "num_hidden" else v for k, v in spec["config"].items()})
    torch.set_num_threads(spec.get("threads") or torch.get_num_threads())
    net = build(cfg, "production", **spec.get("extra", {}))
    batch = make_batch(cfg)
    step = make_train_step(net, cfg, batch, spec.get("precision", "32"))
    base = current_rss_mb()
    (sec,) = time_calls([step], spec.get("repeats", 1), warmup=1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"sec": sec, "base_mb": base, "peak_mb": peak, "step_mb": peak - base}


def run_child(cfg: Config, **spec) -> dict:
    """Run :func:`child_train` for ``cfg`` in a subprocess and return its measurements."""
    import dataclasses
    import json
    import subprocess

    payload = json.dumps({"config": dataclasses.asdict(cfg), **spec})
    proc = subprocess.run(
        [sys.executable, str(Path(__file__)), payload], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed for {cfg}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":  # the child process of run_child
    import json

    print(json.dumps(child_train(json.loads(sys.argv[1]))))
