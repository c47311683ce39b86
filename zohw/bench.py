"""Co-simulation and golden-model speed, measured side by side in one run.

``python -m zohw.bench --json out/bench.json`` (``make bench``) measures, on this machine:

- the trainer co-simulation (Verilator + cocotb, the default digits configuration, with
  checkpoints) in simulated cycles per second;
- the engine co-simulation (the RTL harness of :mod:`zohw.sim.engine_harness`, every word
  compared, random back-pressure 0.25) in words and cycles per second for ``pezo-otf``,
  ``pezo-block`` and ``gauss-clt``;
- the same engines in Amaranth's Python simulator (cycles per second, the same step protocol
  and back-pressure), for the ratio;
- the golden trainer's steps per second against the float MeZO reference
  (:func:`zohw.sw.reference.train_reference` ``float-gauss``) on the same steps.

Absolute numbers depend on the machine and its load; the JSON's ``ratios`` are what to quote.
Verilator builds are cached (``build_seconds`` is 0.0 for a cached model); the rates exclude
builds and simulator start-up (``run_wall_seconds`` of the simulated run alone).
"""

import argparse
import os
import platform
import random
import sys
import time

__all__ = ["ENGINE_STRATEGIES", "bench_engine_cosim", "bench_engine_amaranth",
           "bench_trainer_cosim", "bench_golden", "run", "main"]

ENGINE_STRATEGIES = ("pezo-otf", "pezo-block", "gauss-clt")


def bench_engine_cosim(strategy, *, d=1024, steps=2000, backpressure=0.25):
    """Words and cycles per second of the engine co-simulation of ``strategy`` (defaults)."""
    from zohw.config import EngineConfig
    from zohw.sim.engine import cross_check

    config = EngineConfig(strategy=strategy)
    r = cross_check([config], d=d, steps=steps, seed=1, backpressure=backpressure,
                    bank=False)
    return {"config": config.name, "lanes": config.lanes, "d": d, "steps": r["steps"],
            "replays": r["replays"], "words_compared": r["words_compared"],
            "mismatches": r["mismatches"], "cycles": r["cycles"],
            "run_wall_seconds": r["run_wall_seconds"], "sim_seconds": r["sim_seconds"],
            "build_seconds": r["build_seconds"], "words_per_second": r["words_per_second"],
            "cycles_per_second": r["cycles_per_second"],
            "passed": r["failed"] == 0 and r["mismatches"] == 0}


def bench_engine_amaranth(strategy, *, d=1024, steps=4, backpressure=0.25, seed=1):
    """Cycles (and words) per second of the same engine in Amaranth's Python simulator: load,
    then ``steps`` steps of one pass each under the same random back-pressure."""
    from amaranth.sim import Simulator

    from zohw.config import EngineConfig
    from zohw.hw.engine import PerturbationEngine
    from zohw.sw.perturb import cycles_per_step

    config = EngineConfig(strategy=strategy)
    dut = PerturbationEngine(config)
    C = cycles_per_step(config, d)
    rng = random.Random(seed)
    counts = {"cycles": 0, "words": 0}

    async def bench(ctx):
        ctx.set(dut.seed, seed)
        ctx.set(dut.load, 1)
        await ctx.tick()
        ctx.set(dut.load, 0)
        while ctx.get(dut.busy):
            await ctx.tick()
            counts["cycles"] += 1
        for _ in range(steps):
            taken = 0
            while taken < C:
                ready = rng.random() >= backpressure
                ctx.set(dut.z.ready, ready)
                valid = ctx.get(dut.z.valid)
                await ctx.tick()
                counts["cycles"] += 1
                taken += ready and valid
            ctx.set(dut.z.ready, 0)
            ctx.set(dut.advance, 1)
            await ctx.tick()
            ctx.set(dut.advance, 0)
            counts["cycles"] += 1
        counts["words"] = steps * C * config.lanes

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    t0 = time.perf_counter()
    sim.run()
    wall = time.perf_counter() - t0
    return {"config": config.name, "steps": steps, "cycles": counts["cycles"],
            "wall_seconds": wall, "cycles_per_second": counts["cycles"] / wall,
            "words_per_second": counts["words"] / wall}


def bench_trainer_cosim(*, steps=2000, checkpoint_every=1000):
    """Simulated cycles per second of the default trainer's co-simulation."""
    from zohw.sim.trainer import run_trainer_cosim
    from zohw.train_config import TrainerConfig

    r = run_trainer_cosim(TrainerConfig(), steps, checkpoint_every=checkpoint_every)
    return {"steps": r["steps"], "cycles": r["run_cycles"], "compared": r["compared"],
            "mismatches": r["mismatches"], "checkpoints": r["checkpoints"],
            "run_wall_seconds": r["run_wall_seconds"], "sim_seconds": r["sim_seconds"],
            "build_seconds": r["build_seconds"], "golden_seconds": r["golden_seconds"],
            "cycles_per_second": r["sim_cycles_per_second"], "passed": r["passed"]}


