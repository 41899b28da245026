"""Maze geometry and the evaluation oracle of continuous mazes (PointMaze).

A maze is a grid of square cells, walls or free, ``scaling`` metres on a side, placed in the
plane the way gymnasium-robotics places its PointMaze (``Maze.cell_rowcol_to_xy``): cell
``(i, j)`` (row i, column j of the map) has its centre at

    x = (j + 0.5) * s - cols * s / 2,    y = rows * s / 2 - (i + 0.5) * s,

so the map is centred on the origin, x grows with the column and y shrinks with the row.

:class:`MazeOracle` answers geodesic distances in metres with networkx shortest paths over
the free cells (4-neighbour moves, one cell = ``s`` metres): the distance from a start point
to a goal point is the length of the polyline ``start -> centres of the path's inner cells ->
goal`` along a shortest cell path (the straight segment when both lie in the same cell). It
is an upper bound of the any-angle geodesic (a turn costs at most ``(1 - 1/sqrt(2)) * s``
extra), so the oracle agent, which cuts corners, scores SPL about 1. :func:`make_maze_tasks`
draws tasks stratified by that distance, as :func:`hjepa.envs.oracle.make_tasks` does for
MiniGrid. Evaluation and the oracle agent only: a planning agent never sees this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

import networkx as nx
import numpy as np

from hjepa.envs.tasks import Bins, DistanceBins, as_bins, bin_of
from hjepa.errors import ConfigError, InvalidGoalError

Cell = tuple[int, int]  # (row i, column j)
XY = tuple[float, float]


@dataclass(frozen=True)
class MazeMap:
    """A maze map and its placement in the plane.

    Attributes:
        rows: the map as strings, one per row, ``"#"`` a wall and ``"."`` a free cell.
        scaling: side of a cell in metres.
    """

    rows: tuple[str, ...]
    scaling: float = 1.0

    def __post_init__(self) -> None:
        widths = {len(r) for r in self.rows}
        if not self.rows or len(widths) != 1 or set("".join(self.rows)) - set("#."):
            raise ConfigError("A maze map needs equally long rows of '#' (wall) and '.' (free).")
        if not self.free_cells:
            raise ConfigError("A maze map needs at least one free cell.")

    @classmethod
    def from_grid(cls, grid: Sequence[Sequence[object]], scaling: float = 1.0) -> "MazeMap":
        """From a gymnasium-robotics style list of lists: ``1`` a wall, anything else free."""
        return cls(tuple("".join("#" if v == 1 else "." for v in row) for row in grid), scaling)

    @cached_property
    def walls(self) -> np.ndarray:
        """``(rows, cols)`` bool, True on walls, indexed ``[i][j]``."""
        return np.array([[c == "#" for c in r] for r in self.rows], dtype=bool)

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)``."""
        return len(self.rows), len(self.rows[0])

    @property
    def extent(self) -> tuple[float, float]:
        """Half width and half height of the maze in metres (it spans ``[-w, w] x [-h, h]``)."""
        rows, cols = self.shape
        return cols * self.scaling / 2, rows * self.scaling / 2

    @cached_property
    def free_cells(self) -> tuple[Cell, ...]:
        """Free cells ``(i, j)`` in row-major order."""
        return tuple((i, j) for i, r in enumerate(self.rows) for j, c in enumerate(r) if c == ".")

    def cell_to_xy(self, cell: Sequence[int]) -> np.ndarray:
        """Centre ``(x, y)`` of cell ``(i, j)``."""
        (w, h), s = self.extent, self.scaling
        return np.array([(cell[1] + 0.5) * s - w, h - (cell[0] + 0.5) * s])

    def xy_to_cell(self, xy: Sequence[float]) -> Cell:
        """The cell ``(i, j)`` holding point ``(x, y)`` (may lie outside the map)."""
        (w, h), s = self.extent, self.scaling
        return int(math.floor((h - xy[1]) / s)), int(math.floor((xy[0] + w) / s))

    def inside(self, cell: Cell) -> bool:
        rows, cols = self.shape
        return 0 <= cell[0] < rows and 0 <= cell[1] < cols

    def is_free(self, cell: Cell) -> bool:
        return self.inside(cell) and not self.walls[cell]


