"""Logs that read: wide tables in pipes and files, no Lightning tips, no known deprecation noise."""

from __future__ import annotations

import logging
import warnings

import pytest
from rich.table import Table

from hjepa.logs import LOG_WIDTH, make_console, silence_known_noise


def test_a_console_that_is_not_a_terminal_does_not_cut_wide_tables(capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.delenv("COLUMNS", raising=False)
    console = make_console()
    assert not console.is_terminal and console.width == LOG_WIDTH
    table = Table(title="wide")
    headers = [f"column number {i}" for i in range(9)]
    for h in headers:
        table.add_column(h)
    table.add_row(*[f"value {i}.123456" for i in range(9)])
    console.print(table)
    out = capsys.readouterr().out
    assert "…" not in out
    assert all(h in out for h in headers) and "value 8.123456" in out


def test_columns_variable_still_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert make_console().width == 100


def test_lightning_tips_and_the_pytree_warning_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    silence_known_noise()
    silence_known_noise()  # idempotent
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    assert sum(type(f).__name__ == "_DropTips" for f in logger.filters) == 1
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.info("💡 Tip: For seamless cloud uploads and versioning, try installing litmodels")
        logger.info("GPU available: False, used: False")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False, used: False"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        silence_known_noise()  # catch_warnings restores the filters on exit: install inside
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec)`", FutureWarning)
        warnings.warn("something else is deprecated", FutureWarning)
    assert [str(w.message) for w in caught] == ["something else is deprecated"]
