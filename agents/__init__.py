"""Agents that act in navigation environments behind one interface (:class:`Agent`).

``reset(obs, goal_obs)`` starts an episode, ``act(obs) -> action index`` returns one of the
env's actions (our index into the action spec), ``trace`` records what the agent decided at
each step and ``predictor_calls`` counts world-model calls in the episode.
"""

from hjepa.agents.base import Agent, make_agent, AGENTS
from hjepa.agents.planning import FlatAgent, HJEPAAgent, matched_flat_width
from hjepa.agents.simple import OracleAgent, RandomAgent

__all__ = ["AGENTS", "Agent", "FlatAgent", "HJEPAAgent", "OracleAgent", "RandomAgent", "make_agent", "matched_flat_width"]
