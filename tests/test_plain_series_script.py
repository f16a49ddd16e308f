"""``benchmarks/plain_series.py --quick`` runs end to end on small stand-ins of the shared series."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

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
    assert "| seasonal naive (K=6)" in rows and "| seasonal naive (K=5)" in rows
    assert "folded by 6" in text and "folded by 5" in text and "one value per step" in text
    assert "Wins or ties (within 1 %): MIM folded on" in text and "MIM folded +RIN/CI on" in text
    assert out.read_text().strip() == text.strip()


def test_settings_keep_the_measured_recipe():
    module = _load()
    assert module.MIM_MULTIVARIATE == {
        "use_reversible_instance_norm": True,
        "channel_independent": True,
    }
    assert module.SPECS["exchange_rate"].fold_period == 5  # integer index: no period to infer
