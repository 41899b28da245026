"""Level-0 kind with a spatial abstract state for MiniGrid's symbolic grid (``"b w h 3"`` uint8).

The state is a small feature map at the grid's own resolution, ``c`` channels per cell, kept as
a flat vector ``"b (c w h)"`` so that it obeys the level protocol. The predictor is
convolutional: it reads the map with the action broadcast over every cell and predicts the
change of the map. Moving one cell is then the same local operation everywhere on the grid,
learned once and shared by every position and layout, where a flat predictor must memorise it
pose by pose (docs/design-notes.md, "A spatial level-0 state", measures both).

Training on crops (``args.crop = k``): every part is local (per-cell encoder, 3x3 predictor and
inverse model, a max over cells), so the level can train on ``k x k`` crops of the map around
the agent and plan on the whole map with the same weights (a side the grid does not exceed is
kept whole). A crop holds the cells a step
changes and enough unchanged ones around them; the convolutions then cost ``k^2 / (w h)`` of
the whole map's (docs/design-notes.md, "crops", measures speed and success).

Shapes: ``c`` state channels, ``n`` env actions, ``w h`` the grid (or a crop's sides).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor, nn

from hjepa.errors import ConfigError, SpecMismatchError
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


AGENT = 10
"""MiniGrid's object index of the agent's cell (``OBJECT_TO_IDX["agent"]``)."""
MARGIN = 2
"""Cells a crop keeps between the agent and its edge: the agent's next cell and the cell
ahead of that one (a wall it may bump into) stay inside."""


class MapSides:
    """The spatial sides ``(w, h)`` a flat map state ``"b (c w h)"`` may have: the whole grid's,
    or a crop's, ``(min(k, w), min(k, h))`` (training only; ``crop`` is None when the crop
    would hold the whole grid)."""

    def __init__(self, channels: int, width: int, height: int, k: int = 0) -> None:
        self.c, self.full = channels, (width, height)
        self.crop = (min(k, width), min(k, height)) if k and (k < width or k < height) else None

    def of(self, d: int) -> tuple[int, int]:
        if d == self.c * self.full[0] * self.full[1]:
            return self.full
        if self.crop and d == self.c * self.crop[0] * self.crop[1]:
            return self.crop
        raise SpecMismatchError(f"A map state of {self.c} channels over {self.full} cells has "
                                f"{self.c * self.full[0] * self.full[1]} dims; got {d}.")  # fmt: skip


def crop_windows(obs: Tensor, sides: tuple[int, int], generator: torch.Generator | None = None,
                 align: int = 1) -> Tensor:  # fmt: skip
    """``"b t w h 3"`` -> ``"b t kw kh 3"`` (``sides``): one crop per window, the same for all its steps, at a
    random place that keeps the first step's agent ``MARGIN`` cells from the crop's edge (or as
    far as the grid's own edge allows), its corner on a multiple of ``align`` (the blocks of a
    coarse level above)."""
    b, _, w, h, _ = obs.shape
    agent = rearrange(obs[:, 0, :, :, 0] == AGENT, "b w h -> b (w h)")
    if not bool(agent.any(dim=1).all()):
        raise SpecMismatchError("Training on crops needs the agent's cell (object 10) in every window's first grid.")
    flat = agent.float().argmax(dim=1)
    xs, ys = (
        rearrange(_corner(pos, side, k, generator, align), "b -> b 1") + torch.arange(k, device=obs.device)
        for pos, side, k in ((flat // h, w, sides[0]), (flat % h, h, sides[1]))
    )
    rows = torch.arange(b, device=obs.device)
    cropped = obs[rearrange(rows, "b -> b 1 1"), :, rearrange(xs, "b x -> b x 1"), rearrange(ys, "b y -> b 1 y")]
    return rearrange(cropped, "b x y t c -> b t x y c")


def _corner(pos: Tensor, side: int, k: int, generator: torch.Generator | None, align: int = 1) -> Tensor:
    """Crop start along one axis: uniform over the multiples of ``align`` that keep ``pos``
    MARGIN from the crop's edges, clipped to the grid."""
    top = (side - k) // align
    lo = torch.div(pos - (k - 1 - MARGIN) + align - 1, align, rounding_mode="floor").clamp(0, top)
    hi = torch.div(pos - MARGIN, align, rounding_mode="floor").clamp(0, top).maximum(lo)
    u = torch.rand(pos.shape, generator=generator, device=pos.device)
    return (lo + (u * (hi - lo + 1).float()).long().clamp_max(hi - lo)) * align


