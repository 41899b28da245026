"""Joint training end to end on the debug preset: checkpoints, metrics, resume, NaN stop, DDP."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hjepa.checkpoint import load_module
from hjepa.config import ExperimentConfig, apply_overrides
from hjepa.errors import CheckpointError, NonFiniteLossError, SpecMismatchError
from hjepa.fit import fit
from hjepa.report import read_metrics
from hjepa.specs import ObsSpec


def with_steps(cfg: ExperimentConfig, steps: int, **train: object) -> ExperimentConfig:
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=steps, **train))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, debug_cfg: ExperimentConfig, tiny_data: Path):
    """The debug 3-level stack trained long enough for its losses to move (~20 s on 2 cores)."""
    cfg = with_steps(debug_cfg, 240, epoch_steps=120, warmup_steps=20, log_every=10, batch_size=32)
    out = tmp_path_factory.mktemp("trained")
    return cfg, fit(cfg, tiny_data, out, progress=False)


def test_every_level_learns(trained) -> None:
    cfg, result = trained
    metrics = read_metrics(result.metrics_csv)
    for k in range(len(cfg.levels)):
        # prediction loss in units of the targets' spread (the raw MSE of a fresh encoder is
        # tiny because all states start close together, and rises as they spread)
        pred = [v for _, v in metrics[f"level{k}/pred_norm"]]
        first, last = sum(pred[:3]) / 3, sum(pred[-3:]) / 3
        assert last < first, f"level {k}: prediction loss did not fall ({first:.4f} -> {last:.4f})"
        std = [v for _, v in metrics[f"val/level{k}/std_mean"]]
        assert std[-1] > 0.5, f"level {k}: embeddings collapsed (mean std {std[-1]:.3g})"


def test_metrics_per_level_and_term(trained) -> None:
    cfg, result = trained
    columns = set(read_metrics(result.metrics_csv))
    for k in range(3):
        for term in ("pred", "idm", "var", "cov", "std_mean", "eff_rank", "step_ratio", "pred_rel_copy", "nn_acc", "grad_norm"):
            assert f"level{k}/{term}" in columns
    assert {"level1/upward", "level2/upward", "val/level0/pred"} <= columns
    assert result.samples_per_s > 0 and result.steps == cfg.train.steps


def test_checkpoint_round_trip(trained, tiny_data: Path) -> None:
    cfg, result = trained
    module = load_module(result.checkpoint)
    again = load_module(result.checkpoint.parent.parent)  # a run folder works too
    obs = torch.randint(0, 3, (4, *module.stack.obs_spec.shape), dtype=torch.uint8)
    with torch.no_grad():
        for a, b in zip(module.stack.encode(obs), again.stack.encode(obs)):
            assert torch.equal(a, b)
    assert module.cfg == cfg
    with pytest.raises(SpecMismatchError):
        load_module(result.checkpoint, obs_spec=ObsSpec("grid", (9, 9, 3), "uint8"))


def test_corrupt_checkpoint_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "last.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="last.ckpt"):
        load_module(bad)


def test_seeded_training_is_deterministic(tmp_path: Path, debug_cfg: ExperimentConfig, tiny_data: Path) -> None:
    cfg = with_steps(debug_cfg, 6, log_every=1, epoch_steps=6)
    runs = [read_metrics(fit(cfg, tiny_data, tmp_path / str(i), progress=False).metrics_csv) for i in range(2)]
    assert runs[0]["level0/pred"] == runs[1]["level0/pred"]
    assert runs[0]["level2/upward"] == runs[1]["level2/upward"]


def test_resume_continues_to_the_last_step(tmp_path: Path, debug_cfg: ExperimentConfig, tiny_data: Path) -> None:
    fit(with_steps(debug_cfg, 10, epoch_steps=5), tiny_data, tmp_path, progress=False)
    result = fit(with_steps(debug_cfg, 20, epoch_steps=5), tiny_data, tmp_path, resume=True, progress=False)
    assert result.steps == 20
    assert torch.load(result.checkpoint, weights_only=False)["global_step"] == 20


def test_resume_without_checkpoint_is_an_error(tmp_path: Path, debug_cfg: ExperimentConfig, tiny_data: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint"):
        fit(debug_cfg, tiny_data, tmp_path, resume=True, progress=False)


def test_resume_from_corrupt_checkpoint_names_the_file(tmp_path: Path, debug_cfg: ExperimentConfig, tiny_data: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="last.ckpt.*corrupt"):
        fit(debug_cfg, tiny_data, tmp_path, resume=True, progress=False)


def test_nan_stops_training_and_keeps_last_checkpoint(tmp_path: Path, debug_cfg: ExperimentConfig, tiny_data: Path) -> None:
    good = with_steps(debug_cfg, 4, epoch_steps=2)
    fit(good, tiny_data, tmp_path, progress=False)
    before = (tmp_path / "checkpoints" / "last.ckpt").read_bytes()
    exploding = apply_overrides(with_steps(debug_cfg, 50, epoch_steps=1000), ["train.lr=1e30", "train.warmup_steps=1"])
    with pytest.raises(NonFiniteLossError) as info:
        fit(exploding, tiny_data, tmp_path, progress=False)
    assert info.value.level >= 0 and info.value.term
    assert (tmp_path / "checkpoints" / "last.ckpt").read_bytes() == before


def test_ddp_two_processes_on_cpu(tmp_path: Path, tiny_data: Path) -> None:
    """A few steps of 2-process DDP (gloo) through Lightning's own launcher."""
    cmd = [sys.executable, "-m", "hjepa.experiments.cli", "train", "--data", str(tiny_data), "--out", str(tmp_path),
           "--steps", "4", "--device", "cpu", "--set", "train.strategy=ddp", "--set", "train.devices=2",
           "--set", "train.epoch_steps=2", "--config", str(_debug_yaml(tmp_path))]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 4


def _debug_yaml(tmp_path: Path) -> Path:
    from hjepa.config import dump_yaml
    from hjepa.experiments.presets import debug

    path = tmp_path / "debug.yaml"
    path.write_text(dump_yaml(debug()))
    return path