def bench_golden(*, steps=2000):
    """Steps per second of the integer golden trainer and of the float MeZO reference on the
    default configuration (same steps, same data)."""
    from zohw.sw.data import load_digits_split
    from zohw.sw.reference import train_reference
    from zohw.sw.train import train_golden
    from zohw.train_config import TrainerConfig

    cfg = TrainerConfig().replace(steps=steps, eval_every=steps)
    data = load_digits_split(cfg.cim.input_bits)
    out = {"steps": steps}
    for name, fn in (("golden", lambda: train_golden(cfg, data)),
                     ("float_mezo", lambda: train_reference(cfg, "float-gauss", data))):
        t0 = time.perf_counter()
        fn()
        wall = time.perf_counter() - t0
        out[name] = {"seconds": wall, "steps_per_second": steps / wall}
    return out


def run(*, engine_steps=2000, amaranth_steps=4, trainer_steps=2000, golden_steps=2000,
        say=print):
    """Every measurement; returns the JSON document (with ``ratios``)."""
    doc = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                       "affinity": len(os.sched_getaffinity(0)),
                       "load_average": list(os.getloadavg())}}
    t0 = time.perf_counter()
    say("trainer co-simulation")
    doc["trainer_cosim"] = bench_trainer_cosim(steps=trainer_steps)
    doc["engine_cosim"], doc["engine_amaranth"] = {}, {}
    for s in ENGINE_STRATEGIES:
        say(f"engine co-simulation {s}")
        doc["engine_cosim"][s] = bench_engine_cosim(s, steps=engine_steps)
        say(f"engine in the Amaranth simulator {s}")
        doc["engine_amaranth"][s] = bench_engine_amaranth(s, steps=amaranth_steps)
    say("golden trainer and float MeZO")
    doc["golden"] = bench_golden(steps=golden_steps)
    g = doc["golden"]
    doc["ratios"] = {
        "engine_cosim_over_amaranth_cycles": {
            s: doc["engine_cosim"][s]["cycles_per_second"]
            / doc["engine_amaranth"][s]["cycles_per_second"] for s in ENGINE_STRATEGIES},
        "trainer_cosim_over_engine_cosim_cycles": doc["trainer_cosim"]["cycles_per_second"]
        / doc["engine_cosim"]["pezo-otf"]["cycles_per_second"],
        "golden_over_float_mezo_steps": g["golden"]["steps_per_second"]
        / g["float_mezo"]["steps_per_second"],
    }
    doc["passed"] = doc["trainer_cosim"]["passed"] and all(
        e["passed"] for e in doc["engine_cosim"].values())
    doc["bench_seconds"] = time.perf_counter() - t0
    doc["machine"]["load_average_after"] = list(os.getloadavg())
    return doc


def summary(doc):
    """One line: the headline rates and ratios."""
    t, e, r = doc["trainer_cosim"], doc["engine_cosim"], doc["ratios"]
    words = ", ".join(f"{s} {e[s]['words_per_second'] / 1e6:.2f}" for s in ENGINE_STRATEGIES)
    amar = min(r["engine_cosim_over_amaranth_cycles"].values())
    return (f"{'PASS' if doc['passed'] else 'FAIL'} trainer co-sim "
            f"{t['cycles_per_second'] / 1e3:.0f} k cycles/s; engine co-sim M words/s: {words}; "
            f"engine Verilator/Amaranth >= {amar:.0f}x; golden/float MeZO "
            f"{r['golden_over_float_mezo_steps']:.2f}x")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m zohw.bench", description=__doc__.splitlines()[0])
    p.add_argument("--json", required=True, metavar="FILE", help="write the measurements here")
    p.add_argument("--engine-steps", type=int, default=2000, metavar="N",
                   help="steps of each engine co-simulation (default 2000)")
    p.add_argument("--trainer-steps", type=int, default=2000, metavar="N",
                   help="steps of the trainer co-simulation (default 2000)")
    p.add_argument("--golden-steps", type=int, default=2000, metavar="N",
                   help="steps of the golden and float MeZO runs (default 2000)")
    p.add_argument("--amaranth-steps", type=int, default=4, metavar="N",
                   help="steps of each Amaranth-simulator run (default 4)")
    args = p.parse_args(argv)
    for name in ("engine_steps", "trainer_steps", "golden_steps", "amaranth_steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, not {getattr(args, name)}")
    from zohw.io import write_json_atomic

    doc = run(engine_steps=args.engine_steps, amaranth_steps=args.amaranth_steps,
              trainer_steps=args.trainer_steps, golden_steps=args.golden_steps,
              say=lambda m: print(f"  {m}", file=sys.stderr, flush=True))
    write_json_atomic(args.json, doc)
    print(summary(doc))
    print(f"wrote {args.json}")
    return 0 if doc["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
