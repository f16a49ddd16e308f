"""One node of the two-node training test (tests/test_multinode.py); also a launch example.

Run by ``torchrun --nnodes 2 --nproc_per_node 1 --node_rank {0,1} --master_addr ... --master_port ...
tests/multinode_train.py STORE OUT_DIR``: every node trains the same MIMModel from the same Zarr store
(a lazy dataset; Lightning's DistributedSampler gives each node its share of the windows) with
Lightning's DDP over gloo; the nodes save the model, node 0 loads it back and forecasts on one device.
Each node writes ``rank<k>.json`` (what it trained) into OUT_DIR; node 0 also ``forecast.npy``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch


def main(store: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    from darts_mim import MIMModel, series_to_grid
    from darts_mim.datasets import LazyGridTrainingDataset, grid_stats, open_grid

    out = Path(out_dir)
    da = open_grid(store, "t2m")
    stats = grid_stats(da)
    model = MIMModel(
        input_chunk_length=6,
        output_chunk_length=3,
        num_hidden=(4, 4),
        batch_size=8,
        n_epochs=2,
        random_state=0,
        naive_anchor=True,
        work_dir=str(out / "work"),
        pl_trainer_kwargs={
            "accelerator": "cpu",
            "devices": 1,  # processes per node
            "num_nodes": 2,
            "strategy": "ddp",  # gloo on CPU, NCCL on GPUs
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": False,
            "enable_checkpointing": False,
        },
    )
    model.fit_from_dataset(LazyGridTrainingDataset(da, 6, 3, stats=stats))
    trainer = model.trainer
    rank = trainer.global_rank  # Lightning reads it from torchrun's or SLURM's environment
    weights = torch.cat([p.detach().flatten() for p in model.model.parameters()])
    report = {
        "rank": rank,
        "world_size": trainer.world_size,
        "num_nodes": trainer.num_nodes,
        "global_step": trainer.global_step,
        "batches_per_epoch": trainer.num_training_batches,
        "weights_sum": float(weights.double().sum()),
        "weights_abs_sum": float(weights.double().abs().sum()),
    }
    (out / f"rank{rank}.json").write_text(json.dumps(report))
    # every node calls save: Lightning's checkpoint write is collective (a barrier), node 0 writes
    # the weights; MIMModel.save's atomic rename makes the nodes' identical model files harmless
    model.save(str(out / "mim.pt"))
    if rank == 0:  # predicting stays on one process and one device, as everywhere in darts-mim
        loaded = MIMModel.load(str(out / "mim.pt"))
        from darts_mim import grid_to_series

        series = grid_to_series(stats.normalise(da.values[:, None]), da.time.values, ["t2m"])
        forecast = stats.denormalise(series_to_grid(loaded.predict(4, series)))
        np.save(out / "forecast.npy", forecast)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
