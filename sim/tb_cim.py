"""cocotb testbench of a CIM MAC macro (:class:`zohw.hw.cim.CIMSignature`), checked bit for bit
against the golden model :func:`zohw.sw.cim.cim_matvec`.

Ports (Verilog names of the signature): ``clk``, ``rst``, ``write__en/addr/data``,
``read__en/addr/data``, ``x__valid/ready/payload``, ``y__valid/ready/payload``, ``busy``.

Sequence, per *phase* (a weight matrix and a batch of input vectors)::

    phase 0: reset; check the idle state; write every weight through the write port — first a
             decoy value, then the real one in random group order with random lane masks and
             idle gaps; read every weight back (random order, random read-enable gaps, checking
             that ``read.data`` holds while ``en`` is low)
    phase p > 0: write only the weights that differ from phase p-1 (partial lane masks)
    every phase: stream the input vectors with random valid gaps while a sink applies random
             back-pressure to ``y``; a monitor samples both streams after ``ReadOnly`` and the
             scoreboard compares every column of every result with the expected one.

The monitor also measures the latency of every vector — the number of cycles from the input
transfer to the first cycle in which ``y.valid`` is high — and checks it against the macro's
analytic ``cycles_per_vector``; it checks that ``y.valid``/``y.payload`` stay stable until the
result is taken, that ``x.ready`` is low while ``busy``, and that there are no X/Z values.

Arguments come as JSON (:func:`zohw.sim.kit.tb_args`)::

    {"config": {...CIMConfig fields...},
     "cycles_per_vector": 12,    # the DUT's analytic latency (the macro object's)
     "read_latency": 1,
     "rng_seed": 0, "backpressure": 0.3, "input_gaps": 0.3, "report_limit": 8}

and the bulk data (:func:`zohw.sim.kit.tb_data`) is ``{"phases": [{"weights": [[r][c]],
"inputs": [[v][r]], "expected": [[v][c]] (optional)}]}``. Without ``expected`` in a phase the
testbench computes it with the golden model (importing torch in the simulator process is slow,
so the host normally supplies it; see :func:`zohw.sim.cim.expected_phases`). The result document
(:func:`zohw.sim.kit.run_recorded`) has counts
(``vectors``, ``columns_compared``, ``mismatches``, ``weights_read``, ``weight_mismatches``,
``latency_errors``, ``protocol_errors``), the measured latencies and the first mismatches as
``{"phase", "vector", "lane", "index", "expected", "got"}`` (lane: the result column; index:
``vector * cols + lane``). The cocotb test fails on any of them.
"""

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from zohw.sim.kit import (CLOCK_PERIOD_NS, Scoreboard, StreamSink, StreamSource,
                          format_mismatch, pack, pulse_reset, random_pauses, read, run_recorded,
                          tb_args, tb_data, unpack)


DEFAULTS = {"rng_seed": 0, "backpressure": 0.3, "input_gaps": 0.3, "report_limit": 8,
            "read_latency": 1, "timeout_cycles": None}


