"""Two-level planning by imagination: level 1 imagines a route of blocks, level 0 walks it.

A flat imagination (:mod:`hjepa.planning.imagine`) visits every pose within the goal's depth,
so its cost grows with the maze's area. With a ``gridcoarse`` level 1 above a ``gridmap``
level 0, the work is shared:

1. **Level 1 imagines the block graph.** For every block and every side of it, the agent is
   set on each free border cell of that side, facing out, and level 1 predicts one of its
   steps (the latent macro-action of ``stride`` forward moves) on the 3 x 3 blocks around it.
   How much more the predicted step changes the neighbour it faces than its own block is level
   1's confidence that the agent crosses (in ``[-1, 1]``; above 0 is a predicted edge). The
   agent's block in a coarse state is read as the block that differs most from the coarse map
   without the agent. This is one level-1 prediction per border cell: the block graph of a
   129 x 129 maze costs a few thousand small predictions.
2. **Level 1 plans its route** on that graph, cheapest first from the agent's block to the
   goal's: a predicted edge costs one block, a pair level 1 doubts costs up to ``doubt`` more
   (a route crosses it only where the predicted ones lead nowhere, or far around). The blocks
   the route passes are its subgoals, handed down in order.
3. **Level 0 imagines only inside the route** (an imagination :class:`Corridor`) toward the
   goal's state, and the agent walks the imagined path. Each env step is judged in level 1's
   space: the current state's block, read through level 1's encoder, says which subgoal has
   been reached. When level 0 finds no way along the route (a doorway level 1 predicted or
   doubted is not there), the pair out of the last block it reached is dropped and level 1
   plans again.

The configurator's rule decides per task: when the route is at most ``near`` blocks long,
level 0 alone imagines toward the goal, unrestricted (a near goal needs no route).

What the planner reads off the observations: the agent's cell is the cell whose code is one
of level 0's agent codes (:meth:`~hjepa.levels.gridmap.GridMapLevel.agent_codes`, MiniGrid's
symbolic encoding draws the agent in its cell); the floor under it is what the goal
observation shows there. Nothing reads the env's layout, its rooms or its size.

Shapes: ``p`` block side, ``w h`` cells, ``W H`` blocks, ``c`` coarse channels.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from einops import repeat
from torch import Tensor

from hjepa.errors import ConfigError
from hjepa.planning.imagine import CellCodebook, Corridor

DIRECTIONS = ((1, 0), (0, 1), (-1, 0), (0, -1))
"""MiniGrid's headings 0-3 (east, south, west, north) as cell offsets ``(dx, dy)``."""
BATCH = 1024


@dataclass(frozen=True)
class Scene:
    """What the planner reads off the start and goal states (code indices into the codebook).

    Attributes:
        background: ``"w h"`` the start map with the agent's cell shown as the floor under it.
        start: the agent's cell at the start; goal: the agent's cell in the goal state.
        floor: the code index of the floor under the agent.
        agent: ``(4,)`` the agent's code index for each heading.
    """

    background: np.ndarray
    start: tuple[int, int]
    goal: tuple[int, int]
    floor: int
    agent: np.ndarray

    @cached_property
    def is_agent(self) -> np.ndarray:
        """``"q"`` bool, for :class:`Corridor` (q = 256 covers every uint8 code index)."""
        table = np.zeros(256, dtype=bool)
        table[self.agent] = True
        return table


def read_scene(start: np.ndarray, goal: np.ndarray, agent: np.ndarray) -> Scene:
    """The :class:`Scene` of two maps of code indices ``"w h"``; ``agent`` holds the agent's
    code index per heading (``-1`` where the codebook has none)."""
    cells = [np.argwhere(np.isin(m, agent[agent >= 0])) for m in (start, goal)]
    if any(len(c) != 1 for c in cells):
        raise ConfigError("The coarse planner reads the agent's cell off the start and goal states; "
                          f"found {len(cells[0])} and {len(cells[1])} agent cells.")  # fmt: skip
    s, g = (tuple(int(v) for v in c[0]) for c in cells)
    floor = int(goal[s]) if s != g else int(np.bincount(start.reshape(-1)).argmax())
    background = start.copy()
    background[s] = floor
    return Scene(background, s, g, floor, agent)


@dataclass(frozen=True)
class Placement:
    """The agent set on a border cell of a block, facing the neighbour across that border."""

    cell: tuple[int, int]
    heading: int
    block: tuple[int, int]
    neighbour: tuple[int, int]


