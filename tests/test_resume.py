"""Resuming: after a crash or a SIGKILL at any moment, ``--resume`` ends exactly where an
uninterrupted run ends (CPU); growing a trained stack by a level."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from hjepa.checkpoint import load_module, read_checkpoint
from hjepa.config import ExperimentConfig, apply_overrides, dump_yaml
from hjepa.experiments import cli
from hjepa.experiments.presets import with_levels
from hjepa.fit import fit


class Crash(Callback):
    """Raise before the batch that would take the optimiser to step ``at + 1``."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_start(self, trainer, *args) -> None:
        if trainer.global_step == self.at:
            raise RuntimeError(f"simulated crash at step {self.at}")


def short(cfg: ExperimentConfig, *overrides: str) -> ExperimentConfig:
    base = ["train.steps=30", "train.epoch_steps=5", "train.log_every=2", "train.num_threads=1"]
    return apply_overrides(cfg, base + list(overrides))


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if v != ""} for r in csv.DictReader(f)]


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


def assert_same_run(a: Path, b: Path) -> None:
    """Same weights (bit for bit, targets and critics included) and the same metrics rows."""
    wa, wb = weights(a / "checkpoints" / "last.ckpt"), weights(b / "checkpoints" / "last.ckpt")
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"
    ra, rb = rows(a / "metrics.csv"), rows(b / "metrics.csv")
    assert [r["step"] for r in ra] == [r["step"] for r in rb]
    assert ra == rb


def test_crashes_resume_to_the_uninterrupted_result(tmp_path: Path, debug_cfg: ExperimentConfig, tiny_data: Path) -> None:
    # SIGReg draws random projections every step: the run only matches if the RNG state
    # comes back with the checkpoint.
    cfg = short(debug_cfg, "train.steps=20", "loss.regularizer.kind=sigreg", "critic.enabled=false")
    fit(cfg, tiny_data, tmp_path / "ref", progress=False)
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match="no checkpoint"):  # crash 1 comes before any checkpoint
        with pytest.raises(RuntimeError, match="simulated"):
            fit(cfg, tiny_data, run, resume=True, progress=False, callbacks=[Crash(3)])
    for at, saved in ((8, 5), (17, 15)):
        with pytest.raises(RuntimeError, match="simulated"):
            fit(cfg, tiny_data, run, resume=True, progress=False, callbacks=[Crash(at)])
        assert read_checkpoint(run)["global_step"] == saved
    result = fit(cfg, tiny_data, run, resume=True, progress=False)
    assert result.resumed_from == 15 and result.steps == 20
    assert_same_run(tmp_path / "ref", run)
    lr = [float(r["lr"]) for r in rows(run / "metrics.csv") if "lr" in r]
    assert len(lr) == 10 and lr[-1] < lr[3]  # one schedule: warm-up, then cosine decay, no restart


def test_resuming_a_finished_run_changes_nothing(tmp_path: Path, debug_cfg: ExperimentConfig, tiny_data: Path) -> None:
    cfg = short(debug_cfg, "train.steps=10")
    fit(cfg, tiny_data, tmp_path / "a", progress=False)
    fit(cfg, tiny_data, tmp_path / "b", progress=False)
    again = fit(cfg, tiny_data, tmp_path / "b", resume=True, progress=False)
    assert again.resumed_from == 10 and again.critic is not None
    assert_same_run(tmp_path / "a", tmp_path / "b")


def test_resume_with_a_new_learning_rate_trains_at_it_and_says_so(tmp_path: Path, debug_cfg: ExperimentConfig,
                                                                    tiny_data: Path) -> None:  # fmt: skip
    cfg = short(debug_cfg, "train.steps=10", "critic.enabled=false")
    logged = {}
    for name, lr in (("same", "1e-3"), ("tenfold", "1e-2")):
        fit(apply_overrides(cfg, ["train.lr=1e-3"]), tiny_data, tmp_path / name, progress=False)
        longer = apply_overrides(cfg, ["train.steps=16", f"train.lr={lr}"])
        if name == "same":
            fit(longer, tiny_data, tmp_path / name, resume=True, progress=False)
        else:
            with pytest.warns(UserWarning, match=r"train.lr=0.01; the checkpoint trained at 0.001"):
                fit(longer, tiny_data, tmp_path / name, resume=True, progress=False)
        logged[name] = {int(r["step"]): float(r["lr"]) for r in rows(tmp_path / name / "metrics.csv") if "lr" in r}
    after = [s for s in logged["same"] if s >= 10]
    assert after and all(logged["tenfold"][s] == pytest.approx(10 * logged["same"][s]) for s in after)
    assert all(logged["tenfold"][s] == logged["same"][s] for s in logged["same"] if s < 10)


def _train_cli(data: Path, out: Path, config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hjepa.experiments.cli", "train", "--data", str(data), "--out", str(out),
            "--config", str(config), *extra]  # fmt: skip


