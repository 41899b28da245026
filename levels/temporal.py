"""Temporal-abstraction kind for levels k > 0.

The encoder reads the level below's state at the same env time (``"b d_below" -> "b d"``), so a
goal observation maps into every level's space. Time is abstracted by the predictor, which
jumps ``stride`` steps of the level below at once, driven by a latent macro-action inferred
from the chunk of the level below's ``stride`` actions (a bottleneck of ``action_dim`` dims,
after HWM's latent actions pooled from action chunks).
"""

from __future__ import annotations

from hjepa.level import Level, LevelSpec, ResidualPredictor, inverse_head, mlp
from hjepa.registry import register_level


@register_level("temporal")
class TemporalLevel(Level):
    """Abstract states of the level below -> coarser states; latent macro-actions.

    args: ``depth`` (int, default 2): hidden layers of the encoder and action encoder.
    """

    accepts = ("latent",)

    @classmethod
    def from_spec(cls, spec: LevelSpec) -> "TemporalLevel":
        cfg = spec.config
        depth = int(cfg.args.get("depth", 2))
        encoder = mlp([spec.input_dim] + [cfg.hidden] * depth + [cfg.dim], norm_last=True)
        action_encoder = mlp([cfg.stride * spec.below_action_dim] + [cfg.hidden] * depth + [cfg.action_dim])
        predictor = ResidualPredictor(cfg.dim, cfg.action_dim, cfg.hidden)
        return cls(spec, encoder, predictor, inverse_head(spec), action_encoder)
