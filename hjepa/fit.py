"""``fit``: train a stack on a dataset folder, writing checkpoints and metrics to a run folder.

Nothing is lost to a kill: ``checkpoints/last.ckpt`` is written atomically after every
validation point (every ``train.epoch_steps`` steps) and at the end, with the optimiser, the
learning-rate schedule, the target encoders, the loop counters and the RNG states; batch ``i``
is a pure function of ``(seed, i)`` and the data stream restarts at the restored step; and
``metrics.csv`` is flushed before each checkpoint and keeps its earlier rows on resume. So
``fit(..., resume=True)`` after a kill at any moment continues exactly where the checkpoint
stopped, and a CPU run ends as the uninterrupted run would have.
"""

from __future__ import annotations

import resource
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, RichProgressBar

from hjepa.checkpoint import AtomicCheckpointIO, ResumePlan, load_lower_levels, plan_resume, read_checkpoint, save_checkpoint
from hjepa.config import ExperimentConfig, from_dict, to_dict
from hjepa.critic import CriticReport, train_critics
from hjepa.csvlog import MetricsCSV
from hjepa.data.storage import DatasetMeta
from hjepa.datamodule import WindowDataModule
from hjepa.errors import SpecMismatchError
from hjepa.io import write_bytes_with
from hjepa.logs import silence_known_noise
from hjepa.threads import set_threads
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
    resumed_from: int | None = None
    """The checkpoint step training continued from (``None``: a fresh run or a grown stack)."""


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


