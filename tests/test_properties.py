"""Property-based tests (hypothesis): the oracle, the planners, the training windows.

Each property is checked on a few dozen generated cases (``max_examples`` is kept small so
the file runs in seconds); hypothesis shrinks any counter-example to a minimal one.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hjepa.datamodule import window_starts
from hjepa.envs.oracle import POSE_ACTIONS, LayoutOracle, PoseGraph
from hjepa.planning.planners import beam_search, categorical_cem, gaussian_cem, mppi

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------- oracle
@lru_cache(maxsize=None)
def oracle() -> LayoutOracle:
    return LayoutOracle("MiniGrid-FourRooms-v0", capacity=4)


LAYOUTS = st.sampled_from([0, 1, 7])


def _pose_and_goal(graph: PoseGraph, data: st.DataObject) -> tuple[tuple[int, int, int], tuple[int, int]]:
    x, y = data.draw(st.sampled_from(graph.cells), label="start cell")
    goal = data.draw(st.sampled_from(graph.cells), label="goal cell")
    return (x, y, data.draw(st.integers(0, 3), label="direction")), goal


@FAST
@given(layout=LAYOUTS, data=st.data())
def test_oracle_path_reaches_the_goal_in_exactly_its_distance(layout: int, data: st.DataObject) -> None:
    graph, nav = oracle().graph(layout), oracle().nav(layout)
    start, goal = _pose_and_goal(graph, data)
    distance, path = graph.distance(start, goal), graph.path(start, goal)
    assert len(path) == distance and set(path) <= set(POSE_ACTIONS)
    nav.set_pose(*start)
    for i, action in enumerate(path):
        assert nav.pose[:2] != goal, f"the path passes the goal {i} actions before its end"
        nav.step(action)
    assert nav.pose[:2] == goal  # following the path in the simulator itself reaches the goal


@FAST
@given(layout=LAYOUTS, data=st.data())
def test_oracle_distances_obey_bellman(layout: int, data: st.DataObject) -> None:
    """d(goal cell) = 0; every action changes d by at least -1; the path's actions by exactly -1."""
    graph, nav = oracle().graph(layout), oracle().nav(layout)
    start, goal = _pose_and_goal(graph, data)
    dist = graph.distances_to(goal)
    assert (dist[start] == 0) == (start[:2] == goal)
    for action in POSE_ACTIONS:
        nav.set_pose(*start)
        nav.step(action)
        assert dist[nav.pose] >= dist[start] - 1
    pose = start
    for action in graph.path(start, goal):
        nav.set_pose(*pose)
        nav.step(action)
        assert dist[nav.pose] == dist[pose] - 1
        pose = nav.pose


# ----------------------------------------------------------------------------- planners
def _recording(cost_of: torch.Tensor):
    """A cost over discrete sequences ``"n h"`` that remembers every cost it returned."""
    seen: list[torch.Tensor] = []

    def cost(seqs: torch.Tensor) -> torch.Tensor:
        h = seqs.shape[1]
        c = cost_of[torch.arange(h), seqs].sum(1)
        seen.append(c)
        return c

    return cost, seen


DISCRETE = dict(n_actions=st.integers(1, 4), horizon=st.integers(1, 5), samples=st.integers(1, 24),
                iters=st.integers(1, 5), elites=st.integers(1, 8), seed=st.integers(0, 2**16))  # fmt: skip


@FAST
@given(**DISCRETE)
def test_categorical_cem_returns_valid_actions_and_its_best_cost(n_actions, horizon, samples, iters, elites, seed) -> None:
    gen = torch.Generator().manual_seed(seed)
    table = torch.rand(horizon, n_actions, generator=gen)
    cost, seen = _recording(table)
    res = categorical_cem(cost, n_actions, horizon, samples, iters, elites, generator=gen)
    assert res.actions.shape == (horizon,) and res.actions.dtype == torch.long
    assert ((0 <= res.actions) & (res.actions < n_actions)).all()
    assert len(res.history) == iters and res.calls == samples * iters * horizon
    assert all(b <= a for a, b in zip(res.history, res.history[1:])), "the best cost rose"
    assert res.history[-1] == res.cost == pytest.approx(float(table[torch.arange(horizon), res.actions].sum()))
    assert res.cost == pytest.approx(float(torch.cat(seen).min()))  # the best of everything evaluated
    assert torch.allclose(res.state.sum(1), torch.ones(horizon))  # still a distribution per step


