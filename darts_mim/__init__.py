"""darts-mim: the Memory In Memory network (Wang et al., CVPR 2019) as a Darts forecasting model."""

__version__ = "0.14.0"

# Names of darts_mim.grid, which imports Darts: imported on first use, so that the numpy-only ONNX
# service (darts_mim.onnx.service) can import this package where Darts is not installed.
_GRID_NAMES = ("GridSpec", "grid_to_series", "series_to_grid", "series_to_xarray")


def __getattr__(name: str):
    if name in _GRID_NAMES:
        from darts_mim import grid

        return getattr(grid, name)
    # Torch-backed names are imported lazily so that torch-free serving code
    # (`from darts_mim.onnx.runtime import OnnxForecaster`) can import this package without torch.
    # darts_mim.model allow-lists MIMModel with Darts' safe unpickler when it is imported, so
    # `from darts_mim import MIMModel; MIMModel.load(path)` works.
    if name in ("MIMModel", "_MIMModule"):
        from darts_mim import model

        return getattr(model, name)
    if name in ("TrainingRecipe", "ResolvedConfig"):
        from darts_mim import config

        return getattr(config, name)
    if name == "OnnxForecaster":
        from darts_mim.onnx.runtime import OnnxForecaster

        return OnnxForecaster
    raise AttributeError(f"module 'darts_mim' has no attribute {name!r}")


__all__ = [
    "MIMModel",
    "TrainingRecipe",
    "ResolvedConfig",
    "GridSpec",
    "grid_to_series",
    "series_to_grid",
    "series_to_xarray",
    "OnnxForecaster",
    "__version__",
]
