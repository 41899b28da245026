"""Can a ``gridmap`` level 0 imagine the graph of a layout it holds no memory of?

Breadth-first search over the model alone: from one encoded observation, predict every action's
successor, snap each cell of the prediction onto the nearest embedding of a cell code (the
"imagine" planner's codebook: the codes in the dataset's first observations), and key the node
by its codes. A crisp
model finds exactly the layout's poses (4 per free cell); one whose predicted cells fall near
the middle between two codes finds states with two agents or none, and the search blows up.

    python scripts/imagine_probe.py runs/RUN/checkpoints/last.ckpt [max depth, default 15] [layout seed]

With a layout seed the search starts in that layout of the dataset's env (e.g. 100000, one of
fourrooms-random's held-out layouts), else from the dataset's first observation.

Shapes: ``q`` codes kept, ``c w h`` the map state.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from einops import rearrange

from hjepa.checkpoint import load_module
from hjepa.data.storage import OfflineDataset
from hjepa.levels.grid import N_COLORS, N_STATES
from hjepa.levels.gridmap import AGENT
from hjepa.planning.imagine import cell_codebook
from hjepa.planning.memory import memory_observations

N_CODES_PER_OBJECT = N_COLORS * N_STATES  # CellOneHot's index: (object * colours + colour) * states + state


@torch.no_grad()
def main(ckpt: str, max_depth: int = 15, layout: int | None = None) -> None:
    torch.set_num_threads(2)
    module = load_module(ckpt)
    level = module.stack.levels[0]
    data = OfflineDataset.open(module.hparams["data_path"])
    if layout is None:
        obs = torch.from_numpy(np.array(data.obs[0]))[None]
    else:
        from hjepa.envs.oracle import LayoutOracle

        obs = torch.from_numpy(LayoutOracle(data.meta.env_id).nav(layout).observation())[None]
    c, w, h = level.map_shape
    # the planner's own codebook: the cell codes of the dataset's first observations
    book = cell_codebook(level, memory_observations(data.obs, "imagine", "plan"))
    print(f"{len(book.codes)} codes, smallest gap between their embeddings {float(torch.pdist(book.emb).min()):.2f}")

    def snap(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        snapped, idx = book.snap(s)
        err = rearrange(s - snapped, "n (c w h) -> n (w h) c", c=c, w=w, h=h).norm(dim=-1)
        return snapped, book.codes[idx.long()], err

    start, key, _ = snap(level.encode(obs))
    nodes, seen, frontier = [start[0]], {key[0].numpy().tobytes()}, [0]
    acts = level.action_input(torch.arange(level.action_spec.n))
    free = int(((obs[0, ..., 0] == 1) | (obs[0, ..., 0] == AGENT)).sum())
    for depth in range(1, max_depth + 1):
        s = torch.stack([nodes[i] for i in frontier])
        pred = level.predict(s.repeat_interleave(len(acts), 0), acts.repeat(len(frontier), 1))
        snapped, keys, err = snap(pred)
        agents = (keys // N_CODES_PER_OBJECT == AGENT).sum(1)
        frontier = []
        for j in range(len(pred)):
            kb = keys[j].numpy().tobytes()
            if kb not in seen:
                seen.add(kb)
                frontier.append(len(nodes))
                nodes.append(snapped[j])
        print(f"depth {depth:>2}: nodes {len(nodes):>6} (the layout has {4 * free} poses), predictions with "
              f"one agent {float((agents == 1).float().mean()):.3f}, largest cell error {float(err.max()):.2f}")
        if not frontier:
            break


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:4]))
