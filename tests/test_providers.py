"""Execution providers: CUDA by default only where it runs, quietly; a requested one that cannot run
is an error naming what is missing, never a silent CPU run.

``onnxruntime-gpu`` lists CUDA (and TensorRT) as available on machines without CUDA; the tests that
need such a machine say so and skip elsewhere.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from test_onnx_format import darts_mim_file

import darts_mim.onnx.runtime as runtime
from darts_mim.onnx.runtime import OnnxForecaster, provider_problem, select_providers

CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"


@pytest.fixture
def path(tmp_path):
    return darts_mim_file(tmp_path / "persistence.onnx")


@pytest.fixture
def fresh_probe():
    """Forget cached probe answers, before and after, so that each test probes for itself."""
    provider_problem.cache_clear()
    yield
    provider_problem.cache_clear()


def _cuda_runs() -> bool:
    return provider_problem(CUDA) is None


def test_default_picks_a_provider_that_runs_and_prints_nothing(path, capfd, fresh_probe):
    capfd.readouterr()
    forecaster = OnnxForecaster(path)
    out, err = capfd.readouterr()
    # Before: onnxruntime's red "[E:onnxruntime ...] Failed to load library
    # libonnxruntime_providers_cuda.so" and a "Failed to create CUDAExecutionProvider" warning.
    assert (out, err) == ("", "")
    expected = [CUDA, CPU] if _cuda_runs() else [CPU]
    assert forecaster.session.get_providers() == expected
    assert forecaster.providers == expected


@pytest.mark.parametrize("name", [CUDA, TRT])
def test_a_requested_provider_that_cannot_run_is_an_error(path, name, capfd, fresh_probe):
    if provider_problem(name) is None:
        pytest.skip(f"{name} runs on this machine")
    capfd.readouterr()
    with pytest.raises(ValueError, match=f"'{name}' .*cannot run here"):
        OnnxForecaster(path, providers=[name, CPU])
    assert capfd.readouterr() == ("", "")  # decided by the probe: onnxruntime never tried


def test_the_reason_names_the_missing_library(fresh_probe):
    if CUDA not in ort.get_available_providers() or _cuda_runs():
        pytest.skip("needs onnxruntime-gpu on a machine where CUDA does not run")
    reason = provider_problem(CUDA)
    # e.g. "its library libonnxruntime_providers_cuda.so does not load (libcublasLt.so.13: cannot
    # open shared object file ...)" here, "onnxruntime could not start it (...)" without a GPU.
    assert "libonnxruntime_providers_cuda" in reason or "could not start" in reason


def test_the_session_probe_is_quiet_and_restores_logging(monkeypatch, capfd, fresh_probe):
    """Where the libraries load but CUDA still cannot start, the probe's session says so quietly."""
    if CUDA not in ort.get_available_providers() or _cuda_runs():
        pytest.skip("needs onnxruntime-gpu on a machine where CUDA does not run")
    provider_problem.cache_clear()
    monkeypatch.setattr(runtime, "_library_problem", lambda name: None)
    capfd.readouterr()
    assert "could not start" in provider_problem(CUDA)
    assert provider_problem(TRT) is not None  # TensorRT raises instead: also caught, also quiet
    assert capfd.readouterr() == ("", "")
    # onnxruntime's logging is back afterwards: a plain session with CUDA complains as usual.
    ort.InferenceSession(runtime._PROBE_MODEL, providers=[CUDA, CPU])
    assert "onnxruntime" in capfd.readouterr().err


def test_the_probe_runs_once_per_process(path, monkeypatch, fresh_probe):
    first = provider_problem(CUDA)

    def probe_again(name):
        raise AssertionError(f"probed {name} again")

    monkeypatch.setattr(runtime, "_library_problem", probe_again)
    monkeypatch.setattr(runtime, "_session_problem", probe_again)
    assert provider_problem(CUDA) == first
    OnnxForecaster(path)
    OnnxForecaster(path)
    assert provider_problem.cache_info().misses == 1


def test_a_provider_that_does_not_start_is_an_error(path, monkeypatch, fresh_probe):
    """When the probe is wrong (or cannot tell), the session's providers are checked too."""
    if CUDA not in ort.get_available_providers() or _cuda_runs():
        pytest.skip("needs onnxruntime-gpu on a machine where CUDA does not run")
    monkeypatch.setattr(runtime, "provider_problem", lambda name: None)
    with pytest.raises(ValueError, match=r"\['CUDAExecutionProvider'\] could not start"):
        OnnxForecaster(path, providers=[CUDA, CPU])


