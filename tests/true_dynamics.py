"""The env's own dynamics in a trained stack's spaces, for planner tests: a ``gridmap`` level
0's one-step moves and a ``gridcoarse`` level 1's runs of forward moves, on code maps read
through the codebook (walls and empty cells; the agent always stands on an empty cell)."""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange
from minigrid.core.constants import DIR_TO_VEC, OBJECT_TO_IDX

from hjepa.levels.grid import N_COLORS, N_STATES
from hjepa.levels.gridmap import AGENT

EMPTY = OBJECT_TO_IDX["empty"] * N_COLORS * N_STATES


def _agent(codes: torch.Tensor) -> tuple[int, int, int] | None:
    """``(x, y, heading)`` of the agent in a map of codes ``"w h"``, or None."""
    cells = torch.nonzero(codes // (N_COLORS * N_STATES) == AGENT)
    if len(cells) == 0:
        return None
    x, y = (int(v) for v in cells[0])
    return x, y, int(codes[x, y]) % N_STATES


def _forward(codes: torch.Tensor, x: int, y: int, d: int) -> tuple[int, int]:
    nx, ny = x + int(DIR_TO_VEC[d][0]), y + int(DIR_TO_VEC[d][1])
    inside = 0 <= nx < codes.shape[0] and 0 <= ny < codes.shape[1]
    return (nx, ny) if inside and int(codes[nx, ny]) == EMPTY else (x, y)


class GridDynamics:
    """Level 0's ``predict_map``: turn the agent, or move it one cell when the cell ahead is empty."""

    def __init__(self, book) -> None:
        self.book = book
        self.index = torch.full((int(book.codes.max()) + 1,), -1, dtype=torch.long)
        self.index[book.codes.long()] = torch.arange(len(book.codes))
        self.calls = 0

    def __call__(self, m: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        idx = self.book.nearest(rearrange(m, "b c w h -> b w h c"))
        codes = self.book.codes[idx].long()
        b, w, h = codes.shape
        flat = rearrange(codes, "b w h -> b (w h)")
        is_agent = flat // (N_COLORS * N_STATES) == AGENT
        rows = torch.nonzero(is_agent.any(1)).flatten()
        cell = is_agent.float().argmax(1)[rows]
        x, y, code = cell // h, cell % h, flat[rows, cell]
        d, act = code % N_STATES, a.argmax(1)[rows]
        turn = torch.where(act == 0, -1, 1)
        out = rearrange(idx.clone(), "b w h -> b (w h)")
        turning = act < 2
        out[rows[turning], cell[turning]] = self.index[(code - d + (d + turn) % 4)[turning]]
        vec = torch.from_numpy(np.array(DIR_TO_VEC))[d]
        nx, ny = x + vec[:, 0], y + vec[:, 1]
        inside = (nx >= 0) & (nx < w) & (ny >= 0) & (ny < h)
        ahead = flat[rows, (nx.clamp(0, w - 1) * h + ny.clamp(0, h - 1))]
        moving = ~turning & inside & (ahead == EMPTY)
        r, c = rows[moving], cell[moving]
        out[r, (nx * h + ny)[moving]] = out[r, c]
        out[r, c] = self.index[EMPTY]
        self.calls += len(a)
        return self.book.maps(rearrange(out, "b (w h) -> b w h", w=w))


class CoarseDynamics:
    """Level 1's ``encode_map`` and ``predict_map`` for the macro-action of ``stride`` forward
    moves: a coarse state marks the agent's block; a step moves the agent as the env would,
    except across the border between block columns ``blind`` and ``blind + 1``, where it is
    predicted to stay (a level 1 that missed those edges)."""

    def __init__(self, book, block: int, stride: int, channels: int, blind: int | None = None) -> None:
        self.book, self.block, self.stride, self.channels = book, block, stride, channels
        self.blind = blind
        self.last: torch.Tensor | None = None

    def encode_map(self, m: torch.Tensor) -> torch.Tensor:
        codes = self.book.codes[self.book.nearest(rearrange(m, "b c w h -> b w h c"))]
        self.last = codes
        return self._coarse(codes, [_agent(c) for c in codes])

    def _coarse(self, codes: torch.Tensor, agents: list) -> torch.Tensor:
        p = self.block
        out = torch.zeros(codes.shape[0], self.channels, codes.shape[1] // p, codes.shape[2] // p)
        for b, found in enumerate(agents):
            if found is not None:
                out[b, 0, found[0] // p, found[1] // p] = 1.0
        return out

    def predict_map(self, coarse: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """The agent of the last encoded maps, moved ``stride`` cells forward where it can."""
        agents = []
        for codes in self.last:
            found = _agent(codes)
            if found is not None:
                x, y, d = found
                for _ in range(self.stride):
                    x, y = _forward(codes, x, y, d)
                crossed = {found[0] // self.block, x // self.block} == {self.blind, (self.blind or 0) + 1}
                found = found if crossed else (x, y, d)
            agents.append(found)
        return self._coarse(self.last, agents)


def codebook_observations(nav) -> torch.Tensor:
    """``"4 w h 3"``: the layout with the agent on its first free cell facing each heading
    (every cell code of the layout appears: the codebook's data)."""
    x, y = (int(v) for v in nav.free_cells()[0])
    obs = []
    for d in range(4):
        nav.set_pose(x, y, d)
        obs.append(nav.observation().copy())
    return torch.from_numpy(np.stack(obs))


class FarFlips:
    """The true dynamics, plus one wrong cell on every prediction: the cell 3 cells from the
    agent along the map's first axis (a predictor that now and then flips a far cell)."""

    def __init__(self, true_step: GridDynamics, is_agent: np.ndarray) -> None:
        self.true_step, self.is_agent = true_step, torch.from_numpy(is_agent)

    def __call__(self, m: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        book = self.true_step.book
        idx = book.nearest(rearrange(self.true_step(m, a), "b c w h -> b w h c"))
        for j in range(len(idx)):
            cells = torch.nonzero(self.is_agent[idx[j]])
            if len(cells):
                x, y = (int(v) for v in cells[0])
                fx = x + 3 if x + 3 < idx.shape[1] else x - 3
                idx[j, fx, y] = (idx[j, fx, y] + 1) % len(book.codes)
        return book.maps(idx)
