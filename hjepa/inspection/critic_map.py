"""The critic over the map: each level's estimated cost-to-go to one goal from every free
cell, beside the oracle's shortest-path distance.

Every pose of the layout is observed, encoded and costed with the level's critic
(``critic_of(level).distance``, in env steps) toward the goal observation's state at that
level. A cell shows the minimum over its four headings, for the critic and the oracle alike.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from hjepa.critic import critic_of
from hjepa.envs.oracle import PoseGraph
from hjepa.inspection.source import StateBank, encode_all, map_extent, spearman
from hjepa.stack import HJEPA


class CriticMap(NamedTuple):
    """One level's critic toward ``goal`` over every pose, and the oracle's distances."""

    level: int
    goal: tuple[int, int]
    poses: np.ndarray  # "n 3"
    critic: np.ndarray  # "n" estimated env steps to the goal
    oracle: np.ndarray  # "n" shortest-path actions to the goal
    spearman: float  # rank correlation of the two over the poses
    width: int
    height: int

    def cell_grid(self, values: np.ndarray) -> np.ndarray:
        """``"h w"`` image of per-pose ``values`` reduced to cells by the minimum over headings
        (NaN on walls), row y and column x."""
        grid = np.full((self.height, self.width), np.nan)
        for (x, y, _), v in zip(self.poses, values):
            grid[y, x] = v if np.isnan(grid[y, x]) else min(grid[y, x], v)
        return grid


@torch.no_grad()
def critic_maps(stack: HJEPA, bank: StateBank, graph: PoseGraph, goal_obs: np.ndarray, goal: tuple[int, int],
                levels: Sequence[int]) -> list[CriticMap]:  # fmt: skip
    """Critic maps of the ``levels`` that have a critic (others are left out).

    Args:
        bank: every pose of the layout with its states (:func:`~hjepa.inspection.source.layout_bank`).
        graph: the layout's oracle, for the reference distances.
        goal_obs: the goal observation the agent would be given; ``goal`` its cell.
    """
    goal_states = encode_all(stack, goal_obs[None])
    dist = graph.distances_to(goal)
    oracle = np.array([dist.get(tuple(int(v) for v in p), np.nan) for p in bank.pose], float)
    maps = []
    for k in levels:
        critic = critic_of(stack.levels[k])
        if critic is None:
            continue
        est = critic.distance(bank.states[k], goal_states[k]).numpy().astype(float)
        ok = ~np.isnan(oracle)
        maps.append(CriticMap(k, tuple(goal), bank.pose, est, oracle, spearman(est[ok], oracle[ok]),
                              graph.width, graph.height))  # fmt: skip
    return maps


def plot_critic_maps(maps: Sequence[CriticMap], layout: np.ndarray | None = None) -> Figure:
    """A row per level: critic heatmap, oracle heatmap (same colour scale), and a scatter of
    critic against oracle per pose with the identity line."""
    fig = Figure(figsize=(14, 4.2 * max(1, len(maps))))
    if not maps:
        fig.text(0.5, 0.5, "this checkpoint has no critics", ha="center")
        return fig
    axes = fig.subplots(len(maps), 3, squeeze=False)
    for row, m in zip(axes, maps):
        est, ora = m.cell_grid(m.critic), m.cell_grid(m.oracle)
        vmax = float(np.nanmax([np.nanmax(est), np.nanmax(ora)]))
        for ax, img, title in ((row[0], est, f"level {m.level} critic: est. env steps to goal"),
                               (row[1], ora, "oracle: shortest path (actions)")):  # fmt: skip
            shown = ax.imshow(img, cmap="magma_r", vmin=0, vmax=vmax, extent=map_extent(m.width, m.height),
                              interpolation="nearest")  # fmt: skip
            ax.plot(*m.goal, marker="*", color="cyan", markersize=14, markeredgecolor="black")
            ax.set(title=title, xticks=[], yticks=[])
            ax.set_facecolor("0.5")
            fig.colorbar(shown, ax=ax, fraction=0.046)
        ax = row[2]
        ax.scatter(m.oracle, m.critic, s=5, alpha=0.4)
        top = float(np.nanmax([np.nanmax(m.oracle), np.nanmax(m.critic), 1.0]))
        ax.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1, label="critic = oracle")
        ax.set(title=f"per pose: Spearman {m.spearman:.2f}", xlabel="oracle actions", ylabel="critic env steps")
        ax.legend(fontsize="small")
    return fig
