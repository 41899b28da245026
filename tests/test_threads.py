"""The thread count: a pure function of (cores, load), and the commands' --threads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hjepa import threads
from hjepa.experiments.cli import main
from hjepa.threads import choose_threads


@pytest.mark.parametrize(
    ("cores", "load", "expected"),
    [
        (2, 0.0, 2),  # idle 2-core machine: both cores, whatever the model's size
        (2, 0.4, 2),
        (2, 0.6, 1),  # fewer than 1.5 cores free
        (2, 1.0, 1),  # another job on one of the 2 cores
        (2, 2.3, 1),  # a 2-thread job on the 2 cores
        (4, 1.5, 3),  # 2.5 cores free, rounded
        (4, 2.6, 1),
        (16, 0.2, 4),  # at most 4
        (16, 13.9, 2),
        (16, 14.6, 1),
        (8, 40.0, 1),  # overloaded
        (1, 0.0, 1),
        (3, -1.0, 3),  # a nonsense load counts as none
    ],
)
def test_choose_threads(cores: int, load: float, expected: int) -> None:
    assert choose_threads(cores, load) == expected


def test_machine_load_is_sane() -> None:
    cores, load = threads.machine_load()
    assert cores >= 1 and load >= 0.0


def _train(tiny_data: Path, out: Path, *extra: str) -> int:
    return main(["train", "--data", str(tiny_data), "--out", str(out), "--steps", "2", "--set", "critic.enabled=false",
                 "--set", "train.epoch_steps=2", *extra])  # fmt: skip


def test_train_threads_flag_wins(tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _train(tiny_data, tmp_path / "t", "--threads", "2") == 0
    assert torch.get_num_threads() == 2
    assert "num_threads: 2" in (tmp_path / "t" / "config.yaml").read_text()


def test_train_default_threads_follow_the_machine(tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setattr(threads, "machine_load", lambda: (8, 0.0))
    assert _train(tiny_data, tmp_path / "t") == 0
    assert torch.get_num_threads() == 4
    monkeypatch.setattr(threads, "machine_load", lambda: (8, 7.5))  # busy: one thread
    assert main(["inspect", "--checkpoint", str(tmp_path / "t"), "--out", str(tmp_path / "i"), "--no-gif",
                 "--max-steps", "3"]) == 0  # fmt: skip
    assert torch.get_num_threads() == 1
