"""Fast rasteriser: a continuous maze and the agent's position -> a small top-down RGB image.

MuJoCo's renderer needs OpenGL and costs milliseconds per frame. An image world model only
needs the walls and where the agent is, so the walls are drawn once (``tile`` pixels per
cell) and each frame pastes an anti-aliased disk on a copy of that background: only the few
pixels under the disk are computed, for a whole batch of positions at once.

Colours: free floor black, walls grey, the agent red. Pixel ``(r, c)`` covers the square of
side ``scaling / tile`` whose centre is ``x = -w + (c + 0.5) * s / tile``,
``y = h - (r + 0.5) * s / tile`` (rows go down, y goes up: the map reads as it is written).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np

from hjepa.errors import ConfigError

if TYPE_CHECKING:
    from hjepa.envs.maze_oracle import MazeMap

FLOOR_RGB = (0, 0, 0)
WALL_RGB = (128, 128, 128)
AGENT_RGB = (255, 0, 0)


class MazeRaster:
    """Renders positions ``"... 2"`` (metres) in ``maze`` as ``"... h w 3"`` uint8 images.

    Args:
        maze: the map.
        tile: pixels per cell side (>= 2).
        agent_radius: radius of the agent's disk in cells; at least 1.5 pixels so that it
            stays visible in small images.
    """

    def __init__(self, maze: "MazeMap", tile: int = 8, agent_radius: float = 0.3) -> None:
        if int(tile) < 2:
            raise ConfigError(f"tile must be >= 2 pixels per cell, got {tile}.")
        self.maze, self.tile = maze, int(tile)
        rows, cols = maze.shape
        self.shape = (rows * self.tile, cols * self.tile, 3)
        self.radius = max(1.5, agent_radius * self.tile)  # pixels
        walls = np.repeat(np.repeat(maze.walls, self.tile, axis=0), self.tile, axis=1)
        self.background = np.where(walls[..., None], np.uint8(WALL_RGB), np.uint8(FLOOR_RGB)).astype(np.uint8)
        self._patch = np.arange(2 * math.ceil(self.radius) + 2)  # pixels a disk can touch, per axis

    def to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """Positions ``"... 2"`` in metres -> ``"... 2"`` (row, col) in pixel-centre units."""
        (w, h), px = self.maze.extent, self.tile / self.maze.scaling
        xy = np.asarray(xy, dtype=np.float64)
        return np.stack([(h - xy[..., 1]) * px - 0.5, (xy[..., 0] + w) * px - 0.5], axis=-1)

    def render(self, xy: np.ndarray | Sequence[float], out: np.ndarray | None = None) -> np.ndarray:
        """Images of the agent at ``xy "... 2"``: ``"... h w 3"`` uint8 (``out`` if given)."""
        xy = np.asarray(xy, dtype=np.float64)
        batch = xy.shape[:-1]
        shape = (*batch, *self.shape)
        if out is None:
            out = np.empty(shape, dtype=np.uint8)
        elif out.shape != shape or out.dtype != np.uint8:
            raise ValueError(f"out must be uint8 of shape {shape}, got {out.dtype} {out.shape}.")
        flat = out.reshape(-1, *self.shape)
        flat[...] = self.background
        centre = self.to_pixels(xy.reshape(-1, 2))  # "n 2"
        rows, cols = self._window(centre)  # "n p" each
        d2 = (rows[:, :, None] - centre[:, 0, None, None]) ** 2 + (cols[:, None, :] - centre[:, 1, None, None]) ** 2
        cover = np.clip(self.radius + 0.5 - np.sqrt(d2), 0.0, 1.0)[..., None]  # "n p p 1"
        n = np.arange(len(centre))[:, None, None]
        r, c = rows[:, :, None], cols[:, None, :]
        under = flat[n, r, c].astype(np.float32)
        flat[n, r, c] = np.round(under * (1.0 - cover) + np.float32(AGENT_RGB) * cover).astype(np.uint8)
        return out

    def _window(self, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel rows and columns ``"n p"`` around each centre, clipped to the image."""
        h, w = self.shape[:2]
        top = np.floor(centre - self.radius).astype(np.int64)  # "n 2"
        rows = np.clip(top[:, :1] + self._patch[None], 0, h - 1)
        cols = np.clip(top[:, 1:] + self._patch[None], 0, w - 1)
        return rows, cols
