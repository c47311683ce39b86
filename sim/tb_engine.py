"""cocotb testbench: cross-check perturbation engines cycle by cycle against the golden model.

It drives either one :class:`zohw.hw.engine.PerturbationEngine` (ports ``busy``, ``z__*``) or an
:class:`zohw.sim.bank.EngineBank` (ports ``busyK``, ``zK__*``) through the step protocol of
``docs/engine-contract.md``::

    reset; seed; pulse load; wait until every busy is low
    for each step: take C = cycles_per_step(config, d) transfers from every engine,
                   then 1..max_replays times: pulse replay and take the C transfers again,
                   then pulse advance
    for each reload (optional): the same with another seed, without a reset in between

Every engine's ``z.ready`` gets independent random back-pressure (seeded). A monitor samples
each transfer (``valid & ready``, after ``ReadOnly``), and the scoreboard compares every lane of
every transfer — first passes and replays alike — with
``zohw.sw.perturb.golden_stream(config, seed, d, steps)``. The protocol rules of the contract that
a testbench can observe are checked as well: ``busy`` high after reset, ``valid`` low while
``busy`` and in every strobe cycle, and ``busy`` falling within a bounded number of cycles after
``load``.

Arguments come as JSON (:func:`zohw.sim.kit.tb_args`)::

    {"engines": [{"config": {...EngineConfig fields...}, "stream": "z0", "busy": "busy0",
                  "golden_config": {...field overrides...},        # optional
                  "cycles_per_step": 64}],                         # optional
     "seed": 1, "d": 1024, "steps": 8,
     "backpressure": 0.25,          # probability that ready is low in a cycle
     "rng_seed": 0,                 # testbench randomness (back-pressure, replay counts)
     "max_replays": 2,              # replays per step drawn from 1..max_replays
     "reloads": [{"seed": 7, "steps": 2}],  # further loads after the first run (optional)
     "golden_seed": null,           # seed given to the golden model for the first load
     "report_limit": 8,             # mismatch reports kept per engine
     "busy_timeout": 100000,        # cycles allowed for busy to fall after load
     "stall_timeout": 1000,         # extra cycles allowed per pass before a stall is reported
     "golden_module": "zohw.sw.perturb"}

and the golden streams, when the host precomputed them, as ``{"expected": ...}`` in the bulk
data (:func:`zohw.sim.kit.tb_data`; see :meth:`EngineTB.compute_expected`).

``golden_seed`` and ``golden_config`` exist to prove that the check can fail: a golden model fed
a different seed, or a different uniform source, must be reported as mismatching. Reloads check
that ``load`` re-seeds completely: the words after a reload must equal the golden model's for
the new seed from step 0, whatever the engine did before.

The result document (:func:`zohw.sim.kit.run_recorded`) has totals (``words_compared``,
``mismatches``, ``steps``, ``replays``, ``cycles``, ``sim_wall_seconds``, ``protocol_errors``)
and per engine the same counts plus the first mismatches as ``{"load", "step", "pass", "cycle",
"lane", "index", "expected", "got"}`` (load 0 is the first load, 1.. the reloads; pass 0 is the
first pass of a step, 1.. are replays; index is ``cycle * P + lane``, the weight index within the
step). The cocotb test fails if there is any mismatch or protocol error.
"""

import importlib
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import Event, ReadOnly, RisingEdge, SimTimeoutError, with_timeout

from zohw.sim.kit import (CLOCK_PERIOD_NS, Scoreboard, StreamMonitor, StreamSink,
                          format_mismatch, pulse_reset, random_pauses, read, run_recorded,
                          sim_cycle, tb_args, tb_data)


DEFAULTS = {
    "seed": 1, "d": 1024, "steps": 8, "backpressure": 0.25, "rng_seed": 0, "max_replays": 2,
    "reloads": [], "golden_seed": None, "report_limit": 8, "busy_timeout": 100_000,
    "stall_timeout": 1000, "golden_module": "zohw.sw.perturb",
}


