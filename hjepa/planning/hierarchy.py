"""Hierarchical model-predictive control over a trained stack.

Each env step:

1. every level encodes the observation (``states[k]``); the goal observation was encoded
   once at :meth:`HierarchicalPlanner.reset` (``goals[k]``);
2. the configurator picks the active levels and their :class:`PlanSpec`;
3. top-down, a level that is due replans: the top active level toward the goal in its own
   space; a level below toward the **subgoal** set by the level above, the first state of
   that level's plan, by reading its own predicted states in the space above
   (``E_{k+1}(s_k)``) and costing them with the level above's critic (and intrinsic
   distance), plus its own critic's distance to the final goal at the end of its plan;
4. level 0 emits the first action of its plan.

Levels above 0 act with latent macro-actions. With a discrete planner they choose from a
library of macro-actions inferred from chunks of the level below's actions (:func:`macro_library`),
so every proposal is one the level was trained on.
"""

from __future__ import annotations

import itertools
import math
from typing import Callable, NamedTuple

import torch
from einops import repeat
from torch import Tensor

from hjepa.critic import critic_of
from hjepa.errors import SpecMismatchError
from hjepa.planning import planners
from hjepa.planning.configurator import Configurator, PlanSpec, RuleConfigurator


class LevelTrace(NamedTuple):
    """What one level did at one env step."""

    level: int
    target: str  # "goal" or "subgoal"
    replanned: bool
    cost: float
    distance: float  # critic's estimate from the current state to the level's target (env steps)
    calls: int
    plan: list[int]  # chosen action / macro-action indices
    subgoal: Tensor | None  # the state handed to the level below ("d")


class StepTrace(NamedTuple):
    step: int
    action: int
    specs: list[PlanSpec]
    levels: list[LevelTrace]
    calls: int


class _Plan(NamedTuple):
    actions: Tensor  # "h" indices
    states: Tensor  # "h d" predicted states
    cost: float
    step: int  # env step it was made at
    target: Tensor | None  # what it aimed at when made


def macro_library(stack: torch.nn.Module, size: int, generator: torch.Generator) -> list[Tensor | None]:
    """Per level: ``None`` at level 0 (env actions), else ``"m e"`` latent macro-actions.

    Level 1's library is every chunk of ``stride_1`` env actions when there are at most
    ``size`` of them, else a random sample; level k > 1 samples chunks from level k-1's
    library. Each chunk goes through the level's own action encoder (``infer_action``).
    """
    libs: list[Tensor | None] = [None]
    below = stack.levels[0].action_input(torch.arange(stack.levels[0].action_spec.n)) if stack.action_spec.is_discrete else None
    for level in stack.levels[1:]:
        stride = level.spec.config.stride
        n_below = below.shape[0]
        if n_below**stride <= size:
            idx = torch.tensor(list(itertools.product(range(n_below), repeat=stride)))
        else:
            idx = torch.randint(0, n_below, (size, stride), generator=generator)
        with torch.no_grad():
            lib = level.infer_action(below[idx])
        libs.append(lib)
        below = lib
    return libs


