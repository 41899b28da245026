"""``fit``: train a stack on a dataset folder, writing checkpoints and metrics to a run folder."""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger

from hjepa.checkpoint import read_checkpoint
from hjepa.config import ExperimentConfig, to_dict
from hjepa.critic import CriticReport, train_critics
from hjepa.datamodule import WindowDataModule
from hjepa.errors import CheckpointError
from hjepa.training import HJEPAModule


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced and how fast it went.

    ``samples_per_s`` counts level-0 transitions (``windows * (window - 1)``); every
    transition of a window is a level-0 training pair and the upper levels train on the same
    windows in the same step.
    """

    checkpoint: Path
    metrics_csv: Path
    steps: int
    wall_s: float
    windows_per_s: float
    samples_per_s: float
    peak_mem_mb: float
    device: str
    rank_zero: bool = True
    final_metrics: dict[str, float] = field(default_factory=dict)
    critic: CriticReport | None = None


class ThroughputMeter(Callback):
    """Training steps per second after a short warm-up, validation time excluded."""

    def __init__(self, warmup: int = 10) -> None:
        self.warmup, self.seen, self.n = warmup, 0, 0
        self.t0: float | None = None
        self.elapsed = self.paused = 0.0

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self.seen += 1
        if self.seen == self.warmup:
            self.t0 = time.perf_counter()
        elif self.t0 is not None:
            self.n += 1
            self.elapsed = time.perf_counter() - self.t0 - self.paused

    def on_validation_start(self, trainer: L.Trainer, *args: Any) -> None:
        self._val_t0 = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self.t0 is not None:
            self.paused += time.perf_counter() - self._val_t0

    def rate(self) -> float:
        return self.n / self.elapsed if self.n and self.elapsed > 0 else 0.0


def resolve_precision(precision: str, accelerator: str) -> str:
    """"auto" -> bf16-mixed on a GPU, 32-true on CPU."""
    if precision != "auto":
        return precision
    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return "bf16-mixed" if gpu else "32-true"


def fit(cfg: ExperimentConfig, data_path: str | Path, out: str | Path, resume: bool = False,
        progress: bool = True) -> TrainResult:  # fmt: skip
    """Train every level of ``cfg``'s stack jointly on the dataset at ``data_path``.

    Writes ``out/checkpoints/last.ckpt`` (every ``train.epoch_steps`` and at the end) and
    ``out/metrics.csv``. ``resume=True`` continues from ``out/checkpoints/last.ckpt``.
    """
    out = Path(out)
    t = cfg.train
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    ckpt_path = out / "checkpoints" / "last.ckpt"
    start = _resume_step(ckpt_path) if resume else 0
    dm = WindowDataModule(data_path, cfg.window, t.batch_size, t.steps, cfg.seed, t.val_fraction, t.val_batches, start)
    module = HJEPAModule(to_dict(cfg), dm.data.obs_spec.to_dict(), dm.data.action_spec.to_dict(), str(dm.data.path))
    meter = ThroughputMeter(warmup=min(10, max(t.steps // 10, 1)))
    trainer = _make_trainer(cfg, out, meter, progress)
    t0 = time.perf_counter()
    trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt_path) if resume else None)
    wall = time.perf_counter() - t0
    trainer.save_checkpoint(ckpt_path)
    critic = None
    if cfg.critic.enabled and trainer.is_global_zero:
        critic = train_critics(module.stack, dm.data, cfg.critic, cfg.seed, progress)
        module.train()
        _save_critics(module, ckpt_path)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    return TrainResult(
        checkpoint=ckpt_path,
        metrics_csv=out / "metrics.csv",
        steps=trainer.global_step,
        wall_s=wall,
        windows_per_s=meter.rate() * t.batch_size,
        samples_per_s=meter.rate() * t.batch_size * (cfg.window - 1),
        peak_mem_mb=peak_memory_mb(),
        device=str(module.device),
        rank_zero=trainer.is_global_zero,
        final_metrics=metrics,
        critic=critic,
    )


def _make_trainer(cfg: ExperimentConfig, out: Path, meter: Callback, progress: bool) -> L.Trainer:
    t = cfg.train
    ckpt = ModelCheckpoint(dirpath=out / "checkpoints", save_last=True, save_top_k=0, every_n_train_steps=t.epoch_steps)
    loggers: list[Any] = [CSVLogger(save_dir=out, name="", version="")]
    try:
        from lightning.pytorch.loggers import TensorBoardLogger
        import tensorboard  # noqa: F401

        loggers.append(TensorBoardLogger(save_dir=out, name="tensorboard", version=""))
    except ImportError:
        pass
    return L.Trainer(
        max_steps=t.steps,
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        num_nodes=t.num_nodes,
        precision=resolve_precision(t.precision, t.accelerator),
        val_check_interval=min(t.epoch_steps, t.steps),
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        log_every_n_steps=t.log_every,
        callbacks=[ckpt, meter] + ([RichProgressBar(leave=True)] if progress else []),
        logger=loggers,
        enable_progress_bar=progress,
        enable_model_summary=False,
        deterministic=False,
        default_root_dir=out,
    )


def _save_critics(module: HJEPAModule, path: Path) -> None:
    """Rewrite the final checkpoint with the critics' weights (rank 0 only, no collective ops:
    under DDP the other ranks have finished). Written to a temporary name, then renamed."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    ckpt["state_dict"] = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(path)


def _resume_step(ckpt_path: Path) -> int:
    if not ckpt_path.is_file():
        raise CheckpointError(f"Cannot resume: no checkpoint at '{ckpt_path}'. Start without --resume.")
    return int(read_checkpoint(ckpt_path).get("global_step", 0))


def peak_memory_mb() -> float:
    """Peak resident memory of this process (MB); the GPU's peak allocation when on CUDA."""
    if torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0:
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
