"""The ``hjepa`` command line.

Subcommands: ``run``, ``collect``, ``train``, ``evaluate``, ``bench``, ``inspect``, ``report``, ``probe``. Errors print one paragraph and exit non-zero; ``--debug``
shows the traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.markup import escape

from hjepa.config import ExperimentConfig, apply_overrides, dump_yaml, load_yaml
from hjepa.errors import ConfigError, HJEPAError, SpecMismatchError
from hjepa.logs import make_console
from hjepa.threads import check_threads

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1


TRAINING_DEVICE = "training accelerator (default: auto, a GPU when present); agents plan on the CPU"


def _common(p: argparse.ArgumentParser, device: str | None = TRAINING_DEVICE) -> None:
    """The options every command takes; ``--device`` (with help ``device``) where it does something."""
    p.add_argument("--config", metavar="FILE.yaml", help="start from this config instead of the preset")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted override, repeatable (e.g. --set levels.0.dim=128 --set train.steps=500)")  # fmt: skip
    p.add_argument("--seed", type=int, default=None, help="seed for data, initialisation and evaluation")
    if device:
        p.add_argument("--device", choices=["auto", "cpu", "cuda", "gpu"], default=None, help=device)
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def build_parser() -> argparse.ArgumentParser:
    from hjepa.experiments.presets import EXPERIMENTS
    from hjepa.experiments.probe_cli import add_probe_parser

    parser = argparse.ArgumentParser(prog="hjepa", description="Hierarchical JEPA world-model agents.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="collect, train and report, end to end",
                         description=f"Experiments: {', '.join(EXPERIMENTS)}.")  # fmt: skip
    run.add_argument("experiment", help=f"one of: {', '.join(EXPERIMENTS)}")
    run.add_argument("--quick", action="store_true", help="a small version that finishes in minutes on a CPU")
    run.add_argument("--out", default=None, help="run folder (default runs/EXPERIMENT)")
    run.add_argument("--resume", action="store_true", help="continue training from OUT/checkpoints/last.ckpt")
    run.add_argument("--levels", type=int, default=None, help="number of levels (keep the first K or add temporal levels)")
    _threads_arg(run)
    _common(run)
    col = sub.add_parser("collect", help="reward-free offline data from an env, into OUT/data")
    col.add_argument("--env", required=True, help="gymnasium env id (MiniGrid grid worlds, hjepa/MazeRooms-v0, "
                     "PointMaze_Medium-v3, PointMaze_Large-v3, hjepa/PointMaze_Giant-v0)")  # fmt: skip
    col.add_argument("--transitions", type=int, required=True, help="number of transitions (actions) to collect")
    col.add_argument("--out", required=True, help="run folder; the dataset goes to OUT/data")
    col.add_argument("--episode-len", type=int, default=None, help="steps per random-walk episode")
    col.add_argument("--layouts", choices=["fixed", "random"], default=None, help="one layout, or a new one per episode")
    col.add_argument("--obs-mode", choices=["grid", "image", "state"], default=None,
                     help="symbolic grid or top-down RGB (MiniGrid); state vector or top-down RGB (PointMaze)")  # fmt: skip
    _common(col, device="training accelerator written into OUT/config.yaml (collection itself runs on the CPU)")
    tr = sub.add_parser("train", help="train the stack jointly on a dataset")
    tr.add_argument("--data", required=True, help="a data/ folder, or a run folder holding one")
    tr.add_argument("--out", required=True, help="run folder for checkpoints and metrics")
    tr.add_argument("--levels", type=int, default=None, help="number of levels (keep the first K or add temporal levels)")
    tr.add_argument("--steps", type=int, default=None, help="optimisation steps")
    tr.add_argument("--resume", action="store_true",
                    help="continue from OUT/checkpoints/last.ckpt with its config (more --levels: grow the stack)")  # fmt: skip
    _threads_arg(tr)
    _common(tr)
    ev = sub.add_parser("evaluate", help="run the agents on seeded, distance-binned tasks; writes results.json")
    ev.add_argument("--checkpoint", required=True, help="a .ckpt file or a run folder")
    ev.add_argument("--env", default=None, help="env id (default: the checkpoint's); picks the suite's tasks, or "
                    "derives a suite from a goal-reaching MiniGrid env that no suite evaluates")  # fmt: skip
    ev.add_argument("--suite", default=None, help="the suite whose tasks to run (default: the one of the checkpoint's env; "
                    "it must draw its tasks in that env)")  # fmt: skip
    ev.add_argument("--episodes", type=int, default=None, help="episodes per agent (split equally over the bins)")
    ev.add_argument("--out", required=True, help="folder for results.json, report.md and plots/")
    _agents_arg(ev)
    _threads_arg(ev)
    _common(ev, device=None)  # the agents plan on the CPU
    be = sub.add_parser("bench", help="a benchmark suite end to end (docs/benchmark.md): collect, train, evaluate, report")
    which = be.add_mutually_exclusive_group(required=True)
    which.add_argument("--suite", help=f"one of: {', '.join(EXPERIMENTS)} (each trains the experiment of its name)")
    which.add_argument("--env", help="a goal-reaching MiniGrid env id: a suite derived from the env "
                       "(actions, step limit, layouts, tasks; docs/benchmark.md)")  # fmt: skip
    be.add_argument("--quick", action="store_true", help="the small version (minutes on a CPU)")
    be.add_argument("--out", default=None, help="run folder (default runs/bench-SUITE)")
    be.add_argument("--levels", type=int, default=None, help="number of levels (ablation: keep the first K)")
    be.add_argument("--episodes", type=int, default=None, help="episodes per agent (split equally over the bins)")
    _agents_arg(be)
    _threads_arg(be)
    _common(be)
    ins = sub.add_parser("inspect", help="per-level predictions, embedding health, plan traces, critic maps, plots")
    ins.add_argument("--checkpoint", required=True, help="a .ckpt file or a run folder")
    ins.add_argument("--out", required=True, help="folder for inspect.md, inspect.json and plots/")
    ins.add_argument("--data", default=None, help="the dataset (default: the one the checkpoint was trained on)")
    ins.add_argument("--levels", default=None, help="comma-separated levels to inspect, e.g. 0,2 (default: all)")
    ins.add_argument("--episode", type=int, default=None,
                     help="index of the evaluation task to trace, as `hjepa bench --quick` draws them (default: the longest)")  # fmt: skip
    ins.add_argument("--max-steps", type=int, default=None, help="env steps before the traced episode stops")
    ins.add_argument("--no-gif", action="store_true", help="skip the animated GIF of the episode")
    _configurator_arg(ins)
    _threads_arg(ins)
    _common(ins, device=None)  # inspection runs on the CPU
    add_probe_parser(sub)
    rep = sub.add_parser("report", help="Markdown tables of run folders' results.json, one section per suite")
    rep.add_argument("runs", nargs="+", metavar="RUN",
                     help="a run folder of bench, evaluate or run (its results.json or eval/results.json), or the file")  # fmt: skip
    rep.add_argument("--out", default=None, metavar="FILE", help="write the Markdown here (default: print it)")
    rep.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def _threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for torch (default: 1 for a small model or a busy machine, else the free "
                        "cores up to 4; hjepa.threads)")  # fmt: skip


def _agents_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agents", default="hjepa,flat,random,oracle", help="comma-separated agents to compare")
    _configurator_arg(p)


def _configurator_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--configurator", action="append", default=[], metavar="KEY=VALUE",
                   help="a RuleConfigurator field for the hierarchy, repeatable (e.g. upper=cost, judge=top)")  # fmt: skip


def _base_config(preset: ExperimentConfig, args: argparse.Namespace) -> ExperimentConfig:
    """The config file given with --config, else the command's preset."""
    return load_yaml(args.config) if args.config else preset


