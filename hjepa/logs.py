"""Output that reads in a terminal and in a log file alike.

Rich sizes its tables to the terminal, and to 80 columns when stdout is a pipe or a file,
which cuts wide tables to ``lev…``; a console that is not a terminal gets a width no table
of hjepa's reaches. Lightning's advertising tips and one known deprecation warning of the
torch / Lightning pair are dropped; every other message and warning still shows.
"""

from __future__ import annotations

import logging
import os
import warnings

from rich.console import Console

LOG_WIDTH = 240
"""Columns of a console writing to a pipe or a file (rich's default there is 80)."""
_LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
# torch >= 2.9 deprecates LeafSpec, which Lightning 2.5 still tests for at every training step
_PYTREE_WARNING = r"`isinstance\(treespec, LeafSpec\)` is deprecated"


def make_console(stderr: bool = False) -> Console:
    """A rich console: the terminal's width, else :data:`LOG_WIDTH` columns (or ``$COLUMNS``)."""
    console = Console(stderr=stderr)
    if console.is_terminal or "COLUMNS" in os.environ:
        return console
    return Console(stderr=stderr, width=LOG_WIDTH)


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip:")


def silence_known_noise() -> None:
    """Drop Lightning's "💡 Tip: ..." lines and the pytree deprecation warning (idempotent)."""
    for name in _LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropTips) for f in logger.filters):
            logger.addFilter(_DropTips())
    warnings.filterwarnings("ignore", message=_PYTREE_WARNING)
