"""What each level predicts: error against horizon, and nearest-neighbour views.

Errors come from :func:`hjepa.probe.levels_report` (open-loop rollouts on dataset windows, in
units of the targets' spread, beside copying the start state). Nearest-neighbour views read a
level's one-step prediction back as observations: the dataset observations whose **target**
states (the space the predictor is trained to hit) are nearest the prediction.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from rich.table import Table

from hjepa.data.storage import OfflineDataset
from hjepa.inspection.source import StateBank, agent_cell, check_levels, dataset_bank, nearest, render
from hjepa.probe import levels_report, sample_windows
from hjepa.specs import ObsSpec
from hjepa.stack import HJEPA


class HorizonErrors(NamedTuple):
    """One level's open-loop prediction error by horizon (1..H steps of the level)."""

    level: int
    tau: int
    pred: list[float]  # rollout error, spread units
    copy: list[float]  # copy-the-start-state error, spread units
    std_min: float
    eff_rank: float


def prediction_errors(stack: HJEPA, data: OfflineDataset, levels: Sequence[int] | None = None,
                      max_horizon: int = 4, windows: int = 128, seed: int = 0) -> list[HorizonErrors]:  # fmt: skip
    """Per level: rollout error against horizon beside the copy-last-state baseline."""
    keep = check_levels(stack, levels)
    rows = levels_report(stack, data, max_horizon=max_horizon, windows=windows, seed=seed)
    return [HorizonErrors(r["level"], r["tau"], r["pred_error_by_horizon"], r["copy_error_by_horizon"],
                          r["std_min"], r["effective_rank"]) for r in rows if r["level"] in keep]  # fmt: skip


def prediction_table(rows: Sequence[HorizonErrors]) -> Table:
    """A rich table: one row per level and horizon, with the ratio to the copy baseline."""
    table = Table(title="prediction error by horizon (spread units; < copy: the level beats copying)")
    for col in ("level", "tau", "horizon", "env steps", "predicted", "copy last", "pred / copy"):
        table.add_column(col, justify="right")
    for r in rows:
        for h, (p, c) in enumerate(zip(r.pred, r.copy), start=1):
            ratio = p / c if c > 0 else float("nan")
            table.add_row(str(r.level), str(r.tau), str(h), str(h * r.tau), f"{p:.3f}", f"{c:.3f}", f"{ratio:.2f}")
    return table


def plot_prediction_errors(rows: Sequence[HorizonErrors]) -> Figure:
    """One panel per level: predicted vs copy-last-state error against horizon."""
    fig = Figure(figsize=(4 * max(1, len(rows)), 3.6))
    axes = np.atleast_1d(fig.subplots(1, max(1, len(rows)), squeeze=False)[0])
    for ax, r in zip(axes, rows):
        h = np.arange(1, len(r.pred) + 1)
        ax.plot(h, r.pred, marker="o", label="predicted (rollout)")
        ax.plot(h, r.copy, marker="s", linestyle="--", color="grey", label="copy last state")
        ax.set(title=f"level {r.level} (tau={r.tau} env steps)", xlabel="horizon (steps of this level)",
               ylabel="error (spread units)", ylim=(0, None))  # fmt: skip
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize="small")
    fig.suptitle("open-loop prediction error in representation space")
    return fig


