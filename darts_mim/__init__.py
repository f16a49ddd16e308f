"""darts-mim: the Memory In Memory network (Wang et al., CVPR 2019) as a Darts forecasting model."""

from darts.utils.serialization import add_safe_globals

from darts_mim.grid import GridSpec, grid_to_series, series_to_grid
from darts_mim.model import MIMModel, _MIMModule

__version__ = "0.1.0"

# Darts loads saved models with a restricted unpickler: allow-list our classes once, at import.
add_safe_globals([MIMModel, _MIMModule])


def __getattr__(name: str):
    # The ONNX runtime is imported lazily so that `import darts_mim` stays light, and so that serving
    # code can import darts_mim.onnx.runtime without torch.
    if name == "OnnxForecaster":
        from darts_mim.onnx.runtime import OnnxForecaster

        return OnnxForecaster
    raise AttributeError(f"module 'darts_mim' has no attribute {name!r}")


__all__ = [
    "MIMModel",
    "GridSpec",
    "grid_to_series",
    "series_to_grid",
    "OnnxForecaster",
    "__version__",
]
