# amaranth: UnusedElaboratable=no
"""The trainer's dynamic-power proxy over one training step (docs/power.md, *Trainer over one
step*): the whole :class:`zohw.hw.trainer.ZOTrainer` — engine, CIM macro(s), controller, write
pipeline, update and loss units — as a gate-level netlist, simulated under its own protocol.

* **Netlist.** The trainer's Verilog (:func:`zohw.sim.trainer.design`, the one every
  co-simulation uses) is synthesized with the ``asic-sram`` target: generic gates in NAND2
  units, memories left as ``$mem_v2`` macros (the sample memory and the write-count memory;
  the pool of a pool strategy too, with the target's registered read port). The mapped netlist
  keeps the macros' parameters so :class:`.power.GateSim` can simulate them.
* **Stimulus.** The co-simulation's protocol (:mod:`zohw.sim.tb_trainer`) on the configuration's
  real data: reset, the train set over the ``samples`` stream, the initial weights over the
  ``init`` port, ``start`` with ``steps = 2``; then every weight and write count read back.
  The measured window is the **second** step (``step_done`` to ``step_done``: one full
  steady-state step, the engine's load and pool fill excluded).
* **Checked.** L+, L−, g of both steps, every weight and every write count after them, and the
  step's cycle count must equal the golden model's (:func:`zohw.sw.train.train_golden`), or
  the run raises :class:`TrainerPowerMismatch` — no number from a simulation that does not
  train as the golden model does.
* **Model.** The engines' model (:func:`.power.power_of_toggles`: Σ toggles × driving cell's
  area, + ``CLOCK_WEIGHT`` per flip-flop and cycle; ``power_gated`` with ideal clock gating) for
  the gates, and a separate **memory term**: bits read + bits written per cycle ×
  :data:`MEMORY_BIT_WEIGHT`.
* **Engine share.** Cells are attributed to the engine by structure (:func:`engine_cells`):
  the engine's flip-flops (named ``engine.*`` in the netlist), the logic in the fan-in cone of
  their inputs, and the logic that depends on engine state only (the word map to ``z``); its
  memory (a pool) by name. Its GE (``engine.ge``) and flip-flops, against the standalone
  engine's, check that attribution (docs/power.md; tests/test_power_trainer.py).
"""

import hashlib
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from .power import CLOCK_WEIGHT, GateSim, _param_int, power_of_toggles

__all__ = ["TARGET", "TOP", "MEMORY_BIT_WEIGHT", "TRAINER_POWER_FORMAT", "MEASURED_STEPS",
           "TrainerPowerMismatch", "power_trainer_config", "trainer_netlist", "engine_cells",
           "run_trainer_stimulus", "trainer_power", "trainer_power_rows", "trainer_area_rows",
           "trainer_report", "render_trainer_markdown"]

#: The synthesis target of the trainer: memories as macros (as flip-flops, ``asic``, the
#: trainer's ~400 kbit sample memory would be most of the netlist and of the simulation).
TARGET = "asic-sram"
TOP = "zohw_trainer"
#: NAND2-toggle equivalents charged per memory bit read or written. An assumption of order of
#: magnitude (docs/power.md): a small SRAM macro spends about ten times a NAND2 output
#: transition per bit accessed (bit-line swing, sense amplifier, decoder share). The access
#: counts are reported, so the term can be re-weighted.
MEMORY_BIT_WEIGHT = 10.0
#: Bump when the model, the stimulus or the cached result's layout changes meaning.
TRAINER_POWER_FORMAT = 1
#: Steps run; the last is measured.
MEASURED_STEPS = 2
#: Bump when the cached netlist layout changes.
_NETLIST_FORMAT = 1


class TrainerPowerMismatch(RuntimeError):
    """The gate-level trainer did not do what the golden model does."""


def power_trainer_config(trainer_cfg, engine_cfg=None):
    """The trainer configuration simulated: ``trainer_cfg`` with engine ``engine_cfg`` (default
    its own), the engine's pool read port set to the target's (an SRAM's is registered)."""
    from .targets import check_target

    engine = trainer_cfg.engine if engine_cfg is None else engine_cfg
    engine = engine.replace(pool_read=check_target(TARGET).pool_read)
    return trainer_cfg.replace(engine=engine)


