"""One MiniGrid episode of an agent: the loop that evaluation (``run_episode``) and inspection
(``trace_episode``) share."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from hjepa.agents.base import Agent


@dataclass
class Walk:
    """What one episode did: the poses ``(x, y, heading)`` from the start, the agent's actions,
    the observations it saw (all of them with ``keep``, else the last), each decision's wall
    time in ms, whether it ended on the goal cell, and whether it stepped into lava."""

    poses: list[tuple[int, int, int]]
    actions: list[int] = field(default_factory=list)
    observations: list[np.ndarray] = field(default_factory=list)
    plan_ms: list[float] = field(default_factory=list)
    success: bool = False
    lava: bool = False


def walk(agent: Agent, nav, start: Sequence[int], goal: Sequence[int], goal_obs: np.ndarray,
         env_actions: Sequence[int], max_steps: int, observe: Callable | None = None, keep: bool = False) -> Walk:  # fmt: skip
    """Run ``agent`` in ``nav`` (a :class:`~hjepa.envs.minigrid_nav.GridNav`) from pose ``start``
    until it stands on cell ``goal``, steps into lava (a failure, as MiniGrid ends the episode)
    or has taken ``max_steps`` actions. ``observe(nav)`` gives the observation the agent sees
    (default: the symbolic grid); ``env_actions`` maps its action index to MiniGrid's."""
    observe = observe or (lambda n: n.observation())
    nav.set_pose(*start)
    seen = observe(nav)
    agent.reset(seen, goal_obs)
    out = Walk([nav.pose], observations=[seen], success=nav.pose[:2] == tuple(goal))
    while not out.success and not nav.in_lava and len(out.actions) < max_steps:
        t0 = time.perf_counter()
        a = agent.act(seen)
        out.plan_ms.append((time.perf_counter() - t0) * 1e3)
        nav.step(env_actions[a])
        seen = observe(nav)
        out.actions.append(a)
        out.poses.append(nav.pose)
        if keep:
            out.observations.append(seen)
        else:
            out.observations[-1] = seen
        out.success = nav.pose[:2] == tuple(goal) and not nav.in_lava
    out.lava = bool(nav.in_lava)
    return out
