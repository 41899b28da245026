"""The configurator: per task and level, how to plan (horizon, budget, weights, cadence).

A configurator is a :class:`Configurator`: ``configure(stack, states, goals) -> list[PlanSpec]``
(level 0 first, inactive levels omitted) each env step, and :class:`PlannerSettings`, read once
when a planner is built (the planner whose memory to build, the macro-action library's size,
graph and imagination budgets). :class:`RuleConfigurator` is the documented default; its
decisions are recorded in every plan trace, so a run shows why a level was active and how much
it searched. Planners are looked up by name in :mod:`hjepa.registry`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol, Sequence

import torch
from torch import Tensor

from hjepa.critic import critic_of
from hjepa.errors import ConfigError
from hjepa.planning.graph import RADIUS_SCALE
from hjepa.planning.search import planners_acting
from hjepa.registry import get_planner

UPPER = ("plan", "cost", "field")
"""What the levels above 0 do (:attr:`RuleConfigurator.upper`)."""


@dataclass(frozen=True)
class PlanSpec:
    """How one level plans.

    Attributes:
        level: k.
        horizon: steps of level k per plan.
        planner: a registered planner (:func:`hjepa.registry.planner_names`): "beam" (exact or
            beam search over discrete / macro-actions), "cem" (categorical CEM), "gaussian_cem"
            or "mppi" (continuous actions), "graph" (shortest path on a latent graph of
            remembered states, :mod:`hjepa.planning.graph`; beam search where the graph has no
            path), "imagine" (level 0 only: shortest path on the graph the model imagines from
            the current state, :mod:`hjepa.planning.imagine`), or one of your own
            (:mod:`hjepa.planning.search`).
        samples: beam width or candidate sequences per CEM/MPPI iteration.
        iters: CEM/MPPI iterations (beam: unused).
        elites: CEM elites.
        w_critic: weight of the critic's cost-to-go (env steps) to the (sub)goal.
        w_intrinsic: weight of the intrinsic cost, squared latent distance to the (sub)goal.
        w_goal: levels below the top: weight of the level's own critic distance to the final
            goal at the end of the plan (keeps the plan heading to the goal between subgoals).
        replan_every: env steps between plans of this level (MPC cadence).
        vocab: levels k > 0 with a discrete planner: size of the macro-action library (latent
            actions inferred from chunks of the level below's actions).
        cost_level: the level whose space and critic cost this level's predicted states when
            it plans toward the goal (None: its own). A higher level j reads them through
            its encoders ``E_j(...E_{k+1}(s))``.
        field_level: level 0 only: the level j whose latent graph costs the plan's last state,
            read in level j's space (:mod:`hjepa.planning.field`; None: the critic and
            intrinsic costs above).
    """

    level: int
    horizon: int
    planner: str = "beam"
    samples: int = 64
    iters: int = 3
    elites: int = 8
    w_critic: float = 1.0
    w_intrinsic: float = 0.0
    w_goal: float = 0.1
    replan_every: int = 1
    vocab: int = 81
    cost_level: int | None = None
    field_level: int | None = None

    @property
    def costed_at(self) -> int:
        """The level whose space and critic cost this level's states toward the goal."""
        return self.level if self.cost_level is None else self.cost_level

    def __post_init__(self) -> None:
        if self.cost_level is not None and self.cost_level < self.level:
            raise ConfigError(f"Level {self.level}: cost_level must be >= the level, got {self.cost_level}.")
        if self.field_level is not None and (self.level != 0 or self.field_level < 1):
            raise ConfigError(f"Level {self.level}: only level 0 is costed by a field, from a level >= 1; "
                              f"got field_level={self.field_level}.")  # fmt: skip
        get_planner(self.planner)
        if min(self.horizon, self.samples, self.iters, self.elites, self.replan_every) < 1:
            raise ConfigError(f"Level {self.level}: horizon, samples, iters, elites and replan_every must be >= 1.")


@dataclass(frozen=True)
class PlannerSettings:
    """What a planner reads from its configurator once, when it is built.

    Attributes:
        planner: the planner whose memory to build: a "dataset" one (e.g. "graph") plans on the
            dataset's observations, an "imagined" one ("imagine") on the graph imagined from
            each observation (:class:`~hjepa.planning.search.Planner`).
        vocab: macro-actions in each upper level's library.
        graph_radius: a dataset graph's snapping radius, in median gaps between memory states.
        imagine_nodes: the most nodes one imagination may hold.
        max_levels: the most levels that may plan.
    """

    planner: str = "beam"
    vocab: int = 81
    graph_radius: float = RADIUS_SCALE
    imagine_nodes: int = 8192
    max_levels: int = 8


