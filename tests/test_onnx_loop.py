"""The looped ONNX export (issue 14): one recurrent step traced once and run by ONNX ``Loop`` nodes,
checked against torch at export; its fallback; the int8 graph; IO binding on the CPU.

Each model is tiny and fitted for one epoch; each export takes about a second.
"""

from __future__ import annotations

import copy
import json
import os
import warnings

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
from conftest import tiny_kwargs
from darts import TimeSeries

from darts_mim import MIMModel, grid_to_series
from darts_mim.onnx import export as onnx_export
from darts_mim.onnx.runtime import OnnxForecaster

TOL = 1e-4


def _hourly(n: int, columns: int, seed: int) -> TimeSeries:
    rng = np.random.default_rng(seed)
    return TimeSeries.from_times_and_values(
        pd.date_range("2024-01-01", periods=n, freq="h"),
        (rng.random((n, columns)) * 5).astype("float32"),
        columns=[f"x{i}" for i in range(columns)],
    )


def _grid(n: int, seed: int) -> TimeSeries:
    rng = np.random.default_rng(seed)
    times = pd.date_range("2024-01-01", periods=n, freq="30min")
    return grid_to_series(rng.random((n, 2, 4, 4)).astype("float32"), times, ["in", "out"])


def _loops(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type == "Loop"]


def _ops(graph: onnx.GraphProto) -> set[str]:
    ops = set()
    for node in graph.node:
        ops.add(node.op_type)
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                ops |= _ops(attr.g)
    return ops


