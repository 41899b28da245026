"""The ``hjepa`` command line: user errors are one paragraph on stderr and exit code 2, never a
traceback (``--debug`` re-raises); ``collect`` writes OUT/data and OUT/config.yaml.

Everything runs in-process through ``main(argv)`` except two tests that start the installed
console script. No test trains: every error here happens before the first optimisation step.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hjepa.config import load_yaml
from hjepa.data.collect import CollectConfig, collect
from hjepa.data.storage import OfflineDataset
from hjepa.errors import ConfigError, DatasetError, SpecMismatchError, UnknownNameError
from hjepa.experiments.cli import EXIT_USER_ERROR, main

ENV = "MiniGrid-Empty-8x8-v0"


def flat(text: str) -> str:
    """``text`` without any whitespace: rich and textwrap may break a message anywhere."""
    return "".join(text.split())


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def train_argv(data: Path, out: Path, *overrides: str) -> list[str]:
    """``hjepa train`` arguments; one step at most, so a missed error cannot start a long run."""
    argv = ["train", "--data", str(data), "--out", str(out), "--steps", "1"]
    for item in overrides:
        argv += ["--set", item]
    return argv


def assert_user_error(code: int, err: str, *fragments: str) -> None:
    assert code == EXIT_USER_ERROR == 2, err
    assert "error:" in err, err
    assert "Traceback" not in err, err
    assert "internal error" not in err, err
    for fragment in fragments:
        assert flat(fragment) in flat(err), f"{fragment!r} not in {err!r}"


@pytest.fixture(scope="module")
def grid_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny symbolic-grid dataset (5 episodes of 100 transitions). Read-only: copy to corrupt."""
    out = tmp_path_factory.mktemp("cli") / "grid" / "data"
    collect(CollectConfig(env_id=ENV, transitions=500, episode_len=100), out, progress=False)
    return out


@pytest.fixture()
def data_copy(grid_data: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy" / "data"
    shutil.copytree(grid_data, dst)
    return dst


# ----------------------------------------------------------------------------- unknown names


def test_run_unknown_experiment(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "run", "nope", "--out", str(tmp_path / "r"))
    assert_user_error(code, err, "Unknown experiment 'nope'", "debug", "fourrooms")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["run", "fourroom"], ("Unknown experiment 'fourroom'", "Did you mean 'fourrooms'")),
        (["bench", "--suite", "mazeroom"], ("Unknown suite 'mazeroom'", "Did you mean 'mazerooms'")),
        (["bench", "--suite", "debug", "--agents", "hjepa,flta"], ("Unknown agent(s) ['flta']", "Did you mean 'flat'")),
        (["collect", "--env", "MiniGrid-FourRoom-v0", "--transitions", "10"],
         ("Unknown environment id", "Did you mean 'MiniGrid-FourRooms-v0'")),
        (["run", "debug", "--set", "levels.1.kind=temporl"], ("Unknown level kind 'temporl'", "Did you mean 'temporal'")),
        (["run", "debug", "--set", "loss.regularizer.kind=vicrge"], ("Did you mean 'vicreg'",)),
    ],
    ids=["experiment", "suite", "agent", "env", "level-kind", "regularizer"],
)
def test_typos_get_a_suggestion(capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str],
                                fragments: tuple[str, ...]) -> None:  # fmt: skip
    code, _, err = run_cli(capsys, *argv, "--out", str(tmp_path / "o"))
    assert_user_error(code, err, *fragments)
    assert not (tmp_path / "o").exists()


def test_collect_unknown_env_id(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "collect", "--env", "MiniGrid-Nope-v0", "--transitions", "100",
                           "--out", str(tmp_path / "c"))  # fmt: skip
    assert_user_error(code, err, "Unknown environment id 'MiniGrid-Nope-v0'", "MiniGrid-FourRooms-v0")
    assert not (tmp_path / "c" / "data").exists()


def test_collect_non_navigation_env(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "collect", "--env", "CartPole-v1", "--transitions", "100", "--out", str(tmp_path / "c"))
    assert_user_error(code, err, "'CartPole-v1'", "not a MiniGrid grid world")
    assert not (tmp_path / "c" / "data").exists()


