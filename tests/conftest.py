"""Shared fixtures: a tiny collected dataset and the debug preset."""

from __future__ import annotations

from pathlib import Path

import gymnasium
import pytest
import torch

from hjepa.config import ExperimentConfig
from hjepa.data.collect import collect
from hjepa.experiments.presets import debug


PIXEL_ENV_ID = "hjepa-test/PixelEmpty-v0"
"""A MiniGrid env registered with a wrapper that observes pixels, not the grid (bad input)."""


def _pixel_empty(**kwargs: object) -> gymnasium.Env:
    from minigrid.envs import EmptyEnv
    from minigrid.wrappers import RGBImgObsWrapper

    return RGBImgObsWrapper(EmptyEnv(size=5, **kwargs))


def pytest_configure(config: pytest.Config) -> None:
    torch.set_num_threads(1)  # before any fixture, module-scoped ones included
    if PIXEL_ENV_ID not in gymnasium.registry:
        gymnasium.register(id=PIXEL_ENV_ID, entry_point=_pixel_empty)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def debug_cfg() -> ExperimentConfig:
    return debug()


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory, debug_cfg: ExperimentConfig) -> Path:
    """3,000 random-walk transitions in MiniGrid-Empty-8x8 (the debug preset's data)."""
    out = tmp_path_factory.mktemp("tiny") / "data"
    collect(debug_cfg.data, out, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_data_set(tiny_data: Path):
    """:func:`tiny_data`, opened."""
    from hjepa.data.storage import OfflineDataset

    return OfflineDataset.open(tiny_data)