def placements(scene: Scene, p: int) -> list[Placement]:
    """Every free border cell of every block, facing out, with the neighbour it faces."""
    w, h = scene.background.shape
    free = scene.background == scene.floor
    out = []
    for x, y in np.argwhere(free).tolist():
        for d, (dx, dy) in enumerate(DIRECTIONS):
            nx, ny = x + dx, y + dy
            if 0 <= nx < w and 0 <= ny < h and (nx // p, ny // p) != (x // p, y // p):
                out.append(Placement((x, y), d, (x // p, y // p), (nx // p, ny // p)))
    return out


Edge = tuple[tuple[int, int], tuple[int, int]]


class BlockGraph:
    """Level 1's imagined graph of blocks: every pair of neighbouring blocks with a border cell
    to cross, weighted by level 1's doubt that the agent crosses it; the ones level 0 refuted
    removed.

    Args:
        belief: per directed block pair, level 1's confidence in ``[-1, 1]`` that the agent
            crosses it (:meth:`CoarseModel.graph`); above 0 is a predicted edge.
        doubt: the extra blocks a route would rather walk than cross a pair level 1 is sure is
            closed (confidence -1); a pair of confidence ``s < 0`` costs ``1 + doubt * -s``.
        calls, cost: level 1's predictions that made it, and their cost in whole-map units.
    """

    def __init__(self, belief: dict[Edge, float], doubt: float, calls: int, cost: float) -> None:
        self.weights: dict[tuple[int, int], dict[tuple[int, int], float]] = {}
        for (a, b), s in belief.items():
            self.weights.setdefault(a, {})[b] = 1.0 + doubt * max(0.0, -s)
        self.predicted = {edge for edge, s in belief.items() if s > 0}
        self.calls, self.cost = calls, cost

    def drop(self, a: tuple[int, int], b: tuple[int, int]) -> None:
        self.weights.get(a, {}).pop(b, None)
        self.predicted.discard((a, b))

    def route(self, start: tuple[int, int], goal: tuple[int, int]) -> list[tuple[int, int]] | None:
        """The cheapest blocks from ``start`` to ``goal`` (both included), or None."""
        best: dict[tuple[int, int], float] = {start: 0.0}
        parent: dict[tuple[int, int], tuple[int, int] | None] = {start: None}
        heap = [(0.0, start)]
        while heap:
            d, node = heapq.heappop(heap)
            if node == goal:
                path = [node]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])
                return path[::-1]
            if d > best[node]:
                continue
            for nxt, w in sorted(self.weights.get(node, {}).items()):
                if d + w < best.get(nxt, math.inf):
                    best[nxt], parent[nxt] = d + w, node
                    heapq.heappush(heap, (d + w, nxt))
        return None


class CoarseModel:
    """Level 1 (``gridcoarse``) over level 0 (``gridmap``), read at blocks of ``p`` cells."""

    def __init__(self, stack: torch.nn.Module, book: CellCodebook) -> None:
        self.level0, self.level1, self.book = stack.levels[0], stack.levels[1], book
        self.p = self.level1.block
        chunk = self.level0.action_input(torch.full((1, self.level1.spec.config.stride), _forward_index(self.level0)))
        with torch.no_grad():
            self.macro = self.level1.infer_action(chunk)[0]  # "e": stride forward moves

    def coarse(self, codes: np.ndarray) -> Tensor:
        """Maps of code indices ``"b w h"`` (sides multiples of ``p``) -> coarse states ``"b c W H"``."""
        return self.level1.encode_map(self.book.maps(torch.from_numpy(codes)))

    def block_of(self, codes: np.ndarray, background: Tensor) -> tuple[int, int]:
        """The agent's block in a whole map of code indices, read in level 1's space: the
        block whose coarse state differs most from ``background`` (``"c W H"``)."""
        diff = (self.coarse(_padded(codes, self.p)[None])[0] - background).pow(2).sum(0)
        i = int(diff.argmax())
        return i // diff.shape[1], i % diff.shape[1]

    def background(self, scene: Scene) -> Tensor:
        """``"c W H"``: the coarse map without the agent."""
        return self.coarse(_padded(scene.background, self.p)[None])[0]

    @torch.no_grad()
    def graph(self, scene: Scene, doubt: float) -> BlockGraph:
        """Level 1's block graph (module docstring, step 1): each pair's confidence is the best
        of its placements' (:meth:`_moves`)."""
        todo = placements(scene, self.p)
        belief: dict[Edge, float] = {}
        padded = _padded(scene.background, self.p)
        for i in range(0, len(todo), BATCH):
            chunk = todo[i : i + BATCH]
            for pl, s in zip(chunk, self._moves(padded, scene, chunk)):
                edge = (pl.block, pl.neighbour)
                belief[edge] = max(belief.get(edge, -1.0), s)
        cells = len(todo) * (9 * self.p * self.p)  # each reads a 3 x 3-block crop of level-0 cells
        return BlockGraph(belief, doubt, len(todo), cells / (scene.background.shape[0] * scene.background.shape[1]))

    def _moves(self, padded: np.ndarray, scene: Scene, chunk: list[Placement]) -> list[float]:
        """For each placement, level 1's confidence in ``[-1, 1]`` that the agent ends in the
        neighbour it faces: ``(n - b) / (n + b)``, ``n`` and ``b`` the predicted change of the
        neighbour's and of its own block's coarse state (-1 where the neighbour is off the map)."""
        p = self.p
        nb, nh = padded.shape[0] // p, padded.shape[1] // p
        corners = [(min(max(pl.block[0] - 1, 0), max(nb - 3, 0)), min(max(pl.block[1] - 1, 0), max(nh - 3, 0)))
                   for pl in chunk]  # fmt: skip
        crops = np.stack([padded[cx * p : (cx + 3) * p, cy * p : (cy + 3) * p] for cx, cy in corners])
        bg = self.coarse(crops)
        for j, pl in enumerate(chunk):
            crops[j, pl.cell[0] - corners[j][0] * p, pl.cell[1] - corners[j][1] * p] = scene.agent[pl.heading]
        pred = self.level1.predict_map(self.coarse(crops), repeat(self.macro, "e -> b e", b=len(chunk)))
        change = (pred - bg).pow(2).sum(1)  # "b W H"
        out = []
        for j, pl in enumerate(chunk):
            here = (pl.block[0] - corners[j][0], pl.block[1] - corners[j][1])
            there = (pl.neighbour[0] - corners[j][0], pl.neighbour[1] - corners[j][1])
            if not (0 <= there[0] < change.shape[1] and 0 <= there[1] < change.shape[2]):
                out.append(-1.0)
                continue
            n, b = float(change[j][there]), float(change[j][here])
            out.append((n - b) / (n + b) if n + b > 0 else -1.0)
        return out

    def corridor(self, scene: Scene, route: list[tuple[int, int]]) -> Corridor:
        """The cells of the route's blocks."""
        allowed = np.zeros(scene.background.shape, dtype=bool)
        p = self.p
        for bx, by in route:
            allowed[bx * p : (bx + 1) * p, by * p : (by + 1) * p] = True
        return Corridor(allowed, scene.is_agent)


def _padded(codes: np.ndarray, p: int) -> np.ndarray:
    """``"... w h"`` padded at the far edges to whole blocks (with code index 0: the padding
    is never read as a place the agent can be, and the encoder sees zeros there in training)."""
    w, h = codes.shape[-2:]
    pad = [(0, 0)] * (codes.ndim - 2) + [(0, -w % p), (0, -h % p)]
    return np.pad(codes, pad, constant_values=0)


def _forward_index(level0: torch.nn.Module) -> int:
    """Level 0's index of MiniGrid's forward action (env action 2)."""
    env_actions = tuple(level0.action_spec.env_actions)
    if 2 not in env_actions:
        raise ConfigError("The coarse planner's macro-action is a run of forward moves; level 0 has no forward action.")
    return env_actions.index(2)


def agent_code_indices(level0: torch.nn.Module, book: CellCodebook) -> np.ndarray:
    """``(4,)`` the codebook index of the agent's cell per heading (-1 where the data had none)."""
    codes = level0.agent_codes()
    index = {int(c): i for i, c in enumerate(book.codes.tolist())}
    return np.array([index.get(int(c), -1) for c in codes], dtype=np.int64)


def reach_blocks(nodes_diffs: list[dict[int, int]], is_agent: np.ndarray, h: int, p: int) -> set[tuple[int, int]]:
    """The blocks the agent stands in over imagined nodes (their differing cells and codes)."""
    out = set()
    for diff in nodes_diffs:
        for cell, code in diff.items():
            if is_agent[code]:
                out.add(((cell // h) // p, (cell % h) // p))
    return out

