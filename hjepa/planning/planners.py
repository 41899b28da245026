"""Planners: pure functions over callables, shared by every level.

A planner knows nothing about JEPAs. It receives a cost function over whole action
sequences (or a step function for tree search) and returns the best sequence it found:

- :func:`beam_search`: exact search for small discrete branching factors (width >= the
  number of sequences makes it exhaustive); the cost is summed over the trajectory.
- :func:`categorical_cem`: cross-entropy method over discrete actions (independent
  categoricals per step, smoothed updates, warm start from the previous plan).
- :func:`gaussian_cem` and :func:`mppi`: continuous actions in a box (latent macro-actions
  in [-1, 1], PointMaze forces).

Shapes: ``n`` candidate sequences, ``h`` horizon, ``e`` action width. A discrete action
sequence is ``"n h"`` (long); a continuous one ``"n h e"``. Every planner counts the
sequences it evaluated times the horizon in ``calls`` (predictor calls when the cost function
rolls the world model out), so that budgets can be matched across agents.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from einops import rearrange, repeat
from torch import Tensor

from hjepa.errors import ConfigError

SequenceCost = Callable[[Tensor], Tensor]
"""Action sequences ``"n h"`` or ``"n h e"`` -> cost ``"n"`` (lower is better)."""
StepFn = Callable[[Tensor, Tensor], Tensor]
"""``(states "n d", actions "n") -> next states "n d"``."""
StepCost = Callable[[Tensor, int], Tensor]
"""``(states "n d", depth t >= 1) -> cost "n"`` of reaching these states at depth t."""


class PlanResult(NamedTuple):
    """What a planner found.

    Attributes:
        actions: the best sequence, ``"h"`` (discrete) or ``"h e"`` (continuous).
        cost: its cost (a float).
        history: the best cost after each iteration (CEM, MPPI) or depth (beam): the figure
            that shows the search improving.
        calls: sequences evaluated x horizon (predictor calls under a rollout cost).
        state: planner-specific warm-start state (CEM: the final distribution).
    """

    actions: Tensor
    cost: float
    history: list[float]
    calls: int
    state: Tensor | None = None


def _check_budget(**values: int) -> None:
    bad = {k: v for k, v in values.items() if int(v) < 1}
    if bad:
        raise ConfigError(f"Planner budget must be positive, got {bad}.")


# ----------------------------------------------------------------------------- tree search
@torch.no_grad()
def beam_search(start: Tensor, step: StepFn, cost: StepCost, n_actions: int, depth: int, width: int) -> PlanResult:
    """Keep the ``width`` cheapest partial sequences at each depth (cost summed over depth).

    Args:
        start: the current state ``"d"``.
        step: the model, applied to all expanded candidates at once.
        cost: per-state cost at a given depth; a sequence's cost is the sum over its states.
        n_actions: branching factor.
        depth: horizon ``h``.
        width: beam width (``>= n_actions ** depth`` makes the search exhaustive).
    """
    _check_budget(n_actions=n_actions, depth=depth, width=width)
    states = rearrange(start, "d -> 1 d")
    seqs = torch.zeros(1, 0, dtype=torch.long, device=start.device)
    totals = torch.zeros(1, device=start.device)
    history, calls = [], 0
    for t in range(1, depth + 1):
        k = states.shape[0]
        acts = repeat(torch.arange(n_actions, device=start.device), "a -> (k a)", k=k)
        nxt = step(repeat(states, "k d -> (k a) d", a=n_actions), acts)
        calls += nxt.shape[0]
        cand = repeat(totals, "k -> (k a)", a=n_actions) + cost(nxt, t)
        keep = torch.topk(cand, min(width, cand.shape[0]), largest=False).indices
        parents = keep // n_actions
        seqs = torch.cat([seqs[parents], rearrange(acts[keep], "k -> k 1")], dim=1)
        states, totals = nxt[keep], cand[keep]
        history.append(float(totals[0]))
    return PlanResult(seqs[0], float(totals[0]), history, calls)


# ----------------------------------------------------------------------------- discrete CEM
@torch.no_grad()
def categorical_cem(
    cost: SequenceCost,
    n_actions: int,
    horizon: int,
    samples: int,
    iters: int,
    elites: int,
    init_probs: Tensor | None = None,
    smoothing: float = 0.7,
    generator: torch.Generator | None = None,
) -> PlanResult:
    """CEM over ``horizon`` independent categoricals; the best sequence seen is kept.

    Args:
        init_probs: ``"h a"`` warm start (e.g. :func:`shift_probs` of the previous plan).
        smoothing: weight of the elite frequencies in each update (the rest keeps the old
            distribution, so that no action's probability drops to zero at once).
    """
    _check_budget(n_actions=n_actions, horizon=horizon, samples=samples, iters=iters, elites=elites)
    probs = init_probs.clone() if init_probs is not None else torch.full((horizon, n_actions), 1.0 / n_actions)
    best_seq, best, history = None, float("inf"), []
    for _ in range(iters):
        seqs = rearrange(torch.multinomial(probs, samples, replacement=True, generator=generator), "h n -> n h")
        costs = cost(seqs)
        order = torch.argsort(costs)[: min(elites, samples)]
        if float(costs[order[0]]) < best:
            best, best_seq = float(costs[order[0]]), seqs[order[0]]
        freq = torch.nn.functional.one_hot(seqs[order], n_actions).float().mean(0)  # "h a"
        probs = smoothing * freq + (1 - smoothing) * probs
        history.append(best)
    return PlanResult(best_seq, best, history, samples * iters * horizon, probs)


def shift_probs(probs: Tensor, floor: float = 0.05) -> Tensor:
    """Warm start for the next step: drop the executed step, append a uniform one, and mix a
    little uniform mass back in so that replanning can change its mind."""
    h, a = probs.shape
    shifted = torch.cat([probs[1:], torch.full((1, a), 1.0 / a)], dim=0)
    return (1 - floor) * shifted + floor / a


# ----------------------------------------------------------------------------- continuous
@torch.no_grad()
def gaussian_cem(
    cost: SequenceCost,
    dim: int,
    horizon: int,
    samples: int,
    iters: int,
    elites: int,
    low: float = -1.0,
    high: float = 1.0,
    init_mean: Tensor | None = None,
    init_std: float = 0.5,
    min_std: float = 0.05,
    generator: torch.Generator | None = None,
) -> PlanResult:
    """CEM with a diagonal Gaussian over ``"h e"`` clipped to ``[low, high]``.

    The previous mean (:func:`shift_mean`) warm-starts the search and is always among the
    candidates, so a warm-started plan never gets worse than the one it started from.
    """
    _check_budget(dim=dim, horizon=horizon, samples=samples, iters=iters, elites=elites)
    mean = init_mean.clone() if init_mean is not None else torch.zeros(horizon, dim)
    std = torch.full((horizon, dim), float(init_std))
    best_seq, best, history = mean.clone(), float("inf"), []
    for _ in range(iters):
        noise = torch.randn(samples, horizon, dim, generator=generator)
        seqs = (mean + std * noise).clamp(low, high)
        seqs[0] = mean.clamp(low, high)
        costs = cost(seqs)
        order = torch.argsort(costs)[: min(elites, samples)]
        if float(costs[order[0]]) < best:
            best, best_seq = float(costs[order[0]]), seqs[order[0]].clone()
        elite = seqs[order]
        mean, std = elite.mean(0), elite.std(0, unbiased=False).clamp_min(min_std)
        history.append(best)
    return PlanResult(best_seq, best, history, samples * iters * horizon, mean)


@torch.no_grad()
def mppi(
    cost: SequenceCost,
    dim: int,
    horizon: int,
    samples: int,
    iters: int,
    temperature: float = 0.1,
    low: float = -1.0,
    high: float = 1.0,
    init_mean: Tensor | None = None,
    noise_std: float = 0.5,
    generator: torch.Generator | None = None,
) -> PlanResult:
    """Model-predictive path integral: the mean moves to the softmin-weighted average of the
    samples (weights ``exp(-(c - min c) / temperature)``); the best sample seen is returned."""
    _check_budget(dim=dim, horizon=horizon, samples=samples, iters=iters)
    mean = init_mean.clone() if init_mean is not None else torch.zeros(horizon, dim)
    best_seq, best, history = mean.clone(), float("inf"), []
    for _ in range(iters):
        seqs = (mean + noise_std * torch.randn(samples, horizon, dim, generator=generator)).clamp(low, high)
        seqs[0] = mean.clamp(low, high)
        costs = cost(seqs)
        i = int(torch.argmin(costs))
        if float(costs[i]) < best:
            best, best_seq = float(costs[i]), seqs[i].clone()
        w = torch.softmax(-(costs - costs.min()) / max(temperature, 1e-8), dim=0)
        mean = torch.einsum("n,nhe->he", w, seqs)
        history.append(best)
    return PlanResult(best_seq, best, history, samples * iters * horizon, mean)


def shift_mean(mean: Tensor) -> Tensor:
    """Warm start for continuous planners: drop the executed step, repeat the last one."""
    return torch.cat([mean[1:], mean[-1:]], dim=0)
