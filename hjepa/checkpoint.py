"""Checkpoints: atomic writing, loading with format and spec checks, resume and growth plans.

A checkpoint is Lightning's dict plus ``hjepa_format`` (this module's format version),
``hjepa_rng`` (global RNG states, restored when training resumes) and, in
``hyper_parameters``, the config and the observation / action specs the stack was built for.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from hjepa.config import ExperimentConfig, to_dict
from hjepa.errors import CheckpointError
from hjepa.io import write_bytes_with
from hjepa.specs import ActionSpec, ObsSpec, check_same_spec
from hjepa.training import CHECKPOINT_FORMAT, HJEPAModule

REQUIRED_HPARAMS = ("config", "obs_spec", "action_spec")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO that writes beside the target, fsyncs, then renames.

    Lightning's own writer stages the file in the system temp folder and *copies* it across
    filesystems, so a kill during the copy leaves a truncated checkpoint; this one never does.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        save_checkpoint(checkpoint, path)


def save_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` to ``path`` atomically (:class:`StorageError` on a full disk)."""
    write_bytes_with(path, lambda f: torch.save(checkpoint, f))


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict; :class:`CheckpointError` naming the file if unreadable."""
    p = Path(path)
    if p.is_dir() and (p / "checkpoints" / "last.ckpt").exists():
        p = p / "checkpoints" / "last.ckpt"
    if not p.is_file():
        raise CheckpointError(f"No checkpoint at '{p}'. Pass a .ckpt file or a run folder holding checkpoints/last.ckpt.")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, AttributeError) as exc:
        raise CheckpointError(f"Checkpoint '{p}' is truncated or corrupt ({type(exc).__name__}: {exc}).") from exc
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(f"'{p}' is not an hjepa checkpoint (no state_dict / hyper_parameters).")
    fmt = ckpt.get("hjepa_format")
    if fmt != CHECKPOINT_FORMAT:
        raise CheckpointError(f"Checkpoint '{p}' has format {fmt!r}; this hjepa reads format {CHECKPOINT_FORMAT}.")
    missing = [k for k in REQUIRED_HPARAMS if k not in ckpt["hyper_parameters"]]
    if missing:
        raise CheckpointError(f"Checkpoint '{p}' lacks {missing} in its hyper_parameters; it cannot be rebuilt.")
    ckpt["_path"] = str(p)
    _default_old_critic_kind(ckpt)
    return ckpt


def _default_old_critic_kind(ckpt: dict[str, Any]) -> None:
    """Checkpoints written before ``critic.kind`` existed hold MLP critics: say so in their
    config, so that they rebuild with the critics they were trained with."""
    critic = ckpt["hyper_parameters"]["config"].get("critic")
    if isinstance(critic, dict) and "kind" not in critic:
        critic["kind"] = "mlp"


def checkpoint_specs(ckpt: dict[str, Any]) -> tuple[ObsSpec, ActionSpec]:
    """The observation and action specs a checkpoint's stack was built for."""
    hp = ckpt["hyper_parameters"]
    try:
        return ObsSpec.from_dict(hp["obs_spec"]), ActionSpec.from_dict(hp["action_spec"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"Checkpoint '{ckpt.get('_path')}' has an invalid spec: {exc}") from exc


def check_specs(ckpt: dict[str, Any], obs_spec: ObsSpec | None, action_spec: ActionSpec | None, against: str) -> None:
    """:class:`SpecMismatchError` unless the checkpoint was built for these specs."""
    obs, act = checkpoint_specs(ckpt)
    if obs_spec is not None:
        check_same_spec(obs, obs_spec, f"Observation spec of the checkpoint '{ckpt.get('_path')}' vs {against}")
    if action_spec is not None:
        check_same_spec(act, action_spec, f"Action spec of the checkpoint '{ckpt.get('_path')}' vs {against}")


def load_module(path: str | Path, obs_spec: ObsSpec | None = None, action_spec: ActionSpec | None = None) -> HJEPAModule:
    """Rebuild the trained :class:`HJEPAModule` (eval mode, CPU).

    When specs are given they must match the checkpoint's (else :class:`SpecMismatchError`).
    """
    ckpt = read_checkpoint(path)
    check_specs(ckpt, obs_spec, action_spec, "the environment")
    hp = ckpt["hyper_parameters"]
    module = HJEPAModule(hp["config"], hp["obs_spec"], hp["action_spec"], hp.get("data_path", ""),
                         hp.get("frozen_levels", 0))  # fmt: skip
    module.on_load_checkpoint(ckpt)
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"Checkpoint '{ckpt['_path']}' does not fit the stack its config describes: {exc}") from exc
    return module.eval()