class CIMTB:
    def __init__(self, dut, args, data):
        from zohw.cim_config import CIMConfig

        self.dut = dut
        self.args = a = {**DEFAULTS, **args}
        self.cfg = cfg = CIMConfig.from_dict(a["config"])
        self.rng = random.Random(a["rng_seed"])
        self.cycles_per_vector = a["cycles_per_vector"]
        self.read_latency = a["read_latency"]
        self.phases = data["phases"]
        self.cycle = 0
        self.protocol_errors = []
        self.results = Scoreboard(a["report_limit"])
        self.weights = Scoreboard(a["report_limit"])
        self.weights_read = 0
        self.latencies = []
        self.latency_errors = []
        self.vectors = 0
        self.memory = None          # the testbench's model of the weight array (flat list)
        self.clock = Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns")
        dut.rst.value = 1
        dut.write__en.value = 0
        dut.write__addr.value = 0
        dut.write__data.value = 0
        dut.read__en.value = 0
        dut.read__addr.value = 0
        self.x = StreamSource(dut, "x", pause=random_pauses(a["input_gaps"], self.rng))
        self.y = StreamSink(dut, "y", pause=random_pauses(a["backpressure"], self.rng))

    # -- helpers -------------------------------------------------------------------------------

    def protocol_error(self, message):
        if len(self.protocol_errors) < 32:
            self.protocol_errors.append({"cycle": self.cycle, "message": message})

    async def counter(self):
        while True:
            await RisingEdge(self.dut.clk)
            self.cycle += 1

    async def edge(self):
        await RisingEdge(self.dut.clk)

    def _bit(self, handle, name):
        v = read(handle)
        if v is None:
            self.protocol_error(f"{name} is X/Z")
        return v

    async def reset(self):
        self.clock.start()
        cocotb.start_soon(self.counter())
        await pulse_reset(self.dut)
        await ReadOnly()
        if self._bit(self.dut.busy, "busy") != 0:
            self.protocol_error("busy high after reset")
        if self._bit(self.dut.y__valid, "y.valid") != 0:
            self.protocol_error("y.valid high after reset")
        if self._bit(self.dut.x__ready, "x.ready") != 1:
            self.protocol_error("x.ready low after reset (macro idle)")

    # -- weight port ---------------------------------------------------------------------------

    async def write_group(self, group, values, mask):
        """One write transfer: lanes in ``mask`` of ``group`` get ``values``."""
        cfg = self.cfg
        L = cfg.write_lanes
        await RisingEdge(self.dut.clk)
        self.dut.write__addr.value = group
        self.dut.write__data.value = pack(values, cfg.weight_bits)
        self.dut.write__en.value = mask
        for j in range(L):
            n = group * L + j
            if mask >> j & 1 and n < cfg.words:
                self.memory[n] = values[j]
        await RisingEdge(self.dut.clk)
        self.dut.write__en.value = 0
        while self.rng.random() < 0.2:
            await RisingEdge(self.dut.clk)

    async def write_weights(self, flat, only_changed):
        """Bring the array to ``flat`` (row-major) through the write port."""
        cfg = self.cfg
        L = cfg.write_lanes
        full = (1 << L) - 1
        if self.memory is None:
            self.memory = [0] * cfg.words      # reset value of the behavioural macro
        groups = list(range(cfg.write_groups))
        self.rng.shuffle(groups)
        for g in groups:
            idx = [g * L + j for j in range(L)]
            todo = {j for j, n in enumerate(idx) if n < cfg.words
                    and (not only_changed or self.memory[n] != flat[n])}
            if not todo:
                continue
            final = [flat[n] if n < cfg.words else self.rng.randint(cfg.weight_min,
                                                                    cfg.weight_max)
                     for n in idx]
            if not only_changed:
                decoy = [self.rng.randint(cfg.weight_min, cfg.weight_max) for _ in idx]
                await self.write_group(g, decoy, full)
            while todo:
                pick = {j for j in todo if self.rng.random() < 0.6} or {min(todo)}
                mask = sum(1 << j for j in pick)
                # lanes outside the mask carry garbage that must not be written
                vals = [final[j] if j in pick else self.rng.randint(cfg.weight_min,
                                                                    cfg.weight_max)
                        for j in range(L)]
                await self.write_group(g, vals, mask)
                todo -= pick

    async def read_back(self):
        """Read every weight group (random order, random enable gaps) and compare with the
        model; in cycles after a read with ``en`` low, check that ``read.data`` holds."""
        cfg = self.cfg
        order = list(range(cfg.write_groups))
        self.rng.shuffle(order)
        pending = []                  # (edge that samples the request, index)
        shown = None
        i = 0
        while i < len(order) or pending:
            await RisingEdge(self.dut.clk)
            issue = i < len(order) and self.rng.random() < 0.75
            self.dut.read__en.value = int(issue)
            if issue:
                self.dut.read__addr.value = order[i]
            await ReadOnly()
            # a request sampled at edge s shows from edge s + read_latency - 1 on (this cycle's
            # ReadOnly comes after edge self.cycle)
            popped = False
            while pending and self.cycle >= pending[0][0] + self.read_latency - 1:
                _, shown = pending.pop(0)
                self._check_read(shown)
                popped = True
            if not popped and shown is not None:
                self._check_read(shown, hold=True)
            if issue:
                pending.append((self.cycle + 1, order[i]))
                i += 1
        await RisingEdge(self.dut.clk)
        self.dut.read__en.value = 0
        await ReadOnly()
        self._check_read(shown, hold=True)
        await RisingEdge(self.dut.clk)

    def _check_read(self, group, hold=False):
        """Compare the banked read of ``group``: lane j is the weight of flat index
        ``group * write_lanes + j``; lanes past the last weight read 0."""
        cfg = self.cfg
        L = cfg.write_lanes
        raw = read(self.dut.read__data)
        got = unpack(raw, L, cfg.weight_bits) if raw is not None else [None] * L
        for j, g in enumerate(got):
            n = group * L + j
            if n >= cfg.words:
                self.weights.check(0, g, index=n, lane=j, hold=hold)
                continue
            if not hold:
                self.weights_read += 1
            r, c = divmod(n, cfg.cols)
            self.weights.check(self.memory[n], g, index=n, row=r, col=c, hold=hold)

    # -- streams -------------------------------------------------------------------------------

    async def drive_inputs(self, inputs):
        for vec in inputs:
            await self.x.send(pack(vec, self.cfg.input_bits))

    async def monitor(self, phase, expected):
        """Sample both streams after ReadOnly in every cycle; score every result."""
        cfg = self.cfg
        dut = self.dut
        n = len(expected)
        transfers = []               # cycle of each input transfer (observed before the edge)
        first_valid = None           # cycle y.valid rose for the result in the output register
        held = None                  # payload offered while waiting for ready
        got = 0
        timeout = self.args["timeout_cycles"] or (self.cycles_per_vector + 64) * (n + 4) * 4
        start = self.cycle
        first = True
        while got < n:
            if not first:        # the first sample is of the cycle the monitor starts in
                await RisingEdge(dut.clk)
            first = False
            await ReadOnly()
            if self.cycle - start > timeout:
                raise AssertionError(f"phase {phase}: {got} of {n} results after {timeout} "
                                     "cycles")
            xv = self._bit(dut.x__valid, "x.valid")
            xr = self._bit(dut.x__ready, "x.ready")
            busy = self._bit(dut.busy, "busy")
            yv = self._bit(dut.y__valid, "y.valid")
            yr = self._bit(dut.y__ready, "y.ready")
            if busy and xr:
                self.protocol_error("x.ready high while busy")
            if xv and xr:
                transfers.append(self.cycle)
            if yv:
                raw = read(dut.y__payload)
                if raw is None:
                    self.protocol_error("y.payload has X/Z bits while valid")
                if first_valid is None:
                    first_valid = self.cycle
                    if got >= len(transfers):
                        self.protocol_error("y.valid without a pending input vector")
                    else:
                        lat = first_valid - transfers[got]
                        self.latencies.append(lat)
                        if lat != self.cycles_per_vector and len(self.latency_errors) < 16:
                            self.latency_errors.append({"phase": phase, "vector": got,
                                                        "measured": lat,
                                                        "expected": self.cycles_per_vector})
                    held = raw
                elif raw != held:
                    self.protocol_error("y.payload changed while y.valid waited for ready")
                if yr:
                    self.score(phase, got, expected[got], raw)
                    got += 1
                    first_valid = held = None
            elif first_valid is not None:
                self.protocol_error("y.valid fell before the result was taken")
                first_valid = held = None

    def score(self, phase, vector, exp, raw):
        self.vectors += 1
        self.results.check_packed(exp, raw, self.cfg.result_bits,
                                  index_base=vector * self.cfg.cols, phase=phase, vector=vector)

    async def wait_idle(self):
        while True:
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            if not self._bit(self.dut.busy, "busy") and not self._bit(self.dut.y__valid,
                                                                     "y.valid"):
                break
        await RisingEdge(self.dut.clk)

    # -- the whole run -------------------------------------------------------------------------

    def expected(self):
        if all("expected" in ph for ph in self.phases):
            return [ph["expected"] for ph in self.phases]
        from zohw.sim.cim import expected_phases

        return expected_phases(self.cfg, self.phases)

    async def run(self):
        expected = self.expected()
        await self.reset()
        for p, ph in enumerate(self.phases):
            flat = [w for row in ph["weights"] for w in row]
            await self.write_weights(flat, only_changed=p > 0)
            if p == 0:
                await self.read_back()
            mon = cocotb.start_soon(self.monitor(p, expected[p]))
            self.y.start()
            await self.drive_inputs(ph["inputs"])
            await mon
            await RisingEdge(self.dut.clk)
            self.y.stop()
            await self.wait_idle()
        # the last phase's weights read back once more after all the computing
        await self.read_back()

    def result(self, wall, error=None):
        return {
            "config": self.cfg.as_dict(), "name": self.cfg.name,
            "vectors": self.vectors, "columns_compared": self.results.compared,
            "mismatches": self.results.mismatches, "first_mismatches": self.results.reports,
            "weights_read": self.weights_read, "weight_mismatches": self.weights.mismatches,
            "first_weight_mismatches": self.weights.reports,
            "cycles_per_vector": self.cycles_per_vector,
            "latency_min": min(self.latencies) if self.latencies else None,
            "latency_max": max(self.latencies) if self.latencies else None,
            "latency_errors": self.latency_errors,
            "protocol_errors": self.protocol_errors,
            "cycles": self.cycle, "sim_wall_seconds": wall, "error": error,
        }


@cocotb.test()
async def cim_cross_check(dut):
    """Weights written and read back; every result column equals the golden model's."""
    result = await run_recorded(CIMTB(dut, tb_args(), tb_data()))
    lines = []
    if result["mismatches"]:
        lines.append(f"{result['mismatches']} result mismatches of {result['columns_compared']} "
                     f"columns; first: " + "; ".join(map(format_mismatch,
                                                          result["first_mismatches"][:4])))
    if result["weight_mismatches"]:
        lines.append(f"{result['weight_mismatches']} weight read-back mismatches; first: "
                     f"{format_mismatch(result['first_weight_mismatches'][0])}")
    for e in result["latency_errors"][:4]:
        lines.append(f"phase {e['phase']} vector {e['vector']}: latency {e['measured']} "
                     f"cycles, cycles_per_vector says {e['expected']}")
    for p in result["protocol_errors"][:8]:
        lines.append(f"protocol error at cycle {p['cycle']}: {p['message']}")
    assert not lines, "\n".join(lines)
    dut._log.info("%d vectors (%d columns) and %d weight reads compared: no mismatch; "
                  "latency %s cycles", result["vectors"], result["columns_compared"],
                  result["weights_read"], result["latency_min"])