class HierarchicalPlanner:
    """Plans with every active level of ``stack`` and returns level 0's action each step.

    Args:
        stack: a trained :class:`hjepa.stack.HJEPA` (critics attached for critic costs).
        configurator: decides the plan specs (default :class:`RuleConfigurator`).
        seed: seeds the macro-action library and stochastic planners.
    """

    def __init__(self, stack: torch.nn.Module, configurator: Configurator | None = None, seed: int = 0) -> None:
        if not stack.action_spec.is_discrete:
            raise SpecMismatchError("HierarchicalPlanner's macro-action library needs discrete env actions.")
        self.stack = stack.eval()
        self.configurator = configurator or RuleConfigurator()
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        size = getattr(self.configurator, "vocab", 81)
        self.library = macro_library(stack, size, self.generator)
        self.goals: list[Tensor] = []
        self.plans: dict[int, _Plan] = {}
        self.t = 0

    @torch.no_grad()
    def reset(self, goal_obs: Tensor) -> None:
        """Encode the goal observation at every level and forget old plans."""
        self.goals = [g[0] for g in self.stack.encode(goal_obs[None])]
        self.plans, self.t = {}, 0
        self.generator.manual_seed(self.seed)

    @torch.no_grad()
    def act(self, obs: Tensor) -> tuple[int, StepTrace]:
        """One MPC step from observation ``obs`` (``"..."`` of the stack's obs spec)."""
        states = [s[0] for s in self.stack.encode(obs[None])]
        specs = self.configurator.configure(self.stack, states, self.goals)
        top = specs[-1].level
        traces: list[LevelTrace] = []
        subgoal: Tensor | None = None
        for spec in reversed(specs):
            trace = self._level_step(spec, states, subgoal if spec.level < top else None)
            traces.append(trace)
            subgoal = trace.subgoal
        traces.reverse()
        self.plans = {k: p for k, p in self.plans.items() if k <= top}
        action = int(self.plans[0].actions[0])
        self.t += 1
        return action, StepTrace(self.t - 1, action, specs, traces, sum(tr.calls for tr in traces))

    def _level_step(self, spec: PlanSpec, states: list[Tensor], subgoal: Tensor | None) -> LevelTrace:
        k = spec.level
        old = self.plans.get(k)
        due = (old is None or self.t - old.step >= spec.replan_every or k == 0
               or (subgoal is not None and (old.target is None or not torch.equal(old.target, subgoal))))  # fmt: skip
        calls = 0
        if due:
            cost = self._cost_fn(spec, subgoal)
            result = self._search(spec, states[k], cost)
            acts = result.actions
            pred = self.stack.levels[k].rollout(states[k][None], self._embed(k, acts)[None])[0]
            self.plans[k] = _Plan(acts, pred, result.cost, self.t, subgoal)
            calls = result.calls + len(acts)
        plan = self.plans[k]
        return LevelTrace(k, "goal" if subgoal is None else "subgoal", due, plan.cost,
                          self._distance(k, states, subgoal), calls, plan.actions.tolist(),
                          plan.states[0] if k > 0 else None)  # fmt: skip

    # ------------------------------------------------------------------ costs and search
    def _embed(self, k: int, idx: Tensor) -> Tensor:
        return self.stack.levels[0].action_input(idx) if k == 0 else self.library[k][idx]

    def _cost_fn(self, spec: PlanSpec, subgoal: Tensor | None) -> Callable[[Tensor, int], Tensor]:
        """Per-state cost at depth ``t`` of level ``spec.level``'s predicted states ``"n d"``."""
        k, levels = spec.level, self.stack.levels
        goal = self.goals[k]
        own = critic_of(levels[k])

        def cost(s: Tensor, t: int) -> Tensor:
            if subgoal is None:
                c = _target_cost(s, goal, own, spec)
            else:
                c = _target_cost(levels[k + 1].encode(s), subgoal, critic_of(levels[k + 1]), spec)
                if t == spec.horizon and spec.w_goal > 0 and own is not None:
                    c = c + spec.w_goal * own.distance(s, goal)
            return c

        return cost

    def _search(self, spec: PlanSpec, start: Tensor, cost: Callable[[Tensor, int], Tensor]) -> planners.PlanResult:
        k = spec.level
        level = self.stack.levels[k]
        n = level.action_spec.n if k == 0 else self.library[k].shape[0]

        def step(s: Tensor, idx: Tensor) -> Tensor:
            return level.predict(s, self._embed(k, idx))

        if spec.planner == "beam":
            return planners.beam_search(start, step, cost, n, spec.horizon, spec.samples)
        if spec.planner == "cem":
            seq_cost = _sequence_cost(start, step, cost)
            return planners.categorical_cem(seq_cost, n, spec.horizon, spec.samples, spec.iters, spec.elites,
                                            generator=self.generator)  # fmt: skip
        raise SpecMismatchError(f"Planner '{spec.planner}' needs continuous actions; level {k} acts discretely here.")

    def _distance(self, k: int, states: list[Tensor], subgoal: Tensor | None) -> float:
        """Critic estimate from the current state to level k's target. Below the top, the
        current state read in the space above is ``states[k + 1]`` (encoders chain)."""
        j, target = (k, self.goals[k]) if subgoal is None else (k + 1, subgoal)
        critic = critic_of(self.stack.levels[j])
        return float(critic.distance(states[j], target)) if critic is not None else math.nan

def _target_cost(s: Tensor, target: Tensor, critic: torch.nn.Module | None, spec: PlanSpec) -> Tensor:
    c = spec.w_intrinsic * (s - target).pow(2).sum(-1)
    if critic is not None and spec.w_critic > 0:
        c = c + spec.w_critic * critic.distance(s, target)
    return c


def _sequence_cost(start: Tensor, step: Callable[[Tensor, Tensor], Tensor],
                   cost: Callable[[Tensor, int], Tensor]) -> Callable[[Tensor], Tensor]:  # fmt: skip
    """Whole-sequence cost ``"n h" -> "n"``: roll the model out and sum the per-state costs."""

    def seq_cost(seqs: Tensor) -> Tensor:
        s = repeat(start, "d -> n d", n=seqs.shape[0])
        total = torch.zeros(seqs.shape[0])
        for t in range(seqs.shape[1]):
            s = step(s, seqs[:, t])
            total = total + cost(s, t + 1)
        return total

    return seq_cost
