"""The stack's joint loss: terms per level, joint gradients, determinism, data windows."""

from __future__ import annotations

import dataclasses

from pathlib import Path

import numpy as np
import pytest
import torch

from hjepa.config import ExperimentConfig
from hjepa.data.storage import OfflineDataset
from hjepa.datamodule import WindowDataModule, window_starts
from hjepa.errors import NonFiniteLossError
from hjepa.stack import HJEPA
from hjepa.training import HJEPAModule
from hjepa.config import to_dict


def make_stack(cfg: ExperimentConfig, data: Path, seed: int = 0) -> tuple[HJEPA, dict]:
    torch.manual_seed(seed)
    dm = WindowDataModule(data, cfg.window, batch_size=8, steps=4, seed=seed)
    stack = HJEPA.from_config(cfg, dm.data.obs_spec, dm.data.action_spec)
    return stack, next(iter(dm.train_dataloader()))


def test_terms_per_level(debug_cfg: ExperimentConfig, tiny_data: Path) -> None:
    stack, batch = make_stack(debug_cfg, tiny_data)
    out = stack(batch["obs"], batch["actions"], batch["groups"])
    for k in range(3):
        for term in ("pred", "idm", "var", "cov"):
            assert f"level{k}/{term}" in out.terms
        assert (f"level{k}/upward" in out.terms) == (k > 0)
    assert "level0/rollout" in out.terms  # level 0 rolls out several steps within the window
    assert torch.isfinite(out.loss)
    health = stack.health(out, batch["groups"])
    assert {"level2/nn_acc", "level1/eff_rank", "level0/pred_rel_copy", "level0/step_ratio"} <= set(health)


def test_one_backward_reaches_every_level(debug_cfg: ExperimentConfig, tiny_data: Path) -> None:
    stack, batch = make_stack(debug_cfg, tiny_data)
    stack(batch["obs"], batch["actions"], batch["groups"]).loss.backward()
    for k, level in enumerate(stack.levels):
        for part in (level.encoder, level.predictor, level.inverse_model):
            grads = [p.grad for p in part.parameters()]
            assert all(g is not None for g in grads), f"level {k} {type(part).__name__} got no gradient"
            assert sum(g.abs().sum() for g in grads) > 0


def test_upper_levels_do_not_shape_lower_encoders(debug_cfg: ExperimentConfig, tiny_data: Path) -> None:
    stack, batch = make_stack(debug_cfg, tiny_data)
    out = stack(batch["obs"], batch["actions"], batch["groups"])
    sum(v for k, v in out.terms.items() if k.startswith("level2/") and not k.endswith("upward")).backward()
    assert all(p.grad is None for p in stack.levels[0].encoder.parameters())


@pytest.mark.parametrize("trains_below", [True, False])
def test_the_upward_term_trains_the_level_below_unless_told_not_to(debug_cfg: ExperimentConfig, tiny_data: Path,
                                                                   trains_below: bool) -> None:  # fmt: skip
    loss = dataclasses.replace(debug_cfg.loss, upward_trains_below=trains_below)
    stack, batch = make_stack(dataclasses.replace(debug_cfg, loss=loss), tiny_data)
    stack(batch["obs"], batch["actions"], batch["groups"]).terms["level1/upward"].backward()
    below = [p.grad for p in stack.levels[0].predictor.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in below) == trains_below
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in stack.levels[1].encoder.parameters())


def test_seeded_forward_is_deterministic(debug_cfg: ExperimentConfig, tiny_data: Path) -> None:
    s1, b1 = make_stack(debug_cfg, tiny_data, seed=3)
    s2, b2 = make_stack(debug_cfg, tiny_data, seed=3)
    s3, _ = make_stack(debug_cfg, tiny_data, seed=4)
    l1 = s1(b1["obs"], b1["actions"], b1["groups"]).loss
    l2 = s2(b2["obs"], b2["actions"], b2["groups"]).loss
    l3 = s3(b1["obs"], b1["actions"], b1["groups"]).loss
    assert torch.equal(l1, l2)
    assert not torch.equal(l1, l3)


def test_nan_loss_names_level_and_term(debug_cfg: ExperimentConfig, tiny_data: Path) -> None:
    _, batch = make_stack(debug_cfg, tiny_data)
    module = HJEPAModule(to_dict(debug_cfg), *(s.to_dict() for s in _specs(tiny_data)))
    with torch.no_grad():
        module.stack.levels[1].predictor.net[-1].bias.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError) as info:
        module._common_step(batch, "val")
    assert info.value.level == 1 and info.value.term == "pred"
    assert "level 1's 'pred' loss" in str(info.value)


def _specs(data: Path) -> tuple:
    ds = OfflineDataset.open(data)
    return ds.obs_spec, ds.action_spec


def test_windows_stay_inside_episodes(debug_cfg: ExperimentConfig, tiny_data: Path) -> None:
    ds = OfflineDataset.open(tiny_data)
    episode = ds.episode_of_step()
    dm = WindowDataModule(tiny_data, debug_cfg.window, batch_size=32, steps=3, seed=0)
    starts = dm.train_starts
    assert len(starts) > 0
    ends = starts + debug_cfg.window - 1
    assert np.array_equal(episode[starts], episode[ends])
    batch = dm.train_dataloader().dataset[0]
    assert batch["obs"].shape == (32, debug_cfg.window, *ds.obs_spec.shape)
    assert batch["actions"].shape == (32, debug_cfg.window - 1)
    assert (batch["actions"] >= 0).all()  # the end-of-episode padding never enters a window
    again = dm.train_dataloader().dataset[0]
    assert torch.equal(batch["obs"], again["obs"])


