"""docs/benchmark.md's suites table says what the presets and suites do today.

For every suite of ``experiments.bench.SUITES``, the row of docs/benchmark.md states its level
count, level-0 kind, level-0 planner, upper-level mode, whether critics are trained and the
transitions collected (full / quick); this test reads them from the code and compares.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hjepa.envs.pointmaze import is_pointmaze
from hjepa.experiments.bench import SUITES, Suite

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmark.md"
COLUMNS = ("levels", "level 0", "planner", "upper levels", "critics", "transitions, full / quick")


def suites_table(text: str) -> dict[str, dict[str, str]]:
    """The first table under "## Suites", keyed by the suite's name, then by column."""
    section = text.split("\n## Suites\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        rows[cells[0].strip("`")] = dict(zip(head, cells))
    return rows


def _k(n: int) -> str:
    return f"{n // 1000}k"


def expected_row(suite: Suite) -> dict[str, str]:
    """What the code says for each checked column of ``suite``'s row."""
    full, quick = suite.experiment(quick=False), suite.experiment(quick=True)
    conf = suite.configurator
    planner = conf.continuous_planner if is_pointmaze(full.data.env_id) else conf.planner
    return {
        "levels": str(len(full.levels)),
        "level 0": f"`{full.levels[0].kind}`",
        "planner": f"`{planner}`",
        "upper levels": f"`{conf.upper}`" if len(full.levels) > 1 else "-",
        "critics": "yes" if full.critic.enabled else "no",
        "transitions, full / quick": f"{_k(full.data.transitions)} / {_k(quick.data.transitions)}",
    }


def test_the_table_lists_every_suite() -> None:
    assert set(suites_table(DOC.read_text(encoding="utf-8"))) == set(SUITES)


@pytest.mark.parametrize("name", sorted(SUITES))
def test_a_suites_row_matches_its_preset(name: str) -> None:
    row = suites_table(DOC.read_text(encoding="utf-8"))[name]
    assert {c: row[c] for c in COLUMNS} == expected_row(SUITES[name])


def test_the_parser_reads_a_changed_row() -> None:
    """A row that disagrees with the code is caught (the check can fail)."""
    text = DOC.read_text(encoding="utf-8").replace("| 1 | `gridmap` | `imagine` |", "| 3 | `gridmap` | `beam` |", 1)
    row = suites_table(text)["fourrooms"]
    assert {c: row[c] for c in COLUMNS} != expected_row(SUITES["fourrooms"])
