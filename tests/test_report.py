"""``hjepa report``: Markdown sections regenerated from run folders' ``results.json``.

The documents are built from episode records by the same functions the evaluation uses
(:func:`hjepa.metrics.summarise_by_agent`, :func:`hjepa.metrics.results_document`), written
where each command writes them, and the printed tables are parsed back and compared with the
records.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hjepa.errors import ResultsError
from hjepa.experiments.cli import main
from hjepa.metrics import EpisodeRecord, results_document, summarise_by_agent, wilson_interval
from hjepa.report import agents_table_md, read_results

BINS = ("short", "long")


def _records() -> list[EpisodeRecord]:
    """hjepa: 3 of 4 (one long failure, one long detour); oracle: 4 of 4 on the shortest paths."""
    return [
        EpisodeRecord("hjepa", "short", True, 4, 4, 4, 40, [1.0, 2.0, 3.0, 10.0]),
        EpisodeRecord("hjepa", "short", True, 6, 6, 3, 60, [1.0] * 6),
        EpisodeRecord("hjepa", "long", True, 20, 20, 10, 200, [2.0] * 20),
        EpisodeRecord("hjepa", "long", False, 30, 30, 12, 300, [4.0] * 30),
        *[EpisodeRecord("oracle", b, True, n, n, n, 0, [0.1] * n) for b, n in (("short", 4), ("short", 3),
                                                                               ("long", 10), ("long", 12))],
    ]  # fmt: skip


def _doc(suite: str = "fourrooms", quick: bool = True, **extra: object) -> dict:
    train = {"wall_s": 12.0, "steps": 30, "samples_per_s": 100.0, "peak_mem_mb": 300.0}
    levels = [{"level": 0, "tau": 1, "dim": 8, "pred_error_by_horizon": [0.1], "std_min": 0.5, "effective_rank": 4.0}]
    return results_document(suite, quick, 0, "cpu", 1, train, summarise_by_agent(_records(), BINS), levels, **extra)


def _write(folder: Path, doc: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    return folder


def _rows(markdown: str) -> dict[str, dict[str, str]]:
    """The agents' rows of the first table, keyed by agent and column."""
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    head = [c.strip() for c in table[0].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table[1:]]
    return {row[0]: dict(zip(head, row)) for row in rows if row[0] in ("hjepa", "oracle")}


def test_report_regenerates_the_table_from_results_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _write(tmp_path / "bench", _doc(command="hjepa bench --suite fourrooms --quick --out bench"))
    assert main(["report", str(run)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## fourrooms\n")
    assert "Command: `hjepa bench --suite fourrooms --quick --out bench`" in out and "device cpu" in out
    rows = _rows(out)
    lo, hi = wilson_interval(3, 4)
    hjepa = rows["hjepa"]
    assert hjepa["episodes"] == "4" and hjepa["success (95% CI)"] == f"0.75 ({lo:.2f}-{hi:.2f})"
    assert hjepa["short success / SPL"] == "1.00 / 0.75"  # SPL: 4/4 and 3/6
    assert hjepa["long success / SPL"] == "0.50 / 0.25"  # 10/20, and a failure
    assert hjepa["SPL"] == "0.50"
    assert hjepa["calls/step"] == "10"  # 600 calls over 60 steps
    ms = [1.0, 2.0, 3.0, 10.0] + [1.0] * 6 + [2.0] * 20 + [4.0] * 30
    assert hjepa["ms/step mean"] == f"{sum(ms) / len(ms):.2f}" and hjepa["median"] == "4.00"
    assert rows["oracle"]["SPL"] == "1.00" and rows["oracle"]["calls/step"] == "0"


def test_report_groups_runs_by_suite_and_finds_run_folders(tmp_path: Path) -> None:
    bench = _write(tmp_path / "bench", _doc())
    run = _write(tmp_path / "run" / "eval", _doc("mazerooms", quick=False)).parent  # `hjepa run` writes eval/
    evaluated = _write(tmp_path / "evaluate", _doc())
    out = tmp_path / "docs" / "results.md"
    assert main(["report", str(bench), str(run), str(evaluated), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## fourrooms", "## mazerooms"]
    fourrooms = text.split("## mazerooms")[0]
    assert fourrooms.count("| hjepa |") == 2 and f"`{evaluated}` (quick)" in fourrooms
    assert f"`{run}` (full)" in text.split("## mazerooms")[1]


def test_report_without_plan_ms_mean_shows_a_dash(tmp_path: Path) -> None:
    doc = _doc()
    for entry in doc["agents"].values():
        del entry["plan_ms_mean"]  # results.json written before the key existed
    rows = _rows("\n".join(agents_table_md(doc)))
    assert rows["hjepa"]["ms/step mean"] == "-" and rows["hjepa"]["median"] == "4.00"


def test_report_rejects_a_results_json_off_its_schema(tmp_path: Path) -> None:
    broken = _doc()
    del broken["agents"]["hjepa"]["spl"]
    folder = _write(tmp_path / "broken", broken)
    with pytest.raises(ResultsError, match="agents.hjepa.spl"):
        read_results(folder)
    empty = _write(tmp_path / "empty", {**_doc(), "agents": {}})
    with pytest.raises(ResultsError, match="holds no agents"):
        read_results(empty)
