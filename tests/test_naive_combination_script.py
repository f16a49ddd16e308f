"""``benchmarks/naive_combination.py``: the combination of naive forecasts alone, on two synthetic sets."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load():
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(
        "naive_combination_script", BENCHMARKS / "naive_combination.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_scores_the_combination_against_the_naive_forecasts(capsys):
    rows = _load().main(["--quick", "--datasets", "syn_seasonality,newcomer_csv"])
    assert [row["name"] for row in rows] == ["syn_seasonality", "newcomer_csv"]
    for row in rows:
        assert math.isfinite(row["combination"]) and row["best_rmse"] > 0
        assert math.isclose(row["ratio"], row["combination"] / row["best_rmse"])
        assert "the window's mean" in row["candidates"]
    out = capsys.readouterr().out
    assert "| syn_seasonality |" in out and "below the best naive forecast on" in out


def test_naive_forecasts_continue_the_history():
    module = _load()
    values = np.arange(10, dtype=float)[:, None]  # a straight line
    forecasts = module.naive_forecasts(values, 6, 3, periods=(2,), mean=np.array([4.5]))
    np.testing.assert_array_equal(forecasts["persistence"][:, 0], [5, 5, 5])
    np.testing.assert_array_equal(forecasts["seasonal naive (K=2)"][:, 0], [4, 5, 4])
    np.testing.assert_allclose(forecasts["drift"][:, 0], [6, 7, 8])
    np.testing.assert_array_equal(forecasts["climatology (mean)"][:, 0], [4.5] * 3)
