"""Joint training of every level: a LightningModule and the ``train`` function.

One optimisation step updates every level. Metrics are flat, keyed ``"level{k}/{term}"``
(validation: ``"val/level{k}/{term}"``), written to ``metrics.csv`` (and TensorBoard when
installed). Nothing here touches an environment.
"""

from __future__ import annotations

import dataclasses
import math
import random
import warnings
from typing import Any

import numpy as np

import lightning as L
import torch

from hjepa.critic import attach_critics
from hjepa.config import ExperimentConfig, from_dict
from hjepa.errors import NonFiniteLossError
from hjepa.specs import ActionSpec, ObsSpec
from hjepa.stack import HJEPA, StackOutput, ema_momentum

CHECKPOINT_FORMAT = 1


class CollapseWarning(UserWarning):
    """A level's embeddings look collapsed (tiny per-dimension std or effective rank)."""


class HJEPAModule(L.LightningModule):
    """LightningModule around :class:`HJEPA`; hyper-parameters are the config and specs.

    Args:
        config: ``ExperimentConfig`` as a dict (``hjepa.config.to_dict``).
        obs_spec: ``ObsSpec.to_dict()`` of the dataset.
        action_spec: ``ActionSpec.to_dict()`` of the dataset.
        data_path: the dataset the model was trained on (for inspection later).
        frozen_levels: levels ``0 .. frozen_levels-1`` get no gradient and no EMA update (a
            trained stack grown by new levels with ``train.freeze_below``).
    """

    def __init__(self, config: dict[str, Any], obs_spec: dict[str, Any], action_spec: dict[str, Any],
                 data_path: str = "", frozen_levels: int = 0) -> None:  # fmt: skip
        super().__init__()
        self.save_hyperparameters()
        self.cfg: ExperimentConfig = from_dict(ExperimentConfig, config)
        self.stack = HJEPA.from_config(self.cfg, ObsSpec.from_dict(obs_spec), ActionSpec.from_dict(action_spec))
        self.frozen_levels = int(frozen_levels)
        for level in self.stack.levels[: self.frozen_levels]:
            level.requires_grad_(False)
        self._warned: set[str] = set()
        self._rng_to_restore: dict[str, Any] | None = None
        self.trained_on: dict[str, str] = {}
        """``{"device", "precision"}`` of the training run that wrote the loaded checkpoint."""

    # ------------------------------------------------------------------ steps
    def _common_step(self, batch: dict[str, torch.Tensor], stage: str) -> StackOutput:
        groups = batch["groups"] if self.cfg.loss.regularizer.by_layout else None
        out = self.stack(batch["obs"], batch["actions"], groups)
        self._check_finite(out)
        prefix = "" if stage == "train" else f"{stage}/"
        logged = {f"{prefix}{k}": v.detach() for k, v in out.terms.items()}
        logged[f"{prefix}loss"] = out.loss.detach()
        on_step = stage == "train"
        self.log_dict(logged, on_step=on_step, on_epoch=not on_step, batch_size=batch["obs"].shape[0], sync_dist=not on_step)
        if stage != "train" or self._logging_step():
            health = {f"{prefix}{k}": v for k, v in self.stack.health(out, groups).items()}
            self.log_dict(health, on_step=on_step, on_epoch=not on_step, batch_size=batch["obs"].shape[0], sync_dist=not on_step)
        return out

    def _logging_step(self) -> bool:
        """Whether this batch's row reaches the loggers (Lightning writes the rows of steps
        ``i`` with ``(i + 1) % log_every == 0``): the costly figures are computed for those
        only, so every row holds one batch's figures, also after a resume."""
        return (self.global_step + 1) % self.cfg.train.log_every == 0

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self._logging_step():
            self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True, on_epoch=False)
        return self._common_step(batch, "train").loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._common_step(batch, "val")

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None) -> None:
        """The optimiser's step, then the target encoders' EMA step, so that any checkpoint
        written after this batch holds both (a resumed run then repeats neither)."""
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        t = self.cfg.train
        momentum = ema_momentum(self.global_step + 1, t.steps, t.ema_start, t.ema_end)
        with torch.no_grad():
            for level in self.stack.levels[self.frozen_levels :]:
                level.update_target(momentum)

    def on_after_backward(self) -> None:
        for k, level in enumerate(self.stack.levels):
            grads = [p.grad for p in level.parameters() if p.grad is not None]
            if not grads:
                continue
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))
            if not torch.isfinite(norm):
                raise NonFiniteLossError(k, "gradient", float(norm), self.global_step)
            if self._logging_step():
                self.log(f"level{k}/grad_norm", norm, on_step=True, on_epoch=False)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        metrics = self.trainer.callback_metrics
        for k in range(self.stack.num_levels):
            std = metrics.get(f"val/level{k}/std_mean")
            rank = metrics.get(f"val/level{k}/eff_rank")
            if std is None or rank is None:
                continue
            collapsed = looks_collapsed(float(std), float(rank), self.stack.levels[k].dim)
            if collapsed and f"collapse{k}" not in self._warned:
                self._warned.add(f"collapse{k}")
                warnings.warn(
                    f"Level {k} looks collapsed at step {self.global_step}: mean per-dimension std {float(std):.3g}, "
                    f"effective rank {float(rank):.3g} (of {self.stack.levels[k].dim}). Raise the regulariser weight "
                    "or lower the learning rate.",
                    CollapseWarning,
                    stacklevel=1,
                )

    def _check_finite(self, out: StackOutput) -> None:
        if torch.isfinite(out.loss):
            return
        for name, value in out.terms.items():
            if not torch.isfinite(value):
                level, term = name.split("/", 1)
                raise NonFiniteLossError(int(level.removeprefix("level")), term, float(value.detach()), self.global_step)
        raise NonFiniteLossError(-1, "total", float(out.loss.detach()), self.global_step)

    # ------------------------------------------------------------------ optimiser
    def configure_optimizers(self) -> dict[str, Any]:
        t = self.cfg.train
        # Critics train in their own phase (hjepa.critic), never in the world model's optimiser.
        params = [p for n, p in self.named_parameters() if p.requires_grad and ".heads.critic." not in n]
        opt = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, t.warmup_steps, t.steps))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Format version, RNG states, the training device and precision; refuses to save
        non-finite weights, so that the last checkpoint on disk is always the last good one."""
        self._check_finite_parameters()
        checkpoint["hjepa_format"] = CHECKPOINT_FORMAT
        checkpoint["hjepa_rng"] = rng_states()
        if self._trainer is not None:
            checkpoint["hjepa_trained_on"] = {"device": str(self.device), "precision": str(self.trainer.precision)}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A checkpoint with trained critics gets critic heads before its weights load; a
        training run resumed from it restores its RNG states when training starts. Critics
        built differently from this config's (a resume with ``--set critic.kind=...``) are
        dropped: critics are trained afresh after the world model anyway."""
        state = checkpoint["state_dict"]
        if has_critics(state):
            saved = checkpoint.get("hyper_parameters", {}).get("config", {}).get("critic", {})
            if _critic_build(saved) == _critic_build(dataclasses.asdict(self.cfg.critic)):
                attach_critics(self.stack, self.cfg.critic)
            else:
                for key in [k for k in state if ".heads.critic." in k]:
                    del state[key]
        self._rng_to_restore = checkpoint.get("hjepa_rng")
        self.trained_on = dict(checkpoint.get("hjepa_trained_on", {}))

    def on_train_start(self) -> None:
        # Lightning has restored the checkpoint (if any) and built the data iterators by now.
        if self._rng_to_restore is not None:
            set_rng_states(self._rng_to_restore)
            self._rng_to_restore = None
        self._apply_config_rates()

    def _apply_config_rates(self) -> None:
        """Train at this config's lr and weight decay. A resumed run gets the checkpoint's
        optimiser back, rates included, so ``--resume --set train.lr=...`` would otherwise be
        ignored without a word; the schedule keeps its place (its step), only its scale changes."""
        t = self.cfg.train
        for sched in (c.scheduler for c in self.trainer.lr_scheduler_configs):
            old = sched.base_lrs[0]
            if any(not math.isclose(b, t.lr, rel_tol=1e-9) for b in sched.base_lrs):
                warnings.warn(f"Resumed with train.lr={t.lr:g}; the checkpoint trained at {old:g}. The schedule goes "
                              f"on from step {sched.last_epoch} at the new rate.", stacklevel=2)  # fmt: skip
            sched.base_lrs = [t.lr] * len(sched.base_lrs)
            factor = lr_factor(sched.last_epoch, t.warmup_steps, t.steps)
            for group in sched.optimizer.param_groups:
                group.update(initial_lr=t.lr, lr=t.lr * factor, weight_decay=t.weight_decay)

    def _check_finite_parameters(self) -> None:
        for k, level in enumerate(self.stack.levels):
            for name, p in level.named_parameters():
                if not torch.isfinite(p).all():
                    raise NonFiniteLossError(k, f"parameter {name}", float("nan"), self.global_step)