class PeriodicCheckpoint(Callback):
    """Flush the loggers, then write ``path`` after every validation point (so that its
    metrics rows are on disk before the checkpoint that follows them)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.global_step == 0:
            return
        for logger in trainer.loggers:
            logger.save()
        trainer.save_checkpoint(self.path, weights_only=False)


class StepsProgressBar(RichProgressBar):
    """The training bar counts optimisation steps (the data stream itself is endless)."""

    @property
    def total_train_batches(self) -> int | float:
        return self.trainer.max_steps


def resolve_precision(precision: str, accelerator: str) -> str:
    """"auto" -> bf16-mixed on a GPU, 32-true on CPU."""
    if precision != "auto":
        return precision
    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return "bf16-mixed" if gpu else "32-true"


def fit(cfg: ExperimentConfig, data_path: str | Path, out: str | Path, resume: bool = False, progress: bool = True,
        callbacks: Sequence[Callback] = ()) -> TrainResult:  # fmt: skip
    """Train every level of ``cfg``'s stack jointly on the dataset at ``data_path``.

    Writes ``out/checkpoints/last.ckpt`` (every ``train.epoch_steps`` steps and at the end)
    and ``out/metrics.csv``. ``resume=True`` continues from ``out/checkpoints/last.ckpt``
    when there is one (else it starts at step 0, with a warning); if ``cfg`` adds levels on
    top of the checkpoint's stack, the new stack starts from the checkpoint's weights and
    trains for ``train.steps`` steps, its lower levels frozen when ``train.freeze_below``.

    Raises:
        DatasetError: the dataset cannot be read or has no window of the stack's span.
        SpecMismatchError: ``cfg.data`` names another env, observation mode or action set
            than the dataset's, or resuming on a dataset whose specs are not the checkpoint's.
        CheckpointError: the checkpoint is corrupt or its stack is not ``cfg``'s.
        NonFiniteLossError: a loss, gradient or weight became NaN/Inf (the last checkpoint
            on disk is the last good one).
    """
    out, t = Path(out), cfg.train
    silence_known_noise()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    ckpt_path = out / "checkpoints" / "last.ckpt"
    dm = WindowDataModule(data_path, cfg.window, t.batch_size, t.steps, cfg.seed, t.val_fraction, t.val_batches)
    plan = plan_resume(ckpt_path, cfg, dm.data.obs_spec, dm.data.action_spec) if resume else ResumePlan("fresh")
    check_config_fits_data(cfg, dm.data.meta, data_path)  # after the resume checks, which say more
    if resume and plan.mode == "fresh":
        warnings.warn(f"--resume: no checkpoint at '{ckpt_path}' yet; training starts at step 0.", stacklevel=2)
    module = HJEPAModule(to_dict(cfg), dm.data.obs_spec.to_dict(), dm.data.action_spec.to_dict(), str(dm.data.path),
                         frozen_levels=plan.frozen_levels)  # fmt: skip
    set_threads(t.num_threads or None)
    if plan.mode == "grow":
        load_lower_levels(module, plan.checkpoint, plan.old_levels)
        _keep_before_growth(out, ckpt_path, plan)
    logger = MetricsCSV(out / "metrics.csv", keep_before=plan.step if plan.mode == "resume" else None)
    meter = ThroughputMeter(warmup=min(10, max(t.steps // 10, 1)))
    trainer = _make_trainer(cfg, out, [meter, PeriodicCheckpoint(ckpt_path), *callbacks], logger, progress)
    t0 = time.perf_counter()
    trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt_path) if plan.mode == "resume" else None)
    wall = time.perf_counter() - t0
    trainer.save_checkpoint(ckpt_path, weights_only=False)
    critic = None
    if cfg.critic.enabled and trainer.is_global_zero:
        critic = _train_critics(module, dm, cfg, progress)
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
        resumed_from=plan.step if plan.mode == "resume" else None,
    )


_SPEC_FIELDS = ("obs_mode", "image_tile", "action_subset", "action_repeat")
"""The collector settings that fix the observation and action specs (with the env id)."""


def check_config_fits_data(cfg: ExperimentConfig, meta: DatasetMeta, path: str | Path) -> None:
    """:class:`SpecMismatchError` naming both sides when ``cfg.data`` describes other
    observations or actions than the dataset's (the evaluation would run the config's env)."""
    want = to_dict(cfg.data)
    got = {"env_id": meta.env_id, **{k: meta.collector[k] for k in _SPEC_FIELDS if k in meta.collector}}
    if got.get("obs_mode", want["obs_mode"]) != "image":
        got.pop("image_tile", None)  # the tile size only shapes images
    diffs = [f"{k} {want[k]!r} (config) against {v!r} (dataset)" for k, v in got.items()
             if _plain(want[k]) != _plain(v)]  # fmt: skip
    if diffs:
        raise SpecMismatchError(
            f"The config does not describe the dataset '{path}': {'; '.join(diffs)}. Train without --config "
            "and --set data.* (the config then follows the dataset), or collect data for the config "
            "(hjepa collect --config C.yaml)."
        )


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


def _make_trainer(cfg: ExperimentConfig, out: Path, callbacks: list[Callback], logger: MetricsCSV,
                  progress: bool) -> L.Trainer:  # fmt: skip
    t = cfg.train
    loggers: list[Any] = [logger]
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
        callbacks=callbacks + ([StepsProgressBar(leave=True)] if progress else []),
        logger=loggers,
        plugins=[AtomicCheckpointIO()],
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        deterministic=False,
        default_root_dir=out,
    )


def _keep_before_growth(out: Path, ckpt_path: Path, plan: ResumePlan) -> None:
    """Keep the smaller stack's checkpoint and metrics beside the grown run's (first time only:
    a grown run killed before its first checkpoint grows again from the same files)."""
    kept = ckpt_path.with_name(f"levels{plan.old_levels}.ckpt")
    if not kept.exists():
        write_bytes_with(kept, lambda f: f.write(ckpt_path.read_bytes()))
    metrics, kept_metrics = out / "metrics.csv", out / f"metrics_levels{plan.old_levels}.csv"
    if metrics.exists() and not kept_metrics.exists():
        write_bytes_with(kept_metrics, lambda f: f.write(metrics.read_bytes()))


def _train_critics(module: HJEPAModule, dm: WindowDataModule, cfg: ExperimentConfig, progress: bool) -> CriticReport:
    """Fresh critics on the trained stack, initialised from the run's seed alone, so that a
    resumed or repeated run trains the same critics whatever the RNG did before."""
    for level in module.stack.levels:
        if "critic" in level.heads:
            del level.heads["critic"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed + 10_007)
        report = train_critics(module.stack, dm.data, cfg.critic, cfg.seed, progress)
    module.train()
    return report


def _save_critics(module: HJEPAModule, path: Path) -> None:
    """Rewrite the final checkpoint with the critics' weights (rank 0 only, no collective ops:
    under DDP the other ranks have finished). Written to a temporary name, then renamed."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    ckpt["state_dict"] = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    save_checkpoint(ckpt, path)


def resume_config(out: str | Path) -> ExperimentConfig | None:
    """The config of the run in ``out`` (from its last checkpoint), or None when it has none."""
    path = Path(out) / "checkpoints" / "last.ckpt"
    if not path.is_file():
        return None
    return from_dict(ExperimentConfig, read_checkpoint(path)["hyper_parameters"]["config"], where=str(path))


def peak_memory_mb() -> float:
    """Peak resident memory of this process (MB); the GPU's peak allocation when on CUDA."""
    if torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0:
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


