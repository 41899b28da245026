"""Prediction-quality figures: the snapped-map accuracy counts a map right only when every cell
snaps onto its target's code."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange

from hjepa.diagnostics import nearest_neighbour_accuracy, snapped_map_accuracy

CODES = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]])  # three cell codes, 2 channels


def _maps(idx: torch.Tensor) -> torch.Tensor:
    """Code indices ``"n s"`` -> flat maps ``"n (c s)"``."""
    return rearrange(CODES[idx], "n s c -> n (c s)")


def test_a_map_is_right_only_when_every_cell_snaps_onto_its_target() -> None:
    target = _maps(torch.tensor([[0, 1, 2, 0], [2, 2, 0, 1], [1, 1, 1, 1]]))
    pred = target.clone()
    pred = rearrange(pred, "n (c s) -> n c s", c=2)
    pred[0, :, 1] += torch.tensor([-0.4, 0.0])  # cell 1 of map 0 stays nearest its code (1, 0)
    pred[1, :, 3] += torch.tensor([-0.6, 0.0])  # cell 3 of map 1 moves nearer (0, 0): a wrong snap
    pred = rearrange(pred, "n c s -> n (c s)")
    assert snapped_map_accuracy(pred, target, channels=2) == pytest.approx(2 / 3)
    assert snapped_map_accuracy(target, target, channels=2) == 1.0


def test_one_wrong_cell_fails_the_snapped_accuracy_where_nearest_neighbour_passes() -> None:
    target = _maps(torch.tensor([[0, 1, 2, 0, 0, 0], [2, 0, 0, 0, 0, 1]]))
    pred = rearrange(target.clone(), "n (c s) -> n c s", c=2)
    pred[:, 0, 0] += 0.6  # map 0's cell 0 now snaps onto (1, 0); map 1's cell 0 stays (0, 3)
    pred = rearrange(pred, "n c s -> n (c s)")
    assert nearest_neighbour_accuracy(pred, target) == 1.0
    assert snapped_map_accuracy(pred, target, channels=2) == 0.5
