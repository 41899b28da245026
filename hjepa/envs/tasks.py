"""Evaluation tasks of the MiniGrid suites and the distance bins they are stratified into.

A :class:`Task` is a layout, a start pose and a goal cell with the oracle's distance between
them (:func:`hjepa.envs.oracle.make_tasks` draws them); :class:`DistanceBins` are the suites'
ordered, non-overlapping distance ranges (docs/benchmark.md), also used by PointMaze's tasks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Mapping

from hjepa.errors import ConfigError

Pose = tuple[int, int, int]
"""``(x, y, dir)``, ``dir`` 0=east (+x), 1=south (+y), 2=west, 3=north."""
Cell = tuple[int, int]
"""``(x, y)``, indexing ``obs[x][y]``."""
Bins = Mapping[str, tuple[float, float]]
"""Ordered ``name -> (lo, hi)``, both ends inclusive."""


@dataclass(frozen=True)
class Task:
    """One evaluation task of a MiniGrid suite."""

    layout_seed: int
    """The ``reset(seed=...)`` that fixes the layout."""
    start: Pose
    """The agent's start pose ``(x, y, dir)``."""
    goal: Cell
    """The goal cell ``(x, y)``; the agent succeeds by standing on it."""
    distance: int
    """The oracle's shortest path length in actions."""
    bin: str
    """The distance bin the task was drawn for."""


@dataclass(frozen=True)
class DistanceBins(Mapping[str, tuple[float, float]]):
    """Ordered, non-overlapping distance bins, read as a mapping ``name -> (lo, hi)``.

    Both ends are inclusive; ``hi`` may be ``math.inf``. Build one with :meth:`from_mapping`.
    """

    bins: tuple[tuple[str, float, float], ...]
    """``(name, lo, hi)`` in increasing order of distance."""

    def __post_init__(self) -> None:
        names = [b[0] for b in self.bins]
        if not self.bins or len(set(names)) != len(names):
            raise ConfigError(f"Distance bins need at least one bin and distinct names, got {names}.")
        prev_hi = -math.inf
        for name, lo, hi in self.bins:
            if not (0 <= lo <= hi) or lo <= prev_hi:
                raise ConfigError(f"Distance bin '{name}' ({lo}, {hi}): need 0 <= lo <= hi, increasing, no overlap.")
            prev_hi = hi

    @classmethod
    def from_mapping(cls, bins: Bins) -> "DistanceBins":
        """From an ordered mapping ``{name: (lo, hi)}``."""
        return cls(tuple((str(k), float(lo), float(hi)) for k, (lo, hi) in bins.items()))

    def __getitem__(self, name: str) -> tuple[float, float]:
        return {n: (lo, hi) for n, lo, hi in self.bins}[name]

    def __iter__(self) -> Iterator[str]:
        return iter(b[0] for b in self.bins)

    def __len__(self) -> int:
        return len(self.bins)

    def describe(self, name: str) -> str:
        """``"25-inf"``: a bin's range for messages and tables."""
        lo, hi = self[name]
        return f"{lo:g}-{hi:g}"


FOURROOMS_BINS = DistanceBins.from_mapping({"short": (1, 12), "medium": (13, 24), "long": (25, math.inf)})
MAZEROOMS_BINS = DistanceBins.from_mapping(
    {"short": (1, 40), "medium": (41, 80), "long": (81, 120), "xlong": (121, math.inf)}
)


def as_bins(bins: Bins) -> DistanceBins:
    """``bins`` as :class:`DistanceBins` (a mapping ``{name: (lo, hi)}`` is converted)."""
    return bins if isinstance(bins, DistanceBins) else DistanceBins.from_mapping(bins)


def bin_of(distance: float, bins: Bins) -> str | None:
    """The name of the bin holding ``distance``, or None when no bin does."""
    return next((name for name, (lo, hi) in as_bins(bins).items() if lo <= distance <= hi), None)
