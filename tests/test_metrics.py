"""Tests of hjepa.metrics (Wilson intervals, SPL, results.json) and hjepa.plots."""

from __future__ import annotations

import dataclasses

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from hjepa.metrics import (
    EpisodeRecord,
    results_document,
    spl_term,
    summarise,
    summarise_by_agent,
    validate_results,
    wilson_interval,
)
from hjepa.plots import plot_pred_error_by_horizon, plot_success_by_bin

BINS = ("short", "medium", "long")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_wilson_known_values() -> None:
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(50, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(10, 10)
    assert lo == pytest.approx(0.7225, abs=1e-4) and hi == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
    for bad in ((11, 10), (-1, 10), (0, -1)):
        with pytest.raises(ValueError):
            wilson_interval(*bad)


def test_spl_terms() -> None:
    assert spl_term(True, 10, 10) == 1.0
    assert spl_term(True, 10, 20) == 0.5
    assert spl_term(True, 10, 5) == 1.0, "a path shorter than the oracle's counts as optimal"
    assert spl_term(False, 10, 10) == 0.0
    assert spl_term(True, 0, 0) == 1.0 and spl_term(True, 0, 3) == 1.0
    assert spl_term(False, 0, 0) == 0.0
    with pytest.raises(ValueError):
        spl_term(True, -1, 3)


def _record(agent: str, bin_: str, success: bool, steps: int, oracle: int, calls: int, ms: list[float]) -> EpisodeRecord:
    return EpisodeRecord(agent, bin_, success, steps, float(steps), float(oracle), calls, ms)


RECORDS = [
    _record("hjepa", "short", True, 10, 5, 100, [1.0, 2.0]),  # spl 0.5
    _record("hjepa", "short", True, 8, 8, 80, [3.0]),  # spl 1.0
    _record("hjepa", "medium", False, 40, 20, 400, [4.0, 5.0]),  # spl 0
    _record("random", "short", False, 40, 5, 0, []),
]


def test_calls_by_level_and_the_upper_share_come_from_the_records_extras() -> None:
    extra = [{"calls_by_level": [90.0, 10.0], "upper_target_steps": 6}, {"calls_by_level": [80.0], "upper_target_steps": 0}]
    records = [dataclasses.replace(r, extra=e) for r, e in zip(RECORDS[:2], extra)]
    s = summarise(records, BINS)
    assert s["predictor_calls_per_episode_by_level"] == [{"level": 0, "median": 85.0, "max": 90.0},
                                                         {"level": 1, "median": 5.0, "max": 10.0}]  # fmt: skip
    assert s["upper_target_share"] == pytest.approx(6 / 18)


def test_summarise_hand_made_records() -> None:
    s = summarise(RECORDS[:3], BINS)
    assert list(s) == ["episodes", "success", "success_ci95", "spl", "mean_steps", "predictor_calls_per_step",
                       "plan_ms_median", "plan_ms_p95", "plan_ms_mean", "by_distance",
                       "predictor_calls_per_episode"]  # fmt: skip
    assert s["predictor_calls_per_episode"] == {"median": 100.0, "max": 400.0}
    assert s["episodes"] == 3 and s["success"] == pytest.approx(2 / 3)
    assert s["success_ci95"] == pytest.approx(list(wilson_interval(2, 3)))
    assert s["spl"] == pytest.approx(0.5) and s["mean_steps"] == pytest.approx(58 / 3)
    assert s["predictor_calls_per_step"] == pytest.approx(580 / 58)
    assert s["plan_ms_median"] == 3.0 and s["plan_ms_p95"] == pytest.approx(4.8)
    assert s["plan_ms_mean"] == pytest.approx(15 / 5)  # every step's time, pooled over episodes
    assert s["by_distance"] == {
        "short": {"episodes": 2, "success": 1.0, "spl": 0.75},
        "medium": {"episodes": 1, "success": 0.0, "spl": 0.0},
        "long": {"episodes": 0, "success": 0.0, "spl": 0.0},
    }
    assert RECORDS[0].spl == 0.5


def test_summarise_empty_and_errors() -> None:
    s = summarise([], BINS)
    assert s["episodes"] == 0 and s["success_ci95"] == [0.0, 1.0] and s["plan_ms_p95"] == 0.0
    assert list(s["by_distance"]) == list(BINS)
    with pytest.raises(ValueError, match="summarise_by_agent"):
        summarise(RECORDS, BINS)
    with pytest.raises(ValueError, match="xlong"):
        summarise([_record("a", "xlong", True, 1, 1, 0, [])], BINS)
    by_agent = summarise_by_agent(RECORDS, BINS)
    assert list(by_agent) == ["hjepa", "random"] and by_agent["random"]["episodes"] == 1


def _document() -> dict[str, Any]:
    return results_document(
        suite="fourrooms",
        quick=True,
        seed=0,
        device="cpu",
        levels=2,
        train={"wall_s": 1.5, "steps": 100, "samples_per_s": 1e4, "peak_mem_mb": 512.0},
        agents=summarise_by_agent(RECORDS, BINS),
        levels_report=[
            {"level": 0, "tau": 1, "dim": 32, "pred_error_by_horizon": [0.1, 0.2, 0.4], "std_min": 0.3, "effective_rank": 9.5},
            {"level": 1, "tau": 4, "dim": 16, "pred_error_by_horizon": [0.2, 0.5], "std_min": 0.2, "effective_rank": 5.0},
        ],
        command="hjepa bench --suite fourrooms --quick",
    )  # fmt: skip


def test_results_document_is_valid_json() -> None:
    doc = _document()
    assert list(doc)[:8] == ["suite", "quick", "seed", "device", "levels", "train", "agents", "levels_report"]
    assert doc["command"].startswith("hjepa bench")
    validate_results(json.loads(json.dumps(doc)))  # lists survive the round trip


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (("suite",), None, "'suite' is missing"),
        (("train", "peak_mem_mb"), None, "'train.peak_mem_mb' is missing"),
        (("agents", "hjepa", "spl"), None, "'agents.hjepa.spl' is missing"),
        (("agents", "hjepa", "by_distance", "long", "episodes"), None, "'agents.hjepa.by_distance.long.episodes'"),
        (("levels_report",), {}, "'levels_report' should be a list"),
        (("quick",), "yes", "'quick' should be a boolean"),
        (("levels",), 2.5, "'levels' should be an integer"),
        (("agents", "random", "success_ci95"), [0.1], "success_ci95"),
        (("agents", "random", "episodes"), True, "'agents.random.episodes' should be an integer"),
    ],
)
def test_validate_results_names_the_first_bad_key(path: tuple[str, ...], value: Any, match: str) -> None:
    doc = copy.deepcopy(_document())
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    with pytest.raises(ValueError, match=match):
        validate_results(doc)