class EnginePort:
    """One engine's ``z`` stream and ``busy``: a sink with seeded back-pressure, armed for the
    C transfers of a (load, step, pass), and a monitor that scores every transfer and checks
    the protocol (``valid`` never X/Z nor high while ``busy``)."""

    def __init__(self, tb, index, stream, busy, width, backpressure, rng):
        self.tb = tb
        self.index = index
        self.width = width
        self.busy = getattr(tb.dut, busy)
        self.sink = StreamSink(tb.dut, stream, pause=random_pauses(backpressure, rng),
                               credit=0)
        self.monitor = StreamMonitor(tb.dut, stream, self.transfer, on_cycle=self.cycle_check,
                                     sink=self.sink)
        self.load = self.step = self.pass_ = None
        self.cycle = 0
        self.done = Event()
        self.done.set()
        self.stall_cycles = 0
        self.load_cycles = []       # per load: cycles from the load strobe until busy fell

    @property
    def remaining(self):
        return self.sink.credit

    def arm(self, count, load, step, pass_):
        self.load, self.step, self.pass_, self.cycle = load, step, pass_, 0
        self.sink.arm(count)
        if count:
            self.done.clear()

    def cycle_check(self, valid, ready):
        if valid is None:
            self.tb.protocol_error(self.index, "z.valid is X/Z")
            return
        if valid and read(self.busy):
            self.tb.protocol_error(self.index, "z.valid high while busy")
        if ready and not valid:
            self.stall_cycles += 1

    def transfer(self, raw):
        if raw is None:
            self.tb.protocol_error(self.index, "z.payload has X/Z bits during a transfer")
        sb = self.tb.scoreboards[self.index]
        expected = self.tb.expected[self.index][self.load][self.step][self.cycle]
        sb.check_packed(expected, raw, self.width, index_base=self.cycle * len(expected),
                        load=self.load, step=self.step, **{"pass": self.pass_},
                        cycle=self.cycle)
        self.cycle += 1
        if self.sink.credit == 0:
            self.done.set()


