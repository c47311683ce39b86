"""``zohw resources``: LUT/FF/carry/RAM/DSP (and Fmax) of every RNG strategy's perturbation
engine at equal throughput, from Yosys ``stat -json``; on the ``asic`` target NAND2-equivalent
gates (and µm² with ``--liberty``); with ``--power`` a relative dynamic-power proxy from
gate-level switching activity; JSON, Markdown and a PNG plot. ``--design trainer``: the whole
default digits trainer with each engine on ``asic-sram`` (GE, memory bits; with ``--power`` its
power proxy over one training step, checked against the golden model)."""

import os
import resource
import shlex
import sys
import time

from zohw.config import EngineConfig, SCALINGS
from zohw.configbase import add_options, options_to_kwargs
from zohw.errors import UsageError
from zohw.io import check_output_path
from zohw.resources.targets import DEFAULT_TARGETS, TARGETS
from zohw.strategies import KNOBS

from ._engine_options import one_line_errors


def _targets_help():
    return (", ".join(f"{t.name} ({t.title})" for t in TARGETS.values())
            + f"; default {','.join(DEFAULT_TARGETS)}")


def _pool_read_help():
    auto = {}
    for t in TARGETS.values():
        auto.setdefault(t.pool_read, []).append(t.name)
    per_target = "; ".join(f"{mode} on {', '.join(names)}" for mode, names in auto.items())
    return ("pool read port of the pool strategies: comb (asynchronous: distributed RAM), sync "
            f"(registered: block RAM) or auto (default: what each target suits, {per_target})")


def _fmax_help():
    flows = "; ".join(f"{t.name}: {t.nextpnr.part}, {t.fmax_mhz} MHz goal"
                      for t in TARGETS.values() if t.nextpnr)
    return f"also place and route with nextpnr ({flows}) and report the achieved Fmax"


#: EngineConfig fields given as options (besides --scaling and --pool-read, which mean more
#: here): the sizes, the source and every strategy knob.
SIZE_FIELDS = ("lanes", "width", "pool")
FIELDS = (*SIZE_FIELDS, "source", *KNOBS)


def register(subparsers):
    from zohw.resources.report import BASELINES, SWEEPABLE

    p = one_line_errors(subparsers.add_parser(
        "resources", help="synthesize every RNG strategy and report resources",
        description=__doc__))
    p.add_argument("--design", default="engine", metavar="engine|trainer",
                   help="what to synthesize: the perturbation engines (default) or the whole "
                        "default digits trainer with each engine (target asic-sram only: GE, "
                        "memory bits and, with --power, the power proxy over one training "
                        "step checked against the golden model; see docs/power.md)")
    p.add_argument("--rng", default="all", metavar="all|S1,S2,…",
                   help=f"strategies, each optionally strategy:scaling (default all); the "
                        f"Gaussian baselines {' and '.join(BASELINES)} are always included")
    p.add_argument("--target", default=None, metavar="T1,T2,…", help=_targets_help())
    add_options(p, EngineConfig, SIZE_FIELDS)
    p.add_argument("--scaling", default=None, metavar="MODE",
                   help=f"{', '.join(SCALINGS)}: applied to every strategy that accepts it "
                        "(default: each strategy's own default)")
    add_options(p, EngineConfig, FIELDS[len(SIZE_FIELDS):])
    p.add_argument("--pool-read", default="auto", metavar="PORT", help=_pool_read_help())
    p.add_argument("--sweep", action="append", default=[], metavar="PARAM=V1,V2,…",
                   help=f"scaling sweep over {', '.join(SWEEPABLE)} (repeatable: the "
                        f"cartesian product is synthesized)")
    p.add_argument("--fmax", action="store_true", help=_fmax_help())
    liberty_targets = ", ".join(t.name for t in TARGETS.values() if t.liberty)
    p.add_argument("--liberty", default=None, metavar="FILE.lib",
                   help=f"also map the {liberty_targets} rows to this Liberty library (e.g. "
                        "a PDK's standard cells) and report area_um2 (Yosys abc -liberty + "
                        "stat -liberty); the gate equivalents stay on zohw's generic library")
    p.add_argument("--power", action="store_true",
                   help="add a relative dynamic-power proxy per engine (gate-level toggles x "
                        "cell weight per cycle + clocked flip-flops, the trainer's step "
                        "protocol, checked against the golden stream; see docs/power.md) and "
                        "its ratio to the cheapest Gaussian baseline")
    p.add_argument("--power-cycles", default="1024", metavar="N",
                   help="cycles of the power simulation's measured window (default 1024)")
    p.add_argument("--power-seed", default="1", metavar="S",
                   help="seed the power simulation loads into the engines (default 1)")
    p.add_argument("--json", metavar="FILE", help="write the JSON report")
    p.add_argument("--markdown", metavar="FILE", help="write the Markdown tables")
    p.add_argument("--plot", metavar="FILE.png", help="write the bar (or sweep) chart")
    p.add_argument("--jobs", default=None, metavar="N",
                   help="parallel synthesis processes (default: number of cores)")
    p.add_argument("--no-cache", action="store_true", help="re-synthesize everything")
    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="result cache (default $ZOHW_CACHE/synth, ~/.cache/zohw/synth without "
                        "ZOHW_CACHE)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no table on stdout")
    p.set_defaults(func=run_command)


