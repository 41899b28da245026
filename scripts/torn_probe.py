"""How the graph's torn-move rule (``hjepa.planning.graph.TORN``) would act on a checkpoint's
level-0 graph on its fixed MiniGrid layout, ratio by ratio. Evaluation only (it reads true poses).

Among the (node, action) predictions whose nearest node is the node they came from: the real
moves so lost, how many of them a ratio recovers (next-nearest node within the radius, at most
ratio x as far, and it is the true next pose), and how many blocked moves it gives an edge.

    python scripts/torn_probe.py runs/RUN/checkpoints/last.ckpt [radius scale, default 3]
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from hjepa.checkpoint import load_module
from hjepa.data.storage import OfflineDataset
from hjepa.envs.oracle import LayoutOracle, agent_pose
from hjepa.planning.graph import distinct_observations, keys_of, nearest_keys
from hjepa.planning.memory import PlanningMemory
from planning_probe import next_pose_table

RATIOS = (1.2, 1.5, 2.0, 3.0)


@torch.no_grad()
def two_nearest(memory: PlanningMemory, n_act: int) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """Source nodes, and the two nearest nodes and their distances (in median node gaps) of every
    (node, action) prediction on level 0 of ``memory``, compared as ``build_graph`` does."""
    level, z, keys, proj = memory.stack.levels[0], memory.states[0], memory.keys[0], memory.proj[0]
    gap = torch.cdist(keys, keys).fill_diagonal_(float("inf")).min(1).values.median()
    src, act = torch.arange(len(z)).repeat_interleave(n_act), torch.arange(n_act).repeat(len(z))
    best = [
        nearest_keys(keys_of(level.predict(z[src[i : i + 2048]], level.action_input(act[i : i + 2048])), proj), keys,
                     memory.keys_sq[0], k=2)
        for i in range(0, len(src), 2048)
    ]  # fmt: skip
    return src.numpy(), torch.cat([b[0] for b in best]), torch.cat([b[1] for b in best]) / gap


def main(ckpt: str, radius: float = 3.0) -> None:
    torch.set_num_threads(2)
    module = load_module(ckpt)
    stack, cfg = module.stack.eval(), module.cfg
    obs = distinct_observations(OfflineDataset.open(module.hparams["data_path"]).obs, 8192)
    poses = np.array([agent_pose(o) for o in obs])
    nxt = next_pose_table(LayoutOracle(cfg.data.env_id).nav(cfg.data.layout_seed), poses, stack.action_spec.env_actions)
    src, idx, dist = two_nearest(PlanningMemory(stack, torch.from_numpy(obs)), nxt.shape[1])
    truth = nxt.reshape(-1)
    stays = idx[:, 0].numpy() == src
    blocked = truth == src
    lost = stays & ~blocked
    print(f"{len(src)} moves: {int(blocked.sum())} blocked; real moves snapped onto their own node: {int(lost.sum())}")
    ratio = (dist[:, 1] / dist[:, 0].clamp_min(1e-6)).numpy()
    for r in RATIOS:
        torn = stays & (ratio <= r) & (dist[:, 1].numpy() <= radius)
        right = torn & (idx[:, 1].numpy() == truth)
        print(f"ratio {r}: recovers {int((right & lost).sum())} of {int(lost.sum())} lost moves; "
              f"gives {int((torn & blocked).sum())} of {int(blocked.sum())} blocked moves an edge")


if __name__ == "__main__":
    main(sys.argv[1], *(float(a) for a in sys.argv[2:3]))
