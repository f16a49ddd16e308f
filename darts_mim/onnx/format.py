"""The darts-mim ONNX file format: the metadata schema that export writes and the runtime reads.

An exported file is a plain ONNX model whose ``metadata_props`` hold one JSON value per entry, under
keys prefixed :data:`METADATA_PREFIX` (``darts_mim.grid``, ``darts_mim.input_chunk_length``, ...).
The schema lives here only, so that :mod:`darts_mim.onnx.export` and :mod:`darts_mim.onnx.runtime`
cannot disagree about it. This module imports neither torch nor onnx nor onnxruntime (nor Darts,
unless a grid is parsed): the torch-free runtime and the numpy-only service read files with it.

Entries (all required, see :data:`REQUIRED_KEYS`)
--------------------------------------------------
format_version
    :data:`FORMAT_VERSION` of the writer; a runtime refuses files newer than itself.
grid
    The target grid, as :meth:`darts_mim.grid.GridSpec.to_metadata` writes it; read back as a
    :class:`~darts_mim.grid.GridSpec`.
components
    The training target's component names.
input_chunk_length, output_chunk_length, output_chunk_shift
    As the model's hyper-parameters.
inputs
    The graph's input names, a sub-sequence of :data:`FEATURE_NAMES` in that order.
past_covariates, future_covariates
    ``None`` when the model takes none, else ``{"n_components", "components", "grid_channels"}``.
likelihood
    ``None`` or ``{"name", "parameter_names"[, "quantiles"]}``.
nr_params
    Likelihood parameters per component (1 without a likelihood).
dtype, training_dtype
    The graph's float type (``"float32"`` or ``"float16"``) and the one forecasts are returned in.
missing_components
    Indices of target components that were NaN at every training step (forecast as NaN).

Optional entries: ``version`` (of darts-mim), ``static_covariates``, ``static_covariates_shape``
(``[rows, columns]``, also for a model saved with ``clean=True``, which keeps no values), ``freq``
(the training series' frequency: an offset's string, or an integer step), ``fold`` (steps folded
into each frame by ``fold_period``; when above 1 the runtime refuses series of another frequency
than ``freq``; files written before darts-mim 0.13 lack it and are not checked), ``encoders`` (the
settings of ``add_encoders``, see :mod:`darts_mim.onnx.encoders`; the covariate entries'
``n_components`` count the encoded columns too, after the user's), ``export_method`` (``"loop"``:
the recurrence as ONNX ``Loop`` nodes over one traced step, see :mod:`darts_mim.onnx._loop`;
``"unrolled"``: every step in the graph, the fallback), ``quantization`` (int8 graphs: what is
quantized and the error against the float32 network on the calibration windows, in the units
the file serves: ``units`` ``"raw"`` with the scaler in the graph, else ``"model"``), ``scaling``
(``{"in_graph": true, "units": "raw", "target", "past_covariates", "future_covariates"}``, each of
the last three ``None`` or ``{"transformer", "n_components"}``: the graph applies those fitted
scalers itself, see :mod:`darts_mim.onnx.scaling`, and takes and returns raw values). None changes
the graph's input and output names and shapes, and no runtime scales, so :data:`FORMAT_VERSION`
stays 1 and older runtimes serve such files (in raw units where ``scaling`` says so).

Darts' own contract
-------------------
Besides its own entries, the export writes the one entry Darts' torch-free ONNX code reads,
:data:`DARTS_SPEC_KEY` (``darts.onnx_spec``): the JSON of a Darts ``OnnxModelSpec``
(``darts.utils.onnx.inference``) built by :func:`darts_spec` from the entries above. The graph's
input names are Darts' feature names and its output is Darts' ``prediction``, so
``OnnxModelSpec.from_session`` reads a darts-mim file and ``darts.utils.onnx.run_onnx_prediction``
forecasts with it (docs/guides/onnx.md, "Darts' ONNX contract", says where it cannot). The
darts-mim runtime does not read that entry: files written before it existed are served alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

METADATA_PREFIX = "darts_mim."
FORMAT_VERSION = 1
# Darts' names for the module's input tensors, in the order the graph takes those it uses.
FEATURE_NAMES = (
    "past_target",
    "past_covariates",
    "historic_future_covariates",
    "future_covariates",
    "static_covariates",
)
#: The metadata key of Darts' ONNX contract (``darts.utils.onnx.inference.ONNX_SPEC_METADATA_KEY``).
DARTS_SPEC_KEY = "darts.onnx_spec"
REQUIRED_KEYS = (
    "format_version",
    "grid",
    "components",
    "input_chunk_length",
    "output_chunk_length",
    "output_chunk_shift",
    "inputs",
    "past_covariates",
    "future_covariates",
    "likelihood",
    "nr_params",
    "dtype",
    "training_dtype",
    "missing_components",
)


def metadata_props(meta: Mapping[str, Any]) -> dict[str, str]:
    """The ONNX ``metadata_props`` for ``meta``: prefixed keys, JSON values.

    Parameters
    ----------
    meta
        Every entry of :data:`REQUIRED_KEYS` but ``format_version`` (added here), unprefixed; ``grid``
        a :class:`~darts_mim.grid.GridSpec`.

    Returns
    -------
    dict
        For ``onnx.helper.set_model_props``.
    """
    entries = {"format_version": FORMAT_VERSION, **meta}
    lacking = [k for k in REQUIRED_KEYS if k not in entries]
    if lacking:
        # A bug in the writer, caught before it produces files no runtime can read.
        raise ValueError(f"darts-mim ONNX metadata lacks the required entries {lacking}.")
    unknown = [name for name in entries["inputs"] if name not in FEATURE_NAMES]
    if unknown:
        raise ValueError(f"Graph inputs {unknown} are not Darts feature names {FEATURE_NAMES}.")
    entries["grid"] = entries["grid"].to_metadata()
    return {METADATA_PREFIX + key: json.dumps(value) for key, value in entries.items()}


def read_metadata(
    props: Mapping[str, str],
    path: str,
    graph_inputs: Sequence[str] | None = None,
    parse_grid: bool = True,
) -> dict[str, Any]:
    """Read and check a file's darts-mim metadata.

    Parameters
    ----------
    props
        The file's metadata, e.g. ``session.get_modelmeta().custom_metadata_map``.
    path
        The file, for messages.
    graph_inputs
        The graph's input names, checked against the ``inputs`` entry when given.
    parse_grid
        Read ``grid`` as a :class:`~darts_mim.grid.GridSpec` (which imports Darts); ``False`` leaves
        the dict, for serving processes without Darts (:mod:`darts_mim.onnx.service`).

    Returns
    -------
    dict
        The entries without the prefix, JSON-decoded; ``grid`` as a
        :class:`~darts_mim.grid.GridSpec` (a dict without ``parse_grid``).

    Raises
    ------
    ValueError
        For a file not written by darts-mim, corrupt or incomplete metadata, a format newer than this
        runtime's, or a graph whose inputs differ from its metadata; each says what to do.
    """
    if METADATA_PREFIX + "format_version" not in props:
        raise ValueError(
            f"{path!r} is an ONNX model but was not written by darts-mim (no "
            f"'{METADATA_PREFIX}*' metadata). Export MIM models with MIMModel.to_onnx(); for "
            "other Darts models use darts.utils.onnx.run_onnx_prediction."
        )
    try:
        meta = {
            key[len(METADATA_PREFIX) :]: json.loads(value)
            for key, value in props.items()
            if key.startswith(METADATA_PREFIX)
        }
    except json.JSONDecodeError as err:
        raise ValueError(f"{path!r} has corrupt darts-mim metadata: {err}.") from err
    version = meta["format_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(
            f"{path!r} has corrupt darts-mim metadata: format_version {version!r} is not an integer."
        )
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path!r} was written in darts-mim ONNX format {version}, newer than this runtime's "
            f"{FORMAT_VERSION}; upgrade darts-mim."
        )
    lacking = [k for k in REQUIRED_KEYS if k not in meta]
    if lacking:
        raise ValueError(f"{path!r} lacks darts-mim metadata entries {lacking}; export it again.")
    try:
        if parse_grid:
            # Imported here: the grid module imports Darts, which a numpy-only service lacks.
            from darts_mim.grid import GridSpec

            meta["grid"] = GridSpec.from_metadata(meta["grid"])
        else:
            grid = meta["grid"]
            if not grid["channels"] or int(grid["height"]) < 1 or int(grid["width"]) < 1:
                raise ValueError("an empty grid")
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"{path!r} has corrupt darts-mim metadata: its grid {meta['grid']!r} cannot be read "
            f"({err!r}); export it again."
        ) from err
    if graph_inputs is not None and list(graph_inputs) != meta["inputs"]:
        raise ValueError(
            f"{path!r}: the graph's inputs {list(graph_inputs)} differ from its metadata's "
            f"{meta['inputs']}; export it again."
        )
    return meta


def darts_spec(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of Darts' ``OnnxModelSpec`` (Darts 0.48) that describe a darts-mim graph.

    The graph takes Darts' feature tensors by their names (a sub-sequence of :data:`FEATURE_NAMES`)
    and returns one ``prediction`` ``(B, output_chunk_length, components, nr_params)``, which Darts
    reshapes to ``(B, output_chunk_length, components * nr_params)``: a darts-mim graph is a
    stateless, chunk-wise graph in Darts' terms (no ``state_*`` tensors, not ``stepwise_state``).

    Parameters
    ----------
    meta
        The file's entries, unprefixed (as :func:`read_metadata` returns them or as
        :func:`metadata_props` takes them).

    Returns
    -------
    dict
        Keyword arguments of ``OnnxModelSpec``; its JSON is the :data:`DARTS_SPEC_KEY` entry.
    """
    inputs = list(meta["inputs"])
    likelihood = meta["likelihood"]
    return {
        "input_chunk_length": int(meta["input_chunk_length"]),
        "output_chunk_length": int(meta["output_chunk_length"]),
        "output_chunk_shift": int(meta["output_chunk_shift"]),
        "uses_past_covariates": "past_covariates" in inputs,
        "uses_future_covariates": "future_covariates" in inputs,
        "uses_static_covariates": "static_covariates" in inputs,
        "likelihood_parameter_names": (
            list(likelihood["parameter_names"]) if likelihood is not None else None
        ),
        "feature_input_names": inputs,
        "input_names": inputs,
        "output_names": ["prediction"],
        "state_input_names": [],
        "state_output_names": [],
        "state_input_shapes": None,
        "stepwise_state": False,
    }
