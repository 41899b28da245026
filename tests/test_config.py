"""Typed config: derived timescales, stride validation, YAML round trip, dotted overrides."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from hjepa.config import (
    ExperimentConfig,
    LevelConfig,
    TrainConfig,
    apply_overrides,
    dump_yaml,
    from_dict,
    load_yaml,
    to_dict,
)
from hjepa.errors import ConfigError, HJEPAError
from hjepa.experiments.presets import EXPERIMENTS, config_for_dataset, debug


def stack(*strides: object) -> tuple[LevelConfig, ...]:
    """Level 0 grid plus temporal levels with the given strides (level 0 first)."""
    return tuple(LevelConfig(kind="grid" if k == 0 else "temporal", stride=s) for k, s in enumerate(strides))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- derived values


@pytest.mark.parametrize(
    ("strides", "taus", "window"),
    [((1,), (1,), 2), ((1, 4, 4), (1, 4, 16), 17), ((1, 2, 3, 2), (1, 2, 6, 12), 13)],
)
def test_taus_and_window_follow_from_strides(strides: tuple[int, ...], taus: tuple[int, ...], window: int) -> None:
    cfg = ExperimentConfig(levels=stack(*strides))
    assert cfg.strides == strides
    assert cfg.taus == taus
    assert cfg.window == window


def test_debug_preset_is_three_small_levels() -> None:
    cfg = debug()
    assert cfg.taus == (1, 2, 4) and cfg.window == 5
    assert all(lv.dim <= 32 for lv in cfg.levels)


def test_derived_values_are_properties_not_fields() -> None:
    names = {f.name for f in dataclasses.fields(ExperimentConfig)}
    assert not names & {"taus", "window", "strides"}


# ----------------------------------------------------------------------------- stride validation


@pytest.mark.parametrize(
    ("strides", "bad_level"),
    [
        ((2,), 0),
        ((2, 4), 0),
        ((1, 1), 1),
        ((1, 0), 1),
        ((1, -3), 1),
        ((1, 2.5), 1),
        ((1, True), 1),
        ((1, "4"), 1),
        ((1, 4, 1), 2),
    ],
    ids=["l0-stride2", "l0-stride2-two-levels", "l1-stride1", "l1-stride0", "l1-negative", "l1-float", "l1-bool",
         "l1-string", "l2-stride1"],  # fmt: skip
)
def test_invalid_stride_is_a_config_error_naming_the_level(strides: tuple[object, ...], bad_level: int) -> None:
    with pytest.raises(ConfigError, match=rf"Level {bad_level}\b.*stride"):
        ExperimentConfig(levels=stack(*strides))


@pytest.mark.parametrize("value", ["1", "0", "-3", "2.5", "true", "'4'"])
def test_invalid_stride_override_is_a_config_error_naming_the_level(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides(debug(), [f"levels.1.stride={value}"])
    assert re.search(r"[Ll]evels?[ .]1\b", str(info.value)), str(info.value)


def test_empty_stack_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="at least one level"):
        ExperimentConfig(levels=())


def test_config_error_is_an_hjepa_error_and_a_value_error() -> None:
    assert issubclass(ConfigError, HJEPAError) and issubclass(ConfigError, ValueError)


# ----------------------------------------------------------------------------- YAML round trip


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_yaml_round_trip_of_every_preset(name: str, tmp_path: Path) -> None:
    cfg = EXPERIMENTS[name](quick=True, seed=3)
    path = tmp_path / "config.yaml"
    path.write_text(dump_yaml(cfg), encoding="utf-8")
    assert load_yaml(str(path)) == cfg


def test_yaml_round_trip_keeps_nested_and_kind_specific_values(tmp_path: Path) -> None:
    cfg = apply_overrides(
        debug(),
        ["levels.0.args.channels=12", "levels.2.args.depth=3", "data.exclude_layout_seeds=[4, 5]",
         "loss.regularizer.kind=sigreg", "train.lr=0.00003", "train.devices='0,1'"],
    )  # fmt: skip
    path = tmp_path / "c.yaml"
    path.write_text(dump_yaml(cfg), encoding="utf-8")
    back = load_yaml(str(path))
    assert back == cfg
    assert back.data.exclude_layout_seeds == (4, 5)
    assert back.levels[2].args == {"depth": 3}
    assert isinstance(back.levels, tuple)


def test_to_dict_from_dict_round_trip() -> None:
    cfg = debug()
    assert from_dict(ExperimentConfig, to_dict(cfg)) == cfg


def test_load_yaml_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(str(missing))


@pytest.mark.parametrize("text", ["levels: [unclosed\n", "train: {steps: 3\n", "a: b: c\n"])
def test_load_yaml_invalid_yaml(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(str(path))


def test_load_yaml_rejects_non_mapping_and_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(str(path))
    path.write_text("train:\n  stepz: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="stepz") as info:
        load_yaml(str(path))
    assert "steps" in str(info.value)  # valid keys are listed


def test_load_yaml_validates_strides(tmp_path: Path) -> None:
    data = to_dict(debug())
    data["levels"][2]["stride"] = 1
    path = tmp_path / "c.yaml"
    import yaml

    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"Level 2"):
        load_yaml(str(path))


# ----------------------------------------------------------------------------- overrides


def test_override_level_dim_and_alias() -> None:
    base = debug()
    a = apply_overrides(base, ["levels.0.dim=128"])
    b = apply_overrides(base, ["level.0.dim=128"])
    assert a.levels[0].dim == 128 and a == b
    assert base.levels[0].dim == 16  # the original is untouched (frozen, copied)


def test_override_train_steps_and_later_override_wins() -> None:
    cfg = apply_overrides(debug(), ["train.steps=5"])
    assert cfg.train.steps == 5
    assert apply_overrides(debug(), ["train.steps=5", "train.steps=7"]).train.steps == 7


def test_override_values_are_parsed_as_yaml() -> None:
    cfg = apply_overrides(debug(), ["loss.detach_below=false", "train.lr=0.01", "name=my run", "train.strategy=ddp"])
    assert cfg.loss.detach_below is False and cfg.train.lr == 0.01 and cfg.name == "my run"
    assert cfg.train.strategy == "ddp"


def test_int_given_for_float_field_is_converted() -> None:
    cfg = apply_overrides(debug(), ["train.lr=1"])
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)


def test_override_beyond_the_stack_is_refused_until_levels_adds_them() -> None:
    from hjepa.experiments.presets import with_levels

    base = debug()
    n = len(base.levels)
    with pytest.raises(ConfigError, match=rf"'{n}' is not a valid index \(0..{n - 1}\).*--levels K"):
        apply_overrides(base, [f"levels.{n}.stride=3"])
    cfg = apply_overrides(with_levels(base, n + 1), [f"levels.{n}.stride=3"])
    assert len(cfg.levels) == n + 1 and cfg.levels[n].stride == 3
    assert cfg.taus == base.taus + (base.taus[-1] * 3,)


def test_override_new_key_under_args() -> None:
    cfg = apply_overrides(debug(), ["levels.1.args.foo=3"])
    assert cfg.levels[1].args == {"foo": 3}
    assert cfg.levels[2].args == {}


def test_override_unknown_key_lists_valid_keys() -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides(debug(), ["train.stepz=5"])
    msg = str(info.value)
    assert "stepz" in msg and "valid keys" in msg
    for name in ("steps", "batch_size", "lr"):
        assert name in msg
    with pytest.raises(ConfigError, match="valid keys"):
        apply_overrides(debug(), ["trian.steps=5"])
    with pytest.raises(ConfigError, match="valid keys"):
        apply_overrides(debug(), ["levels.0.dimm=5"])


@pytest.mark.parametrize("index", ["4", "10", "-1", "x"])
def test_override_bad_level_index(index: str) -> None:
    with pytest.raises(ConfigError, match="not a valid index"):
        apply_overrides(debug(), [f"levels.{index}.dim=8"])


@pytest.mark.parametrize(
    "item",
    ["train.steps=abc", "train.steps=2.5", "train.steps=true", "levels.0.dim=[1, 2]", "seed=x",
     "train.lr=fast", "train=3"],
)  # fmt: skip
def test_override_wrong_type(item: str) -> None:
    with pytest.raises(ConfigError):
        apply_overrides(debug(), [item])


def test_override_wrong_type_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"train\.steps.*abc"):
        apply_overrides(debug(), ["train.steps=abc"])


@pytest.mark.parametrize("item", ["train.steps", "=5", "train.steps:5"])
def test_override_without_equals_sign(item: str) -> None:
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(debug(), [item])


def test_override_below_a_plain_value() -> None:
    with pytest.raises(ConfigError, match="plain value"):
        apply_overrides(debug(), ["train.steps.x=1"])


def test_override_collect_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="transitions"):
        apply_overrides(debug(), ["data.transitions=-1"])


def test_override_float_in_exponent_notation() -> None:
    # PyYAML (YAML 1.1) reads "1e-4", without a dot, as a string; float fields still accept it
    cfg = apply_overrides(debug(), ["train.lr=1e-4", "train.weight_decay=3.0e-5"])
    assert cfg.train.lr == pytest.approx(1e-4) and isinstance(cfg.train.lr, float)
    assert cfg.train.weight_decay == pytest.approx(3e-5)


def test_override_devices_as_a_count() -> None:
    assert str(apply_overrides(debug(), ["train.devices=4"]).train.devices) == "4"


def test_override_multi_node_settings() -> None:
    cfg = apply_overrides(debug(), ["train.strategy=ddp", "train.devices='4'", "train.num_nodes=2"])
    assert (cfg.train.strategy, cfg.train.devices, cfg.train.num_nodes) == ("ddp", "4", 2)


def test_every_field_is_documented() -> None:
    """Each config field carries a docstring right under it (shown in docs and --help)."""
    import inspect

    import hjepa.config as config_module

    source = inspect.getsource(config_module)
    for cls in (LevelConfig, TrainConfig, ExperimentConfig):
        for f in dataclasses.fields(cls):
            pattern = rf"\n    {f.name}: [^\n]+\n    \"\"\""
            assert re.search(pattern, source), f"{cls.__name__}.{f.name} has no docstring"


@pytest.mark.parametrize(("env_id", "obs_kind", "expected"), [
    ("MiniGrid-FourRooms-v0", "grid", "gridmap"),  # the preset's gridmap reads grid observations
    ("MiniGrid-FourRooms-v0", "image", "image"),  # it does not read images: level 0 follows the data
    ("MiniGrid-Empty-8x8-v0", "grid", "gridmap"),  # unknown envs take fourrooms' architecture
])  # fmt: skip
def test_dataset_config_keeps_the_preset_level0_when_it_reads_the_observations(env_id: str, obs_kind: str,
                                                                                expected: str) -> None:  # fmt: skip
    cfg = config_for_dataset(env_id, obs_kind, {"env_id": env_id, "transitions": 100})
    assert cfg.levels[0].kind == expected
    assert cfg.data.env_id == env_id and cfg.data.transitions == 100


def test_minigrid_suites_imagine_layouts_they_never_collected() -> None:
    from hjepa.experiments.bench import SUITES

    # an unseen layout is not in any memory: level 0 imagines its graph
    for name in ("fourrooms", "fourrooms-random", "mazerooms", "multiroom"):
        suite, cfg = SUITES[name], EXPERIMENTS[name](seed=3)
        assert suite.configurator.planner == "imagine" and cfg.levels[0].kind == "gridmap"
        assert cfg.data.layouts == "random"
        assert set(suite.layouts(cfg)) <= set(cfg.data.exclude_layout_seeds)  # evaluated, so held out by content


def test_levels_above_a_cropping_level0_make_it_train_on_whole_maps() -> None:
    from hjepa.experiments.presets import fourrooms, with_levels
    from hjepa.specs import ActionSpec, ObsSpec
    from hjepa.stack import HJEPA

    assert with_levels(fourrooms(quick=True), 1).levels[0].args["crop"] == 7
    grown = with_levels(fourrooms(quick=True), 3)
    assert grown.levels[0].args["crop"] == 0 and [lv.kind for lv in grown.levels] == ["gridmap", "temporal", "temporal"]
    obs, actions = ObsSpec("grid", (19, 19, 3), "uint8"), ActionSpec("discrete", n=3, env_actions=(0, 1, 2))
    assert not HJEPA.from_config(grown, obs, actions).levels[0].crops_training
    with pytest.raises(ConfigError, match="crop"):
        HJEPA.from_config(dataclasses.replace(grown, levels=(fourrooms().levels[0],) + grown.levels[1:]), obs, actions)