class Configurator(Protocol):
    """What the hierarchical planner needs of a configurator."""

    @property
    def settings(self) -> PlannerSettings:
        """Read once, when a planner is built."""
        ...

    def configure(self, stack: torch.nn.Module, states: Sequence[Tensor], goals: Sequence[Tensor]) -> list[PlanSpec]:
        """Plan specs for the levels that take part, level 0 first."""
        ...


def check_configurator(configurator: object) -> Configurator:
    """``configurator`` itself, or a :class:`ConfigError` naming what it lacks."""
    missing = [name for name in ("configure", "settings") if not hasattr(configurator, name)]
    if missing:
        raise ConfigError(f"A configurator needs configure(stack, states, goals) and settings (a PlannerSettings); "
                          f"{type(configurator).__name__} has no {' and no '.join(missing)}.")  # fmt: skip
    return configurator  # type: ignore[return-value]


@dataclass(frozen=True)
class RuleConfigurator:
    """The default rule.

    - Level 0 always plans, every env step, over ``stride_1`` steps (one step of level 1)
      when there is a level above, else over ``flat_horizon``; exhaustive when small.
    - Level k > 0 plans every ``tau_k // 2`` env steps (at least 1); the top active level over
      ``top_horizon`` of its steps, an intermediate level over one step of the level above.
    - Active levels: 0 up to the lowest level k whose reach (``horizon_k * tau_k`` env steps)
      covers the critic's estimated distance to the goal, or the top level. Near goals are
      therefore planned by level 0 alone, far ones by the whole stack. With ``judge="own"``
      each level's own critic estimates that distance; with ``judge="top"`` the critic of the
      highest usable level does it for all (a short-timescale critic can saturate and call
      a far goal near: measured on PointMaze, where level 0's critic put goals 17 m away at
      ~6 env steps; the level-20 critic ranked distances far better).
    - Budgets: ``width0`` candidates at level 0, ``width`` above; weights as in :class:`PlanSpec`.
    - Planners: ``planner`` at every level, except level 0 of an env with continuous actions
      (PointMaze), which plans with ``continuous_planner`` over the action box; "imagine"
      serves level 0 only, and the levels above it search with "beam".

    Attributes:
        max_levels: use at most this many levels (1 gives a flat planner on level 0).
        top_horizon: horizon of the top active level, in its own steps.
        flat_horizon: level-0 horizon when level 0 plans alone toward the goal.
        width0: level-0 beam width (81 = exhaustive over 4 steps of 3 actions).
        width: beam width / samples of the levels above.
        vocab: macro-actions in each upper level's library.
        use_critic: False plans on intrinsic latent distance only and activates every level
            (ablation: no critic is consulted).
        planner: planner of every level.
        continuous_planner: level 0's planner when the env's actions are continuous
            ("gaussian_cem" or "mppi"); ``width0`` is then its samples per iteration.
        judge: whose critic decides which levels are active: "own" (each level's) or "top".
        graph_radius: the "graph" planner's snapping radius, in median gaps between memory
            states (a prediction further than that from every remembered state is no edge).
            Default :data:`~hjepa.planning.graph.RADIUS_SCALE` (3): at 2, runs of one recipe
            scored 0.31-1.00 on fourrooms; at 3 four checkpoints scored 1.00.
        upper: what the levels above 0 do. "plan": they plan macro-actions and hand subgoals
            down (hierarchical MPC). "cost": they do not search; level 0 plans alone over
            ``flat_horizon`` steps and its rollout is costed by the highest level's critic,
            read in that level's space. "cost" serves when the upper levels' predictors are
            weaker than their encoders and critics (docs/design-notes.md, "Critics"). "field":
            level ``field_level`` builds its latent graph over the memory and level 0, planning
            alone over ``flat_horizon`` steps, costs its rollout's last state by that graph's
            distance to the goal, read in level ``field_level``'s space
            (:mod:`hjepa.planning.field`; needs a memory, like the "graph" planner).
        field_level: the level whose graph makes the field (``upper="field"``).
        imagine_nodes: planner "imagine": the most nodes one imagination may hold (its
            budget; a flat agent's is set from the hierarchy's measured cost).
        near: planner "imagine" on a stack with a ``gridcoarse`` level 1: a route of at most
            this many blocks is left to level 0 alone (:mod:`hjepa.planning.coarse`).
        doubt: planner "imagine" on a stack with a ``gridcoarse`` level 1: the extra blocks a
            route would rather walk than cross a pair of blocks level 1 is sure is closed; a
            route may cross it, for level 0 to confirm or refute (:mod:`hjepa.planning.coarse`).
    """

    max_levels: int = 8
    top_horizon: int = 3
    flat_horizon: int = 4
    width0: int = 81
    width: int = 16
    vocab: int = 32
    use_critic: bool = True
    planner: str = "beam"
    continuous_planner: str = "gaussian_cem"
    judge: str = "own"
    upper: str = "plan"
    graph_radius: float = RADIUS_SCALE
    field_level: int = 1
    imagine_nodes: int = 8192
    near: int = 2
    doubt: float = 8.0

    def __post_init__(self) -> None:
        if self.upper not in UPPER:
            raise ConfigError(f"upper must be one of {', '.join(UPPER)}, got '{self.upper}'.")
        if self.field_level < 1:
            raise ConfigError(f"field_level must be >= 1 (a level above 0), got {self.field_level}.")
        continuous = planners_acting("continuous")
        if self.continuous_planner not in continuous:
            raise ConfigError(f"continuous_planner must be one of {', '.join(continuous)}, "
                              f"got '{self.continuous_planner}'.")  # fmt: skip
        memory = get_planner(self.planner).memory
        if self.graph_radius <= 0:
            raise ConfigError(f"graph_radius must be > 0, got {self.graph_radius}.")
        if memory == "imagined" and self.upper == "field":
            raise ConfigError(f"upper='field' needs a memory of observations' graphs; planner '{self.planner}' "
                              "imagines its graphs and has none.")  # fmt: skip
        if self.imagine_nodes < 1 or self.near < 0 or not self.doubt >= 0:
            raise ConfigError(f"imagine_nodes must be >= 1, near >= 0 and doubt >= 0, got {self.imagine_nodes}, "
                              f"{self.near} and {self.doubt}.")  # fmt: skip
        if self.judge not in ("own", "top"):
            raise ConfigError(f"judge must be 'own' or 'top', got '{self.judge}'.")

    @property
    def settings(self) -> PlannerSettings:
        return PlannerSettings(self.planner, self.vocab, self.graph_radius, self.imagine_nodes, self.max_levels)

    def configure(self, stack: torch.nn.Module, states: Sequence[Tensor], goals: Sequence[Tensor]) -> list[PlanSpec]:
        n = min(self.max_levels, stack.num_levels)
        if self.upper == "cost":
            return [dataclasses.replace(self._spec(stack, 0, 0), cost_level=self._cost_level(stack, n))]
        if self.upper == "field":
            if self.field_level >= n:
                raise ConfigError(f"field_level {self.field_level} needs {self.field_level + 1} levels; "
                                  f"this stack plans with {n}.")  # fmt: skip
            return [dataclasses.replace(self._spec(stack, 0, 0), field_level=self.field_level, w_goal=0.0)]
        top = self._top_level(stack, states, goals, n)
        return [self._spec(stack, k, top) for k in range(top + 1)]

    def _top_level(self, stack: torch.nn.Module, states: Sequence[Tensor], goals: Sequence[Tensor], n: int) -> int:
        if not self.use_critic:  # the ablation uses no critic anywhere, so every level takes part
            return n - 1
        top = critic_of(stack.levels[n - 1])
        if self.judge == "top" and top is not None:
            distance = float(top.distance(states[n - 1], goals[n - 1]))
        for k in range(n - 1):
            critic = critic_of(stack.levels[k])
            if critic is None:
                return n - 1
            reach = (self.flat_horizon if k == 0 else self.top_horizon) * stack.taus[k]
            if self.judge != "top" or top is None:
                distance = float(critic.distance(states[k], goals[k]))
            if distance <= reach:
                return k
        return n - 1

    def _cost_level(self, stack: torch.nn.Module, n: int) -> int:
        """The highest of the first ``n`` levels with a critic (the top one without critics)."""
        with_critic = [k for k in range(n) if critic_of(stack.levels[k]) is not None]
        return with_critic[-1] if with_critic and self.use_critic else n - 1

    def _spec(self, stack: torch.nn.Module, k: int, top: int) -> PlanSpec:
        strides, taus = stack.strides, stack.taus
        horizon = self.top_horizon if k == top and k > 0 else (self.flat_horizon if k == top else strides[k + 1])
        # a stack trained without critics plans on latent distance, as use_critic=False does
        critics = self.use_critic and all(critic_of(level) is not None for level in stack.levels)
        weights = dict(w_critic=1.0, w_intrinsic=0.0) if critics else dict(w_critic=0.0, w_intrinsic=1.0)
        continuous = k == 0 and not stack.action_spec.is_discrete
        return PlanSpec(
            level=k,
            horizon=horizon,
            planner=self.continuous_planner if continuous else self._planner(k),
            samples=self.width0 if k == 0 else self.width,
            replan_every=1 if get_planner(self.planner).memory is not None else max(1, taus[k] // 2),
            vocab=self.vocab,
            w_goal=0.1 if (critics and k < top) else 0.0,
            **weights,
        )

    def _planner(self, k: int) -> str:
        return "beam" if k > 0 and get_planner(self.planner).level0_only else self.planner

    def replace(self, **changes: object) -> "RuleConfigurator":
        return dataclasses.replace(self, **changes)