def _compact(doc, top):
    """Ports, cells (``$mem_v2`` with its parameters) and the public net names of ``top``
    from a Yosys ``write_json`` document."""
    module = doc["modules"][top]
    ports = {name: [p["direction"], p["bits"]] for name, p in module["ports"].items()}
    cells = []
    for _, c in sorted(module["cells"].items()):
        if c["type"] == "$mem_v2":
            cells.append([c["type"], c["connections"], dict(c["parameters"])])
        else:
            cells.append([c["type"], c["connections"]])
    names = {n: net["bits"] for n, net in module["netnames"].items() if not n.startswith("$")}
    return {"format": _NETLIST_FORMAT, "top": top, "ports": ports, "cells": cells,
            "names": names}


def trainer_netlist(cfg, *, cache_dir=None, use_cache=True):
    """``{"netlist", "stat", "memory", "seconds", "cached", "verilog_sha256"}`` of the trainer
    ``cfg`` on :data:`TARGET` (Yosys, cached by the Verilog, the script, the library and the
    Yosys version, like every synthesis)."""
    from zohw.cache import read_json_entry, write_json_entry
    from zohw.sim.trainer import design

    from . import synth
    from .asic import liberty_hash
    from .targets import LIBERTY_NAME, check_target

    verilog, _, _ = design(cfg)
    tgt = check_target(TARGET)
    key = synth.cache_key(verilog, TARGET, synth.yosys_version(), TOP, liberty_hash(tgt.liberty))
    key = hashlib.sha256(f"{key}|trainer-netlist|{_NETLIST_FORMAT}".encode()).hexdigest()
    cache_dir = Path(cache_dir) if cache_dir else synth.default_cache_dir()
    stat_path, net_path = (cache_dir / f"{key}.trainer.json",
                           cache_dir / f"{key}.trainer-netlist.json")
    vsha = hashlib.sha256(verilog.encode()).hexdigest()
    if use_cache:
        entry, net = read_json_entry(stat_path), read_json_entry(net_path)
        if entry is not None and net is not None:
            return {**entry, "netlist": net, "cached": True}
    with tempfile.TemporaryDirectory(prefix="zohw-trainer-synth-") as tmp:
        Path(tmp, "engine.v").write_text(verilog)
        Path(tmp, LIBERTY_NAME).write_bytes(Path(tgt.liberty).read_bytes())
        t0 = time.monotonic()
        synth._yosys(tmp, tgt, TOP, TARGET, True)
        seconds = round(time.monotonic() - t0, 1)
        stat = json.loads(Path(tmp, "stat.json").read_text())
        doc = json.loads(Path(tmp, "netlist.json").read_text())
    net = _compact(doc, TOP)
    mems = [c for c in net["cells"] if c[0] == "$mem_v2"]
    entry = {"stat": stat, "seconds": seconds, "verilog_sha256": vsha,
             "memory": {"macros": len(mems),
                        "bits": sum(_param_int(p["WIDTH"]) * _param_int(p["SIZE"])
                                    for _, _, p in mems)}}
    if use_cache:
        write_json_entry(net_path, net)
        write_json_entry(stat_path, entry)
    return {**entry, "netlist": net, "cached": False}


# -- attribution of cells to the engine ------------------------------------------------------

def engine_cells(sim, netlist, inputs, prefix="engine."):
    """Boolean mask over :class:`GateSim` nets: the nets the engine drives — its flip-flops
    (outputs named ``prefix…``), the combinational cells in the fan-in cone of their inputs
    (next-state logic) and the combinational cells whose every source is engine state or a
    constant (the word map that forms ``z``). The engine's ``inputs`` (port names) are its
    boundary: their nets (e.g. the trainer's seed register, which also bears the name
    ``engine.seed``) belong to the trainer, and the cone stops there."""
    n = len(sim.values)
    named, boundary = np.zeros(n, bool), np.zeros(n, bool)
    for name, bits in netlist["names"].items():
        bits = [b for b in bits if isinstance(b, int) and b < n]   # dangling nets: none
        if name.startswith(prefix):
            named[bits] = True
        if name in {prefix + i for i in inputs}:
            boundary[bits] = True
    eng_q = sim.is_ff_q & named & ~boundary
    mask = eng_q.copy()
    driver = {}
    for ins, outs, _ in sim._levels:
        for k, o in enumerate(outs.tolist()):
            driver[o] = ins[k].tolist()
    ff_in = sim._ff_in[eng_q[sim._ff_out]]
    stack = [b for b in ff_in.ravel().tolist() if b in driver and not boundary[b]]
    while stack:
        b = stack.pop()
        if mask[b]:
            continue
        mask[b] = True
        stack.extend(i for i in driver[b] if i in driver and not mask[i] and not boundary[i])
    pure = eng_q.copy()
    pure[:2] = True
    for ins, outs, _ in sim._levels:
        pure[outs] = pure[ins].all(axis=1)
    pure[:2] = False
    return (mask | pure) & (sim.weight > 0)


