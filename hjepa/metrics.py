"""Benchmark metrics: success with Wilson intervals, SPL, and the ``results.json`` document.

The schema is docs/benchmark.md's: :func:`summarise` turns one agent's episodes into its entry of
``agents``, :func:`results_document` assembles the whole file, and :func:`validate_results`
checks a document (or a ``results.json`` read back) key by key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a success rate (95% for ``z=1.96``).

    Unlike the normal approximation it stays inside [0, 1] and is sensible at 0/n and n/n.
    With no episodes (``n == 0``) nothing is known and the interval is the whole ``(0.0, 1.0)``.

    Raises:
        ValueError: ``n < 0`` or ``successes`` outside ``0..n``.
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"wilson_interval needs 0 <= successes <= n, got {successes} of {n}.")
    if n == 0:
        return 0.0, 1.0
    p, z2 = successes / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def spl_term(success: bool, oracle_len: float, path_len: float) -> float:
    """One episode's SPL term ``S * l / max(p, l)`` (Anderson et al. 2018).

    A success with ``l == 0`` (the start was the goal) scores 1.0.

    Raises:
        ValueError: a negative length.
    """
    if oracle_len < 0 or path_len < 0:
        raise ValueError(f"Path lengths must be >= 0, got oracle {oracle_len} and path {path_len}.")
    if not success:
        return 0.0
    return 1.0 if oracle_len == 0 else oracle_len / max(path_len, oracle_len)


@dataclass(frozen=True)
class EpisodeRecord:
    """What one evaluation episode of one agent produced."""

    agent: str
    """The agent's name (``hjepa``, ``flat``, ``random``, ``oracle``)."""
    bin: str
    """The task's distance bin."""
    success: bool
    """Whether the environment's own success criterion was met."""
    steps: int
    """Environment steps taken."""
    path_len: float
    """The agent's path length: actions (MiniGrid) or metres (PointMaze)."""
    oracle_len: float
    """The oracle's shortest path length, in the same unit."""
    predictor_calls: int
    """World-model predictor calls over the whole episode (all levels)."""
    plan_ms: list[float] = field(default_factory=list)
    """Planning time of every environment step, in ms."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Anything else worth keeping (task, seed, final distance, ...)."""

    @property
    def spl(self) -> float:
        """This episode's SPL term."""
        return spl_term(self.success, self.oracle_len, self.path_len)


def _rates(records: Sequence[EpisodeRecord]) -> tuple[int, int, float, float]:
    """``(episodes, successes, success rate, SPL)``; rates are 0.0 without episodes."""
    n, wins = len(records), sum(bool(r.success) for r in records)
    if n == 0:
        return 0, 0, 0.0, 0.0
    return n, wins, wins / n, float(np.mean([r.spl for r in records]))


def summarise(records: Sequence[EpisodeRecord], bins: Sequence[str]) -> dict[str, Any]:
    """One agent's entry of ``results.json["agents"]``.

    ``predictor_calls_per_step`` is total calls over total steps; the latency figures pool
    the per-step ``plan_ms`` of all episodes (0.0 when there are none). ``by_distance`` has
    every bin of ``bins``, in that order, also those without episodes.

    Raises:
        ValueError: the records mix agents, or a record's bin is not in ``bins``.
    """
    agents = sorted({r.agent for r in records})
    unknown = sorted({r.bin for r in records} - set(bins))
    if len(agents) > 1:
        raise ValueError(f"summarise takes one agent's records, got agents {agents}; see summarise_by_agent.")
    if unknown:
        raise ValueError(f"Records have distance bins {unknown} that are not in {list(bins)}.")
    n, wins, success, spl = _rates(records)
    steps = sum(r.steps for r in records)
    plan_ms = np.array([t for r in records for t in r.plan_ms], dtype=np.float64)
    lo, hi = wilson_interval(wins, n)
    return {
        "episodes": n,
        "success": success,
        "success_ci95": [lo, hi],
        "spl": spl,
        "mean_steps": steps / n if n else 0.0,
        "predictor_calls_per_step": sum(r.predictor_calls for r in records) / steps if steps else 0.0,
        "plan_ms_median": float(np.median(plan_ms)) if plan_ms.size else 0.0,
        "plan_ms_p95": float(np.percentile(plan_ms, 95)) if plan_ms.size else 0.0,
        "plan_ms_mean": float(plan_ms.mean()) if plan_ms.size else 0.0,
        "by_distance": {b: _bin_entry([r for r in records if r.bin == b]) for b in bins},
        **_compute(records, steps),
    }


def _compute(records: Sequence[EpisodeRecord], steps: int) -> dict[str, Any]:
    """Predictor calls per episode (median, max), also by level, and the share of env steps
    whose level-0 target came from an upper level (planning agents that report them)."""
    calls = np.array([r.predictor_calls for r in records], dtype=np.float64)
    out: dict[str, Any] = {"predictor_calls_per_episode": {"median": float(np.median(calls)) if calls.size else 0.0,
                                                           "max": float(calls.max()) if calls.size else 0.0}}  # fmt: skip
    by_level = [r.extra["calls_by_level"] for r in records if "calls_by_level" in r.extra]
    if by_level:
        width = max(len(c) for c in by_level)
        table = np.array([list(c) + [0.0] * (width - len(c)) for c in by_level])
        out["predictor_calls_per_episode_by_level"] = [
            {"level": k, "median": float(np.median(table[:, k])), "max": float(table[:, k].max())} for k in range(width)
        ]
        upper = sum(r.extra.get("upper_target_steps", 0) for r in records)
        out["upper_target_share"] = upper / steps if steps else 0.0
    return out


