"""Lightning callbacks MIMModel adds by default when ``fit`` gets a validation series.

Darts trains for ``n_epochs`` whatever the validation loss does and keeps the last weights. With a
validation series, MIMModel instead stops when the validation loss has not improved for
``early_stopping_patience`` epochs and returns the weights of the best epoch: on a small budget the
last epoch is often not the best one, and a user who passes a validation series expects it to be used.

The untrained weights compete too ("epoch 0", scored by Lightning's sanity check over the whole
validation series): an anchored model starts as its naive forecast, so training can never leave it
worse than that forecast on the validation series.
"""

from __future__ import annotations

import math

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback, EarlyStopping

MONITOR = "val_loss"


class RestoreBestWeights(Callback):
    """Keep a copy of the weights of the epoch with the lowest validation loss (in memory, on the
    CPU) and load them back when training ends."""

    def __init__(self, monitor: str = MONITOR):
        super().__init__()
        self.monitor = monitor
        self.best_score = math.inf
        self.best_epoch: int | None = None
        self._best_state: dict | None = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking and not _checked_every_batch(trainer):
            return  # a partial sanity check is no score of the untrained weights
        score = trainer.callback_metrics.get(self.monitor)
        if score is None or not math.isfinite(float(score)) or float(score) >= self.best_score:
            return
        self.best_score = float(score)
        # -1: the untrained weights (the sanity check before the first epoch)
        self.best_epoch = -1 if trainer.sanity_checking else trainer.current_epoch
        self._best_state = {
            key: value.detach().to("cpu", copy=True)
            for key, value in pl_module.state_dict().items()
        }

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._best_state is not None:
            pl_module.load_state_dict(self._best_state)


def _checked_every_batch(trainer: pl.Trainer) -> bool:
    sanity, full = trainer.num_sanity_val_batches, trainer.num_val_batches
    return bool(full) and all(s >= f for s, f in zip(sanity, full, strict=True))


def early_stopping_callbacks(patience: int) -> list[Callback]:
    """Stop after ``patience`` epochs without a lower validation loss, and keep the best weights."""
    return [EarlyStopping(monitor=MONITOR, patience=patience, mode="min"), RestoreBestWeights()]


def has_early_stopping(callbacks) -> bool:
    """Whether the user already configured early stopping (then MIMModel adds none)."""
    return any(isinstance(cb, EarlyStopping) for cb in callbacks or ())
