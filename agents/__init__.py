"""Agents that act in navigation environments behind one interface (:class:`Agent`).

``reset(obs, goal_obs)`` starts an episode, ``act(obs)`` returns one of the env's actions (our
index into a discrete action spec, or a float vector in a continuous spec's box), ``trace`` records what the agent decided at
each step and ``predictor_calls`` counts world-model calls in the episode.
"""

from hjepa.agents.base import AGENTS, DEFAULT_AGENTS, Agent, make_agent
from hjepa.agents.planning import (FlatAgent, HJEPAAgent, UnboundedFlatAgent, imagine_nodes_for, matched_flat_samples,
                                   matched_flat_width)  # fmt: skip
from hjepa.agents.pointmaze import PointMazeOracleAgent
from hjepa.agents.simple import OracleAgent, RandomAgent

__all__ = ["AGENTS", "DEFAULT_AGENTS", "Agent", "FlatAgent", "HJEPAAgent", "OracleAgent", "PointMazeOracleAgent",
           "RandomAgent", "UnboundedFlatAgent", "imagine_nodes_for", "make_agent", "matched_flat_samples", "matched_flat_width"]  # fmt: skip
