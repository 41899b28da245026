"""The latent-graph planner: memory, edges from a model, shortest paths, clean-up from experience,
and the hierarchy planning with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hjepa.agents import HJEPAAgent
from hjepa.envs.oracle import LayoutOracle, agent_pose, goal_observation
from hjepa.errors import ConfigError, DatasetError
from hjepa.planning.configurator import RuleConfigurator
from hjepa.planning.graph import NO_EDGE, build_graph, distances_to, distinct_observations, path_actions
from hjepa.planning.memory import PlanningMemory


def _line(n: int = 6, dim: int = 6) -> tuple[torch.Tensor, callable]:
    """A line of n one-hot states; action 0 left, 1 right (clamped), 2 leaves the line."""
    nodes = torch.eye(n, dim)

    def step(s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        i = s.argmax(1)
        j = torch.where(a == 0, (i - 1).clamp(min=0), (i + 1).clamp(max=n - 1))
        out = torch.nn.functional.one_hot(j, dim).float() + 0.05  # a slightly wrong model
        return torch.where((a == 2)[:, None], torch.full_like(out, 10.0), out)

    return nodes, step


def test_distinct_observations_dedups_caps_and_rejects_empty() -> None:
    obs = np.array([[1, 2], [3, 4], [1, 2], [5, 6], [3, 4]], dtype=np.uint8)
    assert distinct_observations(obs, 10).tolist() == [[1, 2], [3, 4], [5, 6]]
    assert len(distinct_observations(obs, 2)) == 2
    with pytest.raises(DatasetError):
        distinct_observations(obs[:0], 10)


def test_build_graph_snaps_predictions_and_drops_self_loops_and_strays() -> None:
    nodes, step = _line()
    g = build_graph(nodes, step, torch.arange(3), edge_cost=4)
    assert g.succ[:, 0].tolist() == [NO_EDGE, 0, 1, 2, 3, 4]  # left; node 0 stays put: no edge
    assert g.succ[:, 1].tolist() == [1, 2, 3, 4, 5, NO_EDGE]
    assert (g.succ[:, 2] == NO_EDGE).all()  # predictions far from every node are no edge
    assert g.calls == 18 and g.edge_cost == 4


def test_a_move_torn_between_staying_and_moving_keeps_its_edge() -> None:
    """Nodes at 0, 1, 2, 3 on a line; "right" from node 1 predicted 0.47 along (nearly as near
    node 2 as node 1: the edge is kept), from node 0 0.4 along (1.5x as far from node 1: no
    edge) and 0.1 along from node 2 (clearly blocked: no edge)."""
    nodes = torch.tensor([[0.0], [1.0], [2.0], [3.0]])

    def step(s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        shift = torch.where(s[:, 0] == 1.0, 0.47, torch.where(s[:, 0] == 0.0, 0.4, 0.1))
        return s + torch.where(a == 1, shift, torch.zeros_like(shift))[:, None]

    g = build_graph(nodes, step, torch.tensor([0, 1]), 1, radius_scale=3.0)
    assert g.succ[1, 1] == 2  # torn: 0.47 from node 1, 0.53 from node 2
    assert g.succ[2, 1] == NO_EDGE and g.succ[0, 1] == NO_EDGE  # 0.1 from their own node: blocked
    assert (g.succ[:, 0] == NO_EDGE).all()  # action 0 stays: self-loops dropped


def test_wide_states_compare_through_a_projection() -> None:
    nodes, step = _line(8, dim=600)
    g = build_graph(nodes * 5, lambda s, a: step(s / 5, a) * 5, torch.arange(2), edge_cost=1)
    assert g.proj is not None and g.proj.shape == (600, 256)
    assert g.succ[:, 1].tolist() == [1, 2, 3, 4, 5, 6, 7, NO_EDGE]


def test_distances_and_paths_on_a_hand_made_graph() -> None:
    succ = np.array([[1, 2], [3, NO_EDGE], [3, NO_EDGE], [NO_EDGE, NO_EDGE], [NO_EDGE, NO_EDGE]])
    dist = distances_to(succ, 3)
    assert dist.tolist() == [2, 1, 1, 0, np.inf]
    assert path_actions(succ, dist, 0, 5) == ([0, 0], [1, 3])
    assert path_actions(succ, dist, 0, 1) == ([0], [1])
    assert path_actions(succ, dist, 3, 5) == ([], []) and path_actions(succ, dist, 4, 5) == ([], [])


def test_observe_replaces_contradicted_edges() -> None:
    nodes, step = _line()
    g = build_graph(nodes, step, torch.arange(2), edge_cost=1)
    assert g.observe(2, 1, 2) and g.succ[2, 1] == NO_EDGE  # blocked: stayed put
    assert g.observe(3, 1, 5) and g.succ[3, 1] == 5
    assert not g.observe(3, 1, 5)
    assert g.succ[5, 1] == NO_EDGE and g.observe(5, 1, 0) and g.succ[5, 1] == 0  # a missing edge is added


class _LineStack(torch.nn.Module):
    """Two levels that both read states as they are and step along :func:`_line`."""

    def __init__(self, step: callable) -> None:
        super().__init__()
        self.taus, self.predict = [1, 2], step
        self.levels = [self, self]

    def encode(self, obs: torch.Tensor) -> list[torch.Tensor]:
        return [obs, obs]


def test_above_level_0_a_dead_end_state_plans_from_the_nearest_node_with_a_path() -> None:
    nodes, line_step = _line(6, dim=8)
    dead_end = torch.nn.functional.one_hot(torch.tensor([7]), 8).float()

    def step(s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:  # every move from the dead end leaves the memory
        return torch.where((s.argmax(1) == 7)[:, None], torch.full_like(s, 10.0), line_step(s, a))

    memory = PlanningMemory(_LineStack(step), torch.cat([nodes, dead_end]))
    state = 0.6 * dead_end[0] + 0.4 * nodes[4]  # nearest the dead end; of the nodes with a path, node 4
    assert memory.nearest(1, state) == 6
    plan = memory.plan(1, torch.arange(3), state, target=0, horizon=10)
    assert plan.actions.tolist() == [0, 0, 0, 0] and plan.cost == 4 * 2
    assert len(memory.plan(0, torch.arange(3), state, target=0, horizon=10).actions) == 0  # level 0 keeps its node


def test_loose_edges_fill_gaps_only_when_the_graph_has_no_path() -> None:
    """Nodes 0..3 on a line (1-d states), "right" (action 1) steps one node, except from node 1,
    whose step is predicted 0.4 along (the next node 1.5x as far: loose, not torn); "left"
    (action 0) steps back everywhere."""
    nodes = torch.tensor([[0.0], [1.0], [2.0], [3.0]])

    def step(s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        right = torch.where(s[:, 0] == 1.0, 0.4, 1.0)
        return (s[:, 0] + torch.where(a == 1, right, -torch.ones_like(right))).clamp(0, 3)[:, None]

    memory = PlanningMemory(_LineStack(step), nodes)
    g, _ = memory.graph(0, torch.tensor([0, 1]))
    assert g.succ[1, 1] == NO_EDGE and g.loose[1, 1] == 2 and (g.loose >= 0).sum() == 1
    plan = memory.plan(0, torch.tensor([0, 1]), nodes[0], target=3, horizon=10)
    assert plan.actions.tolist() == [1, 1, 1]  # only through the loose edge
    assert memory.plan(0, torch.tensor([0, 1]), nodes[3], target=0, horizon=10).actions.tolist() == [0, 0, 0]
    memory.took(nodes[1], 1)
    memory.observe(nodes[1])  # the env blocked it: the loose edge is gone, and so is the plan
    assert g.loose[1, 1] == NO_EDGE
    assert len(memory.plan(0, torch.tensor([0, 1]), nodes[0], target=3, horizon=10).actions) == 0


class _PoseStack(torch.nn.Module):
    """A perfect one-level 'model' of a MiniGrid layout: one-hot poses, the true dynamics."""

    def __init__(self, env_id: str) -> None:
        super().__init__()
        self.nav = LayoutOracle(env_id).nav(0)
        cells = self.nav.free_cells()
        self.poses = [(int(x), int(y), d) for x, y in cells for d in range(4)]
        self.index = {p: i for i, p in enumerate(self.poses)}
        self.taus = [1]
        self.levels = [self]

    def encode(self, obs: torch.Tensor) -> list[torch.Tensor]:
        idx = torch.tensor([self.index[agent_pose(o.numpy())] for o in obs])
        return [torch.nn.functional.one_hot(idx, len(self.poses)).float()]

    def predict(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        out = []
        for i, act in zip(s.argmax(1).tolist(), a.tolist()):
            self.nav.set_pose(*self.poses[i])
            self.nav.step(act)
            out.append(self.index[self.nav.pose])
        return torch.nn.functional.one_hot(torch.tensor(out), len(self.poses)).float()


def test_with_a_perfect_model_graph_distances_are_the_oracles() -> None:
    stack = _PoseStack("MiniGrid-FourRooms-v0")
    obs = []
    for p in stack.poses:
        stack.nav.set_pose(*p)
        obs.append(stack.nav.observation())
    memory = PlanningMemory(stack, torch.from_numpy(np.stack(obs)))
    g, calls = memory.graph(0, torch.arange(3))
    assert calls == 3 * len(stack.poses)
    oracle = LayoutOracle("MiniGrid-FourRooms-v0").graph(0)
    goal = stack.poses[len(stack.poses) // 3][:2]
    per_dir = np.stack([distances_to(g.succ, stack.index[(*goal, d)]) for d in range(4)]).min(0)
    truth = oracle.distances_to(goal)
    assert all(per_dir[stack.index[p]] == d for p, d in truth.items())


def test_hjepa_agent_plans_on_the_graph(trained_stack, tiny_data_set) -> None:
    stack, data = trained_stack, tiny_data_set
    memory = torch.from_numpy(distinct_observations(data.obs, 512))
    oracle = LayoutOracle("MiniGrid-Empty-8x8-v0")
    nav = oracle.nav(0)
    nav.set_pose(1, 1, 0)
    # use_critic=False: the configurator alone would activate every level
    agent = HJEPAAgent(stack, RuleConfigurator(planner="graph", use_critic=False), seed=0, memory=memory)
    goal_obs = goal_observation(nav, (5, 5))
    agent.reset(nav.observation(), goal_obs)
    actions = [agent.act(nav.observation())]
    memory = agent.planner.memory
    with torch.no_grad():
        here, goal = (stack.encode(torch.from_numpy(o)[None])[0][0] for o in (nav.observation(), goal_obs))
    alone = memory.reaches(0, here, memory.nearest(0, goal))  # before the agent's clean-up changes the graph
    assert [s.level for s in agent.trace[0].specs] == ([0] if alone else list(range(stack.num_levels)))
    actions += [agent.act(nav.observation()) for _ in range(2)]  # the env does not move: edges get removed
    assert all(0 <= a < stack.action_spec.n for a in actions)
    assert agent.trace[0].calls >= len(memory) * stack.action_spec.n  # the graph was built
    assert all(step.levels[0].calls < len(memory) for step in agent.trace[1:])  # ... once
    with pytest.raises(ConfigError, match="memory"):
        bare = HJEPAAgent(stack, RuleConfigurator(planner="graph"), seed=0)
        bare.reset(nav.observation(), goal_observation(nav, (5, 5)))
        bare.act(nav.observation())
    with pytest.raises(ConfigError):
        RuleConfigurator(planner="graph", graph_radius=0.0)


@pytest.fixture(scope="module")
def trained_stack(tiny_data_set, debug_cfg):
    from hjepa.critic import train_critics
    from hjepa.stack import HJEPA

    torch.manual_seed(0)
    stack = HJEPA.from_config(debug_cfg, tiny_data_set.obs_spec, tiny_data_set.action_spec)
    train_critics(stack, tiny_data_set, debug_cfg.critic, seed=0, progress=False)
    return stack.eval()


@pytest.mark.slow
def test_tiny_bench_with_the_graph_planner_reads_the_memory_from_the_dataset(tmp_path) -> None:
    import dataclasses
    import json

    from rich.console import Console

    from hjepa.data.storage import OfflineDataset
    from hjepa.experiments import presets
    from hjepa.experiments.bench import SUITES, bench
    from hjepa.planning.memory import MAX_NODES
    from hjepa.metrics import validate_results

    suite = SUITES["debug"]
    eval_cfg = dataclasses.replace(suite.eval_config(0), configurator=RuleConfigurator(planner="graph"))
    doc = bench(suite, presets.debug(), tmp_path, quick=True, eval_cfg=eval_cfg, console=Console(quiet=True), per_bin=1)
    validate_results(json.loads((tmp_path / "results.json").read_text()))
    episodes = json.loads((tmp_path / "episodes.json").read_text())
    hjepa_calls = sum(e["predictor_calls"] for e in episodes if e["agent"] == "hjepa")
    nodes = len(distinct_observations(OfflineDataset.open(tmp_path / "data").obs, MAX_NODES))
    assert hjepa_calls >= 3 * nodes  # level 0's graph was built over the dataset's distinct observations
    assert doc["agents"]["oracle"]["success"] == 1.0


def test_hjepa_agent_with_a_field_plans_level_0_alone_costed_by_level_1s_graph(trained_stack, tiny_data_set) -> None:
    from hjepa.planning.configurator import PlanSpec

    import copy

    stack, data = copy.deepcopy(trained_stack), tiny_data_set
    torch.manual_seed(0)
    for p in stack.levels[1].predictor.parameters():  # the untrained predictor copies its input: no edges
        p.data += 0.1 * torch.randn_like(p)
    memory = torch.from_numpy(distinct_observations(data.obs, 512))
    nav = LayoutOracle("MiniGrid-Empty-8x8-v0").nav(0)
    nav.set_pose(1, 1, 0)
    agent = HJEPAAgent(stack, RuleConfigurator(upper="field", flat_horizon=2, graph_radius=50.0), seed=0,
                       memory=memory)  # a wide radius: the perturbed predictions still land on nodes
    agent.reset(nav.observation(), goal_observation(nav, (5, 5)))
    actions = [agent.act(nav.observation()) for _ in range(2)]
    assert all(0 <= a < stack.action_spec.n for a in actions)
    (spec,) = agent.trace[0].specs
    assert spec.level == 0 and spec.field_level == 1 and spec.horizon == 2
    assert np.isfinite(agent.trace[0].levels[0].distance)  # the field's cost of the current state
    built = len(agent.planner.memory) * len(agent.planner.library[1])
    assert agent.trace[0].calls >= built > agent.trace[1].calls  # level 1's graph, built once
    agent = HJEPAAgent(stack, RuleConfigurator(upper="field"), seed=0)
    agent.reset(nav.observation(), goal_observation(nav, (5, 5)))
    with pytest.raises(ConfigError, match="memory"):
        agent.act(nav.observation())
    with pytest.raises(ConfigError, match="field_level"):
        RuleConfigurator(upper="field", field_level=3).configure(stack, [], [])
    with pytest.raises(ConfigError, match="field"):
        PlanSpec(level=1, horizon=2, field_level=2)


def test_the_imagine_planners_codebook_reads_only_the_first_observations() -> None:
    from hjepa.planning.memory import CODEBOOK_OBS, memory_observations

    obs = np.zeros((CODEBOOK_OBS + 5, 2), dtype=np.uint8)
    obs[-1] = 7  # distinct, but past what the codebook reads
    assert memory_observations(obs, "imagine", "plan").tolist() == [[0, 0]]
    assert memory_observations(obs, "graph", "plan").tolist() == [[0, 0], [7, 7]]
    assert memory_observations(obs, "beam", "plan") is None
    assert memory_observations(obs, "beam", "field") is not None
