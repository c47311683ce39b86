"""cocotb testbench: cross-check perturbation engines against the golden model at Verilator
speed — the RTL harness (:mod:`zohw.sim.engine_harness`) does the per-clock work.

The DUT is an :class:`~zohw.sim.engine_harness.EngineHarness` around one engine or a bank of
them; the step protocol of ``docs/engine-contract.md`` runs inside it::

    reset; per load: seed; load; wait until every busy is low
    for each step: take C = cycles_per_step(config, d) transfers from every engine,
                   then 1..max_replays times: replay and take the C transfers again,
                   then advance
    for each reload (optional): the same with another seed, without a reset in between

Every engine's ``z.ready`` gets independent seeded back-pressure, and every lane of every
transfer — first passes and replays alike — is compared with the golden words the host wrote
to ``golden<k>.hex`` (:func:`zohw.sim.engine.cross_check`). Python awaits **one event per
load** (the harness's ``done``) and then reads the counters; the clock is cocotb's GPI (C)
clock. The protocol rules a testbench can observe are checked: ``busy`` high after reset (here),
``valid`` low while ``busy`` and in every strobe cycle, and ``busy`` falling within
``busy_timeout`` cycles after ``load`` (in the harness). X/Z values: none under Verilator
(two-state); under Icarus (``simulator="icarus"``, four-state) an X in a compared word makes
the harness's counters X, read as None: such a run cannot pass.

Arguments come as JSON (:func:`zohw.sim.kit.tb_args`)::

    {"engines": [{"config": {...EngineConfig fields...}, "name": "...", "config_hash": "...",
                  "cycles_per_step": 64}],
     "seed": 1, "steps": 8,
     "backpressure": 0.25,          # probability that ready is low in a cycle
     "rng_seed": 0,                 # harness randomness (back-pressure, replay counts)
     "max_replays": 2,              # replays per step drawn from 1..max_replays
     "reloads": [{"seed": 7, "steps": 2}],  # further loads after the first run (optional)
     "report_limit": 8,             # mismatch reports kept per engine (the harness's memory)
     "busy_timeout": 100000,        # cycles allowed for busy to fall after load
     "stall_timeout": 1000}         # extra cycles allowed per pass before a stall is reported

The result document (:func:`zohw.sim.kit.run_recorded`) has totals (``words_compared``,
``mismatches``, ``steps``, ``replays``, ``cycles``, ``run_wall_seconds`` — the simulated run
alone —, ``sim_wall_seconds``, ``protocol_errors``) and per engine the same counts plus the first
mismatches as ``{"load", "step", "pass", "cycle", "lane", "index", "expected", "got"}`` (load 0
is the first load, 1.. the reloads; pass 0 is the first pass of a step, 1.. are replays; cycle is
the transfer within the pass; index is ``cycle * P + lane``, the weight index within the step).
The cocotb test fails if there is any mismatch or protocol error.
"""

import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer

from zohw.sim.kit import (BUSY_TIMEOUT, CLOCK_PERIOD_NS, ERROR_KINDS, STALLED, format_mismatch,
                          pulse_reset, read, report_fields, run_recorded, tb_args, unpack)

DEFAULTS = {
    "seed": 1, "steps": 8, "backpressure": 0.25, "rng_seed": 0, "max_replays": 2,
    "reloads": [], "report_limit": 8, "busy_timeout": 100_000, "stall_timeout": 1000,
}


class _Engine:
    """What the testbench needs of an engine: its host-side description."""

    def __init__(self, doc):
        self.config = doc["config"]
        self.lanes, self.width = doc["config"]["lanes"], doc["config"]["width"]
        self.name, self.strategy = doc["name"], doc["config"]["strategy"]
        self.config_hash = doc["config_hash"]


