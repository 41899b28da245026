"""The readiness warning: level 0's one-step figures against the limits of :mod:`hjepa.readiness`,
carried into results.json (validated), report.md, ``hjepa report`` and the training summary."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from hjepa.experiments.bench import results_markdown
from hjepa.experiments.cli import main
from hjepa.metrics import EpisodeRecord, results_document, summarise_by_agent, validate_results
from hjepa.readiness import (MAP_NN_ACC_MIN, MAP_REL_COPY_MAX, MAP_SNAP_ACC_MIN, VECTOR_REL_COPY_MAX, ReadinessWarning,
                             readiness_warnings, warnings_md, warnings_of)  # fmt: skip
from hjepa.report import read_results, report_markdown


def _map_row(nn_acc: float | None = 0.99, rel: float | None = 0.2) -> dict:
    return {"level": 0, "kind": "gridmap", "map": "4x19x19", "nn_acc": nn_acc, "pred_rel_copy": rel}


def _vector_row(kind: str = "grid", nn_acc: float | None = 0.2, rel: float | None = 0.5) -> dict:
    return {"level": 0, "kind": kind, "map": "", "nn_acc": nn_acc, "pred_rel_copy": rel}


def _figures(warnings: list[ReadinessWarning]) -> list[str]:
    return [w.figure for w in warnings]


# ----------------------------------------------------------------------------- the pure function
def test_a_trained_map_level_gets_no_warning() -> None:
    assert readiness_warnings([_map_row(0.95, 0.3)], steps=3000) == []
    assert readiness_warnings([_map_row(MAP_NN_ACC_MIN, MAP_REL_COPY_MAX)], steps=3000) == []  # limits pass


def test_a_map_level_below_the_nearest_neighbour_limit_warns() -> None:
    (w,) = readiness_warnings([_map_row(nn_acc=0.42)], steps=300)
    assert (w.level, w.figure, w.value, w.limit) == (0, "nn_acc", 0.42, MAP_NN_ACC_MIN)
    assert "0.420" in w.message and "0.90" in w.message and "nearest-neighbour accuracy" in w.message


def test_a_map_level_above_the_copy_limit_warns() -> None:
    (w,) = readiness_warnings([_map_row(rel=0.75)], steps=300)
    assert (w.figure, w.value, w.limit) == ("pred_rel_copy", 0.75, MAP_REL_COPY_MAX)
    assert "0.750" in w.message and "0.60" in w.message


def test_a_map_level_whose_predictions_snap_wrong_warns_and_one_without_the_figure_does_not() -> None:
    (w,) = readiness_warnings([{**_map_row(), "snap_acc": 0.84}], steps=3000)
    assert (w.figure, w.value, w.limit) == ("snap_acc", 0.84, MAP_SNAP_ACC_MIN)
    assert "snapped-map accuracy" in w.message and "0.840" in w.message
    assert readiness_warnings([{**_map_row(), "snap_acc": 1.0}], steps=3000) == []
    assert readiness_warnings([{**_map_row(), "snap_acc": math.nan}], steps=3000) == []  # older runs


def test_a_map_level_failing_both_gets_two_warnings_and_the_map_label_alone_makes_a_map_level() -> None:
    assert _figures(readiness_warnings([_map_row(0.5, 0.9)], steps=300)) == ["nn_acc", "pred_rel_copy"]
    unnamed = {**_map_row(0.5, 0.2), "kind": "mymap"}  # a plug-in kind whose state is a map
    assert _figures(readiness_warnings([unnamed], steps=300)) == ["nn_acc"]


@pytest.mark.parametrize("kind", ["grid", "state", "image", "pixels"])
def test_a_vector_level_is_judged_on_the_copy_ratio_alone(kind: str) -> None:
    assert readiness_warnings([_vector_row(kind, nn_acc=0.1, rel=0.85)], steps=300) == []  # nn_acc is not checked
    (w,) = readiness_warnings([_vector_row(kind, rel=0.95)], steps=300)
    assert (w.figure, w.limit) == ("pred_rel_copy", VECTOR_REL_COPY_MAX)
    assert "vector level" in w.message


@pytest.mark.parametrize("missing", [None, math.nan, float("inf")])
def test_missing_figures_give_no_warning(missing: float | None) -> None:
    assert readiness_warnings([_map_row(missing, missing)], steps=300) == []
    assert readiness_warnings([_vector_row(rel=missing)], steps=300) == []
    assert readiness_warnings([{"level": 0, "kind": "gridmap"}], steps=300) == []  # no figures at all
    assert readiness_warnings([], steps=300) == []


def test_only_level_0_is_checked() -> None:
    upper = {"level": 1, "kind": "temporal", "map": "", "nn_acc": 0.0, "pred_rel_copy": 5.0}
    assert readiness_warnings([_map_row(), upper], steps=300) == []
    assert [w.level for w in readiness_warnings([upper, _map_row(nn_acc=0.1)], steps=300)] == [0]


def test_the_message_is_one_line_naming_the_fix() -> None:
    (w,) = readiness_warnings([_vector_row(rel=3.0)], steps=300)
    assert "\n" not in w.message
    assert "--set train.steps=600" in w.message and "data.transitions" in w.message
    (unknown,) = readiness_warnings([_vector_row(rel=3.0)], steps=0)  # steps unknown: no "twice 0"
    assert "train.steps=0" not in unknown.message and "--set train.steps=N" in unknown.message


def test_warnings_md_is_a_section_only_when_there_are_warnings() -> None:
    assert warnings_md([]) == []
    lines = warnings_md(readiness_warnings([_map_row(0.5, 0.9)], steps=10))
    assert lines[0] == "## Warnings" and sum(line.startswith("- Level 0") for line in lines) == 2


# ----------------------------------------------------------------------------- results.json, report.md, hjepa report
def _doc(warnings: list[ReadinessWarning] | None) -> dict:
    train = {"wall_s": 12.0, "steps": 300, "samples_per_s": 100.0, "peak_mem_mb": 300.0}
    records = [EpisodeRecord("hjepa", "short", False, 10, 10, 4, 40, [1.0] * 10)]
    levels = [{"level": 0, "tau": 1, "dim": 8, "pred_error_by_horizon": [0.1], "std_min": 0.5, "effective_rank": 4.0}]
    extra = {} if warnings is None else {"warnings": [w.as_dict() for w in warnings]}
    return results_document("fourrooms", True, 0, "cpu", 1, train, summarise_by_agent(records, ["short"]), levels, **extra)


def test_results_json_round_trip_keeps_the_warnings(tmp_path: Path) -> None:
    found = readiness_warnings([_map_row(0.5, 0.9)], steps=300)
    (tmp_path / "results.json").write_text(json.dumps(_doc(found)), encoding="utf-8")
    doc = read_results(tmp_path)  # validates
    assert warnings_of(doc) == found
    assert warnings_of(_doc(None)) == [] and warnings_of(_doc([])) == []


@pytest.mark.parametrize(("warnings", "match"), [
    ("loud", "'warnings' should be a list"),
    ([{"level": 0, "figure": "nn_acc", "value": 0.5, "limit": 0.9}], "'warnings\\[0\\].message' is missing"),
    ([{"level": 0, "figure": "nn_acc", "value": "low", "limit": 0.9, "message": "m"}], "'warnings\\[0\\].value'"),
])  # fmt: skip
def test_validate_results_checks_the_warnings(warnings: object, match: str) -> None:
    doc = {**_doc(None), "warnings": warnings}
    with pytest.raises(ValueError, match=match):
        validate_results(doc)


def test_report_md_and_hjepa_report_show_the_warnings() -> None:
    found = readiness_warnings([_vector_row(rel=2.0)], steps=300)
    assert "## Warnings" not in results_markdown(_doc([])) and "Warning" not in report_markdown([("r", _doc(None))])
    assert f"- {found[0].message}" in results_markdown(_doc(found)).splitlines()
    assert f"- Warning: {found[0].message}" in report_markdown([("r", _doc(found))]).splitlines()


# ----------------------------------------------------------------------------- the training summary
def test_an_under_trained_run_warns_in_its_summary_and_report_md(tiny_data: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = tmp_path / "run"  # `train` derives the config from the dataset: one gridmap level
    assert main(["train", "--data", str(tiny_data), "--out", str(out), "--steps", "4"]) == 0
    printed = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert "warning: Level 0 (gridmap) cannot plan yet" in printed and "--set train.steps=8" in printed
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Warnings" in report and "- Level 0 (gridmap) cannot plan yet" in report
