"""The two-level "imagine" planner: level 1's route of blocks, level 0's path inside it.

:class:`RoutePlanner` has the interface of :class:`~hjepa.planning.hierarchy.HierarchicalPlanner`
(``reset(goal_obs)``, ``act(obs) -> (action, StepTrace)``) and plans as
:mod:`hjepa.planning.coarse` describes. :func:`make_planner` picks it for a stack whose level 1
reads level 0's maps in blocks (``gridcoarse``) when the configurator plans with "imagine" and
lets two levels take part; every other stack gets the hierarchical planner.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hjepa.planning.coarse import BlockGraph, CoarseModel, Scene, agent_code_indices, reach_blocks, read_scene
from hjepa.planning.configurator import Configurator, PlanSpec, RuleConfigurator, check_configurator
from hjepa.planning.hierarchy import HierarchicalPlanner, LevelTrace, StepTrace
from hjepa.planning.graph import path_actions
from hjepa.planning.imagined_memory import ImaginedMemory
from hjepa.registry import get_planner

REROUTES = 16
"""Routes level 1 may plan per imagination after level 0 refuted an edge of the last one."""


def two_level_imagination(stack: torch.nn.Module, configurator: Configurator) -> bool:
    """Whether ``configurator`` plans ``stack`` with level 1's routes (:class:`RoutePlanner`)."""
    settings = check_configurator(configurator).settings
    return (get_planner(settings.planner).memory == "imagined" and settings.max_levels >= 2
            and stack.num_levels >= 2 and hasattr(stack.levels[1], "encode_map"))  # fmt: skip


def make_planner(stack: torch.nn.Module, configurator: Configurator, seed: int = 0,
                 memory: Tensor | None = None) -> "RoutePlanner | HierarchicalPlanner":  # fmt: skip
    """The planner of ``stack`` under ``configurator`` (module docstring)."""
    if two_level_imagination(stack, configurator):
        return RoutePlanner(stack, configurator, memory)
    return HierarchicalPlanner(stack, configurator, seed, memory)


class RouteMemory(ImaginedMemory):
    """Level 0's imagined graph, imagined inside level 1's route (module docstring)."""

    def __init__(self, stack: torch.nn.Module, obs: Tensor, max_nodes: int, near: int, doubt: float) -> None:
        super().__init__(stack, obs, max_nodes)
        self.model, self.level1 = CoarseModel(stack, self.book), stack.levels[1]
        self.agent = agent_code_indices(stack.levels[0], self.book)
        self.near, self.doubt = near, doubt
        self.scene: Scene | None = None
        self.blocks: BlockGraph | None = None
        self.background: Tensor | None = None
        self.route: list[tuple[int, int]] | None = None
        self.rerouted, self.level1_cost = False, 0.0
        self._entries: dict[tuple[int, int], Tensor | None] = {}
        self.level0_goal: Tensor | None = None

    def new_episode(self, goal: Tensor | None = None) -> None:
        super().new_episode(goal)
        self.level0_goal = goal
        self.scene, self.blocks, self.background, self.route = None, None, None, None

    def block_of(self, state0: Tensor) -> tuple[int, int]:
        """The agent's block in ``state0``, read in level 1's space."""
        return self.model.block_of(self.codes_of(state0), self.background)

    def _imagine(self, state0: Tensor) -> None:
        codes = self.codes_of(state0)
        if self.scene is None:  # the layout is read once an episode, from its first state
            self.scene = read_scene(codes, self.goal, self.agent)
            self.background = self.model.background(self.scene)
            self.blocks = self.model.graph(self.scene, self.doubt)
            self.level1_cost += self.blocks.cost
        goal_block = self.model.block_of(self.goal, self.background)
        self.rerouted = True
        for _ in range(REROUTES):
            self.route = self.blocks.route(self.model.block_of(codes, self.background), goal_block)
            if self.route is None or len(self.route) <= self.near:
                break
            self._imagine_in(state0, self.model.corridor(self.scene, self.route))
            if self._goal_found():
                return
            self._refute()
        self.route = None  # level 0 alone: a near goal, or level 1 found no route
        self._imagine_in(state0, None)

    def _imagine_in(self, state0: Tensor, corridor) -> None:
        super()._imagine_in(state0, corridor)
        self._entries = {}

    def _goal_found(self) -> bool:
        return self.current.graph.nodes.key_of(self.goal) in self.current.index

    def _refute(self) -> None:
        """Drop the route's edge out of the last of its blocks level 0 reached."""
        _, h = self.goal.shape
        reached = reach_blocks(self.current.graph.nodes.diffs, self.scene.is_agent, h, self.model.p)
        reached.add(self.route[0])
        last = max(i for i, b in enumerate(self.route) if b in reached)
        if last + 1 < len(self.route):
            self.blocks.drop(self.route[last], self.route[last + 1])

    def entry(self, state0: Tensor, block: tuple[int, int]) -> Tensor | None:
        """Level 1's state where the imagined path from ``state0`` to the goal first enters
        ``block`` (None off the path). The path of one imagination does not change as the agent
        walks it, so each block's entry is found once."""
        if block not in self._entries:
            self._entries[block] = self._find_entry(state0, block)
        return self._entries[block]

    def _find_entry(self, state0: Tensor, block: tuple[int, int]) -> Tensor | None:
        node, target = self.nearest(0, state0), self.nearest(0, self.level0_goal)
        if node < 0 or target < 0:
            return None
        _, visited = path_actions(self.current.graph.succ, self._distances(target), node, len(self.current.index))
        nodes = self.current.graph.nodes
        _, h = self.goal.shape
        for j in visited:
            if reach_blocks([nodes.diffs[j]], self.scene.is_agent, h, self.model.p) == {block}:
                return self.level1.encode(nodes[j][None])[0]
        return None

    def take_calls(self) -> tuple[float, float]:
        """Level 0's and level 1's predictions (map units) since last asked."""
        level0, self._unreported = self._unreported, 0.0
        level1, self.level1_cost = self.level1_cost, 0.0
        return level0, level1


