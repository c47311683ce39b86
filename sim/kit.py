"""The testbench kit shared by the cocotb testbenches (engine, CIM, trainer).

In the style of cocotbext-axi: a ready/valid stream of the DUT is bound by its Verilog prefix
(Amaranth flattens ``z.valid`` to ``z__valid``), and sources, sinks and monitors take seeded
pause generators for valid gaps and back-pressure::

    src = StreamSource(dut, "x", pause=random_pauses(0.3, rng))
    sink = StreamSink(dut, "y", pause=random_pauses(0.3, rng))
    StreamMonitor(dut, "y", on_transfer).start()

One :class:`Scoreboard` counts comparisons and keeps the first mismatches, each one dict in one
format (where it happened — step, lane, index, cycle and the like —, then ``expected`` and
``got``), rendered by :func:`format_mismatch`. :func:`pack`/:func:`unpack` convert between
lists of two's-complement integers and packed payloads (element j at bits
``[j*width, (j+1)*width)``), on the host and in the simulator alike.

The host (:mod:`zohw.sim.host`) hands a testbench its arguments as a JSON file named by
``ZOHW_TB_ARGS`` (bulk data in ``ZOHW_TB_DATA``) and reads the result document the testbench
writes, atomically, to ``ZOHW_TB_RESULT`` (:func:`run_recorded`).
"""

import json
import os
import random
import time

import cocotb
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from zohw.io import write_json_atomic

__all__ = ["ARGS_ENV", "DATA_ENV", "RESULT_ENV", "CLOCK_PERIOD_NS", "tb_args", "tb_data",
           "run_recorded", "sim_cycle", "pulse_reset", "read", "pack", "unpack",
           "random_pauses", "no_pauses", "Stream", "StreamSource", "StreamSink",
           "StreamMonitor", "Scoreboard", "format_mismatch", "OK", "STALLED", "BUSY_TIMEOUT",
           "ERROR_KINDS", "report_fields", "rom_file"]

ARGS_ENV = "ZOHW_TB_ARGS"
DATA_ENV = "ZOHW_TB_DATA"
RESULT_ENV = "ZOHW_TB_RESULT"
#: Clock period of every testbench.
CLOCK_PERIOD_NS = 10


# -- host <-> testbench -----------------------------------------------------------------------

def tb_args():
    """The testbench's arguments (the JSON file named by ``ZOHW_TB_ARGS``)."""
    with open(os.environ[ARGS_ENV]) as f:
        return json.load(f)


def tb_data():
    """The testbench's bulk data (the JSON file named by ``ZOHW_TB_DATA``), or None."""
    path = os.environ.get(DATA_ENV)
    if not path:
        return None
    with open(path) as f:
        return json.load(f)


async def run_recorded(tb):
    """Run ``tb.run()`` and write ``tb.result(seconds, error)`` to ``ZOHW_TB_RESULT`` whether it
    finished or raised (the exception propagates and fails the cocotb test). Returns the
    result document."""
    start = time.monotonic()
    error = None
    try:
        await tb.run()
    except Exception as exc:  # record what happened, then fail the test
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        result = tb.result(time.monotonic() - start, error)
        if os.environ.get(RESULT_ENV):
            write_json_atomic(os.environ[RESULT_ENV], result)
    return result


# -- clock, reset, values ---------------------------------------------------------------------

