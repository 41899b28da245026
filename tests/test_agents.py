"""Agents on a tiny trained stack: interface, determinism, matched budgets, bad input, and a
tiny end-to-end bench that evaluates all four agents and writes a valid results.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hjepa.agents import HJEPAAgent, OracleAgent, RandomAgent, make_agent, matched_flat_width
from hjepa.agents.planning import beam_calls
from hjepa.critic import train_critics
from hjepa.envs.oracle import LayoutOracle, agent_pose, goal_observation
from hjepa.errors import ConfigError, SpecMismatchError, UnknownNameError
from hjepa.experiments import presets
from hjepa.experiments.bench import SUITES, bench
from hjepa.experiments.evaluate import EvalConfig, evaluate_agents
from hjepa.metrics import validate_results
from hjepa.envs.oracle import make_tasks
from hjepa.stack import HJEPA


@pytest.fixture(scope="module")
def trained(tiny_data_module):
    cfg, data = tiny_data_module
    torch.manual_seed(0)
    stack = HJEPA.from_config(cfg, data.obs_spec, data.action_spec)
    train_critics(stack, data, cfg.critic, seed=0, progress=False)
    return cfg, stack.eval()


@pytest.fixture(scope="module")
def tiny_data_module(tmp_path_factory):
    from hjepa.data.collect import collect
    from hjepa.data.storage import OfflineDataset

    cfg = presets.debug()
    path = tmp_path_factory.mktemp("agents") / "data"
    collect(cfg.data, path, progress=False)
    return cfg, OfflineDataset.open(path)


def _episode_start(env_id="MiniGrid-Empty-8x8-v0"):
    oracle = LayoutOracle(env_id)
    nav = oracle.nav(0)
    nav.set_pose(1, 1, 0)
    return oracle, nav, nav.observation(), goal_observation(nav, (4, 4))


def test_agents_act_with_valid_actions_and_trace(trained):
    cfg, stack = trained
    _, nav, obs, goal = _episode_start()
    agent = HJEPAAgent(stack, seed=0)
    agent.reset(obs, goal)
    actions = [agent.act(obs) for _ in range(3)]
    assert all(0 <= a < stack.action_spec.n for a in actions)
    assert len(agent.trace) == 3 and agent.predictor_calls > 0
    levels = [lt.level for lt in agent.trace[0].levels]
    assert levels == [spec.level for spec in agent.trace[0].specs] and levels[0] == 0


def test_hjepa_agent_is_deterministic_under_a_seed(trained):
    cfg, stack = trained
    oracle, *_ = _episode_start()
    tasks = make_tasks("MiniGrid-Empty-8x8-v0", [0], 2, SUITES["debug"].bins, seed=3)
    ecfg = EvalConfig(agents=("hjepa", "flat", "random"), max_steps=12)
    first = evaluate_agents(stack, "MiniGrid-Empty-8x8-v0", tasks, list(SUITES["debug"].bins), ecfg, progress=False)
    second = evaluate_agents(stack, "MiniGrid-Empty-8x8-v0", tasks, list(SUITES["debug"].bins), ecfg, progress=False)
    strip = lambda recs: [(r.agent, r.success, r.steps, r.predictor_calls) for r in recs]  # noqa: E731
    assert strip(first[1]) == strip(second[1])


def test_flat_budget_matches_hjepa(trained):
    cfg, stack = trained
    tasks = make_tasks("MiniGrid-Empty-8x8-v0", [0], 2, SUITES["debug"].bins, seed=4)
    ecfg = EvalConfig(agents=("hjepa", "flat"), max_steps=10, flat_horizon=6)
    summary, _ = evaluate_agents(stack, "MiniGrid-Empty-8x8-v0", tasks, list(SUITES["debug"].bins), ecfg, progress=False)
    budget = summary["hjepa"]["predictor_calls_per_step"]
    flat = summary["flat"]["predictor_calls_per_step"]
    width = matched_flat_width(budget, 3, 6)
    assert flat == beam_calls(3, 6, width)  # the flat agent spends exactly its matched budget each step
    assert flat <= budget < beam_calls(3, 6, width + 1)


def test_beam_calls_counts_expansions():
    assert beam_calls(3, 2, 100) == 3 + 9 + 2
    assert beam_calls(3, 3, 2) == 3 + 6 + 6 + 3


def test_oracle_agent_follows_shortest_path():
    oracle, nav, obs, goal = _episode_start()
    agent = OracleAgent(oracle.graph(0), presets_action_spec())
    agent.reset(obs, goal)
    steps = 0
    while nav.pose[:2] != (4, 4):
        nav.step((0, 1, 2)[agent.act(nav.observation())])
        steps += 1
    assert steps == oracle.graph(0).distance((1, 1, 0), (4, 4))
    assert agent_pose(goal)[:2] == (4, 4)


def presets_action_spec():
    from hjepa.envs.minigrid_nav import action_spec

    return action_spec(("left", "right", "forward"))


def test_random_agent_is_seeded():
    a, b = RandomAgent(presets_action_spec(), seed=7), RandomAgent(presets_action_spec(), seed=7)
    obs = np.zeros((8, 8, 3), np.uint8)
    assert [a.act(obs) for _ in range(20)] == [b.act(obs) for _ in range(20)]


def test_bad_inputs_are_clear_errors(trained):
    cfg, stack = trained
    _, _, obs, goal = _episode_start()
    agent = HJEPAAgent(stack)
    with pytest.raises(SpecMismatchError, match="goal observation has shape"):
        agent.reset(obs, goal[:-1])
    with pytest.raises(UnknownNameError, match="Unknown agent"):
        make_agent("greedy")
    oracle = LayoutOracle("MiniGrid-Empty-8x8-v0")
    with pytest.raises(ValueError, match="wall"):
        goal_observation(oracle.nav(0), (0, 0))
    with pytest.raises(ConfigError, match="hjepa"):
        evaluate_agents(stack, "MiniGrid-Empty-8x8-v0", [], ["short"], EvalConfig(agents=("flat",)), progress=False)


@pytest.mark.slow
def test_tiny_bench_writes_valid_results(tmp_path):
    from rich.console import Console

    suite = SUITES["debug"]
    doc = bench(suite, presets.debug(), tmp_path, quick=True, console=Console(quiet=True), per_bin=1)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    validate_results(on_disk)
    assert on_disk == json.loads(json.dumps(doc))
    assert list(on_disk["agents"]) == ["hjepa", "flat", "random", "oracle"]
    assert on_disk["agents"]["oracle"]["success"] == 1.0 and on_disk["agents"]["oracle"]["spl"] == 1.0
    assert on_disk["agents"]["hjepa"]["predictor_calls_per_step"] > 0
    assert len(on_disk["levels_report"]) == 3
    assert (on_disk["device"], on_disk["precision"]) == ("cpu", "32-true")  # the training run's, from the checkpoint
    for name in ("report.md", "plots/success_by_bin.png", "plots/pred_error_by_horizon.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_upper_cost_mode_plans_level_0_alone_costed_in_the_top_level_space(trained):
    from hjepa.planning.configurator import PlanSpec, RuleConfigurator

    cfg, stack = trained
    _, nav, obs, goal = _episode_start()
    agent = HJEPAAgent(stack, RuleConfigurator(upper="cost", flat_horizon=3), seed=0)
    agent.reset(obs, goal)
    assert 0 <= agent.act(obs) < stack.action_spec.n
    (spec,) = agent.trace[0].specs
    assert spec.level == 0 and spec.cost_level == stack.num_levels - 1 and spec.horizon == 3
    assert [lt.level for lt in agent.trace[0].levels] == [0]
    with pytest.raises(ConfigError, match="upper"):
        RuleConfigurator(upper="both")
    with pytest.raises(ConfigError, match="cost_level"):
        PlanSpec(level=1, horizon=2, cost_level=0)


def test_cost_level_reads_level_0_rollouts_through_the_encoders_above(trained):
    """With cost_level=2 the beam's cost is the top critic of E_2(E_1(s)): the chosen plan's
    reported cost is that cost, and no plan is cheaper under a brute-force evaluation."""
    import itertools

    from hjepa.critic import critic_of
    from hjepa.planning.configurator import PlannerSettings, PlanSpec
    from hjepa.planning.hierarchy import HierarchicalPlanner

    cfg, stack = trained
    _, nav, obs, goal = _episode_start()

    class Fixed:
        settings = PlannerSettings()

        def configure(self, stack, states, goals):
            return [PlanSpec(level=0, horizon=2, samples=1000, w_goal=0.0, cost_level=2)]

    planner = HierarchicalPlanner(stack, Fixed(), seed=0)
    planner.reset(torch.from_numpy(goal))
    _, trace = planner.act(torch.from_numpy(obs))
    with torch.no_grad():
        s0 = stack.encode(torch.from_numpy(obs)[None])[0][0]
        g2 = stack.encode(torch.from_numpy(goal)[None])[2][0]
        level0, top = stack.levels[0], critic_of(stack.levels[2])

        def total(seq):
            s, c = s0[None], 0.0
            for a in seq:
                s = level0.predict(s, level0.action_input(torch.tensor([a])))
                c += float(top.distance(stack.levels[2].encode(stack.levels[1].encode(s)), g2))
            return c

        best = min(total(seq) for seq in itertools.product(range(stack.action_spec.n), repeat=2))
        chosen = total(trace.levels[0].plan)
    assert chosen == pytest.approx(trace.levels[0].cost, abs=1e-4)  # the planner costed in level 2's space
    assert chosen == pytest.approx(best, abs=1e-4)  # and found the cheapest plan


def test_oracle_agent_opens_the_doors_of_multiroom_and_takes_exactly_the_oracle_distance() -> None:
    from hjepa.experiments.evaluate import run_episode
    from hjepa.specs import ActionSpec

    env, env_actions = "MiniGrid-MultiRoom-N6-v0", (0, 1, 2, 5)
    oracle = LayoutOracle(env, env_actions=env_actions)
    spec = ActionSpec("discrete", n=4, env_actions=env_actions, names=("left", "right", "forward", "toggle"))
    for task in make_tasks(env, [3], 2, {"far": (30, 200)}, seed=1, oracle=oracle):
        record = run_episode(OracleAgent(oracle.graph(task.layout_seed), spec), oracle, task, 200, env_actions)
        assert record.success and record.steps == task.distance
