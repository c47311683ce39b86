"""``zohw demo``: the end-to-end flow on the default configuration, in one command.

Generates the default engine's Verilog into ``out/demo/``, lints it with ``verilator -Wall``,
cross-checks it against the golden model in co-simulation, compares every strategy's resources
on xilinx7 (Yosys), trains the digits classifier in hardware arithmetic (golden model, beside
float Gaussian MeZO), co-simulates the RTL trainer for a few steps, and prints a summary.
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
    p.add_argument("--train-steps", type=int, default=2000, metavar="T",
                   help="golden training steps (default 2000)")
    p.add_argument("--cosim-steps", type=int, default=20, metavar="T",
                   help="RTL trainer co-simulation steps (default 20)")
    p.set_defaults(func=run)


def check_args(args):
    """Every option checked before the first step runs (UsageError naming the option)."""
    from zohw.errors import UsageError
    from zohw.io import check_output_path

    from .sim import MAX_WORDS

    for name in ("params", "steps", "train_steps", "cosim_steps"):
        value = getattr(args, name)
        if value < 1:
            raise UsageError(f"{name.replace('_', '-')} must be at least 1, not {value}")
    if args.params * args.steps > MAX_WORDS:
        raise UsageError(f"params x steps must be at most {MAX_WORDS} words, not "
                         f"{args.params} x {args.steps} = {args.params * args.steps}")
    _check_training(args)
    check_output_path("-o/--output", args.output, directory=True, create_parents=True)


def _check_training(args):
    """Steps 5 and 6 validated now, not after the first four: the trainer configurations
    (ConfigError naming the option) and their memory estimates (zohw.limits)."""
    from zohw.errors import ConfigError, UsageError
    from zohw.limits import check_memory, golden_train_estimate, trainer_cosim_estimate
    from zohw.sim.trainer import CHECKPOINT_EVERY
    from zohw.train_config import TrainerConfig

    configs = []
    for option, steps in (("train-steps", args.train_steps), ("cosim-steps", args.cosim_steps)):
        try:
            configs.append(TrainerConfig(steps=steps))
        except ConfigError as exc:
            raise UsageError(f"{option}: {exc}") from None
    golden, cosim = configs
    check_memory(golden_train_estimate(golden))
    check_memory(trainer_cosim_estimate(cosim, checkpoints=(cosim.steps - 1) // CHECKPOINT_EVERY))


def run(args):
    check_args(args)
    from zohw.config import EngineConfig
    from zohw.io import write_json_atomic
    from zohw.progress import Spinner
    from zohw.sim.engine import cross_check
    from zohw.sim.build import SimulationError, verilator_lint

    from .generate import generate
    from .sim import perturb_result

    config = EngineConfig()
    out = Path(args.output)
    print(f"zohw demo: {config.summary()} (config {config.config_hash})")

    t = time.monotonic()
    manifest = generate(config, out)
    verilog = out / manifest["verilog"]
    print(f"[1/6] generated {verilog} ({verilog.stat().st_size:,} bytes) "
          f"in {time.monotonic() - t:.1f} s")

    t = time.monotonic()
    ok, output = verilator_lint(verilog.read_text(), manifest["toplevel"])
    print(f"[2/6] verilator --lint-only -Wall: {'clean' if ok else 'FAILED'} "
          f"({time.monotonic() - t:.1f} s)")
    if not ok:
        print(output, file=sys.stderr)
        return 1

    try:
        with Spinner("[3/6] co-simulation") as spinner:
            result = cross_check([config], d=args.params, steps=args.steps, bank=False,
                                 progress=lambda m: spinner.phase(f"[3/6] {m}"))
    except SimulationError as exc:
        print(f"[3/6] co-simulation failed: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    doc = perturb_result(config, result, seed=1, params=args.params, backpressure=0.25)
    write_json_atomic(out / "cosim.json", doc)
    build = (f"Verilator build {doc['build_seconds']:.1f} s" if doc["build_seconds"]
             else "Verilator model cached")
    print(f"[3/6] co-simulation: {doc['words_compared']:,} words compared over "
          f"{doc['steps']} steps and {doc['replays']} replays, {doc['mismatches']} mismatches; "
          f"{build}; {doc['cycles']:,} cycles in {doc['sim_seconds']:.1f} s "
          f"({doc['words_per_second'] or 0:,.0f} words/s)")
    for m in doc["first_mismatches"][:3]:
        print(f"  mismatch: step {m['step']} pass {m['pass']} cycle {m['cycle']} lane "
              f"{m['lane']} (index {m['index']}): expected {m['expected']}, got {m['got']}")
    if not doc["passed"]:
        print(f"FAIL: results in {out}/")
        return 1
    return _demo_system(args, out)


def _demo_system(args, out):
    """Steps 4-6: resources, training in hardware arithmetic, RTL trainer co-simulation —
    each through its own command, so the demo shows exactly what the commands do."""
    import json

    from zohw.cli import main

    def load(name):
        return json.loads((out / name).read_text())

    # steps 4-6 show their own progress bars (no phase silent for more than a few seconds)
    print("[4/6] resources: every strategy on xilinx7 at P = 16, B = 8 (Yosys) ...", flush=True)
    rc = main(["resources", "--rng", "all", "--target", "xilinx7", "--lanes", "16",
               "--width", "8", "--json", str(out / "resources.json"),
               "--markdown", str(out / "resources.md"), "--plot", str(out / "resources.png")])
    if rc:
        return rc
    rows = {r["strategy"]: r for r in load("resources.json")["rows"]}
    # LUTs as logic and as distributed RAM (LUTRAM) apart, as the README's table has them
    print("      " + ", ".join(
        f"{s} {r['lut']} LUT" + (f" + {r['lutram']} LUTRAM" if r.get("lutram") else "")
        + f" {r['ff']} FF" for s, r in rows.items()))

    print(f"[5/6] training digits for {args.train_steps} steps in hardware arithmetic "
          f"(pezo-otf) beside float Gaussian MeZO ...", flush=True)
    rc = main(["train", "--rng", "pezo-otf", "--steps", str(args.train_steps),
               "--reference", "float-gauss", "--json", str(out / "train.json"),
               "--plot", str(out / "train.png")])
    if rc:
        return rc
    train = load("train.json")
    ref = train.get("references", {}).get("float-gauss", {})
    print(f"      test accuracy {train['test_accuracy']:.3f} (float MeZO "
          f"{ref.get('test_accuracy', float('nan')):.3f}); plot {out / 'train.png'}")

    print(f"[6/6] RTL trainer co-simulation, {args.cosim_steps} steps ...", flush=True)
    rc = main(["train", "--cosim", "--steps", str(args.cosim_steps),
               "--eval-every", str(args.cosim_steps), "--json", str(out / "train_cosim.json")])
    cosim = load("train_cosim.json")
    print(f"      {cosim['mismatches']} mismatches; {cosim['cycles_per_step']} cycles/step "
          f"(model {cosim['predicted_cycles_per_step']})")
    written = sorted(p.name for p in out.iterdir() if p.is_file())
    print(f"zohw demo: {'PASS' if rc == 0 else 'FAIL'}: wrote {out}/ ({', '.join(written)})")
    return rc