def test_explicit_cpu_runs_without_fallback(path):
    forecaster = OnnxForecaster(path, providers="CPUExecutionProvider")
    assert forecaster.session.get_providers() == [CPU]
    out = forecaster.predict_array(np.ones((3, 2, 6), dtype=np.float32), 2)
    assert out.shape == (3, 2, 6)


def test_unavailable_provider(path):
    with pytest.raises(ValueError, match="not available.*CPUExecutionProvider"):
        OnnxForecaster(path, providers=["NoSuchExecutionProvider"])


def test_select_providers():
    cpu = [CPU]
    gpu = [TRT, CUDA, CPU]

    def runs(name):
        return None

    def no_gpu(name):
        return "no GPU here"

    assert select_providers(None, cpu, runs) == [CPU]
    assert select_providers(None, gpu, runs) == [CUDA, CPU]
    assert select_providers(None, gpu, no_gpu) == [CPU]  # available is not usable
    assert select_providers(CPU, gpu, no_gpu) == [CPU]
    opts = (CUDA, {"device_id": 0})
    assert select_providers([opts, CPU], gpu, runs) == [opts, CPU]
    with pytest.raises(
        ValueError, match="'CUDAExecutionProvider' is installed but cannot run here"
    ):
        select_providers([opts, CPU], gpu, no_gpu)
    with pytest.raises(ValueError, match="needs the onnxruntime-gpu package"):
        select_providers([CUDA], cpu, runs)
    with pytest.raises(ValueError, match="empty"):
        select_providers([], cpu)


# ---------------------------------------------------------------------- IO binding
def test_io_binding_is_off_on_the_cpu_by_default(path):
    assert OnnxForecaster(path)._binding is None


def test_io_binding_on_the_cpu_gives_the_same_forecasts(path):
    """The binding code path (kept buffers updated in place, output copied out) runs on the CPU:
    the same forecasts as session.run, over autoregressive calls and changing batch sizes, without
    touching the caller's arrays."""
    plain = OnnxForecaster(path, providers=[CPU])
    bound = OnnxForecaster(path, providers=[CPU], io_binding=True)
    assert bound._binding is not None and bound._binding.device == "cpu"
    rng = np.random.default_rng(0)
    d = len(plain.components)
    for batch in (3, 1, 3):
        windows = rng.random((batch, plain.input_chunk_length, d), dtype=np.float32)
        before = windows.copy()
        for n in (1, plain.output_chunk_length, 3 * plain.output_chunk_length + 1):
            np.testing.assert_array_equal(
                bound.predict_array(windows, n), plain.predict_array(windows, n)
            )
        np.testing.assert_array_equal(windows, before)
    assert len(bound._binding.buffers) == 2  # one set of buffers per batch shape, reused


def test_io_binding_follows_the_session_provider():
    class Session:
        def __init__(self, providers, options):
            self.providers, self.options = providers, options

        def get_providers(self):
            return self.providers

        def get_provider_options(self):
            return self.options

        def get_outputs(self):
            return [None]

    cuda = Session([CUDA, CPU], {CUDA: {"device_id": "1", "enable_cuda_graph": "1"}})
    binding = runtime._DeviceBinding.for_session(cuda, None)
    assert (binding.device, binding.device_id, binding.cuda_graph) == ("cuda", 1, True)
    plain_cuda = Session([CUDA, CPU], {CUDA: {}})
    assert runtime._DeviceBinding.for_session(plain_cuda, None).cuda_graph is False
    assert runtime._DeviceBinding.for_session(plain_cuda, False) is None
    cpu = Session([CPU], {})
    assert runtime._DeviceBinding.for_session(cpu, None) is None
    assert runtime._DeviceBinding.for_session(cpu, True).device == "cpu"


def test_io_binding_with_an_output_of_undeclared_size(path, tmp_path):
    """A graph that does not declare its output's sizes: ONNX Runtime allocates the output."""
    import onnx

    model = onnx.load(path)
    model.graph.output[0].type.tensor_type.ClearField("shape")
    undeclared = str(tmp_path / "undeclared.onnx")
    onnx.save(model, undeclared)
    bound = OnnxForecaster(undeclared, providers=[CPU], io_binding=True)
    plain = OnnxForecaster(undeclared, providers=[CPU])
    windows = np.random.default_rng(1).random((2, plain.input_chunk_length, len(plain.components)))
    np.testing.assert_array_equal(bound.predict_array(windows, 3), plain.predict_array(windows, 3))
