"""Exceptions of hjepa.

Every error a user can cause derives from :class:`HJEPAError`. The command line prints its
message as one paragraph and exits non-zero (``--debug`` shows the traceback). Each subclass
names one kind of mistake so that API users can catch precisely what they expect.
"""

from __future__ import annotations

import difflib
from typing import Iterable


class HJEPAError(Exception):
    """Base class of every user-facing hjepa error."""


class ConfigError(HJEPAError, ValueError):
    """A configuration value is invalid (bad stride, unknown key, wrong type, ...)."""


class UnknownNameError(HJEPAError, KeyError):
    """A name (level kind, experiment, env id, regulariser, ...) is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain prose
        return str(self.args[0]) if self.args else ""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` for the choices closest to a mistyped ``name`` ("" when none is close)."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


class UnknownEnvError(UnknownNameError):
    """An environment id that gymnasium does not know."""


class NotNavigationEnvError(HJEPAError, ValueError):
    """An environment hjepa cannot navigate (not a MiniGrid grid world or a supported maze)."""


class DatasetError(HJEPAError, ValueError):
    """A dataset folder is missing, empty, truncated, corrupt or of another format version."""


class SpecMismatchError(HJEPAError, ValueError):
    """Observation or action spec of a dataset / checkpoint does not match what is asked."""


class CheckpointError(HJEPAError, ValueError):
    """A checkpoint is missing, corrupt or incompatible."""


class StorageError(HJEPAError, OSError):
    """A file could not be written (disk full, no permission, ...); nothing partial is left."""


class NonFiniteLossError(HJEPAError, FloatingPointError):
    """A loss term became NaN or Inf during training; names the level and the term."""

    def __init__(self, level: int, term: str, value: float, step: int) -> None:
        self.level, self.term, self.value, self.step = level, term, value, step
        if level < 0:
            what = "the joint loss (every term finite, their weighted sum not)"
        elif term == "gradient" or term.startswith("parameter"):
            what = f"level {level}'s {term}"
        else:
            what = f"level {level}'s '{term}' loss"
        super().__init__(
            f"Training stopped at step {step}: {what} is {value}. "
            "Nothing was saved after the fault: checkpoints/last.ckpt, if one was written, is the last "
            "one before it. Lower the learning rate, check the data for NaNs, or train with "
            "--set train.precision=32-true."
        )


class InvalidGoalError(HJEPAError, ValueError):
    """A goal or start cell that is outside the grid, inside a wall, or unreachable."""


class MissingExtraError(HJEPAError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class InspectionError(HJEPAError, ValueError):
    """An inspection request the checkpoint cannot answer: a level it does not have, an
    episode index outside the evaluation tasks, or a view its observations cannot show."""


class ResultsError(HJEPAError, ValueError):
    """A run folder without a ``results.json``, or one that does not follow its schema."""
