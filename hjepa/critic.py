"""The trainable half of the cost module: a goal-conditioned critic per level.

``V_k(s, g) in (0, 1)`` estimates ``gamma_k ** n`` where ``n`` is the number of level-k steps
(``tau_k`` env steps each) needed to reach abstract goal ``g`` from abstract state ``s``. Its
inputs are level k's abstract states only. It is learned without rewards from the offline
trajectories (docs/design-notes.md explains the choices):

- **bounded targets**: ``gamma ** n`` trained with binary cross-entropy, never an
  undiscounted count (which inflated);
- **hindsight goals**: 20% the state itself (target 1), 50% a later state of the same
  trajectory at a geometric offset, 30% a random state (same episode when layouts vary);
- **action-free backup at the level's own time scale**: the target is
  ``max(gamma ** (offset / tau), gamma * V_target(s_{t + tau}, g))``. The first term is the
  hindsight lower bound (the trajectory reached ``g``); the second bootstraps one level-k
  step. An expectile weight (> 0.5) makes the fit lean to the better successors in the data,
  approximating the optimal (shortest-path) value rather than the random walk's (HIQL-style
  action-free value learning). Upper levels back up ``tau_k`` env steps at a time, which is
  what lets their values reach far: the hierarchy chains spans the critic can trust.
- a slow Polyak target (0.005).

Critics train after the world model, on its frozen online states (computed once for the whole
dataset), so that their figures can be ablated against a fixed representation.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from hjepa.config import CriticConfig
from hjepa.data.storage import OfflineDataset
from hjepa.level import mlp


class Critic(nn.Module):
    """``(s "b d", g "b d") -> logit "b"`` with ``sigmoid(logit) ~ gamma ** steps``."""

    def __init__(self, dim: int, hidden: int, gamma: float, tau: int, depth: int = 3) -> None:
        super().__init__()
        self.net = mlp([3 * dim] + [hidden] * depth + [1])
        self.gamma, self.tau = float(gamma), int(tau)

    def forward(self, s: Tensor, g: Tensor) -> Tensor:
        s, g = torch.broadcast_tensors(s, g)
        return rearrange(self.net(torch.cat([s, g, s - g], dim=-1)), "... 1 -> ...")

    def value(self, s: Tensor, g: Tensor) -> Tensor:
        """Estimated ``gamma ** steps`` in (0, 1)."""
        return torch.sigmoid(self(s, g))

    def distance(self, s: Tensor, g: Tensor) -> Tensor:
        """Estimated cost-to-go in **env steps**: ``tau * log V / log gamma``."""
        log_v = F.logsigmoid(self(s, g))
        return self.tau * log_v / math.log(self.gamma)


class SpatialKeypoints(nn.Module):
    """Map states ``"b (c w h)"`` -> ``k`` soft-argmax keypoints ``"b (k 2)"`` in [-1, 1].

    A per-cell state (the ``gridmap`` level) marks the agent by *which* cell changes, a code
    an MLP critic cannot generalise over (every cell pair is a new input); expected
    coordinates under a learned per-cell attention give it positions to measure instead
    (spatial soft-argmax, Levine et al. 2016). docs/design-notes.md ("Critics") measures it.
    """

    def __init__(self, channels: int, width: int, height: int, keypoints: int, hidden: int = 32) -> None:
        super().__init__()
        self.shape = (channels, width, height)
        self.out_dim = 2 * keypoints
        self.conv = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.GELU(), nn.Conv2d(hidden, keypoints, 1))
        xs, ys = torch.meshgrid(torch.linspace(-1, 1, width), torch.linspace(-1, 1, height), indexing="ij")
        self.register_buffer("grid", torch.stack([xs.flatten(), ys.flatten()], dim=1), persistent=False)

    def forward(self, z: Tensor) -> Tensor:
        c, w, h = self.shape
        lead = z.shape[:-1]
        maps = rearrange(z.reshape(-1, z.shape[-1]), "b (c w h) -> b c w h", c=c, w=w, h=h)
        attention = rearrange(self.conv(maps), "b k w h -> b k (w h)").softmax(-1)
        return rearrange(attention @ self.grid, "b k two -> b (k two)").reshape(*lead, -1)


class QuasimetricCritic(nn.Module):
    """A critic whose distance is a learned quasimetric (MRN: Liu et al. 2023, as in QRL).

    Both states go through one embedding ``phi: "b d -> b 2e"``; the distance in level-k
    steps is ``||phi_sym(s) - phi_sym(g)|| + max(relu(phi_asym(s) - phi_asym(g)))``: zero
    from a state to itself, and it obeys the triangle inequality by construction, so short
    spans learned from hindsight chain into long ones. Same interface as :class:`Critic`
    (``V = gamma ** steps``, trained on its logit).
    """

    def __init__(self, dim: int, hidden: int, gamma: float, tau: int, depth: int = 3, embed: int = 64,
                 front: SpatialKeypoints | None = None) -> None:  # fmt: skip
        super().__init__()
        width = dim if front is None else front.out_dim
        self.phi = nn.Sequential(front or nn.Identity(), mlp([width] + [hidden] * depth + [2 * embed]))
        self.gamma, self.tau, self.embed = float(gamma), int(tau), int(embed)

    def steps(self, s: Tensor, g: Tensor) -> Tensor:
        """Quasimetric distance in level-k steps ``"..."``."""
        s, g = torch.broadcast_tensors(s, g)
        a, b = self.phi(s), self.phi(g)
        e = self.embed
        sym = (a[..., :e] - b[..., :e]).pow(2).sum(-1).add(1e-8).sqrt()
        return sym + F.relu(a[..., e:] - b[..., e:]).amax(-1)

    def forward(self, s: Tensor, g: Tensor) -> Tensor:
        log_v = (self.steps(s, g) * math.log(self.gamma)).clamp(max=-1e-6)
        return log_v - torch.log(-torch.expm1(log_v))  # logit of V = gamma ** steps

    def value(self, s: Tensor, g: Tensor) -> Tensor:
        return torch.exp(self.steps(s, g) * math.log(self.gamma))

    def distance(self, s: Tensor, g: Tensor) -> Tensor:
        """Estimated cost-to-go in **env steps**."""
        return self.tau * self.steps(s, g)


def make_critic(cfg: CriticConfig, level: nn.Module, k: int) -> nn.Module:
    """Level k's critic of the kind ``cfg.kind``; a quasimetric critic of a level with map
    states (``level.map_shape``) reads them through :class:`SpatialKeypoints`."""
    args = (level.dim, cfg.hidden, cfg.gamma_at(k), level.spec.tau, cfg.depth)
    if cfg.kind == "mlp":
        return Critic(*args)
    shape = getattr(level, "map_shape", None)
    front = SpatialKeypoints(*shape, cfg.keypoints) if shape is not None and cfg.keypoints > 0 else None
    return QuasimetricCritic(*args, embed=cfg.embed, front=front)


def attach_critics(stack: nn.Module, cfg: CriticConfig) -> None:
    """Give every level of ``stack`` a ``heads["critic"]`` (idempotent)."""
    for k, level in enumerate(stack.levels):
        if "critic" not in level.heads:
            level.heads["critic"] = make_critic(cfg, level, k)


def critic_of(level: nn.Module) -> Critic | QuasimetricCritic | None:
    return level.heads["critic"] if "critic" in level.heads else None


# ----------------------------------------------------------------------------- training
class CriticReport(NamedTuple):
    """Per level: final loss and mean predicted distance error on hindsight pairs."""

    loss: list[float]
    hindsight_ratio: list[float]
    wall_s: float


@torch.no_grad()
def encode_dataset(stack: nn.Module, data: OfflineDataset, batch: int = 4096) -> list[Tensor]:
    """Online states of every level for every dataset observation: a list of ``"n d_k"``."""
    out: list[list[Tensor]] = [[] for _ in stack.levels]
    device = next(stack.parameters()).device
    for i in range(0, data.num_steps, batch):
        obs = torch.from_numpy(np.array(data.obs[i : i + batch])).to(device)
        for k, z in enumerate(stack.encode(obs)):
            out[k].append(z.float().cpu())
    return [torch.cat(zs) for zs in out]


@dataclass
class _Index:
    """Episode bookkeeping for sampling: end (exclusive) and start of each step's episode."""

    end: np.ndarray
    begin: np.ndarray

    @classmethod
    def of(cls, data: OfflineDataset) -> "_Index":
        starts = np.asarray(data.episode_starts)
        ep = data.episode_of_step()
        return cls(end=starts[ep + 1], begin=starts[ep])


