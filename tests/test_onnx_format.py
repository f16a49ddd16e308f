"""The darts-mim ONNX metadata schema (:mod:`darts_mim.onnx.format`): written and read in one place.

No model is trained here: :func:`darts_mim_file` writes a small darts-mim file by hand (a persistence
forecast), which the runtime serves like an exported one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import onnx
import pandas as pd
import pytest
from darts import TimeSeries

import darts_mim.onnx.export as export
import darts_mim.onnx.format as fmt
import darts_mim.onnx.runtime as runtime
from darts_mim import grid_to_series
from darts_mim.grid import GridSpec
from darts_mim.onnx.runtime import OnnxForecaster

GRID = GridSpec(("rain", "wind"), 1, 3, dims=("lat", "lon"), coords=((50.5,), (4.0, 4.5, 5.0)))


def _meta(**overrides) -> dict:
    """The metadata of a 2-step persistence model on :data:`GRID`."""
    meta = dict(
        version="test",
        grid=GRID,
        components=GRID.component_names(),
        input_chunk_length=2,
        output_chunk_length=2,
        output_chunk_shift=0,
        inputs=["past_target"],
        past_covariates=None,
        future_covariates=None,
        static_covariates=None,
        likelihood=None,
        nr_params=1,
        freq="h",
        dtype="float32",
        training_dtype="float32",
        missing_components=[],
    )
    meta.update(overrides)
    return meta


def darts_mim_file(path, edit: Callable[[dict[str, str]], None] | None = None, **overrides) -> str:
    """Write a darts-mim ONNX file whose graph repeats its input window (``prediction`` =
    ``past_target`` with a parameter axis), with :func:`_meta` metadata.

    Parameters
    ----------
    path
        Where to write it.
    edit
        Changes the metadata props in place before they are written (to corrupt them).
    overrides
        Metadata entries to change.
    """
    d = GRID.n_components
    x = onnx.helper.make_tensor_value_info("past_target", onnx.TensorProto.FLOAT, ["b", 2, d])
    y = onnx.helper.make_tensor_value_info("prediction", onnx.TensorProto.FLOAT, ["b", 2, d, 1])
    axes = onnx.helper.make_tensor("axes", onnx.TensorProto.INT64, [1], [3])
    node = onnx.helper.make_node("Unsqueeze", ["past_target", "axes"], ["prediction"])
    graph = onnx.helper.make_graph([node], "persistence", [x], [y], initializer=[axes])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    model.ir_version = 8
    props = fmt.metadata_props(_meta(**overrides))
    if edit is not None:
        edit(props)
    onnx.helper.set_model_props(model, props)
    onnx.save(model, str(path))
    return str(path)


def test_round_trip_keeps_the_grid_with_its_coordinates():
    props = fmt.metadata_props(_meta())
    assert all(key.startswith("darts_mim.") for key in props)
    assert json.loads(props["darts_mim.grid"]) == GRID.to_metadata()
    meta = fmt.read_metadata(props, "f.onnx", ["past_target"])
    assert meta["format_version"] == fmt.FORMAT_VERSION
    assert meta["grid"] == GRID
    assert (meta["grid"].dims, meta["grid"].coords) == (GRID.dims, GRID.coords)
    assert {k: v for k, v in meta.items() if k not in ("grid", "format_version")} == {
        k: v for k, v in _meta().items() if k != "grid"
    }


def test_the_runtime_serves_a_file_written_with_the_schema(tmp_path):
    forecaster = OnnxForecaster(darts_mim_file(tmp_path / "p.onnx"))
    assert forecaster.grid == GRID and forecaster.grid.coords == GRID.coords
    values = np.arange(5 * 6, dtype=np.float32).reshape(5, 2, 1, 3)
    series = grid_to_series(values, pd.date_range("2024", periods=5, freq="h"), GRID.channels)
    forecast = forecaster.predict(2, series)
    np.testing.assert_array_equal(forecast.values(), series.values()[-2:])
    assert forecast.start_time() == series.end_time() + pd.Timedelta("1h")


def _drop(key: str) -> Callable[[dict[str, str]], None]:
    return lambda props: props.pop(fmt.METADATA_PREFIX + key)


def _set(key: str, text: str) -> Callable[[dict[str, str]], None]:
    return lambda props: props.update({fmt.METADATA_PREFIX + key: text})


@pytest.mark.parametrize(
    ("edit", "graph_inputs", "pattern"),
    [
        (_drop("format_version"), None, "not written by darts-mim"),
        (_set("likelihood", "{not json"), None, "corrupt darts-mim metadata"),
        (_set("format_version", '"1"'), None, "format_version '1' is not an integer"),
        (_set("format_version", "99"), None, "format 99, newer than this runtime's 1; upgrade"),
        (_drop("nr_params"), None, r"lacks darts-mim metadata entries \['nr_params'\]"),
        (_set("grid", '{"channels": ["a"]}'), None, "corrupt darts-mim metadata: its grid"),
        (None, ["past_target", "past_covariates"], "differ from its metadata's"),
    ],
)
def test_read_errors(edit, graph_inputs, pattern):
    props = fmt.metadata_props(_meta())
    if edit is not None:
        edit(props)
    with pytest.raises(ValueError, match=pattern):
        fmt.read_metadata(props, "f.onnx", graph_inputs)


def test_the_runtime_reports_a_newer_file(tmp_path):
    path = darts_mim_file(tmp_path / "new.onnx", edit=_set("format_version", "2"))
    with pytest.raises(ValueError, match="newer than this runtime's 1; upgrade darts-mim"):
        OnnxForecaster(path)


def test_writing_refuses_incomplete_metadata():
    meta = _meta()
    del meta["missing_components"]
    with pytest.raises(ValueError, match=r"lacks the required entries \['missing_components'\]"):
        fmt.metadata_props(meta)
    with pytest.raises(ValueError, match="not Darts feature names"):
        fmt.metadata_props(_meta(inputs=["past_target", "weather"]))


def test_export_and_runtime_share_the_schema():
    assert export.FEATURE_NAMES is fmt.FEATURE_NAMES
    assert export.metadata_props is fmt.metadata_props
    assert runtime.read_metadata is fmt.read_metadata
    for name in (
        "METADATA_PREFIX",
        "FORMAT_VERSION",
        "FEATURE_NAMES",
        "_REQUIRED_KEYS",
        "_GRID_KEY",
    ):
        assert not hasattr(runtime, name), f"runtime.{name} duplicates the schema"


def test_the_schema_imports_no_torch_nor_onnx():
    code = (
        "import sys, darts_mim.onnx.format; "
        "print([m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.strip() == "[]"


def test_a_plain_series_with_the_grid_size_is_served(tmp_path):
    """A series without grid metadata is read by its number of components, as in MIMModel.predict."""
    forecaster = OnnxForecaster(darts_mim_file(tmp_path / "p.onnx"))
    plain = TimeSeries.from_times_and_values(
        pd.RangeIndex(4), np.ones((4, 6), dtype=np.float32), columns=list("abcdef")
    )
    assert forecaster.predict(1, plain).n_components == 6
