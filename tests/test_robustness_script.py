"""Smoke tests of benchmarks/robustness.py: its --quick mode on tiny synthetic grids and a tiny CSV."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from darts_mim import TrainingRecipe

ROOT = Path(__file__).resolve().parents[1]


def _load_script():
    path = ROOT / "benchmarks" / "robustness.py"
    spec = importlib.util.spec_from_file_location("robustness", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["robustness"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


robustness = _load_script()

NAIVE = ("persistence", "drift", "climatology (mean)")
NEURAL = ("MIM", "TCN", "NHiTS", "DLinear", "NLinear")
KEPT = r"kept (epoch 1 of 1 run|the untrained weights \(1 epochs run\))"
"""The note of a model that stopped early in --quick (one epoch; the sanity check may score best)."""
TINY_MIM = '{"num_hidden": [4, 4], "filter_size": 3}'


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory with a monthly CSV in the layout of AirPassengers (trend x yearly cycle)."""
    root = tmp_path / "data"
    (root / "series").mkdir(parents=True)
    months = pd.date_range("1949-01", periods=144, freq="MS")
    t = np.arange(144)
    values = (100 + 2 * t) * (1 + 0.2 * np.sin(2 * np.pi * t / 12))
    frame = pd.DataFrame({"Month": months.strftime("%Y-%m"), "#Passengers": values.round()})
    frame.to_csv(root / "series" / "AirPassengers.csv", index=False)
    return root


def _sections(md: str) -> dict[str, str]:
    parts = md.split("\n## ")[1:]
    return {part.split(":")[0]: part for part in parts}


