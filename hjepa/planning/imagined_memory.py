"""Level 0's imagined graph of the current layout behind the planning-memory interface: the
``"imagine"`` planner's memory (:func:`~hjepa.planning.imagine.imagine` does the search)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from hjepa.errors import ConfigError
from hjepa.planning import planners
from hjepa.planning.goal_cell import GoalCell, agent_mask, goal_cell_of
from hjepa.planning.graph import LatentGraph, distances_to, path_actions
from hjepa.planning.imagine import MAX_IMAGINED, WINDOW, Corridor, Imagined, Key, cell_codebook, imagine


class ImaginedMemory:
    """Level 0's imagined graph of the current layout, behind the planning-memory interface the
    hierarchical planner uses (:class:`~hjepa.planning.memory.PlanningMemory`): ``graph``,
    ``covers``, ``nearest``, ``reaches``, ``plan``, ``took``, ``observe``, ``new_episode``.

    Args:
        stack: the trained stack (its level 0 must have a cell codebook: ``gridmap``).
        obs: ``"m ..."`` observations whose cell codes make the codebook (the training data's).
        max_nodes: cap on imagined nodes.
        window: side of the crops nodes are expanded on (0: whole maps).
    """

    def __init__(self, stack: torch.nn.Module, obs: Tensor, max_nodes: int = MAX_IMAGINED,
                 window: int = WINDOW) -> None:  # fmt: skip
        level = stack.levels[0]
        if obs is None:
            raise ConfigError("The 'imagine' planner needs observations for its cell codebook (the training "
                              "dataset's): pass memory= to the planner or agent.")  # fmt: skip
        if not level.action_spec.is_discrete:
            raise ConfigError("The 'imagine' planner needs discrete env actions.")
        self.level, self.book, self.max_nodes = level, cell_codebook(level, obs), int(max_nodes)
        self.window = int(window)
        self.actions = level.action_input(torch.arange(level.action_spec.n))
        self.current: Imagined | None = None
        self.goal: np.ndarray | None = None
        self.is_agent = agent_mask(level, self.book)
        self.goal_cell: GoalCell | None = None
        self.imaginations, self._unreported = 0, 0.0
        self._dist: dict[int, np.ndarray] = {}
        self._last: tuple[int, int] | None = None

    def codes_of(self, state: Tensor) -> np.ndarray:
        """A level-0 state's map of codebook indices ``"w h"`` (each cell snapped to its nearest code)."""
        _, w, h = self.book.shape
        return self.book.snap(state[None].float())[1][0].numpy().reshape(w, h)

    def _key(self, state: Tensor) -> Key:
        return self.current.graph.nodes.key_of(self.codes_of(state))

    def _imagine(self, state0: Tensor) -> None:
        self._imagine_in(state0, None)

    def _imagine_in(self, state0: Tensor, corridor: Corridor | None) -> None:
        """Imagine from ``state0`` toward the goal, inside ``corridor`` if given."""
        self.current = imagine(state0, self.level.predict_map, self.actions, self.book, self.max_nodes, self.goal,
                               self.window, self.level.locality, corridor, self.goal_cell, self.is_agent)  # fmt: skip
        self.imaginations += 1
        self._unreported += self.current.cost
        self._dist = {}

    def graph(self, k: int, actions: Tensor) -> tuple[LatentGraph, float]:
        """Level 0's imagined graph and the predictions (in map units) imagination took since last asked."""
        if k != 0 or self.current is None:
            raise ConfigError("The 'imagine' planner imagines level 0 only, from an observed state (observe() first).")
        calls, self._unreported = self._unreported, 0.0
        return self.current.graph, calls

    def covers(self, state0: Tensor) -> bool:
        """Whether ``state0`` snaps onto a node of the imagined graph."""
        return self.current is not None and self._key(state0) in self.current.index

    def nearest(self, k: int, state: Tensor) -> int:
        """The node ``state`` snaps onto, else -1 (imagination holds no other way to compare)."""
        return self.current.index.get(self._key(state), -1)

    def _distances(self, target: int) -> np.ndarray:
        if target not in self._dist:
            self._dist[target] = distances_to(self.current.graph.succ, target)
        return self._dist[target]

    def reaches(self, k: int, state: Tensor, target: int) -> bool:
        node = self.nearest(k, state)
        return target >= 0 and node >= 0 and bool(np.isfinite(self._distances(target)[node]))

    def plan(self, k: int, actions: Tensor, state: Tensor, target: int, horizon: int) -> planners.PlanResult:
        """Up to ``horizon`` actions down the imagined shortest path to ``target`` (empty when
        there is none); state: the ``"h d"`` imagined states it visits."""
        g, calls = self.graph(k, actions)
        node = self.nearest(k, state)
        if target < 0 or node < 0:
            return planners.PlanResult(torch.zeros(0, dtype=torch.long), float("inf"), [], calls, None)
        dist = self._distances(target)
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
        if self._last is not None and self._last[0] >= 0:
            node, action = self._last
            if self.current.graph.observe(node, action, self.nearest(0, state0)):
                self._dist = {}
        self._last = None

    def new_episode(self, goal: Tensor | None = None) -> None:
        """Forget the imagined layout: each episode imagines its own, up to the depth that
        reaches the cell the agent stands on in the level-0 ``goal`` state, when given."""
        self.current, self._last, self._dist, self._unreported = None, None, {}, 0.0
        self.goal = None if goal is None else self.codes_of(goal)
        self.goal_cell = None if goal is None else goal_cell_of(self.goal, self.is_agent)