def _critic_build(critic: dict[str, Any]) -> tuple:
    """What decides a critic's parameter shapes."""
    return tuple(critic.get(k) for k in ("kind", "hidden", "depth", "embed", "keypoints"))


def has_critics(state_dict: dict[str, Any]) -> bool:
    return any(".heads.critic." in key for key in state_dict)


def rng_states() -> dict[str, Any]:
    """The global RNG states of torch (CPU and CUDA), numpy and Python, as tensors, lists and
    numbers only (a checkpoint stays loadable with ``torch.load(weights_only=True)``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
        "python": [version, list(py_state), py_gauss],
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Inverse of :func:`rng_states` (CUDA states only when CUDA is there)."""
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, py_state, py_gauss = states["python"]
    random.setstate((version, tuple(py_state), py_gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up to 1, then cosine decay to 0.05 at ``total``."""
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    frac = min((step - warmup) / max(total - warmup, 1), 1.0)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac))


def looks_collapsed(std_mean: float, eff_rank: float, dim: int) -> bool:
    """Whether validation states look collapsed: an effective rank under 1.5, or a mean
    per-dimension std under 0.05 with an effective rank under a tenth of ``min(dim, 64)``
    (at least 2). A small std alone is no collapse: a ``gridmap`` level's map states keep most
    cells static, so their mean std sits near 0.02 while their effective rank is ~200."""
    return eff_rank < 1.5 or (std_mean < 0.05 and eff_rank < max(2.0, 0.1 * min(dim, 64)))