def run_command(args):
    from zohw.resources import report as rp

    if args.design not in DESIGNS:
        raise UsageError(f"design must be one of {', '.join(DESIGNS)}, not {args.design!r}")
    if args.design == "trainer":
        return run_trainer(args)
    if args.target is None:
        args.target = ",".join(DEFAULT_TARGETS)
    specs = rp.parse_rng(args.rng)
    targets = rp.parse_targets(args.target)
    if args.scaling is not None and args.scaling not in SCALINGS:
        raise UsageError(f"scaling must be one of {', '.join(SCALINGS)}, not {args.scaling!r}")
    base = _base(args)
    sweep = rp.parse_sweep(args.sweep)
    jobs_n = rp.parse_int("jobs", args.jobs, lo=1) if args.jobs is not None else None
    for opt, suffix in (("json", None), ("markdown", None), ("plot", ".png")):
        if getattr(args, opt) is not None:
            check_output_path(f"--{opt}", getattr(args, opt), suffix=suffix)
    if args.cache_dir is not None:
        check_output_path("--cache-dir", args.cache_dir, directory=True, create_parents=True)
    liberty = None
    if args.liberty is not None:
        from zohw.resources.asic import check_liberty
        liberty = check_liberty(args.liberty)
        if not any(rp.TARGETS[t].liberty for t in targets):
            names = ", ".join(t.name for t in rp.TARGETS.values() if t.liberty)
            raise UsageError(f"liberty applies to a cell-library target ({names}), which "
                             f"--target {args.target!r} does not name")
    power = None
    if args.power:
        power = {"cycles": rp.parse_int("power_cycles", args.power_cycles, lo=2),
                 "seed": rp.parse_int("power_seed", args.power_seed, lo=0)}
        if power["seed"] >= 1 << 32:
            raise UsageError(f"power_seed must be below 2**32, not {power['seed']}")

    entries, jobs, skipped = rp.plan(specs, targets, base, sweep, args.scaling, args.pool_read)
    if not entries:
        raise UsageError("no valid configuration to synthesize")
    if args.fmax:
        from zohw.resources.synth import nextpnr_version
        for t in targets:
            if rp.TARGETS[t].nextpnr:
                try:
                    nextpnr_version(t)
                except RuntimeError as exc:
                    raise UsageError(str(exc)) from None
    load0 = os.getloadavg()[0]
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    workers = jobs_n or min(os.cpu_count() or 1, len(jobs))
    from zohw.resources.synth import SynthesisError
    try:
        results = rp.run(entries, jobs, fmax=args.fmax, workers=workers,
                         cache_dir=args.cache_dir, use_cache=not args.no_cache,
                         progress=not args.quiet, liberty=liberty, power=power)
    except SynthesisError as exc:
        # a tool failure, not a usage error: the message carries the tail of the tool's log
        print(f"zohw resources: {exc}", file=sys.stderr)
        return 1
    wall = time.monotonic() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    command = "zohw resources " + " ".join(shlex.quote(a) for a in _argv_for_record(args, base))
    report = rp.build_report(entries, results, targets=targets, base=base, sweep=sweep,
                             skipped=skipped, fmax=args.fmax, wall_seconds=wall,
                             command=command, pool_read=args.pool_read, liberty=liberty,
                             power=power)
    synth = {k: r for k, r in results.items() if k[1] != rp.POWER}
    fresh = sum(1 for r in synth.values() if not r["cached"])
    report["synthesized"] = fresh
    report["cached"] = len(synth) - fresh
    report["machine"] = {"cpus": os.cpu_count(), "workers": workers,
                         "load_average_at_start": round(load0, 2),
                         "cpu_seconds": round(cpu, 1)}
    if args.json:
        rp.write_json(args.json, report)
    if args.markdown:
        rp.write_markdown(args.markdown, report)
    if args.plot:
        rp.write_plot(args.plot, report)
    if not args.quiet:
        print(rp.render_markdown(report))
    sims = [r for k, r in results.items() if k[1] == rp.POWER]
    sims_text = ""
    if sims:
        run_sims = sum(1 for r in sims if not r["cached"])
        sims_text = (f" + {len(sims)} power simulations ({run_sims} run, "
                     f"{len(sims) - run_sims} cached)")
    written = [getattr(args, o) for o in ("json", "markdown", "plot") if getattr(args, o)]
    print(f"{len(synth)} syntheses ({fresh} run, {len(synth) - fresh} cached){sims_text} in "
          f"{wall:.0f} s wall, {cpu:.0f} s CPU, on {workers} processes"
          + (f"; wrote {', '.join(written)}" if written else ""), file=sys.stderr)
    return 0


#: What ``--design`` may name.
DESIGNS = ("engine", "trainer")


