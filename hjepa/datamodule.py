"""Windowed batches from an offline dataset, served by a LightningDataModule.

A window is ``window`` consecutive observations of one episode (never crossing an episode
boundary) with the ``window - 1`` actions between them. Batch ``i`` is a pure function of
``(seed, i)``, so runs are reproducible, ranks under DDP draw different batches (rank ``r``
of ``w`` trains on batches ``i * w + r``), and a resumed run continues the same sequence: the
training stream starts at the trainer's restored ``global_step`` whenever Lightning iterates
it, so the data position is exactly the optimiser's, whatever the loop's epoch bookkeeping.

Observations are read by index from the dataset's memory maps, one batch at a time: a dataset
larger than RAM trains without being loaded.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Callable, Iterator

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from hjepa.data.storage import OfflineDataset
from hjepa.errors import ConfigError, DatasetError


def window_starts(episode_starts: np.ndarray, episodes: np.ndarray, window: int) -> np.ndarray:
    """Global indices where a window of ``window`` observations fits inside one episode.

    ``episode_starts``: (E+1,) CSR offsets of episodes in the step arrays.
    """
    begin, end = episode_starts[episodes], episode_starts[episodes + 1]
    counts = np.maximum(end - begin - window + 1, 0)
    if counts.sum() == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return (np.repeat(begin, counts) + offsets).astype(np.int64)


class WindowBatches(Dataset):
    """Map-style dataset whose item ``i`` is a whole batch of windows.

    Returns dicts with ``obs: "b t ..."``, ``actions: "b t-1"`` (or ``"b t-1 e"``),
    ``groups: "b"`` (layout seed of each window, for the regulariser).
    """

    def __init__(self, data: OfflineDataset, starts: np.ndarray, window: int, batch_size: int, seed: int,
                 length: int, offset: int = 0) -> None:  # fmt: skip
        self.data, self.starts, self.window = data, starts, window
        self.batch_size, self.seed, self.length, self.offset = batch_size, seed, length, offset
        self.step_layout = data.step_layout()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, i + self.offset])
        st = np.sort(self.starts[rng.integers(0, len(self.starts), self.batch_size)])
        idx = st[:, None] + np.arange(self.window)[None, :]
        obs = np.asarray(self.data.obs[idx])
        actions = np.asarray(self.data.actions[idx[:, :-1]])
        if self.data.action_spec.is_discrete:
            actions = actions.astype(np.int64)
        return {
            "obs": torch.from_numpy(obs),
            "actions": torch.from_numpy(actions),
            "groups": torch.from_numpy(self.step_layout[st].astype(np.int64)),
        }


class StepStream(IterableDataset):
    """The training batches as an endless stream that starts at the current optimiser step.

    ``position()`` is read each time the stream is iterated (Lightning does so after it has
    restored a checkpoint), and rank ``rank`` of ``world`` yields batches
    ``(position() + j) * world + rank`` for ``j = 0, 1, ...``. Indexing (``stream[i]``) gives
    batch ``i`` directly.
    """

    def __init__(self, batches: WindowBatches, position: Callable[[], int], rank: int = 0, world: int = 1) -> None:
        self.batches, self.position, self.rank, self.world = batches, position, rank, world

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.batches[i]

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        start = int(self.position())
        for j in itertools.count(start):
            yield self.batches[j * self.world + self.rank]


class WindowDataModule(L.LightningDataModule):
    """Owns the dataset: splits episodes into train/val and serves batches of windows.

    Args:
        data_path: a dataset folder, or a run folder holding ``data/``.
        window: observations per window (``tau_top + 1``).
        batch_size: windows per batch.
        steps: training batches to serve (the whole run).
        seed: batch sampling seed.
        val_fraction: fraction of episodes held out.
        val_batches: validation batches.
        start_step: first batch index when no trainer is attached (under a trainer the
            stream starts at ``trainer.global_step``, restored on resume).
    """

    def __init__(self, data_path: str | Path, window: int, batch_size: int, steps: int, seed: int = 0,
                 val_fraction: float = 0.05, val_batches: int = 4, start_step: int = 0) -> None:  # fmt: skip
        super().__init__()
        _check_counts({"window": (window, 2), "train.batch_size": (batch_size, 1), "train.steps": (steps, 1),
                       "train.val_batches": (val_batches, 1), "seed": (seed, 0), "start_step": (start_step, 0)})  # fmt: skip
        if not 0.0 <= val_fraction < 1.0:
            raise ConfigError(f"train.val_fraction must be in [0, 1), got {val_fraction}.")
        self.data = OfflineDataset.open(data_path)
        self.window, self.batch_size, self.steps, self.seed = window, batch_size, steps, seed
        self.val_batches, self.start_step = val_batches, start_step
        train_eps, val_eps = split_episodes(self.data.num_episodes, val_fraction, seed)
        self.train_starts = window_starts(self.data.episode_starts, train_eps, window)
        self.val_starts = window_starts(self.data.episode_starts, val_eps, window)
        if len(self.train_starts) == 0:
            raise DatasetError(
                f"Dataset '{self.data.path}' has no episode of at least {window} observations, the span of the "
                f"top level plus one. Collect longer episodes (episode_len >= {window - 1}) or use smaller strides."
            )
        if len(self.val_starts) == 0:
            self.val_starts = self.train_starts  # too few episodes to hold any out

    def _position(self) -> int:
        trainer = self._trainer_or_none()
        return int(trainer.global_step) if trainer is not None else self.start_step

    def _trainer_or_none(self) -> L.Trainer | None:
        return self.trainer if getattr(self, "trainer", None) is not None else None

    def train_dataloader(self) -> DataLoader:
        trainer = self._trainer_or_none()
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        batches = WindowBatches(self.data, self.train_starts, self.window, self.batch_size, self.seed, self.steps * world)
        # An explicit generator: creating the loader's iterator must not draw from the global
        # torch RNG, whose state a resumed run restores from the checkpoint.
        return DataLoader(StepStream(batches, self._position, rank, world), batch_size=None, num_workers=0,
                          generator=torch.Generator().manual_seed(self.seed))  # fmt: skip

    def val_dataloader(self) -> DataLoader:
        ds = WindowBatches(self.data, self.val_starts, self.window, self.batch_size, self.seed + 1, self.val_batches)
        return DataLoader(ds, batch_size=None, shuffle=False, num_workers=0,
                          generator=torch.Generator().manual_seed(self.seed + 1))  # fmt: skip


def _check_counts(counts: dict[str, tuple[object, int]]) -> None:
    """Each ``name: (value, floor)`` must be an integer >= floor (:class:`ConfigError` otherwise)."""
    for name, (value, floor) in counts.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < floor:
            raise ConfigError(f"{name} must be an integer >= {floor}, got {value!r}.")


def split_episodes(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of episode indices into (train, val); val is empty for tiny datasets."""
    perm = np.random.default_rng([seed, 7]).permutation(n)
    n_val = int(round(n * val_fraction)) if n >= 4 else 0
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])