def _sample_batch(idx: _Index, tau: int, gamma: float, cfg: CriticConfig, rng: np.random.Generator,
                  same_episode_random: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Indices ``(s, s_next, g)`` and hindsight lower bounds for one batch."""
    n = len(idx.end)
    valid = np.flatnonzero(np.arange(n) + tau < idx.end)
    s = valid[rng.integers(0, len(valid), cfg.batch_size)]
    u = rng.random(cfg.batch_size)
    p_env = 1.0 - gamma ** (1.0 / tau)  # geometric offset in env steps
    offset = np.minimum(rng.geometric(p_env, cfg.batch_size), idx.end[s] - 1 - s)
    g = s + offset
    bound = gamma ** (offset / tau)
    if same_episode_random:
        rand = idx.begin[s] + (rng.random(cfg.batch_size) * (idx.end[s] - idx.begin[s])).astype(np.int64)
    else:
        rand = rng.integers(0, n, cfg.batch_size)
    is_self = u < cfg.p_self
    is_rand = u >= cfg.p_self + cfg.p_future
    g = np.where(is_self, s, np.where(is_rand, rand, g))
    bound = np.where(is_self, 1.0, np.where(is_rand, 0.0, bound))
    return s, s + tau, g, bound


def expectile_bce(logits: Tensor, target: Tensor, expectile: float) -> Tensor:
    """BCE weighted ``expectile`` where the target is above the prediction, else ``1 - expectile``."""
    w = torch.where(target > torch.sigmoid(logits).detach(), expectile, 1.0 - expectile)
    return (w * F.binary_cross_entropy_with_logits(logits, target, reduction="none")).mean()


def train_critic(critic: Critic | QuasimetricCritic, z: Tensor, idx: _Index, cfg: CriticConfig, seed: int,
                 same_episode_random: bool = False, progress: object | None = None) -> tuple[float, float]:  # fmt: skip
    """Fit one level's critic on its frozen states ``z: "n d"``; returns (loss, hindsight ratio)."""
    rng = np.random.default_rng(seed)
    target = copy.deepcopy(critic).requires_grad_(False)
    opt = torch.optim.Adam(critic.parameters(), lr=cfg.lr)
    critic.train()
    losses: list[float] = []
    for step in range(cfg.steps):
        s, nxt, g, bound = _sample_batch(idx, critic.tau, critic.gamma, cfg, rng, same_episode_random)
        zs, zn, zg = z[s], z[nxt], z[g]
        with torch.no_grad():
            boot = critic.gamma * target.value(zn, zg)
            y = torch.maximum(torch.as_tensor(bound, dtype=torch.float32), boot)
        loss = expectile_bce(critic(zs, zg), y, cfg.expectile)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for p, q in zip(critic.parameters(), target.parameters()):
                q.lerp_(p, cfg.polyak)
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step)
    critic.eval()
    return float(np.mean(losses[-50:])), _hindsight_ratio(critic, z, idx, cfg, seed)


