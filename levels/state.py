"""Level-0 kind for state-vector observations (``"b n"`` float), e.g. PointMaze's state."""

from __future__ import annotations

from torch import Tensor, nn

from hjepa.errors import SpecMismatchError
from hjepa.level import Level, LevelSpec, mlp
from hjepa.registry import register_level


class StateEncoder(nn.Module):
    """``"b n" -> "b d"``: an MLP ending in a LayerNorm (unit-scale states from the start)."""

    def __init__(self, n: int, dim: int, hidden: int, depth: int = 2) -> None:
        super().__init__()
        self.n = n
        self.net = mlp([n] + [hidden] * depth + [dim], norm_last=True)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.n:
            raise SpecMismatchError(f"State level expects observations of shape (b, {self.n}); got {tuple(x.shape)}.")
        return self.net(x.float())


@register_level("state")
class StateLevel(Level):
    """State vectors -> abstract state; env actions (discrete or continuous).

    args: ``depth`` (int, default 2): hidden layers of the encoder.
    """

    accepts = ("state",)

    @classmethod
    def from_spec(cls, spec: LevelSpec) -> "StateLevel":
        cfg = spec.config
        if len(spec.obs_spec.shape) != 1:
            raise SpecMismatchError(f"State observations must be vectors, got shape {spec.obs_spec.shape}.")
        return cls.with_encoder(spec, StateEncoder(spec.obs_spec.shape[0], cfg.dim, cfg.hidden, int(cfg.args.get("depth", 2))))
