"""Level kind ``gridcoarse``: a coarse spatial state over a ``gridmap`` level's map states.

The state is a map of blocks: every ``p x p`` block of the level below's cells becomes one
coarse cell holding those cells' states side by side (``c = c0 p^2`` channels, no
parameters), kept flat as ``"b (c W H)"`` with ``W = ceil(w / p)``. One step of this level
spans ``stride`` steps of the level below, driven by a latent macro-action inferred from their
chunk of actions. The predictor works on the cells of the blocks with dilated convolutions, so
"the agent runs into the next block, or a wall stops it" is one local rule learned once for
every place and layout. A map of blocks has ``p^2`` times fewer places than the map below: the
hierarchical "imagine" planner asks level 1 which blocks lead into which and searches that
graph for a route of blocks that level 0 then follows (:mod:`hjepa.planning.coarse`).

Every part is local, so the level trains on crops of the level below aligned to its blocks
(``gridmap``'s ``args.align``) and plans on the whole map with the same weights. A learned
block encoder (a strided convolution to 8 channels) was tried first and kept too little of
where the agent stands to predict its crossings (docs/design-notes.md).

Shapes: ``c`` coarse channels, ``c0`` the level below's channels, ``W H`` blocks, ``e`` latent actions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor, nn

from hjepa.errors import ConfigError, SpecMismatchError
from hjepa.level import Level, LevelSpec, mlp
from hjepa.levels.gridmap import conv_block
from hjepa.registry import register_level


def _sides(d: int, channels: int, full: tuple[int, int]) -> tuple[int, int]:
    """The sides ``(w, h)`` of a flat map state of ``d`` dims: the whole map's, else a square crop's."""
    if d == channels * full[0] * full[1]:
        return full
    k = math.isqrt(d // channels)
    if channels * k * k != d:
        raise SpecMismatchError(f"A map state of {channels} channels has {channels * full[0] * full[1]} dims "
                                f"(or a square crop's); got {d}.")  # fmt: skip
    return k, k


class BlockView(nn.Module):
    """``"b (c0 w h)" -> "b (c W H)"``, ``c = c0 p^2``: each ``p x p`` block's states side by side
    (zero-padded at the far edges); no parameters. The state keeps everything level 0 knows
    about the block, so a place the agent can reach stays tellable from one it cannot."""

    def __init__(self, below: int, full: tuple[int, int], block: int) -> None:
        super().__init__()
        self.below, self.full, self.block, self.channels = below, full, block, below * block * block

    def maps(self, s: Tensor) -> Tensor:
        """Flat states of the level below -> their spatial ``"b c0 w h"``, padded to whole blocks."""
        w, h = _sides(s.shape[-1], self.below, self.full)
        m = rearrange(s, "b (c w h) -> b c w h", c=self.below, w=w, h=h)
        p = self.block
        return F.pad(m, (0, -h % p, 0, -w % p))

    def forward_map(self, m: Tensor) -> Tensor:
        """``"b c0 w h"`` (sides multiples of the block) -> ``"b c W H"``."""
        return rearrange(m, "b c (W p) (H q) -> b (c p q) W H", p=self.block, q=self.block)

    def forward(self, s: Tensor) -> Tensor:
        return rearrange(self.forward_map(self.maps(s)), "b c w h -> b (c w h)")


class CoarsePredictor(nn.Module):
    """One step of ``stride`` env steps on a map of blocks: the blocks are laid out as cells
    again, ``depth`` dilated 3x3 convolutions (dilation 1, 2, 4, ...) read them with the latent
    action broadcast over every cell and predict the change, and the cells are grouped back
    into blocks. A run of moves is a shift of the agent's cell along free cells; the cell grid
    is where that rule is simple, and the dilations reach as far as ``stride`` moves go."""

    def __init__(self, below: int, block: int, action_dim: int, hidden: int, depth: int,
                 full: tuple[int, int]) -> None:  # fmt: skip
        super().__init__()
        self.below, self.block, self.full = below, block, full
        self.channels = below * block * block
        layers: list[nn.Module] = []
        sizes = [below + action_dim] + [hidden] * depth
        for i in range(depth):
            layers += [nn.Conv2d(sizes[i], sizes[i + 1], 3, padding=2**i, dilation=2**i), nn.GELU()]
        self.net = nn.Sequential(*layers, nn.Conv2d(hidden, below, 1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.radius = -(-(2**depth - 1) // block)  # blocks around a block that one step reads

    def step_map(self, m: Tensor, a: Tensor) -> Tensor:
        """``m: "b c W H"``, ``a: "b e"`` -> ``"b c W H"``."""
        p = self.block
        cells = rearrange(m, "b (c p q) W H -> b c (W p) (H q)", p=p, q=p)
        planes = repeat(a.to(m.dtype), "b e -> b e w h", w=cells.shape[2], h=cells.shape[3])
        cells = cells + self.net(torch.cat([cells, planes], dim=1))
        return rearrange(cells, "b c (W p) (H q) -> b (c p q) W H", p=p, q=p)

    def forward(self, s: Tensor, a: Tensor) -> Tensor:
        w, h = _sides(s.shape[-1], self.channels, self.full)
        m = rearrange(s, "b (c w h) -> b c w h", c=self.channels, w=w, h=h)
        return rearrange(self.step_map(m, a), "b c w h -> b (c w h)")


class CoarseInverse(nn.Module):
    """``"... (2 c W H)" -> "... e"``: convolutions over both coarse maps, max over blocks, linear."""

    def __init__(self, channels: int, action_dim: int, hidden: int, full: tuple[int, int]) -> None:
        super().__init__()
        self.channels, self.full = channels, full
        self.convs = nn.Sequential(conv_block([2 * channels, hidden, hidden], [3, 1]), nn.GELU())
        self.out = nn.Linear(hidden, action_dim)

    def forward(self, pair: Tensor) -> Tensor:
        lead = pair.shape[:-1]
        w, h = _sides(pair.shape[-1] // 2, self.channels, self.full)
        m = rearrange(pair.reshape(-1, pair.shape[-1]), "b (p c w h) -> b (p c) w h", p=2, c=self.channels, w=w, h=h)
        pooled = rearrange(F.adaptive_max_pool2d(self.convs(m), 1), "b c 1 1 -> b c")
        return self.out(pooled).reshape(*lead, -1)


@register_level("gridcoarse")
class GridCoarseLevel(Level):
    """A ``gridmap`` level's map states -> a map of blocks; latent macro-actions.

    ``dim`` is derived: ``below_channels * block^2 * ceil(w / block) * ceil(h / block)``; the
    config's ``dim`` is ignored. args: ``block`` (int, default 4): cells per block side;
    ``below_channels`` (int, default 4): the ``gridmap`` level's ``channels``; ``depth`` (int,
    default 4): the predictor's dilated convolutions (``2^depth - 1`` cells read around each
    cell; at least ``stride`` moves). Crops of the level below must be square and aligned to
    the blocks.
    """

    accepts = ("latent",)
    reads_crops = True

    @classmethod
    def from_spec(cls, spec: LevelSpec) -> "GridCoarseLevel":
        args, cfg = spec.config.args, spec.config
        if "channels" in args:
            raise ConfigError("gridcoarse: a block's state is the level below's states over its cells "
                              "(below_channels * block^2 channels); args.channels is not an option.")  # fmt: skip
        block, below, depth = (int(args.get(k, d)) for k, d in (("block", 4), ("below_channels", 4), ("depth", 4)))
        if block < 2 or below < 1 or depth < 1:
            raise ConfigError(f"gridcoarse: args.block must be >= 2, below_channels and depth >= 1; "
                              f"got {block}, {below} and {depth}.")  # fmt: skip
        if spec.obs_spec.kind != "grid" or len(spec.obs_spec.shape) != 3:
            raise ConfigError("gridcoarse reads a gridmap level 0's map states: observations must be grids.")
        w, h, _ = spec.obs_spec.shape
        if spec.input_dim != below * w * h:
            raise ConfigError(f"gridcoarse: the level below has {spec.input_dim} dims, not a gridmap map of "
                              f"{below} channels over {w} x {h} cells (set args.below_channels).")  # fmt: skip
        coarse = (-(-w // block), -(-h // block))
        action_encoder = mlp([cfg.stride * spec.below_action_dim, cfg.hidden, cfg.hidden, cfg.action_dim])
        predictor = CoarsePredictor(below, block, cfg.action_dim, cfg.hidden, depth, coarse)
        inverse = CoarseInverse(below * block * block, cfg.action_dim, cfg.hidden, coarse)
        return cls(spec, BlockView(below, (w, h), block), predictor, inverse, action_encoder)

    @property
    def block(self) -> int:
        return self.encoder.block

    @property
    def map_shape(self) -> tuple[int, int, int]:
        """``(c, W, H)`` of the whole map's coarse state."""
        w, h = self.encoder.full
        return self.encoder.channels, -(-w // self.block), -(-h // self.block)

    @property
    def dim(self) -> int:
        c, w, h = self.map_shape
        return c * w * h

    @property
    def locality(self) -> int:
        return self.predictor.radius

    def encode_map(self, m: Tensor) -> Tensor:
        """Spatial states of the level below ``"b c0 w h"`` (sides multiples of the block) -> ``"b c W H"``."""
        return self.encoder.forward_map(m)

    def predict_map(self, m: Tensor, a: Tensor) -> Tensor:
        """One step on coarse maps ``"b c W H"`` of any sides; ``a: "b e"`` latent actions."""
        return self.predictor.step_map(m, a)