def test_plots_write_pngs(tmp_path: Path) -> None:
    doc = _document()
    for path in (
        plot_success_by_bin(doc, tmp_path / "success.png"),
        plot_pred_error_by_horizon(doc["levels_report"], tmp_path / "figs" / "pred.png"),
        plot_success_by_bin({"suite": "x", "agents": {}}, tmp_path / "empty.png"),
    ):
        data = Path(path).read_bytes()
        assert len(data) > 1000 and data.startswith(PNG_MAGIC)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["empty.png", "figs", "pred.png", "success.png"]


def test_report_md_has_a_training_line_only_when_training_ran() -> None:
    from hjepa.experiments.bench import results_markdown

    doc = _document()
    assert "Training: 100 steps" in results_markdown(doc)
    doc["train"] = {"wall_s": 0.0, "steps": 0, "samples_per_s": 0.0, "peak_mem_mb": 0.0}
    md = results_markdown(doc)
    assert "Training" not in md and "0 steps" not in md
    assert "trained on cpu" in md


def test_report_md_explains_a_map_level_dim() -> None:
    from hjepa.experiments.bench import results_markdown
    from hjepa.report import MAP_NOTE

    doc = _document()
    assert MAP_NOTE not in results_markdown(doc)
    doc["levels_report"][0] = {**doc["levels_report"][0], "dim": 1444, "map": "4x19x19"}
    md = results_markdown(doc)
    assert "| 1444 (4x19x19) |" in md and MAP_NOTE in md