# -- the stimulus ----------------------------------------------------------------------------

def _signed(value, bits):
    return value - (1 << bits) if value >> (bits - 1) & 1 else value


def run_trainer_stimulus(sim, cfg, data, golden, init, *, progress=None):
    """Drive :class:`GateSim` ``sim`` of trainer ``cfg`` through the co-simulation's protocol
    (module docstring) and compare with ``golden`` (a :class:`zohw.sw.train.TrainResult` of
    :data:`MEASURED_STEPS` steps, initial weights ``init``). Returns ``{"window": (toggles,
    intervals, memory counts), "steps": [{step, l_plus, l_minus, g, step_cycles}],
    "compared", "load_cycles"}``; raises :class:`TrainerPowerMismatch` on any difference."""
    from zohw.sim.trainer import pack_samples

    say = progress or (lambda msg: None)
    width = {name: len(bits) for name, (_, bits) in sim.ports.items()}
    idle = {n: 0 for n, (d, _) in sim.ports.items() if d == "input" and n != "clk"}
    sim.step({**idle, "rst": 1})
    payloads = pack_samples(data.x_train, data.y_train, cfg.cim.input_bits, cfg.inputs)
    say(f"loading {len(payloads)} samples")
    cycles = 1
    for p in payloads:
        for _ in range(100):
            cycles += 1
            if sim.step({**idle, "samples__valid": 1, "samples__payload": p})["samples__ready"]:
                break
        else:
            raise TrainerPowerMismatch("samples.ready stayed low for 100 cycles")
    n = sim.step(idle)["n_samples"]
    if n != len(payloads):
        raise TrainerPowerMismatch(f"n_samples is {n} after loading {len(payloads)} samples")
    mask = (1 << width["init_data"]) - 1
    say(f"loading {len(init)} weights")
    for i, w in enumerate(init):
        sim.step({**idle, "init_en": 1, "init_addr": i, "init_data": int(w) & mask})
    sim.step(idle)
    sim.step(idle)
    cycles += len(init) + 3

    from zohw.hw.plan import TrainerPlan

    say(f"running {MEASURED_STEPS} steps")
    run = {**idle, "seed": cfg.seed & 0xFFFF_FFFF, "steps": MEASURED_STEPS}
    sim.start_counting()
    sim.step({**run, "start": 1})
    marks, steps = [], []
    limit = 4 * TrainerPlan(cfg).cycles_per_step * MEASURED_STEPS + 100_000
    while len(steps) < MEASURED_STEPS:
        out = sim.step(run)
        if out["step_done"]:
            marks.append((sim.toggles.copy(), sim.cycles,
                          [dict(m.counts) for m in sim.memories]))
            steps.append({"step": out["step"],
                          "l_plus": _signed(out["l_plus"], width["l_plus"]),
                          "l_minus": _signed(out["l_minus"], width["l_minus"]),
                          "g": _signed(out["g"], width["g"]),
                          "step_cycles": out["step_cycles"]})
        if sim.cycles > limit:
            raise TrainerPowerMismatch(f"no step_done within {limit} cycles")
    sim.counting = False
    (t0, c0, m0), (t1, c1, m1) = marks[-2], marks[-1]
    mem = [{k: b[k] - a[k] for k in a} for a, b in zip(m0, m1)]

    # read-back: address i in cycle i, its weight readback_latency cycles later
    lat = TrainerPlan(cfg).readback_latency
    d = len(init)
    weights, counts = [], []
    for i in range(d + lat):
        out = sim.step({**idle, "rb_addr": min(i, d - 1)})
        if i >= lat:
            weights.append(_signed(out["rb_weight"], width["rb_weight"]))
            counts.append(out["rb_count"])

    compared = 0
    want = {"l_plus": golden.l_plus.tolist(), "l_minus": golden.l_minus.tolist(),
            "g": golden.g.tolist()}
    for s, got in enumerate(steps):
        for q in ("step", "l_plus", "l_minus", "g"):
            expect = s if q == "step" else want[q][s]
            compared += 1
            if got[q] != expect:
                raise TrainerPowerMismatch(
                    f"{cfg.engine.strategy}: the gate-level trainer gives {q} = {got[q]} at step "
                    f"{s}, the golden model {expect}")
    for q, got, expect in (("weight", weights, golden.weights.tolist()),
                           ("write count", counts, golden.write_counts.tolist())):
        bad = [i for i, (a, b) in enumerate(zip(got, expect)) if a != b]
        compared += len(expect)
        if bad:
            i = bad[0]
            raise TrainerPowerMismatch(
                f"{cfg.engine.strategy}: after {MEASURED_STEPS} steps the gate-level trainer "
                f"has {q} {i} = {got[i]}, the golden model {expect[i]} ({len(bad)} differ)")
    if c1 - c0 != steps[-1]["step_cycles"]:
        raise TrainerPowerMismatch(f"the measured window has {c1 - c0} cycles, the RTL's step "
                                   f"counter {steps[-1]['step_cycles']}")
    return {"window": (t1 - t0, c1 - c0, mem), "steps": steps, "compared": compared,
            "load_cycles": cycles}