def test_error_messages_keep_square_brackets(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "collect", "--env", "CartPole-v1", "--transitions", "100", "--out", str(tmp_path / "c"))
    assert code == 2 and "hjepa[nav]" in flat(err), err


def test_unknown_level_kind_on_train(capsys: pytest.CaptureFixture[str], grid_data: Path, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, *train_argv(grid_data, tmp_path / "t", "levels.0.kind=nope"))
    assert_user_error(code, err, "Unknown level kind 'nope'", "grid", "temporal", "@register_level")
    assert not (tmp_path / "t" / "checkpoints").exists()


def test_unknown_level_kind_on_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "run", "debug", "--out", str(tmp_path / "r"), "--set", "data.transitions=300",
                           "--set", "train.steps=1", "--set", "levels.2.kind=nope")  # fmt: skip
    assert_user_error(code, err, "Unknown level kind 'nope'")
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_unknown_regularizer_kind(capsys: pytest.CaptureFixture[str], grid_data: Path, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, *train_argv(grid_data, tmp_path / "t", "loss.regularizer.kind=barlow"))
    assert_user_error(code, err, "Unknown regularizer 'barlow'", "vicreg")


# ----------------------------------------------------------------------------- bad config


def test_bad_stride_override(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "run", "debug", "--out", str(tmp_path / "r"), "--set", "levels.1.stride=1")
    assert_user_error(code, err, "Level 1", "stride must be an integer >= 2", "got 1")
    assert not (tmp_path / "r").exists()  # rejected before anything is written


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("train.nope=3", ("unknown key 'nope'", "valid keys", "batch_size")),
        ("levels.9.dim=8", ("'9' is not a valid index",)),
        ("train.steps=abc", ("train.steps", "expected int", "'abc'")),
        ("train.steps", ("key=value",)),
    ],
    ids=["unknown-key", "bad-index", "wrong-type", "no-equals"],
)
def test_bad_override(capsys: pytest.CaptureFixture[str], tmp_path: Path, override: str, fragments: tuple[str, ...]) -> None:
    code, _, err = run_cli(capsys, "run", "debug", "--out", str(tmp_path / "r"), "--set", override)
    assert_user_error(code, err, override.split("=")[0].split(".")[-1], *fragments)


def test_override_beyond_the_stack_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "run", "debug", "--out", str(tmp_path / "r"), "--set", "levels.3.kind=temporal")
    assert_user_error(code, err, "'3' is not a valid index (0..2)", "--levels K")
    assert not (tmp_path / "r").exists()


def test_bad_override_on_collect(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "collect", "--env", ENV, "--transitions", "100", "--out", str(tmp_path / "c"),
                           "--set", "data.layouts=sideways")  # fmt: skip
    assert_user_error(code, err, "layouts must be one of")


@pytest.mark.parametrize("n", ["-5", "0"])
def test_collect_non_positive_transitions(capsys: pytest.CaptureFixture[str], tmp_path: Path, n: str) -> None:
    code, _, err = run_cli(capsys, "collect", "--env", ENV, "--transitions", n, "--out", str(tmp_path / "c"))
    assert_user_error(code, err, f"transitions must be > 0, got {n}")
    assert not (tmp_path / "c").exists()


def test_missing_config_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    code, _, err = run_cli(capsys, "run", "debug", "--out", str(tmp_path / "r"), "--config", str(missing))
    assert_user_error(code, err, "nope.yaml", "does not exist")


def test_invalid_config_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {steps: [\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "run", "debug", "--out", str(tmp_path / "r"), "--config", str(bad))
    assert_user_error(code, err, "bad.yaml", "not valid YAML")


def test_train_levels_below_one(capsys: pytest.CaptureFixture[str], grid_data: Path, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, *train_argv(grid_data, tmp_path / "t"), "--levels", "0")
    assert_user_error(code, err, "--levels must be >= 1")


# ----------------------------------------------------------------------------- bad datasets


def test_train_missing_data_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    code, _, err = run_cli(capsys, *train_argv(missing, tmp_path / "t"))
    assert_user_error(code, err, str(missing), "does not exist", "hjepa collect")


def test_train_empty_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, *train_argv(tmp_path / "empty", tmp_path / "t"))
    assert_user_error(code, err, "meta.json", "is missing", "not a dataset folder")


