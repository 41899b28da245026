"""Where planning fails on a fixed MiniGrid layout: the critic, the model, or the goal state.

For a trained checkpoint, over every pose of its layout and ``goals`` random goal cells:

- critic Spearman (level k's critic distance against the oracle's, over all poses);
- critic greedy (``critic0_``, ``critic1_``): from each pose, the action whose *true* next
  state level k's critic scores nearest the goal (level 1 reads the level-0 state through its
  encoder) is an optimal action (oracle distance drops by one); the fraction of poses where
  it is, by oracle-distance bin. No learned dynamics involved.
- model greedy (``model0_``, ``model1_``): the same with level 0's *predicted* next states.
- goal gap: the level-0 critic's distance from the goal cell's four poses to the goal
  observation (should be ~0; large values mean the goal observation encodes unlike a pose).

    python scripts/planning_probe.py runs/gm2/checkpoints/last.ckpt [goals]
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from hjepa.checkpoint import load_module
from hjepa.critic import critic_of
from hjepa.envs.oracle import LayoutOracle, goal_observation
from hjepa.inspection.source import encode_all, layout_bank, spearman

BINS = ((1, 12), (13, 24), (25, 999))


def next_pose_table(nav, poses: np.ndarray, env_actions) -> np.ndarray:
    """``"m a"``: the pose index each action leads to; a pose the memory lacks counts as staying."""
    index = {tuple(int(v) for v in p): i for i, p in enumerate(poses)}
    nxt = np.zeros((len(poses), len(env_actions)), dtype=np.int64)
    for i, p in enumerate(poses):
        for a, env_a in enumerate(env_actions):
            nav.set_pose(*(int(v) for v in p))
            nav.step(env_a)
            nxt[i, a] = index.get(nav.pose, i)
    return nxt


@torch.no_grad()
def main(ckpt: str, goals: int = 8) -> None:
    torch.set_num_threads(2)
    module = load_module(ckpt)
    stack, cfg = module.stack.eval(), module.cfg
    nav = LayoutOracle(cfg.data.env_id).nav(cfg.data.layout_seed)
    graph = LayoutOracle(cfg.data.env_id).graph(cfg.data.layout_seed)
    bank = layout_bank(stack, nav)
    nxt = next_pose_table(nav, bank.pose, stack.action_spec.env_actions)
    z0 = bank.states[0]
    level0 = stack.levels[0]
    pred = torch.stack([level0.predict(z0, level0.action_input(torch.full((len(z0),), a))) for a in range(nxt.shape[1])], 1)
    moved = nxt != np.arange(len(z0))[:, None]
    snap = torch.cdist(pred.reshape(-1, z0.shape[1]), z0).argmin(1).reshape(nxt.shape).numpy() == nxt
    print("level-0 snap per action (moves only):", [round(float(snap[moved[:, a], a].mean()), 2) for a in range(nxt.shape[1])])
    rng = np.random.default_rng(0)
    cells = nav.free_cells()
    rows = []
    for gi in rng.choice(len(cells), goals, replace=False):
        goal = tuple(int(v) for v in cells[gi])
        gstates = encode_all(stack, goal_observation(nav, goal)[None])
        dist = graph.distances_to(goal)
        ora = np.array([dist[tuple(int(v) for v in p)] for p in bank.pose])
        row = {"goal": goal}
        for k, level in enumerate(stack.levels):
            c = critic_of(level)
            est = c.distance(bank.states[k], gstates[k]).numpy()
            row[f"sp{k}"] = spearman(est, ora)
            at_goal = ora == 0
            row[f"gap{k}"] = float(est[at_goal].mean())
        scored = {}
        for k in range(min(2, len(stack.levels))):
            ck = critic_of(stack.levels[k])

            def read(z0s, k=k):  # level-0 states read in level k's space
                return z0s if k == 0 else stack.levels[1].encode(z0s)

            for name, nz in (("critic", z0[nxt]), ("model", pred)):
                d = ck.distance(read(nz.reshape(-1, z0.shape[1])), gstates[k])
                scored[f"{name}{k}_"] = d.reshape(nxt.shape).numpy()
        for name, scores in scored.items():
            ok = ora[nxt[np.arange(len(nxt)), scores.argmin(1)]] == ora - 1
            for lo, hi in BINS:
                m = (ora >= lo) & (ora <= hi)
                row[f"{name}{lo}"] = float(ok[m].mean()) if m.any() else float("nan")
        rows.append(row)
        print({k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    keys = [k for k in rows[0] if k != "goal"]
    print("mean", {k: round(float(np.nanmean([r[k] for r in rows])), 2) for k in keys})


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:]))