def test_window_starts_by_hand() -> None:
    # episodes of 3, 5 and 4 observations; windows of 4 fit 0, 2 and 1 times
    starts = window_starts(np.array([0, 3, 8, 12]), np.array([0, 1, 2]), window=4)
    assert starts.tolist() == [3, 4, 8]


def test_pairs_per_window_trains_a_subset_that_starts_at_zero(debug_cfg: ExperimentConfig, tiny_data: Path) -> None:
    import dataclasses

    cfg = dataclasses.replace(debug_cfg, loss=dataclasses.replace(debug_cfg.loss, pairs_per_window=2))
    stack, batch = make_stack(cfg, tiny_data)
    out = stack(batch["obs"], batch["actions"], batch["groups"])
    full, _ = make_stack(debug_cfg, tiny_data)
    ref = full(batch["obs"], batch["actions"], batch["groups"])
    b, t = batch["obs"].shape[:2]
    assert out.passes[0].predictions.shape[:2] == (b, 2)
    assert ref.passes[0].predictions.shape[:2] == (b, t - 1)
    # same init (same seed), so pair 0 (t = 0) is predicted identically in both
    torch.testing.assert_close(out.passes[0].predictions[:, 0], ref.passes[0].predictions[:, 0])
    assert torch.isfinite(out.loss)


def test_still_weight_weighs_level0_pairs_whose_observation_does_not_change(debug_cfg: ExperimentConfig,
                                                                            tiny_data: Path) -> None:  # fmt: skip
    import dataclasses

    from hjepa.errors import ConfigError

    def level0_pred(weight: float, obs: torch.Tensor, actions: torch.Tensor) -> tuple[float, HJEPA, object]:
        cfg = dataclasses.replace(debug_cfg, loss=dataclasses.replace(debug_cfg.loss, still_weight=weight))
        stack, _ = make_stack(cfg, tiny_data)
        out = stack(obs, actions)
        return float(out.terms["level0/pred"]), stack, out

    _, batch = make_stack(debug_cfg, tiny_data)
    obs, actions = batch["obs"].clone(), batch["actions"]
    obs[:, 1] = obs[:, 0]  # pair 0 of every window: the observation does not change
    plain, _, out = level0_pred(1.0, obs, actions)
    per_pair = (out.passes[0].predictions.float() - out.passes[0].next_targets.float()).pow(2).mean(-1)
    still = (obs[:, 1:] == obs[:, :-1]).flatten(2).all(-1)
    assert still[:, 0].all() and not still.all()
    expected = float((torch.where(still, 5.0, 1.0) * per_pair).sum() / torch.where(still, 5.0, 1.0).sum())
    weighted, _, _ = level0_pred(5.0, obs, actions)
    assert weighted == pytest.approx(expected, rel=1e-5) and weighted != pytest.approx(plain, rel=1e-3)
    with pytest.raises(ConfigError, match="still_weight"):
        dataclasses.replace(debug_cfg.loss, still_weight=-1.0)


def test_hard_focus_weighs_level0_pairs_by_their_relative_error(debug_cfg: ExperimentConfig, tiny_data: Path) -> None:
    import dataclasses

    from hjepa.errors import ConfigError

    _, batch = make_stack(debug_cfg, tiny_data)
    obs, actions = batch["obs"], batch["actions"]
    cfg = dataclasses.replace(debug_cfg, loss=dataclasses.replace(debug_cfg.loss, hard_focus=2.0))
    stack, _ = make_stack(cfg, tiny_data)
    out = stack(obs, actions)
    per_pair = (out.passes[0].predictions.float() - out.passes[0].next_targets.float()).pow(2).mean(-1).detach()
    weights = (per_pair / per_pair.mean()).pow(2.0)
    expected = float((weights * per_pair).sum() / weights.sum())
    assert float(out.terms["level0/pred"]) == pytest.approx(expected, rel=1e-5)
    assert expected > float(per_pair.mean()) * 1.01  # the hardest pairs count for more than in a plain mean
    # the weights carry no gradient: the loss's gradient is the weighted one of each pair's error
    pred = out.passes[0].predictions
    (grad,) = torch.autograd.grad(out.terms["level0/pred"], pred, retain_graph=True)
    diff = pred.float() - out.passes[0].next_targets.float()
    manual = (weights / weights.sum())[..., None] * 2 * diff.detach() / diff.shape[-1]
    torch.testing.assert_close(grad.float(), manual, rtol=1e-4, atol=1e-7)
    with pytest.raises(ConfigError, match="hard_focus"):
        dataclasses.replace(debug_cfg.loss, hard_focus=-1.0)


def test_smooth_from_keeps_the_lower_levels_out_of_the_smoothness_term(debug_cfg: ExperimentConfig,
                                                                       tiny_data: Path) -> None:  # fmt: skip
    import dataclasses

    from hjepa.errors import ConfigError

    _, batch = make_stack(debug_cfg, tiny_data)
    loss = dataclasses.replace(debug_cfg.loss, smooth=1.0, smooth_from=1)
    stack, _ = make_stack(dataclasses.replace(debug_cfg, loss=loss), tiny_data)
    terms = stack(batch["obs"], batch["actions"]).terms
    assert "level0/smooth" not in terms
    assert {"level1/smooth", "level2/smooth"} <= set(terms) and all(float(terms[f"level{k}/smooth"]) > 0 for k in (1, 2))
    with pytest.raises(ConfigError, match="smooth_from"):
        dataclasses.replace(debug_cfg.loss, smooth_from=-1)
