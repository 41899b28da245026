"""The ``gridmap`` level trained on crops: where the crops fall, and that a crop's states and
predictions are the whole map's, so weights trained on crops plan on whole maps."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange

from hjepa.config import ExperimentConfig, LevelConfig
from hjepa.errors import ConfigError, SpecMismatchError
from hjepa.level import LevelSpec
from hjepa.levels.gridmap import AGENT, MARGIN, crop_windows
from hjepa.registry import get_level_kind
from hjepa.specs import ActionSpec, ObsSpec
from hjepa.stack import HJEPA

W, H, C = 13, 11, 4
ACTIONS = ActionSpec("discrete", n=3, env_actions=(0, 1, 2))


def grids(b: int, t: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random cells (objects 1-9) with one agent per window at a random pose; returns the
    windows ``"b t w h 3"`` and the agents' ``(x, y)``."""
    obs = torch.randint(1, 10, (b, t, W, H, 3), generator=gen, dtype=torch.uint8)
    obs[..., 2] = torch.randint(0, 4, (b, t, W, H), generator=gen, dtype=torch.uint8)
    xy = torch.stack([torch.randint(1, W - 1, (b,), generator=gen), torch.randint(1, H - 1, (b,), generator=gen)], 1)
    for i, (x, y) in enumerate(xy.tolist()):
        obs[i, :, x, y] = torch.tensor([AGENT, 0, 1], dtype=torch.uint8)
    return obs, xy


def level(crop: int, **args: object):
    cfg = LevelConfig(kind="gridmap", args={"channels": C, "conv": 8, "crop": crop, **args})
    return get_level_kind("gridmap").from_spec(LevelSpec(0, cfg, ObsSpec("grid", (W, H, 3), "uint8"), 0, ACTIONS, 0, 1))


def test_crops_are_slices_that_keep_the_agent_off_their_edges() -> None:
    gen = torch.Generator().manual_seed(0)
    obs, xy = grids(64, 2, gen)
    k = 7
    crops = crop_windows(obs, (k, k), gen)
    assert crops.shape == (64, 2, k, k, 3)
    for i, (x, y) in enumerate(xy.tolist()):
        cx, cy = [int(v) for v in (crops[i, 0, :, :, 0] == AGENT).nonzero()[0]]
        x0, y0 = x - cx, y - cy
        assert torch.equal(crops[i], obs[i, :, x0 : x0 + k, y0 : y0 + k])
        for pos, side in ((cx, W), (cy, H)):  # MARGIN from the crop's edges unless the grid's edge is nearer
            assert pos >= min(MARGIN, x if side == W else y)
        assert k - 1 - cx >= min(MARGIN, W - 1 - x) and k - 1 - cy >= min(MARGIN, H - 1 - y)


def test_crop_places_vary() -> None:
    gen = torch.Generator().manual_seed(1)
    obs = torch.ones(200, 2, W, H, 3, dtype=torch.uint8)
    obs[:, :, 6, 5, 0] = AGENT  # mid-grid: 3 x 3 crop places keep it MARGIN from their edges
    places = {tuple((c[0, :, :, 0] == AGENT).nonzero()[0].tolist()) for c in crop_windows(obs, (7, 7), gen)}
    assert places == {(x, y) for x in range(2, 5) for y in range(2, 5)}


def test_a_crop_encodes_and_predicts_as_the_whole_map_does() -> None:
    torch.manual_seed(0)
    lv = level(crop=7)
    for p in lv.predictor.parameters():  # the last layer starts at zero ("no change")
        torch.nn.init.normal_(p, std=0.3)
    gen = torch.Generator().manual_seed(2)
    obs, _ = grids(8, 1, gen)
    crops = crop_windows(obs, (7, 7), gen)
    a = lv.action_input(torch.randint(0, 3, (8,), generator=gen))
    whole = rearrange(lv.predict(lv.encode(obs[:, 0]), a), "b (c w h) -> b c w h", c=C, w=W, h=H)
    part = rearrange(lv.predict(lv.encode(crops[:, 0]), a), "b (c w h) -> b c w h", c=C, w=7, h=7)
    for i in range(8):
        match = [(x, y) for x in range(W - 6) for y in range(H - 6) if torch.equal(obs[i, 0, x : x + 7, y : y + 7], crops[i, 0])]
        x, y = match[0]
        # cells away from the crop's edge see the same 3x3 neighbourhood in both
        torch.testing.assert_close(part[i, :, 1:-1, 1:-1], whole[i, :, x + 1 : x + 6, y + 1 : y + 6])
    assert lv.inverse_dynamics(lv.encode(crops[:, 0]), lv.encode(crops[:, 0])).shape == (8, 3)


def test_stack_trains_on_crops_and_validates_on_whole_maps() -> None:
    cfg = ExperimentConfig(levels=(LevelConfig(kind="gridmap", args={"channels": C, "conv": 8, "crop": 7}),))
    stack = HJEPA.from_config(cfg, ObsSpec("grid", (W, H, 3), "uint8"), ACTIONS)
    obs, _ = grids(4, 2, torch.Generator().manual_seed(3))
    actions = torch.randint(0, 3, (4, 1))
    assert stack.train()(obs, actions).passes[0].states.shape[-1] == C * 7 * 7
    assert stack.eval()(obs, actions).passes[0].states.shape[-1] == C * W * H