# ----------------------------------------------------------------------------- resume / grow


class ResumePlan(NamedTuple):
    """How ``fit(resume=True)`` continues: ``mode`` is "fresh" (no checkpoint yet), "resume"
    (same stack: continue at ``step``) or "grow" (the config adds levels on top of the
    checkpoint's: a new run initialised from it, ``frozen_levels`` frozen)."""

    mode: str
    checkpoint: dict[str, Any] | None = None
    step: int = 0
    frozen_levels: int = 0
    old_levels: int = 0


def plan_resume(path: Path, cfg: ExperimentConfig, obs_spec: ObsSpec, action_spec: ActionSpec) -> ResumePlan:
    """Check that the checkpoint at ``path`` (if any) can continue as ``cfg`` on this data.

    Raises:
        SpecMismatchError: the dataset's specs are not the checkpoint's.
        CheckpointError: the checkpoint is corrupt, or ``cfg``'s levels are not the
            checkpoint's levels (plus, optionally, new levels on top).
    """
    if not path.is_file():
        return ResumePlan("fresh")
    ckpt = read_checkpoint(path)
    check_specs(ckpt, obs_spec, action_spec, "the dataset")
    old = ckpt["hyper_parameters"]["config"].get("levels", [])
    new = to_dict(cfg.levels)
    if len(new) < len(old) or new[: len(old)] != old:
        raise CheckpointError(_levels_mismatch(path, old, new))
    if len(new) == len(old):
        frozen = int(ckpt["hyper_parameters"].get("frozen_levels", 0))
        return ResumePlan("resume", ckpt, int(ckpt.get("global_step", 0)), frozen, len(old))
    frozen = len(old) if cfg.train.freeze_below else 0
    return ResumePlan("grow", ckpt, 0, frozen, len(old))


def _levels_mismatch(path: Path, old: list[dict], new: list[dict]) -> str:
    if len(new) < len(old):
        what = f"the config has {len(new)} levels, the checkpoint {len(old)}; resuming cannot drop levels"
    else:
        k = next(i for i, (a, b) in enumerate(zip(old, new)) if a != b)
        diff = {key: (old[k].get(key), new[k].get(key)) for key in new[k] if old[k].get(key) != new[k].get(key)}
        what = f"level {k} differs (checkpoint vs config: {diff})"
    return (
        f"Cannot resume from '{path}': {what}. Resume with the run's own config (hjepa train --resume reads it "
        "from the checkpoint), add levels on top only, or start a new run in another folder."
    )


def load_lower_levels(module: HJEPAModule, ckpt: dict[str, Any], levels: int) -> None:
    """Initialise levels ``0 .. levels-1`` of ``module`` from ``ckpt`` (critics left out:
    they are retrained on the grown stack)."""
    state = {k: v for k, v in ckpt["state_dict"].items() if ".heads.critic." not in k}
    missing, unexpected = module.load_state_dict(state, strict=False)
    own = [k for k in missing if _level_of(k) < levels]
    if unexpected or own:
        raise CheckpointError(
            f"Checkpoint '{ckpt.get('_path')}' does not fit the lower {levels} levels of the grown stack "
            f"(unexpected keys {unexpected[:5]}, missing {own[:5]})."
        )


def _level_of(key: str) -> int:
    """Level index of a state-dict key ``stack.levels.{k}....`` (-1 for anything else)."""
    parts = key.split(".")
    return int(parts[2]) if key.startswith("stack.levels.") and parts[2].isdigit() else -1
