"""``benchmarks/bf16_accuracy.py`` end to end on tiny budgets: the bike split and robustness mode."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load():
    sys.path.insert(0, str(BENCHMARKS))  # its helpers (_common, robustness) live beside it
    spec = importlib.util.spec_from_file_location("bf16_accuracy", BENCHMARKS / "bf16_accuracy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_bike_split_compares_float32_with_bf16_autocast():
    rows = _load().main(["--quick", "--variants", "0,1", "--threads", "1"])
    assert [r[0] for r in rows] == [
        "float32 (Lightning precision '32-true')",
        "bf16 autocast (TrainingRecipe(bf16_autocast=True))",
    ]
    assert rows[0][3] == "x1.0000" and all(r[1] > 0 for r in rows)


@pytest.mark.slow
def test_robustness_mode_scores_each_data_set_and_the_geometric_mean():
    rows = _load().main(["--robustness", "syn_advection", "--quick", "--seeds", "0,1"])
    assert [r[:2] for r in rows[:-1]] == [["syn_advection", 0], ["syn_advection", 1]]
    assert rows[-1][0] == "geometric mean" and rows[-1][4].startswith("x")
    assert all(r[2] > 0 and r[3] > 0 for r in rows[:-1])