class MapEncoder(nn.Module):
    """``"b w h 3"`` uint8 -> ``"b (c w h)"``: one-hot cells, a per-cell MLP (1x1 convolutions).

    Every cell is embedded on its own: the agent's direction lives in its own cell, and the
    predictor's 3x3 receptive field sees the neighbours a move depends on.
    """

    def __init__(self, sides: MapSides, hidden: int, colors: bool = True) -> None:
        super().__init__()
        self.cells = CellOneHot(*sides.full)
        self.convs = conv_block([CHANNELS, hidden, sides.c], [1, 1])
        self.sides, self.colors = sides, colors

    def check(self, obs: Tensor) -> None:
        k = self.sides.crop
        if k and tuple(obs.shape[1:]) == (*k, 3) and not obs.dtype.is_floating_point:
            return
        self.cells.check(obs)

    def one_hot(self, obs: Tensor) -> Tensor:
        return self.cells(self.visible(obs))

    def visible(self, obs: Tensor) -> Tensor:
        """``obs`` as the encoder reads it: with ``colors`` off, every cell's colour is 0."""
        if self.colors:
            return obs
        return torch.cat([obs[..., :1], torch.zeros_like(obs[..., 1:2]), obs[..., 2:]], dim=-1)

    def codes(self, obs: Tensor) -> Tensor:
        """The distinct visible cell codes of ``obs`` ``"... 3"``, ``"q"`` (one index per
        (object, colour, state), as :class:`CellOneHot` combines them)."""
        return torch.unique((self.visible(obs).to(torch.int32) * self.cells.radix).sum(-1))

    def embed_codes(self, codes: Tensor) -> Tensor:
        """Cell codes ``"q"`` -> their embeddings ``"q c"`` (every cell is embedded on its own)."""
        emb = self.convs(rearrange(self.cells.table[codes], "q ch -> q ch 1 1"))
        return rearrange(emb, "q c 1 1 -> q c")

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

    def __init__(self, sides: MapSides, n_actions: int, hidden: int) -> None:
        super().__init__()
        self.sides = sides
        self.net = conv_block([sides.c + n_actions, hidden, hidden, sides.c], [3, 1, 1])
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    radius: int = 1
    """Cells a prediction reads around each cell (one 3x3 convolution, then per-cell layers):
    a prediction on a crop is exact more than ``radius`` cells inside the crop's edges."""

    def forward(self, s: Tensor, a: Tensor) -> Tensor:
        w, h = self.sides.of(s.shape[-1])
        m = rearrange(s, "b (c w h) -> b c w h", c=self.sides.c, w=w, h=h)
        return rearrange(self.step_map(m, a), "b c w h -> b (c w h)")

    def step_map(self, m: Tensor, a: Tensor) -> Tensor:
        """``m: "b c w h"`` (any sides: the whole map or a crop), ``a: "b n"`` -> ``"b c w h"``."""
        planes = repeat(a.to(m.dtype), "b n -> b n w h", w=m.shape[2], h=m.shape[3])
        return m + self.net(torch.cat([m, planes], dim=1))


