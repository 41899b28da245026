"""Shape tests, parametrised over every registered level kind and batch sizes."""

from __future__ import annotations

import pytest
import torch

from hjepa.config import LevelConfig
from hjepa.errors import SpecMismatchError, UnknownNameError
from hjepa.level import Level, LevelSpec, latent_action_spec
from hjepa.registry import get_level_kind, level_kinds
from hjepa.specs import ActionSpec, ObsSpec

OBS = {
    "grid": (ObsSpec("grid", (7, 9, 3), "uint8"), lambda b: torch.randint(0, 4, (b, 7, 9, 3), dtype=torch.uint8)),
    "image": (ObsSpec("image", (16, 12, 3), "uint8"), lambda b: torch.randint(0, 255, (b, 16, 12, 3), dtype=torch.uint8)),
    "state": (ObsSpec("state", (5,), "float32"), lambda b: torch.randn(b, 5)),
}
ENV_ACTIONS = ActionSpec("discrete", n=3, env_actions=(0, 1, 2))
BELOW_DIM = 10


def build(kind: str) -> tuple[Level, callable]:
    cls = get_level_kind(kind)
    if "latent" in cls.accepts:
        # a kind that reads the level below's maps (gridcoarse) gets a gridmap's 4 x 7 x 9 states
        below, args = (4 * 7 * 9, {"block": 2, "below_channels": 4}) if cls.reads_crops else (BELOW_DIM, {})
        cfg = LevelConfig(kind=kind, dim=12, stride=3, action_dim=4, hidden=16, args=args)
        spec = LevelSpec(1, cfg, OBS["grid"][0], below, latent_action_spec(cfg), below_action_dim=3, tau=3)
        return cls.from_spec(spec), lambda b: torch.randn(b, below)
    obs_kind = cls.accepts[0]
    cfg = LevelConfig(kind=kind, dim=12, hidden=16, args={"channels": 4} if obs_kind != "state" else {})
    spec = LevelSpec(0, cfg, OBS[obs_kind][0], 0, ENV_ACTIONS, below_action_dim=0, tau=1)
    return cls.from_spec(spec), OBS[obs_kind][1]


def test_builtin_kinds_registered() -> None:
    assert {"grid", "image", "state", "temporal"} <= set(level_kinds())


@pytest.mark.parametrize("kind", level_kinds())
@pytest.mark.parametrize("b", [1, 5])
def test_level_shapes(kind: str, b: int) -> None:
    level, make_input = build(kind)
    x = make_input(b)
    s = level.encode(x)
    d = level.dim  # the config's dim, except kinds that derive it (gridmap: channels * w * h)
    assert d == 12 or level.kind in ("gridmap", "gridcoarse")
    assert s.shape == (b, d)
    assert level.target_encode(x).shape == (b, d)
    if level.index == 0:
        a = level.action_input(torch.randint(0, 3, (b,)))
    else:
        a = level.infer_action(torch.randn(b, 3, 3))
        assert a.abs().max() <= 1.0  # latent actions are squashed into [-1, 1]
    assert a.shape == (b, level.action_spec.input_dim)
    assert level.predict(s, a).shape == (b, d)
    assert level.rollout(s, a[:, None].repeat(1, 4, 1)).shape == (b, 4, d)
    assert level.inverse_dynamics(s, s).shape == (b, level.action_spec.input_dim)


@pytest.mark.parametrize("kind", [k for k in level_kinds() if "latent" not in get_level_kind(k).accepts])
def test_level0_rejects_wrong_observation_shape(kind: str) -> None:
    level, make_input = build(kind)
    x = make_input(2)
    bad = x[..., :-1] if x.ndim > 2 else x[:, :-1]
    with pytest.raises(SpecMismatchError):
        level.encode(bad)


def test_kind_must_accept_input() -> None:
    cfg = LevelConfig(kind="grid", dim=8)
    spec = LevelSpec(0, cfg, OBS["image"][0], 0, ENV_ACTIONS, 0, 1)
    with pytest.raises(SpecMismatchError, match="cannot take observations of kind 'image'"):
        get_level_kind("grid").check_input(spec)
    up = LevelSpec(1, LevelConfig(kind="grid", stride=2), OBS["grid"][0], 8, latent_action_spec(cfg), 3, 2)
    with pytest.raises(SpecMismatchError, match="states of the level below"):
        get_level_kind("grid").check_input(up)


def test_unknown_kind_suggests() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean .temporal."):
        get_level_kind("temporl")


def test_ema_update_moves_target_towards_online() -> None:
    level, _ = build("state")
    with torch.no_grad():
        for p in level.encoder.parameters():
            p.add_(1.0)
    before = [t.clone() for t in level.target_encoder.parameters()]
    level.update_target(0.9)
    for t0, t1, o in zip(before, level.target_encoder.parameters(), level.encoder.parameters()):
        assert torch.allclose(t1, 0.9 * t0 + 0.1 * o)
    assert not any(p.requires_grad for p in level.target_encoder.parameters())