def _bin_entry(records: Sequence[EpisodeRecord]) -> dict[str, Any]:
    n, _, success, spl = _rates(records)
    return {"episodes": n, "success": success, "spl": spl}


def summarise_by_agent(records: Sequence[EpisodeRecord], bins: Sequence[str]) -> dict[str, dict[str, Any]]:
    """:func:`summarise` per agent, agents in order of first appearance."""
    names = list(dict.fromkeys(r.agent for r in records))
    return {name: summarise([r for r in records if r.agent == name], bins) for name in names}


def results_document(
    suite: str,
    quick: bool,
    seed: int,
    device: str,
    levels: int,
    train: dict[str, Any],
    agents: dict[str, dict[str, Any]],
    levels_report: list[dict[str, Any]],
    **extra: Any,
) -> dict[str, Any]:
    """The ``results.json`` document of docs/benchmark.md (``extra`` keys come after its keys).

    Raises:
        ValueError: a part does not follow the schema (see :func:`validate_results`).
    """
    doc = {
        "suite": suite,
        "quick": quick,
        "seed": seed,
        "device": device,
        "levels": levels,
        "train": dict(train),
        "agents": {name: dict(entry) for name, entry in agents.items()},
        "levels_report": [dict(row) for row in levels_report],
        **extra,
    }
    validate_results(doc)
    return doc


# ----------------------------------------------------------------------------- validation
_NUM, _INT, _STR, _BOOL, _LIST, _DICT = "a number", "an integer", "a string", "a boolean", "a list", "an object"
_TOP = {"suite": _STR, "quick": _BOOL, "seed": _INT, "device": _STR, "levels": _INT,
        "train": _DICT, "agents": _DICT, "levels_report": _LIST}  # fmt: skip
_TRAIN = {"wall_s": _NUM, "steps": _INT, "samples_per_s": _NUM, "peak_mem_mb": _NUM}
_AGENT = {"episodes": _INT, "success": _NUM, "success_ci95": _LIST, "spl": _NUM, "mean_steps": _NUM,
          "predictor_calls_per_step": _NUM, "plan_ms_median": _NUM, "plan_ms_p95": _NUM,
          "by_distance": _DICT}  # fmt: skip
_BIN = {"episodes": _INT, "success": _NUM, "spl": _NUM}
_LEVEL = {"level": _INT, "tau": _INT, "dim": _INT, "pred_error_by_horizon": _LIST, "std_min": _NUM,
          "effective_rank": _NUM}  # fmt: skip
_WARNING = {"level": _INT, "figure": _STR, "value": _NUM, "limit": _NUM, "message": _STR}
"""An entry of the optional ``warnings`` list (:class:`hjepa.readiness.ReadinessWarning`)."""


def _is(value: Any, kind: str) -> bool:
    if kind == _NUM:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    types = {_STR: str, _BOOL: bool, _LIST: (list, tuple), _DICT: dict}
    return isinstance(value, types[kind])


def _check(obj: Any, schema: dict[str, str], where: str) -> None:
    """Raise ValueError naming the first key of ``schema`` missing from ``obj`` or mistyped."""
    if not isinstance(obj, dict):
        raise ValueError(f"results.json: key '{where or '(document)'}' should be an object, got {type(obj).__name__}.")
    for key, kind in schema.items():
        name = f"{where}.{key}" if where else key
        if key not in obj:
            raise ValueError(f"results.json: key '{name}' is missing.")
        if not _is(obj[key], kind):
            raise ValueError(f"results.json: key '{name}' should be {kind}, got {type(obj[key]).__name__}.")


def validate_results(doc: Any) -> None:
    """Check ``doc`` against docs/benchmark.md's ``results.json`` schema (extra keys are allowed).

    Raises:
        ValueError: naming the first missing or mistyped key, e.g. ``agents.flat.spl``.
    """
    _check(doc, _TOP, "")
    _check(doc["train"], _TRAIN, "train")
    for name, entry in doc["agents"].items():
        where = f"agents.{name}"
        _check(entry, _AGENT, where)
        ci = entry["success_ci95"]
        if len(ci) != 2 or not all(_is(v, _NUM) for v in ci):
            raise ValueError(f"results.json: key '{where}.success_ci95' should be [low, high], got {ci}.")
        for b, cell in entry["by_distance"].items():
            _check(cell, _BIN, f"{where}.by_distance.{b}")
    for k, row in enumerate(doc["levels_report"]):
        _check(row, _LEVEL, f"levels_report[{k}]")
        if not all(_is(v, _NUM) for v in row["pred_error_by_horizon"]):
            raise ValueError(f"results.json: key 'levels_report[{k}].pred_error_by_horizon' should hold numbers.")
    _check_warnings(doc)


def _check_warnings(doc: dict) -> None:
    """The optional ``warnings`` key: a list of :data:`_WARNING` objects."""
    if "warnings" not in doc:
        return
    if not _is(doc["warnings"], _LIST):
        raise ValueError(f"results.json: key 'warnings' should be a list, got {type(doc['warnings']).__name__}.")
    for k, entry in enumerate(doc["warnings"]):
        _check(entry, _WARNING, f"warnings[{k}]")
