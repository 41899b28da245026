"""The agent interface and the name registry used by ``hjepa evaluate`` and ``hjepa bench``."""

from __future__ import annotations

from typing import Any

import numpy as np

from hjepa.errors import UnknownNameError, did_you_mean

AGENTS = ("hjepa", "flat", "flat-unbounded", "random", "oracle")
DEFAULT_AGENTS = ("hjepa", "flat", "random", "oracle")
"""The agents a suite runs unless it names others (``flat-unbounded``: the scale suites)."""


class Agent:
    """Base class: subclasses implement :meth:`_reset` and :meth:`_act`.

    Attributes:
        name: the agent's name in reports.
        trace: one entry per env step (planning agents: a ``StepTrace`` with every level).
        predictor_calls: world-model predictor calls made in the current episode.
    """

    name = "agent"

    def __init__(self) -> None:
        self.trace: list[Any] = []
        self.predictor_calls = 0

    def reset(self, obs: np.ndarray, goal_obs: np.ndarray) -> None:
        """Start an episode at observation ``obs`` with the goal given as an observation."""
        self.trace, self.predictor_calls = [], 0
        self._reset(np.asarray(obs), np.asarray(goal_obs))

    def act(self, obs: np.ndarray) -> int | np.ndarray:
        """The next action: an index into a discrete action spec, or a float vector ``(e,)``
        inside a continuous spec's box."""
        return self._act(np.asarray(obs))

    def _reset(self, obs: np.ndarray, goal_obs: np.ndarray) -> None:
        raise NotImplementedError

    def _act(self, obs: np.ndarray) -> int | np.ndarray:
        raise NotImplementedError


def make_agent(name: str, **kwargs: Any) -> Agent:
    """Build agent ``name`` (one of :data:`AGENTS`) from keyword arguments."""
    from hjepa.agents.planning import FlatAgent, HJEPAAgent, UnboundedFlatAgent
    from hjepa.agents.simple import OracleAgent, RandomAgent

    table = {"hjepa": HJEPAAgent, "flat": FlatAgent, "flat-unbounded": UnboundedFlatAgent, "random": RandomAgent,
             "oracle": OracleAgent}  # fmt: skip
    if name not in table:
        raise UnknownNameError(f"Unknown agent '{name}'. Agents: {', '.join(AGENTS)}.{did_you_mean(name, AGENTS)}")
    return table[name](**kwargs)
