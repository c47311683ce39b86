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
  (:func:`zohw.sw.reference.train_reference` ``float-gauss``) on the same steps;
- ``optimizer_overhead``: seconds per step of :class:`zohw.optim.ZOOptimizer` with the exact
  words of each strategy against ``torch.randn``-MeZO (MeZO's loop: reseed, ``torch.normal`` per
  parameter, four passes) for d = 10**4, 10**6, 10**7, the variants interleaved step by step;
  the closure is negligible, so the time is the optimizer's own (z generation and the passes).
  ``--optimizer-only`` runs this section alone.

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
           "bench_trainer_cosim", "bench_golden", "OPTIMIZER_SIZES", "randn_mezo_step",
           "bench_optimizer_overhead", "run", "main"]

ENGINE_STRATEGIES = ("pezo-otf", "pezo-block", "gauss-clt")
#: Parameter counts d of the optimizer-overhead section.
OPTIMIZER_SIZES = (10**4, 10**6, 10**7)


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


def randn_mezo_step(params, closure, *, lr, eps, seed):
    """One step of MeZO as its reference code writes it: reseed, ``torch.normal`` per parameter
    in each of four passes (+eps, -2 eps, +eps, update)."""
    import torch

    def walk(scale):
        torch.manual_seed(seed)
        for p in params:
            p.data.add_(torch.normal(0.0, 1.0, size=p.shape, dtype=p.dtype), alpha=scale)

    with torch.no_grad():
        walk(eps)
        lp = float(closure())
        walk(-2 * eps)
        lm = float(closure())
        walk(eps)
        walk(-lr * (lp - lm) / (2 * eps))


def bench_optimizer_overhead(*, sizes=OPTIMIZER_SIZES, strategies=ENGINE_STRATEGIES, steps=3,
                             say=print):
    """Seconds per step (median) of ZOOptimizer with each strategy's exact words, with
    ``z="gaussian"``, and of :func:`randn_mezo_step`, each on one parameter of d elements with a
    negligible closure; the variants take turns step by step (one untimed warm-up each). Also
    checks that the optimizer's z at the smallest d is the golden stream (``exact``)."""
    import statistics

    import torch

    from zohw.config import EngineConfig
    from zohw.optim import GAUSSIAN, ZOOptimizer
    from zohw.sw.perturb import golden_perturbations

    out = {"sizes": list(sizes), "strategies": list(strategies), "d": {}, "exact": {}}
    for d in sizes:
        reps = steps * (10 if d < 10**6 else 1)
        say(f"optimizer overhead d={d:,} ({reps} steps each)")
        variants = {}
        for z in ("randn_mezo", GAUSSIAN, *strategies):
            w = torch.nn.Parameter(torch.zeros(d))
            closure = (lambda w=w: w[:16].sum())
            if z == "randn_mezo":
                variants[z] = (lambda s, w=w, c=closure:
                               randn_mezo_step([w], c, lr=1e-6, eps=1e-3, seed=s))
            else:
                opt = ZOOptimizer([w], lr=1e-6, eps=1e-3, z=z, seed=1)
                variants[z] = (lambda s, opt=opt, c=closure: opt.step(c))
                if d == min(sizes) and z != GAUSSIAN:
                    cfg = EngineConfig(strategy=z)
                    out["exact"][z] = bool(torch.equal(
                        opt.perturbation(0).double(),
                        golden_perturbations(cfg, 1, d, 1)[0].double() * cfg.lsb))
        times = {z: [] for z in variants}
        for r in range(reps + 1):
            for z, fn in variants.items():
                t0 = time.perf_counter()
                fn(r)
                if r:                                      # the first step warms caches up
                    times[z].append(time.perf_counter() - t0)
        row = {f"{z}_seconds": statistics.median(t) for z, t in times.items()}
        row["steps"] = reps
        out["d"][str(d)] = row
    out["ratios_over_randn_mezo"] = {
        z: {str(d): out["d"][str(d)][f"{z}_seconds"] / out["d"][str(d)]["randn_mezo_seconds"]
            for d in sizes} for z in (GAUSSIAN, *strategies)}
    out["passed"] = all(out["exact"].values())
    return out