def _finish_config(cfg: ExperimentConfig, args: argparse.Namespace) -> ExperimentConfig:
    """Apply --seed, --device, --threads and --set, in that order (--set wins)."""
    if getattr(args, "threads", None) is not None:
        check_threads(args.threads)
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, num_threads=args.threads))
    if args.seed is not None:
        cfg = dataclasses.replace(cfg, seed=args.seed, data=dataclasses.replace(cfg.data, seed=args.seed))
    if args.device:
        accel = "gpu" if args.device == "cuda" else args.device
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, accelerator=accel))
    cfg = apply_overrides(cfg, args.overrides)
    _check_kinds(cfg)
    return cfg


def _check_kinds(cfg: ExperimentConfig) -> None:
    """Look up the level kinds and the regulariser, so that a typo stops the command before it
    collects or trains anything."""
    from hjepa.registry import get_level_kind
    from hjepa.regularizers import build_regularizer

    for level in cfg.levels:
        get_level_kind(level.kind)
    build_regularizer(cfg.loss.regularizer)


def cmd_run(args: argparse.Namespace, console: Console) -> None:
    from hjepa.experiments.presets import get_experiment, with_levels
    from hjepa.experiments.runner import run_experiment

    cfg = _base_config(get_experiment(args.experiment, quick=args.quick, seed=args.seed or 0), args)
    cfg = _finish_config(with_levels(cfg, args.levels) if args.levels is not None else cfg, args)
    from hjepa.experiments.bench import SUITES, check_suite_env, evaluate_checkpoint

    if args.experiment in SUITES:  # before any slow work
        check_suite_env(SUITES[args.experiment], cfg.data.env_id)
    out = Path(args.out or f"runs/{args.experiment}{'-quick' if args.quick else ''}")
    result = run_experiment(cfg, out, resume=args.resume, console=console)
    if args.experiment in SUITES:
        evaluate_checkpoint(result.train.checkpoint, SUITES[args.experiment], out / "eval", args.quick, console=console, run=result)
    console.print(f"Run folder: {result.out} (config.yaml, data/, checkpoints/last.ckpt, metrics.csv, report.md, plots/, eval/)")


