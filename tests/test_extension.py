"""The add-a-level tutorial's level kind (levels/recurrent.py): registered by name, added to a
stack by one config entry, trained jointly with the other levels, planned with by the
hierarchical agent, and readable by the inspection tools."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from hjepa.agents import HJEPAAgent
from hjepa.checkpoint import load_module
from hjepa.config import ExperimentConfig, LevelConfig
from hjepa.data.storage import OfflineDataset
from hjepa.envs.oracle import LayoutOracle, goal_observation
from hjepa.errors import SpecMismatchError
from hjepa.fit import fit
from hjepa.inspection import neighbour_views, prediction_errors
from hjepa.levels.recurrent import ChunkGRU, GRUPredictor, RecurrentLevel
from hjepa.planning.configurator import RuleConfigurator
from hjepa.registry import get_level_kind, level_kinds
from hjepa.report import read_metrics
from hjepa.stack import HJEPA


def with_recurrent_top(cfg: ExperimentConfig) -> ExperimentConfig:
    """The debug stack with its top level swapped for the new kind: one config entry."""
    top = LevelConfig(kind="recurrent", dim=16, stride=2, action_dim=4, hidden=32)
    train = dataclasses.replace(cfg.train, steps=80, batch_size=32, epoch_steps=40, warmup_steps=10, log_every=10,
                                num_threads=1)  # fmt: skip
    return dataclasses.replace(cfg, levels=cfg.levels[:2] + (top,), train=train)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, debug_cfg: ExperimentConfig, tiny_data: Path):
    cfg = with_recurrent_top(debug_cfg)
    return cfg, fit(cfg, tiny_data, tmp_path_factory.mktemp("recurrent"), progress=False)


def test_registered_by_name() -> None:
    assert "recurrent" in level_kinds()
    assert get_level_kind("recurrent") is RecurrentLevel and RecurrentLevel.kind == "recurrent"


def test_shapes_and_protocol(debug_cfg: ExperimentConfig, tiny_data: Path) -> None:
    data = OfflineDataset.open(tiny_data)
    stack = HJEPA.from_config(with_recurrent_top(debug_cfg), data.obs_spec, data.action_spec)
    level = stack.levels[2]
    assert isinstance(level, RecurrentLevel) and isinstance(level.predictor, GRUPredictor)
    assert isinstance(level.action_encoder, ChunkGRU)
    chunk = torch.randn(5, 2, 4)  # "b j e_below": two latent actions of level 1
    a = level.infer_action(chunk)
    assert a.shape == (5, 4) and a.abs().max() <= 1.0
    s = torch.randn(5, 16)
    assert level.predict(s, a).shape == (5, 16)
    assert level.rollout(s, torch.randn(5, 3, 4)).shape == (5, 3, 16)
    # the chunk is read in order: reversing it changes the latent action (a flattening MLP would too,
    # a mean pool would not)
    assert not torch.allclose(level.infer_action(chunk.flip(1)), a)
    with pytest.raises(SpecMismatchError, match="recurrent"):
        bad = dataclasses.replace(debug_cfg, levels=(LevelConfig(kind="recurrent", dim=16),))
        HJEPA.from_config(bad, data.obs_spec, data.action_spec)


def test_trains_jointly_with_the_other_levels(trained) -> None:
    cfg, result = trained
    metrics = read_metrics(result.metrics_csv)
    pred = [v for _, v in metrics["level2/pred_norm"]]
    first, last = np.mean(pred[:3]), np.mean(pred[-3:])
    assert last < first, f"the recurrent level's prediction error did not fall ({first:.3f} -> {last:.3f})"
    std, rank = [v for _, v in metrics["val/level2/std_mean"]], metrics["val/level2/eff_rank"][-1][1]
    assert std[-1] > std[0] and std[-1] > 0.05 and rank > 1.5  # spreading, and clear of the CollapseWarning bounds
    assert {"level2/upward", "level2/idm", "level2/pred"} <= set(metrics)
    stack = load_module(result.checkpoint).stack
    assert type(stack.levels[2]).__name__ == "RecurrentLevel" and "critic" in stack.levels[2].heads


def test_hierarchical_agent_plans_with_it(trained) -> None:
    _, result = trained
    stack = load_module(result.checkpoint).stack
    nav = LayoutOracle("MiniGrid-Empty-8x8-v0").nav(0)
    nav.set_pose(1, 1, 0)
    goal = goal_observation(nav, (6, 6))
    every_level = RuleConfigurator(use_critic=False)  # no critic gating: the recurrent top level plans
    agent = HJEPAAgent(stack, every_level, seed=0)
    agent.reset(nav.observation(), goal)
    for _ in range(5):
        a = agent.act(nav.observation())
        assert 0 <= a < stack.action_spec.n
        nav.step(stack.action_spec.env_actions[a])
    top = [next(lt for lt in step.levels if lt.level == 2) for step in agent.trace]
    assert top[0].replanned and top[0].calls > 0 and len(top[0].plan) == every_level.top_horizon
    assert all(lt.subgoal is not None and lt.subgoal.shape == (16,) for lt in top)
    with_critics = HJEPAAgent(stack, seed=0)  # the default cost module: critics at every level
    with_critics.reset(nav.observation(), goal)
    assert 0 <= with_critics.act(nav.observation()) < stack.action_spec.n


def test_inspection_reads_it(trained, tiny_data: Path) -> None:
    _, result = trained
    stack, data = load_module(result.checkpoint).stack, OfflineDataset.open(tiny_data)
    rows = prediction_errors(stack, data, levels=[2], max_horizon=2, windows=16)
    assert rows[0].level == 2 and len(rows[0].pred) >= 1 and all(np.isfinite(rows[0].pred))
    (view,) = neighbour_views(stack, data, levels=[2], examples=16, k=3)
    assert view.neighbour_obs.shape[:2] == (16, 3) and (view.rank >= 0).all()