# ----------------------------------------------------------------------------- neighbours
class NeighbourView(NamedTuple):
    """Level ``level``'s one-step predictions read back as dataset observations.

    ``q`` examples, ``k`` neighbours each. ``rank`` is the true target's rank among all
    distinct bank observations (0: nearest); ``copy_rank`` the same for the copy baseline
    (the start state used as the prediction).
    """

    level: int
    tau: int
    start_obs: np.ndarray  # "q ..." where the prediction starts
    true_obs: np.ndarray  # "q ..." what happened tau env steps later
    neighbour_obs: np.ndarray  # "q k ..." the k nearest bank observations to the prediction
    neighbour_pose: np.ndarray  # "q k 3" their poses (-1: unknown)
    distances: np.ndarray  # "q k"
    rank: np.ndarray  # "q"
    copy_rank: np.ndarray  # "q"
    bank_size: int
    start_pose: np.ndarray  # "q 3" privileged, for display and figures (-1: unknown)
    true_pose: np.ndarray  # "q 3"

    @property
    def hits(self) -> np.ndarray:
        """``"q"`` bool: the true target is among the ``k`` neighbours."""
        return self.rank < self.neighbour_obs.shape[1]

    def top_k(self, k: int | None = None) -> tuple[float, float]:
        """Fraction of examples whose true target ranks < ``k``: prediction, copy baseline."""
        k = self.neighbour_obs.shape[1] if k is None else k
        return float((self.rank < k).mean()), float((self.copy_rank < k).mean())

    def cell_hits(self) -> tuple[float, float, int]:
        """How often the nearest neighbour stands on the true cell: over all examples with known
        poses, over those where the agent changed cell (copying always misses these), and
        how many those are. Headings and layouts aside: this asks "where", not "which way"."""
        known = (self.true_pose[:, 0] >= 0) & (self.neighbour_pose[:, 0, 0] >= 0) & (self.start_pose[:, 0] >= 0)
        hit = (self.neighbour_pose[:, 0, :2] == self.true_pose[:, :2]).all(axis=1)
        moved = known & (self.start_pose[:, :2] != self.true_pose[:, :2]).any(axis=1)
        mean = lambda m: float(hit[m].mean()) if m.any() else float("nan")  # noqa: E731
        return mean(known), mean(moved), int(moved.sum())


def _ranks_of(queries: torch.Tensor, bank: torch.Tensor, true_idx: np.ndarray) -> np.ndarray:
    """Rank of bank row ``true_idx[i]`` by distance to query ``i`` (0 = nearest, ties optimistic)."""
    d = torch.cdist(queries.float(), bank.float())
    own = d[torch.arange(len(true_idx)), torch.from_numpy(true_idx)]
    return (d < own[:, None] - 1e-6).sum(dim=1).numpy()


@torch.no_grad()
def neighbour_views(stack: HJEPA, data: OfflineDataset, levels: Sequence[int] | None = None, examples: int = 256,
                    k: int = 5, seed: int = 0, max_bank: int = 20_000) -> list[NeighbourView]:  # fmt: skip
    """For ``examples`` dataset windows: each level's one-step prediction from the window's
    first state, its ``k`` nearest bank observations, and where the true target ranks.

    The prediction is the stack's own (``HJEPA.forward`` on the window: online state at t=0,
    latent action inferred from the actions actually taken); the bank holds the distinct
    dataset observations, the true targets included, encoded by the target encoders.
    """
    keep = check_levels(stack, levels)
    obs, actions = sample_windows(data, stack.window, examples, seed)
    passes = stack(obs, actions).passes
    finals = np.asarray(obs[:, [0] + [stack.taus[j] for j in keep]].reshape(-1, *obs.shape[2:]))
    bank = dataset_bank(stack, data, target=True, extra=finals, max_items=max_bank, seed=seed)
    index = {row.tobytes(): i for i, row in enumerate(bank.obs)}
    return [_view(stack, bank, index, obs, passes[j], j, k) for j in keep]


def _view(stack: HJEPA, bank: StateBank, index: dict, obs: torch.Tensor, lp: object, level: int, k: int) -> NeighbourView:
    tau = stack.taus[level]
    start_obs, true_obs = np.asarray(obs[:, 0]), np.asarray(obs[:, tau])
    true_idx, start_idx = (np.array([index[np.ascontiguousarray(o).tobytes()] for o in x]) for x in (true_obs, start_obs))
    pred, start = lp.predictions[:, 0], lp.states[:, 0]
    idx, dist = nearest(pred, bank.states[level], k)
    return NeighbourView(level, tau, start_obs, true_obs, bank.obs[idx], bank.pose[idx], dist,
                         _ranks_of(pred, bank.states[level], true_idx), _ranks_of(start, bank.states[level], true_idx),
                         len(bank.obs), bank.pose[start_idx], bank.pose[true_idx])  # fmt: skip