def run_trainer(args):
    """``--design trainer``: the default digits trainer with every engine on the ``asic-sram``
    target; with ``--power`` its power proxy over one training step (docs/power.md)."""
    from zohw.resources import report as rp
    from zohw.resources import trainer_power as tp
    from zohw.train_config import TrainerConfig

    if args.target is not None and args.target != tp.TARGET:
        raise UsageError(f"target must be {tp.TARGET} with --design trainer (memories as "
                         f"macros: the trainer's sample memory would be ~400 000 flip-flops), "
                         f"not {args.target!r}")
    for opt, given in (("sweep", bool(args.sweep)), ("fmax", args.fmax),
                       ("liberty", args.liberty is not None),
                       ("power_cycles", str(args.power_cycles) != "1024"),
                       ("plot", args.plot is not None), ("jobs", args.jobs is not None)):
        if given:
            raise UsageError(f"{opt} does not apply to --design trainer (the trainer is "
                             f"measured over one training step on {tp.TARGET}, one strategy "
                             f"after another)")
    specs = rp.parse_rng(args.rng)
    if args.scaling is not None and args.scaling not in SCALINGS:
        raise UsageError(f"scaling must be one of {', '.join(SCALINGS)}, not {args.scaling!r}")
    seed = rp.parse_int("power_seed", args.power_seed, lo=0)
    if seed >= 1 << 32:
        raise UsageError(f"power_seed must be below 2**32, not {seed}")
    for opt, suffix in (("json", None), ("markdown", None)):
        if getattr(args, opt) is not None:
            check_output_path(f"--{opt}", getattr(args, opt), suffix=suffix)
    if args.cache_dir is not None:
        check_output_path("--cache-dir", args.cache_dir, directory=True, create_parents=True)
    base = _base(args)
    entries, _, _ = rp.plan(specs, [tp.TARGET], base, None, args.scaling, "auto")
    trainer = TrainerConfig(seed=seed)
    engines = {cfg.label(): cfg for _, cfg, _ in entries}
    say = (lambda msg: None) if args.quiet else (
        lambda msg: print(f"[{time.monotonic() - t0:6.0f} s] {msg}", file=sys.stderr,
                          flush=True))
    t0 = time.monotonic()
    kwargs = {"cache_dir": args.cache_dir, "use_cache": not args.no_cache, "progress": say}
    if args.power:
        rows = tp.trainer_power_rows(trainer, engines, **kwargs)
    else:
        rows = tp.trainer_area_rows(trainer, engines, **kwargs)
    wall = time.monotonic() - t0
    command = "zohw resources " + " ".join(shlex.quote(a) for a in _argv_for_record(args, base))
    report = tp.trainer_report(trainer, rows, command=command, wall_seconds=wall)
    if args.json:
        rp.write_json(args.json, report)
    text = tp.render_trainer_markdown(report)
    if args.markdown:
        from zohw.io import write_text_atomic
        write_text_atomic(args.markdown, text)
    if not args.quiet:
        print(text)
    fresh = sum(1 for r in rows.values() if not r["cached"])
    written = [getattr(args, o) for o in ("json", "markdown") if getattr(args, o)]
    what = "trainer power runs" if args.power else "trainer syntheses"
    print(f"{len(rows)} {what} ({fresh} run, {len(rows) - fresh} cached) in {wall:.0f} s "
          f"wall" + (f"; wrote {', '.join(written)}" if written else ""), file=sys.stderr)
    return 0


def _base(args):
    """The configuration fields every engine of the report shares: the given options, else
    EngineConfig's defaults (derived defaults are left to each configuration)."""
    given = options_to_kwargs(args, EngineConfig, FIELDS)
    defaults = {name: f.default for name, f in EngineConfig.__dataclass_fields__.items()}
    return {name: given.get(name, defaults[name]) for name in FIELDS
            if name in given or defaults[name] is not None}


def _argv_for_record(args, base):
    """The options that define the report (not where it is written)."""
    defaults = {name: f.default for name, f in EngineConfig.__dataclass_fields__.items()}
    out = ["--rng", args.rng, "--target", args.target or ",".join(DEFAULT_TARGETS)]
    if args.design != "engine":
        out = ["--design", args.design, "--rng", args.rng, "--target", "asic-sram"]
    for name in FIELDS:
        if name in ("lanes", "width") or (name in base and base[name] != defaults[name]):
            out += [EngineConfig.fields_meta()[name].flag or f"--{name.replace('_', '-')}",
                    str(base[name])]
    if args.scaling is not None:
        out += ["--scaling", args.scaling]
    if args.pool_read != "auto":
        out += ["--pool-read", args.pool_read]
    for s in args.sweep:
        out += ["--sweep", s]
    if args.fmax:
        out.append("--fmax")
    if args.liberty is not None:
        out += ["--liberty", args.liberty]
    if args.power:
        out.append("--power")
        if str(args.power_cycles) != "1024":
            out += ["--power-cycles", str(args.power_cycles)]
        if str(args.power_seed) != "1":
            out += ["--power-seed", str(args.power_seed)]
    return out