def test_a_map_level_reports_its_snapped_accuracy_and_a_vector_level_does_not() -> None:
    """A fresh predictor adds near zero to the map: only the windows where the agent stays (no
    cell changes) snap right, so the figure is their share."""
    cfg = ExperimentConfig(levels=(LevelConfig(kind="gridmap", args={"channels": C, "conv": 8}),))
    stack = HJEPA.from_config(cfg, ObsSpec("grid", (W, H, 3), "uint8"), ACTIONS).eval()
    obs, _ = grids(4, 2, torch.Generator().manual_seed(3))
    obs[:, 1] = obs[:, 0]
    obs[:2, 1, 0, 0, 0] = obs[:2, 0, 0, 0, 0] % 9 + 1  # windows 0 and 1 change a cell in their second step
    health = stack.health(stack(obs, torch.randint(0, 3, (4, 1))))
    assert health["level0/snap_acc"] == pytest.approx(0.5)
    vector = ExperimentConfig(levels=(LevelConfig(kind="grid", dim=16),))
    stack = HJEPA.from_config(vector, ObsSpec("grid", (W, H, 3), "uint8"), ACTIONS).eval()
    assert "level0/snap_acc" not in stack.health(stack(obs, torch.randint(0, 3, (4, 1))))


def test_without_colors_maps_that_differ_in_colour_only_encode_alike() -> None:
    obs, _ = grids(2, 1, torch.Generator().manual_seed(0))
    recoloured = obs.clone()
    recoloured[..., 1] = (recoloured[..., 1] + 1) % 6
    blind, seeing = level(0, colors=False), level(0)
    assert torch.equal(blind.encode(obs[:, 0]), blind.encode(recoloured[:, 0]))
    assert not torch.equal(seeing.encode(obs[:, 0]), seeing.encode(recoloured[:, 0]))
    codes, _ = blind.cell_codebook(obs[:, 0])
    assert len(codes) < len(seeing.cell_codebook(obs[:, 0])[0]) and ((codes // 4) % 6 == 0).all()
    with pytest.raises(ConfigError, match="args.colors"):
        level(0, colors="no")


def test_code_margin_pushes_close_codes_apart_and_leaves_far_ones() -> None:
    torch.manual_seed(0)
    lv = level(0, code_margin=2.0)
    obs = torch.ones(1, W, H, 3, dtype=torch.uint8)
    obs[0, 0, :, 0], obs[0, 1, :, 0], obs[0, 1, :, 2] = 2, 4, 1  # walls, closed doors, empty cells
    codes = lv.encoder.codes(obs)
    assert len(codes) == 3
    with torch.no_grad():  # shrink the encoder: every code within the margin of the others
        lv.encoder.convs[-1].weight.mul_(1e-3)
    opt = torch.optim.SGD(lv.encoder.parameters(), lr=0.1)
    first = None
    for _ in range(50):
        loss = lv.own_terms(obs)["margin"]
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.1 * first
    assert float(torch.pdist(lv.encoder.embed_codes(codes)).min()) > 1.0
    with torch.no_grad():  # far apart: no term
        lv.encoder.convs[-1].weight.mul_(1e3)
    assert float(lv.own_terms(obs)["margin"]) == 0.0
    assert level(0).own_terms(obs) == {}


@pytest.mark.parametrize("margin", [-1.0, "far", True])
def test_bad_code_margin_is_refused(margin: object) -> None:
    with pytest.raises(ConfigError, match="args.code_margin"):
        level(0, code_margin=margin)


def test_the_margin_term_joins_the_stack_loss() -> None:
    obs, _ = grids(4, 2, torch.Generator().manual_seed(3))
    actions = torch.randint(0, 3, (4, 1))

    def terms(**args: object) -> dict[str, torch.Tensor]:
        levels = (LevelConfig(kind="gridmap", args={"channels": C, "conv": 8, **args}),)
        stack = HJEPA.from_config(ExperimentConfig(levels=levels), ObsSpec("grid", (W, H, 3), "uint8"), ACTIONS)
        return stack.train()(obs, actions).terms

    assert float(terms(code_margin=50.0)["level0/margin"]) > 0
    assert "level0/margin" not in terms()


def test_crop_needs_one_level() -> None:
    levels = (LevelConfig(kind="gridmap", args={"crop": 7}), LevelConfig(kind="temporal", dim=8, stride=2))
    with pytest.raises(ConfigError, match="one level"):
        HJEPA.from_config(ExperimentConfig(levels=levels), ObsSpec("grid", (W, H, 3), "uint8"), ACTIONS)


@pytest.mark.parametrize("crop", [3, "7", True, -1])
def test_bad_crop_is_refused(crop: object) -> None:
    with pytest.raises(ConfigError, match="args.crop"):
        level(crop)


def test_a_crop_keeps_the_sides_the_grid_does_not_exceed() -> None:
    assert level(crop=12).encoder.sides.crop == (12, H)
    assert level(crop=13).encoder.sides.crop is None and not level(crop=13).crops_training
    obs, _ = grids(3, 2, torch.Generator().manual_seed(5))
    assert level(crop=12).training_view(obs).shape == (3, 2, 12, H, 3)


def test_crop_needs_the_agent() -> None:
    obs, _ = grids(2, 2, torch.Generator().manual_seed(4))
    obs[1, 0, ..., 0] = 1
    with pytest.raises(SpecMismatchError, match="agent"):
        crop_windows(obs, (7, 7))


def test_wrong_state_width_is_refused() -> None:
    lv = level(crop=7)
    with pytest.raises(SpecMismatchError, match="dims"):
        lv.predict(torch.zeros(2, C * 5 * 5), lv.action_input(torch.zeros(2, dtype=torch.long)))
