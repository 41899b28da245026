"""Per-seed layout simulators of one MiniGrid env: :func:`layout_nav` and :class:`LayoutCache`."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from hjepa.envs.minigrid_nav import GridNav, make_minigrid

def layout_nav(env_id: str, layout_seed: int, remove_goal: bool = True, **kwargs: Any) -> GridNav:
    """The :class:`GridNav` of ``env_id``'s layout after ``reset(seed=layout_seed)``."""
    env = make_minigrid(env_id, **kwargs)
    try:
        env.reset(seed=int(layout_seed))
        return GridNav.from_env(env, remove_goal=remove_goal)
    finally:
        env.close()


class LayoutCache:
    """Per-seed :class:`GridNav` of one env, built once (``env.reset`` costs ~1 ms).

    Least-recently-used entries beyond ``capacity`` are dropped, so that collecting over
    millions of random layouts keeps bounded memory. Entries are shared: :meth:`get` resets
    the returned simulator to its start pose and initial doors.
    """

    def __init__(self, env_id: str, remove_goal: bool = True, capacity: int = 4096, **kwargs: Any) -> None:
        """Build the env once; ``kwargs`` go to :func:`make_minigrid`."""
        self.env_id = env_id
        self.env = make_minigrid(env_id, **kwargs)
        self.remove_goal = remove_goal
        self.capacity = int(capacity)
        self._navs: OrderedDict[int, GridNav] = OrderedDict()

    def get(self, layout_seed: int) -> GridNav:
        """The reset simulator of layout ``layout_seed``."""
        seed = int(layout_seed)
        nav = self._navs.pop(seed, None)
        if nav is None:
            self.env.reset(seed=seed)
            nav = GridNav.from_env(self.env, remove_goal=self.remove_goal)
        else:
            nav.reset()
        self._navs[seed] = nav
        if len(self._navs) > self.capacity:
            self._navs.popitem(last=False)
        return nav
