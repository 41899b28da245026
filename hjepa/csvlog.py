"""``metrics.csv``: a Lightning logger that survives kills and resumes.

Lightning's CSV logger deletes an existing ``metrics.csv`` when a run resumes and appends to
it in place (a kill can leave half a row). This one keeps the rows of earlier segments of the
run, rewrites the whole file atomically when flushed, and is flushed before every checkpoint,
so the file always covers at least the steps of the last checkpoint.
"""

from __future__ import annotations

import csv
import io
from argparse import Namespace
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities import rank_zero_only

from hjepa.io import write_text


def read_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a metrics CSV; a missing file gives none, an unreadable row ends the read."""
    if not path.is_file():
        return []
    rows: list[dict[str, str]] = []
    with open(path, newline="", encoding="utf-8") as f:
        try:
            for row in csv.DictReader(f):
                if None in row or not (row.get("step") or "").strip().lstrip("-").isdigit():
                    break  # a torn row (only possible with files from other writers)
                rows.append(row)
        except csv.Error:
            pass
    return rows


class MetricsCSV(Logger):
    """Flat metrics, one row per logging call, in ``path``.

    Args:
        path: the CSV file.
        keep_before: keep the rows of an existing file whose ``step`` is below this (the
            resumed checkpoint's step: later rows are logged again); ``None`` starts empty.
    """

    def __init__(self, path: str | Path, keep_before: int | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        if keep_before is not None:
            self.rows = [r for r in read_rows(self.path) if int(r["step"]) < keep_before]

    @property
    def name(self) -> str:
        return "metrics"

    @property
    def version(self) -> int:
        return 0

    @property
    def save_dir(self) -> str:
        return str(self.path.parent)

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        """The config is in ``config.yaml`` and in the checkpoint; nothing to add here."""

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        row = {k: (v.item() if hasattr(v, "item") else v) for k, v in metrics.items()}
        row["step"] = len(self.rows) if step is None else int(step)
        self.rows.append(row)

    @rank_zero_only
    def save(self) -> None:
        """Rewrite the whole file atomically."""
        keys = sorted({k for row in self.rows for k in row} - {"step"}) + ["step"]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.path, buf.getvalue())

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.save()
