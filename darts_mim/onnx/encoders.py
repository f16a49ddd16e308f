"""Darts' ``add_encoders`` at serving time: save a fitted model's encoder settings, recompute them.

A model fitted with ``add_encoders`` trains on covariates Darts generates from the time index
(datetime attributes, cyclic sine/cosine pairs, the relative position, custom functions), appended
after the user's covariates and optionally scaled by a fitted transformer. An ONNX graph only sees
the stacked covariates, so the exporter saves what generates them (:func:`settings_from_model`, the
``encoders`` metadata entry) and :class:`darts_mim.onnx.runtime.OnnxForecaster` recomputes them for
the windows it forecasts (:func:`encode`), without torch.

What can be saved:

- ``datetime_attribute`` and ``cyclic``: the attribute and the time zone (a name), recomputed with
  Darts' own ``datetime_attribute_timeseries``, as the encoders compute them;
- ``position`` (``"relative"``): steps from the end of the target series;
- ``custom``: a function importable by module and name (``"package.module:function"``), imported
  again where the file is served; lambdas, local functions and functions of ``__main__`` cannot
  be saved (a ``ValueError`` at export says so);
- ``transformer``: a Darts ``Scaler`` around scikit-learn's ``MinMaxScaler``, ``StandardScaler``,
  ``MaxAbsScaler`` or ``RobustScaler`` (an affine map per column, saved as numbers).

The runtime encodes the index Darts encodes at prediction: the user's covariates' time index when
there are some, else the steps the forecast reads, and reads the window from it; this matters for
the few attributes that depend on the whole index (Darts gives a cyclic day of year a period of 366
when any step is in a leap year) and for custom functions that are not pointwise.

Metadata entry ``encoders``: ``None``, or ``{"past": SIDE, "future": SIDE}`` where a ``SIDE`` is
``None`` or ``{"n_user_components", "components", "encoders": [{"kind", "attribute", "tz",
"n_components"}, ...], "transform": None | {"mask", "center", "divisor", "scale", "offset", "clip"}}``: the
transformed (masked) encoded columns are ``clip((x - center) / divisor * scale + offset)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

# Darts' encoder classes by the add_encoders key they come from.
_KINDS = {
    "DatetimeAttributeEncoder": "datetime_attribute",
    "CyclicTemporalEncoder": "cyclic",
    "IntegerIndexEncoder": "position",
    "CallableIndexEncoder": "custom",
}


def _kind(encoder: Any) -> str:
    for cls in type(encoder).__mro__:
        if cls.__name__ in _KINDS:
            return _KINDS[cls.__name__]
    raise ValueError(
        f"The encoder {type(encoder).__name__} cannot be saved in an ONNX file: the ONNX runtime "
        f"computes {sorted(set(_KINDS.values()))} encoders. Pass its encodings as explicit "
        "covariates instead."
    )


def function_path(function: Callable) -> str:
    """``"module:qualname"`` of a function the serving process can import again.

    Raises
    ------
    ValueError
        For a lambda, a local function, a function of ``__main__`` or anything whose path does not
        import back to the same object.
    """
    module = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", None)
    why = None
    if module is None or qualname is None:
        why = "it has no module and name"
    elif "<lambda>" in qualname or "<locals>" in qualname:
        why = "it is a lambda or a local function"
    elif module == "__main__":
        why = "it is defined in __main__, which the serving process does not have"
    else:
        try:
            found = _import(f"{module}:{qualname}")
        except (ImportError, AttributeError) as err:
            found, why = None, f"{module}:{qualname} does not import ({err})"
        if why is None and found is not function:
            why = f"{module}:{qualname} imports a different object"
    if why is not None:
        raise ValueError(
            f"The custom encoder {function!r} cannot be saved in an ONNX file: {why}. Define it at "
            "the top level of an importable module (the serving process imports it by name), or "
            "pass its encoding as explicit covariates."
        )
    return f"{module}:{qualname}"


def _import(path: str) -> Callable:
    module, _, qualname = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _affine(transformer: Any, n_columns: int) -> dict[str, Any]:
    """A fitted Darts ``Scaler`` as ``(x - center) / divisor * scale + offset`` (then ``clip``) per
    transformed column."""
    fitted = getattr(transformer, "_fitted_params", None)
    name = type(transformer).__name__
    if name != "Scaler" or not fitted or len(fitted) != 1:
        raise ValueError(
            f"The encoders' transformer {name} cannot be saved in an ONNX file: the ONNX runtime "
            "applies a fitted darts Scaler (around scikit-learn's MinMaxScaler, StandardScaler, "
            "MaxAbsScaler or RobustScaler). Scale the encodings yourself and pass them as covariates."
        )
    sk = fitted[0]
    kind = type(sk).__name__
    ones, zeros = np.ones(n_columns), np.zeros(n_columns)
    # (x - center) / divisor * scale + offset: each scaler's own operations in its order, with the
    # neutral elements elsewhere (exact in floating point), so float32 results match sklearn's.
    center, divisor, scale, offset, clip = zeros, ones, ones, zeros, None
    if kind == "MinMaxScaler":
        scale, offset = np.asarray(sk.scale_, float), np.asarray(sk.min_, float)
        if getattr(sk, "clip", False):
            clip = [float(v) for v in sk.feature_range]
    elif kind == "StandardScaler":
        if sk.with_mean and sk.mean_ is not None:
            center = np.asarray(sk.mean_, float)
        if sk.scale_ is not None:
            divisor = np.asarray(sk.scale_, float)
    elif kind == "MaxAbsScaler":
        divisor = np.asarray(sk.scale_, float)
    elif kind == "RobustScaler":
        if sk.center_ is not None:
            center = np.asarray(sk.center_, float)
        if sk.scale_ is not None:
            divisor = np.asarray(sk.scale_, float)
    else:
        raise ValueError(
            f"The encoders' transformer Scaler({kind}) cannot be saved in an ONNX file: the ONNX "
            "runtime applies MinMaxScaler, StandardScaler, MaxAbsScaler or RobustScaler. Scale the "
            "encodings yourself and pass them as covariates."
        )
    params = {"center": center, "divisor": divisor, "scale": scale, "offset": offset}
    for name, value in params.items():
        if value.shape != (n_columns,):
            raise ValueError(
                f"The encoders' scaler has {value.size} {name} values, expected {n_columns}."
            )
    return {**{k: v.tolist() for k, v in params.items()}, "clip": clip}


def _side(sequential: Any, side: str, n_total: int | None) -> dict[str, Any] | None:
    encoders = getattr(sequential, f"{side}_encoders")
    if not encoders:
        return None
    entries = []
    mask: list[bool] = []
    for encoder in encoders:
        kind = _kind(encoder)
        attribute = encoder.attribute
        tz = getattr(encoder, "tz", None)
        if tz is not None and not isinstance(tz, str):
            raise ValueError(
                f"The encoders' time zone {tz!r} cannot be saved in an ONNX file; give it by name "
                "(e.g. add_encoders={..., 'tz': 'CET'})."
            )
        entries.append(
            {
                "kind": kind,
                "attribute": function_path(attribute) if kind == "custom" else str(attribute),
                "tz": tz,
                "n_components": int(encoder.encoding_n_components),
            }
        )
        mask.extend(bool(m) for m in encoder.accept_transformer)
    n_encoded = len(mask)
    wrapper = getattr(sequential, f"{side}_transformer")
    transform = None
    if wrapper is not None and any(mask):
        transform = {"mask": mask, **_affine(wrapper.transformer, sum(mask))}
    n_user = (n_total or n_encoded) - n_encoded
    return {
        "n_user_components": int(n_user),
        # Darts' names of the encoded components (made unique across encoders), for messages.
        "components": [str(c) for c in getattr(sequential, f"{side}_components")],
        "encoders": entries,
        "transform": transform,
    }


def settings_from_model(model: Any) -> dict[str, Any] | None:
    """The ``encoders`` metadata entry of a fitted model (``None`` without ``add_encoders``).

    Parameters
    ----------
    model
        A fitted ``MIMModel``.

    Raises
    ------
    ValueError
        For an encoder, time zone, custom function or transformer that cannot be saved, saying what
        can.
    """
    sequential = getattr(model, "encoders", None)
    if sequential is None or not sequential.encoding_available:
        return None
    shapes = model.model.train_sample_shape
    totals = {
        "past": (shapes.get("past_covariates") or [None])[-1],
        "future": (shapes.get("future_covariates") or [None])[-1],
    }
    return {side: _side(sequential, side, totals[side]) for side in ("past", "future")}


def n_encoded(side: Mapping[str, Any] | None) -> int:
    """How many covariate columns a side's encoders produce (0 for ``None``)."""
    if not side:
        return 0
    return sum(e["n_components"] for e in side["encoders"])


