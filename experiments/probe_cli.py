"""``hjepa probe NAME --checkpoint C``: the probes of :mod:`hjepa.experiments.probes` from the
command line, a rich table each and ``probe.json`` with ``--out``."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from hjepa.errors import ConfigError


def add_probe_parser(sub: argparse._SubParsersAction) -> None:
    """The ``probe`` subcommand and its probes ``snap`` and ``imagine``."""
    probe = sub.add_parser("probe", help="what the imagine planner can rely on: snapped one-step predictions, "
                                         "one imagination (docs/tutorials/inspect.md)")  # fmt: skip
    names = probe.add_subparsers(dest="probe", required=True)
    snap = names.add_parser("snap", help="level 0's one-step predictions snapped on the codebook, per action")
    snap.add_argument("--layouts", default=None, help="comma-separated layout seeds (default: the first 3 held-out "
                                                      "ones of the checkpoint's data, else its layout)")  # fmt: skip
    snap.add_argument("--poses", type=int, default=80, help="random poses per layout (default 80)")
    imag = names.add_parser("imagine", help="one imagination from a start pose toward a goal cell")
    imag.add_argument("--layout", type=int, default=None, help="layout seed (default: the first held-out one)")
    imag.add_argument("--start", required=True, metavar="X,Y,D", help="start cell and heading (0 east, 1 south, ...)")
    imag.add_argument("--goal", required=True, metavar="X,Y", help="goal cell")
    for p in (snap, imag):
        p.add_argument("--checkpoint", required=True, help="a .ckpt file or a run folder")
        p.add_argument("--out", default=None, help="folder for probe.json (default: print only)")
        p.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for torch")
        p.add_argument("--seed", type=int, default=0, help="seed of the sampled poses")
        p.add_argument("--debug", action="store_true", help="show tracebacks")


def _ints(text: str, n: int | None, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or (n is not None and len(values) != n):
        raise ConfigError(f"{what} takes {n or 'some'} comma-separated integers; got '{text}'.")
    return values


def cmd_probe(args: argparse.Namespace, console: Console) -> None:
    from hjepa.checkpoint import load_module
    from hjepa.data.storage import OfflineDataset
    from hjepa.envs.oracle import LayoutOracle
    from hjepa.io import write_json
    from hjepa.planning.imagine import cell_codebook
    from hjepa.planning.imagined_memory import ImaginedMemory
    from hjepa.planning.memory import memory_observations
    from hjepa.threads import set_threads

    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}.")
    set_threads(args.threads)
    module = load_module(args.checkpoint)
    cfg, level = module.cfg, module.stack.levels[0]
    obs = memory_observations(OfflineDataset.open(module.hparams["data_path"]).obs, "imagine", "plan")
    oracle = LayoutOracle(cfg.data.env_id)
    held_out = tuple(cfg.data.exclude_layout_seeds) or (cfg.data.layout_seed,)
    if args.probe == "snap":
        doc = _snap(args, level, cell_codebook(level, obs), oracle, held_out, console)
    else:
        memory = ImaginedMemory(module.stack, obs)
        doc = _imagine(args, module.stack, memory, oracle, held_out[0], console)
    if args.out:
        write_json(Path(args.out) / "probe.json", {"probe": args.probe, "checkpoint": str(args.checkpoint), **doc})
        console.print(f"Wrote {Path(args.out) / 'probe.json'}.")


def _snap(args, level, book, oracle, held_out, console: Console) -> dict:
    from hjepa.experiments.probes import snap_probe

    if args.poses < 1:
        raise ConfigError(f"--poses must be >= 1, got {args.poses}.")
    layouts = _ints(args.layouts, None, "--layouts") if args.layouts else held_out[:3]
    found = snap_probe(level, book, oracle, layouts, args.poses, args.seed)
    table = Table(title=f"Snapped one-step predictions, layouts {', '.join(map(str, layouts))}")
    for col in ("action", "predictions", "snapped right", "share"):
        table.add_column(col, justify="right")
    for name, right, total in zip(found.actions, found.right, found.total):
        table.add_row(name, str(total), str(right), f"{right / max(total, 1):.3f}")
    console.print(table)
    if found.wrong:
        wrong = Table(title="Most common wrong cells (codebook indices; agent codes: "
                            f"{', '.join(map(str, found.agent_codes)) or 'none'})")  # fmt: skip
        for col in ("action", "cells from the agent", "before", "true", "predicted", "count"):
            wrong.add_column(col, justify="right")
        for w in found.wrong:
            wrong.add_row(w.action, str(w.distance), str(w.before), str(w.true), str(w.predicted), str(w.count))
        console.print(wrong)
    return {"layouts": list(layouts), **found.as_dict()}


def _imagine(args, stack, memory, oracle, default_layout: int, console: Console) -> dict:
    from hjepa.experiments.probes import imagine_probe

    layout = default_layout if args.layout is None else args.layout
    start, goal = _ints(args.start, 3, "--start"), _ints(args.goal, 2, "--goal")
    found = imagine_probe(stack, memory, oracle, layout, start, goal)
    table = Table(title=f"Imagination on layout {layout} from {start} toward {goal}")
    for key in ("nodes", "map units", "seconds", "goal found", "imagined distance", "agent poses", "complete"):
        table.add_column(key, justify="right")
    table.add_row(*(str(v) for v in found.as_dict().values()))
    console.print(table)
    return {"layout": layout, "start": list(start), "goal": list(goal), **found.as_dict()}