@FAST
@given(n_actions=st.integers(1, 3), depth=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_exhaustive_beam_search_finds_the_optimum(n_actions: int, depth: int, seed: int) -> None:
    """States are the partial sequences' codes; width >= n^h makes beam search exhaustive."""
    table = torch.rand(depth, n_actions ** (depth + 1), generator=torch.Generator().manual_seed(seed))

    def step(states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:  # "n 1" codes of the prefixes
        return states * n_actions + actions.float()[:, None]

    def cost(states: torch.Tensor, t: int) -> torch.Tensor:
        return table[t - 1, states[:, 0].long()]

    res = beam_search(torch.zeros(1), step, cost, n_actions, depth, width=n_actions**depth)
    assert res.actions.shape == (depth,) and ((0 <= res.actions) & (res.actions < n_actions)).all()
    best = min(_sequence_cost(table, seq, n_actions) for seq in np.ndindex(*(n_actions,) * depth))
    assert res.cost == pytest.approx(best, abs=1e-5)
    assert res.cost == pytest.approx(_sequence_cost(table, tuple(res.actions.tolist()), n_actions), abs=1e-5)


def _sequence_cost(table: torch.Tensor, seq: tuple[int, ...], n: int) -> float:
    code, total = 0, 0.0
    for t, a in enumerate(seq, start=1):
        code = code * n + a
        total += float(table[t - 1, code])
    return total


@FAST
@given(dim=st.integers(1, 3), horizon=st.integers(1, 4), samples=st.integers(2, 24), iters=st.integers(1, 4),
       seed=st.integers(0, 2**16), planner=st.sampled_from(["cem", "mppi"]))  # fmt: skip
def test_continuous_planners_stay_in_the_box_and_never_get_worse(dim, horizon, samples, iters, seed, planner) -> None:
    gen = torch.Generator().manual_seed(seed)
    target = torch.rand(horizon, dim, generator=gen) * 3 - 1.5  # partly outside [-1, 1]
    seen: list[torch.Tensor] = []

    def cost(seqs: torch.Tensor) -> torch.Tensor:
        seen.append(((seqs - target) ** 2).sum((1, 2)))
        return seen[-1]

    if planner == "cem":
        res = gaussian_cem(cost, dim, horizon, samples, iters, elites=max(1, samples // 4), generator=gen)
    else:
        res = mppi(cost, dim, horizon, samples, iters, generator=gen)
    assert res.actions.shape == (horizon, dim) and torch.isfinite(res.actions).all()
    assert (res.actions.abs() <= 1.0).all()
    assert all(b <= a for a, b in zip(res.history, res.history[1:])), "the best cost rose"
    assert res.cost == pytest.approx(float(((res.actions - target) ** 2).sum()), rel=1e-5, abs=1e-6)
    assert res.cost == pytest.approx(float(torch.cat(seen).min()), rel=1e-6, abs=1e-7)


# ----------------------------------------------------------------------------- windows
@FAST
@given(lengths=st.lists(st.integers(1, 12), min_size=1, max_size=12), window=st.integers(1, 8),
       subset=st.data())  # fmt: skip
def test_windows_never_cross_an_episode_and_miss_none(lengths: list[int], window: int, subset: st.DataObject) -> None:
    """``lengths``: observations per episode. Every start returned begins a window inside one
    of the chosen episodes, and every such window is returned exactly once."""
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    chosen = np.array(sorted(subset.draw(st.sets(st.integers(0, len(lengths) - 1)), label="episodes")), dtype=np.int64)
    starts = window_starts(offsets, chosen, window)
    episode_of = np.repeat(np.arange(len(lengths)), lengths)
    expected = [s for e in chosen for s in range(offsets[e], offsets[e + 1] - window + 1)]
    assert starts.dtype == np.int64 and starts.tolist() == expected
    if len(starts):
        assert (episode_of[starts] == episode_of[starts + window - 1]).all()