def _position(times: pd.Index, target_end: Any, freq: Any) -> np.ndarray:
    """Darts' relative position: steps from the target's last step (0 there)."""
    if isinstance(times, pd.DatetimeIndex):
        # Whole steps between two aligned timestamps, for any pandas offset (months too).
        anchor = pd.date_range(
            start=min(times[0], target_end), end=max(times[0], target_end), freq=freq
        )
        first = (len(anchor) - 1) * (1 if times[0] >= target_end else -1)
    else:
        first = (times[0] - target_end) // freq
    return np.arange(first, first + len(times), dtype=np.float64)


def encode(
    side: Mapping[str, Any],
    times: pd.Index,
    target_end: Any,
    freq: Any,
    dtype: np.dtype | type = np.float64,
    functions: dict[str, Callable] | None = None,
) -> np.ndarray:
    """The encoded covariate columns of one side at ``times``.

    Parameters
    ----------
    side
        ``metadata["encoders"]["past"]`` or ``["future"]``.
    times
        The steps to encode (``pd.DatetimeIndex`` or ``pd.RangeIndex``).
    target_end
        The last time step of the target series (the position encoder's origin).
    freq
        The series' frequency.
    dtype
        The target series' dtype, which Darts encodes in.
    functions
        A cache of imported custom functions by path.

    Returns
    -------
    numpy.ndarray
        ``(len(times), n_encoded(side))``, transformed as at training.
    """
    # Darts' own attribute function: the same values (one-based attributes shifted, week numbers,
    # time zones) as the encoders computed at training. Imported here: it is not needed without
    # encoders, and Darts is imported by the runtime anyway.
    from darts.utils.timeseries_generation import datetime_attribute_timeseries

    functions = {} if functions is None else functions
    columns = []
    for entry in side["encoders"]:
        kind, attribute = entry["kind"], entry["attribute"]
        n_cols = entry["n_components"]
        if kind in ("datetime_attribute", "cyclic"):
            if not isinstance(times, pd.DatetimeIndex):
                raise ValueError(
                    f"The model's {kind} encoder ({attribute!r}) needs a series with a "
                    "pd.DatetimeIndex, got an integer index."
                )
            values = datetime_attribute_timeseries(
                times, attribute=attribute, cyclic=kind == "cyclic", dtype=dtype, tz=entry["tz"]
            ).values(copy=False)
        elif kind == "position":
            values = _position(times, target_end, freq)[:, None]
        elif kind == "custom":
            if attribute not in functions:
                try:
                    functions[attribute] = _import(attribute)
                except (ImportError, AttributeError) as err:
                    raise ValueError(
                        f"The model's custom encoder {attribute!r} cannot be imported here ({err}); "
                        "install the module that defines it where the file is served."
                    ) from err
            values = np.asarray(functions[attribute](times), dtype=dtype)
            values = values.reshape(len(times), -1)
        else:
            raise ValueError(
                f"Unknown encoder kind {kind!r} in the file's metadata; upgrade darts-mim."
            )
        if values.shape != (len(times), n_cols):
            raise ValueError(
                f"The model's {kind} encoder ({attribute!r}) gave {values.shape[1]} column(s), "
                f"{n_cols} at training."
            )
        columns.append(np.asarray(values, dtype=dtype))
    out = np.concatenate(columns, axis=1)
    transform = side.get("transform")
    if transform is not None:
        mask = np.asarray(transform["mask"], dtype=bool)
        # In the series' dtype, as scikit-learn transforms it (its fitted attributes have that dtype).
        p = {
            k: np.asarray(transform[k], dtype=out.dtype)
            for k in ("center", "divisor", "scale", "offset")
        }
        scaled = (out[:, mask] - p["center"]) / p["divisor"] * p["scale"] + p["offset"]
        if transform["clip"] is not None:
            scaled = np.clip(scaled, *transform["clip"])
        out[:, mask] = scaled.astype(out.dtype)
    return out


def describe(side: Mapping[str, Any] | None) -> Sequence[str]:
    """The encoded component names of a side (for messages and docs)."""
    return [] if not side else list(side["components"])
