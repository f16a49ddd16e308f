"""Reading what earlier versions of darts-mim saved: the one home of every old-format path.

Models and checkpoints written by darts-mim 0.1 to 0.5 kept their choices in separate attributes and
hyper-parameters (``grid_layout``, ``anchor_lag``, ``channel_independent``, ``lr_schedule``,
``auto_bf16``...). Since 0.6 they are one :class:`darts_mim.config.ResolvedConfig` (``config``) and one
:class:`darts_mim.config.TrainingRecipe` (``training_recipe``). The functions here turn the old forms
into the new ones when a model or checkpoint is read, so that the rest of the package knows only the
current form. An option a model was saved without is given the behaviour the model was trained with
(the option did not exist then), not today's default.
"""

from __future__ import annotations

from typing import Any

from darts_mim.config import ResolvedConfig, TrainingRecipe, describe_anchor
from darts_mim.grid import GridLayout, GridSpec

__all__ = ["upgrade_checkpoint_hparams", "upgrade_model_state"]

# Old training options and the value that reproduces a model saved before each one existed.
_RECIPE_KEYS_BEFORE = {
    "lr_schedule": None,
    "early_stopping_patience": None,
    "input_window_loss": False,
    "sampling_schedule": "linear",
    "sampling_start": 1.0,
    "sampling_decay_steps": None,
    "cuda_graphs": False,
    "activation_checkpointing": False,
}
# Old keys of the resolved choices, kept in the module's hyper-parameters by 0.1-0.5.
_CONFIG_KEYS = ("grid_layout", "grid", "missing_components", "anchor_lag", "channel_independent")


def _recipe_from(values: dict[str, Any], lr: float | None, clip: float | None) -> TrainingRecipe:
    """The recipe of a model saved with separate training options (0.1-0.5); ``lr`` and ``clip``
    are the learning rate and gradient clipping it was given (0.3-0.5 put them into Darts'
    ``optimizer_kwargs`` and ``pl_trainer_kwargs``)."""
    options = {key: values.get(key, before) for key, before in _RECIPE_KEYS_BEFORE.items()}
    return TrainingRecipe(
        peak_lr=lr,
        gradient_clip_val=clip,
        bf16_autocast=bool(values.get("auto_bf16", False)),
        **options,
    )


def _source_of(recipe: TrainingRecipe) -> str:
    """``"mim"`` for the default recipe, else ``"user"`` (the old options were set explicitly)."""
    return "mim" if recipe == TrainingRecipe() else "user"


def _legacy_layout(values: dict[str, Any]) -> GridLayout:
    """The layout of a module's hyper-parameters: ``grid_layout`` (0.2-0.5) or ``grid`` (0.1)."""
    if values.get("grid_layout") is not None:
        return GridLayout.from_dict(values["grid_layout"])
    channels, height, width = (int(g) for g in values["grid"])
    spec = GridSpec(tuple(f"ch{i}" for i in range(channels)), height, width)
    return GridLayout(spec, missing=tuple(values.get("missing_components") or ()))


def _legacy_config(values: dict[str, Any], recipe: TrainingRecipe, source: str) -> dict:
    """A ``config`` dict from the separate keys of 0.1-0.5."""
    layout = _legacy_layout(values)
    # anchor_lag exists since 0.3; before it, naive_anchor=True anchored on the last frame
    lag = values.get("anchor_lag")
    lag = int(values.get("naive_anchor") is True) if lag is None else int(lag)
    period = layout.fold if layout.fold > 1 else None
    rin = values.get("use_reversible_instance_norm", False)
    return ResolvedConfig(
        layout=layout,
        anchor_lag=lag,
        anchor=describe_anchor(lag * layout.fold, period),
        channel_independent=values.get("channel_independent", False) is True,
        instance_norm=False if rin == "auto" else rin,
        recipe=recipe,
        recipe_source=source,
    ).to_dict()


