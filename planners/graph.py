"""Planners that walk a latent graph first: of the dataset's observations ("graph") or imagined
from the current observation ("imagine"). The hierarchy walks the graph
(:mod:`hjepa.planning.memory`, :mod:`hjepa.planning.imagine`); where it holds no path, the
level searches the model with the beam these planners inherit."""

from __future__ import annotations

from hjepa.planners.sequence import BeamPlanner
from hjepa.registry import register_planner


@register_planner("graph")
class GraphPlanner(BeamPlanner):
    """Shortest path on a level's latent graph of the dataset's observations
    (:mod:`hjepa.planning.graph`); any level."""

    memory = "dataset"


@register_planner("imagine")
class ImaginePlanner(BeamPlanner):
    """Level 0: shortest path on the graph the model imagines from the current observation
    (:mod:`hjepa.planning.imagine`); the levels above search with "beam"."""

    memory = "imagined"
    level0_only = True
