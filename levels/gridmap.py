"""Level-0 kind with a spatial abstract state for MiniGrid's symbolic grid (``"b w h 3"`` uint8).

The state is a small feature map at the grid's own resolution, ``c`` channels per cell, kept as
a flat vector ``"b (c w h)"`` so that it obeys the level protocol. The predictor is
convolutional: it reads the map with the action broadcast over every cell and predicts the
change of the map. Moving one cell is then the same local operation everywhere on the grid,
learned once and shared by every position and layout, where a flat predictor must memorise it
pose by pose (docs/results.md measures both).

Shapes: ``c`` state channels, ``n`` env actions, ``w h`` the grid.
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

from hjepa.level import Level, LevelSpec
from hjepa.levels.grid import CHANNELS, CellOneHot
from hjepa.registry import register_level


def conv_block(sizes: list[int], kernels: list[int]) -> nn.Sequential:
    """Same-padding convolutions of ``sizes`` channels and ``kernels`` sizes, GELU between them."""
    layers: list[nn.Module] = []
    for i, k in enumerate(kernels):
        layers.append(nn.Conv2d(sizes[i], sizes[i + 1], k, padding=k // 2))
        if i < len(sizes) - 2:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


class MapEncoder(nn.Module):
    """``"b w h 3"`` uint8 -> ``"b (c w h)"``: one-hot cells, a per-cell MLP (1x1 convolutions).

    Every cell is embedded on its own: the agent's direction lives in its own cell, and the
    predictor's 3x3 receptive field sees the neighbours a move depends on.
    """

    def __init__(self, width: int, height: int, channels: int, hidden: int) -> None:
        super().__init__()
        self.cells = CellOneHot(width, height)
        self.convs = conv_block([CHANNELS, hidden, channels], [1, 1])
        self.width, self.height = width, height

    def check(self, obs: Tensor) -> None:
        self.cells.check(obs)

    def one_hot(self, obs: Tensor) -> Tensor:
        return self.cells(obs)

    def trunk(self, one_hot: Tensor) -> Tensor:
        return rearrange(self.convs(one_hot), "b c w h -> b (c w h)")

    def forward(self, obs: Tensor) -> Tensor:
        self.check(obs)
        return self.trunk(self.one_hot(obs))


class MapPredictor(nn.Module):
    """``s' = s + Conv([map(s), broadcast(a)])`` over the grid; ``a: "b n"`` (one-hot or soft).

    A 3x3 convolution then a per-cell layer: a move of one cell is a local rule, so one 3x3
    receptive field is enough (the cell ahead, the agent's own cell and its direction).
    """

    def __init__(self, channels: int, width: int, height: int, n_actions: int, hidden: int) -> None:
        super().__init__()
        self.c, self.w, self.h = channels, width, height
        self.net = conv_block([channels + n_actions, hidden, hidden, channels], [3, 1, 1])
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, s: Tensor, a: Tensor) -> Tensor:
        m = rearrange(s, "b (c w h) -> b c w h", c=self.c, w=self.w, h=self.h)
        planes = repeat(a.to(s.dtype), "b n -> b n w h", w=self.w, h=self.h)
        delta = self.net(torch.cat([m, planes], dim=1))
        return s + rearrange(delta, "b c w h -> b (c w h)")


class MapInverse(nn.Module):
    """``"b (2 c w h)" -> "b n"``: convolutions over both maps, max over cells, linear."""

    def __init__(self, channels: int, width: int, height: int, n_actions: int, hidden: int) -> None:
        super().__init__()
        self.c, self.w, self.h = channels, width, height
        self.convs = nn.Sequential(conv_block([2 * channels, hidden, hidden], [3, 1]), nn.GELU())
        self.out = nn.Linear(hidden, n_actions)

    def forward(self, pair: Tensor) -> Tensor:
        """``pair: "... (2 c w h)"`` (any leading dims) -> ``"... n"``."""
        lead = pair.shape[:-1]
        m = rearrange(pair.reshape(-1, pair.shape[-1]), "b (p c w h) -> b (p c) w h", p=2, c=self.c, w=self.w, h=self.h)
        return self.out(self.convs(m).amax(dim=(2, 3))).reshape(*lead, -1)


@register_level("gridmap")
class GridMapLevel(Level):
    """MiniGrid symbolic observations -> a spatial abstract state; env actions (discrete).

    ``dim`` is derived: ``channels * w * h``; the config's ``dim`` is ignored.
    args: ``channels`` (int, default 4): state channels per cell; ``conv`` (int, default 32):
    hidden channels of the encoder, predictor and inverse model.
    """

    accepts = ("grid",)

    @classmethod
    def from_spec(cls, spec: LevelSpec) -> "GridMapLevel":
        w, h, _ = spec.obs_spec.shape
        c = int(spec.config.args.get("channels", 4))
        hidden = int(spec.config.args.get("conv", 32))
        n = spec.action_spec.input_dim
        return cls(spec, MapEncoder(w, h, c, hidden), MapPredictor(c, w, h, n, hidden), MapInverse(c, w, h, n, hidden))

    @property
    def dim(self) -> int:
        w, h, _ = self.spec.obs_spec.shape
        return int(self.spec.config.args.get("channels", 4)) * w * h

    @property
    def map_shape(self) -> tuple[int, int, int]:
        """``(c, w, h)``: the state is ``"(c w h)"`` (critics read it spatially)."""
        w, h, _ = self.spec.obs_spec.shape
        return int(self.spec.config.args.get("channels", 4)), w, h

    def encode_both(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Online and target states from one shared one-hot."""
        self.encoder.check(x)
        one_hot = self.encoder.one_hot(x)
        with torch.no_grad():
            target = self.target_encoder.trunk(one_hot)
        return self.encoder.trunk(one_hot), target