def run(*, engine_steps=2000, amaranth_steps=4, trainer_steps=2000, golden_steps=2000,
        optimizer_steps=3, optimizer_only=False, say=print):
    """Every measurement; returns the JSON document (with ``ratios``)."""
    doc = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                       "affinity": len(os.sched_getaffinity(0)),
                       "load_average": list(os.getloadavg())}}
    t0 = time.perf_counter()
    if optimizer_only:
        doc["optimizer_overhead"] = bench_optimizer_overhead(steps=optimizer_steps, say=say)
        doc["ratios"] = {"optimizer_over_randn_mezo":
                         doc["optimizer_overhead"]["ratios_over_randn_mezo"]}
        doc["passed"] = doc["optimizer_overhead"]["passed"]
        doc["bench_seconds"] = time.perf_counter() - t0
        doc["machine"]["load_average_after"] = list(os.getloadavg())
        return doc
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
    doc["optimizer_overhead"] = bench_optimizer_overhead(steps=optimizer_steps, say=say)
    doc["ratios"]["optimizer_over_randn_mezo"] = doc["optimizer_overhead"][
        "ratios_over_randn_mezo"]
    doc["passed"] = doc["trainer_cosim"]["passed"] and all(
        e["passed"] for e in doc["engine_cosim"].values()) and doc["optimizer_overhead"]["passed"]
    doc["bench_seconds"] = time.perf_counter() - t0
    doc["machine"]["load_average_after"] = list(os.getloadavg())
    return doc


def optimizer_summary(doc):
    """The optimizer-overhead part of the summary line: each strategy's step time over
    torch.randn-MeZO's at the largest d."""
    o = doc["optimizer_overhead"]
    d = str(max(o["sizes"]))
    parts = ", ".join(f"{z} {o['ratios_over_randn_mezo'][z][d]:.1f}x" for z in o["strategies"])
    return f"ZOOptimizer step / torch.randn-MeZO step at d={int(d):.0e}: {parts}"


def summary(doc):
    """One line: the headline rates and ratios."""
    if "trainer_cosim" not in doc:                    # --optimizer-only
        return f"{'PASS' if doc['passed'] else 'FAIL'} {optimizer_summary(doc)}"
    t, e, r = doc["trainer_cosim"], doc["engine_cosim"], doc["ratios"]
    words = ", ".join(f"{s} {e[s]['words_per_second'] / 1e6:.2f}" for s in ENGINE_STRATEGIES)
    amar = min(r["engine_cosim_over_amaranth_cycles"].values())
    return (f"{'PASS' if doc['passed'] else 'FAIL'} trainer co-sim "
            f"{t['cycles_per_second'] / 1e3:.0f} k cycles/s; engine co-sim M words/s: {words}; "
            f"engine Verilator/Amaranth >= {amar:.0f}x; golden/float MeZO "
            f"{r['golden_over_float_mezo_steps']:.2f}x"
            + (f"; {optimizer_summary(doc)}" if "optimizer_overhead" in doc else ""))


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
    p.add_argument("--optimizer-steps", type=int, default=3, metavar="N",
                   help="timed ZOOptimizer steps per variant and d (10 N below d = 10**6; "
                        "default 3)")
    p.add_argument("--optimizer-only", action="store_true",
                   help="measure only the optimizer overhead (seconds instead of minutes)")
    args = p.parse_args(argv)
    for name in ("engine_steps", "trainer_steps", "golden_steps", "amaranth_steps",
                 "optimizer_steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, not {getattr(args, name)}")
    from zohw.io import write_json_atomic

    doc = run(engine_steps=args.engine_steps, amaranth_steps=args.amaranth_steps,
              trainer_steps=args.trainer_steps, golden_steps=args.golden_steps,
              optimizer_steps=args.optimizer_steps, optimizer_only=args.optimizer_only,
              say=lambda m: print(f"  {m}", file=sys.stderr, flush=True))
    write_json_atomic(args.json, doc)
    print(summary(doc))
    print(f"wrote {args.json}")
    return 0 if doc["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