class MazeOracle:
    """Shortest paths over the free cells of one maze (networkx), in metres.

    Attributes:
        maze: the map.
        graph: frozen undirected graph over free cells, edge attribute ``weight`` = cell side.
    """

    def __init__(self, maze: MazeMap) -> None:
        self.maze = maze
        graph = nx.Graph()
        graph.add_nodes_from(maze.free_cells)
        for i, j in maze.free_cells:
            for nb in ((i + 1, j), (i, j + 1)):
                if maze.is_free(nb):
                    graph.add_edge((i, j), nb, weight=maze.scaling)
        self.graph = nx.freeze(graph)
        self._paths: dict[Cell, dict[Cell, list[Cell]]] = {}

    def cell_of(self, xy: Sequence[float], role: str = "goal") -> Cell:
        """The free cell holding ``xy``, or an :class:`InvalidGoalError` that says why not."""
        if len(xy) != 2 or not all(math.isfinite(float(v)) for v in xy):
            raise InvalidGoalError(f"The {role} must be a finite point (x, y), got {tuple(xy)}.")
        cell, (w, h) = self.maze.xy_to_cell(xy), self.maze.extent
        where = f"({float(xy[0]):.2f}, {float(xy[1]):.2f})"
        if not self.maze.inside(cell):
            raise InvalidGoalError(f"The {role} {where} is outside the maze, which spans x in [{-w:g}, {w:g}], "
                                   f"y in [{-h:g}, {h:g}] metres.")  # fmt: skip
        if self.maze.walls[cell]:
            raise InvalidGoalError(f"The {role} {where} is inside a wall (cell {cell} of the map).")
        return cell

    def cell_path(self, start: Cell, goal: Cell) -> list[Cell]:
        """A shortest path of free cells from ``start`` to ``goal``, both included.

        Raises:
            InvalidGoalError: no path joins them.
        """
        paths = self._paths.get(goal)
        if paths is None:  # one Dijkstra per goal answers every start (the graph is undirected)
            paths = self._paths[goal] = nx.single_source_dijkstra_path(self.graph, goal)
        if start not in paths:
            raise InvalidGoalError(f"Cell {goal} cannot be reached from cell {start}: no free path joins them.")
        return paths[start][::-1]

    def waypoints(self, start_xy: Sequence[float], goal_xy: Sequence[float]) -> np.ndarray:
        """``(n, 2)`` points: the start, the centres of the shortest path's inner cells, the goal."""
        start, goal = self.cell_of(start_xy, "start"), self.cell_of(goal_xy, "goal")
        inner = [self.maze.cell_to_xy(c) for c in self.cell_path(start, goal)[1:-1]]
        return np.array([np.asarray(start_xy, float), *inner, np.asarray(goal_xy, float)])

    def distance(self, start_xy: Sequence[float], goal_xy: Sequence[float]) -> float:
        """Geodesic distance in metres from ``start_xy`` to ``goal_xy`` (see the module doc).

        Raises:
            InvalidGoalError: a point outside the maze, in a wall, or no path between them.
        """
        pts = self.waypoints(start_xy, goal_xy)
        return float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum())

    def cell_distance(self, start: Cell, goal: Cell) -> float:
        """Metres between two cell centres along a shortest cell path."""
        return (len(self.cell_path(start, goal)) - 1) * self.maze.scaling


# ----------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class MazeTask:
    """One evaluation task of a PointMaze suite."""

    env_id: str
    """The maze's env id."""
    start: XY
    """The agent's start position (x, y) in metres, at rest."""
    goal: XY
    """The goal position (x, y); success is the env's: within 0.45 m of it."""
    distance: float
    """The oracle's geodesic distance in metres."""
    bin: str
    """The distance bin the task belongs to."""
    task_id: int | None = None
    """The maze's own evaluation task (1-based; OGBench giant), or None for a drawn task."""


