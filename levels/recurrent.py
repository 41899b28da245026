"""A recurrent kind for levels k > 0: the worked example of docs/tutorials/add-a-level.md.

Where ``temporal`` flattens the chunk of the level below's actions into one MLP, this kind
reads the chunk **in order** with a GRU (a different temporal pooling of the ``stride``
sub-steps), and its predictor is a GRU cell: the abstract state is the cell's hidden state
and the latent macro-action its input. Add it to a stack with one config entry::

    LevelConfig(kind="recurrent", dim=64, stride=4, action_dim=8, hidden=128)

args: ``depth`` (int, default 2): hidden layers of the encoder.
"""

from __future__ import annotations

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from hjepa.level import Level, LevelSpec, inverse_head, mlp
from hjepa.registry import register_level


class ChunkGRU(nn.Module):
    """``"b (j e)" -> "b a"``: a GRU over the ``j`` sub-steps of a chunk, its last hidden state
    projected to the latent action (the base class applies the ``tanh``)."""

    def __init__(self, steps: int, width: int, hidden: int, out: int) -> None:
        super().__init__()
        self.steps = steps
        self.gru = nn.GRU(width, hidden, batch_first=True)
        self.head = nn.Linear(hidden, out)

    def forward(self, flat: Tensor) -> Tensor:
        _, h = self.gru(rearrange(flat, "b (j e) -> b j e", j=self.steps))  # h: "1 b hidden"
        return self.head(h[-1])


class GRUPredictor(nn.Module):
    """``(s "b d", a "b e") -> LayerNorm(GRUCell(a, s)) "b d"``.

    The update gate can keep ``s`` as it is (predict "no change") and the LayerNorm puts the
    prediction on the same unit scale as the encoder's states, which end in one too.
    """

    def __init__(self, dim: int, action_dim: int) -> None:
        super().__init__()
        self.cell = nn.GRUCell(action_dim, dim)

    def forward(self, s: Tensor, a: Tensor) -> Tensor:
        return F.layer_norm(self.cell(a.to(s.dtype), s), s.shape[-1:])


@register_level("recurrent")
class RecurrentLevel(Level):
    """The level below's states -> coarser states; GRU-pooled latent macro-actions; a GRU-cell
    predictor."""

    accepts = ("latent",)

    @classmethod
    def from_spec(cls, spec: LevelSpec) -> "RecurrentLevel":
        cfg = spec.config
        depth = int(cfg.args.get("depth", 2))
        encoder = mlp([spec.input_dim] + [cfg.hidden] * depth + [cfg.dim], norm_last=True)
        action_encoder = ChunkGRU(cfg.stride, spec.below_action_dim, cfg.hidden, cfg.action_dim)
        return cls(spec, encoder, GRUPredictor(cfg.dim, cfg.action_dim), inverse_head(spec), action_encoder)
