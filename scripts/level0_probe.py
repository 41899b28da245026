"""Level-0 learnability probe (docs/design-notes.md, "A spatial level-0 state").

Trains a one-level stack on a fixed-layout FourRooms dataset with a plain loop, then measures on
*every* pose of the layout and every action whose next pose differs:
- snap: the predicted next state's nearest neighbour among all poses' states is the true next pose;
- err/copy: ||pred - s_next||^2 / ||s - s_next||^2 (median), below 1 beats copying the state.

    python scripts/level0_probe.py runs/x/data 1600 levels.0.kind=gridmap loss.pairs_per_window=4
"""

from __future__ import annotations

import dataclasses
import sys
import time

import numpy as np
import torch
from hjepa.experiments.presets import fourrooms

from hjepa.config import apply_overrides
from hjepa.data.storage import OfflineDataset
from hjepa.datamodule import WindowBatches, window_starts
from hjepa.envs.oracle import LayoutOracle
from hjepa.stack import HJEPA, ema_momentum


def pose_table(
    stack: HJEPA, env_id: str, layout_seed: int
) -> tuple[torch.Tensor, np.ndarray]:
    """Observations of every pose ``"p w h 3"`` and the next pose index per action ``"p a"``."""
    nav = LayoutOracle(env_id).nav(layout_seed)
    poses = [(int(x), int(y), d) for x, y in nav.free_cells() for d in range(4)]
    index = {p: i for i, p in enumerate(poses)}
    obs, nxt = (
        [],
        np.zeros((len(poses), len(stack.action_spec.env_actions)), dtype=np.int64),
    )
    for i, p in enumerate(poses):
        nav.set_pose(*p)
        obs.append(nav.observation().copy())
        for a, env_a in enumerate(stack.action_spec.env_actions):
            nav.set_pose(*p)
            nav.step(env_a)
            nxt[i, a] = index[nav.pose]
    return torch.from_numpy(np.stack(obs)), nxt


@torch.no_grad()
def transition_report(
    stack: HJEPA, obs: torch.Tensor, nxt: np.ndarray
) -> dict[str, float]:
    level = stack.levels[0].eval()
    z = level.encode(obs)
    out = {}
    for a in range(nxt.shape[1]):
        pred = level.predict(z, level.action_input(torch.full((len(z),), a)))
        moved = nxt[:, a] != np.arange(len(z))
        snap = torch.cdist(pred, z).argmin(1).numpy() == nxt[:, a]
        err = ((pred - z[nxt[:, a]]) ** 2).sum(1) / ((z - z[nxt[:, a]]) ** 2).sum(
            1
        ).clamp_min(1e-12)
        out[f"a{a}_snap"] = round(float(snap[moved].mean()), 3)
        out[f"a{a}_errcopy"] = round(float(err[torch.from_numpy(moved)].median()), 3)
    level.train()
    return out


def main(data_path: str, steps: int, overrides: list[str]) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = fourrooms(quick=True)
    cfg = apply_overrides(dataclasses.replace(cfg, levels=cfg.levels[:1]), overrides)
    data = OfflineDataset.open(data_path)
    stack = HJEPA.from_config(cfg, data.obs_spec, data.action_spec)
    window = max(cfg.window, cfg.loss.rollout_steps + 1)
    starts = window_starts(data.episode_starts, np.arange(data.num_episodes), window)
    batches = WindowBatches(data, starts, window, cfg.train.batch_size, 0, steps)
    opt = torch.optim.AdamW(
        stack.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay
    )
    obs, nxt = pose_table(stack, cfg.data.env_id, cfg.data.layout_seed)
    t0 = time.time()
    for i in range(steps):
        batch = batches[i]
        for g in opt.param_groups:
            g["lr"] = cfg.train.lr * min(1.0, (i + 1) / cfg.train.warmup_steps)
        out = stack(batch["obs"], batch["actions"], batch["groups"])
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        stack.update_targets(
            ema_momentum(i, steps, cfg.train.ema_start, cfg.train.ema_end)
        )
        if (i + 1) % max(steps // 4, 1) == 0:
            print(
                i + 1,
                f"{time.time() - t0:.0f}s",
                transition_report(stack, obs, nxt),
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
