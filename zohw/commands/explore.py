"""``zohw explore``: evaluate a grid of engines — strategies × their knobs × P × B × N ×
targets × seeds — for resources (LUT/FF/RAM/DSP, NAND2 gate equivalents), the power proxy,
accuracy in hardware arithmetic, cycles per step and writes per weight; JSON/CSV rows, a
Markdown summary with the Pareto fronts, and plots. Every task is cached, so an interrupted or
extended sweep computes only what is new; ``--scheduler`` runs it on a Dask cluster."""

import shlex
import sys

from zohw.config import EngineConfig
from zohw.configbase import add_options, options_to_kwargs
from zohw.errors import UsageError
from zohw.io import check_output_path
from zohw.strategies import STRATEGIES

__all__ = ["register", "add_explore_options", "grid_from_args", "run_command", "TRAINER_FIELDS"]

#: TrainerConfig fields a grid may set for every training (those the configuration has).
_TRAINER_CANDIDATES = ("dataset", "input_pool", "hidden", "loss", "update", "batch")


def _trainer_fields():
    from zohw.train_config import TrainerConfig

    meta = TrainerConfig.fields_meta()
    return tuple(n for n in _TRAINER_CANDIDATES if n in meta and not meta[n].nested)


TRAINER_FIELDS = _trainer_fields()
#: Targets, seeds and steps when not given (the default study's).
DEFAULT_TARGETS = "xilinx7,ice40,asic"
DEFAULT_SEEDS = "1,2,3"


def _axis_help(axis):
    from zohw.explore.grid import axis_applies

    owners = [s for s in STRATEGIES if axis_applies(axis, s)]
    scope = "" if len(owners) == len(STRATEGIES) else f"; varies {', '.join(owners)} only"
    return f"comma list: {EngineConfig.describe(axis)}{scope}"


def add_explore_options(p):
    """The grid, run and output options (shared with ``python -m zohw.explore``)."""
    from zohw.explore.grid import AXES
    from zohw.resources.targets import TARGETS
    from zohw.train_config import TrainerConfig

    g = p.add_argument_group("grid (comma lists; every combination is a point)")
    g.add_argument("--rng", default="all", metavar="all|S1,S2,…",
                   help=f"strategies: all, or a list of {', '.join(STRATEGIES)}")
    meta = EngineConfig.fields_meta()
    for axis in AXES:
        g.add_argument(meta[axis].flag or f"--{axis.replace('_', '-')}", dest=f"axis_{axis}",
                       default=None, metavar=f"{meta[axis].metavar or axis.upper()},…",
                       help=_axis_help(axis))
    g.add_argument("--target", default=DEFAULT_TARGETS, metavar="T1,T2,…",
                   help=f"targets: {', '.join(TARGETS)} (default {DEFAULT_TARGETS})")
    g.add_argument("--seeds", default=DEFAULT_SEEDS, metavar="S1,S2,…",
                   help=f"engine seeds of the trainings (default {DEFAULT_SEEDS}); accuracy is "
                        "their mean")
    g.add_argument("--steps", default=None, metavar="T",
                   help=TrainerConfig.describe("steps"))
    add_options(g, TrainerConfig, TRAINER_FIELDS)
    r = p.add_argument_group("running")
    r.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="run every task on this Dask distributed scheduler (default: a local "
                        "process pool)")
    r.add_argument("--jobs", default=None, metavar="N",
                   help="local worker processes (default 2; 1: in this process)")
    r.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="result cache (default $ZOHW_CACHE/explore)")
    r.add_argument("--no-cache", action="store_true",
                   help="recompute every task (results are not stored either)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")


def register(subparsers):
    p = subparsers.add_parser("explore", help="evaluate a design-space grid, with Pareto "
                              "fronts", description=__doc__)
    add_explore_options(p)
    o = p.add_argument_group("outputs")
    o.add_argument("--json", required=True, metavar="FILE", help="the rows and the grid")
    o.add_argument("--csv", metavar="FILE", help="one line per point")
    o.add_argument("--markdown", metavar="FILE", help="Pareto tables, verdict, every point")
    o.add_argument("--plot-dir", metavar="DIR",
                   help="accuracy_vs_lut.png and accuracy_vs_power.png in DIR")
    p.set_defaults(func=run_command)


