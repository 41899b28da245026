"""How crisp is a ``multiroom`` checkpoint's level 0, and can it imagine the held-out layouts?

Three probes on the suite's held-out layouts (held out by content), every prediction snapped onto the
"imagine" planner's own codebook and compared, code by code, with the encoded true next
observation:

1. **one step, by action**: 60 random poses x 4 actions on each of 5 layouts, half the doors open;
2. **at the doors**: facing each door of 10 layouts from every side: toggle it (closed: open it;
   open: close it), enter it, turn on it, leave it, toggle while on it;
3. **imagination**: the suite's tasks (5 per bin), breadth-first from the start as the agent
   does it (:class:`~hjepa.planning.imagined_memory.ImaginedMemory`): nodes found, whether the goal's
   state was among them, seconds.

    python scripts/multiroom_probe.py runs/RUN/checkpoints/last.ckpt

docs/design-notes.md (MultiRoom) reports its figures for the checkpoints that led to the preset.
"""

from __future__ import annotations

import sys
import time
from collections import Counter

import numpy as np
import torch

from hjepa.checkpoint import load_module
from hjepa.data.storage import OfflineDataset
from hjepa.envs.oracle import LayoutOracle, arrival_observation
from hjepa.experiments.bench import SUITES, grid_env_actions
from hjepa.experiments.evaluate import suite_tasks
from hjepa.experiments.presets import HELD_OUT_LAYOUTS
from hjepa.planning.imagine import cell_codebook
from hjepa.planning.imagined_memory import ImaginedMemory
from hjepa.planning.memory import memory_observations

AHEAD = ((1, 0), (0, 1), (-1, 0), (0, -1))
LEFT, RIGHT, FORWARD, TOGGLE = 0, 1, 2, 3  # the multiroom preset's action indices (env actions 0, 1, 2, 5)


class Probe:
    """A checkpoint's level 0, its codebook, and tallies of snapped one-step predictions."""

    def __init__(self, ckpt: str) -> None:
        module = load_module(ckpt)
        self.stack, self.cfg, self.level = module.stack, module.cfg, module.stack.levels[0]
        self.data = OfflineDataset.open(module.hparams["data_path"])
        self.memory = memory_observations(self.data.obs, "imagine", "plan")
        self.book = cell_codebook(self.level, self.memory)
        self.env_actions = grid_env_actions(self.cfg)
        self.oracle = LayoutOracle(self.cfg.data.env_id, env_actions=self.env_actions)
        self.acts = self.level.action_input(torch.arange(len(self.env_actions)))
        self.wrong, self.total, self.confusions = Counter(), Counter(), Counter()

    @torch.no_grad()
    def check(self, nav, kind: str, action: int) -> None:
        """Step ``nav`` by ``action``; tally whether the snapped prediction matches the encoded result."""
        before = torch.from_numpy(nav.observation().copy())[None]
        nav.step(self.env_actions[action])
        after = torch.from_numpy(nav.observation().copy())[None]
        _, true_keys = self.book.snap(self.level.encode(after))
        _, pred_keys = self.book.snap(self.level.predict(self.level.encode(before), self.acts[action : action + 1]))
        self.total[kind] += 1
        bad = (true_keys[0] != pred_keys[0]).nonzero().flatten().tolist()
        self.wrong[kind] += bool(bad)
        codes = self.book.codes.tolist()
        for c in bad:
            self.confusions[(kind, codes[int(true_keys[0, c])], codes[int(pred_keys[0, c])])] += 1

    def report(self, title: str) -> None:
        print(title)
        for kind in self.total:
            print(f"  {kind:16s} wrong {self.wrong[kind]:>4} / {self.total[kind]}")
        print("  most frequent (kind, true code, predicted code):", self.confusions.most_common(6))
        self.wrong, self.total, self.confusions = Counter(), Counter(), Counter()


def one_step(probe: Probe, rng: np.random.Generator) -> None:
    names = ("left", "right", "forward", "toggle")
    for seed in HELD_OUT_LAYOUTS[:5]:
        nav = probe.oracle.nav(seed)
        for x, y in nav.doors():
            if rng.random() < 0.5:
                nav.toggle_at(int(x), int(y))
        free = nav.free_cells()
        for _ in range(60):
            x, y = (int(v) for v in free[rng.integers(len(free))])
            d = int(rng.integers(4))
            for action, name in enumerate(names):
                snapshot = nav.encoding.copy()
                nav.set_pose(x, y, d)
                probe.check(nav, name, action)
                if not np.array_equal(snapshot, nav.encoding):  # undo a toggle
                    nav.step(probe.env_actions[TOGGLE])
    probe.report("1. one step from random poses (5 layouts x 60 poses)")


def at_doors(probe: Probe) -> None:
    for seed in HELD_OUT_LAYOUTS[:10]:
        for x, y in probe.oracle.nav(seed).doors():
            for d, (dx, dy) in enumerate(AHEAD):
                nav = probe.oracle.nav(seed)
                x, y, bx, by = int(x), int(y), int(x) - dx, int(y) - dy
                if not nav.walkable[bx, by]:
                    continue
                nav.set_pose(bx, by, d)
                closed = nav.encoding[x, y, 2] != 0
                probe.check(nav, "toggle-open" if closed else "toggle-close", TOGGLE)
                if nav.encoding[x, y, 2] != 0:
                    nav.toggle_at(x, y)
                for kind, pose, action in (("enter-door", (bx, by, d), FORWARD), ("turn-l-on-door", (x, y, d), LEFT),
                                           ("turn-r-on-door", (x, y, d), RIGHT), ("leave-door", (x, y, d), FORWARD),
                                           ("toggle-on-door", (x, y, d), TOGGLE)):  # fmt: skip
                    nav.set_pose(*pose)
                    probe.check(nav, kind, action)
    probe.report("2. at the doors (10 layouts, every door from both sides)")


@torch.no_grad()
def imagination(probe: Probe) -> None:
    suite = SUITES["multiroom"]
    tasks = suite_tasks(probe.cfg.data.env_id, suite.layouts(probe.cfg), 5, suite.bins, seed=1,
                        env_actions=probe.env_actions)  # fmt: skip
    memory = ImaginedMemory(probe.stack, probe.memory)
    print("3. imagination from each task's start (the suite's tasks, 5 per bin)")
    for task in tasks:
        nav = probe.oracle.nav(task.layout_seed)
        goal = arrival_observation(nav, probe.oracle.graph(task.layout_seed), task.start, task.goal)
        nav.set_pose(*task.start)
        start = probe.stack.encode(torch.from_numpy(nav.observation().copy())[None])[0][0]
        memory.new_episode(probe.stack.encode(torch.from_numpy(goal)[None])[0][0])
        t0 = time.perf_counter()
        memory.observe(start)
        found = memory.goal in memory.current.index
        print(f"  {task.bin:6s} distance {task.distance:>2}: {len(memory.current.index):>5} nodes, "
              f"goal found {found}, {time.perf_counter() - t0:.1f} s")


def main(ckpt: str) -> None:
    torch.set_num_threads(2)
    probe = Probe(ckpt)
    gaps = torch.pdist(probe.book.emb)
    print(f"{len(probe.book.codes)} cell codes {probe.book.codes.tolist()}, smallest gap {float(gaps.min()):.2f}")
    one_step(probe, np.random.default_rng(0))
    at_doors(probe)
    imagination(probe)


if __name__ == "__main__":
    main(sys.argv[1])
