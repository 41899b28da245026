"""PointMaze probes behind docs/design-notes.md (the PointMaze entries).

critic: for random (start, goal) pairs at rest, Spearman correlation of each level's critic
distance (and latent L2) with the oracle's geodesic distance, overall and per bin.

    python scripts/pointmaze_probe.py critic runs/pm/checkpoints/last.ckpt PointMaze_Medium-v3

geodesic-cem: Gaussian CEM rolling out the real MuJoCo model with the geodesic distance as its
cost (no learned model), on 2 tasks per bin of Medium: whether planner and episode loop work.

    python scripts/pointmaze_probe.py geodesic-cem

dynamics: steps/s of ``env.step`` against stepping the MuJoCo model directly.

    python scripts/pointmaze_probe.py dynamics

graph: the "graph" planner's latent graph at every level above 0 (the checkpoint's dataset as
memory): edges per node, metres an edge jumps, the fraction of 3,000 sampled edges whose cells
are joined only around a wall (their cell geodesic exceeds the Manhattan distance), and the
fraction of nodes with a path to 5 random nodes.

    python scripts/pointmaze_probe.py graph runs/pm/checkpoints/last.ckpt [radius scale; default the planner's]

resolution: how far apart, in geodesic metres, states are that each level's space puts nearest
each other, and how far a true 5-step successor lands from the state it snaps onto: the floor
under any latent graph's edges.

    python scripts/pointmaze_probe.py resolution runs/pm/checkpoints/last.ckpt [nodes; default 8192]
field: the graph field that level 0 plans down (``upper="field"``): for 6 random goals, the
fraction of level ``field_level``'s nodes with a path to the goal's node, and the Spearman
correlation of the field's cost with the geodesic distance over every free cell centre at rest.

    python scripts/pointmaze_probe.py field runs/pm/checkpoints/last.ckpt [radius scale; default the planner's] [field level; default 1]
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from hjepa.envs.maze_oracle import (
    DistanceBins,
    MazeOracle,
    make_maze_tasks,
    noisy_point,
)
from hjepa.envs.pointmaze import MEDIUM, Observer, PointMazeSim, maze_info, require_nav

BINS = DistanceBins.from_mapping(
    {"short": (0.5, 3), "medium": (3.000001, 6), "long": (6.000001, float("inf"))}
)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(
        np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1]
    )


@torch.no_grad()
def critic(ckpt: str, env_id: str, pairs: int = 400) -> None:
    from hjepa.checkpoint import load_module
    from hjepa.critic import critic_of

    stack = load_module(ckpt).stack.eval()
    maze = maze_info(env_id).maze
    tile = (
        stack.obs_spec.shape[0] // maze.shape[0]
        if stack.obs_spec.kind == "image"
        else 8
    )
    observe, oracle, rng = (
        Observer(maze, stack.obs_spec.kind, tile),
        MazeOracle(maze),
        np.random.default_rng(0),
    )
    starts, goals, dist = [], [], []
    for _ in range(pairs):
        i, j = rng.choice(len(maze.free_cells), 2, replace=False)
        s, g = (
            noisy_point(maze, maze.free_cells[i], rng, 0.25),
            noisy_point(maze, maze.free_cells[j], rng, 0.25),
        )
        starts.append(observe.at_rest(s))
        goals.append(observe.at_rest(g))
        dist.append(oracle.distance(s, g))
    zs, zg, d = (
        stack.encode(torch.from_numpy(np.stack(starts))),
        stack.encode(torch.from_numpy(np.stack(goals))),
        np.array(dist),
    )
    masks = [(d <= 3), (d > 3) & (d <= 6), (d > 6)]
    for k in range(stack.num_levels):
        est = critic_of(stack.levels[k]).distance(zs[k], zg[k]).numpy()
        l2 = (zs[k] - zg[k]).norm(dim=-1).numpy()
        per = [round(spearman(est[m], d[m]), 2) for m in masks]
        print(
            f"level {k}: critic Spearman {spearman(est, d):.2f} (<=3 / 3-6 / >6 m: {per}), latent L2 {spearman(l2, d):.2f}"
        )


def geodesic_cem() -> None:
    from hjepa.planning import planners

    sim, oracle = PointMazeSim("PointMaze_Medium-v3"), MazeOracle(MEDIUM)
    gen = torch.Generator().manual_seed(0)
    for task in make_maze_tasks("PointMaze_Medium-v3", MEDIUM, 2, BINS, seed=0):
        sim.set_state(task.start)
        sim.goal, mean, steps = np.array(task.goal), None, 0
        while not sim.success() and steps < 600:
            s0 = sim.state

            def cost(
                seqs: torch.Tensor, s0: np.ndarray = s0, goal: tuple = task.goal
            ) -> torch.Tensor:
                totals = []
                for seq in seqs.numpy():
                    sim.set_state(s0[:2], s0[2:])
                    totals.append(
                        sum(oracle.distance(p, goal) for p in sim.rollout(seq)[1:, :2])
                    )
                return torch.tensor(totals)

            plan = planners.gaussian_cem(
                cost, 2, 10, 32, 2, 6, init_mean=mean, generator=gen
            )
            mean = planners.shift_mean(plan.actions)
            sim.set_state(s0[:2], s0[2:])
            sim.step(plan.actions[0].numpy())
            steps += 1
        print(
            f"{task.bin}: {task.distance:.2f} m, success {sim.success()}, {steps} steps"
        )


def dynamics(n: int = 5000) -> None:
    import gymnasium

    require_nav()  # registers the PointMaze ids
    actions = np.random.default_rng(0).uniform(-1, 1, size=(n, 2))
    env = gymnasium.make("PointMaze_Medium-v3")
    env.reset(seed=0)
    t0 = time.perf_counter()
    for a in actions:
        env.step(a)
    env_rate = n / (time.perf_counter() - t0)
    sim = PointMazeSim("PointMaze_Medium-v3")
    sim.set_state((-2.5, 2.5))
    t0 = time.perf_counter()
    sim.rollout(actions)
    print(
        f"env.step {env_rate:,.0f} steps/s, direct {n / (time.perf_counter() - t0):,.0f} steps/s"
    )


@torch.no_grad()
def graph(ckpt: str, radius: str | None = None) -> None:
    from hjepa.checkpoint import load_module
    from hjepa.data.storage import OfflineDataset
    from hjepa.planning.configurator import RuleConfigurator
    from hjepa.planning.graph import distances_to, distinct_observations
    from hjepa.planning.hierarchy import HierarchicalPlanner
    from hjepa.planning.memory import MAX_NODES

    module = load_module(ckpt)
    stack = module.stack.eval()
    obs = torch.from_numpy(distinct_observations(OfflineDataset.open(module.hparams["data_path"]).obs, MAX_NODES))
    conf = RuleConfigurator(planner="graph")
    planner = HierarchicalPlanner(stack, conf if radius is None else conf.replace(graph_radius=float(radius)), 0, obs)
    sim = PointMazeSim(module.cfg.data.env_id)
    oracle, xy = MazeOracle(sim.maze), obs[:, :2].numpy()
    cells = [sim.maze.xy_to_cell(p) for p in xy]
    rng = np.random.default_rng(0)
    for k in range(1, stack.num_levels):
        succ = planner.memory.graph(k, planner.library[k])[0].succ
        src, act = np.nonzero(succ >= 0)
        dst = succ[src, act]
        jump = np.linalg.norm(xy[dst] - xy[src], axis=1)
        pick = rng.choice(len(src), min(3000, len(src)), replace=False)
        around = [oracle.cell_distance(cells[src[i]], cells[dst[i]]) > sim.maze.scaling * (
            abs(cells[src[i]][0] - cells[dst[i]][0]) + abs(cells[src[i]][1] - cells[dst[i]][1])) + 1e-6 for i in pick]
        reach = [float(np.isfinite(distances_to(succ, int(t))).mean()) for t in rng.choice(len(obs), 5)]
        print(f"level {k} (tau {stack.taus[k]}): {len(obs)} nodes, {(succ >= 0).sum(1).mean():.1f} edges/node, "
              f"jump median {np.median(jump):.2f} m (p90 {np.percentile(jump, 90):.2f}), around a wall "
              f"{np.mean(around):.3f}, nodes with a path to 5 random nodes {np.round(reach, 2).tolist()}")


@torch.no_grad()
def resolution(ckpt: str, nodes: str = "8192") -> None:
    """How finely each level's states tell positions apart: ``nodes`` dataset states (each with
    a successor 5 steps on in its episode); per level, the geodesic metres between a state and
    its nearest other state in that level's space, and between a true 5-step successor and the
    state it snaps onto (5 env steps move the ball 0.13 m, median)."""
    from hjepa.checkpoint import load_module
    from hjepa.data.storage import OfflineDataset
    from hjepa.planning.graph import nearest_keys

    module = load_module(ckpt)
    stack, data = module.stack.eval(), OfflineDataset.open(module.hparams["data_path"])
    obs, episode = np.asarray(data.obs), data.episode_of_step()
    rng = np.random.default_rng(0)
    starts = np.flatnonzero(episode[:-5] == episode[5:])
    t = np.sort(rng.choice(starts, int(nodes), replace=False))
    now, later = stack.encode(torch.from_numpy(obs[t])), stack.encode(torch.from_numpy(obs[t + 5]))
    oracle = MazeOracle(PointMazeSim(module.cfg.data.env_id).maze)
    pick = rng.choice(len(t), 2000, replace=False)
    spaces = [("the observation (x, y, vx, vy)", torch.from_numpy(obs[t]), torch.from_numpy(obs[t + 5]))]
    spaces += [(f"level {k} (tau {stack.taus[k]})", now[k], later[k]) for k in range(stack.num_levels)]
    for name, keys, after in spaces:
        keys_sq = keys.pow(2).sum(1)
        twins = nearest_keys(keys[pick], keys, keys_sq, k=2)[0][:, 1].numpy()
        snaps = nearest_keys(after[pick], keys, keys_sq)[0].numpy()
        twin_m = [oracle.distance(obs[t[i], :2], obs[t[j], :2]) for i, j in zip(pick, twins)]
        snap_m = [oracle.distance(obs[t[i] + 5, :2], obs[t[j], :2]) for i, j in zip(pick, snaps)]
        print(f"{name}, {len(t)} states: nearest other state "
              f"{np.percentile(twin_m, 50):.2f} m median (p90 {np.percentile(twin_m, 90):.2f}, p99 "
              f"{np.percentile(twin_m, 99):.2f}); a 5-step successor snaps {np.percentile(snap_m, 50):.2f} m "
              f"off (p90 {np.percentile(snap_m, 90):.2f}, p99 {np.percentile(snap_m, 99):.2f})")


@torch.no_grad()
def field(ckpt: str, radius: str | None = None, level: str = "1", goals: int = 6) -> None:
    from hjepa.checkpoint import load_module
    from hjepa.data.storage import OfflineDataset
    from hjepa.planning.configurator import RuleConfigurator
    from hjepa.planning.field import field_cost
    from hjepa.planning.graph import distinct_observations
    from hjepa.planning.hierarchy import HierarchicalPlanner
    from hjepa.planning.memory import MAX_NODES

    module = load_module(ckpt)
    stack, j = module.stack.eval(), int(level)
    obs = torch.from_numpy(distinct_observations(OfflineDataset.open(module.hparams["data_path"]).obs, MAX_NODES))
    conf = RuleConfigurator(upper="field")
    planner = HierarchicalPlanner(stack, conf if radius is None else conf.replace(graph_radius=float(radius)), 0, obs)
    sim = PointMazeSim(module.cfg.data.env_id)
    oracle, rng = MazeOracle(sim.maze), np.random.default_rng(0)
    cells = [sim.maze.cell_to_xy(c) for c in sim.maze.free_cells]
    at_rest = torch.tensor([[x, y, 0.0, 0.0] for x, y in cells], dtype=torch.float32)
    states = stack.encode(at_rest)[j]
    all_costs, all_geo = [], []
    for g in rng.choice(len(cells), goals, replace=False):
        goal = stack.encode(at_rest[g][None])[j][0]
        fld, _ = planner.memory.field(j, planner.library[j], planner.memory.nearest(j, goal))
        cost = field_cost(fld, states, goal).numpy()
        geo = np.array([oracle.distance(c, cells[g]) for c in cells])
        all_costs.append(cost), all_geo.append(geo)
        x, y = cells[g]
        print(f"goal ({x:.2f}, {y:.2f}): nodes with a path {np.isfinite(fld.steps.numpy()).mean():.2f}, "
              f"Spearman {spearman(cost, geo):.2f}")
    print(f"overall Spearman {spearman(np.concatenate(all_costs), np.concatenate(all_geo)):.2f}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    command, *rest = sys.argv[1:]
    {"critic": critic, "geodesic-cem": geodesic_cem, "dynamics": dynamics, "graph": graph, "resolution": resolution,
     "field": field}[command](
        *rest
    )
