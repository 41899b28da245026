"""The graph field: a level's graph distances spread over its latent space (hjepa.planning.field)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hjepa.errors import ConfigError
from hjepa.planning.field import field_cost, graph_field
from hjepa.planning.graph import NO_EDGE, distances_to


def _chain(n: int = 10) -> tuple[torch.Tensor, np.ndarray]:
    """Nodes at 0, 1, ..., n-1 on a line; action 0 steps down, action 1 steps up."""
    keys = torch.arange(n, dtype=torch.float32)[:, None]
    succ = np.stack([np.arange(n) - 1, np.arange(n) + 1], axis=1)
    succ[0, 0] = succ[-1, 1] = NO_EDGE
    return keys, succ


def _field(edges: np.ndarray, keys: torch.Tensor, succ: np.ndarray, tau: int = 5):
    return graph_field(keys, keys.pow(2).sum(1), None, succ, edges, tau)


def test_the_field_adds_the_latent_distance_to_the_nearest_nodes_graph_steps() -> None:
    keys, succ = _chain()
    field = _field(distances_to(succ, 0), keys, succ)
    assert field.per_unit == pytest.approx(5.0)  # an edge: 1 latent unit, 5 env steps
    goal = torch.tensor([0.0])
    costs = field_cost(field, torch.tensor([[3.2], [0.3], [6.0]]), goal, k=2)
    # 3.2: node 3 (3 edges, 0.2 away) -> 15 + 1; 0.3: the goal itself, 0.3 away -> 1.5; 6.0: node 6 -> 30
    torch.testing.assert_close(costs, torch.tensor([16.0, 1.5, 30.0]))
    along = field_cost(field, torch.linspace(0, 9, 19)[:, None], goal, k=2)
    assert bool((along[1:] >= along[:-1]).all())  # downhill all the way to the goal


def test_far_from_the_goal_the_graph_not_the_latent_distance_decides() -> None:
    """Nodes whose path is a detour (twice their line distance): a state beside them costs the
    detour, though the goal is closer in latent space (latent distance is local)."""
    keys, succ = _chain()
    field = _field(2 * distances_to(succ, 0), keys, succ)
    # via node 4 (1 unit away, 8 edges): 5 + 40; the latent distance to the goal alone would say 25
    assert float(field_cost(field, torch.tensor([[5.0]]), torch.tensor([0.0]), k=2)[0]) == pytest.approx(45.0)


def test_nodes_without_a_path_cost_more_than_any_with_one() -> None:
    keys, succ = _chain()
    succ[5, 0] = NO_EDGE  # nodes 5.. cannot step down past 5
    field = _field(distances_to(succ, 0), keys, succ)
    assert not np.isfinite(distances_to(succ, 0)[5:]).any()
    cost = field_cost(field, torch.tensor([[4.0], [7.0]]), torch.tensor([0.0]), k=1)
    assert float(cost[1]) > float(cost[0]) and float(cost[1]) >= field.unreached


def test_a_graph_without_edges_is_refused() -> None:
    keys, succ = _chain()
    with pytest.raises(ConfigError, match="no edge|none"):
        _field(np.zeros(len(keys)), keys, np.full_like(succ, NO_EDGE))
