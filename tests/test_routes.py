"""The two-level "imagine" planner: with the env's own dynamics in place of both predictors,
level 1 imagines a 65 x 65 maze's block graph, plans routes of blocks and hands their blocks
down as subgoals; level 0 imagines only inside the route and reaches every goal, at a
fraction of a flat imagination's cost."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from true_dynamics import CoarseDynamics, GridDynamics, codebook_observations

from hjepa.agents import FlatAgent, HJEPAAgent
from hjepa.envs.mazerooms import SIZED_IDS
from hjepa.envs.oracle import LayoutOracle, goal_observation
from hjepa.experiments.block_edges import block_edge_figures, true_block_edges
from hjepa.experiments.presets import coarse_levels
from hjepa.config import ExperimentConfig
from hjepa.planning.configurator import RuleConfigurator
from hjepa.planning.coarse import BlockGraph
from hjepa.planning.routes import RoutePlanner
from hjepa.specs import ActionSpec, ObsSpec
from hjepa.stack import HJEPA

ENV, LAYOUT = SIZED_IDS[8], 100_001
ACTIONS = ActionSpec("discrete", n=3, env_actions=(0, 1, 2))


@pytest.fixture(scope="module")
def maze():
    oracle = LayoutOracle(ENV)
    nav = oracle.nav(LAYOUT)
    torch.manual_seed(0)
    stack = HJEPA.from_config(ExperimentConfig(levels=coarse_levels()), ObsSpec("grid", (65, 65, 3), "uint8"),
                              ACTIONS).eval()  # fmt: skip
    codebook_obs = codebook_observations(nav)
    planner = RoutePlanner(stack, RuleConfigurator(planner="imagine"), codebook_obs)
    book = planner.memory.book
    stack.levels[0].predict_map = GridDynamics(book)
    coarse = CoarseDynamics(book, stack.levels[1].block, stack.levels[1].spec.config.stride, 8)
    stack.levels[1].encode_map, stack.levels[1].predict_map = coarse.encode_map, coarse.predict_map
    return stack, oracle, codebook_obs


def _episode(agent, oracle, start, goal, slack: float = 1.05) -> int:
    nav = oracle.nav(LAYOUT)
    nav.set_pose(*start)
    agent.reset(nav.observation(), goal_observation(nav, goal))
    # the goal state faces east (2 turns more at most); a route of blocks may cost a few turns more
    steps, limit = 0, int(slack * oracle.graph(LAYOUT).distance(start, goal)) + 2
    while nav.pose[:2] != goal and steps < limit:
        nav.step(ACTIONS.env_actions[agent.act(nav.observation().copy())])
        steps += 1
    return steps if nav.pose[:2] == goal else -1


def test_level_1_routes_and_level_0_walks_them_to_far_goals_for_less(maze) -> None:
    stack, oracle, codebook_obs = maze
    graph = oracle.graph(LAYOUT)
    rng = np.random.default_rng(1)
    hjepa = HJEPAAgent(stack, RuleConfigurator(planner="imagine"), 0, codebook_obs)
    flat = FlatAgent(stack, 1.0, planner="imagine", memory=codebook_obs, imagine_nodes=1_000_000)
    assert isinstance(hjepa.planner, RoutePlanner)
    done = 0
    while done < 1:
        i, j = rng.choice(len(graph.cells), 2, replace=False)
        start, goal = (*(int(v) for v in graph.cells[i]), 0), tuple(int(v) for v in graph.cells[j])
        if graph.distance(start, goal) < 80:
            continue
        assert _episode(hjepa, oracle, start, goal) >= 0
        routed = [t for t in hjepa.trace if len(t.levels) == 2]
        assert routed and routed[0].levels[1].subgoal is not None  # level 1 handed a block down
        assert all(t.levels[0].target == "subgoal" for t in routed)
        assert _episode(flat, oracle, start, goal) >= 0
        assert 3 * hjepa.predictor_calls < flat.predictor_calls
        done += 1


def test_a_near_goal_is_left_to_level_0(maze) -> None:
    stack, oracle, codebook_obs = maze
    nav = oracle.nav(LAYOUT)
    x, y = (int(v) for v in nav.free_cells()[0])
    hjepa = HJEPAAgent(stack, RuleConfigurator(planner="imagine"), 0, codebook_obs)
    assert _episode(hjepa, oracle, (x, y, 0), (x + 1, y)) == 1
    assert all(len(t.levels) == 1 for t in hjepa.trace)


def test_routes_cross_a_doubted_pair_only_where_predicted_edges_lead_nowhere_or_far_around() -> None:
    a, b, c, d = (0, 0), (1, 0), (1, 1), (0, 1)  # a square of blocks: a-b predicted, b-c doubted
    belief = {(a, b): 0.9, (b, c): -1.0, (a, d): -0.5, (d, c): 0.8}
    graph = BlockGraph(belief, doubt=8.0, calls=0, cost=0.0)
    assert graph.predicted == {(a, b), (d, c)}
    assert graph.route(a, c) == [a, d, c]  # 1 + 4 + 1 beats 1 + 9
    graph.drop(a, d)
    assert graph.route(a, c) == [a, b, c]
    graph.drop(b, c)
    assert graph.route(a, c) is None
    assert BlockGraph(belief, doubt=0.0, calls=0, cost=0.0).route(a, c) in ([a, b, c], [a, d, c])


def test_a_route_crosses_the_edges_level_1_missed_and_level_0_confirms_them(maze, monkeypatch) -> None:
    stack, oracle, codebook_obs = maze
    p, blind = stack.levels[1].block, 8
    book = RoutePlanner(stack, RuleConfigurator(planner="imagine"), codebook_obs).memory.book
    coarse = CoarseDynamics(book, p, stack.levels[1].spec.config.stride, 8, blind=blind)
    monkeypatch.setattr(stack.levels[1], "encode_map", coarse.encode_map)
    monkeypatch.setattr(stack.levels[1], "predict_map", coarse.predict_map)
    graph = oracle.graph(LAYOUT)
    west = [c for c in graph.cells if c[0] // p < blind - 1]
    east = [c for c in graph.cells if c[0] // p > blind + 2]
    start, goal = (*(int(v) for v in west[0]), 0), tuple(int(v) for v in east[-1])
    hjepa = HJEPAAgent(stack, RuleConfigurator(planner="imagine"), 0, codebook_obs)
    assert _episode(hjepa, oracle, start, goal, slack=1.5) >= 0
    assert any(len(t.levels) == 2 for t in hjepa.trace)  # level 1 routed, through a pair it doubted


def test_true_block_edges_join_blocks_through_free_neighbours() -> None:
    cells = {(3, 0), (4, 0), (0, 0)}  # (3, 0) | (4, 0) cross from block (0, 0) to (1, 0)
    assert true_block_edges(cells, 4) == {((0, 0), (1, 0)), ((1, 0), (0, 0))}
    assert true_block_edges({(0, 0), (0, 1)}, 4) == set()


def test_block_edge_figures_are_exact_under_the_env_s_own_dynamics(maze) -> None:
    stack, _, codebook_obs = maze
    figures = block_edge_figures(stack, codebook_obs, ENV, [LAYOUT])
    assert figures.layouts == 1 and figures.true_edges > 100
    assert figures.precision == 1.0 and figures.recall == 1.0
