"""How well level 0 of a checkpoint supports the graph planner on its fixed MiniGrid layout.

Evaluation only (it reads true poses):

- rollout drift: from random poses, ``T`` random actions predicted open-loop; the fraction whose
  predicted state is nearest the true pose's state ("snap"), by ``T``;
- graph edges at several radius scales: per action, the fraction of real moves whose edge leads
  to the right node, the fraction with no edge, and the fraction of blocked moves (the pose
  does not change) that got an edge anyway (spurious, corrected online by the agent);
- the moves it gets wrong (up to 5 per action: pose, true next pose, the pose the edge leads to);
- reachability: the fraction of nodes with a path to a node (median and minimum over 16 random
  nodes: a doorway whose exit edge is wrong cuts a part of the maze off).

    python scripts/graph_probe.py runs/RUN/checkpoints/last.ckpt [radius scales, e.g. 0.5,1,2]
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from hjepa.checkpoint import load_module
from hjepa.data.storage import OfflineDataset
from hjepa.envs.oracle import LayoutOracle, agent_pose
from hjepa.planning.graph import build_graph, distances_to, distinct_observations
from planning_probe import next_pose_table


@torch.no_grad()
def drift(level, z: torch.Tensor, nxt: np.ndarray, horizons=(1, 5, 10, 20), n: int = 256) -> None:
    rng = np.random.default_rng(0)
    for t_max in horizons:
        idx, acts = rng.integers(0, len(z), n), rng.integers(0, nxt.shape[1], (n, t_max))
        s, pose = z[idx], idx.copy()
        for t in range(t_max):
            s = level.predict(s, level.action_input(torch.as_tensor(acts[:, t])))
            pose = nxt[pose, acts[:, t]]
        finite = torch.isfinite(s).all(1)
        snap = torch.zeros(n, dtype=torch.bool)
        snap[finite] = torch.from_numpy(torch.cdist(s[finite], z).argmin(1).numpy() == pose[finite.numpy()])
        print(f"rollout T={t_max:>2}: snap {float(snap.float().mean()):.2f} (finite {float(finite.float().mean()):.2f})")


@torch.no_grad()
def main(ckpt: str, scales: str = "0.5,1,2") -> None:
    torch.set_num_threads(2)
    module = load_module(ckpt)
    stack, cfg = module.stack.eval(), module.cfg
    obs = distinct_observations(OfflineDataset.open(module.hparams["data_path"]).obs, 8192)
    nav = LayoutOracle(cfg.data.env_id).nav(cfg.data.layout_seed)
    poses = np.array([agent_pose(o) for o in obs])
    nxt = next_pose_table(nav, poses, stack.action_spec.env_actions)
    z = stack.encode(torch.from_numpy(obs))[0]
    level = stack.levels[0]
    print(f"memory: {len(obs)} distinct observations, state width {z.shape[1]}")
    drift(level, z, nxt)
    true = np.where(nxt == np.arange(len(poses))[:, None], -1, nxt)
    for scale in (float(s) for s in scales.split(",")):
        g = build_graph(z, lambda s, a: level.predict(s, level.action_input(a)), torch.arange(nxt.shape[1]), 1, scale)
        for a in range(nxt.shape[1]):
            moves, blocked = true[:, a] >= 0, true[:, a] < 0
            spurious = f"{(g.succ[blocked, a] >= 0).mean():.3f}" if blocked.any() else "-"
            print(f"radius x{scale}: action {a}: right {(g.succ[moves, a] == true[moves, a]).mean():.3f} "
                  f"none {(g.succ[moves, a] < 0).mean():.3f} of {moves.sum()} moves; spurious {spurious} "
                  f"of {blocked.sum()} blocked")  # fmt: skip
            wrong = np.flatnonzero(moves & (g.succ[:, a] != true[:, a]))
            for i in wrong[:5]:  # the moves the graph gets wrong: from, truly to, edge to
                edge = poses[g.succ[i, a]].tolist() if g.succ[i, a] >= 0 else None
                print(f"    wrong: {poses[i].tolist()} -> {poses[true[i, a]].tolist()}, edge to {edge}")
        targets = np.random.default_rng(1).choice(len(z), 16, replace=False)
        reach = [np.isfinite(distances_to(g.succ, int(t))).mean() for t in targets]
        print(f"radius x{scale}: nodes with a path to a node, over 16 random nodes: median {np.median(reach):.2f}, "
              f"min {np.min(reach):.2f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
