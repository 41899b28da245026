"""Planning over a latent graph: a memory of encoded states joined by the world model's edges.

A learned one-step predictor is accurate, but a long open-loop rollout drifts (on the
``gridmap`` level 0 of docs/design-notes.md the predicted state lands nearest the true next pose
98% of the time after one step, 33% after five and 6% after ten: scripts/graph_probe.py).
Snapping every prediction back onto a *memory* of real encoded states removes the drift: the nodes are level k's states
of the offline dataset's distinct observations, and node ``i`` has an edge by action ``a`` to
the node nearest ``predict(node_i, a)`` when that prediction lands within ``radius`` of it.
Shortest paths on this graph chain one-step predictions over any distance (the latent-graph
idea of SoRB, Eysenbach et al. 2019, and SGM, Emmons et al. 2020, with model edges instead
of critic edges).

Everything here is a pure function over tensors and callables, like
:mod:`hjepa.planning.planners`; :class:`LatentGraph` only holds the arrays. The agent learns
from its own steps: :meth:`LatentGraph.observe` replaces an edge the env contradicted (the
observed successor wins), SGM's clean-up.

Shapes: ``m`` nodes, ``a`` actions, ``d`` state width, ``p`` projected width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from einops import rearrange, repeat
from torch import Tensor

from hjepa.errors import ConfigError, DatasetError

StepFn = Callable[[Tensor, Tensor], Tensor]
"""``(states "n d", actions "n") -> next states "n d"``."""
NO_EDGE = -1
RADIUS_SCALE = 3.0
"""Default snapping radius, in median gaps between nodes: at 2, a few slightly-off predicted
turns fell outside it and tore fourrooms graphs apart (docs/design-notes.md, 2026-11-21)."""
TORN = 1.2
"""A prediction whose nearest node is the node it came from, but whose next-nearest node is
within the radius and at most this many times as far, is torn between staying and moving: the
graph keeps the move. A wrong move edge costs the agent one step (it sees the move blocked and
drops the edge, :meth:`LatentGraph.observe`); a dropped right one can cut the only way through
a doorway. At 1.5 moves into fourrooms' walls got edges and detours cost SPL (0.98 -> 0.66 on
one checkpoint); at 1.2 all three doorway exits one mazerooms checkpoint lost kept their edges,
and gaps left at 1.2 are the loose edges' (:data:`LOOSE`; docs/design-notes.md, 2026-11-22)."""
LOOSE = 3.0
"""The same rule at a looser ratio gives a second table of edges, used only when the graph's own
edges hold no path to the target (:meth:`LatentGraph.merged`): a doorway exit predicted at ratio
1.2-3 then still joins the two halves of a maze, while moves into walls never lengthen a path
the graph already has (fourrooms seed 1: 0.60 -> 0.95, docs/design-notes.md)."""
PROJECTED = 256
"""States wider than this are compared through a fixed random projection (distances kept to
a few percent: Johnson-Lindenstrauss), so that snapping stays cheap on map states."""


def distinct_observations(obs: np.ndarray, max_nodes: int, seed: int = 0) -> np.ndarray:
    """The distinct observations of ``obs`` ("n ..."), at most ``max_nodes`` (a seeded sample)."""
    if len(obs) == 0:
        raise DatasetError("A latent graph needs observations; the dataset has none.")
    flat = np.ascontiguousarray(obs).reshape(len(obs), -1)
    _, first = np.unique(flat.view(np.dtype((np.void, flat.shape[1] * flat.itemsize))), return_index=True)
    first = np.sort(first)
    if len(first) > max_nodes:
        first = np.sort(np.random.default_rng(seed).choice(first, max_nodes, replace=False))
    return np.asarray(obs[first])


def projection(dim: int, seed: int = 0) -> Tensor | None:
    """A fixed ``"d p"`` Gaussian projection for states wider than :data:`PROJECTED`, else None."""
    if dim <= PROJECTED:
        return None
    g = torch.Generator().manual_seed(seed)
    return torch.randn(dim, PROJECTED, generator=g) / math.sqrt(PROJECTED)


def keys_of(states: Tensor, proj: Tensor | None) -> Tensor:
    """States ``"n d"`` in the space they are compared in: projected by ``proj`` (``"d p"``), if any."""
    return states if proj is None else states @ proj


def nearest_keys(query: Tensor, keys: Tensor, keys_sq: Tensor, k: int = 1) -> tuple[Tensor, Tensor]:
    """Nearest of ``keys "m p"`` (squared norms ``keys_sq "m"``) to each ``query "n p"``: indices
    and distances ``"n"`` (``"n k"`` for ``k > 1``, nearest first). One matrix product
    (``torch.cdist`` took ~9 ms a call at m = 3,196 on the busy 2-core machine)."""
    d2 = torch.addmm(keys_sq[None], query, keys.T, alpha=-2.0) + query.pow(2).sum(1, keepdim=True)
    if k > 1:
        best = d2.topk(k, dim=1, largest=False)
        return best.indices, best.values.clamp_min(0.0).sqrt()
    best = d2.min(dim=1)
    return best.indices, best.values.clamp_min(0.0).sqrt()


