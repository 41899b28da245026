"""The H-JEPA stack: ordered levels, strides, timescales and the joint loss.

Shapes: ``b`` batch, ``t`` time within a window (``window = tau_top + 1`` observations),
``d`` state width, ``e`` action width, ``j`` sub-steps in one step of a level.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor, nn

from hjepa import diagnostics
from hjepa.config import ExperimentConfig, LossConfig
from hjepa.errors import ConfigError
from hjepa.level import Level, LevelSpec, latent_action_spec
from hjepa.registry import get_level_kind
from hjepa.regularizers import build_regularizer
from hjepa.specs import ActionSpec, ObsSpec


class LevelPass(NamedTuple):
    """One level's tensors from a forward pass over a window."""

    states: Tensor  # "b t d" online
    targets: Tensor  # "b t d" EMA target
    actions: Tensor  # "b t' e" action inputs at t = 0 .. window-1-tau
    predictions: Tensor  # "b p d" one-step predictions of the trained pairs (pair 0 starts at t = 0)
    next_targets: Tensor  # "b p d" their EMA targets
    rollout: Tensor  # "b n d" autoregressive rollout from t = 0 (n >= 1)


class StackOutput(NamedTuple):
    """Joint loss and its terms (``"level{k}/{term}"``), plus per-level tensors."""

    loss: Tensor
    terms: dict[str, Tensor]
    passes: list[LevelPass]