def cmd_collect(args: argparse.Namespace, console: Console) -> None:
    from hjepa.data.collect import CollectConfig, collect
    from hjepa.envs.pointmaze import is_pointmaze
    from hjepa.experiments.presets import config_for_dataset
    from hjepa.io import write_text

    fields = {"env_id": args.env, "transitions": args.transitions, "episode_len": args.episode_len,
              "layouts": args.layouts, "obs_mode": args.obs_mode, "seed": args.seed}  # fmt: skip
    given = {k: v for k, v in fields.items() if v is not None}
    if is_pointmaze(args.env) and not args.config:
        given.setdefault("obs_mode", "state")  # MiniGrid's default "grid" does not exist there
    if args.config:
        base = load_yaml(args.config)
        cfg = dataclasses.replace(base, data=dataclasses.replace(base.data, **given))
    else:
        data = CollectConfig(**given)
        cfg = config_for_dataset(data.env_id, data.obs_mode, dataclasses.asdict(data), data.seed)
    cfg = _finish_config(cfg, args)
    out = Path(args.out)
    meta = collect(cfg.data, out / "data", progress=console.is_terminal)
    write_text(out / "config.yaml", dump_yaml(cfg))
    console.print(f"Collected {meta.num_transitions:,} transitions in {meta.num_episodes:,} episodes into {out / 'data'}.")


def cmd_train(args: argparse.Namespace, console: Console) -> None:
    from hjepa.data.storage import OfflineDataset
    from hjepa.experiments.presets import config_for_dataset, with_levels
    from hjepa.experiments.runner import finish_training_report
    from hjepa.fit import fit, resume_config
    from hjepa.io import write_text

    ds = OfflineDataset.open(args.data)
    # --resume continues the run's own config (from its checkpoint) unless --config is given
    cfg = resume_config(args.out) if args.resume and not args.config else None
    cfg = cfg or _base_config(config_for_dataset(ds.meta.env_id, ds.obs_spec.kind, ds.meta.collector, ds.meta.seed or 0), args)
    if args.levels is not None:
        cfg = with_levels(cfg, args.levels)
    if args.steps is not None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=args.steps))
    cfg = _finish_config(cfg, args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "config.yaml", dump_yaml(cfg))
    result = fit(cfg, ds.path, out, resume=args.resume, progress=console.is_terminal)
    finish_training_report(cfg, out, result, console)