# -- the result --------------------------------------------------------------------------------

def _key(cfg, verilog_sha256):
    from .asic import GENERIC_LIBERTY, liberty_hash
    from .synth import yosys_version

    data = Path(str(cfg.dataset))          # a user's .npz: its content, not only its name
    data_sha = hashlib.sha256(data.read_bytes()).hexdigest() if data.is_file() else None
    return hashlib.sha256(json.dumps({
        "format": TRAINER_POWER_FORMAT, "verilog": verilog_sha256,
        "data": data_sha,
        "yosys": yosys_version(), "liberty": liberty_hash(GENERIC_LIBERTY),
        "clock_weight": CLOCK_WEIGHT, "memory_bit_weight": MEMORY_BIT_WEIGHT,
        "steps": MEASURED_STEPS, "config": cfg.config_hash, "run": cfg.run_dict()},
        sort_keys=True, default=str).encode()).hexdigest()


def trainer_power(trainer_cfg, engine_cfg=None, *, cache_dir=None, use_cache=True,
                  golden_overrides=None, progress=None):
    """Power proxy of the trainer ``trainer_cfg`` (engine ``engine_cfg``, default its own) over
    one training step (module docstring); cached by the configuration, the Verilog, the tool
    version and the model's constants. ``golden_overrides`` changes the golden model's
    configuration only (to show the check can fail). Returns ``power`` (gates, NAND2-toggle
    units per cycle), ``power_logic``, ``power_clock``, ``power_gated``, ``memory_power``
    (:data:`MEMORY_BIT_WEIGHT` × bits accessed per cycle), ``total_power`` (gates + memory),
    ``engine`` (the same keys for the engine's cells), ``memory`` (reads, writes, bits per
    step, per memory), ``ge``, ``ff``, ``memory_bits``, ``step_cycles``, ``compared``,
    ``sim_seconds``, ``synth_seconds``, ``cached``."""
    from zohw.cache import read_json_entry, write_json_entry
    from zohw.datasets import load_dataset
    from zohw.sw.train import init_weights, train_golden

    from .asic import ge_counts
    from .synth import default_cache_dir

    say = progress or (lambda msg: None)
    cfg = power_trainer_config(trainer_cfg, engine_cfg).replace(steps=MEASURED_STEPS)
    name = cfg.engine.strategy
    # the result's key first: a cached result needs no netlist (tens of MB of JSON)
    from zohw.sim.trainer import design

    key = _key(cfg, hashlib.sha256(design(cfg)[0].encode()).hexdigest())
    path = Path(cache_dir or default_cache_dir()) / f"{key}.trainer-power.json"
    if use_cache and not golden_overrides:
        hit = read_json_entry(path)
        if hit is not None:
            return {**hit, "cached": True}
    say(f"{name}: synthesizing the trainer ({TARGET})")
    net_entry = trainer_netlist(cfg, cache_dir=cache_dir, use_cache=use_cache)
    data = load_dataset(cfg.dataset, cfg.cim.input_bits, cfg.input_pool)
    golden = train_golden(cfg.replace(**(golden_overrides or {})), data)
    say(f"{name}: building the gate-level simulation")
    t0 = time.monotonic()
    net = net_entry["netlist"]
    sim = GateSim(net)
    init = init_weights(cfg).tolist()
    res = run_trainer_stimulus(sim, cfg, data, golden, init,
                               progress=lambda m: say(f"{name}: {m}"))
    sim_seconds = round(time.monotonic() - t0, 1)
    toggles, cycles, mem = res["window"]
    gates = power_of_toggles(toggles, sim.weight, sim.is_ff_q, sim.n_ff, cycles)
    from zohw.hw.engine import PerturbationEngine
    from zohw.hw.verilog import ports

    eng = engine_cells(sim, net, [p for p, d, _ in ports(PerturbationEngine(cfg.engine))
                                  if d == "input"])
    eng_q = eng & sim.is_ff_q
    eng_power = power_of_toggles(np.where(eng, toggles, 0), np.where(eng, sim.weight, 0),
                                 eng_q, int(eng_q.sum()), cycles)
    memories = {}
    for m, counts in zip(sim.memories, mem):
        memories[m.name] = {"bits": m.width * m.size, **counts,
                            "power": round(MEMORY_BIT_WEIGHT * (counts["bits_read"]
                                                                + counts["bits_written"])
                                           / cycles, 3)}
    memory_power = round(sum(v["power"] for v in memories.values()), 3)
    eng_memory = round(sum(v["power"] for k, v in memories.items()
                           if k.lstrip("\\").startswith("engine.")), 3)
    cells = {k.lstrip("\\"): v for k, v in net_entry["stat"]["design"]["num_cells_by_type"]
             .items() if k not in ("$scopeinfo", "$mem_v2")}
    lib_area = dict(zip(np.nonzero(eng)[0].tolist(), sim.weight[eng].tolist()))
    out = {**gates,
           "memory_power": memory_power,
           "total_power": round(gates["power"] + memory_power, 3),
           "engine": {**eng_power, "memory_power": eng_memory,
                      "total_power": round(eng_power["power"] + eng_memory, 3),
                      "ge": round(sum(lib_area.values()), 2), "ff": int(eng_q.sum())},
           "memory": memories, "memory_bit_weight": MEMORY_BIT_WEIGHT,
           **ge_counts(cells), "memory_bits": sim.memory_bits,
           "step_cycles": cycles, "steps": res["steps"], "compared": res["compared"],
           "load_cycles": res["load_cycles"], "logic_depth": sim.depth,
           "synth_seconds": net_entry["seconds"], "sim_seconds": sim_seconds,
           "strategy": name, "engine_config": cfg.engine.as_dict(), "config_hash": cfg.config_hash}
    if use_cache and not golden_overrides:
        write_json_entry(path, out)
    return {**out, "cached": False}


