"""What Darts and Lightning add to training: ``MIMModel.fit`` per epoch against a bare torch loop.

Both train the same network (the fitted model's own ``MIMNetwork``) on the same sliding windows of the
same gridded series, with the same batch size, the same number of batches per epoch, teacher forcing by
a random mask and Adam. The fit's epochs are timed by a Lightning callback (the first epoch, which
includes start-up, is left out); the bare loop builds its batches from a numpy array each epoch, as a
plain torch script would. Target (issue 7): overhead below 10 %.

Usage: ``python benchmarks/darts_overhead.py [--quick] [--threads N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
import torch
from _common import markdown_table
from _fit_timing import fit_epoch_seconds

from darts_mim import TrainingRecipe, grid_to_series


def make_series(n_steps: int, channels: int = 2, height: int = 14, width: int = 8):
    """A travelling wave with noise on the bike-flow grid shape (2 x 14 x 8)."""
    rng = np.random.default_rng(0)
    t = np.arange(n_steps)[:, None, None, None]
    x = np.arange(width)[None, None, None, :]
    y = np.arange(height)[None, None, :, None]
    c = np.arange(channels)[None, :, None, None]
    values = np.sin(0.3 * t + 0.5 * x + 0.2 * y + c) + 0.1 * rng.standard_normal(
        (n_steps, channels, height, width)
    )
    times = pd.date_range("2024-01-01", periods=n_steps, freq="30min")
    return grid_to_series(values.astype(np.float32), times, [f"ch{i}" for i in range(channels)])


def bare_epoch(
    net, values: np.ndarray, icl: int, ocl: int, batch_size: int, opt
) -> tuple[float, int]:
    """One epoch of a plain torch loop over shuffled sliding windows; returns (seconds, batches)."""
    start = time.perf_counter()
    n_windows = len(values) - icl - ocl + 1
    order = np.random.default_rng(0).permutation(n_windows)
    n_batches = 0
    for first in range(0, n_windows, batch_size):
        idx = order[first : first + batch_size]
        windows = torch.from_numpy(np.stack([values[i : i + icl + ocl] for i in idx]))
        past, future = windows[:, :icl], windows[:, icl:]
        mask = (torch.rand(len(idx), ocl - 1) < 0.5).float()
        opt.zero_grad()
        out = net(past, ocl, future_frames=future, teacher_mask=mask)
        loss = torch.nn.functional.mse_loss(out[:, :, :, 0], future)
        loss.backward()
        opt.step()
        n_batches += 1
    return time.perf_counter() - start, n_batches


def main(argv: list[str] | None = None) -> list[list[object]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a shorter series and fewer epochs")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    n_steps, epochs = (200, 3) if args.quick else (600, 4)
    icl, ocl, batch_size = 12, 6, 32
    series = make_series(n_steps)
    darts_epoch, darts_batches, model = fit_epoch_seconds(
        series,
        epochs,
        input_chunk_length=icl,
        output_chunk_length=ocl,
        num_hidden=(16, 16),
        filter_size=3,
        # the bare loop below scores the output chunk only
        training_recipe=TrainingRecipe(input_window_loss=False),
        batch_size=batch_size,
    )
    net = model.model.net
    values = series.values().reshape(n_steps, 2, 14, 8).astype(np.float32)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    bare = [bare_epoch(net, values, icl, ocl, batch_size, opt) for _ in range(epochs)]
    bare_sec = statistics.median(sec for sec, _ in bare[1:])
    overhead = darts_epoch / bare_sec - 1
    rows = [
        ["MIMModel.fit", darts_batches, darts_epoch, darts_epoch / darts_batches],
        ["bare torch loop", bare[-1][1], bare_sec, bare_sec / bare[-1][1]],
    ]
    print(markdown_table(["training", "batches/epoch", "s/epoch", "s/batch"], rows))
    verdict = "yes" if overhead < 0.10 else "NO"
    print(
        f"\nDarts + Lightning overhead per epoch: {100 * overhead:.1f} % (target < 10 %: {verdict})"
    )
    return rows


if __name__ == "__main__":
    main()
