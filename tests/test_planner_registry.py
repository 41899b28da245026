"""Planners are found by name: the built-ins, one registered in this file (and used through the
command line), a new file in the planners/ package; unknown names get a suggestion."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import hjepa.planners
from hjepa import registry
from hjepa.errors import ConfigError, UnknownNameError
from hjepa.experiments.cli import main
from hjepa.planning.configurator import PlanSpec, RuleConfigurator
from hjepa.planning.planners import PlanResult
from hjepa.planning.search import Planner, SearchProblem, widest_within
from hjepa.registry import get_planner, planner_names, register_planner
from hjepa.specs import ActionSpec


@register_planner("shooting_test")
class ShootingPlanner(Planner):
    """Random shooting: ``samples`` uniform action sequences, the cheapest kept."""

    searches = 0

    def search(self, problem: SearchProblem) -> PlanResult:
        type(self).searches += 1
        seqs = torch.randint(0, problem.n_actions, (problem.samples, problem.horizon), generator=problem.generator)
        costs = problem.sequence_cost()(seqs)
        best = int(torch.argmin(costs))
        return PlanResult(seqs[best], float(costs[best]), [float(costs[best])], problem.samples * problem.horizon)

    @classmethod
    def calls(cls, horizon: int, samples: int, iters: int, n_actions: int) -> int:
        return samples * horizon


def _line_problem(samples: int = 64) -> SearchProblem:
    """A 1-d walk: action 0 steps left, 1 stays, 2 steps right; the cost is the distance to 3."""

    def step(s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return s + (a.float() - 1.0)[:, None]

    return SearchProblem(torch.zeros(1), step, lambda s, t: (s[:, 0] - 3.0).abs(), horizon=3, samples=samples,
                         iters=1, elites=1, n_actions=3, action_spec=ActionSpec("discrete", n=3),
                         generator=torch.Generator().manual_seed(0))  # fmt: skip


def test_builtins_are_registered_with_their_actions_and_memory() -> None:
    assert {"beam", "cem", "gaussian_cem", "mppi", "graph", "imagine"} <= set(planner_names())
    assert [get_planner(n).actions for n in ("beam", "cem", "gaussian_cem", "mppi")] == ["discrete", "discrete",
                                                                                         "continuous", "continuous"]  # fmt: skip
    assert get_planner("graph").memory == "dataset" and get_planner("imagine").memory == "imagined"
    assert get_planner("imagine").level0_only and not get_planner("graph").level0_only
    assert get_planner("beam").kind == "beam" and ShootingPlanner.kind == "shooting_test"


@pytest.mark.parametrize("name", ["beam", "cem", "shooting_test"])
def test_discrete_planners_solve_a_line(name: str) -> None:
    result = get_planner(name)().search(_line_problem())
    assert result.actions.tolist() == [2, 2, 2] and result.cost == pytest.approx(2 + 1 + 0)


def test_the_flat_budget_follows_each_planners_own_count() -> None:
    assert widest_within(ShootingPlanner, 100, horizon=4, iters=1, n_actions=3) == 24  # 24 * 4 + 4 <= 100 < 25 * 4 + 4
    beam = get_planner("beam")
    width = widest_within(beam, 60, horizon=4, iters=1, n_actions=3)
    assert beam.calls(4, width, 1, 3) + 4 <= 60 < beam.calls(4, width + 1, 1, 3) + 4


def test_unknown_names_get_a_suggestion_and_the_way_to_register() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'beam'") as info:
        PlanSpec(level=0, horizon=2, planner="bema")
    assert "@register_planner(name)" in str(info.value) and "planners/ folder" in str(info.value)
    with pytest.raises(UnknownNameError, match="Did you mean 'imagine'"):
        RuleConfigurator(planner="imagin")
    with pytest.raises(ConfigError, match="continuous_planner must be one of gaussian_cem, mppi"):
        RuleConfigurator(continuous_planner="shooting_test")


def test_a_configurator_without_settings_is_refused() -> None:
    from hjepa.planning.hierarchy import HierarchicalPlanner

    class Bare:
        def configure(self, stack, states, goals):
            return [PlanSpec(level=0, horizon=1)]

    with pytest.raises(ConfigError, match="Bare has no settings"):
        HierarchicalPlanner(torch.nn.Module(), Bare())


def test_a_new_file_in_the_planners_package_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    planner_names()
    monkeypatch.setattr(registry.PLANNERS, "entries", dict(registry.PLANNERS.entries))
    monkeypatch.setattr(registry.PLANNERS, "loaded", False)
    (tmp_path / "dropin_planner.py").write_text(textwrap.dedent('''
        from hjepa.planners.sequence import BeamPlanner
        from hjepa.registry import register_planner


        @register_planner("dropin_test")
        class Wide(BeamPlanner):
            """A beam under another name."""
    '''))  # fmt: skip
    monkeypatch.setattr(hjepa.planners, "__path__", [*hjepa.planners.__path__, str(tmp_path)])
    assert get_planner("dropin_test").__module__ == "hjepa.planners.dropin_planner"
    monkeypatch.delitem(sys.modules, "hjepa.planners.dropin_planner")


@pytest.mark.slow
def test_a_planner_registered_here_plans_through_the_command_line(tmp_path: Path) -> None:
    tiny = ["--set", "data.transitions=600", "--set", "train.steps=4", "--set", "train.epoch_steps=2",
            "--set", "train.val_batches=1", "--threads", "1"]  # fmt: skip
    assert main(["run", "debug", "--out", str(tmp_path / "run"), *tiny]) == 0
    before = ShootingPlanner.searches
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run"), "--suite", "debug", "--agents", "hjepa",
                 "--episodes", "3", "--configurator", "planner=shooting_test", "--out", str(tmp_path / "ev"),
                 "--threads", "1"]) == 0  # fmt: skip
    doc = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert doc["agents"]["hjepa"]["episodes"] == 3
    assert ShootingPlanner.searches > before