def trainer_power_rows(trainer_cfg, engine_cfgs, **kwargs):
    """:func:`trainer_power` of ``trainer_cfg`` with each engine of ``engine_cfgs``
    (``{label: EngineConfig}``), plus ``ratio`` (total power / the cheapest Gaussian
    strategy's, from the registry: :func:`.power.relative_power`), ``gated_ratio`` and
    ``engine_share`` (the engine's part of the total), ``engine_ge_share`` (of the GE) and
    ``energy_per_step`` (total × cycles of the step, NAND2-toggle equivalents)."""
    from .power import relative_power

    from zohw.strategies import REGISTRY

    rows = {label: trainer_power(trainer_cfg, e, **kwargs) for label, e in engine_cfgs.items()}
    gaussian = [lb for lb, r in rows.items() if REGISTRY[r["strategy"]].gaussian]
    ratio = relative_power({lb: r["total_power"] for lb, r in rows.items()}, gaussian)
    gated = relative_power({lb: r["power_gated"] + r["memory_power"] for lb, r in rows.items()},
                           gaussian)
    for label, r in rows.items():
        r["ratio"], r["gated_ratio"] = ratio[label], gated[label]
        r["engine_share"] = round(r["engine"]["total_power"] / r["total_power"], 4)
        r["energy_per_step"] = round(r["total_power"] * r["step_cycles"])
        r["engine_ge_share"] = round(r["engine"]["ge"] / r["ge"], 4)
    return rows


def trainer_area_rows(trainer_cfg, engine_cfgs, *, cache_dir=None, use_cache=True,
                      progress=None):
    """GE, flip-flops and memory bits of the trainer ``trainer_cfg`` with each engine of
    ``engine_cfgs`` (``{label: EngineConfig}``) on :data:`TARGET` (no simulation)."""
    from .asic import ge_counts

    say = progress or (lambda msg: None)
    rows = {}
    for label, e in engine_cfgs.items():
        cfg = power_trainer_config(trainer_cfg, e)
        say(f"{e.strategy}: synthesizing the trainer ({TARGET})")
        net = trainer_netlist(cfg, cache_dir=cache_dir, use_cache=use_cache)
        cells = {k.lstrip("\\"): v for k, v in net["stat"]["design"]["num_cells_by_type"]
                 .items() if k not in ("$scopeinfo", "$mem_v2")}
        rows[label] = {"strategy": e.strategy, **ge_counts(cells),
                       "memory_bits": net["memory"]["bits"],
                       "memory_macros": net["memory"]["macros"],
                       "synth_seconds": net["seconds"], "cached": net["cached"],
                       "engine_config": e.as_dict(), "config_hash": cfg.config_hash}
    return rows