def test_train_dataset_without_obs(capsys: pytest.CaptureFixture[str], data_copy: Path, tmp_path: Path) -> None:
    (data_copy / "obs.npy").unlink()
    code, _, err = run_cli(capsys, *train_argv(data_copy, tmp_path / "t"))
    assert_user_error(code, err, "obs.npy", "is missing")


def test_train_dataset_with_garbage_meta(capsys: pytest.CaptureFixture[str], data_copy: Path, tmp_path: Path) -> None:
    (data_copy / "meta.json").write_text("garbage{", encoding="utf-8")
    # the run folder (parent of data/) is accepted as --data too
    code, _, err = run_cli(capsys, *train_argv(data_copy.parent, tmp_path / "t"))
    assert_user_error(code, err, "meta.json", "is not valid JSON")


def test_train_dataset_with_truncated_array(capsys: pytest.CaptureFixture[str], data_copy: Path, tmp_path: Path) -> None:
    (data_copy / "actions.npy").write_bytes(b"\x93NUMPY garbage")
    code, _, err = run_cli(capsys, *train_argv(data_copy, tmp_path / "t"))
    assert_user_error(code, err, "actions.npy", "truncated")


def test_train_dataset_inconsistent_with_meta(capsys: pytest.CaptureFixture[str], data_copy: Path, tmp_path: Path) -> None:
    meta = json.loads((data_copy / "meta.json").read_text(encoding="utf-8"))
    meta["num_steps"] += 10
    (data_copy / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    code, _, err = run_cli(capsys, *train_argv(data_copy, tmp_path / "t"))
    assert_user_error(code, err, "meta.json implies")


def test_train_dataset_of_another_format_version(capsys: pytest.CaptureFixture[str], data_copy: Path,
                                                 tmp_path: Path) -> None:  # fmt: skip
    meta = json.loads((data_copy / "meta.json").read_text(encoding="utf-8"))
    meta["format_version"] = 99
    (data_copy / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    code, _, err = run_cli(capsys, *train_argv(data_copy, tmp_path / "t"))
    assert_user_error(code, err, "format_version 99", "Re-collect")


def test_train_episodes_shorter_than_the_window(capsys: pytest.CaptureFixture[str], grid_data: Path,
                                                tmp_path: Path) -> None:  # fmt: skip
    # 100-step episodes (101 observations) cannot hold a window of 5 * 5 * 5 + 1 = 126 observations
    code, _, err = run_cli(capsys, *train_argv(grid_data, tmp_path / "t", "levels.1.stride=5", "levels.2.stride=5",
                                               "levels.3.stride=5"), "--levels", "4")  # fmt: skip
    assert_user_error(code, err, "no episode of at least 126 observations")


def test_train_refuses_a_config_of_another_env(capsys: pytest.CaptureFixture[str], grid_data: Path,
                                               tmp_path: Path) -> None:  # fmt: skip
    from hjepa.config import dump_yaml
    from hjepa.experiments.presets import fourrooms

    (tmp_path / "fr.yaml").write_text(dump_yaml(fourrooms(quick=True)))
    code, _, err = run_cli(capsys, *train_argv(grid_data, tmp_path / "t"), "--config", str(tmp_path / "fr.yaml"))
    assert_user_error(code, err, "does not describe the dataset", "env_id 'MiniGrid-FourRooms-v0' (config) against "
                      f"'{ENV}' (dataset)", "hjepa collect --config")  # fmt: skip
    assert not (tmp_path / "t" / "checkpoints").exists()


def test_train_refuses_a_config_with_other_actions(capsys: pytest.CaptureFixture[str], grid_data: Path,
                                                   tmp_path: Path) -> None:  # fmt: skip
    code, _, err = run_cli(capsys, *train_argv(grid_data, tmp_path / "t", "data.action_subset=[left, forward]"))
    assert_user_error(code, err, "action_subset ['left', 'forward'] (config) against ['left', 'right', 'forward'] (dataset)")


def test_train_image_dataset_with_grid_level(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run = tmp_path / "img"
    code, _, err = run_cli(capsys, "collect", "--env", ENV, "--transitions", "200", "--out", str(run), "--obs-mode", "image")
    assert code == 0, err
    assert OfflineDataset.open(run).obs_spec.kind == "image"
    code, _, err = run_cli(capsys, *train_argv(run, tmp_path / "t", "levels.0.kind=grid"))
    assert_user_error(code, err, "Level 0 of kind 'grid'", "observations of kind 'image'", "accepts ['grid']")
    assert not (tmp_path / "t" / "checkpoints").exists()


def test_train_grid_dataset_with_state_level(capsys: pytest.CaptureFixture[str], grid_data: Path, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, *train_argv(grid_data, tmp_path / "t", "levels.0.kind=state"))
    assert_user_error(code, err, "kind 'state'", "observations of kind 'grid'")


def test_train_latent_kind_at_level_zero(capsys: pytest.CaptureFixture[str], grid_data: Path, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, *train_argv(grid_data, tmp_path / "t", "levels.0.kind=temporal"))
    assert_user_error(code, err, "Level 0 of kind 'temporal'")


# ----------------------------------------------------------------------------- --debug, argparse


@pytest.mark.parametrize(
    ("argv", "exc"),
    [
        (["run", "nope"], UnknownNameError),
        (["run", "debug", "--set", "levels.1.stride=1"], ConfigError),
        (["train", "--data", "/nonexistent/hjepa-data"], DatasetError),
    ],
)
def test_debug_reraises(argv: list[str], exc: type[Exception], tmp_path: Path) -> None:
    out = ["--out", str(tmp_path / "o")]
    with pytest.raises(exc):
        main([*argv, *out, "--debug"])


def test_debug_reraises_spec_mismatch(grid_data: Path, tmp_path: Path) -> None:
    with pytest.raises(SpecMismatchError):
        main([*train_argv(grid_data, tmp_path / "t", "levels.0.kind=image"), "--debug"])


def test_missing_required_argument_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["collect", "--env", ENV])
    assert info.value.code == 2
    assert "--transitions" in capsys.readouterr().err


def test_run_help_lists_the_experiments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in ("debug", "fourrooms", "mazerooms"):
        assert name in out


def test_bench_help_lists_every_suite(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from hjepa.experiments.bench import SUITES

    monkeypatch.setenv("COLUMNS", "400")  # no wrapping inside hyphenated names
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert all(f"{name}," in out or f"{name} (" in out for name in SUITES)


# ----------------------------------------------------------------------------- happy path


def test_collect_writes_data_and_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, stdout, err = run_cli(capsys, "collect", "--transitions", "500", "--env", ENV, "--out", str(out),
                                "--seed", "3", "--set", "data.episode_len=50")  # fmt: skip
    assert code == 0, err
    assert "Traceback" not in err
    assert "Collected 500 transitions in 10 episodes" in " ".join(stdout.split())
    for name in ("meta.json", "obs.npy", "actions.npy", "episode_starts.npy", "layout.npy", "pose.npy"):
        assert (out / "data" / name).is_file(), name
    ds = OfflineDataset.open(out / "data")
    assert (ds.meta.env_id, ds.num_transitions, ds.num_episodes, ds.obs_spec.kind) == (ENV, 500, 10, "grid")
    cfg = load_yaml(str(out / "config.yaml"))
    assert (cfg.data.env_id, cfg.data.transitions, cfg.data.episode_len, cfg.data.seed) == (ENV, 500, 50, 3)
    assert cfg.seed == 3
    # the recorded collector settings are exactly what config.yaml says
    assert ds.meta.collector == cfg.data.to_dict()


def test_collect_is_reproducible_from_its_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_cli(capsys, "collect", "--transitions", "300", "--env", ENV, "--out", str(a), "--seed", "5")[0] == 0
    assert run_cli(capsys, "collect", "--transitions", "300", "--env", ENV, "--out", str(b),
                   "--config", str(a / "config.yaml"))[0] == 0  # fmt: skip
    for name in ("obs", "actions", "episode_starts", "layout", "pose"):
        assert np.array_equal(np.load(a / "data" / f"{name}.npy"), np.load(b / "data" / f"{name}.npy")), name
    assert load_yaml(str(a / "config.yaml")) == load_yaml(str(b / "config.yaml"))


def test_explicit_flags_win_over_config_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_cli(capsys, "collect", "--transitions", "300", "--env", ENV, "--out", str(a))[0] == 0
    assert run_cli(capsys, "collect", "--transitions", "200", "--env", ENV, "--out", str(b),
                   "--config", str(a / "config.yaml"))[0] == 0  # fmt: skip
    assert OfflineDataset.open(b).num_transitions == 200


def test_collect_image_config_matches_the_data(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "img"
    code, _, err = run_cli(capsys, "collect", "--env", ENV, "--transitions", "200", "--out", str(out), "--obs-mode", "image")
    assert code == 0, err
    assert load_yaml(str(out / "config.yaml")).levels[0].kind == "image"


# ----------------------------------------------------------------------------- the real console script


def _console_script() -> Path:
    script = Path(sys.executable).with_name("hjepa")
    if not script.exists():
        found = shutil.which("hjepa")
        if found is None:
            pytest.skip("the hjepa console script is not installed")
        script = Path(found)
    return script


def test_console_script_user_error_has_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(_console_script()), "collect", "--env", "MiniGrid-Nope-v0", "--transitions", "10", "--out", str(tmp_path / "c")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "error:" in proc.stderr and "MiniGrid-Nope-v0" in proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout


def test_console_script_debug_shows_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(_console_script()), "collect", "--env", "MiniGrid-Nope-v0", "--transitions", "10", "--out", str(tmp_path / "c"),
         "--debug"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "UnknownEnvError" in proc.stderr


def test_bench_unknown_suite(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "bench", "--suite", "nope", "--out", str(tmp_path / "b"))
    assert_user_error(code, err, "Unknown suite 'nope'", "fourrooms", "mazerooms")
    assert not (tmp_path / "b").exists()


def test_bench_unknown_agent(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "bench", "--suite", "debug", "--agents", "hjepa,greedy", "--out", str(tmp_path / "b"))
    assert_user_error(code, err, "Unknown agent(s) ['greedy']", "oracle")


def test_bench_suite_on_another_env_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from hjepa.config import dump_yaml
    from hjepa.experiments.presets import fourrooms

    (tmp_path / "fr.yaml").write_text(dump_yaml(fourrooms(quick=True)))
    code, _, err = run_cli(capsys, "bench", "--suite", "debug", "--config", str(tmp_path / "fr.yaml"),
                           "--out", str(tmp_path / "b"))  # fmt: skip
    assert_user_error(code, err, "Suite 'debug' draws its tasks in 'MiniGrid-Empty-8x8-v0'",
                      "trained on 'MiniGrid-FourRooms-v0'", "fourrooms")  # fmt: skip
    assert not (tmp_path / "b").exists()


def test_evaluate_missing_checkpoint(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", str(tmp_path / "none.ckpt"), "--out", str(tmp_path / "e"))
    assert_user_error(code, err, "No checkpoint at")


@pytest.mark.parametrize(("extra", "fragment"), [(["--set", "train.steps=5"], "--set and --config do nothing"),
                                                 (["--threads", "0"], "--threads must be >= 1")])  # fmt: skip
def test_evaluate_refuses_training_options_and_bad_threads(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                           extra: list[str], fragment: str) -> None:  # fmt: skip
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", str(tmp_path / "none.ckpt"), "--out", str(tmp_path / "e"),
                           *extra)  # fmt: skip
    assert_user_error(code, err, fragment)


@pytest.mark.parametrize(("pair", "fragment"), [("depth=3", "KEY one of"), ("upper", "KEY=VALUE"),
                                                ("width0=wide", "not a int"), ("upper=both", "upper must be")])  # fmt: skip
def test_bad_configurator_field_on_evaluate(capsys: pytest.CaptureFixture[str], tmp_path: Path, pair: str,
                                            fragment: str) -> None:  # fmt: skip
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", str(tmp_path / "none.ckpt"), "--suite", "debug",
                           "--out", str(tmp_path / "e"), "--configurator", pair)  # fmt: skip
    assert_user_error(code, err, fragment)


def test_configurator_fields_are_typed_from_the_defaults() -> None:
    from hjepa.experiments.cli import configurator_with
    from hjepa.planning.configurator import RuleConfigurator

    conf = configurator_with(RuleConfigurator(), ["upper=cost", "width0=27", "use_critic=false", "judge=top"])
    assert conf == RuleConfigurator(upper="cost", width0=27, use_critic=False, judge="top")