class RoutePlanner:
    """Two levels plan by imagination (:mod:`hjepa.planning.coarse`).

    Args:
        stack: a trained stack, ``gridmap`` level 0 and ``gridcoarse`` level 1.
        configurator: a :class:`RuleConfigurator` with ``planner="imagine"``; its ``imagine_nodes``
            caps each imagination, ``near`` is the route length (blocks) at or below which
            level 0 plans alone and ``doubt`` what a route pays to cross a pair of blocks level
            1 doubts.
        memory: observations whose cell codes make level 0's codebook (the training data's).
    """

    def __init__(self, stack: torch.nn.Module, configurator: Configurator, memory: Tensor) -> None:
        self.stack = stack.eval()
        self.configurator = configurator
        rule = configurator if isinstance(configurator, RuleConfigurator) else RuleConfigurator()
        self.memory = RouteMemory(self.stack, memory, rule.imagine_nodes, rule.near, rule.doubt)
        self.goals: list[Tensor] = []
        self.t = 0

    @torch.no_grad()
    def reset(self, goal_obs: Tensor) -> None:
        self.goals = [g[0] for g in self.stack.encode(goal_obs[None])]
        self.memory.new_episode(self.goals[0])
        self.t = 0

    @torch.no_grad()
    def act(self, obs: Tensor) -> tuple[int, StepTrace]:
        """One step: replan where needed, then the next action down level 0's imagined path."""
        state0 = self.stack.encode(obs[None], upto=0)[0][0]
        self.memory.rerouted = False
        self.memory.observe(state0)
        actions = self.memory.actions
        plan = self.memory.plan(0, actions, state0, self.memory.nearest(0, self.goals[0]), 1)
        level0, level1 = self.memory.take_calls()
        action = int(plan.actions[0]) if len(plan.actions) else 0
        self.memory.took(state0, action)
        traces = [LevelTrace(0, "goal" if self.memory.route is None else "subgoal", True, plan.cost, math.nan,
                             level0, plan.actions.tolist(), None)]  # fmt: skip
        specs = [PlanSpec(level=0, horizon=1, planner="imagine")]
        if self.memory.route is not None:
            traces.append(self._level1_trace(state0, level1))
            specs.append(PlanSpec(level=1, horizon=len(self.memory.route) - 1, planner="imagine"))
        self.t += 1
        return action, StepTrace(self.t - 1, action, specs, traces, level0 + level1)

    def _level1_trace(self, state0: Tensor, calls: float) -> LevelTrace:
        """Level 1's route and its subgoal: the next block, as the coarse state of level 0's
        imagined path where it enters that block (:meth:`RouteMemory.entry`)."""
        route = self.memory.route
        here = self.memory.block_of(state0)
        i = route.index(here) if here in route else 0
        nxt = route[min(i + 1, len(route) - 1)]
        return LevelTrace(1, "goal", self.memory.rerouted, float(len(route) - 1 - i), math.nan, calls,
                          [list(b) for b in route], self.memory.entry(state0, nxt))  # fmt: skip
