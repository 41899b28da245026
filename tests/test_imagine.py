"""The "imagine" planner: a gridmap level 0 imagines the graph of a layout it holds no memory
of, snapping every predicted cell onto the codebook. With the true dynamics in place of the
predictor, the imagined graph is the layout's pose graph and the agent walks its shortest paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hjepa.agents import FlatAgent, HJEPAAgent
from hjepa.config import ExperimentConfig, LevelConfig
from hjepa.envs.oracle import LayoutOracle, goal_observation
from hjepa.errors import ConfigError
from hjepa.planning.configurator import RuleConfigurator
from hjepa.planning.graph import NO_EDGE, distances_to
from hjepa.planning.goal_cell import GoalCell, agent_mask, goal_cell_of
from hjepa.planning.imagine import SparseNodes, cell_codebook, imagine
from hjepa.planning.imagined_memory import ImaginedMemory
from true_dynamics import FarFlips, GridDynamics, codebook_observations
from hjepa.specs import ActionSpec, ObsSpec
from hjepa.stack import HJEPA

ENV, LAYOUT = "MiniGrid-FourRooms-v0", 100_003  # one of fourrooms-random's held-out layouts
ACTIONS = ActionSpec("discrete", n=3, env_actions=(0, 1, 2))


def _gridmap_stack(shape: tuple[int, int]) -> HJEPA:
    torch.manual_seed(0)
    cfg = ExperimentConfig(levels=(LevelConfig(kind="gridmap", args={"channels": 4, "conv": 8}),))
    return HJEPA.from_config(cfg, ObsSpec("grid", (*shape, 3), "uint8"), ACTIONS).eval()


@pytest.fixture(scope="module")
def world():
    oracle = LayoutOracle(ENV)
    nav = oracle.nav(LAYOUT)
    stack = _gridmap_stack(nav.observation().shape[:2])
    codebook_obs = codebook_observations(nav)
    book = cell_codebook(stack.levels[0], codebook_obs)
    stack.levels[0].predict_map = GridDynamics(book)  # the layout's own dynamics
    return stack, oracle, codebook_obs, book


def _codes(book, z: torch.Tensor) -> np.ndarray:
    """A state's map of code indices ``"w h"``."""
    _, w, h = book.shape
    return book.snap(z)[1][0].numpy().reshape(w, h)


def test_snapping_an_encoded_map_keeps_it_and_a_noisy_one_returns_to_it(world) -> None:
    stack, oracle, codebook_obs, book = world
    z = stack.encode(codebook_obs)[0]
    snapped, keys = book.snap(z)
    assert torch.allclose(snapped, z, atol=1e-5)
    assert len(book.codes) == len(torch.unique(keys))  # every code of the data appears in its maps
    # each cell moved by at most 0.3 of the smallest gap between code embeddings
    u = 0.3 * float(torch.pdist(book.emb).min()) / book.shape[0] ** 0.5
    noise = u * (2 * torch.rand(z.shape, generator=torch.Generator().manual_seed(0)) - 1)
    noisy, keys2 = book.snap(z + noise)
    assert torch.equal(keys, keys2) and torch.allclose(noisy, z, atol=1e-5)


