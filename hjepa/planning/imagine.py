"""Planning in imagination: the latent graph of a layout built by the world model alone.

The ``"graph"`` planner needs a memory of the layout's observations, which an unseen layout
(``fourrooms-random``) does not have. The ``"imagine"`` planner builds that graph from the
current observation instead: breadth-first, it predicts every action's successor of every
state found so far and **snaps** each prediction onto the nearest state the encoder can
produce. Snapping is what keeps imagination from drifting: a ``gridmap`` level 0 embeds every
cell on its own (:meth:`~hjepa.levels.gridmap.GridMapLevel.cell_codebook`), so each cell of a
predicted map is snapped onto the nearest of the training data's cell embeddings, and the
snapped map is exactly the encoding of an observation. The cells' codes key the node, so
revisited states are found by a dictionary lookup, and the search ends when no new state
appears (the layout's every pose), at ``max_nodes``, or once the depth that found the goal's
state is done (breadth-first, that depth is the goal's shortest distance).

The agent then walks the graph's shortest path to the goal's node and checks each step: a
move the env refused drops its edge (as :class:`~hjepa.planning.graph.LatentGraph` does), and
an observation the graph does not hold starts a new imagination from it. Nothing here reads
the env's layout: the codebook comes from the training data and the graph from the predictor.

Shapes: ``q`` codes, ``c w h`` the map state, ``a`` actions, ``m`` imagined nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange, repeat
from torch import Tensor

from hjepa.errors import ConfigError
from hjepa.planning import planners
from hjepa.planning.graph import NO_EDGE, LatentGraph, StepFn, distances_to, path_actions

MAX_IMAGINED = 8192
"""Default cap on imagined nodes: FourRooms has 1,040 poses, a MazeRooms layout about 3,000."""
BATCH = 1024
"""Predictions per predictor call while imagining."""


@dataclass(frozen=True)
class CellCodebook:
    """Cell embeddings ``emb "q c"`` of the codes ``codes "q"``, for maps ``"(c w h)"`` of ``shape``."""

    codes: Tensor
    emb: Tensor
    shape: tuple[int, int, int]

    def snap(self, states: Tensor) -> tuple[Tensor, Tensor]:
        """States ``"n (c w h)"`` -> each cell on its nearest embedding ``"n (c w h)"``, and the
        keys ``"n (w h)"`` (uint8 indices into ``codes``)."""
        c, w, h = self.shape
        cells = rearrange(states, "n (c w h) -> n (w h) c", c=c, w=w, h=h)
        d2 = cells.pow(2).sum(-1, keepdim=True) - 2 * cells @ self.emb.T + self.emb.pow(2).sum(-1)
        idx = d2.argmin(-1)
        return rearrange(self.emb[idx], "n (w h) c -> n (c w h)", w=w, h=h), idx.to(torch.uint8)


def cell_codebook(level: torch.nn.Module, obs: Tensor) -> CellCodebook:
    """The codebook of the cell codes in ``obs`` (the training data's observations) at ``level``."""
    if not hasattr(level, "cell_codebook"):
        raise ConfigError(f"The 'imagine' planner needs a level 0 whose states are maps of cell embeddings (kind "
                          f"'gridmap'); this level 0 is '{level.spec.config.kind}'.")  # fmt: skip
    codes, emb = level.cell_codebook(obs)
    if len(codes) > 255:
        raise ConfigError(f"The 'imagine' planner keys cells by uint8; the data has {len(codes)} cell codes.")
    return CellCodebook(codes, emb.float(), level.map_shape)


@dataclass
class Imagined:
    """An imagined graph: its :class:`LatentGraph` (``edge_cost`` 1), node keys to indices, the
    predictor calls it took, and whether the search ran out of new states (False: capped)."""

    graph: LatentGraph
    index: dict[bytes, int]
    calls: int
    complete: bool


def imagine(start: Tensor, step: StepFn, actions: Tensor, book: CellCodebook, max_nodes: int = MAX_IMAGINED,
            goal: bytes | None = None) -> Imagined:  # fmt: skip
    """Breadth-first imagination from state ``start "d"`` over ``actions "a e"`` (predictor
    inputs), ending after the depth that finds the node keyed ``goal`` (if given)."""
    if max_nodes < 1:
        raise ConfigError(f"max_nodes must be >= 1, got {max_nodes}.")
    n_act = actions.shape[0]
    first, key = book.snap(start[None].float())
    nodes, index = [first[0]], {key[0].numpy().tobytes(): 0}
    succ: list[list[int]] = [[NO_EDGE] * n_act]
    frontier, calls = [0], 0
    with torch.no_grad():
        while frontier and len(nodes) < max_nodes and goal not in index:
            src = repeat(torch.tensor(frontier), "f -> (f a)", a=n_act)
            act = repeat(torch.arange(n_act), "a -> (f a)", f=len(frontier))
            frontier = []
            for i in range(0, len(src), BATCH):
                _, keys = book.snap(step(torch.stack([nodes[j] for j in src[i : i + BATCH].tolist()]),
                                         actions[act[i : i + BATCH]]).float())  # fmt: skip
                calls += len(keys)
                for j, kb in enumerate(k.numpy().tobytes() for k in keys):
                    node = index.get(kb)
                    if node is None and len(nodes) < max_nodes:
                        node = index[kb] = len(nodes)
                        nodes.append(book.emb[keys[j].long()].T.reshape(-1))
                        succ.append([NO_EDGE] * n_act)
                        frontier.append(node)
                    s = int(src[i + j])
                    succ[s][int(act[i + j])] = NO_EDGE if node is None or node == s else node
    graph = LatentGraph(torch.stack(nodes), np.array(succ, dtype=np.int64), 0.0, 1, calls=calls)
    return Imagined(graph, index, calls, complete=not frontier and goal not in index)


class ImaginedMemory:
    """Level 0's imagined graph of the current layout, behind the planning-memory interface the
    hierarchical planner uses (:class:`~hjepa.planning.memory.PlanningMemory`): ``graph``,
    ``covers``, ``nearest``, ``reaches``, ``plan``, ``took``, ``observe``, ``new_episode``.

    Args:
        stack: the trained stack (its level 0 must have a cell codebook: ``gridmap``).
        obs: ``"m ..."`` observations whose cell codes make the codebook (the training data's).
        max_nodes: cap on imagined nodes.
    """

    def __init__(self, stack: torch.nn.Module, obs: Tensor, max_nodes: int = MAX_IMAGINED) -> None:
        level = stack.levels[0]
        if not level.action_spec.is_discrete:
            raise ConfigError("The 'imagine' planner needs discrete env actions.")
        self.level, self.book, self.max_nodes = level, cell_codebook(level, obs), int(max_nodes)
        self.actions = level.action_input(torch.arange(level.action_spec.n))
        self.current: Imagined | None = None
        self.goal: bytes | None = None
        self.imaginations, self._unreported = 0, 0
        self._dist: dict[int, np.ndarray] = {}
        self._last: tuple[int, int] | None = None

    def _key(self, state: Tensor) -> bytes:
        return self.book.snap(state[None].float())[1][0].numpy().tobytes()

    def _imagine(self, state0: Tensor) -> None:
        self.current = imagine(state0, self.level.predict, self.actions, self.book, self.max_nodes, self.goal)
        self.imaginations += 1
        self._unreported += self.current.calls
        self._dist = {}

    def graph(self, k: int, actions: Tensor) -> tuple[LatentGraph, int]:
        """Level 0's imagined graph and the predictor calls imagination took since last asked."""
        if k != 0 or self.current is None:
            raise ConfigError("The 'imagine' planner imagines level 0 only, from an observed state (observe() first).")
        calls, self._unreported = self._unreported, 0
        return self.current.graph, calls

    def covers(self, state0: Tensor) -> bool:
        """Whether ``state0`` snaps onto a node of the imagined graph."""
        return self.current is not None and self._key(state0) in self.current.index

    def nearest(self, k: int, state: Tensor) -> int:
        """The node ``state`` snaps onto, else the node nearest it."""
        node = self.current.index.get(self._key(state))
        if node is None:
            node = int(torch.cdist(state[None].float(), self.current.graph.nodes).argmin())
        return node

    def _distances(self, target: int) -> np.ndarray:
        if target not in self._dist:
            self._dist[target] = distances_to(self.current.graph.succ, target)
        return self._dist[target]

    def reaches(self, k: int, state: Tensor, target: int) -> bool:
        return bool(np.isfinite(self._distances(target)[self.nearest(k, state)]))

    def plan(self, k: int, actions: Tensor, state: Tensor, target: int, horizon: int) -> planners.PlanResult:
        """Up to ``horizon`` actions down the imagined shortest path to ``target`` (empty when
        there is none); state: the ``"h d"`` imagined states it visits."""
        g, calls = self.graph(k, actions)
        dist, node = self._distances(target), self.nearest(k, state)
        acts, visited = path_actions(g.succ, dist, node, horizon)
        return planners.PlanResult(torch.tensor(acts, dtype=torch.long), float(dist[node]), [float(dist[node])],
                                   calls, g.nodes[visited])  # fmt: skip

    def took(self, state0: Tensor, action: int) -> None:
        self._last = (self.nearest(0, state0), int(action))

    def observe(self, state0: Tensor) -> None:
        """Correct the edge just taken by what was observed; imagine afresh from ``state0``
        when the graph does not hold it (first step of an episode, or the model was wrong)."""
        if not self.covers(state0):
            self._last = None
            self._imagine(state0)
            return
        if self._last is not None:
            node, action = self._last
            if self.current.graph.observe(node, action, self.nearest(0, state0)):
                self._dist = {}
        self._last = None

    def new_episode(self, goal: Tensor | None = None) -> None:
        """Forget the imagined layout: each episode imagines its own, up to the depth of the
        level-0 ``goal`` state, when given."""
        self.current, self._last, self._dist, self._unreported = None, None, {}, 0
        self.goal = None if goal is None else self._key(goal)