def grid_from_args(args):
    """The :class:`~zohw.explore.grid.Grid` the options describe (UsageError/ConfigError)."""
    from zohw.explore.grid import (AXES, Grid, parse_axis, parse_rng, parse_seeds,
                                   parse_targets)
    from zohw.train_config import TrainerConfig

    strategies = parse_rng(args.rng)
    axes = {a: parse_axis(a, getattr(args, f"axis_{a}")) for a in AXES
            if getattr(args, f"axis_{a}", None) is not None}
    targets = parse_targets(args.target)
    seeds = parse_seeds(args.seeds)
    trainer = options_to_kwargs(args, TrainerConfig, TRAINER_FIELDS)
    steps = TrainerConfig.__dataclass_fields__["steps"].default
    if args.steps is not None:
        try:
            steps = int(args.steps, 10)
        except ValueError:
            raise UsageError(f"steps must be an integer, not {args.steps!r}") from None
    # the training configuration is checked once, before any work
    base = TrainerConfig(steps=steps, **trainer)
    trainer = {k: getattr(base, k) for k in trainer}
    if "dataset" in trainer:
        _check_dataset(base)
    return Grid(strategies, axes, targets, seeds, steps, trainer).check()


def _check_dataset(cfg):
    try:
        from zohw.sw.data import dataset_info
    except ImportError:  # pragma: no cover - the data-set registry not there yet
        return
    dataset_info(cfg.dataset, **({"input_pool": cfg.input_pool}
                                 if hasattr(cfg, "input_pool") else {}))


def jobs_of(args):
    if args.jobs is None:
        return None
    try:
        jobs = int(args.jobs, 10)
    except ValueError:
        raise UsageError(f"jobs must be an integer, not {args.jobs!r}") from None
    if jobs < 1:
        raise UsageError(f"jobs must be at least 1, not {jobs}")
    return jobs


def record_argv(args, grid):
    """The options that define the results (not where they are written)."""
    out = ["--rng", args.rng]
    for axis, values in grid.axes.items():
        flag = EngineConfig.fields_meta()[axis].flag or f"--{axis.replace('_', '-')}"
        out += [flag, ",".join(map(str, values))]
    out += ["--target", ",".join(grid.targets), "--steps", str(grid.steps),
            "--seeds", ",".join(map(str, grid.seeds))]
    for k, v in grid.trainer.items():
        if isinstance(v, (tuple, list)):
            v = ",".join(map(str, v)) or "none"
        out += [f"--{k.replace('_', '-')}", str(v)]
    return out


def run_command(args):
    from zohw.explore import report as rp
    from zohw.explore.executors import make_executor
    from zohw.explore.grid import expand
    from zohw.explore.runner import explore

    grid = grid_from_args(args)
    expand(grid)                        # a grid with no valid point fails here, before work
    jobs = jobs_of(args)
    check_output_path("--json", args.json)
    for opt in ("csv", "markdown"):
        if getattr(args, opt) is not None:
            check_output_path(f"--{opt}", getattr(args, opt))
    if args.plot_dir is not None:
        check_output_path("--plot-dir", args.plot_dir, directory=True, create_parents=True)
    if args.cache_dir is not None:
        check_output_path("--cache-dir", args.cache_dir, directory=True, create_parents=True)
    executor = make_executor(args.scheduler, jobs)
    from pathlib import Path

    report = explore(grid, executor, cache_dir=Path(args.cache_dir) if args.cache_dir else None,
                     use_cache=not args.no_cache, progress=not args.quiet)
    report["command"] = "zohw explore " + " ".join(shlex.quote(a)
                                                   for a in record_argv(args, grid))
    written = write_outputs(report, json_path=args.json, csv_path=args.csv,
                            markdown_path=args.markdown, plot_dir=args.plot_dir)
    print(summary_line("zohw explore", report, written))
    return 0


def write_outputs(report, *, json_path=None, csv_path=None, markdown_path=None, plot_dir=None,
                  lut_png=None, power_png=None):
    """Write the requested files; returns their paths."""
    import os
    from pathlib import Path

    from zohw.explore import report as rp

    written = []
    if plot_dir is not None:
        lut_png = Path(plot_dir) / "accuracy_vs_lut.png"
        power_png = Path(plot_dir) / "accuracy_vs_power.png"
    if lut_png or power_png:
        rp.write_plots(report, lut_png, power_png)
        written += [p for p in (lut_png, power_png) if p]
    if json_path:
        rp.write_json(json_path, report)
        written.append(json_path)
    if csv_path:
        rp.write_csv(csv_path, report)
        written.append(csv_path)
    if markdown_path:
        base = Path(markdown_path).resolve().parent
        plots = [(title, os.path.relpath(Path(p).resolve(), base)) for title, p in
                 (("accuracy against resources", lut_png),
                  ("accuracy against power", power_png)) if p]
        rp.write_markdown(markdown_path, report, plots)
        written.append(markdown_path)
    return [str(p) for p in written]


def summary_line(prog, report, written):
    t = report["tasks"]
    return (f"{prog}: {len(report['rows'])} points, {t['total']} tasks ({t['computed']} "
            f"computed, {t['cached']} cached) in {report['wall_seconds']:,.0f} s wall "
            f"({t.get('task_cpu_seconds', 0):,.0f} s CPU in tasks) on {report['executor']}; wrote {', '.join(written) or 'nothing'}")