def test_with_the_true_dynamics_imagination_finds_every_pose_and_the_oracles_distances(world) -> None:
    stack, oracle, codebook_obs, book = world
    level = stack.levels[0]
    found = imagine(stack.encode(codebook_obs[:1])[0][0], level.predict_map, level.action_input(torch.arange(3)), book)
    graph = oracle.graph(LAYOUT)
    assert found.complete and len(found.index) == 4 * len(graph.cells)
    assert found.calls == 3 * len(found.index)
    nav = oracle.nav(LAYOUT)
    goal = tuple(int(v) for v in graph.cells[len(graph.cells) // 2])
    node_of = {}
    for x, y in graph.cells:
        for d in range(4):
            nav.set_pose(int(x), int(y), d)
            z = stack.encode(torch.from_numpy(nav.observation().copy())[None])[0]
            node_of[(int(x), int(y), d)] = found.index[found.graph.nodes.key_of(_codes(book, z))]
    per_dir = np.stack([distances_to(found.graph.succ, node_of[(*goal, d)]) for d in range(4)]).min(0)
    truth = graph.distances_to(goal)
    assert all(per_dir[node_of[p]] == dist for p, dist in truth.items())


def test_imagination_toward_a_goal_ends_with_the_goals_depth(world) -> None:
    stack, oracle, codebook_obs, book = world
    level, nav = stack.levels[0], oracle.nav(LAYOUT)
    x, y = (int(v) for v in nav.free_cells()[0])
    nav.set_pose(x + 1, y, 0)  # the start faces east: one step forward reaches the goal
    goal = _codes(book, stack.encode(torch.from_numpy(nav.observation().copy())[None])[0])
    start = stack.encode(codebook_obs[:1])[0][0]
    found = imagine(start, level.predict_map, level.action_input(torch.arange(3)), book, goal=goal)
    key = found.graph.nodes.key_of(goal)
    assert key in found.index and not found.complete
    assert len(found.index) == 4  # the start and its three successors: depth 1 holds the goal
    assert distances_to(found.graph.succ, found.index[key])[0] == 1


def test_a_goal_is_its_cell_reached_facing_any_way(world) -> None:
    """The goal observation faces north; the start, one cell west facing east, reaches the cell
    in one forward: imagination ends at depth 1 and files that state under the goal's key."""
    stack, oracle, codebook_obs, book = world
    level, nav = stack.levels[0], oracle.nav(LAYOUT)
    x, y = (int(v) for v in nav.free_cells()[0])
    encode = lambda: stack.encode(torch.from_numpy(nav.observation().copy())[None])[0]  # noqa: E731
    nav.set_pose(x + 1, y, 3)
    goal = _codes(book, encode())
    nav.set_pose(x, y, 0)
    start = encode()[0]
    cell = goal_cell_of(goal, agent_mask(level, book))
    assert cell is not None and cell.cell == (x + 1) * goal.shape[1] + y
    found = imagine(start, level.predict_map, level.action_input(torch.arange(3)), book, goal=goal, goal_cell=cell)
    target = found.index[found.graph.nodes.key_of(goal)]
    assert distances_to(found.graph.succ, target)[0] == 1 and len(found.index) - 1 == 4  # 3 nodes and the alias
    assert found.graph.nodes.key_of(goal) != tuple(sorted(found.graph.nodes.diffs[target].items()))  # not facing north
    exact = imagine(start, level.predict_map, level.action_input(torch.arange(3)), book, goal=goal)
    assert distances_to(exact.graph.succ, exact.index[exact.graph.nodes.key_of(goal)])[0] == 2  # forward, left


def test_the_goal_cell_ignores_every_other_cell() -> None:
    """Any door or key state: only the code on the goal cell decides."""
    is_agent = np.array([False, False, True, True])  # codes 2 and 3 draw the agent
    nodes = SparseNodes(np.zeros((3, 3), dtype=np.uint8), book=None)
    nodes.diffs += [{4: 2, 0: 1, 8: 1}, {4: 1, 5: 3}, {4: 3}]  # agent on cell 4 (other cells changed); off it; on it
    goal = GoalCell(4, is_agent)
    assert [goal.reached_by(nodes, i) for i in range(4)] == [False, True, False, True]
    assert goal_cell_of(np.array([[0, 3], [1, 0]]), is_agent).cell == 1
    assert goal_cell_of(np.array([[2, 3], [1, 0]]), is_agent) is None and goal_cell_of(np.zeros((2, 2), int), None) is None


def test_a_capped_imagination_says_so_and_keeps_the_cap(world) -> None:
    stack, _, codebook_obs, book = world
    level = stack.levels[0]
    found = imagine(stack.encode(codebook_obs[:1])[0][0], level.predict_map, level.action_input(torch.arange(3)), book, 10)
    assert not found.complete and len(found.graph.nodes) == 10
    assert ((found.graph.succ == NO_EDGE) | (found.graph.succ < 10)).all()
    with pytest.raises(ConfigError, match="max_nodes"):
        imagine(found.graph.nodes[0], level.predict_map, level.action_input(torch.arange(3)), book, 0)


@pytest.mark.parametrize("agent_kind", ["hjepa", "flat"])
def test_the_agent_reaches_goals_of_an_unseen_layout_by_imagination(world, agent_kind: str) -> None:
    stack, oracle, codebook_obs, _ = world
    conf = RuleConfigurator(planner="imagine")
    agent = (HJEPAAgent(stack, conf, 0, codebook_obs) if agent_kind == "hjepa"
             else FlatAgent(stack, 100.0, planner="imagine", memory=codebook_obs))  # fmt: skip
    graph, nav = oracle.graph(LAYOUT), oracle.nav(LAYOUT)
    rng = np.random.default_rng(0)
    for _ in range(3):
        i, j = rng.choice(len(graph.cells), 2, replace=False)
        start, goal = (*(int(v) for v in graph.cells[i]), int(rng.integers(4))), tuple(int(v) for v in graph.cells[j])
        nav.set_pose(*start)
        agent.reset(nav.observation(), goal_observation(nav, goal))
        steps, limit = 0, graph.distance(start, goal)  # the goal is its cell: any heading, no turn more
        while nav.pose[:2] != goal and steps < limit:
            nav.step(ACTIONS.env_actions[agent.act(nav.observation().copy())])
            steps += 1
        assert nav.pose[:2] == goal
    first, rest = agent.trace[0], agent.trace[1:]
    assert first.calls > 0 and all(t.calls == 0 for t in rest)  # imagined once an episode


def test_a_state_the_graph_does_not_hold_starts_a_new_imagination(world) -> None:
    stack, oracle, codebook_obs, _ = world
    memory = ImaginedMemory(stack, codebook_obs, max_nodes=20)
    z = stack.encode(codebook_obs)[0]
    memory.observe(z[0])
    assert memory.imaginations == 1 and memory.covers(z[0])
    far = oracle.nav(LAYOUT)
    x, y = (int(v) for v in oracle.graph(LAYOUT).cells[-1])
    far.set_pose(x, y, 0)
    elsewhere = stack.encode(torch.from_numpy(far.observation().copy())[None])[0][0]
    assert not memory.covers(elsewhere)
    memory.observe(elsewhere)
    assert memory.imaginations == 2 and memory.covers(elsewhere)


def test_imagine_refuses_what_it_cannot_plan(debug_stack, tiny_data_set) -> None:
    obs = torch.from_numpy(np.array(tiny_data_set.obs[:4]))
    with pytest.raises(ConfigError, match="gridmap"):  # the debug stack's level 0 is 'grid'
        HJEPAAgent(debug_stack, RuleConfigurator(planner="imagine"), 0, obs)
    with pytest.raises(ConfigError, match="codebook"):
        HJEPAAgent(debug_stack, RuleConfigurator(planner="imagine"), 0)
    with pytest.raises(ConfigError, match="field"):
        RuleConfigurator(planner="imagine", upper="field")


def test_levels_above_an_imagining_level_0_search_with_beam(debug_stack) -> None:
    states = [torch.zeros(level.dim) for level in debug_stack.levels]
    specs = RuleConfigurator(planner="imagine", use_critic=False).configure(debug_stack, states, states)
    assert [s.planner for s in specs] == ["imagine"] + ["beam"] * (debug_stack.num_levels - 1)


@pytest.fixture(scope="module")
def debug_stack(tiny_data_set, debug_cfg):
    """The debug preset's stack (a 'grid' level 0), untrained and without critics."""
    torch.manual_seed(0)
    return HJEPA.from_config(debug_cfg, tiny_data_set.obs_spec, tiny_data_set.action_spec).eval()


def test_a_stack_without_critics_plans_on_latent_distance_not_on_a_zero_cost(debug_stack) -> None:
    """debug_stack has no critics: a critic weight would cost every plan 0."""
    states = [torch.zeros(level.dim) for level in debug_stack.levels]
    specs = RuleConfigurator(planner="beam").configure(debug_stack, states, states)
    assert all(s.w_critic == 0.0 and s.w_intrinsic == 1.0 for s in specs)


def test_local_crops_imagine_the_whole_maps_graph_at_a_fraction_of_its_cost(world) -> None:
    stack, _, codebook_obs, book = world
    level = stack.levels[0]
    start, actions = stack.encode(codebook_obs[:1])[0][0], level.action_input(torch.arange(3))
    whole = imagine(start, level.predict_map, actions, book, window=0)
    local = imagine(start, level.predict_map, actions, book, window=9)
    assert whole.index == local.index and np.array_equal(whole.graph.succ, local.graph.succ)
    assert whole.cost == whole.calls  # a whole-map prediction is the unit
    w, h = codebook_obs.shape[1:3]
    assert local.cost == pytest.approx(3 + (local.calls - 3) * 81 / (w * h))  # the root on the whole map


def test_changes_out_of_the_agents_reach_are_not_new_states(world) -> None:
    """Far flips on every step: with the agent's codes, imagination still finds the layout's
    poses and nothing else; without them, every flip files a new state."""
    stack, oracle, codebook_obs, book = world
    level = stack.levels[0]
    is_agent = agent_mask(level, book)
    step = FarFlips(GridDynamics(book), is_agent)
    start, actions = stack.encode(codebook_obs[:1])[0][0], level.action_input(torch.arange(3))
    poses = 4 * len(oracle.graph(LAYOUT).cells)
    kept = imagine(start, step, actions, book, max_nodes=2 * poses, is_agent=is_agent)
    assert kept.complete and len(kept.index) == poses
    assert all(sum(is_agent[c] for c in d.values()) == 1 for d in kept.graph.nodes.diffs[1:])
    flipped = imagine(start, step, actions, book, max_nodes=2 * poses)
    assert not flipped.complete and len(flipped.index) == 2 * poses
    with pytest.raises(ConfigError, match="reach"):
        imagine(start, step, actions, book, is_agent=is_agent, reach=-1)
