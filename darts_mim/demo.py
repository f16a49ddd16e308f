"""The ``darts-mim demo``: train, backtest, export to ONNX and serve on the bundled bike-flow grid.

Steps (each prints a header):

1. Load NYC Citi Bike inflow / outflow (2 channels on 14 x 8 cells, 30-minute steps) and hold out the
   last days for the backtest. The neural models see data min-max scaled by a Darts ``Scaler`` fitted
   on the training part only; every error is reported on the original scale (bikes per 30 minutes).
2. Fit a ``MIMModel`` (12 steps in, 6 out) with Lightning's progress bar.
3. Backtest it with ``historical_forecasts(retrain=False, forecast_horizon=6, stride=6,
   last_points_only=False)`` against a seasonal naive forecast (the same half-hour one day earlier,
   ``NaiveSeasonal(K=48)``), Darts' ``TCNModel`` on the flattened grid (224 components) and ARIMA on
   the total flow (sum over all cells and both channels; the grid models' forecasts are summed the same
   way for that comparison).
4. Export the MIM model to ONNX, forecast the 6 steps after the end of the data with
   :class:`darts_mim.onnx.runtime.OnnxForecaster`, and compare with ``MIMModel.predict``.
5. Write ``frames_true_vs_forecast.png``, ``error_by_horizon.png``, ``cell_series.png`` and
   ``results.md`` to the output directory.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from darts import TimeSeries

from darts_mim.datasets import load_bike_flows
from darts_mim.evaluation import forecast_windows, mae, rmse, rmse_by_step
from darts_mim.grid import series_to_grid
from darts_mim.logs import quiet_logs
from darts_mim.plotting import plot_cell_series, plot_error_by_horizon, plot_frames

__all__ = ["DemoConfig", "DemoResult", "run_demo"]

INPUT_STEPS = 12
OUTPUT_STEPS = 6
STEPS_PER_DAY = 48


@dataclass
class DemoConfig:
    """Sizes of one demo run.

    Attributes
    ----------
    train_days
        Days of history before the test period used for training (the most recent ones).
    test_days
        Days at the end of the data that are backtested.
    mim_hidden, mim_epochs, batch_size
        The MIM model's layer widths, epochs and batch size.
    tcn_filters, tcn_epochs
        The TCN model's filters per layer and epochs.
    arima_days
        Days of total flow the ARIMA model is fitted on.
    """

    train_days: float = 28
    test_days: float = 2
    mim_hidden: tuple[int, ...] = (16, 16)
    mim_epochs: int = 8
    batch_size: int = 32
    tcn_filters: int = 16
    tcn_epochs: int = 5
    arima_days: float = 14

    @classmethod
    def quick(cls) -> DemoConfig:
        """A configuration that runs in seconds (for tests): tiny models, little data."""
        return cls(
            train_days=3,
            test_days=0.25,
            mim_hidden=(4, 4),
            mim_epochs=1,
            batch_size=32,
            tcn_filters=4,
            tcn_epochs=1,
            arima_days=3,
        )


@dataclass
class ModelScore:
    """Backtest errors (original scale) and timings of one model."""

    name: str
    rmse_cell: float | None
    mae_cell: float | None
    rmse_total: float
    mae_total: float
    fit_s: float
    predict_s: float
    rmse_cell_by_step: np.ndarray | None = None


@dataclass
class DemoResult:
    """What the demo measured and wrote."""

    scores: list[ModelScore]
    onnx_max_abs_diff: float | None
    onnx_error: str | None
    files: dict[str, Path] = field(default_factory=dict)
    wall_s: float = 0.0
    cpu_s: float = 0.0

    def table(self) -> str:
        """The backtest table in Markdown."""
        lines = [
            "| model | RMSE per cell | MAE per cell | RMSE total flow | MAE total flow | fit (s) "
            "| predict (s) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]

        def fmt(x: float | None, digits: int = 3) -> str:
            return "n/a" if x is None else f"{x:.{digits}f}"

        for s in self.scores:
            lines.append(
                f"| {s.name} | {fmt(s.rmse_cell)} | {fmt(s.mae_cell)} | {fmt(s.rmse_total, 1)} | "
                f"{fmt(s.mae_total, 1)} | {s.fit_s:.1f} | {s.predict_s:.1f} |"
            )
        return "\n".join(lines)


class _Skipped(Exception):
    """The ONNX step was not asked for."""


def _header(step: int, text: str) -> None:
    print(f"\n=== [{step}/5] {text} ===", flush=True)


def _trainer_kwargs(progress: bool) -> dict:
    return {"accelerator": "cpu", "enable_progress_bar": progress, "enable_model_summary": False}


def _score_grid_model(
    name: str, forecasts: list[TimeSeries], series: TimeSeries, fit_s: float, predict_s: float
) -> ModelScore:
    pred, true = forecast_windows(forecasts, series)
    # Total flow: the sum over every cell and channel of each forecast step.
    pred_total, true_total = pred.sum(axis=2), true.sum(axis=2)
    return ModelScore(
        name,
        rmse(pred, true),
        mae(pred, true),
        rmse(pred_total, true_total),
        mae(pred_total, true_total),
        fit_s,
        predict_s,
        rmse_by_step(pred, true),
    )


def _daily_fourier(index: pd.DatetimeIndex, harmonics: int = 3) -> TimeSeries:
    """Sine / cosine of the time of day: lets ARIMA follow the daily cycle of the flows."""
    hours = index.hour.to_numpy() + index.minute.to_numpy() / 60.0
    cols, names = [], []
    for k in range(1, harmonics + 1):
        angle = 2 * np.pi * k * hours / 24.0
        cols += [np.sin(angle), np.cos(angle)]
        names += [f"sin{k}", f"cos{k}"]
    return TimeSeries.from_times_and_values(index, np.stack(cols, axis=1), columns=names)


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run_demo(
    out: str | os.PathLike = "demo_output",
    epochs: int | None = None,
    quick: bool = False,
    seed: int = 0,
    config: DemoConfig | None = None,
    onnx: bool = True,
) -> DemoResult:
    """Run the whole demo and write its pictures and ``results.md`` to ``out``.

    Parameters
    ----------
    out
        Output directory (created). The MIM model's Lightning work directory is ``out/work``.
    epochs
        Epochs of the MIM model (overrides the configuration's).
    quick
        Tiny models and little data: finishes in seconds. Used by the tests.
    seed
        Random state of the neural models.
    config
        Explicit sizes; default :meth:`DemoConfig.quick` or ``DemoConfig()``.
    onnx
        Run step 4 (ONNX export and serving). The export traces the whole recurrent loop and takes
        tens of seconds even for a tiny model.

    Returns
    -------
    DemoResult
        The scores, the ONNX check and the files written.
    """
    from darts_mim.resources import torch_threads  # here: torch, so `darts-mim --help` stays fast

    started, cpu_started = time.perf_counter(), time.process_time()
    # The grid is small (14 x 8): each convolution is tiny, and intra-op threads cost more in
    # synchronisation than they gain, most of all on a small machine shared with other work
    # (resources.default_threads: one thread unless OMP_NUM_THREADS says otherwise).
    with torch_threads(), quiet_logs():  # the same quiet output from Python as from the command
        return _run(out, epochs, quick, seed, config, onnx, started, cpu_started)


def _run(
    out: str | os.PathLike,
    epochs: int | None,
    quick: bool,
    seed: int,
    config: DemoConfig | None,
    onnx: bool,
    started: float,
    cpu_started: float,
) -> DemoResult:
    from darts.dataprocessing.transformers import Scaler
    from darts.models import ARIMA, NaiveSeasonal, TCNModel

    from darts_mim.config import TrainingRecipe
    from darts_mim.model import MIMModel

    cfg = config or (DemoConfig.quick() if quick else DemoConfig())
    if epochs is not None:
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}.")
        cfg = replace(cfg, mim_epochs=int(epochs))
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir = out_dir / "work"

    # ------------------------------------------------------------------ 1. data
    _header(1, "Data: NYC Citi Bike inflow/outflow, 2 x 14 x 8 grid, 30-minute steps")
    flows = load_bike_flows().series
    n_test = int(round(cfg.test_days * STEPS_PER_DAY))
    n_test -= n_test % OUTPUT_STEPS
    n_train = int(round(cfg.train_days * STEPS_PER_DAY))
    series = flows[-(n_train + n_test) :]
    train = series[:-n_test]
    test_start = len(series) - n_test
    print(
        f"{len(flows)} steps in total; training on the {len(train)} steps ({len(train) / 48:.1f} days) "
        f"before the last {n_test} ({n_test / 48:.2f} days), which are backtested: "
        f"{INPUT_STEPS} steps in, {OUTPUT_STEPS} out, a new forecast every {OUTPUT_STEPS} steps."
    )
    scaler = Scaler()  # min-max per component, fitted on the training part only
    train_s = scaler.fit_transform(train)
    series_s = scaler.transform(series)

    def backtest(model, target: TimeSeries, **kw) -> list[TimeSeries]:
        return model.historical_forecasts(
            target,
            start=test_start,
            forecast_horizon=OUTPUT_STEPS,
            stride=OUTPUT_STEPS,
            retrain=False,
            last_points_only=False,
            verbose=False,
            **kw,
        )

    # ------------------------------------------------------------------ 2. MIM
    _header(2, f"Fit MIMModel (num_hidden={cfg.mim_hidden}, {cfg.mim_epochs} epoch(s))")
    mim = MIMModel(
        input_chunk_length=INPUT_STEPS,
        output_chunk_length=OUTPUT_STEPS,
        num_hidden=cfg.mim_hidden,
        filter_size=3,
        n_epochs=cfg.mim_epochs,
        batch_size=cfg.batch_size,
        optimizer_kwargs={"lr": 2e-3},
        training_recipe=TrainingRecipe(
            sampling_decay_steps=max(1, cfg.mim_epochs * len(train) // cfg.batch_size // 2)
        ),
        random_state=seed,
        model_name="mim_demo",
        work_dir=str(work_dir),
        force_reset=True,
        pl_trainer_kwargs=_trainer_kwargs(progress=True),
    )
    _, mim_fit = _timed(lambda: mim.fit(train_s))
    print(f"fitted in {mim_fit:.1f} s")

    # ------------------------------------------------------------------ 3. backtest
    _header(3, f"Backtest on the last {n_test} steps against baselines")
    scores: list[ModelScore] = []
    mim_fc_s, mim_pred = _timed(lambda: backtest(mim, series_s))
    mim_fc = [scaler.inverse_transform(f) for f in mim_fc_s]
    scores.append(_score_grid_model("MIM", mim_fc, series, mim_fit, mim_pred))
    print(f"MIM: {len(mim_fc)} forecasts in {mim_pred:.1f} s")

    naive = NaiveSeasonal(K=STEPS_PER_DAY)
    naive_fc, naive_pred = _timed(
        lambda: naive.historical_forecasts(
            series,
            start=test_start,
            forecast_horizon=OUTPUT_STEPS,
            stride=OUTPUT_STEPS,
            retrain=True,
            last_points_only=False,
            train_length=STEPS_PER_DAY,  # it only needs the last day
            verbose=False,
        )
    )
    # NaiveSeasonal is "fitted" at every window (it just remembers the last day): all its time is here.
    scores.append(_score_grid_model("seasonal naive (1 day)", naive_fc, series, 0.0, naive_pred))
    print(f"seasonal naive: {len(naive_fc)} forecasts in {naive_pred:.1f} s")

    print(f"TCNModel on the flattened grid ({series.n_components} components):")
    tcn = TCNModel(
        input_chunk_length=INPUT_STEPS,
        output_chunk_length=OUTPUT_STEPS,
        kernel_size=3,
        num_filters=cfg.tcn_filters,
        dilation_base=2,
        dropout=0.0,
        n_epochs=cfg.tcn_epochs,
        batch_size=cfg.batch_size,
        random_state=seed,
        model_name="tcn_demo",
        work_dir=str(work_dir),
        force_reset=True,
        pl_trainer_kwargs=_trainer_kwargs(progress=True),
    )
    _, tcn_fit = _timed(lambda: tcn.fit(train_s))
    tcn_fc_s, tcn_pred = _timed(lambda: backtest(tcn, series_s))
    tcn_fc = [scaler.inverse_transform(f) for f in tcn_fc_s]
    scores.append(_score_grid_model("TCN", tcn_fc, series, tcn_fit, tcn_pred))
    print(f"TCN fitted in {tcn_fit:.1f} s, {len(tcn_fc)} forecasts in {tcn_pred:.1f} s")

    print(
        "ARIMA(2,0,1) with daily Fourier terms on the total flow (sum of all cells, both channels):"
    )
    total = TimeSeries.from_times_and_values(
        series.time_index, series.values().sum(axis=1, dtype=np.float64), columns=["total_flow"]
    )
    fourier = _daily_fourier(
        pd.date_range(series.start_time(), periods=len(series) + OUTPUT_STEPS, freq=series.freq)
    )
    n_arima = min(len(train), int(round(cfg.arima_days * STEPS_PER_DAY)))
    arima = ARIMA(p=2, d=0, q=1)
    _, arima_fit = _timed(
        lambda: arima.fit(total[:test_start][-n_arima:], future_covariates=fourier)
    )
    arima_fc, arima_pred = _timed(lambda: backtest(arima, total, future_covariates=fourier))
    pred, true = forecast_windows(arima_fc, total)
    scores.append(
        ModelScore(
            "ARIMA (total flow only)",
            None,
            None,
            rmse(pred, true),
            mae(pred, true),
            arima_fit,
            arima_pred,
        )
    )
    print(f"ARIMA fitted in {arima_fit:.1f} s, {len(arima_fc)} forecasts in {arima_pred:.1f} s")

    result = DemoResult(scores=scores, onnx_max_abs_diff=None, onnx_error=None)
    print()
    print("Errors on the original scale (bikes per cell and 30 minutes; total flow = sum of all")
    print("224 cell-channels, the grid models' forecasts summed the same way):")
    print(result.table())

    # ------------------------------------------------------------------ 4. ONNX
    _header(4, "Export to ONNX and serve the next forecast with OnnxForecaster")
    next_torch = scaler.inverse_transform(mim.predict(OUTPUT_STEPS, series=series_s, verbose=False))
    onnx_path = out_dir / "mim_demo.onnx"
    try:
        if not onnx:
            raise _Skipped("skipped (--skip-onnx)")
        from darts_mim.onnx.runtime import OnnxForecaster

        exported, export_s = _timed(lambda: mim.to_onnx(str(onnx_path)))
        forecaster = OnnxForecaster(str(exported))
        next_onnx_s, onnx_s = _timed(lambda: forecaster.predict(OUTPUT_STEPS, series=series_s))
        next_onnx = scaler.inverse_transform(next_onnx_s)
        diff = np.abs(next_onnx.values() - next_torch.values())
        result.onnx_max_abs_diff = float(np.nanmax(diff))
        print(
            f"exported {exported} in {export_s:.1f} s; ONNX forecast of {OUTPUT_STEPS} steps after "
            f"{series.end_time()} in {onnx_s * 1000:.0f} ms"
        )
        print(
            f"max |ONNX - torch| = {result.onnx_max_abs_diff:.2e} bikes "
            f"(forecast values up to {np.abs(next_torch.values()).max():.1f})"
        )
    except _Skipped as why:
        result.onnx_error = str(why)
        print(f"ONNX step {why}")
    except Exception as err:  # the demo goes on: the backtest results stand without ONNX
        result.onnx_error = f"{type(err).__name__}: {err}"
        print(f"ONNX step FAILED, continuing without it: {result.onnx_error}")
        if os.environ.get("DARTS_MIM_DEBUG"):
            traceback.print_exc()

    # ------------------------------------------------------------------ 5. pictures
    _header(5, f"Pictures and results in {out_dir}")
    last = mim_fc[-1]
    true_frames = series_to_grid(series.slice_intersect(last))
    result.files["frames"] = out_dir / "frames_true_vs_forecast.png"
    plot_frames(
        true_frames,
        series_to_grid(last),
        channel=0,
        path=result.files["frames"],
        title=f"Inflow, MIM forecast from {last.start_time():%Y-%m-%d %H:%M} (bikes / 30 min)",
    )
    result.files["errors"] = out_dir / "error_by_horizon.png"
    plot_error_by_horizon(
        {s.name: s.rmse_cell_by_step for s in scores if s.rmse_cell_by_step is not None},
        path=result.files["errors"],
        metric="RMSE per cell (bikes / 30 min)",
        title=f"Backtest error by horizon, last {n_test} steps",
    )
    busiest = int(np.argmax(train.values().mean(axis=0)))
    component = series.components[busiest]
    result.files["cell"] = out_dir / "cell_series.png"
    plot_cell_series(
        series[max(0, test_start - STEPS_PER_DAY) : test_start],  # the day before the test
        mim_fc,
        component,
        path=result.files["cell"],
        truth=series[test_start:],
        title=f"Busiest cell {component}: MIM backtest forecasts vs observed",
        ylabel=f"{component.rsplit('_', 2)[0]} (bikes / 30 min)",
    )
    result.wall_s = time.perf_counter() - started
    result.cpu_s = time.process_time() - cpu_started
    result.files["results"] = out_dir / "results.md"
    result.files["results"].write_text(_results_markdown(result, cfg, len(train), n_test))
    for path in result.files.values():
        print(f"wrote {path}")
    print(f"\nDemo finished in {result.wall_s:.0f} s ({result.cpu_s:.0f} s of CPU time).")
    return result


def _results_markdown(result: DemoResult, cfg: DemoConfig, n_train: int, n_test: int) -> str:
    if result.onnx_error is not None and result.onnx_error.startswith("skipped"):
        onnx = "ONNX export and serving were skipped (`--skip-onnx`)."
    elif result.onnx_error is not None:
        onnx = f"ONNX export/serving failed: `{result.onnx_error}`."
    elif result.onnx_max_abs_diff is None:
        onnx = "ONNX step not run."
    else:
        onnx = (
            f"The next {OUTPUT_STEPS} steps after the data, served by `OnnxForecaster`, differ from "
            f"`MIMModel.predict` by at most {result.onnx_max_abs_diff:.2e} bikes."
        )
    finite = [s for s in result.scores if s.rmse_cell is not None]
    best = min(finite, key=lambda s: s.rmse_cell).name if finite else "n/a"
    return f"""# darts-mim demo: NYC Citi Bike flows

Data: inflow and outflow on a 14 x 8 grid (224 components), 30-minute steps. Trained on {n_train}
steps ({n_train / 48:.1f} days), backtested on the last {n_test} steps ({n_test / 48:.2f} days) with
`historical_forecasts(retrain=False, forecast_horizon={OUTPUT_STEPS}, stride={OUTPUT_STEPS},
last_points_only=False)`: {INPUT_STEPS} steps in, {OUTPUT_STEPS} out.

The neural models are trained on data min-max scaled per component (Darts `Scaler`, fitted on the
training part only); all errors are on the original scale. "Per cell" errors are over every cell,
channel, window and horizon step (bikes per cell and 30 minutes). "Total flow" is the sum over all
224 cell-channels: ARIMA is fitted on it directly (with daily Fourier terms as future covariates),
the grid models' forecasts are summed the same way. Seasonal naive repeats the same half-hour of the
previous day (`NaiveSeasonal(K=48)`).

{result.table()}

Lowest per-cell RMSE: {best}.

MIM: num_hidden={cfg.mim_hidden}, filter_size=3, {cfg.mim_epochs} epoch(s). TCN: {cfg.tcn_filters}
filters, {cfg.tcn_epochs} epoch(s).

{onnx}

Whole demo: {result.wall_s:.0f} s wall time, {result.cpu_s:.0f} s of CPU time (a wall time much
longer than the CPU time means the machine was busy with other work).

Pictures: `frames_true_vs_forecast.png` (last backtest window, inflow), `error_by_horizon.png`,
`cell_series.png` (the busiest cell).
"""
