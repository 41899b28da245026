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

Which planner searches a level follows from its :class:`~hjepa.specs.ActionSpec` and the
plan spec: level 0 with discrete env actions uses a discrete planner ("beam", "cem") over
the env's actions; level 0 with continuous env actions (PointMaze forces) a continuous one
("gaussian_cem", "mppi") over the action box, warm-started from its previous plan. Levels
above 0 act with latent macro-actions: a discrete planner chooses from a library of
macro-actions inferred from chunks of the level below's actions (:func:`macro_library`), so
every proposal is one the level was trained on; a continuous planner searches the latent
action box ``[-1, 1]^e`` directly.
"""

from __future__ import annotations

import itertools
import math
from typing import Callable, NamedTuple

import torch
from torch import Tensor

from hjepa.critic import critic_of
from hjepa.errors import ConfigError, SpecMismatchError
from hjepa.planning import planners
from hjepa.planning.configurator import Configurator, PlanSpec, RuleConfigurator, check_configurator
from hjepa.planning.field import GraphField, field_cost
from hjepa.planning.imagined_memory import ImaginedMemory
from hjepa.planning.memory import PlanningMemory
from hjepa.planning.search import Planner, SearchProblem, planners_acting
from hjepa.registry import get_planner
from hjepa.specs import ActionSpec

CHUNK_HOLD = 0.8
"""Continuous env actions: probability that a library chunk keeps its previous action for the
next step (momentum, like the reward-free collector's random walks)."""


class LevelTrace(NamedTuple):
    """What one level did at one env step."""

    level: int
    target: str  # "goal" or "subgoal"
    replanned: bool
    cost: float
    distance: float  # critic's estimate from the current state to the level's target (env steps)
    calls: int
    plan: list  # chosen action / macro-action indices, or continuous actions (one list per step)
    subgoal: Tensor | None  # the state handed to the level below ("d")


class StepTrace(NamedTuple):
    step: int
    action: int | list[float]  # the env action: an index, or a continuous vector
    specs: list[PlanSpec]
    levels: list[LevelTrace]
    calls: int


class _Plan(NamedTuple):
    actions: Tensor  # "h" indices (discrete search) or "h e" actions (continuous search)
    states: Tensor  # "h d" predicted states
    cost: float
    step: int  # env step it was made at
    target: Tensor | None  # what it aimed at when made


def macro_library(stack: torch.nn.Module, size: int, generator: torch.Generator) -> list[Tensor | None]:
    """Per level: ``None`` at level 0 (env actions), else ``"m e"`` latent macro-actions.

    Level 1's library is every chunk of ``stride_1`` discrete env actions when there are at
    most ``size`` of them, else a random sample; with continuous env actions it is ``size``
    random chunks (:func:`continuous_chunks`). Level k > 1 samples chunks from level k-1's
    library. Each chunk goes through the level's own action encoder (``infer_action``).
    """
    libs: list[Tensor | None] = [None]
    spec = stack.action_spec
    below = stack.levels[0].action_input(torch.arange(spec.n)) if spec.is_discrete else None
    for level in stack.levels[1:]:
        stride = level.spec.config.stride
        if below is None:
            chunks = stack.levels[0].action_input(continuous_chunks(size, stride, spec, generator))
        else:
            n_below = below.shape[0]
            if n_below**stride <= size:
                idx = torch.tensor(list(itertools.product(range(n_below), repeat=stride)))
            else:
                idx = torch.randint(0, n_below, (size, stride), generator=generator)
            chunks = below[idx]
        with torch.no_grad():
            lib = level.infer_action(chunks)
        libs.append(lib)
        below = lib
    return libs


def continuous_chunks(size: int, stride: int, spec: ActionSpec, generator: torch.Generator) -> Tensor:
    """``"m j e"`` random chunks of continuous env actions, uniform in the action box, each
    step keeping the previous action with probability :data:`CHUNK_HOLD`."""
    fresh = spec.low + (spec.high - spec.low) * torch.rand(size, stride, spec.dim, generator=generator)
    hold = torch.rand(size, stride, generator=generator) < CHUNK_HOLD
    hold[:, 0] = False
    # Each step reads the fresh draw of the last step that did not hold.
    source = torch.cummax(torch.where(hold, 0, torch.arange(stride)), dim=1).values
    return torch.gather(fresh, 1, source[..., None].expand(-1, -1, spec.dim))


class HierarchicalPlanner:
    """Plans with every active level of ``stack`` and returns level 0's action each step.

    Args:
        stack: a trained :class:`hjepa.stack.HJEPA` (critics attached for critic costs).
        configurator: decides the plan specs (default :class:`RuleConfigurator`).
        seed: seeds the macro-action library and stochastic planners.
        memory: ``"m ..."`` observations for the ``"graph"`` planner (the dataset's distinct
            observations, :func:`~hjepa.planning.graph.distinct_observations`); for the
            ``"imagine"`` planner, the observations whose cell codes make its codebook.
    """

    def __init__(self, stack: torch.nn.Module, configurator: Configurator | None = None, seed: int = 0,
                 memory: Tensor | None = None) -> None:  # fmt: skip
        self.stack = stack.eval()
        self.configurator = check_configurator(configurator or RuleConfigurator())
        self.settings = self.configurator.settings
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.library = macro_library(stack, self.settings.vocab, self.generator)
        self.memory = self._memory(memory)
        self.goals: list[Tensor] = []
        self.plans: dict[int, _Plan] = {}
        self._field: GraphField | None = None
        self.t = 0

    def _memory(self, obs: Tensor | None) -> PlanningMemory | ImaginedMemory | None:
        """Level 0's graph source: imagined from each observed state ("imagine"), or the
        memory of ``obs`` (every other planner; None without ``obs``)."""
        if get_planner(self.settings.planner).memory == "imagined":
            return ImaginedMemory(self.stack, obs, self.settings.imagine_nodes)
        return PlanningMemory(self.stack, obs, self.settings.graph_radius) if obs is not None else None

    @torch.no_grad()
    def reset(self, goal_obs: Tensor) -> None:
        """Encode the goal observation at every level and forget old plans."""
        self.goals = [g[0] for g in self.stack.encode(goal_obs[None])]
        self.plans, self.t = {}, 0
        self.generator.manual_seed(self.seed)
        if isinstance(self.memory, ImaginedMemory):
            self.memory.new_episode(self.goals[0])
        elif self.memory is not None:
            self.memory.new_episode()

    @torch.no_grad()
    def act(self, obs: Tensor) -> tuple[int | Tensor, StepTrace]:
        """One MPC step from observation ``obs`` (``"..."`` of the stack's obs spec).

        Returns the env action (an index for discrete env actions, an ``"e"`` float tensor in
        the action box for continuous ones) and the step's trace.
        """
        states = [s[0] for s in self.stack.encode(obs[None])]
        if self.memory is not None:
            self.memory.observe(states[0])
        specs, built = self._level0_alone_if_its_graph_reaches(
            self.configurator.configure(self.stack, states, self.goals), states)  # fmt: skip
        top = specs[-1].level
        traces: list[LevelTrace] = []
        subgoal: Tensor | None = None
        for spec in reversed(specs):
            trace = self._level_step(spec, states, subgoal if spec.level < top else None)
            traces.append(trace)
            subgoal = trace.subgoal
        traces.reverse()
        self.plans = {k: p for k, p in self.plans.items() if k <= top}
        first = self.plans[0].actions[0]
        action = int(first) if self.stack.action_spec.is_discrete else first.clone()
        if self.memory is not None and isinstance(action, int):
            self.memory.took(states[0], action)
        self.t += 1
        logged = action if isinstance(action, int) else action.tolist()
        return action, StepTrace(self.t - 1, logged, specs, traces, built + sum(tr.calls for tr in traces))

    def _level_step(self, spec: PlanSpec, states: list[Tensor], subgoal: Tensor | None) -> LevelTrace:
        k = spec.level
        old = self.plans.get(k)
        due = (old is None or self.t - old.step >= spec.replan_every or k == 0
               or (subgoal is not None and (old.target is None or not torch.equal(old.target, subgoal))))  # fmt: skip
        calls = 0
        if due:
            field_calls = self._prepare_field(spec)
            on_graph = get_planner(spec.planner).memory is not None
            result, built = self._search_graph(spec, states, subgoal) if on_graph else (None, 0)
            if result is None:  # not a graph level, or the graph has no path: search the model
                result = self._search(spec, states[k], self._cost_fn(spec, subgoal), old)
            acts = result.actions
            if on_graph and result.state is not None:  # the path's remembered (or imagined) states
                pred, rolled = result.state, 0
            else:
                pred, rolled = self.stack.levels[k].rollout(states[k][None], self._embed(k, acts)[None])[0], len(acts)
            self.plans[k] = _Plan(acts, pred, result.cost, self.t, subgoal)
            calls = result.calls + built + rolled + field_calls
        plan = self.plans[k]
        j = spec.field_level
        distance = (float(field_cost(self._field, states[j][None], self.goals[j])[0]) if j is not None
                    else self._distance(spec.costed_at, states, subgoal))  # fmt: skip
        return LevelTrace(k, "goal" if subgoal is None else "subgoal", due, plan.cost, distance, calls,
                          plan.actions.tolist(),
                          plan.states[0] if k > 0 else None)  # fmt: skip

    # ------------------------------------------------------------------ costs and search
    def _prepare_field(self, spec: PlanSpec) -> int:
        """For a spec costed by a field: level ``field_level``'s graph distances to the goal's
        node (``self._field``); returns the predictor calls of building the graph now (0 once
        built, and for specs without a field)."""
        j = spec.field_level
        if j is None:
            return 0
        if self.memory is None:
            raise ConfigError("A field cost (upper='field') needs a memory of observations (the training "
                              "dataset's): pass memory= to the planner or agent.")  # fmt: skip
        target = self.memory.nearest(j, self.goals[j])
        self._field, calls = self.memory.field(j, self.library[j], target)
        return calls

    def _embed(self, k: int, acts: Tensor) -> Tensor:
        """Level k's predictor input for indices (discrete search) or actions (continuous search)."""
        if k == 0:
            return self.stack.levels[0].action_input(acts)
        return acts if acts.is_floating_point() else self.library[k][acts]

    def _cost_fn(self, spec: PlanSpec, subgoal: Tensor | None) -> Callable[[Tensor, int], Tensor]:
        """Per-state cost at depth ``t`` of level ``spec.level``'s predicted states ``"n d"``."""
        k, levels = spec.level, self.stack.levels
        j = spec.costed_at
        goal = self.goals[j]
        own = critic_of(levels[k])
        if spec.field_level is not None:  # the plan's last state, read in the field's level; nothing before
            field, f, goal_f = self._field, spec.field_level, self.goals[spec.field_level]
            return lambda s, t: (field_cost(field, self._read(s, k, f), goal_f) if t == spec.horizon
                                 else torch.zeros(s.shape[0]))  # fmt: skip

        def cost(s: Tensor, t: int) -> Tensor:
            if subgoal is None:
                c = _target_cost(self._read(s, k, j), goal, critic_of(levels[j]), spec)
            else:
                c = _target_cost(levels[k + 1].encode(s), subgoal, critic_of(levels[k + 1]), spec)
                if t == spec.horizon and spec.w_goal > 0 and own is not None:
                    c = c + spec.w_goal * own.distance(s, goal)
            return c

        return cost

    def _read(self, s: Tensor, k: int, j: int) -> Tensor:
        """Level-k states ``"n d_k"`` read in level j's space (``j >= k``) through the encoders."""
        for level in self.stack.levels[k + 1 : j + 1]:
            s = level.encode(s)
        return s

    def _search(self, spec: PlanSpec, start: Tensor, cost: Callable[[Tensor, int], Tensor],
                old: _Plan | None) -> planners.PlanResult:  # fmt: skip
        """Level k's search of its model with the spec's planner (:mod:`hjepa.planning.search`)."""
        k = spec.level
        level = self.stack.levels[k]
        planner = self._planner_for(spec, level.action_spec)

        def step(s: Tensor, acts: Tensor) -> Tensor:
            return level.predict(s, self._embed(k, acts))

        continuous = planner.actions == "continuous"
        n = 0 if continuous else (level.action_spec.n if k == 0 else self.library[k].shape[0])
        problem = SearchProblem(start, step, cost, spec.horizon, spec.samples, spec.iters, spec.elites, n,
                                level.action_spec, self._warm_start(spec, level.action_spec, old) if continuous else None,
                                self.generator)  # fmt: skip
        return planner().search(problem)

    def _planner_for(self, spec: PlanSpec, action_spec: ActionSpec) -> type[Planner]:
        """The spec's planner class, checked against level k's actions (level 0: the env's)."""
        planner = get_planner(spec.planner)
        if spec.level > 0:
            return planner
        env = "continuous" if not action_spec.is_discrete else "discrete"
        if planner.actions != env:
            raise SpecMismatchError(f"Planner '{spec.planner}' needs {planner.actions} actions; level 0 acts with "
                                    f"{env} env actions here: use one of {', '.join(planners_acting(env))}.")  # fmt: skip
        return planner

    def _warm_start(self, spec: PlanSpec, action_spec: ActionSpec, old: _Plan | None) -> Tensor | None:
        """A continuous planner's warm start: level k's last plan shifted by the level steps taken since."""
        if old is None or not old.actions.is_floating_point() or old.actions.shape != (spec.horizon, action_spec.dim):
            return None
        init = old.actions
        for _ in range((self.t - old.step) // self.stack.taus[spec.level]):
            init = planners.shift_mean(init)
        return init

    def _level0_alone_if_its_graph_reaches(self, specs: list[PlanSpec],
                                           states: list[Tensor]) -> tuple[list[PlanSpec], int]:  # fmt: skip
        """The configurator's reach rule, read on the graph: when level 0 plans on its graph and
        that graph connects the current state to the goal, level 0's reach covers the goal and
        the levels above sit out (their specs are dropped, so the trace shows it). Also returns
        the predictor calls of building level 0's graph, if this step built it."""
        if self.memory is None or len(specs) < 2 or get_planner(specs[0].planner).memory is None:
            return specs, 0
        _, built = self.memory.graph(0, self._embed(0, torch.arange(self.stack.levels[0].action_spec.n)))
        reached = self.memory.covers(states[0]) and self.memory.reaches(0, states[0],
                                                                        self.memory.nearest(0, self.goals[0]))  # fmt: skip
        return ([specs[0]] if reached else specs), built

    def _search_graph(self, spec: PlanSpec, states: list[Tensor],
                      subgoal: Tensor | None) -> tuple[planners.PlanResult | None, int]:  # fmt: skip
        """Shortest path on level k's latent graph toward the goal's node, or toward the node
        whose level-(k+1) state is nearest the subgoal, and the predictor calls spent building
        the graph now. The plan is None when the memory does not cover the current state or
        holds no path (the caller then searches the model)."""
        k = spec.level
        if self.memory is None:
            raise ConfigError("The 'graph' planner needs a memory of observations (the training dataset's): "
                              "pass memory= to the planner or agent.")  # fmt: skip
        level = self.stack.levels[k]
        self._planner_for(spec, level.action_spec)
        n = level.action_spec.n if k == 0 else self.library[k].shape[0]
        actions = self._embed(k, torch.arange(n))
        if get_planner(spec.planner).memory == "imagined" and subgoal is not None:  # no level above reads imagined states
            return None, 0
        _, built = self.memory.graph(k, actions)
        if not self.memory.covers(states[0]):
            return None, built
        target = self.memory.nearest(k + 1, subgoal) if subgoal is not None else self.memory.nearest(k, self.goals[k])
        result = self.memory.plan(k, actions, states[k], target, spec.horizon)
        return (result if len(result.actions) else None), built

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