@dataclass
class LatentGraph:
    """Nodes, their successor table and the goal distances of one level.

    Attributes:
        nodes: ``"m d"`` level-k states of the memory.
        succ: ``"m a"`` successor node by action, :data:`NO_EDGE` where the prediction fell
            further than ``radius`` from every node.
        radius: snapping radius in state units.
        edge_cost: env steps per edge (``tau_k``).
        proj: the projection used to compare states (None: raw states).
        calls: predictor calls spent building the edges.
    """

    nodes: Tensor
    succ: np.ndarray
    radius: float
    edge_cost: int
    proj: Tensor | None = None
    calls: int = 0
    loose: np.ndarray | None = None
    """``"m a"`` torn moves at ratio :data:`LOOSE` where ``succ`` has no edge (else NO_EDGE)."""

    def observe(self, node: int, action: int, reached: int) -> bool:
        """Record that ``action`` from ``node`` led to ``reached``; True if that changed an edge.

        A step that leaves the agent on its node (a blocked move) removes the edge: staying
        put is never on a shortest path.
        """
        new = NO_EDGE if reached == node else reached
        changed = int(self.succ[node, action]) != new
        self.succ[node, action] = new
        if self.loose is not None and self.loose[node, action] != NO_EDGE:
            self.loose[node, action] = NO_EDGE
            changed = True
        return changed

    def merged(self) -> np.ndarray:
        """The edges with the loose ones filling the gaps (the fallback when ``succ`` has no path)."""
        return self.succ if self.loose is None else np.where(self.succ >= 0, self.succ, self.loose)


def build_graph(nodes: Tensor, step: StepFn, actions: Tensor, edge_cost: int, radius_scale: float = RADIUS_SCALE,
                batch: int = 1024, seed: int = 0) -> LatentGraph:  # fmt: skip
    """Predict every (node, action) successor and snap it onto the nodes.

    ``radius`` is ``radius_scale`` times the median distance from a node to its nearest other
    node: a prediction closer than that to a node *is* that node; one further from every node
    gives no edge (the model predicted a state the memory has never seen).
    """
    m, n_act = nodes.shape[0], actions.shape[0]
    if m < 2:
        raise ConfigError(f"A latent graph needs at least 2 distinct states, got {m}.")
    proj = projection(nodes.shape[1], seed)
    keys = keys_of(nodes, proj)
    keys_sq = keys.pow(2).sum(1)
    gaps = torch.cdist(keys, keys).fill_diagonal_(math.inf).min(dim=1).values
    radius = radius_scale * float(gaps.median())
    src = repeat(torch.arange(m), "m -> (m a)", a=n_act)
    act = repeat(torch.arange(n_act), "a -> (m a)", m=m)
    succ, loose = np.full(m * n_act, NO_EDGE, dtype=np.int64), np.full(m * n_act, NO_EDGE, dtype=np.int64)
    with torch.no_grad():
        for i in range(0, m * n_act, batch):
            pred = step(nodes[src[i : i + batch]], actions[act[i : i + batch]])
            idx, dist = nearest_keys(keys_of(pred, proj), keys, keys_sq, k=2)
            succ[i : i + batch] = snap_successors(idx, dist, src[i : i + batch], radius)
            loose[i : i + batch] = snap_successors(idx, dist, src[i : i + batch], radius, LOOSE)
    succ, loose = (rearrange(t, "(m a) -> m a", a=n_act) for t in (succ, loose))
    succ[succ == np.arange(m)[:, None]] = NO_EDGE  # self-loops never shorten a path
    loose[(loose == np.arange(m)[:, None]) | (succ >= 0)] = NO_EDGE
    return LatentGraph(nodes, succ, radius, int(edge_cost), proj, m * n_act, loose)


def snap_successors(idx: Tensor, dist: Tensor, src: Tensor, radius: float, ratio: float | None = None) -> np.ndarray:
    """Successor nodes ``"n"`` of predictions whose two nearest nodes are ``idx, dist: "n 2"``
    (from nodes ``src "n"``): the nearest within ``radius``, or the next-nearest where the
    nearest is the source and the prediction is torn between them (``ratio``, default :data:`TORN`)."""
    near, second = idx[:, 0], idx[:, 1]
    ratio = TORN if ratio is None else ratio
    torn = (near == src) & (dist[:, 1] <= radius) & (dist[:, 1] <= ratio * dist[:, 0])
    chosen = torch.where(torn, second, near)
    return np.where((dist[:, 0] <= radius).numpy() | torn.numpy(), chosen.numpy(), NO_EDGE)


def distances_to(succ: np.ndarray, goal: int) -> np.ndarray:
    """Edges from every node to ``goal`` (``inf`` where no path): breadth-first, backwards."""
    m = succ.shape[0]
    dist = np.full(m, np.inf)
    dist[goal] = 0.0
    frontier = np.zeros(m, dtype=bool)
    frontier[goal] = True
    depth = 0
    while frontier.any():
        depth += 1
        hits = frontier[np.where(succ >= 0, succ, 0)] & (succ >= 0)
        frontier = hits.any(axis=1) & np.isinf(dist)
        dist[frontier] = depth
    return dist


def path_actions(succ: np.ndarray, dist: np.ndarray, start: int, horizon: int) -> tuple[list[int], list[int]]:
    """Up to ``horizon`` actions (and the nodes they lead to) down the distance gradient from
    ``start``; ties go to the lowest action index. Empty when ``start`` has no path."""
    actions, visited, node = [], [], start
    for _ in range(horizon):
        if dist[node] == 0 or not np.isfinite(dist[node]):
            break
        ahead = np.where(succ[node] >= 0, dist[np.where(succ[node] >= 0, succ[node], 0)], np.inf)
        a = int(np.argmin(ahead))
        if not ahead[a] < dist[node]:
            break
        actions.append(a)
        node = int(succ[node, a])
        visited.append(node)
    return actions, visited
