"""``benchmarks/plain_series.py --quick`` runs end to end on small stand-ins of the shared series."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

KEPT = r"kept (epoch 1 of 1 run|the untrained weights \(1 epochs run\))"
"""The note of a model that stopped early in --quick (one epoch; the sanity check may score best)."""
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "plain_series.py"


def _load():
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("plain_series", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["plain_series"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _write_series(folder: Path) -> None:
    """A monthly AirPassengers-like series and an integer-indexed 8-column exchange-rate-like one."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    months = pd.date_range("1949-01", periods=144, freq="MS").strftime("%Y-%m")
    t = np.arange(144)
    passengers = 100 + t + 20 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 2, 144)
    pd.DataFrame({"Month": months, "#Passengers": passengers.round()}).to_csv(
        folder / "AirPassengers.csv", index=False
    )
    rates = 1 + np.cumsum(rng.normal(0, 0.01, (400, 8)), axis=0)
    pd.DataFrame(rates, columns=[str(i) for i in range(8)]).to_csv(
        folder / "exchange_rate.csv", index=False
    )


@pytest.mark.slow
def test_quick_run_scores_every_model_and_summarises(tmp_path):
    _write_series(tmp_path / "data" / "series")
    module = _load()
    out = tmp_path / "tables.md"
    text = module.main(
        ["--quick", "--data", str(tmp_path / "data"), "--series", "air_passengers", "exchange_rate"]
        + ["--out", str(out)]
    )
    rows = [line.split(" | ")[0] for line in text.splitlines()]
    for label in module.NEURAL + ("persistence",):
        assert rows.count(f"| {label}") == 2, label  # a row in each series' table
    for label in ("AutoARIMA", "AutoETS", "AutoTheta"):  # run or skipped, with a row each
        assert sum(row.startswith(f"| {label}") for row in rows) == 2, label
    assert "| seasonal naive (K=6)" in rows and "| seasonal naive (K=5)" in rows
    assert "folded by 6" in text and "folded by 5" in text and "one value per step" in text
    assert "wins or ties (within 1 %): MIM folded on" in text and "MIM folded +RIN/CI on" in text
    assert out.read_text().strip() == text.strip()


def test_quick_run_on_a_newcomers_data_with_seeds_and_early_stopping(tmp_path):
    """The synthetic series (no data directory needed), two seeds, early stopping for every model."""
    module = _load()
    argv = ["--quick", "--series", "newcomer_csv", "soi_like", "--seeds", "0,1", "--early-stopping"]
    text = module.main([*argv, "--models", "MIM folded", "DLinear", "NLinear"])
    tables = {}
    for line in text.splitlines():
        if line.startswith("### "):
            current = tables.setdefault(line.split(":")[0][4:], {})
        elif line.startswith("| ") and not line.startswith(("| model |", "| series |")):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            current[cells[0]] = cells[1:]
    assert set(tables) == {"newcomer_csv", "soi_like", "Summary"}
    for name in ("newcomer_csv", "soi_like"):
        rows = tables[name]
        for label in ("MIM folded", "DLinear", "NLinear"):
            rmse, sd, fit = (float(v) for v in rows[label][:3])
            assert np.isfinite(rmse) and sd >= 0 and fit >= 0
            # early stopping for every neural model, noted for both seeds
            note = rows[label][-1]
            assert re.search(KEPT, note) and "(seed" in note, rows[label]
            assert sorted(re.findall(r"\(seeds? ([0-9, ]+)\)", note)) in (["0, 1"], ["0", "1"])
        assert rows["persistence"][1] == "-"  # no spread for a local model
        assert any(label.startswith("AutoTheta") for label in rows)
    assert "univariate" in tables["newcomer_csv"]["AutoETS"][-1]
    assert set(tables["Summary"]) == {"newcomer_csv", "soi_like"}
    assert "Within 1.02x the best naive (issue 24's target: every series): MIM folded on" in text
    assert "--quick --early-stopping" in text and "--seeds 0,1" in text


def test_settings_keep_the_measured_recipe():
    module = _load()
    assert module.MIM_MULTIVARIATE == {
        "use_reversible_instance_norm": True,
        "channel_independent": True,
    }
    assert module.SPECS["exchange_rate"].fold_period == 5  # integer index: no period to infer
    newcomer = module.SPECS["newcomer_csv"]  # issue 24: 90 days; 96 in, 24 out, daily, 5 epochs
    assert (newcomer.input_len, newcomer.horizon, newcomer.stride, newcomer.epochs) == (
        96,
        24,
        24,
        5,
    )
    args = module.parse_args([])
    assert (
        module.epochs_of(newcomer, args) == 5 and module.epochs_of(module.SPECS["taxi"], args) == 10
    )
    assert module.epochs_of(newcomer, module.parse_args(["--epochs", "3"])) == 3
