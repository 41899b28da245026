"""The planner interface: what one level's search receives, and what a planner declares.

A planner is a class registered with ``@register_planner("name")`` (:mod:`hjepa.registry`)
that turns a :class:`SearchProblem` into a :class:`~hjepa.planning.planners.PlanResult`. The
hierarchical planner builds the problem for each level that is due to replan (its start state,
its model step, its cost toward the goal or the subgoal, the plan spec's budget) and calls
:meth:`Planner.search`; the planner knows nothing about JEPAs or levels. The class attributes
tell the hierarchy and the configurator how to use it:

- ``actions``: ``"discrete"`` (env actions at level 0, the macro-action library above) or
  ``"continuous"`` (the action box: continuous env actions at level 0, latent actions above);
- ``memory``: ``None`` (the planner searches the model), ``"dataset"`` (the hierarchy first walks
  a latent graph of the dataset's observations, :mod:`hjepa.planning.memory`, and searches the
  model with :meth:`Planner.search` where that graph has no path) or ``"imagined"`` (the
  same, on the graph the model imagines from the current observation,
  :mod:`hjepa.planning.imagine`);
- ``level0_only``: True when the planner serves level 0 only (the levels above then search
  with "beam").

The built-in planners live in the ``planners/`` folder (``hjepa.planners``); a new planner is
one file there, or a module of your own (docs/tutorials/add-a-planner.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from einops import repeat
from torch import Tensor

from hjepa.planning.planners import PlanResult, SequenceCost, StepCost, StepFn
from hjepa.registry import get_planner, planner_names
from hjepa.specs import ActionSpec


@dataclass(frozen=True)
class SearchProblem:
    """One level's search at one env step.

    Attributes:
        start: the level's current state ``"d"``.
        step: the level's model, ``(states "n d", actions) -> "n d"``; actions are indices ``"n"``
            (discrete) or ``"n e"`` vectors in the box (continuous).
        cost: the per-state cost at depth ``t >= 1``, ``(states "n d", t) -> "n"``; a sequence's
            cost is the sum over its states.
        horizon: steps of the level per plan.
        samples: beam width, or candidate sequences per iteration.
        iters: iterations of an iterative planner.
        elites: elites of a CEM.
        n_actions: discrete choices (env actions at level 0, the macro-action library above).
        action_spec: the level's action spec (its box serves continuous planners).
        init: a continuous planner's warm start ``"h e"`` (its previous plan, shifted), or None.
        generator: the random generator of stochastic planners.
    """

    start: Tensor
    step: StepFn
    cost: StepCost
    horizon: int
    samples: int
    iters: int
    elites: int
    n_actions: int
    action_spec: ActionSpec
    init: Tensor | None = None
    generator: torch.Generator | None = None

    def sequence_cost(self) -> SequenceCost:
        """Whole-sequence cost ``"n h" -> "n"`` (or ``"n h e" -> "n"``): roll the model out from
        ``start`` and sum the per-state costs."""

        def seq_cost(seqs: Tensor) -> Tensor:
            s = repeat(self.start, "d -> n d", n=seqs.shape[0])
            total = torch.zeros(seqs.shape[0])
            for t in range(seqs.shape[1]):
                s = self.step(s, seqs[:, t])
                total = total + self.cost(s, t + 1)
            return total

        return seq_cost


class Planner:
    """Base of every planner (the interface; subclasses override :meth:`search` and :meth:`calls`)."""

    kind: ClassVar[str] = ""
    """The registered name (set by ``@register_planner``)."""
    actions: ClassVar[str] = "discrete"
    memory: ClassVar[str | None] = None
    level0_only: ClassVar[bool] = False
    max_samples: ClassVar[int] = 65536
    """The widest budget a flat agent is given (:func:`widest_within`)."""

    def search(self, problem: SearchProblem) -> PlanResult:
        """The best action sequence found for ``problem``."""
        raise NotImplementedError

    @classmethod
    def calls(cls, horizon: int, samples: int, iters: int, n_actions: int) -> int:
        """Predictor calls of one search at this budget (the budget accounting of flat agents)."""
        raise NotImplementedError


def planners_acting(actions: str) -> list[str]:
    """The registered planners whose ``actions`` are ``actions`` ("discrete" or "continuous")."""
    return [name for name in planner_names() if get_planner(name).actions == actions]


def widest_within(planner: type[Planner], budget: float, horizon: int, iters: int, n_actions: int) -> int:
    """The most ``samples`` (beam width, candidates per iteration; at most the planner's
    ``max_samples``) whose :meth:`Planner.calls` plus the rollout of the chosen plan stay within
    ``budget`` predictor calls (at least 1)."""

    def fits(samples: int) -> bool:
        return planner.calls(horizon, samples, iters, n_actions) + horizon <= budget

    low, high = 1, planner.max_samples
    if not fits(low):
        return 1
    while low < high:  # calls grow with samples: the largest that fits
        mid = (low + high + 1) // 2
        low, high = (mid, high) if fits(mid) else (low, mid - 1)
    return low
