"""Per-level figures of a trained stack on held data: prediction error against horizon, beside
copying the last state, and embedding health (``levels_report`` of results.json, docs/benchmark.md)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from hjepa import diagnostics
from hjepa.data.storage import OfflineDataset
from hjepa.datamodule import window_starts
from hjepa.report import map_label


def sample_windows(data: OfflineDataset, window: int, n: int, seed: int) -> tuple[Tensor, Tensor]:
    """``n`` windows of ``window`` observations inside episodes: ``obs "b t ..."``, ``actions "b t-1"``."""
    starts = window_starts(np.asarray(data.episode_starts), np.arange(data.num_episodes), window)
    if len(starts) == 0:
        raise ValueError(f"No episode holds {window} observations; shorten the probe horizon.")
    rng = np.random.default_rng(seed)
    st = np.sort(starts[rng.integers(0, len(starts), n)])
    idx = st[:, None] + np.arange(window)[None, :]
    actions = np.asarray(data.actions[idx[:, :-1]])
    if data.action_spec.is_discrete:
        actions = actions.astype(np.int64)
    return torch.from_numpy(np.asarray(data.obs[idx])), torch.from_numpy(actions)


@torch.no_grad()
def levels_report(stack: torch.nn.Module, data: OfflineDataset, max_horizon: int = 4, windows: int = 128,
                  seed: int = 0) -> list[dict]:  # fmt: skip
    """Per level: open-loop rollout error by horizon (1..max_horizon level steps) in units of
    the targets' spread, the same for copying the start state, min per-dim std, effective rank."""
    window = min(stack.taus[-1] * max_horizon + 1, int(data.episode_lengths.max()) + 1)
    obs, actions = sample_windows(data, window, windows, seed)
    b, t = obs.shape[:2]
    x = rearrange(obs, "b t ... -> (b t) ...")
    below = stack.levels[0].action_input(actions)
    rows = []
    for k, level in enumerate(stack.levels):
        s_on, s_tg = level.encode(x), level.target_encode(x)
        s = rearrange(s_on, "(b t) d -> b t d", b=b)
        tgt = rearrange(s_tg, "(b t) d -> b t d", b=b)
        a = below if k == 0 else stack.latent_actions(level, below, t)
        tau = level.spec.tau
        h = max(1, min(max_horizon, (t - 1) // tau))
        roll = level.rollout(s[:, 0], a[:, ::tau][:, :h])
        spread = rearrange(tgt, "b t d -> (b t) d").var(dim=0).mean().clamp_min(1e-8)
        err = [float(F.mse_loss(roll[:, i], tgt[:, (i + 1) * tau]) / spread) for i in range(h)]
        copy = [float(F.mse_loss(s[:, 0], tgt[:, (i + 1) * tau]) / spread) for i in range(h)]
        health = diagnostics.embedding_health(s_on)
        rows.append({"level": k, "tau": tau, "dim": level.dim, "map": map_label(level), "pred_error_by_horizon": err,
                     "copy_error_by_horizon": copy, "std_min": float(health["std_min"]),
                     "effective_rank": float(health["eff_rank"])})  # fmt: skip
        below, x = a, s_on
    return rows