CASES = {
    # name: (series maker, model kwargs)
    "grid, patch 2": (lambda: _grid(60, 0), dict(patch_size=2, naive_anchor=False)),
    "widths differ, anchor lag 2": (
        lambda: _hourly(60, 3, 1),
        dict(filter_size=1, num_hidden=(4, 6), naive_anchor=2, fold_period=None),
    ),
    "stlstm, difference, no layer norm": (
        lambda: _hourly(60, 2, 2),
        dict(
            filter_size=1,
            cell_type="stlstm",
            diff_mode="difference",
            layer_norm=False,
            fold_period=None,
        ),
    ),
    "channel independent": (
        lambda: _hourly(60, 3, 3),
        dict(filter_size=1, channel_independent=True, fold_period=None),
    ),
    "folded, period 2": (
        lambda: _hourly(80, 2, 4),
        dict(filter_size=1, fold_period=2, input_chunk_length=4, output_chunk_length=3),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_looped_export_matches_torch(case, tmp_path):
    make_series, kwargs = CASES[case]
    series = make_series()
    kwargs = {"input_chunk_length": 3, "output_chunk_length": 2, **kwargs}
    model = MIMModel(**tiny_kwargs(tmp_path, **kwargs)).fit(series)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback to the unrolled export
        path = model.to_onnx(str(tmp_path / "m.onnx"))
    forecaster = OnnxForecaster(path)
    bound = OnnxForecaster(path, io_binding=True)  # the CUDA code path, on the CPU
    assert forecaster.metadata["export_method"] == "loop"
    ocl = kwargs["output_chunk_length"]
    for n in (1, ocl, 2 * ocl + 1):  # the last one autoregressive: several calls of the graph
        expected = model.predict(n, series, verbose=False)
        got = forecaster.predict(n, series)
        np.testing.assert_allclose(got.values(), expected.values(), atol=TOL, rtol=0)
        np.testing.assert_array_equal(bound.predict(n, series).values(), got.values())


def test_file_size_does_not_grow_with_the_sequence_lengths(tmp_path):
    series = _hourly(120, 2, 5)
    sizes, loops = {}, {}
    for icl, ocl in ((3, 2), (24, 12)):
        kwargs = dict(input_chunk_length=icl, output_chunk_length=ocl, filter_size=1)
        model = MIMModel(**tiny_kwargs(tmp_path, fold_period=None, **kwargs)).fit(series)
        path = model.to_onnx(str(tmp_path / f"m{icl}.onnx"))
        sizes[icl] = os.path.getsize(path)
        proto = onnx.load(path)
        loops[icl] = [
            int(onnx.numpy_helper.to_array(i))
            for i in proto.graph.initializer
            if i.name.endswith("trip_count")
        ]
    # 8x the steps, the same graph: only the loops' trip counts differ
    assert abs(sizes[24] - sizes[3]) < 0.02 * sizes[3]
    assert sorted(loops[3]) == [1, 2] and sorted(loops[24]) == [11, 23]


def test_every_weight_is_stored_at_most_once_per_graph(tmp_path):
    model = MIMModel(**tiny_kwargs(tmp_path, input_chunk_length=3, output_chunk_length=2))
    model.fit(_grid(60, 6))
    proto = onnx.load(model.to_onnx(str(tmp_path / "m.onnx")))
    loops = _loops(proto)
    assert len(loops) == 2
    weights = sum(p.numel() for p in model.model.parameters())
    graphs = [proto.graph] + [onnx.helper.get_attribute_value(n.attribute[0]) for n in loops]
    stored = sum(int(np.prod(i.dims)) for g in graphs for i in g.initializer)
    # each Loop body keeps its step's weights (ONNX Runtime optimises a body's convolutions only
    # with their weights its own: _loop.splice); the outer graph keeps what it uses:
    # at most three copies, plus the graph's few small constants (norm statistics of zero states...)
    assert weights <= stored < 3.2 * weights


@pytest.mark.slow  # the unrolled dynamo export takes 20 s even for a tiny model
def test_a_graph_that_differs_from_torch_falls_back_to_the_unrolled_export(tmp_path, monkeypatch):
    model = MIMModel(**tiny_kwargs(tmp_path, input_chunk_length=3, output_chunk_length=2))
    series = _hourly(60, 2, 7)
    model.fit(series)
    checked = []

    def wrong(proto, *args, **kwargs):
        checked.append(proto)
        return "a planted difference"

    monkeypatch.setattr(onnx_export, "_parity_problem", wrong)
    called = []
    real_export = onnx_export._torch_export

    def unrolled(*args, **kwargs):
        called.append(True)
        return real_export(*args, **kwargs)

    monkeypatch.setattr(onnx_export, "_torch_export", unrolled)
    with pytest.warns(UserWarning, match="a planted difference.*unrolled"):
        path = model.to_onnx(str(tmp_path / "m.onnx"))
    assert checked and called
    forecaster = OnnxForecaster(path)
    assert forecaster.metadata["export_method"] == "unrolled"
    expected = model.predict(2, series, verbose=False)
    np.testing.assert_allclose(forecaster.predict(2, series).values(), expected.values(), atol=TOL)


def test_the_parity_check_catches_a_baked_batch_size(tmp_path):
    """A graph that only runs at the example batch size is reported, not written."""
    model = MIMModel(**tiny_kwargs(tmp_path, input_chunk_length=3, output_chunk_length=2))
    model.fit(_hourly(60, 2, 8))
    module = copy.deepcopy(model.model.float().eval())
    graph = onnx_export._ForecastGraph(module, ["past_target"]).eval()
    inputs = onnx_export._example_inputs(module, torch.float32, batch=2)
    with torch.no_grad():
        proto = onnx_export._loop_export(
            copy.deepcopy(module), inputs, None, onnx.TensorProto.FLOAT
        )
        assert onnx_export._parity_problem(proto, graph, module, torch.float32) is None
        # fix the output's batch axis to 2 with a Reshape: batch sizes 1 and 3 now fail
        out = proto.graph.output[0].name
        for node in proto.graph.node:
            node.output[:] = [out + "_free" if o == out else o for o in node.output]
        shape = onnx.helper.make_tensor("baked", onnx.TensorProto.INT64, [4], [2, 2, -1, 1])
        proto.graph.initializer.append(shape)
        proto.graph.node.append(onnx.helper.make_node("Reshape", [out + "_free", "baked"], [out]))
        problem = onnx_export._parity_problem(proto, graph, module, torch.float32)
    assert problem is not None and "batch size" in problem


# ---------------------------------------------------------------------- int8
def test_int8_graph_is_close_and_reports_its_error(tmp_path):
    series = _grid(120, 9)
    model = MIMModel(**tiny_kwargs(tmp_path, input_chunk_length=3, output_chunk_length=2))
    model.fit(series[:80])
    path = model.to_onnx(str(tmp_path / "m8.onnx"), int8_calibration=series[:80])
    proto = onnx.load(path)
    assert {"QuantizeLinear", "DequantizeLinear"} <= _ops(proto.graph)
    forecaster = OnnxForecaster(path)
    quantization = forecaster.metadata["quantization"]
    assert quantization["calibration_windows"] > 1
    assert 0 < quantization["relative_rmse"] < 0.05
    assert forecaster.session.get_inputs()[0].type == "tensor(float)"
    expected = model.predict(2, series, verbose=False).values()
    got = forecaster.predict(2, series).values()
    assert np.abs(got - expected).max() < 0.1 * np.abs(expected).max()
    assert not np.allclose(got, expected, atol=1e-6)  # really quantized


def test_int8_refusals(tmp_path):
    series = _hourly(60, 2, 10)
    model = MIMModel(**tiny_kwargs(tmp_path, input_chunk_length=3, output_chunk_length=2))
    model.fit(series, future_covariates=_hourly(80, 1, 11))
    with pytest.raises(ValueError, match="exclude each other"):
        model.to_onnx(str(tmp_path / "x.onnx"), fp16=True, int8_calibration=series)
    with pytest.raises(ValueError, match="dict of arrays") as err:
        model.to_onnx(str(tmp_path / "x.onnx"), int8_calibration=series)
    # the graph's shapes, which are not predict_array's (it pointed there)
    shapes = (
        "past_target (B, 3, 2), historic_future_covariates (B, 3, 1), future_covariates (B, 2, 1)"
    )
    assert shapes in str(err.value)
    with pytest.raises(ValueError, match="lacks the graph inputs"):
        model.to_onnx(str(tmp_path / "x.onnx"), int8_calibration={"past_target": np.zeros(1)})


def test_int8_calibration_of_a_model_with_future_covariates(tmp_path):
    """The dict the ONNX guide describes: the future covariates split at the forecast's start; one
    array over the input window and the horizon (predict_array's) is refused with the shape."""
    series, future = _hourly(60, 2, 10), _hourly(80, 1, 11)
    model = MIMModel(**tiny_kwargs(tmp_path, input_chunk_length=3, output_chunk_length=2))
    model.fit(series, future_covariates=future)
    target, cov = series.values(), future.values()
    ends = range(3, 40, 9)
    calibration = {
        "past_target": np.stack([target[e - 3 : e] for e in ends]),
        "historic_future_covariates": np.stack([cov[e - 3 : e] for e in ends]),
        "future_covariates": np.stack([cov[e : e + 2] for e in ends]),
    }
    whole = {**calibration, "future_covariates": np.stack([cov[e - 3 : e + 2] for e in ends])}
    message = (
        r"`int8_calibration\['future_covariates'\]` has the shape \(5, 5, 1\); "
        r"the graph takes \(B, 2, 1\)"
    )
    with pytest.raises(ValueError, match=message):
        model.to_onnx(str(tmp_path / "x.onnx"), int8_calibration=whole)
    forecaster = OnnxForecaster(
        model.to_onnx(str(tmp_path / "m8.onnx"), int8_calibration=calibration)
    )
    assert forecaster.metadata["quantization"]["calibration_windows"] == len(ends)
    expected = model.predict(2, series, future_covariates=future, verbose=False).values()
    got = forecaster.predict(2, series, future_covariates=future).values()
    assert np.abs(got - expected).max() < 0.1 * np.abs(expected).max()


def test_fp16_graph_is_looped_and_close_on_the_cpu(tmp_path):
    series = _grid(60, 12)
    model = MIMModel(**tiny_kwargs(tmp_path, input_chunk_length=3, output_chunk_length=2))
    model.fit(series)
    half = OnnxForecaster(model.to_onnx(str(tmp_path / "half.onnx"), fp16=True))
    assert half.metadata["export_method"] == "loop"
    assert half.session.get_inputs()[0].type == "tensor(float16)"
    expected = model.predict(5, series, verbose=False).values()  # autoregressive too
    got = half.predict(5, series).values()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-2 * max(1.0, np.abs(expected).max()))


def test_export_metadata_is_json(tmp_path):
    model = MIMModel(**tiny_kwargs(tmp_path, input_chunk_length=3, output_chunk_length=2))
    model.fit(_hourly(60, 2, 13))
    proto = onnx.load(model.to_onnx(str(tmp_path / "m.onnx")))
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["darts_mim.export_method"]) == "loop"


def test_unrolled_graph_has_no_loop_and_matches_torch(tmp_path):
    """``unroll=True`` (for CUDA graphs): the looped graph's steps copied out, same forecasts."""
    series = _grid(60, 14)
    model = MIMModel(**tiny_kwargs(tmp_path, input_chunk_length=3, output_chunk_length=2))
    model.fit(series)
    path = model.to_onnx(str(tmp_path / "flat.onnx"), unroll=True)
    proto = onnx.load(path)
    assert "Loop" not in _ops(proto.graph)
    forecaster = OnnxForecaster(path)
    assert forecaster.metadata["export_method"] == "loop, unrolled"
    for n in (2, 5):
        expected = model.predict(n, series, verbose=False).values()
        np.testing.assert_allclose(forecaster.predict(n, series).values(), expected, atol=TOL)
