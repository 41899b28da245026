"""What every view reads: a trained stack, its dataset, and banks of encoded observations.

A JEPA has no decoder, so inspection reads abstract states back through *banks*: sets of
real observations encoded at every level. The nearest bank entry of a predicted state is
"what the level expects"; the poses stored beside the observations (privileged, display
only, never a model input) place it on the map.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import torch
from minigrid.core.constants import OBJECT_TO_IDX
from torch import Tensor

from hjepa.checkpoint import load_module
from hjepa.config import ExperimentConfig
from hjepa.data.storage import OfflineDataset
from hjepa.envs.minigrid_nav import GridNav
from hjepa.envs.raster import grid_to_rgb
from hjepa.errors import DatasetError, InspectionError
from hjepa.specs import ObsSpec, check_same_spec
from hjepa.stack import HJEPA


@dataclass(frozen=True)
class Source:
    """A trained stack (eval mode, CPU), its config, and the dataset it was trained on."""

    stack: HJEPA
    cfg: ExperimentConfig
    data: OfflineDataset
    checkpoint: Path


def load_source(checkpoint: str | Path, data: str | Path | None = None) -> Source:
    """Load ``checkpoint`` and open its dataset (``data`` overrides the recorded path).

    Raises:
        CheckpointError: the checkpoint is missing or unreadable.
        DatasetError: the dataset it refers to cannot be read, or does not fit the model.
    """
    module = load_module(checkpoint)
    ckpt = Path(checkpoint)
    ckpt = ckpt / "checkpoints" / "last.ckpt" if ckpt.is_dir() else ckpt
    ds = open_dataset(module.hparams.get("data_path", ""), ckpt, data)
    check_same_spec(ds.obs_spec, module.stack.obs_spec, f"Observations of the dataset '{ds.path}' vs the checkpoint")
    return Source(module.stack.eval(), module.cfg, ds, ckpt)


def open_dataset(recorded: str, checkpoint: Path, override: str | Path | None = None) -> OfflineDataset:
    """The dataset given, else the recorded one, else ``data/`` of the checkpoint's run folder."""
    if override is not None:
        return OfflineDataset.open(override)
    run_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    candidates = [Path(recorded)] if recorded else []
    candidates.append(run_dir / "data")
    for path in candidates:
        if path.is_dir():
            return OfflineDataset.open(path)
    raise DatasetError(
        f"The checkpoint '{checkpoint}' was trained on the dataset '{recorded or '(none recorded)'}', which is not "
        f"there (nor is '{run_dir / 'data'}'). Inspection reads the training data to show what each level "
        "predicts: pass it with --data DIR (the data/ folder or a run folder holding one)."
    )


def check_levels(stack: HJEPA, levels: Sequence[int] | None) -> list[int]:
    """``levels`` (default: all of the stack's), each checked to exist."""
    if levels is None:
        return list(range(stack.num_levels))
    bad = [k for k in levels if not 0 <= int(k) < stack.num_levels]
    if bad or not levels:
        raise InspectionError(
            f"Level(s) {bad or '(none)'} requested, but the checkpoint has {stack.num_levels} level(s), "
            f"numbered 0..{stack.num_levels - 1}."
        )
    return sorted({int(k) for k in levels})


# ----------------------------------------------------------------------------- banks
class StateBank(NamedTuple):
    """Distinct observations with their poses and their states at every level."""

    obs: np.ndarray  # "n ..."
    pose: np.ndarray  # "n 3" (x, y, dir): privileged, for display only
    states: list[Tensor]  # per level "n d"


@torch.no_grad()
def encode_all(stack: HJEPA, obs: np.ndarray, target: bool = False, batch: int = 2048) -> list[Tensor]:
    """States of every level for observations ``"n ..."`` (online, or the EMA targets)."""
    out: list[list[Tensor]] = [[] for _ in stack.levels]
    for i in range(0, len(obs), batch):
        for k, z in enumerate(stack.encode(torch.from_numpy(np.ascontiguousarray(obs[i : i + batch])), target=target)):
            out[k].append(z.float())
    return [torch.cat(zs) for zs in out]


