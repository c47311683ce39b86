"""``python -m zohw.explore --default --out docs/explore_default [--readme README.md]``: the
default study (``make explore``), or any grid of ``zohw explore`` with ``--out PREFIX``.

The default grid (:data:`DEFAULT_GRID`): every registered strategy at its default knobs,
P ∈ {4, 16, 64}, B = 8, targets xilinx7, ice40 and asic, digits accuracy after 10 000 steps
with seeds 1, 2, 3. Writes ``PREFIX.json``, ``PREFIX.csv``, ``PREFIX.md``, ``PREFIX_lut.png``
and ``PREFIX_power.png``; ``--readme FILE`` replaces the text between ``<!-- explore:begin -->``
and ``<!-- explore:end -->`` in FILE by the Pareto tables, the verdict and the plots.
``--render-only`` re-renders everything from an existing ``PREFIX.json``.
"""

import json
import os
import shlex
import sys
from pathlib import Path

from zohw.cli import ZohwParser
from zohw.commands.explore import (add_explore_options, grid_from_args, jobs_of, record_argv,
                                   summary_line, write_outputs)
from zohw.errors import ConfigError, UsageError

#: The default study's options (``make explore``).
DEFAULT_GRID = ("--rng", "all", "--lanes", "4,16,64", "--target", "xilinx7,ice40,asic",
                "--seeds", "1,2,3", "--steps", "10000", "--dataset", "digits")


def build_parser():
    p = ZohwParser(prog="python -m zohw.explore", description=__doc__.splitlines()[0])
    p.add_argument("--default", action="store_true",
                   help=f"the default study: {' '.join(DEFAULT_GRID)}")
    p.add_argument("--out", required=True, metavar="PREFIX",
                   help="write PREFIX.json, .csv, .md, _lut.png and _power.png")
    p.add_argument("--readme", metavar="FILE", help="replace the explore block of FILE")
    p.add_argument("--render-only", action="store_true",
                   help="re-render the outputs from PREFIX.json")
    add_explore_options(p)
    return p


def _paths(prefix):
    prefix = Path(prefix)
    return {"json_path": prefix.with_name(prefix.name + ".json"),
            "csv_path": prefix.with_name(prefix.name + ".csv"),
            "markdown_path": prefix.with_name(prefix.name + ".md"),
            "lut_png": prefix.with_name(prefix.name + "_lut.png"),
            "power_png": prefix.with_name(prefix.name + "_power.png")}


def main(argv=None):
    from zohw import signals

    with signals.installed():
        try:
            return _main(argv)
        except (ConfigError, UsageError) as exc:
            print(f"python -m zohw.explore: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as exc:
            what, code = signals.outcome(exc)
            print(f"python -m zohw.explore: {what}; finished tasks are cached", file=sys.stderr)
            return code


def _main(argv):
    from zohw.explore import report as rp

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.default:
        args = parser.parse_args([*DEFAULT_GRID, *argv])
    paths = _paths(args.out)
    if args.readme:
        text = Path(args.readme).read_text() if Path(args.readme).is_file() else ""
        if rp.BEGIN not in text or rp.END not in text:
            raise UsageError(f"readme {args.readme} has no {rp.BEGIN} … {rp.END} block")
    if args.render_only:
        report = json.loads(paths["json_path"].read_text())
    else:
        from zohw.explore.executors import make_executor
        from zohw.explore.grid import expand
        from zohw.explore.runner import explore
        from zohw.io import check_output_path

        grid = grid_from_args(args)
        expand(grid)
        jobs = jobs_of(args)
        check_output_path("--out", paths["json_path"])
        executor = make_executor(args.scheduler, jobs)
        report = explore(grid, executor,
                         cache_dir=Path(args.cache_dir) if args.cache_dir else None,
                         use_cache=not args.no_cache, progress=not args.quiet)
        cmd = ["python", "-m", "zohw.explore"]
        cmd += ["--default"] if args.default else record_argv(args, grid)
        cmd += ["--out", str(args.out)] + (["--readme", args.readme] if args.readme else [])
        report["command"] = " ".join(shlex.quote(a) for a in cmd)
    written = write_outputs(report, **paths)
    if args.readme:
        base = Path(args.readme).resolve().parent
        plots = [(title, os.path.relpath(paths[k].resolve(), base)) for title, k in
                 (("accuracy against resources", "lut_png"),
                  ("accuracy against power", "power_png"))]
        rp.update_readme(args.readme, report, plots)
        written.append(args.readme)
    if args.render_only:
        print(f"python -m zohw.explore: re-rendered {len(report['rows'])} points from "
              f"{paths['json_path']}; wrote {', '.join(map(str, written))}")
    else:
        print(summary_line("python -m zohw.explore", report, written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