def _checkpoint_step(path: Path) -> int:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=False)["global_step"])
    except (FileNotFoundError, RuntimeError, EOFError):
        return -1


@pytest.mark.slow
def test_sigkill_at_several_points_then_resume(tmp_path: Path, debug_cfg: ExperimentConfig, tiny_data: Path) -> None:
    """A real ``hjepa train`` process killed with SIGKILL: during start-up, and mid-training
    at several steps; ``hjepa train --resume`` then ends with the uninterrupted run's weights
    (critics included) and metrics rows."""
    cfg = short(debug_cfg, "train.steps=60")
    config = tmp_path / "config.yaml"
    config.write_text(dump_yaml(cfg))
    fit(cfg, tiny_data, tmp_path / "ref", progress=False)
    run, ckpt = tmp_path / "run", tmp_path / "run" / "checkpoints" / "last.ckpt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    landed = []
    for threshold in (None, 10, 35):  # None: kill 1.5 s after the start, before any checkpoint
        proc = subprocess.Popen(_train_cli(tiny_data, run, config, "--resume"), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        deadline = time.monotonic() + (1.5 if threshold is None else 120)
        while proc.poll() is None and time.monotonic() < deadline:
            if threshold is not None and _checkpoint_step(ckpt) >= threshold:
                break
            time.sleep(0.02)
        alive = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        landed.append((threshold, alive, _checkpoint_step(ckpt)))
    assert all(alive for _, alive, _ in landed), f"a process ended before it was killed: {landed}"
    steps = [step for _, _, step in landed]
    print(f"SIGKILLs landed with the last checkpoint at steps {steps} (-1: none yet)")
    assert steps[0] < steps[1] < steps[2] < 60, f"kills did not land at increasing steps: {landed}"
    done = subprocess.run(_train_cli(tiny_data, run, config, "--resume"), env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert_same_run(tmp_path / "ref", run)
    assert not [p for p in run.rglob("*.tmp")], "a killed writer's temporary was left behind"


# ----------------------------------------------------------------------------- growing a stack


@pytest.fixture(scope="module")
def two_levels(tmp_path_factory: pytest.TempPathFactory, debug_cfg: ExperimentConfig, tiny_data: Path) -> Path:
    out = tmp_path_factory.mktemp("two")
    fit(with_levels(short(debug_cfg, "train.steps=10", "critic.enabled=false"), 2), tiny_data, out, progress=False)
    return out


def _grow(two_levels: Path, out: Path, tiny_data: Path, freeze: bool) -> int:
    import shutil

    shutil.copytree(two_levels, out)
    argv = ["train", "--data", str(tiny_data), "--out", str(out), "--resume", "--levels", "3", "--set",
            "levels.2.stride=2", "--set", "train.steps=6", "--set", f"train.freeze_below={str(freeze).lower()}"]  # fmt: skip
    return cli.main(argv)


def level_weights(path: Path, k: int) -> dict[str, torch.Tensor]:
    prefix = f"stack.levels.{k}."
    return {n: v for n, v in weights(path).items() if n.startswith(prefix) and ".heads.critic." not in n}


def test_grow_a_trained_stack_with_frozen_lower_levels(two_levels: Path, tmp_path: Path, tiny_data: Path) -> None:
    out = tmp_path / "grown"
    assert _grow(two_levels, out, tiny_data, freeze=True) == 0
    grown = load_module(out)
    assert grown.stack.num_levels == 3 and grown.hparams["frozen_levels"] == 2
    old, new = out / "checkpoints" / "levels2.ckpt", out / "checkpoints" / "last.ckpt"
    assert read_checkpoint(old)["hyper_parameters"]["config"]["levels"].__len__() == 2
    for k in (0, 1):  # online and target encoders, predictors: untouched
        before, after = level_weights(old, k), level_weights(new, k)
        assert before.keys() == after.keys() and all(torch.equal(before[n], after[n]) for n in before)
    metrics = rows(out / "metrics.csv")
    assert any("level2/grad_norm" in r for r in metrics)
    assert not any("level0/grad_norm" in r or "level1/grad_norm" in r for r in metrics)
    assert (out / "metrics_levels2.csv").read_text() == (two_levels / "metrics.csv").read_text()


def test_grow_a_trained_stack_fine_tuning_lower_levels(two_levels: Path, tmp_path: Path, tiny_data: Path) -> None:
    out = tmp_path / "grown"
    assert _grow(two_levels, out, tiny_data, freeze=False) == 0
    old, new = out / "checkpoints" / "levels2.ckpt", out / "checkpoints" / "last.ckpt"
    before, after = level_weights(old, 0), level_weights(new, 0)
    assert any(not torch.equal(before[n], after[n]) for n in before)
    assert any("level0/grad_norm" in r for r in rows(out / "metrics.csv"))