def _rows(section: str) -> dict[str, list[str]]:
    rows = {}
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith("| model |"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_quick_run_writes_every_baseline(data_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    old = [
        "# old head",
        "",
        "## era5 [B, test]: kept",
        "kept table",
        "",
        "## syn_advection [T, test]",
    ]
    old += ["stale table", robustness.MARKER, "my findings"]
    (out / "robustness_results.md").write_text("\n".join(old) + "\n")
    datasets = "syn_advection,syn_seasonality,air_passengers"
    argv = ["--quick", "--data", str(data_dir), "--datasets", datasets, "--seeds", "0,1"]
    argv += ["--tag", "T", "--mim-kwargs", TINY_MIM, "--out-dir", str(out)]
    assert robustness.main(argv) == 0
    printed = capsys.readouterr().out
    assert "## summary [T, test]" in printed and "seed 1 MIM" in printed
    md = (out / "robustness_results.md").read_text()
    assert "old head" not in md and "stale table" not in md
    assert "## era5 [B, test]: kept\nkept table" in md and md.rstrip().endswith("my findings")
    sections = _sections(md)
    for name in datasets.split(","):
        rows = _rows(sections[f"{name} [T, test]"])
        seasonal = [label for label in rows if label.startswith("seasonal naive (K=")]
        assert len(seasonal) == 1, rows
        for label in (*NEURAL, *NAIVE, *seasonal):
            assert np.isfinite(float(rows[label][0])), (name, label)  # RMSE
            assert float(rows[label][2]) >= 0  # fit s, beside the RMSE
            assert float(rows[label][3]) >= 1.0 or label in NEURAL  # ratio to the best naive
        for label in NEURAL:
            assert float(rows[label][1]) >= 0  # sd over the two seeds
            assert int(rows[label][5]) > 0  # optimizer steps done
        best = [label for label, cells in rows.items() if cells[-1] == "best naive"]
        assert len(best) == 1 and float(rows[best[0]][3]) == 1.0
        for model in ("AutoARIMA", "AutoETS", "AutoTheta"):
            (label,) = [label for label in rows if label.startswith(model)]
            if name.startswith("syn_"):
                assert "skipped" in rows[label][-1]
            else:  # a univariate series: they run where statsforecast is installed
                cell, note = rows[label][0], rows[label][-1]
                # without statsforecast (not a dependency) the row says so instead of a figure
                assert "statsforecast" in note if cell == "-" else np.isfinite(float(cell))
    # the seasonal grid is a clean daily cycle plus noise of sd 0.05: last day's values are off by
    # the noise of two observations, sd 0.05 * sqrt(2); persistence is far worse
    season = _rows(sections["syn_seasonality [T, test]"])
    assert 0.06 < float(season["seasonal naive (K=24)"][0]) < 0.08
    assert float(season["persistence"][0]) > 0.5
    summary_md, cost_md = sections["summary [T, test]"].split("\nCost: ")
    summary = _rows(summary_md.replace("| data set |", "| model |"))
    assert set(summary) == set(datasets.split(","))
    # what MIM's fit time buys: against NHiTS's fit and RMSE, and the quickest rival as accurate
    cost = _rows(cost_md.replace("| data set |", "| model |"))
    assert set(cost) == set(datasets.split(","))
    for name, cells in cost.items():
        mim_s, nhits_s, fit_x, rmse_x = (float(c) for c in cells[:4])
        # the fit seconds are printed to 0.1 s: the ratio lies within what that rounding allows
        low, high = (mim_s - 0.05) / (nhits_s + 0.05), (mim_s + 0.05) / max(nhits_s - 0.05, 1e-9)
        assert low - 0.05 <= fit_x <= high + 0.05
        rows = _rows(sections[f"{name} [T, test]"])
        assert rmse_x == pytest.approx(float(rows["MIM"][0]) / float(rows["NHiTS"][0]), rel=1e-2)
        if cells[4] != "none":  # a trained rival no worse than MIM
            assert float(rows[cells[4]][0]) <= float(rows["MIM"][0])
    assert summary["syn_seasonality"][0] == "seasonal naive (K=24)"
    assert all(cells[-1] in ("yes", "no") for cells in summary.values())
    assert all(float(cells[5]) > 0 for cells in summary.values())  # MIM fit s
    assert "within 1.02x the best naive on" in md
    assert f"--mim-kwargs '{TINY_MIM}'" in md and "--seeds 0,1" in md


def test_validation_scores_the_validation_part(tmp_path: Path) -> None:
    argv = ["--quick", "--validation", "--datasets", "syn_seasonality", "--mim-kwargs", TINY_MIM]
    args = robustness.parse_args([*argv, "--out-dir", str(tmp_path)])
    res = robustness.run_dataset("syn_seasonality", args, str(tmp_path))
    assert "scored on the validation part (20 steps, 3 origins every 6)" in res.lines[0]
    best = robustness.best_naive(res.rows)
    assert best.label == "seasonal naive (K=24)" and 0.05 < best.mean < 0.09


def test_early_stopping_fits_with_a_validation_series(tmp_path: Path) -> None:
    argv = [
        "--quick",
        "--early-stopping",
        "--datasets",
        "syn_seasonality",
        "--mim-kwargs",
        TINY_MIM,
    ]
    args = robustness.parse_args([*argv, "--out-dir", str(tmp_path)])
    res = robustness.run_dataset("syn_seasonality", args, str(tmp_path))
    assert "`--early-stopping`: every neural model fitted on the first" in "\n".join(res.lines)
    # --quick runs one epoch, validated at its end: every neural model, MIM and Darts', keeps it (the
    # restore itself is tested in test_training_defaults.py)
    for row in res.rows:
        if row.kind == "neural":
            assert re.search(KEPT + "$", row.note), (row.label, row.note)
    assert "--early-stopping" in robustness.run_line(args, 1.0)


def test_darts_baselines_get_mim_treatment(tmp_path: Path) -> None:
    """Instance norm always; with --early-stopping MIM's callbacks, fresh per model, MIM's patience."""
    from pytorch_lightning.callbacks import EarlyStopping

    from darts_mim.callbacks import RestoreBestWeights

    assert robustness.mim_patience({}) == 5
    assert robustness.mim_patience({"early_stopping_patience": None}) is None
    assert robustness.mim_patience({"early_stopping_patience": 3}) == 3
    spec = robustness.SPECS["newcomer_csv"]
    assert (spec.input_len, spec.horizon, spec.stride, spec.periods, spec.epochs) == (
        96,
        24,
        24,
        (24, 168),
        5,
    )
    for flag in ([], ["--early-stopping"]):
        args = robustness.parse_args(["--mim-kwargs", TINY_MIM, "--out-dir", str(tmp_path), *flag])
        models = robustness.neural_models(spec, args, 0, str(tmp_path))
        assert list(models) == list(NEURAL)
        seen = []
        for label in NEURAL[1:]:
            model = models[label]
            assert model.model_params["use_reversible_instance_norm"] is True, label
            assert model.n_epochs == 5 and model.batch_size == 32
            callbacks = model.trainer_params.get("callbacks", [])
            if flag:
                (stop,) = [cb for cb in callbacks if isinstance(cb, EarlyStopping)]
                assert stop.monitor == "val_loss" and stop.patience == 5
                assert any(isinstance(cb, RestoreBestWeights) for cb in callbacks)
                assert not any(cb in seen for cb in callbacks)  # fresh callbacks per model
                seen += callbacks
            else:
                assert not callbacks
        assert (
            models["TCN"].output_chunk_length == 24 and models["DLinear"].input_chunk_length == 96
        )


def test_quick_run_on_a_newcomers_data(tmp_path: Path) -> None:
    """The plain synthetic data sets: a newcomer's hourly CSV (3 columns) and the SOI-like index."""
    argv = ["--quick", "--datasets", "newcomer_csv,soi_like", "--seeds", "0,1"]
    argv += ["--mim-kwargs", TINY_MIM, "--out-dir", str(tmp_path)]
    assert robustness.main(argv) == 0
    sections = _sections((tmp_path / "robustness_results.md").read_text())
    csv = _rows(sections["newcomer_csv [test]"])
    assert "written to a CSV and read back" in sections["newcomer_csv [test]"]
    assert "336 steps" in sections["newcomer_csv [test]"]  # 14 days in --quick
    assert all("univariate" in csv[label][-1] for label in ("AutoARIMA", "AutoETS", "AutoTheta"))
    soi = _rows(sections["soi_like [test]"])
    assert [label for label in soi if label.startswith("seasonal naive")] == [
        "seasonal naive (K=12)"
    ]
    for rows in (csv, soi):
        for label in NEURAL:
            assert np.isfinite(float(rows[label][0])) and float(rows[label][1]) >= 0
            assert float(rows[label][2]) >= 0  # fit s (0 when under 0.05 s)
    summary = _rows(sections["summary [test]"].replace("| data set |", "| model |"))
    assert set(summary) == {"newcomer_csv", "soi_like"}
    text = sections["summary [test]"]
    assert "MIM fit s" in text and "its fit s" in text and "of 2 (issue 24's target: all)" in text


def test_crop_and_bad_arguments(tmp_path: Path) -> None:
    from darts_mim import series_to_grid
    from darts_mim.datasets import advection

    grid = advection(10, 9, 12, seed=0)
    cropped = robustness.crop_grid(grid, (4, 6))
    np.testing.assert_array_equal(series_to_grid(cropped), series_to_grid(grid)[:, :, 2:6, 3:9])
    assert robustness.parse_crop("full") is None and robustness.parse_crop("16x8") == (16, 8)
    with pytest.raises(ValueError, match="HxW"):
        robustness.parse_crop("16")
    with pytest.raises(ValueError, match="--datasets got"):
        robustness.parse_args(["--datasets", "era5,weather"])
    with pytest.raises(ValueError, match="must be a JSON object"):
        robustness.parse_args(["--mim-kwargs", "[1]"])
    with pytest.raises(ValueError, match="distinct integers"):
        robustness.parse_args(["--seeds", "1,1"])
    with pytest.raises(ValueError, match="--epochs must be >= 1"):
        robustness.parse_args(["--epochs", "0"])
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        robustness.parse_args(["--data", str(tmp_path / "missing")])


def test_mim_kwargs_merge_into_the_cpu_trainer():
    common = {"n_epochs": 5, "pl_trainer_kwargs": {"accelerator": "cpu", "logger": False}}
    extra = {"pl_trainer_kwargs": {"gradient_clip_val": 1.0}, "lr_schedule": "one_cycle"}
    merged = robustness.merge_kwargs(common, extra)
    assert merged["pl_trainer_kwargs"] == {
        "accelerator": "cpu",
        "logger": False,
        "gradient_clip_val": 1.0,
    }
    assert merged["n_epochs"] == 5 and "lr_schedule" not in merged
    # a recipe field at the top level, as the recorded command lines give it, moves into the recipe
    assert merged["training_recipe"] == TrainingRecipe(lr_schedule="one_cycle")
    assert common["pl_trainer_kwargs"] == {"accelerator": "cpu", "logger": False}  # not changed