def upgrade_checkpoint_hparams(hparams: dict[str, Any]) -> dict[str, Any]:
    """The module hyper-parameters of a checkpoint in the current form.

    Parameters
    ----------
    hparams
        A checkpoint's ``hyper_parameters`` (or the keyword arguments of a module being rebuilt from
        them).

    Returns
    -------
    dict
        A copy with ``config`` (the resolved configuration) and without the keys of 0.1-0.5 it
        replaces; a current checkpoint's hyper-parameters unchanged.
    """
    hparams = dict(hparams)
    old_keys = (*_CONFIG_KEYS, *_RECIPE_KEYS_BEFORE, "auto_bf16", "naive_anchor")
    if hparams.get("config") is None and (
        hparams.get("grid_layout") is not None or hparams.get("grid") is not None
    ):
        lr = (hparams.get("optimizer_kwargs") or {}).get("lr")
        recipe = _recipe_from(hparams, lr, clip=None)
        hparams["config"] = _legacy_config(hparams, recipe, _source_of(recipe))
    for key in old_keys:
        hparams.pop(key, None)
    return hparams


def upgrade_model_state(state: dict[str, Any]) -> dict[str, Any]:
    """The pickled state of a ``MIMModel`` in the current form (a current one unchanged).

    Darts pickles the model object (``MODEL.pt``) with its constructor arguments
    (``model_params``, from which ``untrained_model()`` rebuilds it), the network's
    hyper-parameters (``pl_module_params``) and our attributes.
    """
    if "training_recipe" in state:
        return state
    state = dict(state)
    lr = ((state.get("pl_module_params") or {}).get("optimizer_kwargs") or {}).get("lr")
    clip = (state.get("trainer_params") or {}).get("gradient_clip_val")
    recipe = _recipe_from(state, lr, clip)
    source = _source_of(recipe)
    for key in (*_RECIPE_KEYS_BEFORE, "auto_bf16"):
        state.pop(key, None)
    state["training_recipe"] = recipe
    state["_recipe_source"] = source
    # options of later versions: the behaviour the model was trained with
    for key, before in (
        ("naive_anchor", False),
        ("fold_period", None),
        ("fold_rows", 1),
        ("channel_independent", False),
        ("_stop_early", False),
    ):
        state.setdefault(key, before)
    params = dict(state.get("pl_module_params") or {})
    legacy_layout = state.pop("_mim_layout", None)  # 0.1 kept the layout beside Darts' state
    if legacy_layout is not None and "grid_layout" not in params:
        channels, height, width = legacy_layout["grid"]
        params["grid_layout"] = GridLayout(
            GridSpec(tuple(channels), height, width),
            legacy_layout["past_grid_channels"],
            legacy_layout["future_grid_channels"],
            tuple(legacy_layout.get("missing") or ()),
            tuple(legacy_layout["components"]) if legacy_layout.get("components") else None,
        ).to_dict()
    if params.get("grid_layout") is not None and params.get("config") is None:
        config = _legacy_config(params, recipe, source)
        # the model's own naive_anchor decides the lag of models saved before anchor_lag existed
        if params.get("anchor_lag") is None and state["naive_anchor"] is True:
            config["anchor_lag"] = 1
            config["anchor"] = describe_anchor(config["layout"]["fold"], None)
        params["config"] = config
        if params.get("use_reversible_instance_norm") == "auto":
            params["use_reversible_instance_norm"] = config["instance_norm"]
    for key in _CONFIG_KEYS:
        params.pop(key, None)
    state["pl_module_params"] = params
    # the constructor arguments, for untrained_model(): today's names
    model_params = dict(state.get("_model_params") or {})
    for key in (*_RECIPE_KEYS_BEFORE, "precision"):
        model_params.pop(key, None)
    model_params["training_recipe"] = recipe if source == "user" else None
    for key, before in (
        ("naive_anchor", False),
        ("fold_period", None),
        ("fold_rows", 1),
        ("channel_independent", False),
        ("use_reversible_instance_norm", False),
    ):
        model_params.setdefault(key, before)
    state["_model_params"] = model_params
    return state
