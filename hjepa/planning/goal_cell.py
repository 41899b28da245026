"""Goals as cells for the "imagine" planner: which imagined states stand on the goal's cell.

A goal observation shows the agent on the goal cell with the layout as at the episode's start.
A state reaches that goal when its agent stands on the same cell, facing any way, whatever the
doors and keys hold; the codes that draw the agent come from the level itself
(``GridMapLevel.agent_codes``), never from the env.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from hjepa.planning.imagine import CellCodebook, SparseNodes


@dataclass(frozen=True)
class GoalCell:
    """A goal as a cell: a node reaches it when the code of flat cell ``cell`` is one of the
    agent's (``is_agent "q"`` over the codebook), whatever its other cells hold."""

    cell: int
    is_agent: np.ndarray

    def reached_by(self, nodes: SparseNodes, node: int) -> bool:
        code = nodes.diffs[node].get(self.cell, int(nodes.base.reshape(-1)[self.cell]))
        return bool(self.is_agent[code])


def goal_cell_of(goal: np.ndarray, is_agent: np.ndarray | None) -> GoalCell | None:
    """The :class:`GoalCell` of a goal map of code indices ``"w h"``: the one cell holding an
    agent code (None without agent codes, or unless exactly one cell holds one)."""
    if is_agent is None:
        return None
    cells = np.flatnonzero(is_agent[goal.reshape(-1)])
    return GoalCell(int(cells[0]), is_agent) if len(cells) == 1 else None


def agent_mask(level: torch.nn.Module, book: CellCodebook) -> np.ndarray | None:
    """``"q"`` bool over the codebook: the codes of the agent's cell, any heading (None when
    the level does not say which codes draw the agent)."""
    if not hasattr(level, "agent_codes"):
        return None
    index = {int(c): i for i, c in enumerate(book.codes.tolist())}
    mask = np.zeros(len(index), dtype=bool)
    for code in level.agent_codes().tolist():
        if int(code) in index:
            mask[index[int(code)]] = True
    return mask
