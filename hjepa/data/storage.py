"""On-disk offline datasets: a folder of ``.npy`` arrays plus ``meta.json``.

Layout of a dataset folder (N observation steps over E episodes, N = sum of T_e + 1):

| file                 | shape / dtype                                 | content                                  |
|----------------------|-----------------------------------------------|------------------------------------------|
| `obs.npy`            | (N, *obs_shape) uint8 (grid, image) / float32 | observations                             |
| `actions.npy`        | (N,) int16 or (N, dim) float32                | action taken from obs i; -1 / NaN at the last step of an episode |
| `episode_starts.npy` | (E+1,) int64                                  | CSR offsets of episodes into the steps, last = N |
| `layout.npy`         | (E,) int64                                    | layout seed of each episode              |
| `pose.npy`           | (N, 3) int16                                  | agent (x, y, dir): PRIVILEGED, for evaluation and inspection only, never a model input |
| `meta.json`          | -                                             | :class:`DatasetMeta`, written last       |

Arrays are written through memory maps and read with ``mmap_mode="r"``, so datasets larger
than RAM work. A writer builds the folder under a temporary name beside its target and
renames it into place only when complete, so a crash never leaves a half-written dataset.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

import hjepa
from hjepa.errors import DatasetError
from hjepa.io import atomic_path, storage_error
from hjepa.specs import ActionSpec, ObsSpec

FORMAT_VERSION = 1
ARRAY_FILES = ("obs", "actions", "episode_starts", "layout", "pose")
LAYOUT_MODES = ("fixed", "random")
_OPTIONAL_META = ("held_out",)  # absent from datasets written before it was recorded


@dataclass(frozen=True)
class DatasetMeta:
    """What ``meta.json`` records about a dataset."""

    env_id: str
    """Gymnasium id of the environment the data comes from."""
    obs_spec: ObsSpec
    """Shape, dtype and kind of one observation."""
    action_spec: ActionSpec
    """The action space; discrete actions are stored as our index 0..n-1."""
    num_steps: int
    """N: observation steps over all episodes (transitions + episodes)."""
    num_transitions: int
    """Actions taken over all episodes (N - E)."""
    num_episodes: int
    """E: number of episodes."""
    seed: int | None = None
    """Seed of the collector's random generator."""
    layouts: str = "fixed"
    """"fixed": every episode in one layout; "random": a layout seed per episode."""
    collector: dict[str, Any] = field(default_factory=dict)
    """The collector's configuration, as a plain dict."""
    held_out: dict[str, int] = field(default_factory=dict)
    """MiniGrid collection: ``layouts``, the distinct held-out layouts (by content), and
    ``skipped``, the drawn layouts equal to one of them and redrawn. Empty when not recorded."""
    hjepa_version: str = hjepa.__version__
    """Version of hjepa that wrote the dataset."""
    format_version: int = FORMAT_VERSION
    """Version of this on-disk format."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (specs as dicts)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["obs_spec"], d["action_spec"] = self.obs_spec.to_dict(), self.action_spec.to_dict()
        return {"format_version": d.pop("format_version"), **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DatasetMeta":
        """Inverse of :meth:`to_dict`; raises :class:`DatasetError` on missing or bad keys."""
        required = [f.name for f in fields(cls)]
        missing = [k for k in required if k not in d and k not in _OPTIONAL_META]
        if missing:
            raise DatasetError(f"meta.json lacks the keys {missing}.")
        try:
            kwargs = {k: d[k] for k in required if k in d}
            kwargs["obs_spec"] = ObsSpec.from_dict(d["obs_spec"])
            kwargs["action_spec"] = ActionSpec.from_dict(d["action_spec"])
            return cls(**kwargs)
        except (KeyError, TypeError, ValueError) as e:
            raise DatasetError(f"meta.json has an invalid spec: {e}") from None


def _action_layout(spec: ActionSpec) -> tuple[tuple[int, ...], type]:
    """Per-step shape and dtype of stored actions."""
    return ((), np.int16) if spec.is_discrete else ((spec.dim,), np.float32)


class DatasetWriter:
    """Write a dataset episode by episode into preallocated memory maps.

    Use it as a context manager: on success the folder appears at ``path`` (replacing any
    folder there); on an exception nothing is written at ``path``.

    Example:
        >>> with DatasetWriter(path, env_id=..., obs_spec=..., action_spec=...,
        ...                    num_steps=N, num_episodes=E) as w:
        ...     for ...: w.append_episode(obs, actions, layout_seed, poses)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        env_id: str,
        obs_spec: ObsSpec,
        action_spec: ActionSpec,
        num_steps: int,
        num_episodes: int,
        seed: int | None = None,
        layouts: str = "fixed",
        collector: dict[str, Any] | None = None,
    ) -> None:
        """Preallocate arrays for ``num_steps`` observations over ``num_episodes`` episodes."""
        if num_episodes < 1 or num_steps < 2 * num_episodes:
            raise DatasetError(
                f"A dataset needs >= 1 episode of >= 1 transition; got {num_steps} steps in {num_episodes} episodes."
            )
        if layouts not in LAYOUT_MODES:
            raise DatasetError(f"layouts must be one of {LAYOUT_MODES}, got '{layouts}'.")
        self.path = Path(path)
        self.meta = DatasetMeta(
            env_id=env_id, obs_spec=obs_spec, action_spec=action_spec, num_steps=int(num_steps),
            num_transitions=int(num_steps - num_episodes), num_episodes=int(num_episodes), seed=seed,
            layouts=layouts, collector=dict(collector or {}),
        )
        self._stack = ExitStack()
        self._dir = self._stack.enter_context(atomic_path(self.path))
        try:
            self._dir.mkdir()
            self._arrays = self._open_arrays()
        except BaseException:
            # atomic_path removes the temporary folder (and turns an OSError into StorageError)
            self._stack.__exit__(*sys.exc_info())
            raise
        self._steps, self._episodes, self._closed = 0, 0, False

    def _open_arrays(self) -> dict[str, np.memmap]:
        n, e, m = self.meta.num_steps, self.meta.num_episodes, self.meta
        act_shape, act_dtype = _action_layout(m.action_spec)
        specs = {
            "obs": ((n, *m.obs_spec.shape), np.dtype(m.obs_spec.dtype)),
            "actions": ((n, *act_shape), act_dtype),
            "episode_starts": ((e + 1,), np.int64),
            "layout": ((e,), np.int64),
            "pose": ((n, 3), np.int16),
        }
        arrays = {}
        for name, (shape, dt) in specs.items():
            file = self._dir / f"{name}.npy"
            arrays[name] = np.lib.format.open_memmap(file, mode="w+", dtype=dt, shape=shape)
            _reserve(file)
        arrays["episode_starts"][0] = 0
        return arrays

    def append_episode(self, obs: np.ndarray, actions: np.ndarray, layout_seed: int, poses: np.ndarray) -> None:
        """Append one episode of T transitions.

        Args:
            obs: ``(T+1, *obs_shape)`` observations.
            actions: ``(T,)`` action indices (discrete) or ``(T, dim)`` float actions.
            layout_seed: the layout the episode ran in.
            poses: ``(T+1, 3)`` privileged ``(x, y, dir)`` of the agent.
        """
        t1 = len(obs)
        if t1 < 2 or len(actions) != t1 - 1 or len(poses) != t1:
            raise DatasetError(f"An episode needs T+1 >= 2 obs and poses and T actions; got {t1}, {len(poses)}, {len(actions)}.")
        self._check_episode(np.asarray(obs), np.asarray(actions), np.asarray(poses))
        start, end = self._steps, self._steps + t1
        if end > self.meta.num_steps or self._episodes >= self.meta.num_episodes:
            raise DatasetError(f"Episode overflows the dataset ({self.meta.num_steps} steps, {self.meta.num_episodes} episodes).")
        a = self._arrays
        a["obs"][start:end] = obs
        a["actions"][start : end - 1] = actions
        a["actions"][end - 1] = -1 if self.meta.action_spec.is_discrete else np.nan
        a["pose"][start:end] = poses
        a["layout"][self._episodes] = layout_seed
        self._episodes += 1
        a["episode_starts"][self._episodes] = end
        self._steps = end

    def _check_episode(self, obs: np.ndarray, actions: np.ndarray, poses: np.ndarray) -> None:
        """Shapes, dtypes and action range against the dataset's specs (nothing is cast silently)."""
        spec, act = self.meta.obs_spec, self.meta.action_spec
        act_shape, _ = _action_layout(act)
        problems = []
        if obs.shape[1:] != tuple(spec.shape) or obs.dtype != np.dtype(spec.dtype):
            problems.append(f"observations are {obs.dtype} {obs.shape[1:]}, the spec says {spec.dtype} {tuple(spec.shape)}")
        if actions.shape[1:] != act_shape:
            problems.append(f"actions have per-step shape {actions.shape[1:]}, expected {act_shape}")
        elif act.is_discrete and (actions.dtype.kind not in "iu" or ((actions < 0) | (actions >= act.n)).any()):
            problems.append(f"discrete actions must be integers in [0, {act.n}), got {actions.dtype} {actions.min()}..{actions.max()}")
        if poses.shape[1:] != (3,):
            problems.append(f"poses must be (T+1, 3), got {poses.shape}")
        if problems:
            raise DatasetError(f"Cannot append this episode to '{self.path}': {'; '.join(problems)}.")

    def close(self) -> DatasetMeta:
        """Flush, write ``meta.json`` last, and move the folder onto ``path``."""
        if self._closed:
            return self.meta
        if (self._steps, self._episodes) != (self.meta.num_steps, self.meta.num_episodes):
            self.abort()
            raise DatasetError(
                f"Dataset incomplete: {self._steps}/{self.meta.num_steps} steps, "
                f"{self._episodes}/{self.meta.num_episodes} episodes written; nothing saved."
            )
        try:
            for arr in self._arrays.values():
                arr.flush()
            self._arrays.clear()
            # a plain write: the folder as a whole appears atomically when renamed below
            (self._dir / "meta.json").write_text(json.dumps(self.meta.to_dict(), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            self.abort()
            raise storage_error(self.path, exc) from exc
        self._closed = True
        self._stack.close()  # atomic_path renames the folder onto self.path
        return self.meta

    def abort(self) -> None:
        """Discard everything written so far; ``path`` is left untouched."""
        if self._closed:
            return
        self._arrays.clear()
        self._closed = True
        self._stack.__exit__(DatasetError, DatasetError("aborted"), None)

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _reserve(file: Path) -> None:
    """Allocate a memory-mapped file's blocks now: a full disk then fails here with ENOSPC
    (a clear :class:`StorageError`) instead of killing the writer with SIGBUS later."""
    if not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(file, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            return  # a filesystem without preallocation: nothing to reserve
        raise
    finally:
        os.close(fd)


class OfflineDataset:
    """A dataset folder opened read-only through memory maps.

    Attributes:
        path: the dataset folder.
        meta: its :class:`DatasetMeta`.
        obs_spec: ``meta.obs_spec``.
        action_spec: ``meta.action_spec``.
        obs: ``(N, *obs_shape)`` observations.
        actions: ``(N,)`` int16 or ``(N, dim)`` float32; -1 / NaN at each episode's last step.
        episode_starts: ``(E+1,)`` int64 offsets, ``episode_starts[-1] == N``.
        layout: ``(E,)`` int64 layout seed per episode.
        pose: ``(N, 3)`` int16 ``(x, y, dir)``. Privileged: for evaluation and inspection
            only, never a model input.
    """

    def __init__(self, path: Path, meta: DatasetMeta, arrays: dict[str, np.ndarray]) -> None:
        """Use :meth:`open`."""
        self.path, self.meta = path, meta
        self.obs_spec, self.action_spec = meta.obs_spec, meta.action_spec
        self.obs, self.actions = arrays["obs"], arrays["actions"]
        self.episode_starts, self.layout, self.pose = arrays["episode_starts"], arrays["layout"], arrays["pose"]

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> "OfflineDataset":
        """Open a dataset folder, or a run folder holding one in ``data/``.

        Raises:
            DatasetError: the folder or a file is missing, meta.json is invalid, the format
                version differs, an array is truncated or inconsistent, or the dataset is empty.
        """
        root = Path(path)
        if not root.is_dir():
            raise DatasetError(f"Dataset folder '{root}' does not exist. Collect one first (hjepa collect).")
        if not (root / "meta.json").exists() and (root / "data").is_dir():
            root = root / "data"
        meta = _read_meta(root)
        arrays = {name: _load_array(root, name) for name in ARRAY_FILES}
        _check_arrays(root, meta, arrays)
        return cls(root, meta, arrays)

    @property
    def num_episodes(self) -> int:
        """E."""
        return self.meta.num_episodes

    @property
    def num_steps(self) -> int:
        """N, observation steps."""
        return self.meta.num_steps

    @property
    def num_transitions(self) -> int:
        """N - E, actions taken."""
        return self.meta.num_transitions

    @property
    def episode_lengths(self) -> np.ndarray:
        """``(E,)`` int64 transitions per episode."""
        return np.diff(np.asarray(self.episode_starts)) - 1

    def episode_of_step(self) -> np.ndarray:
        """``(N,)`` int64 episode index of every step."""
        return np.repeat(np.arange(self.num_episodes, dtype=np.int64), self.episode_lengths + 1)

    def step_layout(self) -> np.ndarray:
        """``(N,)`` int64 layout seed of every step."""
        return np.repeat(np.asarray(self.layout), self.episode_lengths + 1)

    def __len__(self) -> int:
        return self.num_steps

    def __repr__(self) -> str:
        return (
            f"OfflineDataset('{self.path}', env_id='{self.meta.env_id}', episodes={self.num_episodes}, "
            f"transitions={self.num_transitions}, obs={self.obs_spec.kind}{list(self.obs_spec.shape)})"
        )


def _read_meta(root: Path) -> DatasetMeta:
    file = root / "meta.json"
    if not file.exists():
        raise DatasetError(f"'{file}' is missing: '{root}' is not a dataset folder, or its writing did not finish.")
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"'{file}' is not valid JSON ({e}).") from None
    if not isinstance(raw, dict):
        raise DatasetError(f"'{file}' must hold a JSON object, not {type(raw).__name__}.")
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise DatasetError(
            f"'{file}' has format_version {version!r}; this hjepa reads version {FORMAT_VERSION}. "
            "Re-collect the dataset with this version."
        )
    try:
        return DatasetMeta.from_dict(raw)
    except DatasetError as e:
        raise DatasetError(f"'{file}': {e}") from None


def _load_array(root: Path, name: str) -> np.ndarray:
    file = root / f"{name}.npy"
    if not file.exists():
        raise DatasetError(f"'{file}' is missing from the dataset.")
    try:
        return np.load(file, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:  # numpy raises ValueError on a truncated file
        raise DatasetError(f"'{file}' is truncated or not a .npy array ({e}).") from None


def _check_arrays(root: Path, meta: DatasetMeta, arrays: dict[str, np.ndarray]) -> None:
    """Compare every array's shape and dtype with meta.json; reject empty datasets."""
    if meta.num_transitions <= 0 or meta.num_episodes <= 0:
        raise DatasetError(f"Dataset '{root}' is empty ({meta.num_transitions} transitions).")
    n, e = meta.num_steps, meta.num_episodes
    act_shape, act_dtype = _action_layout(meta.action_spec)
    expected = {
        "obs": ((n, *meta.obs_spec.shape), np.dtype(meta.obs_spec.dtype)),
        "actions": ((n, *act_shape), np.dtype(act_dtype)),
        "episode_starts": ((e + 1,), np.dtype(np.int64)),
        "layout": ((e,), np.dtype(np.int64)),
        "pose": ((n, 3), np.dtype(np.int16)),
    }
    for name, (shape, dtype) in expected.items():
        arr = arrays[name]
        if arr.shape != shape or arr.dtype != dtype:
            raise DatasetError(
                f"'{root / (name + '.npy')}' is {arr.dtype} {arr.shape}, but meta.json implies {dtype} {shape}."
            )
    starts = np.asarray(arrays["episode_starts"])
    if n != meta.num_transitions + e or starts[0] != 0 or starts[-1] != n or (np.diff(starts) < 2).any():
        raise DatasetError(
            f"'{root / 'episode_starts.npy'}' is inconsistent: offsets must rise by >= 2 from 0 to "
            f"num_steps={n}, and num_steps must equal num_transitions + num_episodes."
        )
