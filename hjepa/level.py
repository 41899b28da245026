"""The level protocol: one JEPA of the stack.

A level ``k`` owns
- an encoder ``E_k``: level 0 maps observations ``"b ..."`` to ``s: "b d"``; a level k > 0
  maps the level below's states ``"b d_below"`` to ``"b d"``;
- a target encoder: an EMA copy of ``E_k`` (no gradient) producing prediction targets;
- a predictor ``P_k(s_t, a_t) -> s_{t + tau_k}`` (``"b d", "b e" -> "b d"``);
- an action model: level 0 embeds the env action (one-hot for discrete actions); a level
  k > 0 infers a low-dimensional latent action from the chunk of ``stride`` actions of the
  level below (``"b j e_below" -> "b e"``), squashed into [-1, 1];
- an inverse-dynamics head: from ``(s_t, s_{t+tau_k})`` predict the action (cross-entropy for
  discrete env actions, MSE on the detached latent action otherwise);
- ``heads``: a ModuleDict for per-level extras (the critic of the cost module lives here).

Concrete kinds subclass :class:`Level`, build their parts in ``from_spec`` and register with
``@register_level``. Parts are constructor arguments, so a level can be assembled by hand.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from hjepa.config import LevelConfig
from hjepa.errors import SpecMismatchError
from hjepa.specs import ActionSpec, ObsSpec


@dataclass(frozen=True)
class LevelSpec:
    """What a level is built for, derived from the dataset and the levels below it.

    Attributes:
        index: position k in the stack.
        config: the level's config.
        obs_spec: the observation spec (level 0's input; kept for every level for reference).
        input_dim: width of the level below's state (0 at level 0).
        action_spec: this level's action space: the env's at level 0, a continuous latent
            action of ``config.action_dim`` in [-1, 1] above.
        below_action_dim: width of one action of the level below as fed to the action model
            (0 at level 0).
        tau: env steps spanned by one step of this level.
    """

    index: int
    config: LevelConfig
    obs_spec: ObsSpec
    input_dim: int
    action_spec: ActionSpec
    below_action_dim: int
    tau: int


class Level(nn.Module):
    """Base class of every level kind (the contract; see the module docstring)."""

    kind: ClassVar[str] = "abstract"
    reads_crops: ClassVar[bool] = False
    """Levels k > 0: whether this level reads crops of the level below's states as well as
    whole ones (then a level 0 that trains on crops may have it above)."""
    accepts: ClassVar[tuple[str, ...]] = ()
    """Input kinds this level takes: observation kinds ("grid", "image", "state") for level 0,
    "latent" for a level fed by the level below."""

    def __init__(
        self,
        spec: LevelSpec,
        encoder: nn.Module,
        predictor: nn.Module,
        inverse_model: nn.Module,
        action_encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.encoder = encoder
        self.target_encoder = copy.deepcopy(encoder).requires_grad_(False)
        self.predictor = predictor
        self.inverse_model = inverse_model
        self.action_encoder = action_encoder
        self.heads = nn.ModuleDict()

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_spec(cls, spec: LevelSpec) -> "Level":
        """Build the level's parts from its spec (implemented by each kind)."""
        raise NotImplementedError

    @classmethod
    def with_encoder(cls, spec: LevelSpec, encoder: nn.Module) -> "Level":
        """A level acting with env actions: ``encoder`` plus the default residual predictor
        and inverse-dynamics head (what every built-in level-0 kind uses)."""
        cfg = spec.config
        predictor = ResidualPredictor(cfg.dim, spec.action_spec.input_dim, cfg.hidden)
        return cls(spec, encoder, predictor, inverse_head(spec))

    @classmethod
    def check_input(cls, spec: LevelSpec) -> None:
        """Raise :class:`SpecMismatchError` if this kind cannot take the spec's input."""
        got = spec.obs_spec.kind if spec.index == 0 else "latent"
        if got not in cls.accepts:
            where = f"observations of kind '{got}'" if spec.index == 0 else "the states of the level below"
            raise SpecMismatchError(
                f"Level {spec.index} of kind '{cls.kind}' cannot take {where}; it accepts {list(cls.accepts)}. "
                "Pick a level kind matching the dataset's observation spec (grid, image, state) at level 0 "
                "and a latent kind (e.g. 'temporal') above."
            )

    # ---------------------------------------------------------------- the protocol
    @property
    def index(self) -> int:
        return self.spec.index

    @property
    def dim(self) -> int:
        return self.spec.config.dim

    @property
    def crops_training(self) -> bool:
        """Whether this level trains on parts of its inputs (:meth:`training_view`)."""
        return False

    def training_view(self, obs: Tensor) -> Tensor:
        """Level 0: the training windows ``"b t ..."`` it learns from (a kind may crop them;
        validation and planning see whole observations)."""
        return obs

    def own_terms(self, obs: Tensor) -> dict[str, Tensor]:
        """Level 0: loss terms of this kind's own from the training observations ``"(b t) ..."``
        (as :meth:`training_view` gave them), keyed by name; none by default. They weigh
        ``loss.regularizer.weight``, as the regulariser's terms do."""
        return {}

    @property
    def action_spec(self) -> ActionSpec:
        """This level's action space (env actions at level 0, latent macro-actions above)."""
        return self.spec.action_spec

    def encode(self, x: Tensor) -> Tensor:
        """``x: "b ..." -> s: "b d"`` with the online encoder."""
        return self.encoder(x)

    @torch.no_grad()
    def target_encode(self, x: Tensor) -> Tensor:
        """``x: "b ..." -> s: "b d"`` with the EMA target encoder (no gradient)."""
        return self.target_encoder(x)

    def encode_both(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Online and target states of the same input (kinds may share preprocessing)."""
        return self.encode(x), self.target_encode(x)

    def predict(self, s: Tensor, a: Tensor) -> Tensor:
        """One step of this level: ``s: "b d"``, ``a: "b e"`` (action input) -> ``"b d"``."""
        return self.predictor(s, a)

    def rollout(self, s: Tensor, actions: Tensor) -> Tensor:
        """Autoregressive rollout. ``s: "b d"``, ``actions: "b h e"`` -> states ``"b h d"``."""
        out = []
        for i in range(actions.shape[1]):
            s = self.predict(s, actions[:, i])
            out.append(s)
        return torch.stack(out, dim=1)

    def action_input(self, a: Tensor) -> Tensor:
        """Level 0: env actions (``"..."`` int or ``"... e"`` float) -> predictor input ``"... e"``."""
        spec = self.action_spec
        if spec.is_discrete:
            return F.one_hot(a.long().clamp_min(0), spec.n).float()
        return a.float()

    def infer_action(self, chunk: Tensor) -> Tensor:
        """Level k > 0: ``chunk: "b j e_below"`` (the level below's ``stride`` actions) -> ``"b e"``."""
        if self.action_encoder is None:
            raise TypeError(f"Level {self.index} acts with env actions; it has no latent action encoder.")
        return torch.tanh(self.action_encoder(rearrange(chunk, "b j e -> b (j e)")))

    def inverse_dynamics(self, s_from: Tensor, s_to: Tensor) -> Tensor:
        """``(s_t, s_{t+tau}): "b d" -> "b e"``: action logits (discrete) or a latent action."""
        return self.inverse_model(torch.cat([s_from, s_to], dim=-1))

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """EMA step: ``target <- momentum * target + (1 - momentum) * online``."""
        for t, o in zip(self.target_encoder.parameters(), self.encoder.parameters()):
            t.lerp_(o.detach(), 1.0 - momentum)
        for t, o in zip(self.target_encoder.buffers(), self.encoder.buffers()):
            t.copy_(o)


# ------------------------------------------------------------------------ shared parts


def mlp(sizes: list[int], act: type[nn.Module] = nn.GELU, norm_last: bool = False) -> nn.Sequential:
    """Linear layers of ``sizes`` with ``act`` between them (and an optional final LayerNorm)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    if norm_last:  # unit-scale outputs: a small loss cannot come from tiny embeddings
        layers.append(nn.LayerNorm(sizes[-1], elementwise_affine=False))
    return nn.Sequential(*layers)


class ResidualPredictor(nn.Module):
    """``s' = s + MLP([s, a])``: predicts the change of state, which starts at "no change"."""

    def __init__(self, dim: int, action_dim: int, hidden: int, depth: int = 2) -> None:
        super().__init__()
        self.net = mlp([dim + action_dim] + [hidden] * depth + [dim])
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, s: Tensor, a: Tensor) -> Tensor:
        return s + self.net(torch.cat([s, a.to(s.dtype)], dim=-1))


def inverse_head(spec: LevelSpec) -> nn.Module:
    """The inverse-dynamics head of a level: ``"b (2 d)" -> "b e"``."""
    cfg = spec.config
    return mlp([2 * cfg.dim, cfg.hidden, spec.action_spec.input_dim])


def latent_action_spec(cfg: LevelConfig) -> ActionSpec:
    """The continuous latent action space of a level k > 0."""
    return ActionSpec(kind="continuous", dim=cfg.action_dim, low=-1.0, high=1.0)
