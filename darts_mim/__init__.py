"""darts-mim: the Memory In Memory network (Wang et al., CVPR 2019) as a Darts forecasting model."""

from darts_mim.grid import GridSpec, grid_to_series, series_to_grid, series_to_xarray

__version__ = "0.2.0"


def __getattr__(name: str):
    # Torch-backed names are imported lazily so that torch-free serving code
    # (`from darts_mim.onnx.runtime import OnnxForecaster`) can import this package without torch.
    # darts_mim.model allow-lists MIMModel with Darts' safe unpickler when it is imported, so
    # `from darts_mim import MIMModel; MIMModel.load(path)` works.
    if name in ("MIMModel", "_MIMModule"):
        from darts_mim import model

        return getattr(model, name)
    if name == "OnnxForecaster":
        from darts_mim.onnx.runtime import OnnxForecaster

        return OnnxForecaster
    raise AttributeError(f"module 'darts_mim' has no attribute {name!r}")


__all__ = [
    "MIMModel",
    "GridSpec",
    "grid_to_series",
    "series_to_grid",
    "series_to_xarray",
    "OnnxForecaster",
    "__version__",
]
