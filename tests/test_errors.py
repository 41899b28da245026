"""Every bad input of docs/errors.md, one row each: the exception class, a fragment of its
message, and (on the command line) one paragraph on stderr, exit code 2, no traceback unless
``--debug``. ``test_docs_list_every_case`` keeps the document and this table in step.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from hjepa.checkpoint import load_module, save_checkpoint
from hjepa.config import ExperimentConfig, apply_overrides, dump_yaml
from hjepa.data.collect import CollectConfig, collect
from hjepa.data.storage import DatasetWriter
from hjepa.datamodule import WindowDataModule
from hjepa.envs import action_spec
from hjepa.envs.oracle import LayoutOracle
from hjepa.errors import (CheckpointError, ConfigError, DatasetError, HJEPAError, InvalidGoalError,
                          MissingExtraError, NotNavigationEnvError, ResultsError, SpecMismatchError, StorageError,
                          UnknownEnvError, UnknownNameError)  # fmt: skip
from hjepa.experiments.cli import main
from hjepa.fit import fit
from hjepa.io import write_json
from hjepa.planning.planners import categorical_cem
from hjepa.specs import ObsSpec

DOCS = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@dataclass
class Ctx:
    """Shared inputs: a tiny dataset, a trained debug run (read-only: copy before changing),
    a debug config file, a FourRooms dataset, and a fresh folder per case."""

    data: Path
    run: Path
    config: Path
    other_data: Path
    tmp: Path

    def run_copy(self) -> Path:
        dst = self.tmp / "run"
        shutil.copytree(self.run, dst)
        return dst

    def data_copy(self) -> Path:
        dst = self.tmp / "data"
        shutil.copytree(self.data, dst)
        return dst


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, debug_cfg: ExperimentConfig, tiny_data: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("errors")
    cfg = apply_overrides(debug_cfg, ["train.steps=2", "train.epoch_steps=2", "critic.enabled=false", "train.num_threads=1"])
    fit(cfg, tiny_data, root / "run", progress=False)
    (root / "debug.yaml").write_text(dump_yaml(cfg))
    collect(CollectConfig(env_id="MiniGrid-FourRooms-v0", transitions=200, episode_len=50), root / "fr", progress=False)
    return {"data": tiny_data, "run": root / "run", "config": root / "debug.yaml", "other_data": root / "fr"}


@pytest.fixture()
def ctx(shared: dict[str, Path], tmp_path: Path) -> Ctx:
    return Ctx(tmp=tmp_path, **shared)


# ----------------------------------------------------------------------------- damage helpers
def _rewrite_meta(data: Path, **changes: object) -> Path:
    meta = json.loads((data / "meta.json").read_text())
    (data / "meta.json").write_text(json.dumps({**meta, **changes}))
    return data


def _truncate(path: Path, keep: float = 0.5) -> Path:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    return path


def _edit_checkpoint(run: Path, **changes: object) -> Path:
    path = run / "checkpoints" / "last.ckpt"
    ckpt = torch.load(path, weights_only=False)
    ckpt.update(changes)
    torch.save(ckpt, path)
    return run


def _full_disk(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise ENOSPC

    monkeypatch.setattr(os, name, fail)


# ----------------------------------------------------------------------------- the command line
def _train(c: Ctx, *extra: str) -> list[str]:
    return ["train", "--data", str(c.data), "--out", str(c.tmp / "out"), "--config", str(c.config), *extra]


def _evaluate(c: Ctx, checkpoint: Path | str, *extra: str) -> list[str]:
    return ["evaluate", "--checkpoint", str(checkpoint), "--out", str(c.tmp / "eval"), *extra]


def _collect(c: Ctx, env: str = "MiniGrid-Empty-8x8-v0", transitions: str = "200", *extra: str) -> list[str]:
    return ["collect", "--env", env, "--transitions", transitions, "--out", str(c.tmp / "col"), *extra]


CLI: dict[str, tuple[Callable[[Ctx], list[str]], type[HJEPAError], str]] = {
    "unknown-experiment": (lambda c: ["run", "nope", "--out", str(c.tmp)], UnknownNameError, "Unknown experiment 'nope'"),
    "unknown-env": (lambda c: _collect(c, "NoSuchEnv-v9"), UnknownEnvError, "NoSuchEnv-v9"),
    "not-a-navigation-env": (lambda c: _collect(c, "CartPole-v1"), NotNavigationEnvError, "CartPole-v1"),
    "not-a-goal-reaching-env": (lambda c: _collect(c, "MiniGrid-Fetch-5x5-N2-v0"), NotNavigationEnvError,
                                "'MiniGrid-Fetch-5x5-N2-v0' is not a goal-reaching task"),  # fmt: skip
    "moving-obstacles-env": (lambda c: _collect(c, "MiniGrid-Dynamic-Obstacles-5x5-v0"), NotNavigationEnvError,
                             "'MiniGrid-Dynamic-Obstacles-5x5-v0' has moving objects"),  # fmt: skip
    "observation-not-the-grid": (lambda c: _collect(c, "hjepa-test/PixelEmpty-v0"), NotNavigationEnvError,
                                 "'hjepa-test/PixelEmpty-v0' does not observe the grid"),  # fmt: skip
    "bench-env-not-goal-reaching": (lambda c: ["bench", "--env", "MiniGrid-Fetch-5x5-N2-v0", "--out", str(c.tmp)],
                                    NotNavigationEnvError, "'MiniGrid-Fetch-5x5-N2-v0' is not a goal-reaching task"),
    "bench-env-moving-obstacles": (lambda c: ["bench", "--env", "MiniGrid-Dynamic-Obstacles-5x5-v0", "--out", str(c.tmp)],
                                   NotNavigationEnvError, "'MiniGrid-Dynamic-Obstacles-5x5-v0' has moving objects"),
    "bench-env-not-the-grid": (lambda c: ["bench", "--env", "hjepa-test/PixelEmpty-v0", "--out", str(c.tmp)],
                               NotNavigationEnvError, "'hjepa-test/PixelEmpty-v0' does not observe the grid"),
    "held-out-layout-collected": (lambda c: _collect(c, "MiniGrid-Empty-8x8-v0", "200", "--layouts", "random",
                                                     "--set", "data.exclude_layout_seeds=[1]"),
                                  ConfigError, "Cannot hold out layouts of 'MiniGrid-Empty-8x8-v0' by content"),  # fmt: skip
    "negative-transitions": (lambda c: _collect(c, transitions="-5"), ConfigError, "transitions must be > 0, got -5"),
    "zero-episode-length": (lambda c: _collect(c, "MiniGrid-Empty-8x8-v0", "200", "--episode-len", "0"), ConfigError,
                            "episode_len must be > 0"),  # fmt: skip
    "stride-below-two": (lambda c: _train(c, "--set", "levels.1.stride=1"), ConfigError,
                         "Level 1: stride must be an integer >= 2"),  # fmt: skip
    "fractional-stride": (lambda c: _train(c, "--set", "levels.1.stride=2.5"), ConfigError, "expected int, got 2.5"),
    "unknown-config-key": (lambda c: _train(c, "--set", "train.nope=1"), ConfigError, "unknown key 'nope'"),
    "value-of-wrong-type": (lambda c: _train(c, "--set", "train.steps=many"), ConfigError, "expected int, got 'many'"),
    "unknown-level-kind": (lambda c: _train(c, "--set", "levels.0.kind=nope"), UnknownNameError, "nope"),
    "negative-steps": (lambda c: _train(c, "--set", "train.steps=-3"), ConfigError, "train.steps must be an integer >= 1"),
    "zero-batch-size": (lambda c: _train(c, "--set", "train.batch_size=0"), ConfigError,
                        "train.batch_size must be an integer >= 1"),  # fmt: skip
    "negative-seed": (lambda c: _train(c, "--seed", "-1"), ConfigError, "seed must be >= 0, got -1"),
    "zero-levels": (lambda c: ["train", "--data", str(c.data), "--out", str(c.tmp), "--levels", "0"], ConfigError,
                    "--levels must be >= 1"),  # fmt: skip
    "missing-dataset": (lambda c: ["train", "--data", str(c.tmp / "nothing"), "--out", str(c.tmp)], DatasetError,
                        "does not exist"),  # fmt: skip
    "empty-dataset-folder": (lambda c: ["train", "--data", str(c.tmp), "--out", str(c.tmp / "o")], DatasetError,
                             "meta.json' is missing"),  # fmt: skip
    "corrupt-meta-json": (lambda c: _with_data(c, _garbage(c.data_copy() / "meta.json").parent), DatasetError,
                          "is not valid JSON"),  # fmt: skip
    "truncated-array": (lambda c: _with_data(c, _truncate(c.data_copy() / "obs.npy").parent), DatasetError, "truncated"),
    "array-disagrees-with-meta": (lambda c: _with_data(c, _short_actions(c.data_copy())), DatasetError,
                                  "but meta.json implies"),  # fmt: skip
    "dataset-format-version": (lambda c: _with_data(c, _rewrite_meta(c.data_copy(), format_version=99)), DatasetError,
                               "format_version 99"),  # fmt: skip
    "empty-dataset": (lambda c: _with_data(c, _rewrite_meta(c.data_copy(), num_transitions=0)), DatasetError,
                      "is empty"),  # fmt: skip
    "episodes-shorter-than-window": (lambda c: _train(c, "--set", "levels.2.stride=30"), DatasetError,
                                     "no episode of at least 61 observations"),  # fmt: skip
    "missing-checkpoint": (lambda c: _evaluate(c, c.tmp / "none.ckpt"), CheckpointError, "No checkpoint at"),
    "corrupt-checkpoint": (lambda c: _evaluate(c, _garbage(c.tmp / "bad.ckpt")), CheckpointError, "truncated or corrupt"),
    "truncated-checkpoint": (lambda c: _evaluate(c, _truncate(c.run_copy() / "checkpoints" / "last.ckpt")),
                             CheckpointError, "truncated or corrupt"),  # fmt: skip
    "not-an-hjepa-checkpoint": (lambda c: _evaluate(c, _torch_file(c.tmp / "x.ckpt")), CheckpointError,
                                "is not an hjepa checkpoint"),  # fmt: skip
    "checkpoint-format-version": (lambda c: _evaluate(c, _edit_checkpoint(c.run_copy(), hjepa_format=99)),
                                  CheckpointError, "has format 99"),  # fmt: skip
    "checkpoint-env-mismatch": (lambda c: _evaluate(c, c.run, "--env", "MiniGrid-FourRooms-v0"), SpecMismatchError,
                                "was trained on 'MiniGrid-Empty-8x8-v0', not 'MiniGrid-FourRooms-v0'"),  # fmt: skip
    "resume-with-changed-stack": (lambda c: _resume(c, "--set", "levels.0.dim=32"), CheckpointError,
                                  "level 0 differs"),  # fmt: skip
    "resume-dropping-levels": (lambda c: _resume(c, "--levels", "2"), CheckpointError, "resuming cannot drop levels"),
    "resume-on-other-data": (lambda c: _resume(c, data=c.other_data), SpecMismatchError,
                             "Observation spec of the checkpoint"),  # fmt: skip
    "missing-results": (lambda c: ["report", str(c.tmp)], ResultsError, "No results.json at"),
    "results-not-json": (lambda c: ["report", str(_text(c.tmp / "results.json", "{not json"))], ResultsError,
                         "is not a readable results.json"),  # fmt: skip
    "unknown-suite": (lambda c: ["bench", "--suite", "nope", "--out", str(c.tmp)], UnknownNameError, "Unknown suite 'nope'"),
    "unknown-agent": (lambda c: _evaluate(c, c.run, "--agents", "hjepa,nope"), UnknownNameError, "Unknown agent"),
    "zero-episodes": (lambda c: _evaluate(c, c.run, "--episodes", "0"), ConfigError, "--episodes must be >= 1"),
    "missing-config-file": (lambda c: _train(c)[:-1] + [str(c.tmp / "none.yaml")], ConfigError, "does not exist"),
    "config-not-yaml": (lambda c: _train(c)[:-1] + [str(_text(c.tmp / "c.yaml", "a: [1,"))], ConfigError,
                        "is not valid YAML"),  # fmt: skip
}


def _garbage(path: Path) -> Path:
    path.write_bytes(b"\x00garbage{" * 8)
    return path


def _text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _torch_file(path: Path) -> Path:
    torch.save({"weights": torch.zeros(2)}, path)
    return path


def _short_actions(data: Path) -> Path:
    np.save(data / "actions.npy", np.zeros(7, dtype=np.int16))
    return data


def _with_data(c: Ctx, data: Path) -> list[str]:
    return ["train", "--data", str(data), "--out", str(c.tmp / "out"), "--config", str(c.config)]


def _resume(c: Ctx, *extra: str, data: Path | None = None) -> list[str]:
    return ["train", "--data", str(data or c.data), "--out", str(c.run_copy()), "--resume", *extra]


def _single_paragraph(err: str) -> bool:
    text = err.strip()
    return text.startswith("error:") and "\n\n" not in text and "Traceback" not in text


@pytest.mark.parametrize("case", sorted(CLI))
def test_cli_bad_input(case: str, ctx: Ctx, capsys: pytest.CaptureFixture[str]) -> None:
    make_argv, exc, fragment = CLI[case]
    argv = make_argv(ctx)
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2, err
    assert _single_paragraph(err), err
    assert "".join(fragment.split()) in "".join(err.split()), f"{fragment!r} not in {err!r}"
    with pytest.raises(exc):  # --debug shows the exception itself
        main(list(argv) + ["--debug"])


def test_cli_full_disk_leaves_no_dataset(ctx: Ctx, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    _full_disk(monkeypatch, "posix_fallocate")
    code = main(_collect(ctx))
    err = capsys.readouterr().err
    assert code == 2 and _single_paragraph(err) and "No space left on device" in err, err
    assert not (ctx.tmp / "col" / "data").exists()
    assert not [p for p in ctx.tmp.rglob("*") if p.name.endswith(".tmp")]


# ----------------------------------------------------------------------------- the API
def _goal_in_wall(c: Ctx) -> None:
    LayoutOracle("MiniGrid-FourRooms-v0").graph(0).distance((1, 1, 0), (0, 0))


def _goal_in_lava(c: Ctx) -> None:
    oracle = LayoutOracle("MiniGrid-LavaGapS7-v0")
    x, y = (int(v) for v in np.argwhere(oracle.nav(0).encoding[..., 0] == 9)[0])  # a lava cell
    oracle.graph(0).distance(oracle.nav(0).start_pose, (x, y))


def _other_actions(c: Ctx) -> None:
    from hjepa.experiments.generic import generic_suite
    from hjepa.experiments.presets import debug

    generic_suite("MiniGrid-DoorKey-5x5-v0", debug())  # trained with left, right, forward only


def _goal_outside(c: Ctx) -> None:
    LayoutOracle("MiniGrid-FourRooms-v0").graph(0).distance((1, 1, 0), (40, 3))


def _obs_shape(c: Ctx) -> None:
    load_module(c.run).stack.encode(torch.zeros(2, 9, 9, 3, dtype=torch.uint8))


def _obs_dtype(c: Ctx) -> None:
    stack = load_module(c.run).stack
    stack.encode(torch.zeros(2, *stack.obs_spec.shape, dtype=torch.float32))


def _writer(c: Ctx) -> DatasetWriter:
    return DatasetWriter(c.tmp / "ds", env_id="MiniGrid-Empty-5x5-v0", obs_spec=ObsSpec("grid", (5, 5, 3), "uint8"),
                         action_spec=action_spec(("left", "right", "forward")), num_steps=4, num_episodes=1)  # fmt: skip


def _episode_dtype(c: Ctx) -> None:
    with _writer(c) as w:
        w.append_episode(np.zeros((4, 5, 5, 3), np.float64), np.zeros(3, np.int16), 0, np.zeros((4, 3)))


def _action_range(c: Ctx) -> None:
    with _writer(c) as w:
        w.append_episode(np.zeros((4, 5, 5, 3), np.uint8), np.array([0, 1, 7], np.int16), 0, np.zeros((4, 3)))


def _planner_budget(c: Ctx) -> None:
    categorical_cem(lambda s: s.sum(1).float(), n_actions=3, horizon=4, samples=-1, iters=2, elites=2)


def _window(c: Ctx) -> None:
    WindowDataModule(c.data, window=1, batch_size=4, steps=2)


def _spec_mismatch(c: Ctx) -> None:
    load_module(c.run, obs_spec=ObsSpec("grid", (9, 9, 3), "uint8"))


def _full_disk_json(c: Ctx) -> None:
    (c.tmp / "results.json").write_text("old")
    try:
        write_json(c.tmp / "results.json", {"success": 1.0})
    finally:
        assert (c.tmp / "results.json").read_text() == "old"


def _full_disk_checkpoint(c: Ctx) -> None:
    path = c.run_copy() / "checkpoints" / "last.ckpt"
    before = path.read_bytes()
    try:
        save_checkpoint({"state_dict": {}}, path)
    finally:
        assert path.read_bytes() == before


def _missing_extra(c: Ctx) -> None:
    from hjepa.envs.pointmaze import require_nav

    require_nav()


def _no_robotics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gymnasium_robotics", None)  # as if not installed


def _no_space(monkeypatch: pytest.MonkeyPatch) -> None:
    _full_disk(monkeypatch, "replace")


Patch = Callable[[pytest.MonkeyPatch], None] | None
def _fixed_layout_held_out(c: Ctx) -> None:
    # Every reset of Empty-5x5 gives the same layout, so seed 1's is seed 0's.
    cfg = CollectConfig(env_id="MiniGrid-Empty-5x5-v0", transitions=50, layout_seed=0, exclude_layout_seeds=(1,))
    collect(cfg, c.tmp / "held", progress=False)


API: dict[str, tuple[Callable[[Ctx], None], type[Exception], str, Patch]] = {
    "fixed-layout-held-out": (_fixed_layout_held_out, ConfigError,
                              "the fixed layout 0 of 'MiniGrid-Empty-5x5-v0' has the same walls, doors and objects",
                              None),  # fmt: skip
    "goal-in-a-wall": (_goal_in_wall, InvalidGoalError, "The goal cell (0, 0) is a wall", None),
    "goal-in-lava": (_goal_in_lava, InvalidGoalError, "is a lava in the 7x7 grid", None),
    "checkpoint-of-other-actions": (_other_actions, SpecMismatchError,
                                    "'MiniGrid-DoorKey-5x5-v0' needs the actions ['left', 'right', 'forward', 'pickup', "
                                    "'toggle'], but the model was trained with ['left', 'right', 'forward']", None),
    "goal-outside-the-grid": (_goal_outside, InvalidGoalError, "is outside the 19x19 grid", None),
    "observation-of-wrong-shape": (_obs_shape, SpecMismatchError, "expects observations of shape (b, 8, 8, 3)", None),
    "observation-of-wrong-dtype": (_obs_dtype, SpecMismatchError, "expects integer cell codes", None),
    "episode-of-wrong-dtype": (_episode_dtype, DatasetError, "observations are float64", None),
    "action-out-of-range": (_action_range, DatasetError, "discrete actions must be integers in [0, 3)", None),
    "negative-planner-budget": (_planner_budget, ConfigError, "budget must be positive", None),
    "window-below-two": (_window, ConfigError, "window must be an integer >= 2", None),
    "checkpoint-spec-mismatch": (_spec_mismatch, SpecMismatchError, "Observation spec of the checkpoint", None),
    "full-disk-results-json": (_full_disk_json, StorageError, "results.json': No space left on device", _no_space),
    "full-disk-checkpoint": (_full_disk_checkpoint, StorageError, "last.ckpt': No space left on device", _no_space),
    "missing-optional-dependency": (_missing_extra, MissingExtraError, 'pip install "hjepa[nav]"', _no_robotics),
}


@pytest.mark.parametrize("case", sorted(API))
def test_api_bad_input(case: str, ctx: Ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    call, exc, fragment, patch = API[case]
    if patch is not None:
        patch(monkeypatch)
    with pytest.raises(exc) as info:
        call(ctx)
    assert fragment in str(info.value)
    assert not [p for p in ctx.tmp.rglob("*") if p.name.endswith(".tmp")], "a temporary was left behind"


def test_docs_list_every_case() -> None:
    """docs/errors.md has one table row per case, keyed by the case id in backticks."""
    documented = set(re.findall(r"^\| `([a-z0-9-]+)` \|", DOCS.read_text(), flags=re.M))
    tested = set(CLI) | set(API) | {"full-disk-dataset", "nan-loss", "nan-weights"}
    assert documented == tested, (sorted(tested - documented), sorted(documented - tested))
