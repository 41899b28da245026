"""How many CPU threads torch gets: chosen from the cores and the load.

Torch's default (every core) is the worst choice on a shared machine: when another job keeps
the cores busy, torch's threads wait for each other at every operation whenever one of them is
descheduled, and a small model's training can run ten times slower than on one thread. On an
idle machine the same threads pay off, even for a model of few parameters: a ``gridmap`` level
has under 100k parameters, but its convolutions run over every cell of a batch of maps. So the
default is the cores the 1-minute load average leaves free (rounded), one when fewer than 1.5
are free, at most :data:`MAX_THREADS`.
"""

from __future__ import annotations

import os

from hjepa.errors import ConfigError

MAX_THREADS = 4
"""More threads than this gain little for hjepa's models and cost more under contention."""
MIN_FREE_CORES = 1.5
"""Fewer free cores than this (cores minus the load average): one thread. An idle 2-core
machine (load below 0.5) gets both cores; a 2-core machine running another job gets one."""


def choose_threads(cores: int, load: float) -> int:
    """The thread count on ``cores`` cores under ``load``.

    Args:
        cores: CPU cores this process may use.
        load: the 1-minute load average (runnable processes, this one's past work included).

    Returns:
        1 on a busy machine, else the free cores rounded to the nearest whole one, at most
        :data:`MAX_THREADS`.
    """
    free = cores - max(load, 0.0)
    if free < MIN_FREE_CORES:
        return 1
    return max(1, min(int(free + 0.5), cores, MAX_THREADS))


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


def set_threads(explicit: int | None) -> int:
    """Give torch ``explicit`` threads (the user's ``--threads``), else :func:`choose_threads`'s.

    Returns:
        The thread count set.

    Raises:
        ConfigError: ``explicit`` is below 1.
    """
    check_threads(explicit)
    import torch  # here, so that the CLI's argument checks do not wait for torch's import

    n = explicit if explicit is not None else choose_threads(*machine_load())
    torch.set_num_threads(n)
    return n

