"""ONNX export (:mod:`darts_mim.onnx.export`, needs torch) and torch-free serving
(:class:`darts_mim.onnx.runtime.OnnxForecaster`).

Nothing is imported eagerly: importing this package must not import torch, so that serving code can
run where only ``onnxruntime`` is installed.
"""


def __getattr__(name: str):
    if name == "OnnxForecaster":
        from darts_mim.onnx.runtime import OnnxForecaster

        return OnnxForecaster
    if name in ("select_providers", "provider_problem"):
        from darts_mim.onnx import runtime

        return getattr(runtime, name)
    if name == "export_model":
        from darts_mim.onnx.export import export_model

        return export_model
    raise AttributeError(f"module 'darts_mim.onnx' has no attribute {name!r}")


__all__ = ["OnnxForecaster", "export_model", "provider_problem", "select_providers"]
