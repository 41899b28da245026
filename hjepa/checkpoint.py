"""Loading trained stacks from Lightning checkpoints, with format and spec checks."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from hjepa.errors import CheckpointError
from hjepa.specs import ActionSpec, ObsSpec, check_same_spec
from hjepa.training import CHECKPOINT_FORMAT, HJEPAModule


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict; :class:`CheckpointError` naming the file if unreadable."""
    p = Path(path)
    if p.is_dir() and (p / "checkpoints" / "last.ckpt").exists():
        p = p / "checkpoints" / "last.ckpt"
    if not p.is_file():
        raise CheckpointError(f"No checkpoint at '{p}'. Pass a .ckpt file or a run folder holding checkpoints/last.ckpt.")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as exc:
        raise CheckpointError(f"Checkpoint '{p}' is truncated or corrupt ({type(exc).__name__}: {exc}).") from exc
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(f"'{p}' is not an hjepa checkpoint (no state_dict / hyper_parameters).")
    fmt = ckpt.get("hjepa_format")
    if fmt != CHECKPOINT_FORMAT:
        raise CheckpointError(f"Checkpoint '{p}' has format {fmt!r}; this hjepa reads format {CHECKPOINT_FORMAT}.")
    ckpt["_path"] = str(p)
    return ckpt


def load_module(path: str | Path, obs_spec: ObsSpec | None = None, action_spec: ActionSpec | None = None) -> HJEPAModule:
    """Rebuild the trained :class:`HJEPAModule` (eval mode, CPU).

    When specs are given they must match the checkpoint's (else :class:`SpecMismatchError`).
    """
    ckpt = read_checkpoint(path)
    hp = ckpt["hyper_parameters"]
    if obs_spec is not None:
        check_same_spec(ObsSpec.from_dict(hp["obs_spec"]), obs_spec, "Observation spec of the checkpoint vs the environment")
    if action_spec is not None:
        check_same_spec(ActionSpec.from_dict(hp["action_spec"]), action_spec, "Action spec of the checkpoint vs the environment")
    module = HJEPAModule(hp["config"], hp["obs_spec"], hp["action_spec"], hp.get("data_path", ""))
    module.on_load_checkpoint(ckpt)
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"Checkpoint '{ckpt['_path']}' does not fit the stack its config describes: {exc}") from exc
    return module.eval()
