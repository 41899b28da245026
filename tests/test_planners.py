"""Planners find known optima of mock rollouts, and plan to goals with the oracle as cost."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hjepa.envs.oracle import LayoutOracle, make_tasks
from hjepa.envs.tasks import FOURROOMS_BINS
from hjepa.errors import ConfigError
from hjepa.planning import planners


def _line_model(n_actions: int = 3):
    """States are points on a line; action a moves by a - 1."""

    def step(s, a):
        return s + (a.float() - 1.0)[:, None]

    return step


def test_beam_exhaustive_matches_brute_force():
    gen = torch.Generator().manual_seed(0)
    weights = torch.randn(4, 3, generator=gen)  # cost of action a at depth t

    def step(s, a):  # the state is (depth, running cost): only the final cost counts
        return torch.stack([s[:, 0] + 1, s[:, 1] + weights[s[:, 0].long(), a]], dim=1)

    def final_cost(s, t):
        return s[:, 1] if t == 4 else torch.zeros(s.shape[0])

    result = planners.beam_search(torch.zeros(2), step, final_cost, n_actions=3, depth=4, width=81)
    brute = min(itertools.product(range(3), repeat=4), key=lambda seq: sum(float(weights[t, a]) for t, a in enumerate(seq)))
    assert result.actions.tolist() == list(brute)
    assert result.calls == 3 + 9 + 27 + 81


def test_beam_reaches_target_on_a_line():
    target = 3.0
    result = planners.beam_search(torch.zeros(1), _line_model(), lambda s, t: (s[:, 0] - target).abs(), 3, 5, 8)
    assert result.actions[:3].tolist() == [2, 2, 2]
    assert result.cost == pytest.approx(2 + 1 + 0 + 0 + 0)


def test_categorical_cem_finds_separable_optimum():
    target = torch.tensor([3, 0, 2, 1, 3, 0])
    gen = torch.Generator().manual_seed(1)
    result = planners.categorical_cem(lambda seqs: (seqs != target).sum(1).float(), 4, 6, 200, 6, 20, generator=gen)
    assert result.actions.tolist() == target.tolist()
    assert result.cost == 0


@pytest.mark.parametrize("planner", ["gaussian_cem", "mppi"])
def test_continuous_planners_find_quadratic_optimum(planner):
    target = torch.tensor([[0.5, -0.3], [0.2, 0.8], [-0.6, 0.1]])
    gen = torch.Generator().manual_seed(2)
    cost = lambda seqs: (seqs - target).pow(2).sum((1, 2))  # noqa: E731
    if planner == "gaussian_cem":
        result = planners.gaussian_cem(cost, 2, 3, 256, 8, 32, generator=gen)
    else:
        result = planners.mppi(cost, 2, 3, 256, 8, generator=gen)
    assert torch.allclose(result.actions, target, atol=0.1)


def test_warm_start_shifts():
    probs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    shifted = planners.shift_probs(probs, floor=0.0)
    assert torch.allclose(shifted, torch.tensor([[0.0, 1.0], [0.5, 0.5]]))
    mean = torch.tensor([[1.0], [2.0], [3.0]])
    assert planners.shift_mean(mean).flatten().tolist() == [2.0, 3.0, 3.0]


def test_bad_budget_is_a_clear_error():
    with pytest.raises(ConfigError, match="positive"):
        planners.beam_search(torch.zeros(1), _line_model(), lambda s, t: s[:, 0], 3, 0, 4)
    with pytest.raises(ConfigError, match="positive"):
        planners.gaussian_cem(lambda s: s.sum((1, 2)), 2, 3, 0, 2, 2)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 5), h=st.integers(1, 5))
def test_cem_best_cost_never_rises_and_actions_valid(seed, n, h):
    gen = torch.Generator().manual_seed(seed)
    table = torch.randn(h, n, generator=gen)
    cost = lambda seqs: table.gather(1, seqs.T).sum(0)  # noqa: E731
    result = planners.categorical_cem(cost, n, h, 32, 4, 4, generator=gen)
    assert all(b <= a + 1e-6 for a, b in zip(result.history, result.history[1:]))
    assert result.actions.min() >= 0 and result.actions.max() < n and len(result.actions) == h
    assert result.cost == pytest.approx(float(cost(result.actions[None])[0]), abs=1e-5)


def test_beam_with_oracle_cost_on_the_true_simulator_reaches_every_goal():
    """The planner and the evaluation loop, told apart from any learned model."""
    oracle = LayoutOracle("MiniGrid-FourRooms-v0")
    nav, graph = oracle.nav(0), oracle.graph(0)
    tasks = make_tasks("MiniGrid-FourRooms-v0", [0], 3, FOURROOMS_BINS, seed=5)
    actions = (0, 1, 2)
    for task in tasks:
        dist = graph.distances_to(task.goal)

        def step(s, a):
            out = []
            for pose, act in zip(s.tolist(), a.tolist()):
                nav.set_pose(*pose)
                nav.step(actions[act])
                out.append(nav.pose)
            return torch.tensor(out)

        def cost(s, t):
            return torch.tensor([float(dist[tuple(p)]) for p in s.tolist()])

        pose, steps = task.start, 0
        while pose[:2] != task.goal and steps < 100:
            plan = planners.beam_search(torch.tensor(pose), step, cost, 3, 3, 27)
            nav.set_pose(*pose)
            nav.step(actions[int(plan.actions[0])])
            pose, steps = nav.pose, steps + 1
        assert pose[:2] == task.goal
        assert steps == task.distance
