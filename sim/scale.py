"""Co-simulation at scale (issue 10): the MNIST-5k linear model, an MNIST-5k MLP with several CIM
tiles per layer and a small user ``.npz`` data set, each run bit-exactly on the RTL trainer
against the golden model, measured cycles per step against the cycle model.

Slow (minutes: Verilator builds of designs with up to ~10^4 weight registers), so a script, not
a test::

    python -m zohw.sim.scale [--steps 20] [--only mnist-linear,mnist-mlp,npz] [--json PATH]

Prints one line per run and a summary line with the path written (default
``out/cosim_scale.json``).
"""

import argparse
import sys
import time
from pathlib import Path

__all__ = ["RUNS", "run", "main"]

#: The co-simulated configurations: name -> TrainerConfig keyword arguments.
RUNS = {
    # 784 + 1 rows x 10 on the default 128x32 tile: 7 row tiles
    "mnist-linear": dict(dataset="mnist-5k"),
    # 14x14 pooled inputs, 196 -> 32 -> 10 on 64x16 tiles: 4 x 2 and 1 x 1 tiles
    "mnist-mlp": dict(dataset="mnist-5k", input_pool=2, hidden=(32,), cim=dict(tile="64x16")),
    # a 3-class user data set, 12 -> 8 -> 3 on 8x4 tiles
    "npz": dict(dataset="tests/data/tiny3.npz", hidden=(8,), cim=dict(tile="8x4"),
                write_lanes=4),
}


def _config(kw):
    from zohw.cim_config import CIMConfig
    from zohw.train_config import TrainerConfig

    kw = dict(kw)
    if "cim" in kw:
        kw["cim"] = CIMConfig(**kw["cim"])
    if kw.get("dataset", "").endswith(".npz"):
        kw["dataset"] = str(Path(__file__).resolve().parents[1] / kw["dataset"])
    return TrainerConfig(**kw)


def run(names, steps, say=print):
    """Co-simulate every named run for ``steps`` steps; a dict name -> summary."""
    from zohw.hw.plan import TrainerPlan
    from zohw.sim.trainer import run_trainer_cosim

    out = {}
    for name in names:
        cfg = _config(RUNS[name])
        plan = TrainerPlan(cfg)
        t0 = time.monotonic()
        r = run_trainer_cosim(cfg, steps, checkpoint_every=0)
        doc = {k: r.get(k) for k in (
            "passed", "mismatches", "compared", "first_mismatches", "cycles_per_step",
            "predicted_cycles_per_step", "sim_cycles_per_second", "build_seconds",
            "verilog_seconds", "golden_seconds", "test_accuracy", "error")}
        doc.update(shape=cfg.shape, params=cfg.params, tiles=cfg.layer_tiles,
                   write_lanes=cfg.write_lanes, floor_cycles_per_step=plan.floor_cycles_per_step,
                   wall_seconds=time.monotonic() - t0, steps=steps, config=cfg.as_dict())
        out[name] = doc
        say(f"{'PASS' if doc['passed'] else 'FAIL'} {name} {cfg.shape} d={cfg.params} "
            f"tiles={cfg.layer_tiles} L={cfg.write_lanes}: {steps} steps, "
            f"{doc['mismatches']} mismatches of {doc['compared']}, cycles/step "
            f"{doc['cycles_per_step']} (model {doc['predicted_cycles_per_step']}, floor "
            f"{doc['floor_cycles_per_step']}), build {doc['build_seconds']:.0f} s, "
            f"{doc['wall_seconds']:.0f} s wall")
    return out


def main(argv=None):
    from zohw.io import write_json_atomic

    p = argparse.ArgumentParser(prog="python -m zohw.sim.scale", description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=20, help="steps per run (default 20)")
    p.add_argument("--only", default=",".join(RUNS), help="runs (default all): " + ",".join(RUNS))
    p.add_argument("--json", default="out/cosim_scale.json", help="output path")
    a = p.parse_args(argv)
    names = [n for n in a.only.split(",") if n]
    bad = [n for n in names if n not in RUNS]
    if bad or a.steps < 1:
        p.error(f"--only must name runs of {', '.join(RUNS)} and --steps be >= 1, not "
                f"{a.only!r} / {a.steps}")
    docs = run(names, a.steps)
    write_json_atomic(Path(a.json), docs)
    ok = all(d["passed"] for d in docs.values())
    print(f"{'PASS' if ok else 'FAIL'} {len(docs)} co-simulations at scale; wrote {a.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