class MapInverse(nn.Module):
    """``"b (2 c w h)" -> "b n"``: convolutions over both maps, max over cells, linear."""

    def __init__(self, sides: MapSides, n_actions: int, hidden: int) -> None:
        super().__init__()
        self.sides = sides
        self.convs = nn.Sequential(conv_block([2 * sides.c, hidden, hidden], [3, 1]), nn.GELU())
        self.out = nn.Linear(hidden, n_actions)

    def forward(self, pair: Tensor) -> Tensor:
        """``pair: "... (2 c w h)"`` (any leading dims) -> ``"... n"``."""
        lead = pair.shape[:-1]
        w, h = self.sides.of(pair.shape[-1] // 2)
        m = rearrange(pair.reshape(-1, pair.shape[-1]), "b (p c w h) -> b (p c) w h", p=2, c=self.sides.c, w=w, h=h)
        # A max-pool's backward routes the gradient by index; amax's compares every cell with the
        # maximum, which took a quarter of a training step (same values).
        pooled = rearrange(F.adaptive_max_pool2d(self.convs(m), 1), "b c 1 1 -> b c")
        return self.out(pooled).reshape(*lead, -1)


@register_level("gridmap")
class GridMapLevel(Level):
    """MiniGrid symbolic observations -> a spatial abstract state; env actions (discrete).

    ``dim`` is derived: ``channels * w * h``; the config's ``dim`` is ignored.
    args: ``channels`` (int, default 4): state channels per cell; ``conv`` (int, default 32):
    hidden channels of the encoder, predictor and inverse model; ``crop`` (int, default 0):
    train on ``crop x crop`` crops around the agent (0: the whole map; a side no longer than
    ``crop`` stays whole; a one-level stack only, since the levels above read whole maps);
    ``colors`` (bool, default true): false embeds each cell's object and state only. MultiRoom's
    doors differ by colour alone, and a door's colour is hidden while the agent stands on it
    (MiniGrid draws the agent over it), so a state that kept colours could not predict the map
    the agent sees when it steps off; a JEPA drops what it cannot predict. ``code_margin``
    (float, default 0: off): the loss term ``"margin"`` keeps distinct cell codes' embeddings
    about this far apart (:meth:`own_terms`); ``align`` (int, default 1): training crops start on
    multiples of it (set it to the block of a ``gridcoarse`` level above).
    """

    accepts = ("grid",)
    align: int = 1
    """``args.align``: training crops start on multiples of this (a ``gridcoarse`` level's block)."""
    code_margin: float = 0.0
    """``args.code_margin`` (0: no ``"margin"`` term)."""

    @classmethod
    def from_spec(cls, spec: LevelSpec) -> "GridMapLevel":
        w, h, _ = spec.obs_spec.shape
        args = spec.config.args
        sides = MapSides(int(args.get("channels", 4)), w, h, _crop_arg(args.get("crop", 0)))
        hidden = int(args.get("conv", 32))
        n = spec.action_spec.input_dim
        colors = args.get("colors", True)
        if not isinstance(colors, bool):
            raise ConfigError(f"gridmap: args.colors must be true or false; got {colors!r}.")
        margin = args.get("code_margin", 0.0)
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin >= 0:
            raise ConfigError(f"gridmap: args.code_margin must be a number >= 0; got {margin!r}.")
        level = cls(spec, MapEncoder(sides, hidden, colors), MapPredictor(sides, n, hidden),
                    MapInverse(sides, n, hidden))  # fmt: skip
        level.code_margin = float(margin)
        level.align = _positive_int(args.get("align", 1), "align")
        return level

    @property
    def crops_training(self) -> bool:
        return bool(self.encoder.sides.crop)

    def training_view(self, obs: Tensor) -> Tensor:
        """Training windows ``"b t w h 3"`` -> crops ``"b t kw kh 3"`` around the agent (or as is)."""
        sides = self.encoder.sides.crop
        return crop_windows(obs, sides, align=self.align) if sides else obs

    @property
    def dim(self) -> int:
        w, h, _ = self.spec.obs_spec.shape
        return int(self.spec.config.args.get("channels", 4)) * w * h

    @property
    def map_shape(self) -> tuple[int, int, int]:
        """``(c, w, h)``: the state is ``"(c w h)"`` (critics read it spatially)."""
        w, h, _ = self.spec.obs_spec.shape
        return int(self.spec.config.args.get("channels", 4)), w, h

    def agent_codes(self) -> Tensor:
        """``(4,)`` the cell codes of the agent facing each heading (MiniGrid draws the agent in
        its cell as object 10, red, its state the heading), as :meth:`cell_codebook` numbers them."""
        cell = torch.tensor([[AGENT, 0, d] for d in range(4)], dtype=torch.int32)
        return (self.encoder.visible(cell) * self.encoder.cells.radix).sum(-1)

    @property
    def locality(self) -> int:
        """Cells around each cell that one prediction reads (:attr:`MapPredictor.radius`)."""
        return self.predictor.radius

    def predict_map(self, m: Tensor, a: Tensor) -> Tensor:
        """One step on spatial states ``m: "b c w h"`` of any sides; ``a: "b e"`` action inputs."""
        return self.predictor.step_map(m, a)

    @torch.no_grad()
    def cell_codebook(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """The distinct cell codes of ``obs`` (``"b w h 3"``) and their embeddings ``"q c"``.

        The encoder embeds every cell on its own, so an encoded map *is* one of these
        embeddings per cell: snapping a predicted map's cells onto them gives an exact encoded
        observation (the "imagine" planner, :mod:`hjepa.planning.imagine`).
        """
        self.encoder.check(obs)
        codes = self.encoder.codes(obs)
        return codes, self.encoder.embed_codes(codes)

    def own_terms(self, obs: Tensor) -> dict[str, Tensor]:
        """``"margin"`` with ``args.code_margin = m > 0``: ``sum relu(1 - |e_i - e_j| / m)^2``
        over the pairs of distinct cell codes in ``obs`` (``"b w h 3"``), their embeddings ``e``.

        The "imagine" planner snaps every predicted cell onto its nearest code, so two codes
        closer than the predictor's error flip anywhere on the map. Nothing else keeps apart
        codes whose dynamics differ only when the agent acts on them: MultiRoom's walls and
        closed doors (a toggle tells them apart) ended 0.41 apart, every far wall of a predicted
        map snapped onto a door, and imagined graphs never closed (docs/design-notes.md, MultiRoom).
        """
        if self.code_margin <= 0:
            return {}
        codes = self.encoder.codes(obs)
        if len(codes) < 2:
            return {}
        gaps = F.pdist(self.encoder.embed_codes(codes).float())
        return {"margin": F.relu(1 - gaps / self.code_margin).pow(2).sum()}

    def encode_both(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Online and target states from one shared one-hot."""
        self.encoder.check(x)
        one_hot = self.encoder.one_hot(x)
        with torch.no_grad():
            target = self.target_encoder.trunk(one_hot)
        return self.encoder.trunk(one_hot), target


def _crop_arg(value: object) -> int:
    """``args.crop`` checked: 0 or an int of at least ``2 * MARGIN + 1``."""
    k = value if isinstance(value, int) and not isinstance(value, bool) else -1
    if k != 0 and k < 2 * MARGIN + 1:
        raise ConfigError(f"gridmap: args.crop must be 0 (whole map) or an integer >= {2 * MARGIN + 1}; got {value!r}.")
    return k


def _positive_int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"gridmap: args.{name} must be an integer >= 1; got {value!r}.")
    return value
