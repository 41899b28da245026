"""Joint training end to end on the debug preset: checkpoints, metrics, resume, NaN stop, DDP."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hjepa.checkpoint import load_module, read_checkpoint
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
    # num_threads=1: a module fixture runs before the per-test one-thread fixture, and two threads
    # on a busy 2-core machine are many times slower than one
    cfg = with_steps(debug_cfg, 240, epoch_steps=120, warmup_steps=20, log_every=10, batch_size=32, num_threads=1)
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
    cfg = with_steps(debug_cfg, 6, log_every=1, epoch_steps=3)
    runs = [fit(cfg, tiny_data, tmp_path / str(i), progress=False) for i in range(2)]
    first, second = (read_metrics(r.metrics_csv) for r in runs)
    assert set(first) == set(second) and len(first["level0/pred"]) == 6
    for column in first:  # every loss term and figure of every level, train and validation
        assert first[column] == second[column], column
    a, b = (torch.load(r.checkpoint, weights_only=False)["state_dict"] for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_seeded_evaluation_is_deterministic(trained, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two evaluations of one checkpoint take the same actions and report the same figures."""
    from hjepa.envs.minigrid_nav import GridNav
    from hjepa.envs.oracle import make_tasks
    from hjepa.experiments.bench import SUITES
    from hjepa.experiments.evaluate import EvalConfig, evaluate_agents

    cfg, result = trained
    suite = SUITES["debug"]
    tasks = make_tasks(cfg.data.env_id, suite.layouts(cfg), 1, suite.bins, seed=cfg.seed + 1)[:2]
    actions: list[int] = []
    step = GridNav.step
    monkeypatch.setattr(GridNav, "step", lambda self, a: (actions.append(int(a)), step(self, a))[1])

    def evaluate() -> tuple[list[int], object, list[dict]]:
        actions.clear()
        torch.manual_seed(cfg.seed)
        eval_cfg = EvalConfig(agents=("hjepa", "random"), max_steps=8, seed=cfg.seed)
        summary, records = evaluate_agents(load_module(result.checkpoint).stack, cfg.data.env_id, tasks,
                                           list(suite.bins), eval_cfg, progress=False)  # fmt: skip
        untimed = [{k: v for k, v in dataclasses.asdict(r).items() if k != "plan_ms"} for r in records]
        return list(actions), _without_timings(summary), untimed

    first, second = evaluate(), evaluate()
    assert len(first[0]) > 4 and first == second


def _without_timings(doc: object) -> object:
    if isinstance(doc, dict):
        return {k: _without_timings(v) for k, v in doc.items() if "_ms" not in k}
    return doc


def test_resume_continues_to_the_last_step(tmp_path: Path, debug_cfg: ExperimentConfig, tiny_data: Path) -> None:
    fit(with_steps(debug_cfg, 10, epoch_steps=5), tiny_data, tmp_path, progress=False)
    result = fit(with_steps(debug_cfg, 20, epoch_steps=5), tiny_data, tmp_path, resume=True, progress=False)
    assert result.steps == 20 and result.resumed_from == 10
    assert torch.load(result.checkpoint, weights_only=False)["global_step"] == 20
    steps = [step for step, _ in read_metrics(result.metrics_csv)["level0/pred"]]
    assert steps == sorted(set(steps)) and steps[0] < 10 < steps[-1]  # earlier rows kept, none twice


def test_resume_without_checkpoint_starts_at_step_zero(tmp_path: Path, debug_cfg: ExperimentConfig,
                                                      tiny_data: Path) -> None:  # fmt: skip
    with pytest.warns(UserWarning, match="no checkpoint"):
        result = fit(with_steps(debug_cfg, 4, epoch_steps=2), tiny_data, tmp_path, resume=True, progress=False)
    assert result.steps == 4 and result.resumed_from is None


def test_resume_from_corrupt_checkpoint_names_the_file(tmp_path: Path, debug_cfg: ExperimentConfig, tiny_data: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="last.ckpt.*corrupt"):
        fit(debug_cfg, tiny_data, tmp_path, resume=True, progress=False)


def test_nan_stops_training_and_keeps_last_good_checkpoint(tmp_path: Path, debug_cfg: ExperimentConfig,
                                                          tiny_data: Path) -> None:  # fmt: skip
    """lr=1e30 makes the weights Inf after a step: caught before any checkpoint holds them."""
    fit(with_steps(debug_cfg, 4, epoch_steps=2), tiny_data, tmp_path, progress=False)
    before = (tmp_path / "checkpoints" / "last.ckpt").read_bytes()
    exploding = apply_overrides(with_steps(debug_cfg, 50, epoch_steps=1), ["train.lr=1e30", "train.warmup_steps=1"])
    with pytest.raises(NonFiniteLossError) as info:
        fit(exploding, tiny_data, tmp_path, progress=False)
    assert info.value.level >= 0 and info.value.term and f"step {info.value.step}" in str(info.value)
    assert (tmp_path / "checkpoints" / "last.ckpt").read_bytes() == before
    module = load_module(tmp_path)  # the last good checkpoint loads and holds finite weights
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_nan_term_names_its_level_and_term(tmp_path: Path, debug_cfg: ExperimentConfig, tiny_data: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from hjepa.stack import HJEPA, StackOutput

    forward, calls = HJEPA.forward, []

    def poisoned(self, *args, **kwargs):
        out = forward(self, *args, **kwargs)
        calls.append(1)
        if len(calls) <= 6:  # train 0, 1, val, train 2, 3, val: poison the training step 4
            return out
        terms = {**out.terms, "level1/pred": out.terms["level1/pred"] * float("nan")}
        return StackOutput(out.loss + terms["level1/pred"], terms, out.passes)

    monkeypatch.setattr(HJEPA, "forward", poisoned)
    with pytest.raises(NonFiniteLossError, match="step 4: level 1's 'pred' loss is nan") as info:
        fit(with_steps(debug_cfg, 20, epoch_steps=2), tiny_data, tmp_path, progress=False)
    assert (info.value.level, info.value.term) == (1, "pred")
    assert read_checkpoint(tmp_path)["global_step"] == 4  # the checkpoint before the fault
    assert load_module(tmp_path).stack.num_levels == 3


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


def test_collapse_is_a_low_rank_not_a_small_std_alone() -> None:
    from hjepa.training import looks_collapsed

    assert not looks_collapsed(0.0166, 200.0, 4356)  # a gridmap level: static cells, high rank (a false alarm before)
    assert not looks_collapsed(0.9, 20.0, 32)
    assert looks_collapsed(0.9, 1.2, 32)  # one direction left
    assert looks_collapsed(0.01, 2.5, 32)  # shrunk, and nearly one-dimensional
