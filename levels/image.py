"""Level-0 kind for top-down RGB images (``"b h w 3"`` uint8)."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from hjepa.errors import SpecMismatchError
from hjepa.level import Level, LevelSpec
from hjepa.registry import register_level


class ImageEncoder(nn.Module):
    """``"b h w 3"`` uint8 -> ``"b d"``: three stride-2 convolutions, flatten, linear."""

    def __init__(self, height: int, width: int, dim: int, channels: int = 32) -> None:
        super().__init__()
        self.height, self.width = height, width
        c = channels
        self.convs = nn.Sequential(
            nn.Conv2d(3, c, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1), nn.ReLU(),
        )  # fmt: skip
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, 3, height, width)).numel()
        self.proj = nn.Sequential(nn.Linear(flat, dim), nn.LayerNorm(dim, elementwise_affine=False))

    def forward(self, img: Tensor) -> Tensor:
        if img.shape[1:] != (self.height, self.width, 3):
            raise SpecMismatchError(
                f"Image level expects observations of shape (b, {self.height}, {self.width}, 3); got {tuple(img.shape)}."
            )
        x = rearrange(img, "b h w c -> b c h w").float() / 255.0
        return self.proj(rearrange(self.convs(x), "b c h w -> b (c h w)"))


@register_level("image")
class ImageLevel(Level):
    """Top-down RGB images -> abstract state; env actions.

    args: ``channels`` (int, default 32): width of the first convolution.
    """

    accepts = ("image",)

    @classmethod
    def from_spec(cls, spec: LevelSpec) -> "ImageLevel":
        cfg = spec.config
        h, w, c = spec.obs_spec.shape
        if c != 3:
            raise SpecMismatchError(f"Image observations must be (h, w, 3) RGB, got shape {spec.obs_spec.shape}.")
        return cls.with_encoder(spec, ImageEncoder(h, w, cfg.dim, channels=int(cfg.args.get("channels", 32))))