# -- the report ------------------------------------------------------------------------------

def trainer_report(trainer_cfg, rows, *, command=None, wall_seconds=None):
    """The JSON document of ``zohw resources --design trainer --power``: one row per engine
    (label → :func:`trainer_power_rows`'s result) and the model's constants."""
    out = []
    for label, r in rows.items():
        out.append({"label": label, **r})
    gaussian = min((r for r in out if r["strategy"] in _gaussians()),
                   key=lambda r: r.get("total_power", r["ge"]), default=None)
    report = {"design": "trainer", "target": TARGET, "trainer": trainer_cfg.as_dict(),
              "model": {"clock_weight": CLOCK_WEIGHT, "memory_bit_weight": MEMORY_BIT_WEIGHT,
                        "window": f"step {MEASURED_STEPS - 1} (the last of {MEASURED_STEPS})",
                        "units": "NAND2-toggle equivalents per cycle"},
              "baseline": gaussian["label"] if gaussian else None, "rows": out}
    if command:
        report["command"] = command
    if wall_seconds is not None:
        report["wall_seconds"] = round(wall_seconds, 1)
    return report


def _gaussians():
    from zohw.strategies import REGISTRY, STRATEGIES
    return [s for s in STRATEGIES if REGISTRY[s].gaussian]


def _n(v, digits=0):
    return f"{v:,.{digits}f}".replace(",", " ")


def render_trainer_markdown(report, *, heading_level=2):
    """Markdown of :func:`trainer_report`: the per-strategy table and the model's notes."""
    h = "#" * heading_level
    m = report["model"]
    t = report["trainer"]
    if not report["rows"] or "total_power" not in report["rows"][0]:
        lines = [f"{h} Trainer area ({report['target']})", "",
                 "| strategy | GE | logic | FF | memory bits (macros) |", "|:--|--:|--:|--:|--:|"]
        lines += [f"| `{r['label']}` | {_n(r['ge'])} | {_n(r['ge_comb'])} | {_n(r['ff'])} | "
                  f"{_n(r['memory_bits'])} ({r['memory_macros']}) |" for r in report["rows"]]
        if report.get("command"):
            lines += ["", f"Command: `{report['command']}`"]
        return "\n".join(lines) + "\n"
    lines = [f"{h} Trainer power over one training step ({report['target']})", "",
             f"Trainer: {t['dataset']}, batch {t['batch']}, "
             f"{'linear' if not t['hidden'] else 'mlp ' + str(t['hidden'])}; window: "
             f"{m['window']}; {m['units']}. Gates: Σ toggles × cell area + "
             f"{m['clock_weight']:g} per flip-flop and cycle; memory: "
             f"{m['memory_bit_weight']:g} per bit read or written. A relative estimate "
             "(docs/power.md).", "",
             "| strategy | GE | FF | memory bits | cycles/step | logic | clock | memory | "
             "total | gated | engine (share) | engine GE (share) | × Gaussian | gated × |",
             "|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in report["rows"]:
        e = r["engine"]
        lines.append(
            f"| `{r['label']}` | {_n(r['ge'])} | {_n(r['ff'])} | {_n(r['memory_bits'])} | "
            f"{r['step_cycles']} | {_n(r['power_logic'])} | {_n(r['power_clock'])} | "
            f"{_n(r['memory_power'])} | {_n(r['total_power'])} | "
            f"{_n(r['power_gated'] + r['memory_power'])} | {_n(e['total_power'])} "
            f"({100 * r['engine_share']:.1f} %) | {_n(e['ge'])} "
            f"({100 * r['engine_ge_share']:.1f} %) | {r['ratio']:.3f} | "
            f"{r['gated_ratio']:.3f} |")
    lines += ["", f"*× Gaussian*: total (gates + memory) / the cheapest Gaussian strategy's "
              f"trainer (`{report['baseline']}`); *gated*: with ideal clock gating. Every row's "
              "L+, L−, g, weights and write counts equal the golden model's."]
    if report.get("command"):
        lines += ["", f"Command: `{report['command']}`"]
    return "\n".join(lines) + "\n"
