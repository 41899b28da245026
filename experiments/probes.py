"""Probes of a trained MiniGrid checkpoint: what the ``imagine`` planner can rely on
(``hjepa probe NAME --checkpoint C``, docs/tutorials/inspect.md).

- ``snap``: level 0's one-step predictions on whole maps of given layouts, every cell snapped on
  the planner's codebook, per action: the share that lands exactly on the next observation's
  codes, and the most common wrong cells (where they lie from the agent, what they should be).
- ``imagine``: one imagination, as the planner runs it, from a start pose toward a goal cell:
  the states it imagined, their cost in whole-map predictions, the distinct agent poses among
  them and the imagined distance to the goal.

The env's simulator sets poses and gives the true next observations; it is evaluation only.
Shapes: ``w h`` the grid, ``q`` codes.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch
from einops import rearrange
from minigrid.core.actions import Actions
from torch import Tensor

from hjepa.envs.oracle import _require_direction, _require_free_cell, goal_observation
from hjepa.planning.goal_cell import agent_mask
from hjepa.planning.graph import distances_to
from hjepa.planning.imagine import CellCodebook
from hjepa.planning.imagined_memory import ImaginedMemory

TOP_WRONG = 8
"""Wrong-cell kinds the ``snap`` probe lists, most common first."""


@dataclass(frozen=True)
class WrongCell:
    """One kind of wrong snapped cell: the action, the cell's Chebyshev distance from the
    agent's cell before the step, its codebook index before the step, the true one after, the
    predicted one, and how many predictions had it."""

    action: str
    distance: int
    before: int
    true: int
    predicted: int
    count: int


@dataclass(frozen=True)
class SnapProbe:
    """Per action (``actions``), the predictions that snapped right and those made; the most
    common wrong cells; the codebook's agent codes (``agent_codes``, indices)."""

    actions: tuple[str, ...]
    right: tuple[int, ...]
    total: tuple[int, ...]
    wrong: tuple[WrongCell, ...]
    agent_codes: tuple[int, ...]

    @property
    def share(self) -> float:
        """The share of all predictions that snapped right."""
        return sum(self.right) / max(sum(self.total), 1)

    def as_dict(self) -> dict:
        return {**asdict(self), "share": self.share}


def _codes(level: torch.nn.Module, book: CellCodebook, obs: np.ndarray) -> Tensor:
    """An observation ``"w h 3"`` -> its snapped map of codebook indices ``"w h"``."""
    _, w, h = book.shape
    state = level.encode(torch.from_numpy(np.ascontiguousarray(obs))[None])
    return book.snap(state.float())[1][0].reshape(w, h)


@torch.no_grad()
def snap_probe(level: torch.nn.Module, book: CellCodebook, oracle, layouts: Sequence[int], poses: int,
               seed: int = 0) -> SnapProbe:  # fmt: skip
    """Predict every action from ``poses`` random poses (free cell, heading) of each layout of
    ``oracle`` (a :class:`~hjepa.envs.oracle.LayoutOracle`) and compare the snapped
    prediction with the snapped next observation, cell by cell."""
    rng, n = np.random.default_rng(seed), level.action_spec.n
    env_actions, inputs = level.action_spec.env_actions, level.action_input(torch.arange(n))
    right, wrong = np.zeros(n, dtype=int), Counter()
    total = 0
    for layout in layouts:
        free = oracle.nav(layout).free_cells()
        for i in rng.choice(len(free), min(poses, len(free)), replace=False):
            pose = (int(free[i][0]), int(free[i][1]), int(rng.integers(4)))
            nav = oracle.nav(layout)
            nav.set_pose(*pose)
            before = _codes(level, book, nav.observation())
            pred = level.predict_map(book.maps(before.expand(n, -1, -1)), inputs)
            snapped = book.nearest(rearrange(pred.float(), "b c w h -> b w h c"))
            for a in range(n):
                after = _codes(level, book, _after(oracle, layout, pose, env_actions[a]))
                right[a] += int(torch.equal(snapped[a], after))
                wrong.update(_wrong_cells(before, after, snapped[a], pose, a))
            total += 1
    kinds = [WrongCell(_name(env_actions[a]), d, b, t, p, c) for (a, d, b, t, p), c in wrong.most_common(TOP_WRONG)]
    mask = agent_mask(level, book)
    agents = () if mask is None else tuple(int(i) for i in np.flatnonzero(mask))
    return SnapProbe(tuple(_name(e) for e in env_actions), tuple(int(r) for r in right), (total,) * n,
                     tuple(kinds), agents)  # fmt: skip


def _after(oracle, layout: int, pose: tuple[int, int, int], env_action: int) -> np.ndarray:
    """The observation after ``env_action`` from ``pose`` of the reset layout."""
    nav = oracle.nav(layout)
    nav.set_pose(*pose)
    nav.step(env_action)
    return nav.observation()


def _wrong_cells(before: Tensor, after: Tensor, pred: Tensor, pose: tuple[int, int, int], a: int) -> list[tuple]:
    xs, ys = torch.nonzero(pred != after, as_tuple=True)
    return [(a, max(abs(int(x) - pose[0]), abs(int(y) - pose[1])), int(before[x, y]), int(after[x, y]),
             int(pred[x, y])) for x, y in zip(xs, ys)]  # fmt: skip


def _name(env_action: int) -> str:
    return Actions(int(env_action)).name


@dataclass(frozen=True)
class ImagineProbe:
    """One imagination from a start toward a goal cell: the states imagined (``nodes``), their
    cost in whole-map predictions (``map_units``), the wall time, whether the goal cell was
    reached, the imagined distance to it (-1: not reached), the distinct agent poses among the
    states (cell and heading), and whether the search ran out of new states (``complete``)."""

    nodes: int
    map_units: float
    seconds: float
    goal_found: bool
    distance: int
    poses: int
    complete: bool

    def as_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def imagine_probe(stack: torch.nn.Module, memory: ImaginedMemory, oracle, layout: int, start: tuple[int, int, int],
                  goal: tuple[int, int]) -> ImagineProbe:  # fmt: skip
    """Imagine from ``start`` (x, y, heading) of ``layout`` toward the cell ``goal`` as the
    ``imagine`` planner does (its cap, crops and goal cell)."""
    nav = oracle.nav(layout)
    goal_obs = goal_observation(nav, goal)
    x, y = _require_free_cell(start[:2], {tuple(int(v) for v in c) for c in nav.free_cells()}, nav.encoding, "start")
    nav.set_pose(x, y, _require_direction(start[2], "start"))
    obs = np.stack([nav.observation(), goal_obs])
    states = stack.levels[0].encode(torch.from_numpy(obs))
    memory.new_episode(states[1])
    t0 = time.perf_counter()
    memory.observe(states[0])
    seconds, found = time.perf_counter() - t0, memory.current
    target = memory.nearest(0, states[1])
    dist = distances_to(found.graph.succ, target)[0] if target >= 0 else np.inf
    nodes = found.graph.nodes
    poses = {cell for diff in nodes.diffs for cell in diff.items() if memory.is_agent is not None
             and memory.is_agent[cell[1]]}  # fmt: skip
    return ImagineProbe(len(nodes), round(found.cost, 2), round(seconds, 3), target >= 0,
                        int(dist) if np.isfinite(dist) else -1, len(poses) + 1, found.complete)  # fmt: skip