def plot_neighbours(view: NeighbourView, obs_spec: ObsSpec, rows: int = 4) -> Figure:
    """Rows of examples: start, true next observation, then the ``k`` nearest observations to
    the prediction (green frame: the true target; yellow ring: the agent). Drawn as one mosaic
    image, which renders far faster than an axes per observation."""
    q, k = view.neighbour_obs.shape[:2]
    rows = min(rows, q)
    cells = [[(view.start_obs[i], "start", False), (view.true_obs[i], f"true t+{view.tau}\n(rank {view.rank[i]})", False)]
             + [(view.neighbour_obs[i, j], f"#{j + 1} d={view.distances[i, j]:.2f}\n{_pose(view.neighbour_pose[i, j])}",
                 bool(np.array_equal(view.neighbour_obs[i, j], view.true_obs[i]))) for j in range(k)]
             for i in range(rows)]  # fmt: skip
    tile = _tile(view.start_obs[0], obs_spec)
    first = _image(view.start_obs[0], obs_spec, tile)
    th, tw = first.shape[:2]
    pad, head = max(3, th // 30), 30
    canvas = np.full((rows * (th + head + 2 * pad), (k + 2) * (tw + 2 * pad), 3), 255, np.uint8)
    labels, rings = [], []
    for i, row in enumerate(cells):
        for j, (obs, title, is_true) in enumerate(row):
            y0, x0 = i * (th + head + 2 * pad) + head + pad, j * (tw + 2 * pad) + pad
            if is_true:
                canvas[y0 - pad : y0 + th + pad, x0 - pad : x0 + tw + pad] = (50, 205, 50)
            canvas[y0 : y0 + th, x0 : x0 + tw] = _image(obs, obs_spec, tile)
            labels.append((x0 + tw / 2, y0 - pad, title))
            cell = agent_cell(obs, obs_spec)
            if cell is not None:
                rings.append((x0 + (cell[0] + 0.5) * tile, y0 + (cell[1] + 0.5) * tile))
    fig = Figure(figsize=(canvas.shape[1] / 100, canvas.shape[0] / 100 + 0.45))
    ax = fig.add_axes((0, 0, 1, canvas.shape[0] / (canvas.shape[0] + 45)))
    ax.imshow(canvas, interpolation="nearest")
    for x, y, text in labels:
        ax.text(x, y, text, ha="center", va="bottom", fontsize=6.5, linespacing=1.1)
    if rings:
        ax.scatter(*zip(*rings), s=(2.2 * tile) ** 2, facecolors="none", edgecolors="yellow", linewidths=1.0)
    ax.set_axis_off()
    (pred_hit, copy_hit), (_, cell_moved, moved) = view.top_k(), view.cell_hits()
    fig.suptitle(f"level {view.level}: nearest observations to the prediction of t+{view.tau}\n"
                 f"true target in top-{k}: {pred_hit:.0%} predicted, {copy_hit:.0%} copying the start; nearest on the "
                 f"true cell when the agent moved: {cell_moved:.0%} of {moved}; {view.bank_size} distinct observations",
                 fontsize="small", y=0.995)  # fmt: skip
    return fig


def _pose(p: np.ndarray) -> str:
    return "pose ?" if p[0] < 0 else f"({p[0]},{p[1]}) dir {p[2]}"


def _tile(obs: np.ndarray, spec: ObsSpec) -> int:
    """Pixels per grid cell (or upscaling of an image) so that a view is >= ~120 px wide."""
    width = spec.shape[0] if spec.kind == "grid" else (spec.shape[1] if spec.kind == "image" else 120)
    return max(2 if spec.kind == "image" else 6, -(-120 // width))


def _image(obs: np.ndarray, spec: ObsSpec, tile: int) -> np.ndarray:
    """RGB of one observation at ``tile`` pixels per cell; a blank tile for state vectors."""
    img = render(obs, spec, tile) if spec.kind == "grid" else render(obs, spec)
    if img is None:
        return np.full((120, 120, 3), 230, np.uint8)
    if spec.kind == "image":
        img = np.repeat(np.repeat(img, tile, axis=0), tile, axis=1)
    return img
