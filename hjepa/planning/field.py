"""A cost-to-go field over a level's states, read off its latent graph.

A level's graph (:mod:`hjepa.planning.graph`) knows, for every remembered state, how many env
steps its shortest path to the goal's node takes. Level 0 plans continuous actions (PointMaze
forces) and needs a cost for any state it predicts, not only for remembered ones: it reads its
predicted states in the graph level's space (through the encoders above it) and the field
spreads the graph's distances over that space:

    cost(s) = min( per_unit * |s - goal|,  min_j [ steps_j + per_unit * |s - node_j| ] )

over the ``k`` nodes nearest ``s`` (the goal counts where it is among them), where ``steps_j``
is node j's graph distance in env steps and ``per_unit`` converts latent distance into env
steps (the median length of the graph's edges, each worth ``tau`` env steps). The goal itself is
a node at distance 0, so the last stretch is costed by the direct latent distance. This is the
upper level's plan handed down as a cost (SoRB's "search on the replay buffer" composed with a
local distance, Eysenbach et al. 2019), rather than as a single subgoal state: a ball rolling
past a subgoal needs no new subgoal, the field already says which way is downhill.

Shapes: ``m`` nodes, ``n`` queried states, ``p`` compared width, ``a`` actions.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from hjepa.errors import ConfigError
from hjepa.planning.graph import keys_of, nearest_keys

NEIGHBOURS = 8
"""Nodes each queried state is costed through (its nearest in the graph level's space)."""


class GraphField(NamedTuple):
    """The keys of a graph's nodes and their env steps to the target."""

    keys: Tensor  # "m p": the nodes' states, compared width
    keys_sq: Tensor  # "m": their squared norms
    proj: Tensor | None  # the level's projection (None: raw states)
    steps: Tensor  # "m": env steps to the target on the graph; inf without a path
    per_unit: float  # env steps per unit of latent distance
    unreached: float  # the cost of a node without a path (beyond every finite one)


def graph_field(keys: Tensor, keys_sq: Tensor, proj: Tensor | None, succ: np.ndarray, edges_to_target: np.ndarray,
                edge_cost: int) -> GraphField:  # fmt: skip
    """The field of a graph with successor table ``succ "m a"`` whose nodes are ``keys "m p"``,
    and ``edges_to_target "m"`` edges from each node to the target.

    Raises:
        ConfigError: the graph has no edge, so nothing calibrates latent distance in env steps.
    """
    src, act = np.nonzero(succ >= 0)
    if len(src) == 0:
        raise ConfigError("The graph field needs a graph with edges; this level's graph has none "
                          "(its predictions fell beyond the snapping radius of every node).")  # fmt: skip
    lengths = (keys[torch.from_numpy(src)] - keys[torch.from_numpy(succ[src, act])]).norm(dim=1)
    per_unit = edge_cost / max(float(lengths.median()), 1e-6)
    steps = torch.from_numpy(edges_to_target * edge_cost).float()
    finite = steps[torch.isfinite(steps)]
    unreached = (float(finite.max()) if len(finite) else 0.0) + edge_cost
    return GraphField(keys, keys_sq, proj, steps, per_unit, unreached)


def field_cost(field: GraphField, states: Tensor, goal: Tensor, k: int = NEIGHBOURS) -> Tensor:
    """Env steps to the goal from each state ``"n d"`` (of the graph's level) by the field;
    ``goal "d"`` is that level's goal state (a node at distance 0)."""
    query = keys_of(states, field.proj)
    idx, dist = nearest_keys(query, field.keys, field.keys_sq, k=min(k, len(field.keys)) if k > 1 else 1)
    if idx.ndim == 1:
        idx, dist = idx[:, None], dist[:, None]
    steps = field.steps[idx].nan_to_num(posinf=field.unreached)
    via_nodes = (steps + field.per_unit * dist).min(dim=1).values
    to_goal = (query - keys_of(goal[None], field.proj)).norm(dim=1)
    # The goal is one more node: it counts for the states it is among the k nearest nodes of
    # (latent distance is a local measure; far away it says little about env steps).
    direct = torch.where(to_goal <= dist[:, -1], field.per_unit * to_goal, torch.inf)
    return torch.minimum(via_nodes, direct)