@torch.no_grad()
def _hindsight_ratio(critic: Critic | QuasimetricCritic, z: Tensor, idx: _Index, cfg: CriticConfig, seed: int) -> float:
    """Median of (estimated distance / hindsight distance) over future-goal pairs: <= 1 is
    expected (a random walk's hindsight distance is an upper bound on the shortest path)."""
    rng = np.random.default_rng(seed + 1)
    only_future = CriticConfig(**{**cfg.__dict__, "p_self": 0.0, "p_future": 1.0, "batch_size": 2048})
    s, _, g, bound = _sample_batch(idx, critic.tau, critic.gamma, only_future, rng, False)
    hind = critic.tau * np.log(bound) / math.log(critic.gamma)
    est = critic.distance(z[s], z[g]).numpy()
    keep = hind > 0
    return float(np.median(est[keep] / hind[keep])) if keep.any() else float("nan")


def train_critics(stack: nn.Module, data: OfflineDataset, cfg: CriticConfig, seed: int = 0,
                  progress: bool = True) -> CriticReport:  # fmt: skip
    """Attach and train a critic at every level on the stack's frozen states of ``data``."""
    from rich.progress import Progress  # local: only the training path needs rich

    t0 = time.perf_counter()
    attach_critics(stack, cfg)
    stack.eval()
    zs = encode_dataset(stack, data)
    idx = _Index.of(data)
    random_layouts = data.meta.layouts == "random"
    losses, ratios = [], []
    with Progress(disable=not progress, transient=True) as bar:
        for k, level in enumerate(stack.levels):
            task = bar.add_task(f"critic level {k}", total=cfg.steps)
            loss, ratio = train_critic(level.heads["critic"], zs[k], idx, cfg, seed + k, random_layouts,
                                       lambda _s, task=task: bar.advance(task))  # fmt: skip
            losses.append(loss)
            ratios.append(ratio)
    return CriticReport(losses, ratios, time.perf_counter() - t0)