class EngineTB:
    """Runs every load through the harness and collects its counters and reports."""

    def __init__(self, dut, args):
        self.dut = dut
        self.args = a = {**DEFAULTS, **args}
        # engine facts from the host: importing the configuration (and torch with it) in the
        # simulator process would cost seconds
        self.configs = [_Engine(e) for e in a["engines"]]
        self.cycles_per_step = [e["cycles_per_step"] for e in a["engines"]]
        self.protocol_errors = []
        self.load_cycles = []
        self.per_engine_load_cycles = [[] for _ in self.configs]
        self.counters = None
        self.reports = [[] for _ in self.configs]
        self.run_wall = None
        self.clock = Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns", impl="gpi")
        self.budget = a["stall_timeout"] + int(
            20 * max(self.cycles_per_step) / (1.0 - a["backpressure"]))
        dut.go.value = 0
        dut.seed.value = 0
        dut.rst.value = 1

    def segments(self):
        """``(seed, steps)`` of the first load and of every reload."""
        a = self.args
        return [(a["seed"], a["steps"])] + [(r["seed"], r["steps"]) for r in a["reloads"]]

    def _set_static(self):
        a, dut = self.args, self.dut
        dut.rng_seed.value = a["rng_seed"] & 0xFFFF_FFFF
        dut.threshold.value = round(a["backpressure"] * 65536)
        dut.max_replays.value = max(1, a["max_replays"])
        dut.pass_budget.value = self.budget
        dut.busy_timeout.value = a["busy_timeout"]
        dut.rep_addr.value = 0
        for k, c in enumerate(self.cycles_per_step):
            getattr(dut, f"count{k}").value = c

    async def reset(self):
        self._set_static()
        self.clock.start()
        await pulse_reset(self.dut)
        await ReadOnly()
        for k in range(len(self.configs)):
            if read(getattr(self.dut, f"busy{k}")) != 1:
                self.protocol_errors.append({"engine": k, "cycle": read(self.dut.cycle),
                                             "message": "busy not high after reset"})
        await RisingEdge(self.dut.clk)

    async def run_load(self, load, seed, steps):
        """One load and its steps, run by the harness; returns its status."""
        dut = self.dut
        dut.seed.value = seed & 0xFFFF_FFFF
        dut.seg_steps.value = steps
        dut.go.value = 1
        await RisingEdge(dut.clk)
        dut.go.value = 0
        # the harness reports stalls itself; this only bounds a broken harness
        limit = (self.args["busy_timeout"] + steps * (1 + max(1, self.args["max_replays"]))
                 * (self.budget + 3) + 100)
        done = RisingEdge(dut.done)
        if await First(done, Timer(limit * CLOCK_PERIOD_NS, unit="ns")) is not done:
            raise AssertionError(f"the harness did not finish load {load} in {limit} cycles")
        await ReadOnly()
        self.load_cycles.append(read(dut.load_cycles))
        for k in range(len(self.configs)):
            self.per_engine_load_cycles[k].append(read(getattr(dut, f"busy_cycles{k}")))
        status = read(dut.status)
        self.read_counters()             # idle now: the counters hold until the next go
        await RisingEdge(dut.clk)
        return status

    def read_counters(self):
        dut = self.dut
        self.protocol_errors = [p for p in self.protocol_errors
                                if p["message"] == "busy not high after reset"]
        self.counters = {
            "steps": read(dut.steps_done), "replays": read(dut.replays_done),
            "cycles": read(dut.cycle),
            "engines": [{name: read(getattr(dut, f"{name}{k}")) for name in
                         ("compared", "mismatches", "stall_cycles", "remaining", "errors",
                          "n_reports")} for k in range(len(self.configs))]}
        for k, e in enumerate(self.counters["engines"]):
            for j, message in enumerate(ERROR_KINDS):
                if e["errors"] >> j & 1:
                    self.protocol_errors.append({
                        "engine": k, "cycle": read(getattr(dut, f"err_cycle{k}_{j}")),
                        "message": message})

    async def read_reports(self):
        """The stored mismatching transfers, as one report per mismatching lane (at most
        ``report_limit`` per engine, in order)."""
        dut = self.dut
        limit = self.args["report_limit"]
        for i in range(max((e["n_reports"] for e in self.counters["engines"]), default=0)):
            await RisingEdge(dut.clk)
            dut.rep_addr.value = i
            await RisingEdge(dut.clk)
            await ReadOnly()
            for k, (c, e) in enumerate(zip(self.configs, self.counters["engines"])):
                if i >= e["n_reports"] or len(self.reports[k]) >= limit:
                    continue
                raw = read(getattr(dut, f"report{k}"))
                fields = {}
                for name, bits in report_fields(c.lanes, c.width):
                    fields[name] = raw & ((1 << bits) - 1)
                    raw >>= bits
                exp = unpack(fields["expected"], c.lanes, c.width)
                got = unpack(fields["got"], c.lanes, c.width)
                for lane, (x, g) in enumerate(zip(exp, got)):
                    if x != g and len(self.reports[k]) < limit:
                        self.reports[k].append({
                            "load": fields["load"], "step": fields["step"],
                            "pass": fields["pass"], "cycle": fields["cycle"], "lane": lane,
                            "index": fields["cycle"] * c.lanes + lane,
                            "expected": x, "got": g})

    async def run(self):
        await self.reset()
        t0 = time.monotonic()
        status = None
        try:
            for load, (seed, steps) in enumerate(self.segments()):
                status = await self.run_load(load, seed, steps)
                if status != 0:
                    break
        finally:
            self.run_wall = time.monotonic() - t0
        await self.read_reports()
        dut = self.dut
        if status == STALLED:
            stuck = {k: e["remaining"] for k, e in enumerate(self.counters["engines"])
                     if e["remaining"]}
            raise AssertionError(
                f"engines stalled in load {read(dut.cur_load)} step {read(dut.cur_step)} pass "
                f"{read(dut.cur_pass)}: no transfers for {self.budget} cycles "
                f"(engine: transfers missing) {stuck}")
        if status == BUSY_TIMEOUT:
            stuck = [k for k in range(len(self.configs)) if read(getattr(dut, f"busy{k}"))]
            raise AssertionError(f"busy still high {self.args['busy_timeout']} cycles after "
                                 f"load (engines {stuck})")

    # -- results ----------------------------------------------------------------------------

    def result(self, wall, error=None):
        counters = self.counters or {"engines": [{} for _ in self.configs]}
        engines = []
        for k, (config, e) in enumerate(zip(self.configs, counters["engines"])):
            engines.append({
                "index": k, "name": config.name, "strategy": config.strategy,
                "config": config.config, "config_hash": config.config_hash,
                "cycles_per_step": self.cycles_per_step[k],
                "words_compared": e.get("compared", 0),
                "mismatches": e.get("mismatches", 0),
                "first_mismatches": self.reports[k],
                "stall_cycles": e.get("stall_cycles", 0),
                "load_cycles": self.per_engine_load_cycles[k],
            })
        return {
            "engines": engines,
            "words_compared": sum(e["words_compared"] for e in engines),
            "mismatches": sum(e["mismatches"] for e in engines),
            "steps": counters.get("steps", 0),
            "replays": counters.get("replays", 0),
            "cycles": counters.get("cycles", 0),
            "loads": len(self.segments()),
            "load_cycles": self.load_cycles,
            "run_wall_seconds": self.run_wall,
            "sim_wall_seconds": wall,
            "clock": self.clock.impl,
            "protocol_errors": self.protocol_errors,
            "error": error,
            "args": self.args,
        }


@cocotb.test()
async def cross_check(dut):
    """Every transfer of every engine equals the golden model's word."""
    result = await run_recorded(EngineTB(dut, tb_args()))
    lines = []
    for e in result["engines"]:
        if e["mismatches"]:
            lines.append(f"engine {e['index']} ({e['name']}): {e['mismatches']} mismatches; "
                         f"first: {format_mismatch(e['first_mismatches'][0])}")
    for p in result["protocol_errors"]:
        lines.append(f"engine {p['engine']}: protocol error at cycle {p['cycle']}: "
                     f"{p['message']}")
    assert not lines, "\n".join(lines)
    dut._log.info("%d words compared over %d steps and %d replays: no mismatch",
                  result["words_compared"], result["steps"], result["replays"])