def _eval_config(args: argparse.Namespace, suite: object, seed: int) -> object:
    from hjepa.experiments.evaluate import check_agents

    agents = tuple(a.strip() for a in args.agents.split(",") if a.strip())
    check_agents(agents)
    cfg = suite.eval_config(seed, agents)
    if not args.configurator:
        return cfg
    return dataclasses.replace(cfg, configurator=configurator_with(cfg.configurator, args.configurator))


def _check_configurator(args: argparse.Namespace) -> None:
    from hjepa.planning.configurator import RuleConfigurator

    configurator_with(RuleConfigurator(), args.configurator)


def configurator_with(base: object, pairs: list[str]) -> object:
    """``base`` (a RuleConfigurator) with ``KEY=VALUE`` fields replaced, values typed by the field."""
    fields = {f.name: f for f in dataclasses.fields(base)}
    changes: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in fields:
            raise ConfigError(f"--configurator expects KEY=VALUE with KEY one of {', '.join(fields)}; got '{pair}'.")
        kind = type(getattr(base, key))
        try:
            changes[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
        except ValueError as exc:
            raise ConfigError(f"--configurator {key}: '{value}' is not a {kind.__name__}.") from exc
    return dataclasses.replace(base, **changes)


def _checkpoint_config(args: argparse.Namespace) -> ExperimentConfig:
    """The checkpoint's config, after the checks of ``evaluate``'s and ``inspect``'s options;
    gives torch ``--threads`` threads, else as many as the free cores allow."""
    from hjepa.checkpoint import read_checkpoint
    from hjepa.config import from_dict
    from hjepa.threads import set_threads

    _check_configurator(args)  # before any slow work
    if args.overrides or args.config:  # they configure training; the checkpoint fixes the model
        raise ConfigError(f"hjepa {args.command} runs the checkpoint's own config, so --set and --config do nothing "
                          "here; plan differently with --configurator KEY=VALUE, and set CPU threads with --threads N.")
    check_threads(args.threads)
    ckpt = read_checkpoint(args.checkpoint)
    set_threads(args.threads)
    return from_dict(ExperimentConfig, ckpt["hyper_parameters"]["config"])


def _per_bin(args: argparse.Namespace, suite: object) -> int | None:
    if args.episodes is None:
        return None
    if args.episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {args.episodes}.")
    return -(-args.episodes // len(suite.bins))


def cmd_evaluate(args: argparse.Namespace, console: Console) -> None:
    from hjepa.experiments.bench import check_suite_env, evaluate_checkpoint, get_suite, suite_for_env

    cfg = _checkpoint_config(args)
    env = args.env or cfg.data.env_id
    if args.env and args.env != cfg.data.env_id:
        raise SpecMismatchError(f"The checkpoint was trained on '{cfg.data.env_id}', not '{args.env}'.")
    suite = get_suite(args.suite) if args.suite else suite_for_env(env, cfg)
    check_suite_env(suite, env)
    seed = cfg.seed if args.seed is None else args.seed
    evaluate_checkpoint(args.checkpoint, suite, args.out, quick=False, eval_cfg=_eval_config(args, suite, seed),
                        console=console, per_bin=_per_bin(args, suite))  # fmt: skip
    console.print(f"Wrote {Path(args.out) / 'results.json'}, report.md and plots/.")


def cmd_bench(args: argparse.Namespace, console: Console) -> None:
    from hjepa.experiments.bench import bench, check_suite_env, get_suite
    from hjepa.experiments.presets import with_levels

    if args.env:
        from hjepa.experiments.generic import generic_suite

        suite = generic_suite(args.env)
    else:
        suite = get_suite(args.suite)
    cfg = _base_config(suite.experiment(quick=args.quick, seed=args.seed or 0), args)
    if args.levels is not None:
        cfg = with_levels(cfg, args.levels)
    cfg = _finish_config(cfg, args)
    check_suite_env(suite, cfg.data.env_id)
    out = Path(args.out or f"runs/bench-{suite.name.replace('/', '_')}{'-quick' if args.quick else ''}")
    if suite.notes:
        console.print(f"note: {escape(suite.notes)}")
    bench(suite, cfg, out, args.quick, _eval_config(args, suite, cfg.seed), console, _per_bin(args, suite))
    console.print(f"Wrote {out / 'results.json'}, report.md and plots/.")


def _levels_arg(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(k) for k in text.split(",") if k.strip())
    except ValueError:
        raise ConfigError(f"--levels takes comma-separated level numbers such as 0,2; got '{text}'.") from None


def cmd_inspect(args: argparse.Namespace, console: Console) -> None:
    from hjepa.envs.oracle import make_tasks
    from hjepa.errors import NotNavigationEnvError, UnknownNameError
    from hjepa.experiments.bench import grid_env_actions, suite_for_env
    from hjepa.inspection import HorizonErrors, InspectConfig, inspect_checkpoint, prediction_table, summary_table

    cfg = _checkpoint_config(args)
    tasks, max_steps, conf = None, 100, None
    try:  # the suite's quick tasks, so that --episode I is task I of `hjepa bench --quick`
        suite = suite_for_env(cfg.data.env_id, derive=False)
        tasks = make_tasks(cfg.data.env_id, suite.layouts(cfg), suite.per_bin_quick, suite.bins, seed=cfg.seed + 1,
                           env_actions=grid_env_actions(cfg))  # fmt: skip
        max_steps, conf = suite.max_steps, suite.configurator  # traced as the bench plans
    except (UnknownNameError, NotNavigationEnvError):
        pass  # no MiniGrid suite: inspect_checkpoint draws its own tasks or skips the map views
    if args.configurator:
        from hjepa.planning.configurator import RuleConfigurator

        conf = configurator_with(conf or RuleConfigurator(), args.configurator)
    icfg = InspectConfig(levels=_levels_arg(args.levels), episode=args.episode, max_steps=args.max_steps or max_steps,
                         gif=not args.no_gif, seed=args.seed, configurator=conf)  # fmt: skip
    report = inspect_checkpoint(args.checkpoint, args.out, icfg, tasks, args.data, progress=console.is_terminal)
    console.print(prediction_table([HorizonErrors(**r) for r in report.doc["prediction"]]))
    console.print(summary_table(report.doc))
    for note in report.doc["notes"]:
        console.print(f"[bold]note:[/bold] {escape(note)}", soft_wrap=True)
    console.print(f"Wrote {Path(args.out) / 'inspect.md'}, inspect.json and plots/ ({len(report.files)} files).")


def cmd_report(args: argparse.Namespace, console: Console) -> None:
    from hjepa.io import write_text
    from hjepa.report import read_results, report_markdown

    text = report_markdown([(run, read_results(run)) for run in args.runs])
    if args.out:
        write_text(Path(args.out), text + "\n")
        console.print(f"Wrote {args.out} ({len(args.runs)} run(s)).")
    else:
        print(text)  # plain: rich would wrap the table's lines


def cmd_probe(args: argparse.Namespace, console: Console) -> None:
    from hjepa.experiments.probe_cli import cmd_probe as run_probe

    run_probe(args, console)


COMMANDS: dict[str, Callable[[argparse.Namespace, Console], None]] = {
    "run": cmd_run,
    "collect": cmd_collect,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "bench": cmd_bench,
    "inspect": cmd_inspect,
    "report": cmd_report,
    "probe": cmd_probe,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hjepa`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    console, err = make_console(), make_console(stderr=True)
    try:
        COMMANDS[args.command](args, console)
    except HJEPAError as exc:
        if args.debug:
            raise
        err.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as exc:  # an hjepa bug: say so plainly, traceback on request
        if args.debug:
            raise
        err.print(f"[bold red]internal error:[/bold red] {escape(f'{type(exc).__name__}: {exc}')}. "
                  "Run again with --debug for the traceback.", highlight=False, soft_wrap=True)  # fmt: skip
        return EXIT_INTERNAL_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