def unique_rows(obs: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct observation of ``"n ..."``, sorted."""
    flat = np.ascontiguousarray(obs).reshape(len(obs), -1)
    keys = flat.view(np.dtype((np.void, flat.shape[1] * flat.dtype.itemsize))).ravel()
    return np.sort(np.unique(keys, return_index=True)[1])


def dataset_bank(stack: HJEPA, data: OfflineDataset, target: bool, extra: np.ndarray | None = None,
                 max_items: int = 20_000, seed: int = 0) -> StateBank:  # fmt: skip
    """The distinct observations of ``data`` (a seeded sample of ``max_items`` steps when
    larger), plus ``extra`` observations (``"m ..."``, pose unknown: -1), encoded."""
    idx = np.arange(data.num_steps)
    if len(idx) > max_items:
        idx = np.sort(np.random.default_rng(seed).choice(len(idx), max_items, replace=False))
    obs, pose = np.asarray(data.obs[idx]), np.asarray(data.pose[idx]).astype(np.int64)
    if extra is not None and len(extra):  # after the dataset rows: a duplicate keeps its known pose
        obs = np.concatenate([obs, np.asarray(extra, dtype=obs.dtype)])
        pose = np.concatenate([pose, np.full((len(extra), 3), -1, dtype=np.int64)])
    keep = unique_rows(obs)
    obs, pose = obs[keep], pose[keep]
    return StateBank(obs, pose, encode_all(stack, obs, target))


def observe(nav: GridNav, obs_spec: ObsSpec) -> np.ndarray:
    """The current observation of ``nav`` in the format the stack was trained on."""
    return as_observed(nav.observation(), obs_spec)


def as_observed(grid: np.ndarray, obs_spec: ObsSpec) -> np.ndarray:
    """A symbolic grid ``(W, H, 3)`` in the format the stack was trained on (the grid, or its image)."""
    if obs_spec.kind == "grid":
        return grid
    if obs_spec.kind == "image":
        return grid_to_rgb(grid, tile=obs_spec.shape[0] // grid.shape[1])
    raise InspectionError(f"Map views need grid or image observations; this checkpoint reads '{obs_spec.kind}'.")


def layout_bank(stack: HJEPA, nav: GridNav) -> StateBank:
    """Every pose (free cell x 4 headings) of ``nav``'s layout, observed and encoded (online)."""
    saved = nav.pose
    poses = np.array([(x, y, d) for x, y in nav.free_cells() for d in range(4)], dtype=np.int64)
    obs = []
    try:
        for x, y, d in poses:
            nav.set_pose(int(x), int(y), int(d))
            obs.append(observe(nav, stack.obs_spec))
    finally:
        nav.set_pose(*saved)
    obs_arr = np.stack(obs)
    return StateBank(obs_arr, poses, encode_all(stack, obs_arr, target=False))


# ----------------------------------------------------------------------------- geometry
@torch.no_grad()
def nearest(queries: Tensor, bank: Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and distances ``"q k"`` of the ``k`` bank rows (``"n d"``) nearest each query ``"q d"``."""
    d = torch.cdist(queries.float(), bank.float())
    dist, idx = d.topk(min(k, bank.shape[0]), dim=1, largest=False)
    return idx.numpy(), dist.numpy()


@torch.no_grad()
def pca_2d(z: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Projection ``"n 2"`` of ``z: "n d"`` on its two principal axes, and the share of the
    variance each explains (exact SVD of the centred states)."""
    zc = z.float() - z.float().mean(dim=0)
    _, s, vh = torch.linalg.svd(zc, full_matrices=False)
    var = s.pow(2)
    share = (var[:2] / var.sum().clamp_min(1e-12)).numpy()
    return (zc @ vh[:2].T).numpy(), share


def render(obs: np.ndarray, obs_spec: ObsSpec, tile: int = 8) -> np.ndarray | None:
    """RGB ``"h w 3"`` of one observation for display, or None for state vectors."""
    if obs_spec.kind == "grid":
        return grid_to_rgb(obs, tile=tile)
    if obs_spec.kind == "image":
        return np.asarray(obs)
    return None


def agent_cell(obs: np.ndarray, obs_spec: ObsSpec) -> tuple[int, int] | None:
    """``(x, y)`` of the agent in a grid observation (None for other kinds): for display."""
    if obs_spec.kind != "grid":
        return None
    where = np.argwhere(np.asarray(obs)[..., 0] == OBJECT_TO_IDX["agent"])
    return (int(where[0][0]), int(where[0][1])) if len(where) else None


def map_extent(width: int, height: int) -> tuple[float, float, float, float]:
    """``imshow`` extent that puts cell ``(x, y)``'s centre at data coordinates ``(x, y)``."""
    return (-0.5, width - 0.5, height - 0.5, -0.5)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either side is constant."""

    def ranks(x: np.ndarray) -> np.ndarray:
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(len(x))
        _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
        return (np.bincount(inv, weights=r) / counts)[inv]

    ra, rb = ranks(np.asarray(a, float)), ranks(np.asarray(b, float))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])