class EngineTB:
    """Drives the step protocol on every engine of the DUT together."""

    def __init__(self, dut, args, data=None):
        from zohw.config import EngineConfig

        self.dut = dut
        self.args = {**DEFAULTS, **args}
        a = self.args
        self.rng = random.Random(a["rng_seed"])
        self.configs = [EngineConfig.from_dict(e["config"]) for e in a["engines"]]
        self.golden_configs = [
            EngineConfig.from_dict({**e["config"], **(e.get("golden_config") or {})})
            for e in a["engines"]]
        self.cycles_per_step = [
            e["cycles_per_step"] if "cycles_per_step" in e else
            self.golden.cycles_per_step(c, a["d"]) for e, c in zip(a["engines"], self.configs)]
        self.protocol_errors = []
        self.steps_done = 0
        self.replays = 0
        self.data = data
        self.ports = [
            EnginePort(self, k, e.get("stream", "z"), e.get("busy", "busy"), c.width,
                       a["backpressure"], random.Random(self.rng.getrandbits(64)))
            for k, (e, c) in enumerate(zip(a["engines"], self.configs))]
        self.strobes = {name: getattr(dut, name) for name in ("load", "advance", "replay")}
        for s in self.strobes.values():
            s.value = 0
        dut.seed.value = 0
        dut.rst.value = 1
        self.clock = Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns")
        self.expected = None
        self.scoreboards = None

    # -- golden model ----------------------------------------------------------------------

    @property
    def golden(self):
        """The golden-model module, imported only when the host did not precompute."""
        return importlib.import_module(self.args["golden_module"])

    def compute_expected(self):
        """Golden words per engine: from the bulk data (written by the host, see
        :func:`zohw.sim.engine.golden_streams`) or computed here with the golden model.

        The host computes them when it can: importing torch inside the simulator process is
        several times slower than on the host.
        """
        a = self.args
        segments = self.segments()
        if self.data is not None:
            expected = self.data["expected"]
        else:
            import torch

            torch.set_num_threads(1)
            expected = [[self.golden.golden_stream(g, seed, a["d"], steps).tolist()
                         for seed, steps in self.golden_segments()]
                        for g in self.golden_configs]
        if len(expected) != len(self.configs):
            raise AssertionError(f"{len(expected)} golden streams for {len(self.configs)} "
                                 "engines")
        for config, streams, cps in zip(self.configs, expected, self.cycles_per_step):
            if len(streams) != len(segments):
                raise AssertionError(f"{len(streams)} golden segments for {config.name}, "
                                     f"expected {len(segments)}")
            for stream, (_, steps) in zip(streams, segments):
                shape = (len(stream), len(stream[0]) if stream else 0,
                         len(stream[0][0]) if stream and stream[0] else 0)
                if shape != (steps, cps, config.lanes):
                    raise AssertionError(f"golden stream of {config.name} has shape {shape}, "
                                         f"expected {(steps, cps, config.lanes)}")
        self.expected = expected
        self.scoreboards = [Scoreboard(a["report_limit"]) for _ in self.configs]

    def segments(self):
        """``(seed, steps)`` of the first load and of every reload."""
        a = self.args
        return [(a["seed"], a["steps"])] + [(r["seed"], r["steps"]) for r in a["reloads"]]

    def golden_segments(self):
        """:meth:`segments` as the golden model sees them (``golden_seed`` replaces the first
        seed)."""
        segs = self.segments()
        if self.args["golden_seed"] is not None:
            segs[0] = (self.args["golden_seed"], segs[0][1])
        return segs

    # -- protocol ---------------------------------------------------------------------------

    def protocol_error(self, k, message):
        if len(self.protocol_errors) < 32:
            self.protocol_errors.append({"engine": k, "cycle": self.cycle_now(),
                                         "message": message})

    def cycle_now(self):
        return sim_cycle()

    async def reset(self):
        self.clock.start()
        await pulse_reset(self.dut)
        await ReadOnly()
        for port in self.ports:
            if read(port.busy) != 1:
                self.protocol_error(port.index, "busy not high after reset")

    async def pulse(self, name):
        """One-cycle strobe; no engine may offer a word in that cycle."""
        await RisingEdge(self.dut.clk)
        self.strobes[name].value = 1
        await ReadOnly()
        for port in self.ports:
            if read(port.sink.valid) != 0:
                self.protocol_error(port.index, f"z.valid high during {name}")
        await RisingEdge(self.dut.clk)
        self.strobes[name].value = 0

    async def load(self, seed):
        await RisingEdge(self.dut.clk)
        self.dut.seed.value = seed & 0xFFFF_FFFF
        await self.pulse("load")
        await ReadOnly()
        waited = 0
        busy_cycles = [None] * len(self.ports)
        while True:
            for p in self.ports:
                if busy_cycles[p.index] is None and read(p.busy) == 0:
                    busy_cycles[p.index] = waited
            if None not in busy_cycles:
                break
            if waited >= self.args["busy_timeout"]:
                stuck = [k for k, c in enumerate(busy_cycles) if c is None]
                raise AssertionError(f"busy still high {waited} cycles after load "
                                     f"(engines {stuck})")
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            waited += 1
        for port, cycles in zip(self.ports, busy_cycles):
            port.load_cycles.append(cycles)
        return waited

    async def take(self, load, step, pass_):
        """Every engine delivers its C transfers of (load, step, pass); an engine that stops
        delivering (valid stuck low) fails the test after a generous cycle budget."""
        for port, cps in zip(self.ports, self.cycles_per_step):
            port.arm(cps, load, step, pass_)
        budget = self.args["stall_timeout"] + int(
            20 * max(self.cycles_per_step) / (1.0 - self.args["backpressure"]))
        try:
            await with_timeout(self._all_done(), budget * CLOCK_PERIOD_NS, "ns")
        except SimTimeoutError:
            stuck = {p.index: p.remaining for p in self.ports if p.remaining}
            raise AssertionError(
                f"engines stalled in load {load} step {step} pass {pass_}: no transfers for "
                f"{budget} cycles (engine: transfers missing) {stuck}") from None

    async def _all_done(self):
        for port in self.ports:
            await port.done.wait()

    async def run(self):
        a = self.args
        self.compute_expected()
        await self.reset()
        for port in self.ports:
            port.sink.start()
            port.monitor.start()
        self.load_cycles = []
        for load, (seed, steps) in enumerate(self.segments()):
            self.load_cycles.append(await self.load(seed))
            for step in range(steps):
                replays = self.rng.randint(1, max(1, a["max_replays"]))
                for pass_ in range(1 + replays):
                    if pass_:
                        await self.pulse("replay")
                        self.replays += 1
                    await self.take(load, step, pass_)
                await self.pulse("advance")
                self.steps_done += 1

    # -- results ----------------------------------------------------------------------------

    def result(self, wall, error=None):
        sbs = self.scoreboards
        engines = []
        for k, (config, port) in enumerate(zip(self.configs, self.ports)):
            engines.append({
                "index": k, "name": config.name, "strategy": config.strategy,
                "config": config.as_dict(), "config_hash": config.config_hash,
                "cycles_per_step": self.cycles_per_step[k],
                "words_compared": sbs[k].compared if sbs else 0,
                "mismatches": sbs[k].mismatches if sbs else 0,
                "first_mismatches": sbs[k].reports if sbs else [],
                "stall_cycles": port.stall_cycles,
                "load_cycles": port.load_cycles,
            })
        return {
            "engines": engines,
            "words_compared": sum(e["words_compared"] for e in engines),
            "mismatches": sum(e["mismatches"] for e in engines),
            "steps": self.steps_done,
            "replays": self.replays,
            "cycles": self.cycle_now(),
            "loads": len(self.segments()),
            "load_cycles": getattr(self, "load_cycles", []),
            "sim_wall_seconds": wall,
            "protocol_errors": self.protocol_errors,
            "error": error,
            "args": self.args,
        }


@cocotb.test()
async def cross_check(dut):
    """Every transfer of every engine equals the golden model's word."""
    result = await run_recorded(EngineTB(dut, tb_args(), tb_data()))
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
