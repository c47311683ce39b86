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

Inputs come as JSON in the environment variable ``ZOHW_TB_ARGS``::

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
     "golden_module": "zohw.sw.perturb",
     "expected_path": null}         # precomputed golden streams (JSON), see compute_expected

``golden_seed`` and ``golden_config`` exist to prove that the check can fail: a golden model fed
a different seed, or a different uniform source, must be reported as mismatching. Reloads check
that ``load`` re-seeds completely: the words after a reload must equal the golden model's for
the new seed from step 0, whatever the engine did before.

The result goes as JSON to the path in ``ZOHW_TB_RESULT``: totals (``words_compared``,
``mismatches``, ``steps``, ``replays``, ``cycles``, ``sim_wall_seconds``, ``protocol_errors``)
and per engine the same counts plus the first mismatches as ``{"load", "step", "pass", "cycle",
"lane", "index", "expected", "got"}`` (load 0 is the first load, 1.. the reloads; pass 0 is the
first pass of a step, 1.. are replays; index is ``cycle * P + lane``, the weight index within the
step). The cocotb test fails if there is any
mismatch or protocol error.
"""

import importlib
import json
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import (Event, ReadOnly, RisingEdge, SimTimeoutError,
                             with_timeout)

from zohw.sim.tbio import CLOCK_PERIOD_NS, pulse_reset, run_recorded, sim_cycle, tb_args


DEFAULTS = {
    "seed": 1, "d": 1024, "steps": 8, "backpressure": 0.25, "rng_seed": 0, "max_replays": 2,
    "reloads": [], "golden_seed": None, "report_limit": 8, "busy_timeout": 100_000,
    "stall_timeout": 1000,
    "golden_module": "zohw.sw.perturb", "expected_path": None,
}


def _bit(value):
    """A 1-bit handle value as 0/1; X/Z read as None."""
    return int(value) if value.is_resolvable else None


def decode_lanes(word, lanes, width):
    """Split a ``lanes * width``-bit payload (lane j at bits [j*width, (j+1)*width)) into signed
    integers."""
    mask = (1 << width) - 1
    sign = 1 << (width - 1)
    out = []
    for _ in range(lanes):
        w = word & mask
        out.append(w - (1 << width) if w & sign else w)
        word >>= width
    return out


class StreamSink:
    """Ready/valid sink of one engine's ``z`` stream with seeded random back-pressure.

    The sequencer :meth:`arm`\\ s it for ``count`` transfers of a (load, step, pass); it accepts
    exactly that many (``ready`` is held low afterwards) and then sets :attr:`done`. The monitor
    half samples transfers after ``ReadOnly`` and hands them to the scoreboard.
    """

    def __init__(self, tb, index, stream, busy, lanes, width, backpressure, rng):
        dut = tb.dut
        self.tb = tb
        self.index = index
        self.clk = dut.clk
        self.valid = getattr(dut, f"{stream}__valid")
        self.ready = getattr(dut, f"{stream}__ready")
        self.payload = getattr(dut, f"{stream}__payload")
        self.busy = getattr(dut, busy)
        self.lanes = lanes
        self.width = width
        self.backpressure = backpressure
        self.rng = rng
        self.remaining = 0
        self.load = self.step = self.pass_ = None
        self.cycle = 0
        self.done = Event()
        self.done.set()
        self.stall_cycles = 0
        self.load_cycles = []       # per load: cycles from the load strobe until busy fell
        self.ready.value = 0

    def arm(self, count, load, step, pass_):
        self.remaining = count
        self.load, self.step, self.pass_, self.cycle = load, step, pass_, 0
        if count:
            self.done.clear()

    async def run(self):
        while True:
            await RisingEdge(self.clk)
            ready = self.remaining > 0 and self.rng.random() >= self.backpressure
            self.ready.value = int(ready)
            await ReadOnly()
            valid = _bit(self.valid.value)
            busy = _bit(self.busy.value)
            if valid is None:
                self.tb.protocol_error(self.index, "z.valid is X/Z")
                continue
            if valid and busy:
                self.tb.protocol_error(self.index, "z.valid high while busy")
            if not ready:
                continue
            if not valid:
                self.stall_cycles += 1
                continue
            value = self.payload.value
            if value.is_resolvable:
                raw = value.to_unsigned()
            else:
                raw = None
                self.tb.protocol_error(self.index, "z.payload has X/Z bits during a transfer")
            self.tb.scoreboard.compare(self.index, self.load, self.step, self.pass_, self.cycle,
                                       raw)
            self.cycle += 1
            self.remaining -= 1
            if self.remaining == 0:
                self.done.set()


def encode_lanes(words, width):
    """Inverse of :func:`decode_lanes`: pack signed words, lane j at bits [j*width, ...)."""
    mask = (1 << width) - 1
    raw = 0
    for j, w in enumerate(words):
        raw |= (w & mask) << (j * width)
    return raw


class Scoreboard:
    """Compares each transfer with the golden stream and keeps the first mismatches.

    Transfers are compared as packed payloads (one integer comparison); lanes are decoded only
    to report a mismatch.
    """

    def __init__(self, expected, widths, report_limit):
        # expected[k][load][step][cycle] is the list of P golden words of engine k.
        self.expected = expected
        self.widths = widths
        self.packed = [[[[encode_lanes(words, width) for words in step] for step in stream]
                        for stream in streams]
                       for streams, width in zip(expected, widths)]
        self.report_limit = report_limit
        n = len(expected)
        self.words = [0] * n
        self.mismatches = [0] * n
        self.reports = [[] for _ in range(n)]

    def compare(self, k, load, step, pass_, cycle, raw):
        """Check transfer ``cycle`` of ``step`` (pass ``pass_``, after load ``load``) of engine
        ``k``; ``raw`` is the packed payload, or None if it was not a valid logic value."""
        exp = self.expected[k][load][step][cycle]
        lanes = len(exp)
        self.words[k] += lanes
        if raw is not None and raw == self.packed[k][load][step][cycle]:
            return
        got = decode_lanes(raw, lanes, self.widths[k]) if raw is not None else [None] * lanes
        for lane, (e, g) in enumerate(zip(exp, got)):
            if e != g:
                self.mismatches[k] += 1
                if len(self.reports[k]) < self.report_limit:
                    self.reports[k].append({
                        "load": load, "step": step, "pass": pass_, "cycle": cycle,
                        "lane": lane,
                        "index": cycle * lanes + lane, "expected": e, "got": g})


def format_mismatch(m):
    return (f"load {m['load']} step {m['step']} pass {m['pass']} cycle {m['cycle']} "
            f"lane {m['lane']} "
            f"(index {m['index']}): expected {m['expected']}, got {m['got']}")


class EngineTB:
    """Drives the step protocol on every engine of the DUT together."""

    def __init__(self, dut, args):
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
        self.sinks = [
            StreamSink(self, k, e.get("stream", "z"), e.get("busy", "busy"), c.lanes, c.width,
                       a["backpressure"], random.Random(self.rng.getrandbits(64)))
            for k, (e, c) in enumerate(zip(a["engines"], self.configs))]
        self.strobes = {name: getattr(dut, name) for name in ("load", "advance", "replay")}
        for s in self.strobes.values():
            s.value = 0
        dut.seed.value = 0
        dut.rst.value = 1
        self.clock = Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns")
        self.scoreboard = None

    # -- golden model ----------------------------------------------------------------------

    @property
    def golden(self):
        """The golden-model module, imported only when the host did not precompute."""
        return importlib.import_module(self.args["golden_module"])

    def compute_expected(self):
        """Golden words per engine: from ``expected_path`` (JSON written by the host, see
        :func:`zohw.sim.cosim.golden_streams`) or computed here with the golden model.

        The host computes them when it can: importing torch inside the simulator process is
        several times slower than on the host.
        """
        a = self.args
        segments = self.segments()
        if a.get("expected_path"):
            with open(a["expected_path"]) as f:
                expected = json.load(f)["expected"]
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
        self.scoreboard = Scoreboard(expected, [c.width for c in self.configs],
                                     a["report_limit"])

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
        for sink in self.sinks:
            if _bit(sink.busy.value) != 1:
                self.protocol_error(sink.index, "busy not high after reset")

    async def pulse(self, name):
        """One-cycle strobe; no engine may offer a word in that cycle."""
        await RisingEdge(self.dut.clk)
        self.strobes[name].value = 1
        await ReadOnly()
        for sink in self.sinks:
            if _bit(sink.valid.value) != 0:
                self.protocol_error(sink.index, f"z.valid high during {name}")
        await RisingEdge(self.dut.clk)
        self.strobes[name].value = 0

    async def load(self, seed):
        await RisingEdge(self.dut.clk)
        self.dut.seed.value = seed & 0xFFFF_FFFF
        await self.pulse("load")
        await ReadOnly()
        waited = 0
        busy_cycles = [None] * len(self.sinks)
        while True:
            for s in self.sinks:
                if busy_cycles[s.index] is None and _bit(s.busy.value) == 0:
                    busy_cycles[s.index] = waited
            if None not in busy_cycles:
                break
            if waited >= self.args["busy_timeout"]:
                stuck = [k for k, c in enumerate(busy_cycles) if c is None]
                raise AssertionError(f"busy still high {waited} cycles after load "
                                     f"(engines {stuck})")
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            waited += 1
        for sink, cycles in zip(self.sinks, busy_cycles):
            sink.load_cycles.append(cycles)
        return waited

    async def take(self, load, step, pass_):
        """Every engine delivers its C transfers of (load, step, pass); an engine that stops
        delivering (valid stuck low) fails the test after a generous cycle budget."""
        for sink, cps in zip(self.sinks, self.cycles_per_step):
            sink.arm(cps, load, step, pass_)
        budget = self.args["stall_timeout"] + int(
            20 * max(self.cycles_per_step) / (1.0 - self.args["backpressure"]))
        try:
            await with_timeout(self._all_done(), budget * CLOCK_PERIOD_NS, "ns")
        except SimTimeoutError:
            stuck = {s.index: s.remaining for s in self.sinks if s.remaining}
            raise AssertionError(
                f"engines stalled in load {load} step {step} pass {pass_}: no transfers for "
                f"{budget} cycles (engine: transfers missing) {stuck}") from None

    async def _all_done(self):
        for sink in self.sinks:
            await sink.done.wait()

    async def run(self):
        a = self.args
        self.compute_expected()
        await self.reset()
        for sink in self.sinks:
            cocotb.start_soon(sink.run())
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
        sb = self.scoreboard
        engines = []
        for k, (config, sink) in enumerate(zip(self.configs, self.sinks)):
            engines.append({
                "index": k, "name": config.name, "strategy": config.strategy,
                "config": config.as_dict(), "config_hash": config.config_hash,
                "cycles_per_step": self.cycles_per_step[k],
                "words_compared": sb.words[k] if sb else 0,
                "mismatches": sb.mismatches[k] if sb else 0,
                "first_mismatches": sb.reports[k] if sb else [],
                "stall_cycles": sink.stall_cycles,
                "load_cycles": sink.load_cycles,
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
