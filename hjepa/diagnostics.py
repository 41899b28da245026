"""Embedding-health and prediction-quality figures, per level.

A small prediction loss alone means nothing (docs/design-notes.md, the prototypes): these figures say whether a
level's latent moves when the agent moves, whether its predictor beats copying the last
state, and whether the prediction lands nearest to the true next state.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor

from hjepa.regularizers import center_by_group


@torch.no_grad()
def embedding_health(z: Tensor, groups: Tensor | None = None) -> dict[str, float]:
    """Per-dimension std (min, mean) and effective rank of group-centred ``z: "n d"``.

    Effective rank: ``exp`` of the entropy of the normalised singular values (1 = collapsed
    onto a line, ``d`` = isotropic).
    """
    zc = center_by_group(z.float(), groups)
    std = zc.std(dim=0)
    sv = torch.linalg.svdvals(zc)
    p = sv / sv.sum().clamp_min(1e-12)
    erank = torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())
    return {"std_min": std.min().item(), "std_mean": std.mean().item(), "eff_rank": erank.item()}


@torch.no_grad()
def step_ratio(s_from: Tensor, s_to: Tensor, groups: Tensor | None = None) -> float:
    """Mean latent step ``|s_{t+tau} - s_t|`` over the mean group-centred latent norm.

    Near 0 means the latent barely moves when the agent acts (the layout, not the agent, is
    encoded).
    """
    step = (s_to - s_from).float().norm(dim=-1).mean()
    norm = center_by_group(s_from.float(), groups).norm(dim=-1).mean().clamp_min(1e-12)
    return (step / norm).item()


@torch.no_grad()
def relative_prediction_error(pred: Tensor, target: Tensor, previous: Tensor) -> float:
    """Prediction error over the copy-last-state baseline's error (< 1: better than copying)."""
    err = (pred - target).float().norm(dim=-1).mean()
    base = (previous - target).float().norm(dim=-1).mean().clamp_min(1e-12)
    return (err / base).item()


SAME_CODE = 1e-3
"""Target cells closer than this share of the codebook's widest gap are one code (float noise)."""


@torch.no_grad()
def snapped_map_accuracy(pred: Tensor, target: Tensor, channels: int) -> float:
    """Fraction of predicted maps whose every cell snaps onto its target cell's code.

    ``pred, target: "n (c s)"`` maps of ``s`` cells, ``c = channels`` per cell, whose target
    cells are cell-code embeddings (a ``gridmap`` level's states); the codebook is the distinct
    target cells (within :data:`SAME_CODE`). The graph planners snap predicted cells the same
    way, so one wrong cell is a wrong imagined state however small the error.
    """
    cells = rearrange(target.float(), "n (c s) -> (n s) c", c=channels)
    book, own = torch.unique(cells, dim=0, return_inverse=True)
    gaps = torch.cdist(book, book, compute_mode="donot_use_mm_for_euclid_dist")
    code = (gaps <= SAME_CODE * gaps.max()).float().argmax(1)  # the first row within reach
    flat = rearrange(pred.float(), "n (c s) -> (n s) c", c=channels)
    guess = torch.cdist(flat, book, compute_mode="donot_use_mm_for_euclid_dist").argmin(-1)
    right = rearrange(code[guess] == code[own], "(n s) -> n s", n=pred.shape[0])
    return right.all(dim=1).float().mean().item()


@torch.no_grad()
def nearest_neighbour_accuracy(pred: Tensor, candidates: Tensor) -> float:
    """Fraction of predictions whose nearest candidate is their own true target.

    ``pred, candidates: "n d"``, row i of ``candidates`` is the target of row i of ``pred``.
    A prediction counts as right when no other candidate is strictly nearer than its target
    (duplicated states tie, as they should).
    """
    d = torch.cdist(pred.float(), candidates.float())
    own = d.diagonal()
    return (d.min(dim=1).values >= own - 1e-6).float().mean().item()
