"""How true level 1's imagined block graph is: its edges against the layout's own block adjacency.

The two-level "imagine" planner (:mod:`hjepa.planning.coarse`) routes over the edges level 1
predicts between blocks. This check, for evaluation only, compares them with the true ones:
block ``A -> B`` is a true edge when some free cell of ``A`` has a free 4-neighbour in ``B``.
Precision is the share of predicted edges that are true (a false one sends level 0 into a
wall, which it then refutes); recall is the share of true edges predicted (a missing one
lengthens routes, or leaves level 0 alone when no route is left).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from hjepa.envs.oracle import LayoutOracle, goal_observation
from hjepa.planning.coarse import read_scene
from hjepa.planning.configurator import RuleConfigurator
from hjepa.planning.routes import RoutePlanner, two_level_imagination

Edge = tuple[tuple[int, int], tuple[int, int]]
LAYOUTS = 3
"""Evaluated layouts checked (each costs one block graph)."""


class EdgeFigures(NamedTuple):
    precision: float
    recall: float
    true_edges: int
    predicted_edges: int
    layouts: int


def true_block_edges(cells: set[tuple[int, int]], p: int) -> set[Edge]:
    """Block pairs joined by two free 4-neighbour cells, ``p`` cells per block side."""
    out = set()
    for x, y in cells:
        for dx, dy in ((1, 0), (0, 1), (-1, 0), (0, -1)):
            n = (x + dx, y + dy)
            if n in cells and (n[0] // p, n[1] // p) != (x // p, y // p):
                out.add(((x // p, y // p), (n[0] // p, n[1] // p)))
    return out


@torch.no_grad()
def block_edge_figures(stack: torch.nn.Module, memory: torch.Tensor, env_id: str,
                       layouts: list[int]) -> EdgeFigures | None:  # fmt: skip
    """Level 1's block graph against the truth on the first :data:`LAYOUTS` of ``layouts``;
    None for a stack the two-level planner does not plan."""
    rule = RuleConfigurator(planner="imagine")
    if memory is None or not two_level_imagination(stack, rule):
        return None
    planner = RoutePlanner(stack, rule, memory)
    mem, oracle = planner.memory, LayoutOracle(env_id)
    true_n = pred_n = hits = 0
    for layout in layouts[:LAYOUTS]:
        nav, cells = oracle.nav(layout), list(oracle.graph(layout).cells)
        nav.set_pose(*cells[0], 0)
        state0 = stack.encode(torch.from_numpy(nav.observation().copy())[None], upto=0)[0][0]
        planner.reset(torch.from_numpy(goal_observation(nav, cells[-1])))
        scene = read_scene(mem.codes_of(state0), mem.goal, mem.agent)
        predicted = mem.model.graph(scene, rule.doubt).predicted
        truth = true_block_edges(set(cells), mem.model.p)
        true_n, pred_n, hits = true_n + len(truth), pred_n + len(predicted), hits + len(predicted & truth)
    n = min(len(layouts), LAYOUTS)
    return EdgeFigures(round(hits / max(pred_n, 1), 4), round(hits / max(true_n, 1), 4), true_n, pred_n, n)
