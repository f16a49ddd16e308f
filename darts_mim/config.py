"""What ``MIMModel`` decides for itself: the training recipe and the configuration resolved from data.

Two objects, both frozen and saved with the model:

- :class:`TrainingRecipe`: how the network is trained (learning-rate schedule, gradient clipping,
  early stopping, the input-window loss, scheduled sampling, and speed/memory switches). The MIM
  recipe is the default only where the user configured none of Darts' own training mechanisms
  (``optimizer_kwargs``, ``lr_scheduler_cls``): a Darts user who sets those gets Darts' semantics.
- :class:`ResolvedConfig`: every ``"auto"`` of the model resolved once, from the training data, when
  the network is built: the data's layout and period folding, the naive anchor, channel
  independence, reversible instance norm, and the recipe as it applies. ``model.config`` returns it; ``str(model.config)`` is the
  one line the fit logs.

This module does not import torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from darts_mim.grid import GridLayout
from darts_mim.options import LR_SCHEDULES, SAMPLING_SCHEDULES

__all__ = [
    "ResolvedConfig",
    "TrainingRecipe",
    "applied_recipe",
    "describe_anchor",
    "recipe_from_kwargs",
    "resolve_recipe",
]


@dataclass(frozen=True)
class TrainingRecipe:
    """How ``MIMModel`` trains: the optimisation recipe, MIM's training objective, and switches that
    trade speed or memory.

    Parameters
    ----------
    peak_lr
        Adam's learning rate when ``optimizer_kwargs`` sets none; with ``lr_schedule="one_cycle"`` it
        is the peak of the schedule. ``None`` keeps Darts' default (1e-3). Where ``optimizer_kwargs``
        sets ``lr``, the model's recipe reports that rate instead (``model.config``).
    lr_schedule
        ``"one_cycle"``: the learning rate warms up over the first 30 % of the optimizer steps of each
        ``fit`` from ``lr / 25`` to ``lr`` and then anneals along a cosine (PyTorch's ``OneCycleLR``
        with its defaults, planned over the steps Lightning counts when training starts). ``None``: a
        constant rate. Darts' ``lr_scheduler_cls`` takes precedence over it.
    gradient_clip_val
        Gradient norm Lightning clips to, unless ``pl_trainer_kwargs`` sets ``gradient_clip_val``
        (the model's recipe then reports that value). ``None``: no clipping.
    early_stopping_patience
        When ``fit`` gets a ``val_series``: stop after this many epochs without a lower validation
        loss and keep the weights of the best epoch. Nothing is added when ``pl_trainer_kwargs`` already has an
        ``EarlyStopping`` callback, or with ``None``. The untrained weights compete too, so an
        anchored model is never left worse than its naive forecast on the validation series.
    validation_holdout
        When ``fit`` gets no ``val_series``: hold out this share of each training series' most recent
        steps (at least one output chunk) as the validation series of the early stopping above, and
        train on the rest. ``None`` (default): train on every step, no early stopping.
    input_window_loss
        Also train on the one-step predictions inside the input window (frames 2..T_in, read with
        teacher forcing), as the authors' code does: the loss is then the mean over every predicted
        frame. ``False`` gives Darts' usual loss on the output chunk only. Prediction is unchanged.
        With sample weights, each window frame weighs as the first frame of the output chunk.
    sampling_schedule
        How decoder inputs are chosen during training: ``"linear"`` (scheduled sampling: the true
        previous frame with probability ``eta``, falling linearly from ``sampling_start`` to 0 over
        ``sampling_decay_steps`` optimizer steps, the authors' recipe), ``"teacher_forcing"`` (always
        the true frame) or ``"free_running"`` (always the model's own prediction, as when predicting).
    sampling_start
        Initial probability ``eta`` of feeding the true frame, in ``[0, 1]``.
    sampling_decay_steps
        Optimizer steps over which ``eta`` reaches 0. ``None``: 62.5 % of the steps planned for each
        fit, the authors' proportion (50,000 of 80,000).
    bf16_autocast
        Run the training steps' convolutions in bf16 autocast on CPUs with native bf16 (AVX512-BF16
        or AMX); elsewhere, and for validation, prediction and ONNX export, float32. For Lightning's
        own mixed precision use ``pl_trainer_kwargs={"precision": "bf16-mixed"}`` instead.
    cuda_graphs
        When training on one CUDA GPU, record the network's forward and backward once as CUDA graphs
        and replay them for every full batch (fewer kernel launches; the loss, optimizer and schedule
        stay eager). Partial batches, validation, prediction, autocast and several devices run
        eagerly; a failed capture warns once and trains eagerly. Ignored on a CPU.
    activation_checkpointing
        Recompute each time step's activations in the backward pass instead of storing them: less
        memory for long sequences and big grids, one more forward pass.

    Examples
    --------
    >>> from darts_mim import MIMModel, TrainingRecipe
    >>> recipe = TrainingRecipe(lr_schedule=None, early_stopping_patience=10)
    >>> model = MIMModel(12, 6, training_recipe=recipe)
    """

    peak_lr: float | None = 3e-3
    lr_schedule: str | None = "one_cycle"
    gradient_clip_val: float | None = 1.0
    early_stopping_patience: int | None = 5
    validation_holdout: float | None = None
    input_window_loss: bool = True
    sampling_schedule: str = "linear"
    sampling_start: float = 1.0
    sampling_decay_steps: int | None = None
    bf16_autocast: bool = False
    cuda_graphs: bool = False
    activation_checkpointing: bool = False

    def __post_init__(self) -> None:
        def positive(name: str, value, kind=(int,)) -> None:
            if value is None:
                return
            if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
                raise ValueError(
                    f"TrainingRecipe: `{name}` must be positive or None, got {value!r}."
                )

        positive("peak_lr", self.peak_lr, (int, float))
        positive("gradient_clip_val", self.gradient_clip_val, (int, float))
        positive("early_stopping_patience", self.early_stopping_patience)
        positive("sampling_decay_steps", self.sampling_decay_steps)
        holdout = self.validation_holdout
        if holdout is not None and (
            isinstance(holdout, bool)
            or not isinstance(holdout, (int, float))
            or not 0.0 < holdout < 1.0
        ):
            raise ValueError(
                f"TrainingRecipe: `validation_holdout` is a share of the training series in (0, 1) "
                f"or None, got {holdout!r}."
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"TrainingRecipe: `lr_schedule` must be one of {LR_SCHEDULES}, got "
                f"{self.lr_schedule!r}; or pass Darts' `lr_scheduler_cls` and "
                "`lr_scheduler_kwargs` to MIMModel for any other schedule."
            )
        if self.sampling_schedule not in SAMPLING_SCHEDULES:
            raise ValueError(
                f"TrainingRecipe: `sampling_schedule` must be one of {SAMPLING_SCHEDULES}, got "
                f"{self.sampling_schedule!r}."
            )
        if not 0.0 <= float(self.sampling_start) <= 1.0:
            raise ValueError(
                f"TrainingRecipe: `sampling_start` is a probability in [0, 1], got "
                f"{self.sampling_start!r}."
            )
        for name in (
            "input_window_loss",
            "bf16_autocast",
            "cuda_graphs",
            "activation_checkpointing",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(
                    f"TrainingRecipe: `{name}` must be True or False, got {getattr(self, name)!r}."
                )

    @classmethod
    def darts(cls, **changes) -> TrainingRecipe:
        """Darts' own training semantics: Darts' learning rate (1e-3 unless ``optimizer_kwargs``
        sets one), no schedule but ``lr_scheduler_cls``, no clipping but ``pl_trainer_kwargs``', no
        early stopping; MIM's objective (input-window loss, scheduled sampling) as in the default.
        This is what a model gets when it sets ``optimizer_kwargs`` or ``lr_scheduler_cls``."""
        base = {
            "peak_lr": None,
            "lr_schedule": None,
            "gradient_clip_val": None,
            "early_stopping_patience": None,
        }
        return cls(**{**base, **changes})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingRecipe:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def describe(self, lr_scheduler: str | None = None) -> str:
        """The optimisation part in a few words, e.g. ``one-cycle lr 0.003, clip 1, early stop 5
        on val_series``; ``lr_scheduler`` names Darts' ``lr_scheduler_cls`` where one replaces the
        recipe's schedule."""
        lr = "" if self.peak_lr is None else f" {self.peak_lr:g}"
        if lr_scheduler is not None:
            parts = [f"{lr_scheduler} from lr{lr}" if lr else lr_scheduler]
        elif self.lr_schedule:
            parts = [f"one-cycle lr{lr}"]
        else:
            parts = [f"constant lr{lr}"]
        if self.gradient_clip_val is not None:
            parts.append(f"clip {self.gradient_clip_val:g}")
        if self.early_stopping_patience is not None:
            # early stopping needs a validation series: fit's val_series, or the held-out steps
            on = "val_series"
            if self.validation_holdout is not None:
                on += f" or the last {self.validation_holdout:.0%}"
            parts.append(f"early stop {self.early_stopping_patience} on {on}")
        return ", ".join(parts)


def recipe_from_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A flat dict of ``MIMModel`` arguments (a JSON or YAML configuration) with the
    :class:`TrainingRecipe` fields it names gathered into ``training_recipe``.

    Parameters
    ----------
    kwargs
        ``MIMModel`` arguments, possibly with recipe fields at the top level, e.g.
        ``{"num_hidden": [16, 16], "lr_schedule": null, "input_window_loss": false}``; a
        ``training_recipe`` given as a dict is read the same way.

    Returns
    -------
    dict
        A copy without those fields and with ``training_recipe=TrainingRecipe(...)`` when any was
        given (the other fields at their defaults).

    Examples
    --------
    >>> from darts_mim.config import recipe_from_kwargs
    >>> recipe_from_kwargs({"n_epochs": 3, "lr_schedule": None})["training_recipe"].lr_schedule is None
    True
    """
    out = dict(kwargs)
    fields = {f.name for f in dataclasses.fields(TrainingRecipe)}
    given = out.pop("training_recipe", None)
    if isinstance(given, TrainingRecipe):
        given = given.to_dict()
    values = dict(given or {})
    values.update({name: out.pop(name) for name in list(out) if name in fields})
    if values or given is not None:
        out["training_recipe"] = TrainingRecipe(**values)
    return out


def resolve_recipe(
    recipe: TrainingRecipe | None,
    optimizer_kwargs: dict | None,
    lr_scheduler_cls,
) -> tuple[TrainingRecipe, str]:
    """The recipe a model trains with, and where it comes from.

    Parameters
    ----------
    recipe
        The model's ``training_recipe``: ``None`` for the default.
    optimizer_kwargs, lr_scheduler_cls
        Darts' parameters of the model.

    Returns
    -------
    tuple
        The recipe, and ``"mim"`` (the default MIM recipe), ``"darts"`` (the user set Darts' own
        optimizer or scheduler arguments, so Darts' semantics apply) or ``"user"`` (an explicit
        recipe, applied as given).
    """
    if recipe is not None:
        if not isinstance(recipe, TrainingRecipe):
            raise ValueError(
                f"`training_recipe` must be a darts_mim.TrainingRecipe or None, got "
                f"{type(recipe).__name__}."
            )
        return recipe, "user"
    if optimizer_kwargs or lr_scheduler_cls is not None:
        return TrainingRecipe.darts(), "darts"
    return TrainingRecipe(), "mim"


def applied_recipe(
    recipe: TrainingRecipe,
    optimizer_kwargs: dict | None,
    pl_trainer_kwargs: dict | None,
    adam: bool = True,
    lr_scheduler: bool = False,
    user_early_stopping: bool = False,
) -> TrainingRecipe:
    """The recipe as training applies it: Darts' own arguments take precedence over its learning
    rate, schedule, gradient clipping and early stopping, so that ``model.config`` reports what
    training does.

    ``peak_lr`` becomes ``optimizer_kwargs["lr"]`` where the user set one (or ``None``, the
    optimizer's own default, for an optimizer other than Adam: the recipe sets Adam's rate only);
    ``gradient_clip_val`` becomes ``pl_trainer_kwargs["gradient_clip_val"]`` where the user set it;
    ``lr_schedule`` is ``None`` under Darts' ``lr_scheduler_cls`` (``lr_scheduler=True``), and
    ``early_stopping_patience`` is ``None`` where the user's own ``EarlyStopping`` callback
    replaces it (``user_early_stopping=True``). ``adam``: whether the optimizer is Adam.
    """

    def positive_or_none(value) -> float | None:
        # Lightning reads a clip of 0 as none; a rate of 0 (a frozen model) has no recipe value
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return value if number and value > 0 else None

    changes: dict[str, Any] = {}
    optimizer_kwargs = optimizer_kwargs or {}
    if "lr" in optimizer_kwargs:
        changes["peak_lr"] = positive_or_none(optimizer_kwargs["lr"])
    elif not adam:
        changes["peak_lr"] = None
    if "gradient_clip_val" in (pl_trainer_kwargs or {}):
        changes["gradient_clip_val"] = positive_or_none(pl_trainer_kwargs["gradient_clip_val"])
    if lr_scheduler:
        changes["lr_schedule"] = None
    if user_early_stopping:
        changes["early_stopping_patience"] = None
    return dataclasses.replace(recipe, **changes) if changes else recipe


@dataclass(frozen=True)
class ResolvedConfig:
    """Every choice ``MIMModel`` made from its parameters and the training data, once, when the
    network was built; saved with the model and in every checkpoint.

    Attributes
    ----------
    layout
        The data's layout (:class:`darts_mim.grid.GridLayout`): the target grid, gridded covariate
        channels, always-missing components and the period folding (``layout.fold`` steps per
        network frame, 1 for none; ``layout.fold_rows`` rows per folded frame).
    anchor_lag
        The naive forecast the outputs are anchored on, in network frames before the forecast one
        (0: no anchor; for a folded series a frame is a period). :attr:`anchor_lag_steps` gives it
        in time steps.
    anchor
        What that anchor is, in words: ``"none"``, ``"persistence"``, ``"the seasonal naive (24
        steps)"``, ``"the value 3 steps earlier"`` or ``"the input window's mean (...)"``.
    window_mean
        Whether the outputs start from the input window's mean (``naive_anchor="mean"``): no naive
        anchor, instance norm on, and the head starting at zero.
    zero_start
        Whether the outputs start from zero (``naive_anchor="zero"``): no naive anchor and the head
        starting at zero.
    channel_independent
        Whether each component of a plain multivariate series is forecast as its own sample.
    instance_norm
        Darts' reversible instance norm: ``False``, ``True`` or a dict of ``RINorm`` arguments.
    linear_residual
        Whether a learned linear map of the input window (one for all components, starting at
        zero) is added to the forecast (``MIMModel(linear_residual=True)``).
    naive_combination
        With ``naive_anchor="combined"``: the fitted per-lead combination of naive forecasts added
        to the anchor's forecast (:meth:`darts_mim.naive_combination.NaiveCombination.to_dict`),
        else ``None``.
    recipe
        The training recipe as it applies (:class:`TrainingRecipe`).
    recipe_source
        ``"mim"``, ``"darts"`` or ``"user"`` (see :func:`resolve_recipe`).
    lr_scheduler
        The name of Darts' ``lr_scheduler_cls`` where the model has one (it replaces the recipe's
        schedule), else ``None``.
    """

    layout: GridLayout
    anchor_lag: int = 0
    anchor: str = "none"
    window_mean: bool = False
    zero_start: bool = False
    channel_independent: bool = False
    instance_norm: bool | dict = False
    linear_residual: bool = False
    naive_combination: dict | None = None
    recipe: TrainingRecipe = dataclasses.field(default_factory=TrainingRecipe)
    recipe_source: str = "mim"
    lr_scheduler: str | None = None

    @property
    def anchor_lag_steps(self) -> int:
        """The anchor's lag in time steps (a folded frame is ``layout.fold`` steps)."""
        return self.anchor_lag * self.layout.fold

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["layout"] = self.layout.to_dict()
        values["recipe"] = self.recipe.to_dict()
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ResolvedConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in values.items() if k in known}
        kept["layout"] = GridLayout.from_dict(kept["layout"])
        if isinstance(kept.get("recipe"), dict):
            kept["recipe"] = TrainingRecipe.from_dict(kept["recipe"])
        return cls(**kept)

    def __str__(self) -> str:
        layout = self.layout
        if layout.fold > 1:
            rows = f" in {layout.fold_rows} rows" if layout.fold_rows > 1 else ""
            shape = f"folded by {layout.fold}{rows}"
        elif layout.grid.n_cells > 1:
            shape = layout.grid.describe()
        else:
            shape = "not folded"
        anchor = (
            f"no naive anchor{self.anchor[4:]}"
            if self.anchor.startswith("none")
            else f"anchored on {self.anchor}"
        )
        independent = "channel-independent" if self.channel_independent else "channels joint"
        norm = "instance norm on" if self.instance_norm else "instance norm off"
        if self.linear_residual:
            norm += ", linear residual"
        source = {"mim": "MIM recipe", "darts": "Darts' semantics", "user": "user recipe"}
        recipe = self.recipe.describe(self.lr_scheduler)
        recipe = f"{source.get(self.recipe_source, self.recipe_source)}: {recipe}"
        return f"{shape}, {anchor}, {independent}, {norm}; {recipe}"


def describe_anchor(lag_steps: int, period: int | None) -> str:
    """The anchor of a lag in steps, in words."""
    if lag_steps <= 0:
        return "none"
    if lag_steps == 1:
        return "persistence"
    if period is not None and lag_steps == period:
        return f"the seasonal naive ({lag_steps} steps)"
    return f"the value {lag_steps} steps earlier"
