"""A planning memory: one set of observations, encoded at every level, with latent graphs.

The hierarchical planner's ``"graph"`` planner (:mod:`hjepa.planning.graph`) plans on it.
Every level reads the *same* observations, so node ``i`` of level k and node ``i`` of level
k + 1 are one observation seen at two time scales: a subgoal the level above picks as its
node ``j`` is reached by level k as its own node ``j``. Graphs are built on first use (the
predictor calls it took are reported once, in that step's trace).

The memory comes from the offline dataset the stack was trained on (its distinct
observations): no oracle, no map. It fits a fixed layout; on unseen layouts it holds no
state of the new maze, which :meth:`PlanningMemory.covers` reports.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from hjepa.errors import ConfigError
from hjepa.planning import planners
from hjepa.planning.field import GraphField, graph_field
from hjepa.planning.graph import (RADIUS_SCALE, LatentGraph, build_graph, distances_to, distinct_observations, keys_of,
                                 nearest_keys, path_actions, projection)  # fmt: skip
from hjepa.registry import get_planner

MAX_NODES = 8192
"""Default cap on memory nodes (a seeded sample of the dataset's distinct observations)."""
ENCODE_BATCH = 512


CODEBOOK_OBS = 20_000
"""Observations the "imagine" planner's codebook reads (the first of the dataset): it needs
only the cell codes, and the distinct observations of 400k map observations took GBs."""


def memory_observations(obs: np.ndarray, planner: str, upper: str, seed: int = 0) -> Tensor | None:
    """What a configurator's planners read from the dataset's observations ``obs``: the
    distinct ones (at most :data:`MAX_NODES`) for a planner on the dataset's graph ("graph") and
    the "field" cost, those of the first :data:`CODEBOOK_OBS` for an imagining planner's
    codebook ("imagine"), else None."""
    memory = get_planner(planner).memory
    if memory == "imagined" and upper != "field":
        obs = obs[:CODEBOOK_OBS]
    elif memory is None and upper != "field":
        return None
    return torch.from_numpy(distinct_observations(obs, MAX_NODES, seed))


class PlanningMemory:
    """Encoded memory observations per level, and each level's graph once asked for.

    Args:
        stack: the trained stack.
        obs: ``"m ..."`` memory observations (:func:`~hjepa.planning.graph.distinct_observations`).
        radius_scale: snapping radius in units of the median gap between nodes.
    """

    def __init__(self, stack: torch.nn.Module, obs: Tensor, radius_scale: float = RADIUS_SCALE) -> None:
        if radius_scale <= 0:
            raise ConfigError(f"The graph radius scale must be > 0, got {radius_scale}.")
        if len(obs) < 2:
            raise ConfigError(f"A planning memory needs at least 2 distinct observations, got {len(obs)}.")
        with torch.no_grad():  # in chunks: map states of thousands of observations are large
            chunks = [stack.encode(obs[i : i + ENCODE_BATCH]) for i in range(0, len(obs), ENCODE_BATCH)]
        self.states = [torch.cat([c[k] for c in chunks]).float() for k in range(len(chunks[0]))]
        self.stack, self.radius_scale = stack, float(radius_scale)
        self.proj = [projection(z.shape[1]) for z in self.states]
        self.keys = [keys_of(z, p) for z, p in zip(self.states, self.proj)]
        self.keys_sq = [k.pow(2).sum(1) for k in self.keys]
        self._asked: dict[int, tuple[Tensor, int]] = {}  # level -> (last state asked, its node)
        self.graphs: dict[int, LatentGraph] = {}
        self._dist: dict[tuple[int, int, bool], np.ndarray] = {}  # (level, target, loose) -> distances
        self._fields: dict[tuple[int, int], GraphField] = {}  # (level, target) -> its field
        self._built: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}  # each graph's edges, loose edges as predicted
        self._last: tuple[int, int] | None = None  # level-0 (node, action) of the step just taken

    def __len__(self) -> int:
        return self.states[0].shape[0]

    def nearest(self, k: int, state: Tensor) -> int:
        """The node whose level-k state is nearest ``state`` ``"d"`` (the last answer per level
        is kept: one env step asks it for the same state several times)."""
        last = self._asked.get(k)
        if last is not None and last[0] is state:
            return last[1]
        node = self._nearest_among(k, state)
        self._asked[k] = (state, node)
        return node

    def _nearest_among(self, k: int, state: Tensor, rows: np.ndarray | None = None) -> int:
        """The node nearest ``state`` at level k, among ``rows`` (all nodes when None)."""
        keys, keys_sq = self.keys[k], self.keys_sq[k]
        if rows is not None:
            sel = torch.from_numpy(rows)
            keys, keys_sq = keys[sel], keys_sq[sel]
        i = int(nearest_keys(keys_of(state[None], self.proj[k]), keys, keys_sq)[0][0])
        return i if rows is None else int(rows[i])

    def graph(self, k: int, actions: Tensor) -> tuple[LatentGraph, int]:
        """Level k's graph (built on first use over ``actions``, the level's predictor inputs)
        and the predictor calls spent building it now (0 once built)."""
        if k in self.graphs:
            return self.graphs[k], 0
        level = self.stack.levels[k]
        g = build_graph(self.states[k], level.predict, actions, self.stack.taus[k], self.radius_scale)
        self.graphs[k] = g
        self._built[k] = (g.succ.copy(), None if g.loose is None else g.loose.copy())
        return g, g.calls

    def _distances(self, k: int, target: int, loose: bool = False) -> np.ndarray:
        """Edges from every node of level k's graph (built) to ``target``, over its own edges or
        with the loose ones (:meth:`LatentGraph.merged`), cached until an edge changes."""
        dist = self._dist.get((k, target, loose))
        if dist is None:
            g = self.graphs[k]
            dist = self._dist[(k, target, loose)] = distances_to(g.merged() if loose else g.succ, target)
        return dist

    def field(self, k: int, actions: Tensor, target: int) -> tuple[GraphField, int]:
        """Level k's graph distances to node ``target`` spread over level k's space
        (:mod:`hjepa.planning.field`), and the predictor calls spent building the graph now."""
        g, calls = self.graph(k, actions)
        if (k, target) not in self._fields:
            self._fields[(k, target)] = graph_field(self.keys[k], self.keys_sq[k], self.proj[k], g.succ,
                                                    self._distances(k, target), g.edge_cost)  # fmt: skip
        return self._fields[(k, target)], calls

    def reaches(self, k: int, state: Tensor, target: int) -> bool:
        """Whether level k's graph (built) has a path from the node nearest ``state`` to ``target``."""
        return bool(np.isfinite(self._distances(k, target)[self.nearest(k, state)]))

    def plan(self, k: int, actions: Tensor, state: Tensor, target: int, horizon: int) -> planners.PlanResult:
        """Up to ``horizon`` action indices from the node nearest ``state`` toward node
        ``target`` (empty when there is no path); cost: remaining env steps on the graph;
        calls: the predictor calls of building the graph if this call built it; state: the
        ``"h d"`` remembered states the path visits (the plan's states, no rollout needed)."""
        g, calls = self.graph(k, actions)
        dist, succ = self._distances(k, target), g.succ
        node = self.nearest(k, state)
        if not np.isfinite(dist[node]) and g.loose is not None:  # no path: let the loose edges fill gaps
            dist, succ = self._distances(k, target, loose=True), g.merged()
        if k > 0 and not np.isfinite(dist[node]):
            node = self._nearest_on_a_path(k, state, dist)
        acts, visited = path_actions(succ, dist, node, horizon)
        return planners.PlanResult(torch.tensor(acts, dtype=torch.long), float(dist[node] * g.edge_cost),
                                   [float(dist[node])], calls, self.states[k][visited])  # fmt: skip

    def _nearest_on_a_path(self, k: int, state: Tensor, dist: np.ndarray) -> int:
        """The node nearest ``state`` among those with a path (``dist`` finite); the nearest
        node itself when none has one. Levels above 0 plan from it: their nodes sample a
        continuum of states (PointMaze: positions and velocities), and a state at a speed the
        memory holds few of snaps onto a dead end, while a near node with a path is a fine
        place to plan from (level 0 keeps its exact node: there a wrong node means a wrong action)."""
        ok = np.flatnonzero(np.isfinite(dist))
        return self._nearest_among(k, state, ok) if len(ok) else self.nearest(k, state)

    def took(self, state0: Tensor, action: int) -> None:
        """Remember the env action taken from level-0 state ``state0``, whichever planner chose it."""
        self._last = (self.nearest(0, state0), int(action))

    def observe(self, state0: Tensor) -> None:
        """Correct level 0's graph with the step just taken (:meth:`took`): the node reached
        replaces that edge, or adds it where the model had none (SGM-style clean-up)."""
        if self._last is None or 0 not in self.graphs:
            return
        node, action = self._last
        self._last = None
        if self.graphs[0].observe(node, action, self.nearest(0, state0)):
            self._dist = {key: d for key, d in self._dist.items() if key[0] != 0}
            self._fields = {key: f for key, f in self._fields.items() if key[0] != 0}

    def covers(self, state0: Tensor) -> bool:
        """Whether level 0's graph (built) has a node within its radius of ``state0``: False on
        a layout the memory never saw, where snapping would pick a wrong node."""
        g = self.graphs.get(0)
        if g is None:
            return True
        return float((self.keys[0][self.nearest(0, state0)] - keys_of(state0, self.proj[0])).norm()) <= g.radius

    def new_episode(self) -> None:
        """Start an episode from the model's graphs: edges corrected in the last episode are
        restored, so that every episode is planned from the world model alone."""
        self._last = None
        for k, (succ, loose) in self._built.items():
            self.graphs[k].succ = succ.copy()
            self.graphs[k].loose = None if loose is None else loose.copy()
        self._dist, self._fields = {}, {}
