"""Silencing third-party chatter (Lightning, Darts, the ONNX exporter) around the demo and the CLI.

The one home of :func:`quiet_logs`: the ``darts-mim`` command and the demo both use it, so neither
imports the other for it. Only other libraries are silenced; warnings raised by ``darts_mim`` itself
(deprecations included) still reach the user.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = [
    "QUIET_LOGGERS",
    "QUIET_WARNING_MODULES",
    "TRAINER_CHATTER",
    "logger",
    "quiet_logs",
    "quiet_trainer_setup",
]

#: The package's logger. Its INFO lines (the configuration a fit resolved) reach the terminal the way
#: Lightning's own do: where the application configured no logging, a stream handler is attached
#: here; where it did, the records propagate to the application's handlers.
logger = logging.getLogger("darts_mim")
if not logging.getLogger().hasHandlers():
    logger.setLevel(logging.INFO)
    logger.addHandler(logging.StreamHandler())
    logger.propagate = False

#: Loggers lowered to CRITICAL inside :func:`quiet_logs`.
QUIET_LOGGERS: tuple[str, ...] = (
    "darts",
    "pytorch_lightning",
    "lightning_fabric",
    "torch.onnx",
    "onnxscript",
)

#: Modules (regular expressions matched at the start of the module a warning is attributed to) whose
#: warnings, of every category, are hidden inside :func:`quiet_logs`: Lightning's tips ("consider
#: increasing num_workers", "GPU available but not used") and its deprecation notices about its own
#: internals, which a user of the command can do nothing about.
QUIET_WARNING_MODULES: tuple[str, ...] = (
    r"pytorch_lightning(\.|$)",
    r"lightning_fabric(\.|$)",
    r"lightning(\.|$)",
)


@contextmanager
def quiet_logs() -> Iterator[None]:
    """Silence Lightning's tips and warnings and Darts' duplicate error logs for the block's duration.

    Darts logs every error it raises before raising it; the command line prints the error itself,
    once. Lightning's progress bar is not a log and stays. Loggers and warning filters are restored on
    exit.

    Warnings are filtered by the module they are attributed to (:data:`QUIET_WARNING_MODULES`), never
    by category alone, so that a ``DeprecationWarning`` raised by ``darts_mim`` or by the user's own
    code still shows. Two messages that Lightning raises through Darts' frames (and so cannot be
    matched by module) are filtered by text.

    Examples
    --------
    >>> from darts_mim.logs import quiet_logs
    >>> with quiet_logs():
    ...     pass  # fit / predict here without Lightning's tips
    """
    # Lightning sets its own logger level when first imported: import it before overriding that.
    import pytorch_lightning  # noqa: F401

    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            for module in QUIET_WARNING_MODULES:
                warnings.filterwarnings("ignore", module=module)
            # Lightning warns these with a stack level that points into Darts' or torch's frames.
            warnings.filterwarnings("ignore", message=".*across ranks is zero.*")
            warnings.filterwarnings("ignore", message=".*pin_memory.*")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


#: Lines Lightning logs each time a Trainer is built (every fit and every predict): the device
#: inventory and an advertisement. :func:`quiet_trainer_setup` drops them; Lightning's warnings,
#: such as "GPU available but not used", still show.
TRAINER_CHATTER: tuple[str, ...] = (
    "GPU available:",
    "TPU available:",
    "\N{ELECTRIC LIGHT BULB} Tip:",
)


class _DropChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(TRAINER_CHATTER)


@contextmanager
def quiet_trainer_setup() -> Iterator[None]:
    """Build a Lightning Trainer without its :data:`TRAINER_CHATTER` lines (for the block's duration
    only, so that other models in the process are untouched)."""
    loggers = [logging.getLogger(f"{pkg}.utilities.rank_zero") for pkg in _RANK_ZERO_PACKAGES]
    drop = _DropChatter()
    for lg in loggers:
        lg.addFilter(drop)
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeFilter(drop)


_RANK_ZERO_PACKAGES = (
    "pytorch_lightning",
    "lightning_fabric",
    "lightning.pytorch",
    "lightning.fabric",
)
