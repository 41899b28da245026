"""``hjepa inspect`` and the ``hjepa.inspection`` API on a tiny trained checkpoint: the files it
writes, nearest-neighbour retrieval on a hand-built level whose prediction is exact, the
episode trace, and clear errors for requests the checkpoint cannot answer."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from hjepa.agents import HJEPAAgent
from hjepa.config import LevelConfig, LossConfig
from hjepa.data.storage import OfflineDataset
from hjepa.envs.oracle import LayoutOracle
from hjepa.errors import DatasetError, InspectionError
from hjepa.experiments.cli import EXIT_USER_ERROR, main
from hjepa.fit import fit
from hjepa.inspection import (InspectConfig, PlannerAgent, check_levels, default_tasks, embedding_view, inspect_checkpoint,
                              layout_bank, load_source, neighbour_views, pca_2d, trace_episode)  # fmt: skip
from hjepa.inspection.embeddings import linear_r2
from hjepa.inspection.source import spearman
from hjepa.level import Level, LevelSpec
from hjepa.planning.configurator import RuleConfigurator
from hjepa.stack import HJEPA

ENV = "MiniGrid-Empty-8x8-v0"
PNGS = ["pred_error_by_horizon.png", "episode.png", "episode_predictions.png", "critic_map.png"] + [
    f"{name}_level{k}.png" for name in ("embeddings", "neighbours") for k in range(3)
]


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory, debug_cfg, tiny_data: Path) -> Path:
    """The debug preset trained for its 40 steps, critics included (a few seconds). One thread:
    module fixtures run before conftest's per-test thread setting, and two busy-waiting threads
    on a loaded 2-core machine made this 20x slower."""
    cfg = dataclasses.replace(debug_cfg, train=dataclasses.replace(debug_cfg.train, num_threads=1))
    return fit(cfg, tiny_data, tmp_path_factory.mktemp("inspect_run"), progress=False).checkpoint


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
def test_cli_writes_every_plot_and_the_table(tiny_ckpt: Path, tmp_path: Path, capsys) -> None:
    code, out, err = run_cli(capsys, "inspect", "--checkpoint", str(tiny_ckpt), "--out", str(tmp_path), "--max-steps", "8")
    assert code == 0, err
    assert "prediction error by horizon" in out and "inspection summary" in out
    for name in PNGS:
        with Image.open(tmp_path / "plots" / name) as img:
            assert img.format == "PNG" and img.size[0] > 300 and img.size[1] > 200, name
    doc = json.loads((tmp_path / "inspect.json").read_text())
    steps = doc["episode"]["steps"]
    with Image.open(tmp_path / "plots" / "episode.gif") as gif:
        assert gif.n_frames == steps + 1  # the start and one frame per action
    assert [r["level"] for r in doc["prediction"]] == [0, 1, 2]
    assert all(len(r["pred"]) == len(r["copy"]) >= 1 for r in doc["prediction"])
    assert [c["level"] for c in doc["critic"]] == [0, 1, 2]
    assert all(0.0 <= n["top_k"] <= 1.0 and n["bank"] > 10 for n in doc["neighbours"])
    md = (tmp_path / "inspect.md").read_text()
    assert "| level | tau | predicted | copy last state |" in md and "plots/critic_map.png" in md


def test_cli_configurator_makes_the_upper_levels_plan(tiny_ckpt: Path, tmp_path: Path, capsys) -> None:
    argv = ["inspect", "--checkpoint", str(tiny_ckpt), "--max-steps", "6", "--no-gif", "--levels", "0,1,2"]
    code, out, err = run_cli(capsys, *argv, "--out", str(tmp_path / "all"), "--configurator", "use_critic=false")
    assert code == 0, err
    subgoals = json.loads((tmp_path / "all" / "inspect.json").read_text())["episode"]["subgoals"]
    assert {"1", "2"} <= set(subgoals) and all(subgoals[k]["plans"] >= 1 for k in ("1", "2"))
    assert "No level above 0 planned" not in out
    code, out, err = run_cli(capsys, *argv, "--out", str(tmp_path / "flat"), "--configurator", "max_levels=1")
    assert code == 0, err
    doc = json.loads((tmp_path / "flat" / "inspect.json").read_text())
    assert set(doc["episode"]["subgoals"]) <= {"0"}
    assert "No level above 0 planned" in " ".join(out.split())
    assert "--configurator max_levels=8" in " ".join(out.split())
    assert any("No level above 0 planned" in n for n in doc["notes"])


@pytest.mark.parametrize(("extra", "fragment"), [(["--set", "train.steps=5"], "--set and --config do nothing"),
                                                 (["--configurator", "depth=3"], "KEY one of")])  # fmt: skip
def test_cli_inspect_refuses_training_options(tiny_ckpt: Path, tmp_path: Path, capsys, extra: list[str],
                                              fragment: str) -> None:  # fmt: skip
    code, _, err = run_cli(capsys, "inspect", "--checkpoint", str(tiny_ckpt), "--out", str(tmp_path / "o"), *extra)
    assert code == EXIT_USER_ERROR and fragment in " ".join(err.split()), err
    assert not (tmp_path / "o").exists()


def test_levels_option_restricts_the_views(tiny_ckpt: Path, tmp_path: Path) -> None:
    cfg = InspectConfig(levels=(1,), windows=16, examples=16, max_steps=2, gif=False)
    report = inspect_checkpoint(tiny_ckpt, tmp_path, cfg)
    plots = {p.name for p in (tmp_path / "plots").iterdir()}
    assert {"embeddings_level1.png", "neighbours_level1.png", "episode.png", "critic_map.png"} <= plots
    assert "embeddings_level0.png" not in plots and "episode.gif" not in plots
    assert [r["level"] for r in report.doc["prediction"]] == [1] and report.doc["episode"]["steps"] <= 2


# ----------------------------------------------------------------------------- bad input
def assert_user_error(code: int, err: str, *fragments: str) -> None:
    flat = "".join(err.split())
    assert code == EXIT_USER_ERROR and "Traceback" not in err, err
    for fragment in fragments:
        assert "".join(fragment.split()) in flat, (fragment, err)


def test_missing_level_is_a_clear_error(tiny_ckpt: Path, tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(capsys, "inspect", "--checkpoint", str(tiny_ckpt), "--out", str(tmp_path), "--levels", "0,5")
    assert_user_error(code, err, "Level(s) [5] requested", "has 3 level(s)")
    code, _, err = run_cli(capsys, "inspect", "--checkpoint", str(tiny_ckpt), "--out", str(tmp_path), "--levels", "top")
    assert_user_error(code, err, "--levels takes comma-separated level numbers")
    assert not (tmp_path / "plots").exists()  # nothing written before the check


def test_episode_out_of_range_is_a_clear_error(tiny_ckpt: Path, tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(capsys, "inspect", "--checkpoint", str(tiny_ckpt), "--out", str(tmp_path), "--episode", "99")
    assert_user_error(code, err, "Episode 99 requested", "evaluation tasks")
    assert not (tmp_path / "plots").exists()


def test_checkpoint_without_its_data_is_a_clear_error(tiny_ckpt: Path, tiny_data: Path, tmp_path: Path, capsys) -> None:
    ckpt = torch.load(tiny_ckpt, map_location="cpu", weights_only=False)
    ckpt["hyper_parameters"]["data_path"] = str(tmp_path / "gone" / "data")
    moved = tmp_path / "elsewhere" / "last.ckpt"
    moved.parent.mkdir()
    torch.save(ckpt, moved)
    code, _, err = run_cli(capsys, "inspect", "--checkpoint", str(moved), "--out", str(tmp_path / "o"))
    assert_user_error(code, err, "gone/data", "which is not there", "--data")
    with pytest.raises(DatasetError):
        load_source(moved)
    assert load_source(moved, data=tiny_data).data.num_steps > 0  # --data points it at the dataset


def test_api_errors_are_inspection_errors(tiny_ckpt: Path) -> None:
    src = load_source(tiny_ckpt)
    with pytest.raises(InspectionError, match="numbered 0..2"):
        check_levels(src.stack, [3])
    with pytest.raises(InspectionError):
        check_levels(src.stack, [])
    assert check_levels(src.stack, None) == [0, 1, 2]


# ----------------------------------------------------------------------------- retrieval
class PoseEncoder(nn.Module):
    """``"b w h 3"`` grid -> one-hot x, y and heading of the agent: an exact, hand-made state."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__()
        self.width, self.height = width, height

    def forward(self, obs: Tensor) -> Tensor:
        cell = (obs[..., 0] == 10).flatten(1).float().argmax(1)
        heading = obs[..., 2].flatten(1).gather(1, cell[:, None])[:, 0].long()
        return encode_pose(cell // self.height, cell % self.height, heading, self.width, self.height)


def encode_pose(x: Tensor, y: Tensor, d: Tensor, width: int, height: int) -> Tensor:
    return torch.cat([F.one_hot(x, width), F.one_hot(y, height), F.one_hot(d, 4)], dim=-1).float()


class ExactPredictor(nn.Module):
    """MiniGrid's rules on the pose code: left / right turn, forward moves onto a free cell."""

    def __init__(self, walkable: np.ndarray) -> None:
        super().__init__()
        self.walkable = torch.from_numpy(np.asarray(walkable))
        self.w, self.h = self.walkable.shape

    def forward(self, s: Tensor, a: Tensor) -> Tensor:
        x, y, d = s[:, : self.w].argmax(-1), s[:, self.w : self.w + self.h].argmax(-1), s[:, self.w + self.h :].argmax(-1)
        act = a.argmax(-1)  # our indices: 0 left, 1 right, 2 forward
        nx, ny = x + torch.tensor([1, 0, -1, 0])[d], y + torch.tensor([0, 1, 0, -1])[d]
        move = (act == 2) & self.walkable[nx, ny]
        d = torch.where(act == 0, (d + 3) % 4, torch.where(act == 1, (d + 1) % 4, d))
        return encode_pose(torch.where(move, nx, x), torch.where(move, ny, y), d, self.w, self.h)


def exact_stack(data: OfflineDataset) -> HJEPA:
    w, h, _ = data.obs_spec.shape
    spec = LevelSpec(index=0, config=LevelConfig(kind="grid", dim=w + h + 4), obs_spec=data.obs_spec, input_dim=0,
                     action_spec=data.action_spec, below_action_dim=0, tau=1)  # fmt: skip
    walkable = LayoutOracle(ENV).nav(int(data.layout[0])).walkable
    level = Level(spec, PoseEncoder(w, h), ExactPredictor(walkable), nn.Linear(2 * (w + h + 4), data.action_spec.n))
    return HJEPA([level], LossConfig(), data.obs_spec, data.action_spec).eval()


def test_retrieval_finds_the_true_target_when_prediction_is_exact(tiny_data: Path) -> None:
    data = OfflineDataset.open(tiny_data)
    (view,) = neighbour_views(exact_stack(data), data, examples=64, k=3, seed=1)
    assert (view.rank == 0).all()  # every true next observation is the nearest
    assert view.top_k(1)[0] == 1.0
    assert all(np.array_equal(n, t) for n, t in zip(view.neighbour_obs[:, 0], view.true_obs))
    assert view.distances[:, 0].max() < 1e-5
    moved = np.array([not np.array_equal(s, t) for s, t in zip(view.start_obs, view.true_obs)])
    assert moved.any() and (view.copy_rank[moved] > 0).all()  # copying misses whenever the pose changed
    cell, cell_moved, n_moved = view.cell_hits()
    assert cell == cell_moved == 1.0 and 0 < n_moved < len(view.rank)


# ----------------------------------------------------------------------------- episode and figures
def test_episode_trace_decodes_every_levels_subgoals(tiny_ckpt: Path) -> None:
    src = load_source(tiny_ckpt)
    oracle = LayoutOracle(ENV)
    task = max(default_tasks(ENV, [0], seed=3, n=4), key=lambda t: t.distance)
    everyone = RuleConfigurator(use_critic=False)  # no critic gating: every level plans
    view = trace_episode(src.stack, oracle.nav(0), oracle.graph(0), task, PlannerAgent(src.stack, everyone), max_steps=6)
    assert len(view.active) == len(view.actions) == len(view.poses) - 1
    assert {r.level for r in view.subgoals} == {1, 2}
    free = {tuple(c) for c in oracle.nav(0).free_cells()}
    assert all(r.pose[:2] in free and r.decode_distance >= 0 for r in view.subgoals)
    assert view.oracle_distance[0] == task.distance
    done = [r for r in view.subgoals if r.step + view.taus[r.level] < len(view.poses)]
    assert done and all(np.isfinite(r.pred_error) and r.reached_pose is not None for r in done)
    # HJEPAAgent is the same planner: the same episode, step for step
    again = trace_episode(src.stack, oracle.nav(0), oracle.graph(0), task, HJEPAAgent(src.stack, everyone), max_steps=6)
    assert again.actions == view.actions and [r.pose for r in again.subgoals] == [r.pose for r in view.subgoals]


def test_embedding_view_on_the_layout(tiny_ckpt: Path) -> None:
    src = load_source(tiny_ckpt)
    bank = layout_bank(src.stack, LayoutOracle(ENV).nav(0))
    assert len(bank.obs) == 36 * 4  # every free cell of Empty-8x8, four headings
    view = embedding_view(bank, 1)
    assert view.projection.shape == (144, 2) and view.std.shape == (16,)
    assert 1.0 <= view.eff_rank <= 16.0


def test_embedding_plot_reference_follows_the_regularizer(tiny_ckpt: Path) -> None:
    from hjepa.config import RegularizerConfig
    from hjepa.inspection import plot_embeddings

    view = embedding_view(layout_bank(load_source(tiny_ckpt).stack, LayoutOracle(ENV).nav(0)), 0)
    cases = {"vicreg": RegularizerConfig(), "sigreg": RegularizerConfig(kind="sigreg"),
             "off": RegularizerConfig(weight=0.0), "no hinge": RegularizerConfig(var_weight=0.0)}  # fmt: skip
    labels = {}
    for name, reg in cases.items():
        ax = plot_embeddings(view, reg).axes[0]
        labels[name] = [line.get_label() for line in ax.get_lines()]
    assert labels["vicreg"] == ["VICReg hinge: std >= 1 over training batches within a layout (not over these observations)"]
    assert labels["sigreg"] == ["SIGReg: unit-Gaussian projections over training batches"]
    assert labels["off"] == labels["no hinge"] == []


def test_figures_of_known_geometry() -> None:
    rng = np.random.default_rng(0)
    line = torch.from_numpy(np.outer(np.arange(50.0), [1.0, 2.0, 0.0]) + rng.normal(0, 0.01, (50, 3)))
    proj, share = pca_2d(line)
    assert share[0] > 0.99 and abs(spearman(proj[:, 0], np.arange(50))) == pytest.approx(1.0)
    y = rng.integers(1, 17, (400, 2)).astype(float)
    assert linear_r2(np.concatenate([y, rng.normal(size=(400, 6))], axis=1), y) > 0.95
    assert linear_r2(rng.normal(size=(400, 8)), y) < 0.1


def test_the_traced_planner_gets_the_datasets_memory_when_its_planner_needs_one() -> None:
    from types import SimpleNamespace

    from hjepa.inspection.report import _memory_for
    from hjepa.planning.configurator import RuleConfigurator

    obs = np.array([[[1, 2]], [[1, 2]], [[3, 4]]], dtype=np.uint8)
    src = SimpleNamespace(data=SimpleNamespace(obs=obs))
    assert _memory_for(src, RuleConfigurator(), 0) is None  # beam search reads no memory
    for planner in ("graph", "imagine"):
        assert _memory_for(src, RuleConfigurator(planner=planner), 0).tolist() == [[[1, 2]], [[3, 4]]]
