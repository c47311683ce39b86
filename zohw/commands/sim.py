"""``zohw sim``: co-simulate generated RTL against the golden model (Verilator + cocotb).

``zohw sim perturb --rng STRATEGY [config options] [--seed S --params D --steps T
--backpressure F] [--dump FILE.npz] --json FILE`` builds the engine (the Verilator model is
cached), runs every step of D weights with random back-pressure and at least one replay per
step, compares every transfer with :func:`zohw.sw.perturb.golden_stream` and writes the
result. Exit code 0 when every word matches, 1 on any mismatch or simulation failure, 2 for an
invalid configuration.
"""

import sys

from zohw.io import save_npz_atomic, write_json_atomic

from ._engine_options import add_engine_options, engine_config, one_line_errors

#: Keys of the result JSON that scripts rely on (more keys may follow).
RESULT_KEYS = ("strategy", "config_hash", "words_compared", "mismatches", "steps", "replays")


def register(subparsers):
    parser = one_line_errors(subparsers.add_parser(
        "sim", help="co-simulate generated RTL against the golden model",
        description=__doc__.splitlines()[0].replace("``", "")))
    sub = parser.add_subparsers(dest="target", required=True)
    p = one_line_errors(sub.add_parser(
        "perturb", help="cross-check a perturbation engine against its golden model",
        description="Build the engine with Verilator (cached) and compare every word it "
                    "emits with zohw.sw.perturb.golden_stream."))
    add_engine_options(p)
    p.add_argument("--seed", type=int, default=1, help="seed loaded into the engine (32 bit)")
    p.add_argument("--params", type=int, default=1024, metavar="D",
                   help="weights per step, d (default 1024)")
    p.add_argument("--steps", type=int, default=8, help="steps to simulate (default 8)")
    p.add_argument("--backpressure", type=float, default=0.25, metavar="F",
                   help="probability that z.ready is low in a cycle (default 0.25)")
    p.add_argument("--tb-seed", type=int, default=0,
                   help="seed of the testbench's back-pressure and replay choices")
    p.add_argument("--dump", metavar="FILE.npz",
                   help="save the golden perturbations: z (int64 [steps, d]) and lsb")
    p.add_argument("--json", required=True, metavar="FILE", help="write the result here")
    p.set_defaults(func=run_perturb)


def _check_run_args(args):
    if not 0 <= args.seed <= 0xFFFF_FFFF:
        raise ValueError(f"seed must be a 32-bit unsigned integer, not {args.seed}")
    if args.params < 1:
        raise ValueError(f"params must be at least 1, not {args.params}")
    if args.steps < 1:
        raise ValueError(f"steps must be at least 1, not {args.steps}")
    if not 0.0 <= args.backpressure < 1.0:
        raise ValueError(f"backpressure must be in [0, 1), not {args.backpressure}")


def perturb_result(config, result, *, seed, params, backpressure):
    """The JSON document of ``zohw sim perturb`` from a :func:`cross_check` result."""
    (engine,) = result["engines"]
    return {
        "strategy": config.strategy,
        "config_hash": config.config_hash,
        "words_compared": result["words_compared"],
        "mismatches": result["mismatches"],
        "steps": result["steps"],
        "replays": result["replays"],
        "config": config.as_dict(),
        "summary": config.summary(),
        "seed": seed,
        "params": params,
        "backpressure": backpressure,
        "cycles": result["cycles"],
        "load_cycles": result["load_cycles"],
        "first_mismatches": engine["first_mismatches"],
        "protocol_errors": result["protocol_errors"],
        "passed": result["failed"] == 0 and result["mismatches"] == 0
        and not result["protocol_errors"],
        "build_seconds": round(result["build_seconds"], 3),
        "sim_seconds": round(result["sim_seconds"], 3),
        "words_per_second": (round(result["words_per_second"], 1)
                             if result["words_per_second"] else None),
    }


def run_perturb(args):
    from zohw.cli import UsageError
    from zohw.progress import Spinner
    from zohw.sim.engine import cross_check
    from zohw.sim.build import SimulationError
    from zohw.sw.perturb import golden_perturbations

    config = engine_config(args)
    _check_run_args(args)
    try:
        with Spinner(f"zohw sim perturb {config.name}") as spinner:
            result = cross_check([config], seed=args.seed, d=args.params, steps=args.steps,
                                 backpressure=args.backpressure, rng_seed=args.tb_seed,
                                 bank=False, progress=spinner.phase)
    except SimulationError as exc:
        print(f"zohw sim perturb: simulation failed: {str(exc).splitlines()[0]}",
              file=sys.stderr)
        return 1
    doc = perturb_result(config, result, seed=args.seed, params=args.params,
                         backpressure=args.backpressure)
    try:
        write_json_atomic(args.json, doc)
        if args.dump:
            import numpy as np
            import torch

            z = golden_perturbations(config, args.seed, args.params, args.steps)
            save_npz_atomic(args.dump, z=z.to(torch.int64).numpy(), lsb=np.float64(config.lsb))
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename or 'output'}: "
                         f"{exc.strerror or exc}") from None
    status = "PASS" if doc["passed"] else "FAIL"
    print(f"{status} {config.summary()}: {doc['words_compared']} words compared over "
          f"{doc['steps']} steps and {doc['replays']} replays, {doc['mismatches']} mismatches")
    build = (f"built in {doc['build_seconds']:.1f} s" if doc["build_seconds"]
             else "cached model")
    wps = doc["words_per_second"]
    print(f"  {build}; simulated {doc['cycles']} cycles in {doc['sim_seconds']:.1f} s"
          + (f" ({wps:,.0f} words/s)" if wps else ""))
    for m in doc["first_mismatches"][:3]:
        print(f"  mismatch: step {m['step']} pass {m['pass']} cycle {m['cycle']} lane "
              f"{m['lane']} (index {m['index']}): expected {m['expected']}, got {m['got']}")
    for p in doc["protocol_errors"][:3]:
        print(f"  protocol error at cycle {p['cycle']}: {p['message']}")
    return 0 if doc["passed"] else 1
