"""The automatic bf16 training precision: its choice, and that only training steps are autocast.

(The benchmarks' whole-step CUDA graph is tested in tests/test_gpu_check_script.py, the package's
CUDA graphs in tests/test_graphed_network.py.)"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from darts_mim import MIMModel, TrainingRecipe, grid_to_series
from darts_mim.nn import MIMNetwork
from darts_mim.nn import precision as precision_mod
from darts_mim.nn.precision import training_autocast, use_auto_bf16


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------- automatic precision
@pytest.mark.parametrize(
    "capabilities, native",
    [
        ({"avx512_f": True, "avx512_bf16": True, "amx_bf16": False}, True),
        ({"avx512_f": True, "avx512_bf16": False, "amx_bf16": True}, True),
        ({"avx512_f": True, "avx512_bf16": False, "amx_bf16": False}, False),  # emulated bf16
        ({"architecture": "arm64", "neon": True}, False),
    ],
)
def test_native_bf16_is_read_from_torchs_public_cpu_capabilities(monkeypatch, capabilities, native):
    detect = precision_mod.cpu_has_native_bf16.__wrapped__  # uncached
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities, raising=False)
    # torch's private helpers are not asked: they say the opposite here
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: not native, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: not native, raising=False)
    assert detect() is native


@pytest.mark.parametrize("flags, native", [("fpu avx512f avx512_bf16", True), ("fpu avx2", False)])
def test_native_bf16_falls_back_to_cpuinfo_flags(monkeypatch, tmp_path, flags, native):
    # a torch without torch.cpu.get_capabilities, on Linux: the kernel's flags answer
    monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    monkeypatch.setattr(precision_mod, "CPUINFO", str(cpuinfo))
    assert precision_mod.cpu_has_native_bf16.__wrapped__() is native
    monkeypatch.setattr(precision_mod, "CPUINFO", str(tmp_path / "missing"))  # not Linux
    assert precision_mod.cpu_has_native_bf16.__wrapped__() is False


@pytest.mark.parametrize("native", [True, False])
def test_auto_bf16_only_on_cpus_with_native_bf16(monkeypatch, native):
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: native)
    cpu = torch.device("cpu")
    assert use_auto_bf16(cpu, torch.float32) is native
    assert not use_auto_bf16(cpu, torch.float64)  # a float64 model keeps its precision
    assert not use_auto_bf16(torch.device("cuda"), torch.float32)  # GPUs: the user's choice
    with training_autocast(cpu, torch.float32, auto=True):
        assert torch.is_autocast_enabled("cpu") is native
    with training_autocast(cpu, torch.float32, auto=False):
        assert not torch.is_autocast_enabled("cpu")


def test_user_autocast_is_left_alone(monkeypatch):
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: True)
    with torch.autocast("cpu", dtype=torch.float16):
        with training_autocast(torch.device("cpu"), torch.float32, auto=True):
            assert torch.get_autocast_dtype("cpu") == torch.float16


def _series(n: int = 30):
    rng = np.random.default_rng(0)
    frames = rng.random((n, 1, 4, 4), dtype=np.float32)
    return grid_to_series(frames, pd.date_range("2024-01-01", periods=n, freq="h"), ["v"])


def _model(tmp_path, precision: str | None = None, **kwargs) -> MIMModel:
    """A tiny model; ``precision`` is Lightning's, in ``pl_trainer_kwargs``."""
    trainer = {
        "accelerator": "cpu",
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "logger": False,
    }
    if precision is not None:
        trainer["precision"] = precision
    return MIMModel(
        input_chunk_length=3,
        output_chunk_length=2,
        num_hidden=(4,),
        n_epochs=1,
        batch_size=8,
        random_state=0,
        work_dir=str(tmp_path),
        pl_trainer_kwargs=trainer,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("kwargs", "auto"),
    [
        ({}, False),
        ({"training_recipe": TrainingRecipe(bf16_autocast=True)}, True),
        ({"precision": "32-true"}, False),
        ({"precision": "bf16-mixed"}, False),
    ],
)
def test_model_trains_in_bf16_autocast_with_the_recipe(tmp_path, monkeypatch, kwargs, auto):
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: True)
    seen = []
    forward = MIMNetwork.forward

    def spy(self, *args, **kw):
        out = forward(self, *args, **kw)
        seen.append((self.training, torch.is_autocast_enabled("cpu")))
        return out

    monkeypatch.setattr(MIMNetwork, "forward", spy)
    model = _model(tmp_path, **kwargs)
    assert model.training_recipe.bf16_autocast is auto
    # the recipe's bf16 autocast is darts-mim's own: Lightning gets no precision from it
    assert model.trainer_params.get("precision") == kwargs.get("precision")
    model.fit(_series())
    assert model.model._bf16 is auto  # decided per fit: a CPU with native bf16 (patched above)
    trained = {autocast for training, autocast in seen if training}
    assert trained == {auto or kwargs.get("precision") == "bf16-mixed"}
    seen.clear()
    forecast = model.predict(2)
    if auto:  # prediction stays float32: only training steps are autocast
        assert {autocast for _, autocast in seen} == {False}
    assert forecast.dtype == np.float32 and np.isfinite(forecast.values()).all()
