"""The critic of the cost module: the quasimetric kind, its recipe on a known graph, config
errors, and checkpoints whose critics were built differently."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hjepa.checkpoint import load_module, read_checkpoint, save_checkpoint
from hjepa.config import CriticConfig, apply_overrides
from hjepa.critic import Critic, QuasimetricCritic, _Index, critic_of, train_critic
from hjepa.errors import ConfigError
from hjepa.fit import fit
from hjepa.inspection.source import spearman


def test_quasimetric_distance_is_zero_to_itself_and_obeys_the_triangle_inequality():
    torch.manual_seed(0)
    critic = QuasimetricCritic(dim=6, hidden=32, gamma=0.9, tau=4, depth=2, embed=8)
    x, y, z = torch.randn(3, 200, 6)
    with torch.no_grad():
        assert critic.steps(x, x).abs().max() < 1e-3
        assert (critic.steps(x, z) <= critic.steps(x, y) + critic.steps(y, z) + 1e-4).all()
        assert torch.allclose(critic.distance(x, y), 4 * critic.steps(x, y))
        v = critic.value(x, y)
        assert ((v > 0) & (v <= 1)).all()
        assert torch.allclose(torch.sigmoid(critic(x, y)), v, atol=1e-4)


def _line_walk(n_pos: int, steps: int, episodes: int, seed: int) -> tuple[torch.Tensor, _Index, np.ndarray]:
    """Random walks on a line of ``n_pos`` cells: one-hot states, episode index, positions."""
    rng = np.random.default_rng(seed)
    pos = []
    for _ in range(episodes):
        p = [int(rng.integers(n_pos))]
        for _ in range(steps - 1):
            p.append(int(np.clip(p[-1] + rng.choice([-1, 0, 1]), 0, n_pos - 1)))
        pos.extend(p)
    pos = np.array(pos)
    ep = np.repeat(np.arange(episodes), steps)
    idx = _Index(end=(ep + 1) * steps, begin=ep * steps)
    return torch.nn.functional.one_hot(torch.from_numpy(pos), n_pos).float(), idx, pos


@pytest.mark.parametrize("kind", [QuasimetricCritic, Critic])
def test_critic_recipe_learns_distances_beyond_its_episodes_on_a_line(kind):
    """Episodes of 6 steps rarely span more than a few cells; the backup must chain them to
    rank far pairs of a 12-cell line."""
    torch.manual_seed(0)
    z, idx, _ = _line_walk(n_pos=12, steps=6, episodes=400, seed=0)
    cfg = CriticConfig(steps=800, batch_size=256, hidden=64, depth=2, gammas=(0.9,))
    critic = kind(12, 64, 0.9, 1, 2) if kind is Critic else kind(12, 64, 0.9, 1, 2, embed=16)
    train_critic(critic, z, idx, cfg, seed=0)
    eye = torch.eye(12)
    with torch.no_grad():
        est = critic.distance(eye[:, None], eye[None, :]).numpy()
    true = np.abs(np.arange(12)[:, None] - np.arange(12)[None, :])
    far = true >= 6  # never inside one episode
    assert spearman(est.ravel(), true.ravel()) > 0.8
    assert est[far].mean() > est[(true > 0) & (true <= 2)].mean()


def test_critic_config_rejects_an_unknown_kind():
    with pytest.raises(ConfigError, match="critic kind"):
        CriticConfig(kind="table")


def _short(cfg, *overrides):
    return apply_overrides(cfg, ["train.steps=4", "train.epoch_steps=4", "critic.steps=5", *overrides])


def test_old_checkpoints_rebuild_their_mlp_critics(tmp_path, tiny_data, debug_cfg):
    """A checkpoint written before ``critic.kind`` existed has MLP critics and no kind."""
    fit(_short(debug_cfg, "critic.kind=mlp"), tiny_data, tmp_path, progress=False)
    path = tmp_path / "checkpoints" / "last.ckpt"
    ckpt = read_checkpoint(path)
    del ckpt["hyper_parameters"]["config"]["critic"]["kind"]
    del ckpt["_path"]
    save_checkpoint(ckpt, path)
    module = load_module(path)
    assert isinstance(critic_of(module.stack.levels[0]), Critic)


def test_resuming_with_another_critic_kind_retrains_the_critics(tmp_path, tiny_data, debug_cfg):
    fit(_short(debug_cfg, "critic.kind=mlp"), tiny_data, tmp_path, progress=False)
    cfg = _short(debug_cfg, "critic.kind=quasimetric")
    result = fit(cfg, tiny_data, tmp_path, resume=True, progress=False)
    assert result.critic is not None
    module = load_module(tmp_path / "checkpoints" / "last.ckpt")
    assert all(isinstance(critic_of(level), QuasimetricCritic) for level in module.stack.levels)
    assert dataclasses.asdict(module.cfg.critic)["kind"] == "quasimetric"


def test_a_gridmap_level_gets_a_keypoint_critic_that_reads_its_map():
    from hjepa.config import ExperimentConfig, LevelConfig
    from hjepa.critic import SpatialKeypoints, make_critic
    from hjepa.specs import ActionSpec, ObsSpec
    from hjepa.stack import HJEPA

    cfg = ExperimentConfig(levels=(LevelConfig(kind="gridmap", dim=8, hidden=16, action_dim=4),))
    stack = HJEPA.from_config(cfg, ObsSpec(kind="grid", shape=(7, 5, 3), dtype="uint8"),
                              ActionSpec("discrete", n=3, env_actions=(0, 1, 2)))
    level = stack.levels[0]
    critic = make_critic(CriticConfig(keypoints=6, hidden=16, depth=1), level, 0)
    front = critic.phi[0]
    assert isinstance(front, SpatialKeypoints) and level.map_shape == (4, 7, 5)
    z = torch.randn(2, 3, level.dim)
    points = front(z)
    assert points.shape == (2, 3, 12) and points.abs().max() <= 1.0
    assert critic.distance(z, z).abs().max() < 1e-3
    assert isinstance(make_critic(CriticConfig(kind="mlp"), level, 0), Critic)
    assert not isinstance(make_critic(CriticConfig(keypoints=0), level, 0).phi[0], SpatialKeypoints)