def sim_cycle():
    """The current simulation time in clock cycles."""
    from cocotb.simtime import get_sim_time   # only inside a simulator

    return int(get_sim_time(unit="ns") // CLOCK_PERIOD_NS)


async def pulse_reset(dut, cycles=3):
    """Hold ``rst`` for ``cycles`` clock edges, release it, and wait for the next edge."""
    dut.rst.value = 1
    await ClockCycles(dut.clk, cycles)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


def read(handle, signed=False):
    """A handle's value as an integer (two's complement if ``signed``); None if any bit is X/Z."""
    v = handle.value
    if not v.is_resolvable:
        return None
    if not hasattr(v, "to_unsigned"):          # a 1-bit handle gives a Logic
        return int(v)
    return v.to_signed() if signed else v.to_unsigned()


def pack(values, width):
    """Pack integers (two's complement, ``width`` bits each), element j at bits
    ``[j*width, (j+1)*width)``."""
    mask = (1 << width) - 1
    raw = 0
    for j, v in enumerate(values):
        raw |= (int(v) & mask) << (j * width)
    return raw


def unpack(raw, count, width, signed=True):
    """Inverse of :func:`pack`: ``count`` elements of ``width`` bits."""
    mask = (1 << width) - 1
    out = []
    for _ in range(count):
        v = raw & mask
        if signed and v >> (width - 1):
            v -= 1 << width
        out.append(v)
        raw >>= width
    return out


# -- pause generators (valid gaps, back-pressure) ----------------------------------------------

def random_pauses(probability, rng=None):
    """Endless pause pattern: each cycle paused with ``probability`` (seeded by ``rng``, a
    :class:`random.Random` or a seed)."""
    if not 0.0 <= probability < 1.0:
        raise ValueError(f"pause probability must be in [0, 1), not {probability!r}")
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    while True:
        yield rng.random() < probability


def no_pauses():
    """Endless pattern without pauses."""
    while True:
        yield False


# -- streams ----------------------------------------------------------------------------------

class Stream:
    """The handles of a ready/valid stream of the DUT: ``{prefix}__valid``,
    ``{prefix}__ready`` and ``{prefix}__payload``."""

    def __init__(self, dut, prefix, clock=None):
        self.dut = dut
        self.prefix = prefix
        self.clock = clock if clock is not None else dut.clk
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")


class StreamSource(Stream):
    """Drives a stream into the DUT: :meth:`send` offers one payload (after the pauses the
    generator asks for) and returns once it was transferred."""

    def __init__(self, dut, prefix, clock=None, *, pause=None):
        super().__init__(dut, prefix, clock)
        self.pause = pause if pause is not None else no_pauses()
        self.sent = 0
        self.valid.value = 0
        self.payload.value = 0

    async def send(self, payload):
        while next(self.pause):
            await RisingEdge(self.clock)
        self.payload.value = payload
        self.valid.value = 1
        while True:
            await ReadOnly()
            ready = read(self.ready)
            await RisingEdge(self.clock)
            if ready:
                break
        self.sent += 1
        self.valid.value = 0
        self.payload.value = 0


class StreamSink(Stream):
    """Takes a stream from the DUT: drives ``ready`` every cycle — low while paused, and low
    once the armed number of transfers (``credit``; None: unlimited) is used up. Transfers
    are seen by a :class:`StreamMonitor` (or :meth:`transfers`), which calls :meth:`took`."""

    def __init__(self, dut, prefix, clock=None, *, pause=None, credit=None):
        super().__init__(dut, prefix, clock)
        self.pause = pause if pause is not None else no_pauses()
        self.credit = credit
        self.ready.value = 0
        self._task = None

    def arm(self, credit):
        """Accept ``credit`` more transfers (None: without limit)."""
        self.credit = credit

    def took(self):
        """One transfer happened (called by the monitor)."""
        if self.credit is not None:
            self.credit -= 1

    def want(self):
        """Drive ``ready`` for the coming clock edge and return it."""
        ready = (self.credit is None or self.credit > 0) and not next(self.pause)
        self.ready.value = int(ready)
        return ready

    async def _drive(self):
        while True:
            await RisingEdge(self.clock)
            self.want()

    def start(self):
        """Drive ``ready`` from the next clock edge on (``ready`` is low until then)."""
        self._task = cocotb.start_soon(self._drive())
        return self

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.ready.value = 0


class StreamMonitor(Stream):
    """Samples a stream after ``ReadOnly`` in every cycle and calls
    ``on_transfer(raw_payload_or_None)`` for each transfer (``valid`` and ``ready`` high);
    ``on_cycle(valid, ready)`` (optional) sees every cycle, for protocol checks.
    A payload with X/Z bits is passed as None."""

    def __init__(self, dut, prefix, on_transfer, clock=None, *, on_cycle=None, sink=None):
        super().__init__(dut, prefix, clock)
        self.on_transfer = on_transfer
        self.on_cycle = on_cycle
        self.sink = sink
        self.transfers = 0
        self._task = None

    def sample(self):
        """Inspect the current cycle (call after ``ReadOnly``); True if it is a transfer."""
        valid, ready = read(self.valid), read(self.ready)
        if self.on_cycle is not None:
            self.on_cycle(valid, ready)
        if not (valid and ready):
            return False
        v = self.payload.value
        raw = v.to_unsigned() if v.is_resolvable else None
        self.transfers += 1
        if self.sink is not None:
            self.sink.took()
        self.on_transfer(raw)
        return True

    async def _watch(self):
        while True:
            await RisingEdge(self.clock)
            await ReadOnly()
            self.sample()

    def start(self):
        self._task = cocotb.start_soon(self._watch())
        return self

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None


# -- scoreboard -------------------------------------------------------------------------------

class Scoreboard:
    """Counts comparisons and mismatches and keeps the first ``limit`` mismatches, each
    ``{**where, "expected": ..., "got": ...}`` (see :func:`format_mismatch`)."""

    def __init__(self, limit=8):
        self.limit = limit
        self.compared = 0
        self.mismatches = 0
        self.reports = []

    def check(self, expected, got, **where):
        """Compare one value; returns True if it matches."""
        self.compared += 1
        if expected == got:
            return True
        self.mismatches += 1
        if len(self.reports) < self.limit:
            self.reports.append({**where, "expected": expected, "got": got})
        return False

    def check_packed(self, expected, raw, width, *, index_base=0, **where):
        """Compare a packed payload ``raw`` (None: not a valid logic value) with the list
        ``expected`` lane by lane: one comparison per lane, reported with its ``lane`` and
        ``index`` (``index_base + lane``). Matching payloads cost one integer comparison."""
        lanes = len(expected)
        if raw is not None and raw == pack(expected, width):
            self.compared += lanes
            return True
        got = unpack(raw, lanes, width) if raw is not None else [None] * lanes
        ok = True
        for lane, (e, g) in enumerate(zip(expected, got)):
            ok &= self.check(e, g, **where, lane=lane, index=index_base + lane)
        return ok


def format_mismatch(m):
    """One line for a mismatch report: its location keys in order, then expected and got,
    e.g. ``step 2 pass 1 cycle 7 lane 1 (index 29): expected 5, got 4``."""
    where = []
    for k, v in m.items():
        if k in ("expected", "got"):
            continue
        where.append(f"(index {v})" if k == "index" else f"{k} {v}")
    return f"{' '.join(where)}: expected {m['expected']}, got {m['got']}"


# -- the engine harness's interface (zohw.sim.engine_harness; here so that the testbench
# -- reads it without importing Amaranth) ------------------------------------------------------

#: ``status`` after a run: every step done / a pass exceeded its budget / busy stayed high.
OK, STALLED, BUSY_TIMEOUT = 0, 1, 2
#: Protocol error kinds, bit k of a checker's ``errors``.
ERROR_KINDS = ("z.valid high during load", "z.valid high during advance",
               "z.valid high during replay", "z.valid high while busy")


def rom_file(k):
    """Name of engine ``k``'s golden file, relative to the simulation's directory."""
    return f"golden{k}.hex"


def report_fields(lanes, width):
    """``(name, bits)`` of a stored mismatch report, least significant first."""
    return (("load", 8), ("step", 32), ("pass", 8), ("cycle", 32),
            ("expected", lanes * width), ("got", lanes * width))
