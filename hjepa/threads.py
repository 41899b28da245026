"""How many CPU threads torch gets: chosen from the model's size, the cores and the load.

Torch's default (every core) is the worst choice on a shared machine: when another job keeps
the cores busy, torch's threads wait for each other at every operation whenever one of them is
descheduled, and a small model's training can run ten times slower than on one thread. Small
models gain nothing from more threads anyway, so the default is one thread unless the model is
large enough to split and the 1-minute load average leaves at least two cores free.
"""

from __future__ import annotations

import os

from hjepa.errors import ConfigError

SMALL_MODEL_PARAMS = 100_000
"""Below this many parameters one thread is as fast as several (each op's work is too small to
split); a 3-level stack of 260k parameters trained 1.5x faster on two idle cores than on one."""
MAX_THREADS = 4
"""More threads than this gain little for hjepa's models and cost more under contention."""
MIN_FREE_CORES = 2.0
"""Fewer free cores than this (cores minus the load average): one thread."""


def choose_threads(params: int, cores: int, load: float) -> int:
    """The thread count for a model of ``params`` parameters on ``cores`` cores under ``load``.

    Args:
        params: trainable and frozen parameters of the model.
        cores: CPU cores this process may use.
        load: the 1-minute load average (runnable processes, this one's past work included).

    Returns:
        1 for a small model or a busy machine, else the free cores, at most :data:`MAX_THREADS`.
    """
    free = cores - max(load, 0.0)
    if params < SMALL_MODEL_PARAMS or free < MIN_FREE_CORES:
        return 1
    return max(1, min(int(free), MAX_THREADS))


def machine_load() -> tuple[int, float]:
    """``(cores usable by this process, 1-minute load average)``; load 0 where unknown."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0.0
    return cores, load


def check_threads(n: int | None) -> None:
    """:class:`ConfigError` unless ``n`` (``--threads``) is None (automatic) or at least 1."""
    if n is not None and n < 1:
        raise ConfigError(f"--threads must be >= 1, got {n}.")


def set_threads(explicit: int | None, params: int) -> int:
    """Give torch ``explicit`` threads (the user's ``--threads``), else :func:`choose_threads`'s.

    Returns:
        The thread count set.

    Raises:
        ConfigError: ``explicit`` is below 1.
    """
    check_threads(explicit)
    import torch  # here, so that the CLI's argument checks do not wait for torch's import

    n = explicit if explicit is not None else choose_threads(params, *machine_load())
    torch.set_num_threads(n)
    return n

