"""``zohw demo``: the end-to-end flow on the default configuration, in one command.

Generates the default engine's Verilog into ``out/demo/``, lints it with ``verilator -Wall``,
cross-checks it against the golden model in co-simulation, and prints a summary.
"""

import sys
import time
from pathlib import Path

from ._engine_options import one_line_errors


def register(subparsers):
    p = one_line_errors(subparsers.add_parser(
        "demo", help="generate, lint and co-simulate the default engine",
        description=__doc__.splitlines()[0].replace("``", "")))
    p.add_argument("-o", "--output", default="out/demo", metavar="DIR",
                   help="output directory (default out/demo)")
    p.add_argument("--params", type=int, default=1024, metavar="D",
                   help="weights per step (default 1024)")
    p.add_argument("--steps", type=int, default=8, help="steps (default 8)")
    p.set_defaults(func=run)


def run(args):
    from zohw.config import EngineConfig
    from zohw.io import write_json_atomic
    from zohw.progress import Spinner
    from zohw.sim.cosim import cross_check
    from zohw.sim.runner import SimulationError, verilator_lint

    from .generate import generate
    from .sim import perturb_result

    config = EngineConfig()
    out = Path(args.output)
    print(f"zohw demo: {config.summary()} (config {config.config_hash})")

    t = time.monotonic()
    manifest = generate(config, out)
    verilog = out / manifest["verilog"]
    print(f"[1/3] generated {verilog} ({verilog.stat().st_size:,} bytes) "
          f"in {time.monotonic() - t:.1f} s")

    t = time.monotonic()
    ok, output = verilator_lint(verilog.read_text(), manifest["toplevel"])
    print(f"[2/3] verilator --lint-only -Wall: {'clean' if ok else 'FAILED'} "
          f"({time.monotonic() - t:.1f} s)")
    if not ok:
        print(output, file=sys.stderr)
        return 1

    try:
        with Spinner("[3/3] co-simulation") as spinner:
            result = cross_check([config], d=args.params, steps=args.steps, bank=False,
                                 progress=lambda m: spinner.phase(f"[3/3] {m}"))
    except SimulationError as exc:
        print(f"[3/3] co-simulation failed: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    doc = perturb_result(config, result, seed=1, params=args.params, backpressure=0.25)
    write_json_atomic(out / "cosim.json", doc)
    build = (f"Verilator build {doc['build_seconds']:.1f} s" if doc["build_seconds"]
             else "Verilator model cached")
    print(f"[3/3] co-simulation: {doc['words_compared']:,} words compared over "
          f"{doc['steps']} steps and {doc['replays']} replays, {doc['mismatches']} mismatches; "
          f"{build}; {doc['cycles']:,} cycles in {doc['sim_seconds']:.1f} s "
          f"({doc['words_per_second'] or 0:,.0f} words/s)")
    for m in doc["first_mismatches"][:3]:
        print(f"  mismatch: step {m['step']} pass {m['pass']} cycle {m['cycle']} lane "
              f"{m['lane']} (index {m['index']}): expected {m['expected']}, got {m['got']}")
    print(f"{'PASS' if doc['passed'] else 'FAIL'}: results in {out}/")
    return 0 if doc["passed"] else 1
