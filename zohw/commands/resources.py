"""``zohw resources``: LUT/FF/carry/RAM/DSP (and Fmax) of every RNG strategy's perturbation
engine at equal throughput, from Yosys ``stat -json``; JSON, Markdown and a PNG plot."""

import os
import resource
import shlex
import sys
import time

from zohw.config import EngineConfig, SCALINGS, SOURCES

from ._engine_options import one_line_errors


def register(subparsers):
    p = one_line_errors(subparsers.add_parser(
        "resources", help="synthesize every RNG strategy and report resources",
        description=__doc__))
    d = EngineConfig()
    p.add_argument("--rng", default="all", metavar="all|S1,S2,…",
                   help="strategies, each optionally strategy:scaling (default all); the "
                        "Gaussian baselines gauss-clt and gauss-icdf are always included")
    p.add_argument("--target", default="xilinx7,ice40,ecp5", metavar="T1,T2,…",
                   help="xilinx7, ice40, ecp5 (default all three)")
    p.add_argument("--lanes", default=str(d.lanes), metavar="P", help=f"default {d.lanes}")
    p.add_argument("--width", default=str(d.width), metavar="B", help=f"default {d.width}")
    p.add_argument("--pool", default=str(d.pool), metavar="N", help=f"default {d.pool}")
    p.add_argument("--scaling", default=None, metavar="MODE",
                   help=f"{', '.join(SCALINGS)}: applied to every strategy that accepts it "
                        "(default: each strategy's own default)")
    p.add_argument("--source", default=d.source, metavar="SRC",
                   help=f"{', '.join(SOURCES)} (default {d.source})")
    p.add_argument("--clt-k", default=str(d.clt_k), metavar="K",
                   help=f"uniforms per gauss-clt word (default {d.clt_k})")
    p.add_argument("--icdf-bits", default=None, metavar="BITS",
                   help="gauss-icdf table index bits (default min(B-1, 8))")
    p.add_argument("--otf-sources", default=None, metavar="R",
                   help="pezo-otf uniform sources (default max(1, P/8))")
    p.add_argument("--pool-read", default="auto", metavar="PORT",
                   help="pool read port of pezo-shift/pezo-block: comb (distributed RAM), sync "
                        "(block RAM) or auto (default: sync on ice40, which has no distributed "
                        "RAM, comb elsewhere)")
    p.add_argument("--sweep", action="append", default=[], metavar="PARAM=V1,V2,…",
                   help="scaling sweep over lanes, width, pool, clt_k, icdf_bits or "
                        "otf_sources (repeatable: the cartesian product is synthesized)")
    p.add_argument("--fmax", action="store_true",
                   help="also place and route with nextpnr (ice40: HX8K, ecp5: 85F out of "
                        "context) and report the achieved Fmax")
    p.add_argument("--json", metavar="FILE", help="write the JSON report")
    p.add_argument("--markdown", metavar="FILE", help="write the Markdown tables")
    p.add_argument("--plot", metavar="FILE.png", help="write the bar (or sweep) chart")
    p.add_argument("--jobs", default=None, metavar="N",
                   help="parallel synthesis processes (default: number of cores)")
    p.add_argument("--no-cache", action="store_true", help="re-synthesize everything")
    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="result cache (default ~/.cache/zohw/synth, or $ZOHW_CACHE_DIR)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no table on stdout")
    p.set_defaults(func=run_command)


def run_command(args):
    from zohw.resources import report as rp

    specs = rp.parse_rng(args.rng)
    targets = rp.parse_targets(args.target)
    if args.scaling is not None and args.scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {', '.join(SCALINGS)}, not {args.scaling!r}")
    base = {"lanes": rp.parse_int("lanes", args.lanes), "width": rp.parse_int("width", args.width),
            "pool": rp.parse_int("pool", args.pool), "source": args.source,
            "clt_k": rp.parse_int("clt_k", args.clt_k)}
    if args.icdf_bits is not None:
        base["icdf_bits"] = rp.parse_int("icdf_bits", args.icdf_bits)
    if args.otf_sources is not None:
        base["otf_sources"] = rp.parse_int("otf_sources", args.otf_sources)
    sweep = rp.parse_sweep(args.sweep)
    jobs_n = rp.parse_int("jobs", args.jobs, lo=1) if args.jobs is not None else None
    for opt in ("json", "markdown", "plot"):
        path = getattr(args, opt)
        if path is not None and os.path.isdir(path):
            raise ValueError(f"{opt} must be a file path, not the directory {path!r}")
    if args.plot is not None and not args.plot.lower().endswith(".png"):
        raise ValueError(f"plot must be a .png file, not {args.plot!r}")

    entries, jobs, skipped = rp.plan(specs, targets, base, sweep, args.scaling, args.pool_read)
    if not entries:
        raise ValueError("no valid configuration to synthesize")
    if args.fmax:
        from zohw.resources.synth import nextpnr_version
        for t in targets:
            if rp.TARGETS[t].nextpnr:
                try:
                    nextpnr_version(t)
                except RuntimeError as exc:
                    raise ValueError(str(exc)) from None
    load0 = os.getloadavg()[0]
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    workers = jobs_n or min(os.cpu_count() or 1, len(jobs))
    from zohw.resources.synth import SynthesisError
    try:
        results = rp.run(entries, jobs, fmax=args.fmax, workers=workers,
                         cache_dir=args.cache_dir, use_cache=not args.no_cache,
                         progress=not args.quiet)
    except SynthesisError as exc:
        # a tool failure, not a usage error: the message carries the tail of the tool's log
        print(f"zohw resources: {exc}", file=sys.stderr)
        return 1
    wall = time.monotonic() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    command = "zohw resources " + " ".join(shlex.quote(a) for a in _argv_for_record(args))
    report = rp.build_report(entries, results, targets=targets, base=base, sweep=sweep,
                             skipped=skipped, fmax=args.fmax, wall_seconds=wall,
                             command=command, pool_read=args.pool_read)
    fresh = sum(1 for r in results.values() if not r["cached"])
    report["synthesized"] = fresh
    report["cached"] = len(results) - fresh
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
    print(f"{len(results)} syntheses ({fresh} run, {len(results) - fresh} cached) in "
          f"{wall:.0f} s wall, {cpu:.0f} s CPU, on {workers} processes", file=sys.stderr)
    return 0


def _argv_for_record(args):
    """The options that define the report (not where it is written)."""
    out = ["--rng", args.rng, "--target", args.target, "--lanes", args.lanes,
           "--width", args.width]
    if args.pool != str(EngineConfig.pool):
        out += ["--pool", args.pool]
    for opt in ("scaling", "icdf_bits", "otf_sources"):
        v = getattr(args, opt)
        if v is not None:
            out += [f"--{opt.replace('_', '-')}", v]
    if args.source != EngineConfig.source:
        out += ["--source", args.source]
    if args.clt_k != str(EngineConfig.clt_k):
        out += ["--clt-k", args.clt_k]
    if args.pool_read != "auto":
        out += ["--pool-read", args.pool_read]
    for s in args.sweep:
        out += ["--sweep", s]
    if args.fmax:
        out.append("--fmax")
    return out
