"""Planners that search action sequences through the model: beam, CEM, Gaussian CEM, MPPI."""

from __future__ import annotations

from hjepa.planning import planners
from hjepa.planning.search import Planner, SearchProblem
from hjepa.registry import register_planner


@register_planner("beam")
class BeamPlanner(Planner):
    """Keeps the ``samples`` cheapest partial sequences at each depth
    (:func:`~hjepa.planning.planners.beam_search`); exhaustive once ``samples >= n ** horizon``."""

    max_samples = 4096

    def search(self, problem: SearchProblem) -> planners.PlanResult:
        return planners.beam_search(problem.start, problem.step, problem.cost, problem.n_actions, problem.horizon,
                                    problem.samples)  # fmt: skip

    @classmethod
    def calls(cls, horizon: int, samples: int, iters: int, n_actions: int) -> int:
        calls, frontier = 0, 1
        for _ in range(horizon):
            calls += frontier * n_actions
            frontier = min(samples, frontier * n_actions)
        return calls


class _Sampling(Planner):
    """Iterative samplers: ``samples`` sequences per iteration, each rolled out over the horizon."""

    @classmethod
    def calls(cls, horizon: int, samples: int, iters: int, n_actions: int) -> int:
        return samples * iters * horizon


@register_planner("cem")
class CEMPlanner(_Sampling):
    """Cross-entropy method over independent categoricals per step
    (:func:`~hjepa.planning.planners.categorical_cem`)."""

    def search(self, problem: SearchProblem) -> planners.PlanResult:
        return planners.categorical_cem(problem.sequence_cost(), problem.n_actions, problem.horizon, problem.samples,
                                        problem.iters, problem.elites, generator=problem.generator)  # fmt: skip


@register_planner("gaussian_cem")
class GaussianCEMPlanner(_Sampling):
    """Cross-entropy method with a diagonal Gaussian over the action box, warm-started from the
    previous plan (:func:`~hjepa.planning.planners.gaussian_cem`)."""

    actions = "continuous"

    def search(self, problem: SearchProblem) -> planners.PlanResult:
        box = problem.action_spec
        return planners.gaussian_cem(problem.sequence_cost(), box.dim, problem.horizon, problem.samples, problem.iters,
                                     problem.elites, box.low, box.high, init_mean=problem.init,
                                     generator=problem.generator)  # fmt: skip


@register_planner("mppi")
class MPPIPlanner(_Sampling):
    """Model-predictive path integral over the action box, warm-started from the previous plan
    (:func:`~hjepa.planning.planners.mppi`)."""

    actions = "continuous"

    def search(self, problem: SearchProblem) -> planners.PlanResult:
        box = problem.action_spec
        return planners.mppi(problem.sequence_cost(), box.dim, problem.horizon, problem.samples, problem.iters,
                             low=box.low, high=box.high, init_mean=problem.init, generator=problem.generator)  # fmt: skip
