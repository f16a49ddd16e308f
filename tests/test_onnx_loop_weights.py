"""The looped graph's weight layout (issue 27, float32 at large batches): each ``Loop`` body keeps
its step's weights, so that ONNX Runtime optimises the convolutions inside the loops (pre-packed
weights, the blocked NCHWc layout on x86), which it does not for weights from an outer scope.

Each model is tiny and fitted for one epoch; each export takes about a second.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from conftest import tiny_kwargs

from darts_mim import MIMModel, grid_to_series
from darts_mim.onnx.runtime import OnnxForecaster

TOL = 1e-4
NCHWC = "com.microsoft.nchwc"


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("weights")
    rng = np.random.default_rng(0)
    times = pd.date_range("2024-01-01", periods=60, freq="30min")
    series = grid_to_series(rng.random((60, 2, 4, 4)).astype("float32"), times, ["in", "out"])
    model = MIMModel(**tiny_kwargs(tmp_path, input_chunk_length=3, output_chunk_length=2))
    model.fit(series)
    return model, series, tmp_path


def _bodies(graph: onnx.GraphProto) -> list[onnx.GraphProto]:
    return [
        onnx.helper.get_attribute_value(a)
        for n in graph.node
        if n.op_type == "Loop"
        for a in n.attribute
        if a.name == "body"
    ]


def _optimised(path: str, tmp_path) -> onnx.ModelProto:
    """The graph as ONNX Runtime's CPU provider runs it (all optimisations, one thread)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return onnx.load(options.optimized_model_filepath)


def _domains(graph: onnx.GraphProto) -> set[str]:
    return {n.domain for n in graph.node}


def test_each_loop_body_owns_its_convolution_weights(fitted):
    model, _, tmp_path = fitted
    proto = onnx.load(model.to_onnx(str(tmp_path / "m.onnx")))
    bodies = _bodies(proto.graph)
    assert len(bodies) == 2
    for body in bodies:
        own = {i.name for i in body.initializer}
        convs = [n for n in body.node if n.op_type == "Conv"]
        assert convs
        for conv in convs:
            assert set(conv.input[1:]) <= own, conv.name


def test_onnx_runtime_optimises_the_convolutions_inside_the_loops(fitted):
    """With the weights in the bodies the CPU provider converts the bodies' convolutions to NCHWc;
    with the weights in the outer graph (``compact=True``, 0.7's layout) it does not."""
    model, _, tmp_path = fitted
    optimised = _optimised(model.to_onnx(str(tmp_path / "in.onnx")), tmp_path)
    if NCHWC not in _domains(optimised.graph):
        pytest.skip("ONNX Runtime has no NCHWc kernels on this CPU")
    assert all(NCHWC in _domains(body) for body in _bodies(optimised.graph))

    outside = _optimised(model.to_onnx(str(tmp_path / "out.onnx"), compact=True), tmp_path)
    assert not any(NCHWC in _domains(body) for body in _bodies(outside.graph))


def test_both_layouts_forecast_alike(fitted):
    model, series, tmp_path = fitted
    inside = OnnxForecaster(model.to_onnx(str(tmp_path / "a.onnx")))
    outside = OnnxForecaster(model.to_onnx(str(tmp_path / "b.onnx"), compact=True))
    many = [series[: len(series) - k] for k in range(5)]
    for n in (2, 5):  # one chunk, then autoregressive
        expected = np.stack([f.values() for f in model.predict(n, many, verbose=False)])
        for forecaster in (inside, outside):
            got = np.stack([f.values() for f in forecaster.predict(n, many)])
            np.testing.assert_allclose(got, expected, atol=TOL, rtol=0)


def test_the_unrolled_graph_stores_each_weight_once(fitted):
    model, _, tmp_path = fitted
    proto = onnx.load(model.to_onnx(str(tmp_path / "flat.onnx"), unroll=True))
    assert not _bodies(proto.graph)
    weights = sum(p.numel() for p in model.model.parameters())
    stored = sum(int(np.prod(i.dims)) for i in proto.graph.initializer)
    assert weights <= stored < 1.2 * weights


def test_compact_stores_each_weight_once(fitted):
    model, _, tmp_path = fitted
    proto = onnx.load(model.to_onnx(str(tmp_path / "compact.onnx"), compact=True))
    bodies = _bodies(proto.graph)
    assert len(bodies) == 2 and not any(body.initializer for body in bodies)
    weights = sum(p.numel() for p in model.model.parameters())
    stored = sum(int(np.prod(i.dims)) for i in proto.graph.initializer)
    assert weights <= stored < 1.2 * weights
