"""Level-0 kind for MiniGrid's full symbolic observation (``"b w h 3"`` uint8, indexed [x][y]).

Cells are one-hot encoded (11 object + 6 colour + 4 state/direction channels = 21) and read by
two stride-2 convolutions, flattened (not pooled: pooling loses the agent's position) and
projected to ``dim``. On 2 CPU threads this trained at 9,000 samples/s, where nn.Embedding with
full-resolution convolutions trained at 1,900 (docs/design-notes.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from hjepa.errors import SpecMismatchError
from hjepa.level import Level, LevelSpec
from hjepa.registry import register_level

N_OBJECTS, N_COLORS, N_STATES = 11, 6, 4
CHANNELS = N_OBJECTS + N_COLORS + N_STATES


class CellOneHot(nn.Module):
    """``"b w h 3"`` integer cells -> ``"b 21 w h"`` float one-hot, with the shape check.

    The one-hot is a lookup of a fixed table by the cell's combined (object, colour, state)
    index, produced directly in channels-last layout, which convolutions read fastest on CPU.
    """

    def __init__(self, width: int, height: int) -> None:
        super().__init__()
        self.width, self.height = width, height
        table = torch.zeros(N_OBJECTS * N_COLORS * N_STATES, CHANNELS)
        for i in range(table.shape[0]):
            obj, rest = divmod(i, N_COLORS * N_STATES)
            color, state = divmod(rest, N_STATES)
            table[i, [obj, N_OBJECTS + color, N_OBJECTS + N_COLORS + state]] = 1.0
        self.register_buffer("table", table, persistent=False)
        self.register_buffer("radix", torch.tensor([N_COLORS * N_STATES, N_STATES, 1], dtype=torch.int32), persistent=False)

    def check(self, obs: Tensor) -> None:
        if obs.shape[1:] != (self.width, self.height, 3):
            raise SpecMismatchError(
                f"Grid level expects observations of shape (b, {self.width}, {self.height}, 3); "
                f"got {tuple(obs.shape)}."
            )
        if obs.dtype.is_floating_point:
            raise SpecMismatchError(f"Grid level expects integer cell codes (uint8); got {obs.dtype}.")

    def forward(self, obs: Tensor) -> Tensor:
        idx = (obs.to(torch.int32) * self.radix).sum(-1)
        return rearrange(F.embedding(idx, self.table), "b w h c -> b c w h")


class GridEncoder(nn.Module):
    """``"b w h 3"`` uint8 -> ``"b d"``: one-hot cells, conv(s2), conv(s2), flatten, linear."""

    def __init__(self, width: int, height: int, dim: int, channels: int = 32) -> None:
        super().__init__()
        self.cells = CellOneHot(width, height)
        c = channels
        self.convs = nn.Sequential(
            nn.Conv2d(CHANNELS, c, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.ReLU(),
        )  # fmt: skip
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, CHANNELS, width, height)).numel()
        self.proj = nn.Sequential(nn.Linear(flat, dim), nn.LayerNorm(dim, elementwise_affine=False))

    def one_hot(self, obs: Tensor) -> Tensor:
        """``"b w h 3"`` integer cells -> ``"b 21 w h"`` float one-hot (channels-last memory)."""
        return self.cells(obs)

    def check(self, obs: Tensor) -> None:
        self.cells.check(obs)

    def trunk(self, one_hot: Tensor) -> Tensor:
        """``"b 21 w h"`` one-hot -> ``"b d"``."""
        return self.proj(rearrange(self.convs(one_hot), "b c w h -> b (c w h)"))

    def forward(self, obs: Tensor) -> Tensor:
        self.check(obs)
        return self.trunk(self.one_hot(obs))


@register_level("grid")
class GridLevel(Level):
    """MiniGrid symbolic observations -> abstract state; env actions (discrete).

    args: ``channels`` (int, default 32): width of the first convolution.
    """

    accepts = ("grid",)

    @classmethod
    def from_spec(cls, spec: LevelSpec) -> "GridLevel":
        cfg = spec.config
        w, h, c = spec.obs_spec.shape
        if c != 3:
            raise SpecMismatchError(f"Grid observations must have 3 channels per cell, got shape {spec.obs_spec.shape}.")
        return cls.with_encoder(spec, GridEncoder(w, h, cfg.dim, channels=int(cfg.args.get("channels", 32))))

    def encode_both(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Online and target states from one shared one-hot (the costliest step of the encoder)."""
        self.encoder.check(x)
        one_hot = self.encoder.one_hot(x)
        with torch.no_grad():
            target = self.target_encoder.trunk(one_hot)
        return self.encoder.trunk(one_hot), target
