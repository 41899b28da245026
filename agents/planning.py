"""Planning agents on a trained stack: the full hierarchy and the flat level-0 planner."""

from __future__ import annotations

import numpy as np
import torch

from hjepa.agents.base import Agent
from hjepa.errors import SpecMismatchError
from hjepa.planning.configurator import Configurator, PlanSpec, RuleConfigurator
from hjepa.planning.imagine import node_cost
from hjepa.planning.routes import make_planner
from hjepa.planning.search import widest_within
from hjepa.registry import get_planner


def _as_obs(stack: torch.nn.Module, obs: np.ndarray, what: str) -> torch.Tensor:
    spec = stack.obs_spec
    if tuple(obs.shape) != tuple(spec.shape):
        raise SpecMismatchError(f"The {what} has shape {tuple(obs.shape)}; the model was trained on {tuple(spec.shape)}.")
    return torch.from_numpy(np.ascontiguousarray(obs)).to(getattr(torch, spec.dtype))


class HJEPAAgent(Agent):
    """The full stack: every level, cost module, configurator and hierarchical MPC.

    ``memory``: observations for the "graph" planner (the training dataset's distinct ones).
    """

    name = "hjepa"

    def __init__(self, stack: torch.nn.Module, configurator: Configurator | None = None, seed: int = 0,
                 memory: torch.Tensor | None = None) -> None:  # fmt: skip
        super().__init__()
        self.stack = stack
        self.planner = make_planner(stack, configurator or RuleConfigurator(), seed, memory)

    def _reset(self, obs: np.ndarray, goal_obs: np.ndarray) -> None:
        _as_obs(self.stack, obs, "observation")
        self.planner.reset(_as_obs(self.stack, goal_obs, "goal observation"))

    def _act(self, obs: np.ndarray) -> int | np.ndarray:
        action, trace = self.planner.act(_as_obs(self.stack, obs, "observation"))
        self.trace.append(trace)
        self.predictor_calls += trace.calls
        return action if isinstance(action, int) else action.numpy().astype(np.float32)


def beam_calls(n_actions: int, depth: int, width: int) -> int:
    """Predictor calls of one :func:`~hjepa.planning.planners.beam_search` plus the rollout of
    the chosen plan."""
    return get_planner("beam").calls(depth, width, 1, n_actions) + depth


def matched_flat_width(budget: float, n_actions: int, depth: int) -> int:
    """The widest level-0 beam whose calls per env step stay within ``budget`` (at least 1)."""
    return widest_within(get_planner("beam"), budget, depth, 1, n_actions)


def matched_flat_samples(budget: float, depth: int, iters: int) -> int:
    """The most samples per iteration of a continuous planner (``iters`` iterations over
    ``depth`` steps, plus the rollout of the chosen plan) within ``budget`` calls per env step
    (at least 1)."""
    return widest_within(get_planner("gaussian_cem"), budget, depth, iters, 0)


def flat_width(stack: torch.nn.Module, budget: float, horizon: int, iters: int = PlanSpec.iters,
               planner: str | None = None) -> int:  # fmt: skip
    """The flat agent's level-0 width at ``budget`` (beam width or samples per iteration) for
    ``planner`` (default: "beam" with discrete env actions, "gaussian_cem" with continuous ones;
    a planner on a graph is charged as the beam it searches with where the graph has no path)."""
    name = planner or ("beam" if stack.action_spec.is_discrete else "gaussian_cem")
    return widest_within(get_planner(name), budget, horizon, iters, stack.action_spec.n)


class FlatAgent(HJEPAAgent):
    """Level 0 alone, with its own cost module (critic to the goal), the same planner and the
    same budget: a beam of ``horizon`` steps whose width is set so that its predictor calls
    per env step match ``budget`` (the hierarchy's measured calls per step). With continuous
    env actions it plans with ``continuous_planner`` (the hierarchy's level-0 planner), its
    samples per iteration set the same way (:func:`matched_flat_samples`). With
    ``planner="graph"`` it plans on level 0's latent graph of ``memory``, as the hierarchy's
    level 0 does, and searches with the matched beam where the graph has no path; with
    ``planner="imagine"`` on the graph it imagines of the current layout (``memory``: the
    observations of its codebook)."""

    name = "flat"

    def __init__(self, stack: torch.nn.Module, budget: float, horizon: int = 8, seed: int = 0,
                 use_critic: bool = True, continuous_planner: str = "gaussian_cem", planner: str = "beam",
                 memory: torch.Tensor | None = None, imagine_nodes: int = 8192) -> None:  # fmt: skip
        level0 = planner if stack.action_spec.is_discrete else continuous_planner
        self.width = flat_width(stack, budget, horizon, planner=level0)
        self.budget = budget
        cfg = RuleConfigurator(max_levels=1, flat_horizon=horizon, width0=self.width, use_critic=use_critic,
                               continuous_planner=continuous_planner, planner=planner,
                               imagine_nodes=imagine_nodes)  # fmt: skip
        super().__init__(stack, cfg, seed, memory)


UNBOUNDED_NODES = 10**7
"""An imagination cap no maze of the suites reaches (129 x 129 MazeRooms: ~51k poses)."""


def imagine_nodes_for(stack: torch.nn.Module, episode_budget: float) -> int:
    """The imagined nodes a flat "imagine" agent may hold within ``episode_budget`` map units
    (one whole-map level-0 prediction each) for a whole episode: a node costs one prediction per
    action on a :data:`~hjepa.planning.imagine.WINDOW`-sided crop."""
    w, h = stack.obs_spec.shape[:2]
    return max(1, int(episode_budget / node_cost(w, h, stack.action_spec.n)))


class UnboundedFlatAgent(FlatAgent):
    """The flat "imagine" agent with no cap on its imagination: the compute a single level
    needs to reach the goal, against which the hierarchy's saving is measured."""

    name = "flat-unbounded"

    def __init__(self, stack: torch.nn.Module, seed: int = 0, memory: torch.Tensor | None = None) -> None:
        super().__init__(stack, 1.0, seed=seed, use_critic=False, planner="imagine", memory=memory,
                         imagine_nodes=UNBOUNDED_NODES)  # fmt: skip