class HJEPA(nn.Module):
    """A stack of JEPA levels trained jointly.

    Args:
        levels: level 0 first; level k's input is level k-1's state.
        loss: loss weights.
        obs_spec: the observation spec level 0 was built for.
        action_spec: the env's action spec.
    """

    def __init__(self, levels: list[Level], loss: LossConfig, obs_spec: ObsSpec, action_spec: ActionSpec) -> None:
        super().__init__()
        if levels and levels[0].crops_training and not all(level.reads_crops for level in levels[1:]):
            raise ConfigError(
                "Level 0 trains on crops of its observations, but the levels above read its whole "
                "states: set levels.0.args.crop to 0, train one level, or use levels that read crops (gridcoarse)."
            )
        self.levels = nn.ModuleList(levels)
        self.loss_cfg = loss
        self.obs_spec, self.action_spec = obs_spec, action_spec
        self.regularizer = build_regularizer(loss.regularizer)

    @classmethod
    def from_config(cls, cfg: ExperimentConfig, obs_spec: ObsSpec, action_spec: ActionSpec) -> "HJEPA":
        """Build every level from the registry, deriving each level's input from the one below."""
        levels: list[Level] = []
        for k, lc in enumerate(cfg.levels):
            below = levels[-1] if levels else None
            spec = LevelSpec(
                index=k,
                config=lc,
                obs_spec=obs_spec,
                input_dim=below.dim if below else 0,
                action_spec=action_spec if k == 0 else latent_action_spec(lc),
                below_action_dim=below.action_spec.input_dim if below else 0,
                tau=cfg.taus[k],
            )
            kind = get_level_kind(lc.kind)
            kind.check_input(spec)
            levels.append(kind.from_spec(spec))
        return cls(levels, cfg.loss, obs_spec, action_spec)

    # ------------------------------------------------------------------ structure
    @property
    def num_levels(self) -> int:
        return len(self.levels)

    @property
    def strides(self) -> tuple[int, ...]:
        return tuple(lv.spec.config.stride for lv in self.levels)

    @property
    def taus(self) -> tuple[int, ...]:
        return tuple(lv.spec.tau for lv in self.levels)

    @property
    def window(self) -> int:
        return self.taus[-1] + 1

    # ------------------------------------------------------------------ inference
    def encode(self, obs: Tensor, upto: int | None = None, target: bool = False) -> list[Tensor]:
        """Observations ``"b ..."`` -> states of levels 0..upto, each ``"b d"``."""
        x, out = obs, []
        for level in self.levels[: (upto if upto is not None else self.num_levels - 1) + 1]:
            x = level.target_encode(x) if target else level.encode(x)
            out.append(x)
        return out

    @torch.no_grad()
    def update_targets(self, momentum: float) -> None:
        for level in self.levels:
            level.update_target(momentum)

    # ------------------------------------------------------------------ training
    def forward(self, obs: Tensor, actions: Tensor, groups: Tensor | None = None) -> StackOutput:
        """Joint loss over a batch of windows.

        Args:
            obs: ``"b t ..."`` observations, ``t = window``.
            actions: ``"b t-1"`` (discrete) or ``"b t-1 e"`` env actions.
            groups: ``"b"`` layout id of each window (regulariser groups), or None.
        """
        if self.training:
            obs = self.levels[0].training_view(obs)
        b, t = obs.shape[:2]
        x_on = x_tg = rearrange(obs, "b t ... -> (b t) ...")
        groups_bt = repeat(groups, "b -> (b t)", t=t) if groups is not None else None
        below_actions = self.levels[0].action_input(actions)
        still = None  # "b t-1": the observation did not change (only needed to reweigh those pairs)
        if self.loss_cfg.still_weight != 1.0:
            still = rearrange(obs[:, 1:] == obs[:, :-1], "b t ... -> b t (...)").all(-1)
        terms: dict[str, Tensor] = {}
        passes: list[LevelPass] = []
        for k, level in enumerate(self.levels):
            online, target = level.encode_both(x_on) if k == 0 else (level.encode(x_on), level.target_encode(x_tg))
            s = rearrange(online, "(b t) d -> b t d", b=b)
            tgt = rearrange(target, "(b t) d -> b t d", b=b)
            a = below_actions if k == 0 else self.latent_actions(level, below_actions, t)
            lp, level_terms = self._level_terms(k, level, s, tgt, a, actions, groups_bt, still if k == 0 else None)
            if k == 0:
                level_terms.update(level.own_terms(x_on))
            else:
                level_terms["upward"] = self._upward(k, passes[-1], level, tgt)
            terms.update({f"level{k}/{name}": v for name, v in level_terms.items()})
            passes.append(lp)
            detach = self.loss_cfg.detach_below
            x_on = rearrange(s.detach() if detach else s, "b t d -> (b t) d")
            x_tg = rearrange(tgt, "b t d -> (b t) d")
            below_actions = a.detach() if detach else a
        total = sum(self._weight(name) * v for name, v in terms.items())
        return StackOutput(total, terms, passes)

    def latent_actions(self, level: Level, below: Tensor, t: int) -> Tensor:
        """Chunks of the level below's actions -> latent actions ``"b (t - tau_k) e"``."""
        stride, tau_below = level.spec.config.stride, self.taus[level.index - 1]
        starts = torch.arange(t - level.spec.tau, device=below.device)
        idx = starts[:, None] + tau_below * torch.arange(stride, device=below.device)[None, :]
        chunk = below[:, idx]  # "b t' j e"
        latent = level.infer_action(rearrange(chunk, "b t j e -> (b t) j e"))
        return rearrange(latent, "(b t) e -> b t e", b=below.shape[0])

    def _level_terms(
        self, k: int, level: Level, s: Tensor, tgt: Tensor, a: Tensor, env_actions: Tensor, groups: Tensor | None,
        still: Tensor | None = None,
    ) -> tuple[LevelPass, dict[str, Tensor]]:
        b, t, _ = s.shape
        tau = level.spec.tau
        idx = self._pair_index(b, t - tau, s.device)  # "b p": first state of each trained pair
        s_from, s_next, tgt_next = _take(s, idx), _take(s, idx + tau), _take(tgt, idx + tau)
        a_pairs = _take(a, idx)
        pred = level.predict(rearrange(s_from, "b p d -> (b p) d"), rearrange(a_pairs, "b p e -> (b p) e"))
        pred = rearrange(pred, "(b p) d -> b p d", b=b)
        terms = {"pred": self._pred_loss(pred, tgt_next, None if still is None else _take(still, idx), k == 0)}
        roll = level.rollout(s[:, 0], a[:, ::tau][:, : self._rollout_len(k, t)])
        if roll.shape[1] > 1:
            roll_tgt = tgt[:, 2 * tau :: tau][:, : roll.shape[1] - 1]
            terms["rollout"] = F.mse_loss(roll[:, 1:].float(), roll_tgt.float())
        inv = level.inverse_dynamics(s_from, s_next)
        env_pairs = _take(env_actions, idx) if k == 0 else env_actions
        terms["idm"] = self._idm_loss(k, level, inv, a_pairs, env_pairs)
        if self.loss_cfg.smooth > 0 and k >= self.loss_cfg.smooth_from:
            terms["smooth"] = F.mse_loss(s_next.float(), s_from.float())
        reg = self.regularizer(rearrange(s, "b t d -> (b t) d"), groups)
        terms.update(reg)
        return LevelPass(s, tgt, a, pred, tgt_next, roll), terms

    def _pred_loss(self, pred: Tensor, target: Tensor, still: Tensor | None, level0: bool) -> Tensor:
        """MSE of ``"b p d"`` predictions; with ``still: "b p"`` (level 0), a weighted mean that
        weighs pairs whose observation did not change ``loss.still_weight``; at level 0, every
        pair also weighs its error relative to the mean to the power ``loss.hard_focus``."""
        focus = self.loss_cfg.hard_focus if level0 else 0.0
        if still is None and focus == 0:
            return F.mse_loss(pred.float(), target.float())
        per_pair = (pred.float() - target.float()).pow(2).mean(-1)
        weights = torch.ones_like(per_pair) if still is None else torch.where(still, self.loss_cfg.still_weight, 1.0)
        if focus > 0:
            err = per_pair.detach()
            weights = weights * (err / err.mean().clamp_min(1e-12)).pow(focus)
        return (weights * per_pair).sum() / weights.sum().clamp_min(1e-8)

    def _pair_index(self, b: int, n_pairs: int, device: torch.device) -> Tensor:
        """``"b p"`` start times of the pairs trained: all of them, or pair 0 and a random draw."""
        m = self.loss_cfg.pairs_per_window
        if m <= 0 or m >= n_pairs:
            return torch.arange(n_pairs, device=device).expand(b, n_pairs)
        rest = torch.rand(b, n_pairs - 1, device=device).argsort(dim=1)[:, : m - 1] + 1
        return torch.cat([torch.zeros(b, 1, dtype=torch.long, device=device), rest], dim=1)

    def _rollout_len(self, k: int, t: int) -> int:
        """Steps of level k rolled out from t = 0: enough for its rollout term and for the
        upward term (one step of level k+1), within the window."""
        need = self.loss_cfg.rollout_steps
        if k + 1 < self.num_levels:
            need = max(need, self.strides[k + 1])
        return max(1, min(need, (t - 1) // self.taus[k]))

    def _idm_loss(self, k: int, level: Level, inv: Tensor, a: Tensor, env_actions: Tensor) -> Tensor:
        if k == 0 and level.action_spec.is_discrete:
            return F.cross_entropy(rearrange(inv, "b t e -> (b t) e").float(), env_actions.reshape(-1).long())
        return F.mse_loss(inv.float(), a.detach().float())

    def _upward(self, k: int, below: LevelPass, level: Level, tgt: Tensor) -> Tensor:
        """Level k-1's rollout over one step of level k, read through E_k, vs level k's target."""
        stride = level.spec.config.stride
        rollout = below.rollout[:, stride - 1]
        lifted = level.encode(rollout if self.loss_cfg.upward_trains_below else rollout.detach())
        return F.mse_loss(lifted.float(), tgt[:, level.spec.tau].float())

    def _weight(self, name: str) -> float:
        term = name.split("/", 1)[1]
        c = self.loss_cfg
        weights = {"pred": c.pred, "rollout": c.rollout, "idm": c.idm, "upward": c.upward, "smooth": c.smooth}
        return weights.get(term, c.regularizer.weight)

    # ------------------------------------------------------------------ health
    @torch.no_grad()
    def health(self, out: StackOutput, groups: Tensor | None = None) -> dict[str, float]:
        """Embedding health and prediction quality per level, keyed ``"level{k}/{figure}"``."""
        metrics: dict[str, float] = {}
        for k, lp in enumerate(out.passes):
            tau = self.taus[k]
            b, t, _ = lp.states.shape
            g = repeat(groups, "b -> (b t)", t=t) if groups is not None else None
            flat = rearrange(lp.states, "b t d -> (b t) d")
            m = diagnostics.embedding_health(flat, g)
            m["step_ratio"] = diagnostics.step_ratio(lp.states[:, 0], lp.states[:, tau], groups)
            prev, tgt_next, pred = lp.targets[:, 0], lp.targets[:, tau], lp.predictions[:, 0]
            m["pred_rel_copy"] = diagnostics.relative_prediction_error(pred, tgt_next, prev)
            m["pred_norm"] = spread_mse(lp.predictions, lp.next_targets, lp.targets).item()
            m["nn_acc"] = diagnostics.nearest_neighbour_accuracy(pred, tgt_next)
            if hasattr(self.levels[k], "cell_codebook"):
                m["snap_acc"] = diagnostics.snapped_map_accuracy(pred, tgt_next, self.levels[k].map_shape[0])
            metrics.update({f"level{k}/{name}": v for name, v in m.items()})
        return metrics


def _take(x: Tensor, idx: Tensor) -> Tensor:
    """``x: "b t ..."``, ``idx: "b p"`` -> ``"b p ..."`` (per-row gather along time)."""
    rows = torch.arange(x.shape[0], device=x.device)[:, None]
    return x[rows, idx]


def spread_mse(pred: Tensor, target: Tensor, reference: Tensor) -> Tensor:
    """MSE in units of the targets' spread: ``mse(pred, target) / mean per-dim var(reference)``.

    A diagnostic, not a loss: the raw MSE of a fresh encoder is tiny because every
    observation maps to nearly the same point, and it rises as the regulariser spreads the
    states; this figure is comparable across training. (Used as a loss, its gradient grows as
    the spread shrinks and drove the embeddings to collapse.)
    """
    spread = rearrange(reference.detach().float(), "b t d -> (b t) d").var(dim=0).mean().clamp_min(1e-6)
    return F.mse_loss(pred.float(), target.float()) / spread


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def ema_momentum(step: int, total: int, start: float, end: float) -> float:
    """Cosine schedule from ``start`` (step 0) to ``end`` (step ``total``)."""
    frac = min(max(step / max(total, 1), 0.0), 1.0)
    return end - (end - start) * (math.cos(math.pi * frac) + 1) / 2
