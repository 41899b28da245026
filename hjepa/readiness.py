"""The readiness check: can level 0 of a trained stack plan yet?

Planning searches level 0's one-step predictions, so a level 0 whose predictions do not land on
the right next state (nearest-neighbour accuracy, ``nn_acc``) or barely beat copying the state
(``pred_rel_copy``) gives a planner nothing to search. :func:`readiness_warnings` reads the
per-level rows of the end-of-training table (:func:`hjepa.report.level_summary`) and returns one
:class:`ReadinessWarning` per figure past its limit; the runner prints them, ``report.md`` and
``results.json`` (key ``warnings``) keep them (docs/training.md, "The readiness warning").
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

MAP_NN_ACC_MIN = 0.90
"""A map level 0 (``gridmap``: its state is a map of cell codes) cannot plan yet while fewer than
this share of its one-step predictions land nearest to their own next state (``nn_acc``): the
graph planners snap predictions onto states, and a wrong snap is a wrong edge."""
MAP_REL_COPY_MAX = 0.60
"""A map level 0 cannot plan yet while its one-step prediction error is above this share of the
error of copying the last state (``pred_rel_copy``): most of the map stays put, so a map level
must beat copying by far to have learned where the agent goes."""
MAP_SNAP_ACC_MIN = 0.98
"""A map level 0 cannot plan yet while fewer than this share of its one-step predictions snap,
every cell, onto their next state (``snap_acc``): one wrong cell is a wrong imagined state. On
a 65 x 65 MazeRooms layout, a level 0 whose held-out moves snapped right 0.96 of the time
imagined 7,433 states to reach a goal that one at 1.00 reached in 243."""
VECTOR_REL_COPY_MAX = 0.90
"""A vector level 0 (``grid``, ``state``, ``image``, ``pixels``, ...) cannot plan yet while its
one-step prediction error is above this share of the error of copying the last state."""
MAP_KINDS = ("gridmap",)
"""Level kinds whose state is a map (a row with a ``map`` label counts as one as well)."""

FIGURE_NAMES = {"nn_acc": "one-step nearest-neighbour accuracy",
                "pred_rel_copy": "one-step prediction error relative to copying",
                "snap_acc": "one-step snapped-map accuracy"}  # fmt: skip


@dataclass(frozen=True)
class ReadinessWarning:
    """One figure of level ``level`` past its limit, and what to do about it.

    Attributes:
        level: the level (0).
        figure: the ``metrics.csv`` figure, ``nn_acc`` or ``pred_rel_copy``.
        value: its last value (validation first).
        limit: the threshold it crossed (a minimum for ``nn_acc``, a maximum for ``pred_rel_copy``).
        message: one line: the figure, its value, the limit and the fix.
    """

    level: int
    figure: str
    value: float
    limit: float
    message: str

    def as_dict(self) -> dict[str, Any]:
        """The entry of ``results.json["warnings"]``."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class _Limit:
    figure: str
    limit: float
    at_least: bool  # True: the figure must reach the limit; False: it must stay at or below it


def is_map_level(row: Mapping[str, Any]) -> bool:
    """Whether a summary row is of a level whose state is a map (see :data:`MAP_KINDS`)."""
    return bool(row.get("map")) or row.get("kind") in MAP_KINDS


def limits_for(row: Mapping[str, Any]) -> tuple[_Limit, ...]:
    """The figures a level-0 row is checked on, with their limits."""
    if is_map_level(row):
        return (_Limit("nn_acc", MAP_NN_ACC_MIN, True), _Limit("pred_rel_copy", MAP_REL_COPY_MAX, False),
                _Limit("snap_acc", MAP_SNAP_ACC_MIN, True))  # fmt: skip
    return (_Limit("pred_rel_copy", VECTOR_REL_COPY_MAX, False),)


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None when it is missing (None, NaN, not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def fix_hint(steps: int) -> str:
    """What to do: train for twice ``steps`` (or longer, when the steps are unknown), or on more data."""
    longer = f"`--set train.steps={2 * steps}`, twice the {steps:,} steps run" if steps > 0 else \
        "a larger `--set train.steps=N`"  # fmt: skip
    return f"Train longer ({longer}) or on more data (a larger `data.transitions`)."


def _message(row: Mapping[str, Any], lim: _Limit, value: float, steps: int) -> str:
    side = "below the minimum" if lim.at_least else "above the maximum"
    kind = "map" if is_map_level(row) else "vector"
    return (f"Level {row['level']} ({row.get('kind', kind)}) cannot plan yet: {FIGURE_NAMES[lim.figure]} "
            f"({lim.figure}) is {value:.3f}, {side} {lim.limit:.2f} for a {kind} level. {fix_hint(steps)}")  # fmt: skip


def readiness_warnings(rows: Sequence[Mapping[str, Any]], steps: int) -> list[ReadinessWarning]:
    """The warnings of level 0's row of ``rows`` (:func:`hjepa.report.level_summary`'s rows):
    one per figure past its limit (:data:`MAP_NN_ACC_MIN`, :data:`MAP_REL_COPY_MAX`,
    :data:`MAP_SNAP_ACC_MIN`, :data:`VECTOR_REL_COPY_MAX`); none for a missing figure (None or NaN) or without level 0.

    Args:
        rows: per-level rows with ``level``, ``kind`` (and ``map`` for a map level),
            ``nn_acc`` and ``pred_rel_copy`` (and ``snap_acc`` for a map level whose
            training measured it).
        steps: the training steps run (the fix suggests twice as many; 0: unknown).
    """
    row = next((r for r in rows if r.get("level") == 0), None)
    if row is None:
        return []
    found = []
    for lim in limits_for(row):
        value = _number(row.get(lim.figure))
        if value is None or (value >= lim.limit if lim.at_least else value <= lim.limit):
            continue
        found.append(ReadinessWarning(0, lim.figure, value, lim.limit, _message(row, lim, value, steps)))
    return found


def warnings_of(doc: Mapping[str, Any]) -> list[ReadinessWarning]:
    """The warnings a ``results.json`` document holds (none when it has no ``warnings`` key)."""
    return [ReadinessWarning(**{f.name: w[f.name] for f in dataclasses.fields(ReadinessWarning)})
            for w in doc.get("warnings", [])]  # fmt: skip


def warnings_md(warnings: Sequence[ReadinessWarning], heading: str | None = "## Warnings", prefix: str = "") -> list[str]:
    """The warnings as Markdown bullets (``prefix`` before each message) under ``heading`` (None:
    bare bullets, then a blank line); no lines when none."""
    if not warnings:
        return []
    bullets = [f"- {prefix}{w.message}" for w in warnings]
    return [*bullets, ""] if heading is None else [heading, "", *bullets]