def noisy_point(maze: MazeMap, cell: Cell, rng: np.random.Generator, noise: float) -> XY:
    """The centre of ``cell`` plus uniform noise in ``[-noise, noise] * scaling`` on each axis
    (gymnasium-robotics' ``position_noise_range`` is 0.25)."""
    xy = maze.cell_to_xy(cell) + rng.uniform(-noise, noise, size=2) * maze.scaling
    return float(xy[0]), float(xy[1])


def make_maze_tasks(env_id: str, maze: MazeMap, per_bin: int, bins: Bins, seed: int, noise: float = 0.25,
                    min_distance: float = 0.5, max_draws: int | None = None) -> list[MazeTask]:  # fmt: skip
    """Draw ``per_bin`` tasks per distance bin, deterministically from ``seed``.

    Each draw picks a start and a goal cell (distinct, uniform over free cells), jitters both
    points by ``noise`` cells and keeps the task when its geodesic distance is at least
    ``min_distance`` (the env's success radius is 0.45 m) and falls in a bin that still
    needs tasks.

    Raises:
        ConfigError: ``per_bin < 1``, or a bin still short after ``max_draws`` draws.
    """
    bins = as_bins(bins)
    if per_bin < 1:
        raise ConfigError(f"make_maze_tasks needs per_bin >= 1, got {per_bin}.")
    oracle, rng = MazeOracle(maze), np.random.default_rng(seed)
    cells = maze.free_cells
    found: dict[str, list[MazeTask]] = {name: [] for name in bins}
    limit, longest = max_draws or max(5000, 200 * per_bin * len(bins)), 0.0
    for _ in range(limit):
        i, j = (int(k) for k in rng.choice(len(cells), size=2, replace=False))
        start, goal = noisy_point(maze, cells[i], rng, noise), noisy_point(maze, cells[j], rng, noise)
        d = oracle.distance(start, goal)
        longest = max(longest, d)
        name = bin_of(d, bins)
        if d >= min_distance and name is not None and len(found[name]) < per_bin:
            found[name].append(MazeTask(env_id, start, goal, round(d, 4), name))
        if all(len(t) >= per_bin for t in found.values()):
            break
    short = ", ".join(f"'{n}' ({bins.describe(n)}): {len(t)}/{per_bin}" for n, t in found.items() if len(t) < per_bin)
    if short:
        raise ConfigError(f"make_maze_tasks could not fill distance bin(s) {short} for {env_id} after {limit} draws; "
                          f"the longest geodesic distance seen was {longest:.1f} m. Use bins this maze reaches.")  # fmt: skip
    return [t for name in bins for t in found[name]]


def fixed_maze_tasks(env_id: str, maze: MazeMap, cells: Sequence[tuple[Cell, Cell]], bins: Bins, repeats: int,
                     seed: int, noise: float = 0.25) -> list[MazeTask]:  # fmt: skip
    """A maze's own evaluation tasks (start cell, goal cell), ``repeats`` jittered episodes
    each, binned by distance (bins may then hold unequal counts: the tasks are fixed).

    Raises:
        ConfigError: ``repeats < 1`` or a task outside every bin.
    """
    if repeats < 1:
        raise ConfigError(f"fixed_maze_tasks needs repeats >= 1, got {repeats}.")
    oracle, rng, tasks = MazeOracle(maze), np.random.default_rng(seed), []
    for task_id, (a, b) in enumerate(cells, start=1):
        for _ in range(repeats):
            start, goal = noisy_point(maze, a, rng, noise), noisy_point(maze, b, rng, noise)
            d = oracle.distance(start, goal)
            name = bin_of(d, bins)
            if name is None:
                raise ConfigError(f"Task {task_id} of {env_id} ({d:.1f} m) falls in no distance bin of {list(bins)}.")
            tasks.append(MazeTask(env_id, start, goal, round(d, 4), name, task_id))
    return tasks


__all__ = ["DistanceBins", "MazeMap", "MazeOracle", "MazeTask", "fixed_maze_tasks", "make_maze_tasks", "noisy_point"]
