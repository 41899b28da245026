"""MiniGrid layouts compared by content, so that held-out layouts are held out wherever they recur.

A layout seed is not a layout: FourRooms has about 4,096 door patterns, so among thousands of
random seeds most held-out layouts recur, wall for wall, under other seeds. Collection therefore
compares layouts by :func:`layout_key`, which keeps what a reset puts in the grid and what a
model of the layout learns from:

- kept: every cell's object type (wall, door, key, box, ball, lava, ...) and state (a door open,
  closed or locked), as at reset;
- left out: the agent (not part of the layout; its cell reads as empty floor), the goal square
  (collectors remove it, and evaluation tasks choose their own goal cells, so two layouts that
  differ only by the goal give the same training data), and colours (a recoloured copy of a
  held-out layout is the same maze, so it is held out too).

Leaving things out only makes more layouts equal, so the held-out set is never smaller than
"equal encodings". An env whose resets all give one layout (``MiniGrid-Empty-*``) can then hold
no layout out.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from minigrid.core.constants import OBJECT_TO_IDX

_EMPTY, _GOAL, _AGENT = OBJECT_TO_IDX["empty"], OBJECT_TO_IDX["goal"], OBJECT_TO_IDX["agent"]


def layout_key(encoding: np.ndarray) -> bytes:
    """The content key of a layout: equal keys mean the same layout.

    Args:
        encoding: ``(W, H, 3)`` uint8 MiniGrid encoding ``(OBJECT_IDX, COLOR_IDX, STATE)`` of a
            grid (``grid.encode()``, a :class:`~hjepa.envs.GridNav` encoding, or a fully
            observed observation, whose agent cell reads as empty floor).

    Returns:
        The grid's size followed by the object-type and state bytes of its cells, with the
        agent and the goal square as empty floor and colours dropped.

    Raises:
        ValueError: the array is not ``(W, H, 3)``.
    """
    enc = np.asarray(encoding)
    if enc.ndim != 3 or enc.shape[2] != 3:
        raise ValueError(f"A MiniGrid encoding has shape (W, H, 3), got {enc.shape}.")
    obj, state = enc[..., 0].astype(np.uint8), enc[..., 2].astype(np.uint8)
    blank = (obj == _AGENT) | (obj == _GOAL)
    obj, state = np.where(blank, _EMPTY, obj), np.where(blank, 0, state)
    size = np.asarray(enc.shape[:2], dtype=np.int32).tobytes()
    return size + obj.astype(np.uint8).tobytes() + state.astype(np.uint8).tobytes()


def layout_keys(encodings: Iterable[np.ndarray]) -> frozenset[bytes]:
    """The set of :func:`layout_key` of several encodings (e.g. of every held-out layout)."""
    return frozenset(layout_key(e) for e in encodings)
