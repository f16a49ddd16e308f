"""``benchmarks/long_horizon.py --quick`` runs the ETTh1 protocol end to end on the tests' fixture."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "long_horizon.py"


def _load():
    spec = importlib.util.spec_from_file_location("long_horizon", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["long_horizon"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_seasonal_naive_repeats_the_last_day():
    module = _load()
    split = module.load_split(Path("/nonexistent"), quick=True)  # falls back to the fixture
    pred, true = module.seasonal_naive(split, 30, validation=False)
    values = split.series.values()
    origin = split.val_end
    assert pred.shape == true.shape == (split.test_end - 30 - origin + 1, 30, 7)
    assert (pred[0, :24] == values[origin - 24 : origin]).all()
    assert (pred[0, 24:] == values[origin - 24 : origin - 18]).all()
    assert (true[0] == values[origin : origin + 30]).all()


@pytest.mark.slow
def test_quick_run_prints_every_model(tmp_path):
    module = _load()
    out = tmp_path / "table.md"
    text = module.main(
        [
            "--quick",
            "--data",
            "/nonexistent",
            "--models",
            "seasonal_naive",
            "mim",
            "dlinear",
            "--out",
            str(out),
        ]
    )
    for name in ("seasonal_naive", "mim", "dlinear"):
        assert f"| {name} |" in text
    assert out.read_text().strip() == text.strip()


def test_mim_base_settings_are_pinned_to_the_published_recipe(tmp_path):
    """The published ETTh1 figures were measured with 0.2's defaults: the script pins them, and
    --mim-kwargs overrides them key by key (the trainer's too)."""
    lh = _load()
    base = lh.build_model("mim", 24, 1, 0, {}, str(tmp_path), rin=False)
    assert base.num_hidden == (64, 64, 64, 64) and base.filter_size == 5
    assert base.naive_anchor is False and base.training_recipe.lr_schedule is None
    assert base.trainer_params["gradient_clip_val"] is None
    assert base.trainer_params["callbacks"]  # the script's early stopping is kept
    kwargs = {
        "num_hidden": [32, 32],
        "pl_trainer_kwargs": {"gradient_clip_val": 1.0},
        "optimizer_kwargs": {"lr": 0.003},
        "lr_schedule": "one_cycle",  # a TrainingRecipe field, flat as the recorded runs give it
    }
    tuned = lh.build_model("mim_1x1", 24, 1, 0, kwargs, str(tmp_path), rin=False)
    assert tuned.num_hidden == (32, 32) and tuned.fold_period is None
    assert tuned.trainer_params["gradient_clip_val"] == 1.0
    assert tuned.pl_module_params["optimizer_kwargs"] == {"lr": 0.003}
    assert tuned.training_recipe.lr_schedule == "one_cycle"
    nested = {"training_recipe": {"lr_schedule": "one_cycle", "input_window_loss": False}}
    recipe = lh.build_model("mim", 24, 1, 0, nested, str(tmp_path), rin=False).training_recipe
    assert recipe.lr_schedule == "one_cycle" and recipe.input_window_loss is False


def test_speed_times_folded_unfolded_and_nhits():
    module = _load()
    text = module.main(
        ["--quick", "--data", "/nonexistent", "--models", "seasonal_naive", "--speed"]
        + ["--speed-batches", "1", "--horizons", "24"]
    )
    line = next(x for x in text.splitlines() if x.startswith("Training time per batch"))
    assert "MIM folded" in line and "MIM 1x1" in line and "x NHiTS" in line
