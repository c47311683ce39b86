"""The engine cross-check's RTL test harness: the step protocol, seeded back-pressure and the
word-by-word comparison run inside the Verilated model, so no Python runs per clock.

:class:`EngineHarness` wraps the engines under test (one, or a bank that shares ``seed``,
``load``, ``advance`` and ``replay``). For every load the host asks for (``go``), its sequencer

1. strobes ``load`` and waits until every engine's ``busy`` is low (at most ``busy_timeout``
   cycles), counting the cycles;
2. runs ``seg_steps`` steps; each step is one pass plus ``1 .. max_replays`` replays (drawn
   from a xorshift32 seeded by ``rng_seed``), separated by one-cycle ``replay`` strobes and
   ended by one ``advance`` strobe;
3. in a pass, arms one :class:`StreamChecker` per engine for its ``count`` transfers, and
   gives up with status :data:`STALLED` when the pass takes more than ``pass_budget`` cycles.

A :class:`StreamChecker` drives its engine's ``z.ready`` — low in a cycle with probability
``threshold / 2**16`` (its own xorshift32) and once its transfers are done — and compares every
transfer with the golden row its pointer addresses in a :class:`GoldenRom` (``$readmemh`` of a
file the host writes before the simulation starts: rows are the golden transfers, segment by
segment, step by step; a replay rewinds the pointer to the step's first row). It counts words
compared, mismatching words (lanes), cycles of ``ready`` without ``valid``, and protocol errors
(``valid`` in a strobe cycle or while ``busy``, first cycle of each kind kept), and stores the
first ``report_limit`` mismatching transfers — load, step, pass, transfer index, expected and
received payload — in a small memory the host reads through ``rep_addr`` at the end.
"""

from amaranth.hdl import Cat, Const, Instance, Module, Mux, Signal, signed
from amaranth.lib import memory, stream, wiring
from amaranth.lib.data import ArrayLayout
from amaranth.lib.wiring import In, Out

from .kit import BUSY_TIMEOUT, ERROR_KINDS, OK, STALLED, report_fields, rom_file

__all__ = ["EngineHarness", "StreamChecker", "GoldenRom", "ROM_VERILOG", "HARNESS_TOPLEVEL",
           "OK", "STALLED", "BUSY_TIMEOUT", "ERROR_KINDS", "report_fields", "rom_file",
           "harness_verilog"]

HARNESS_TOPLEVEL = "zohw_engine_harness"

#: The golden memory: a parameterised Verilog module (Amaranth has no ``$readmemh``).
ROM_VERILOG = """\
module zohw_golden_rom #(
  parameter WIDTH = 8,
  parameter ABITS = 1,
  parameter FILE = "golden.hex"
) (
  input wire [ABITS-1:0] addr,
  output wire [WIDTH-1:0] data
);
  reg [WIDTH-1:0] mem [0:(1 << ABITS) - 1];
  initial $readmemh(FILE, mem);
  assign data = mem[addr];
endmodule
"""


def _xorshift32(s):
    s = s ^ (s << 13)[:32]
    s = s ^ (s >> 17)
    return s ^ (s << 5)[:32]


def _seeded(seed, salt):
    """A non-zero xorshift32 state from a seed and a per-instance constant."""
    x = seed ^ Const((0x9E37_79B9 * (salt + 1)) & 0xFFFF_FFFF, 32)
    return Mux(x == 0, 1, x)


class GoldenRom(wiring.Component):
    """``2**abits`` rows of ``width`` bits from the hex file ``file``; asynchronous read."""

    def __init__(self, width, abits, file):
        self._width, self._abits, self._file = width, abits, file
        super().__init__({"addr": In(abits), "data": Out(width)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.rom = Instance("zohw_golden_rom", p_WIDTH=self._width,
                                    p_ABITS=self._abits, p_FILE=self._file,
                                    i_addr=self.addr, o_data=self.data)
        return m


class StreamChecker(wiring.Component):
    """Consumes one engine's ``z`` stream and compares it with the golden rows (see the module
    docstring). Engine ``index`` salts the back-pressure generator."""

    def __init__(self, lanes, width, *, index, abits, report_limit):
        self._lanes, self._width, self._index = lanes, width, index
        self._abits, self._limit = abits, report_limit
        rbits = sum(b for _, b in report_fields(lanes, width))
        super().__init__({
            "z": In(stream.Signature(ArrayLayout(signed(width), lanes))),
            "busy": In(1),
            "rng_seed": In(32), "threshold": In(17), "reseed": In(1),
            "arm": In(1), "count": In(32), "step_end": In(1),
            "strobe": In(3),            # one-hot: load, advance, replay
            "load_idx": In(8), "step_idx": In(32), "pass_idx": In(8), "cycle": In(48),
            "done": Out(1), "remaining": Out(32),
            "compared": Out(48), "mismatches": Out(48), "stall_cycles": Out(48),
            "busy_cycles": Out(32),
            "errors": Out(len(ERROR_KINDS)),
            **{f"err_cycle{j}": Out(48) for j in range(len(ERROR_KINDS))},
            "n_reports": Out(range(report_limit + 1)),
            "rep_addr": In(range(max(2, report_limit))), "report": Out(rbits),
        })

    def elaborate(self, platform):
        P, B = self._lanes, self._width
        m = Module()
        m.submodules.golden = rom = GoldenRom(P * B, self._abits, rom_file(self._index))
        m.submodules.reports = mem = memory.Memory(shape=len(self.report), depth=self._limit,
                                                   init=[])
        wr = mem.write_port()
        rd = mem.read_port(domain="comb")

        rng = Signal(32, init=1)
        m.d.sync += rng.eq(Mux(self.reseed, _seeded(self.rng_seed, self._index),
                               _xorshift32(rng)))
        pause = rng[:16] < self.threshold
        base = Signal(self._abits)            # first golden row of the current step
        ptr = Signal(self._abits)
        m.d.comb += [self.done.eq(self.remaining == 0),
                     self.z.ready.eq(~self.done & ~pause),
                     rom.addr.eq(ptr)]
        transfer = self.z.valid & self.z.ready
        got = self.z.payload.as_value()
        lane_bad = Cat(rom.data[j * B:(j + 1) * B] != got[j * B:(j + 1) * B] for j in range(P))
        with m.If(self.arm):
            m.d.sync += [ptr.eq(base), self.remaining.eq(self.count)]
        with m.Elif(transfer):
            m.d.sync += [ptr.eq(ptr + 1), self.remaining.eq(self.remaining - 1),
                         self.compared.eq(self.compared + P),
                         self.mismatches.eq(self.mismatches + sum(lane_bad))]
        with m.If(self.step_end):
            m.d.sync += base.eq(base + self.count)
        with m.If(self.z.ready & ~self.z.valid):
            m.d.sync += self.stall_cycles.eq(self.stall_cycles + 1)

        # the first mismatching transfers, stored for the host
        index = Signal(32)                    # transfer index within the pass
        m.d.comb += [index.eq(ptr - base), wr.addr.eq(self.n_reports),
                     wr.data.eq(Cat(self.load_idx, self.step_idx, self.pass_idx, index,
                                    rom.data, got)),
                     wr.en.eq(transfer & (lane_bad != 0) & (self.n_reports < self._limit)),
                     rd.addr.eq(self.rep_addr), self.report.eq(rd.data)]
        with m.If(wr.en):
            m.d.sync += self.n_reports.eq(self.n_reports + 1)

        # protocol: no word offered in a strobe cycle or while busy
        bad = Cat(self.strobe & self.z.valid.replicate(3), self.z.valid & self.busy)
        for j in range(len(ERROR_KINDS)):
            with m.If(bad[j] & ~self.errors[j]):
                m.d.sync += [self.errors[j].eq(1),
                             getattr(self, f"err_cycle{j}").eq(self.cycle)]

        # cycles from the load strobe until busy fell
        counting = Signal()
        with m.If(self.strobe[0]):
            m.d.sync += [counting.eq(1), self.busy_cycles.eq(0)]
        with m.Elif(counting):
            with m.If(self.busy):
                m.d.sync += self.busy_cycles.eq(self.busy_cycles + 1)
            with m.Else():
                m.d.sync += counting.eq(0)
        return m


class EngineHarness(wiring.Component):
    """The engines of ``configs`` (built by ``engine_factory``, default
    :class:`zohw.hw.engine.PerturbationEngine`) with one :class:`StreamChecker` each and the
    step sequencer. ``abits[k]``: address bits of engine k's golden memory."""

    def __init__(self, configs, abits, *, engine_factory=None, report_limit=8):
        self._configs = tuple(configs)
        self._abits = tuple(abits)
        self._factory = engine_factory
        self._limit = report_limit
        members = {
            "seed": In(32), "rng_seed": In(32), "threshold": In(17), "max_replays": In(8),
            "pass_budget": In(32), "busy_timeout": In(32), "go": In(1), "seg_steps": In(32),
            "rep_addr": In(range(max(2, report_limit))),
            "done": Out(1), "status": Out(2), "steps_done": Out(32), "replays_done": Out(32),
            "load_cycles": Out(32), "cycle": Out(48),
            "cur_load": Out(8), "cur_step": Out(32), "cur_pass": Out(8),
        }
        for k, c in enumerate(self._configs):
            rbits = sum(b for _, b in report_fields(c.lanes, c.width))
            members.update({
                f"count{k}": In(32), f"busy{k}": Out(1), f"remaining{k}": Out(32),
                f"compared{k}": Out(48), f"mismatches{k}": Out(48),
                f"stall_cycles{k}": Out(48), f"busy_cycles{k}": Out(32),
                f"errors{k}": Out(len(ERROR_KINDS)),
                **{f"err_cycle{k}_{j}": Out(48) for j in range(len(ERROR_KINDS))},
                f"n_reports{k}": Out(range(report_limit + 1)), f"report{k}": Out(rbits),
            })
        super().__init__(members)

    @property
    def configs(self):
        return self._configs

    def elaborate(self, platform):
        m = Module()
        strobe = Signal(3)                  # one-hot: load, advance, replay
        arm = Signal()
        step_end = Signal()
        reseed = Signal()

        checkers = []
        for k, c in enumerate(self._configs):
            if self._factory is None:
                from zohw.hw.engine import PerturbationEngine

                engine = PerturbationEngine(c)
            else:
                engine = self._factory(c)
            chk = StreamChecker(c.lanes, c.width, index=k, abits=self._abits[k],
                                report_limit=self._limit)
            m.submodules[f"engine{k}"] = engine
            m.submodules[f"check{k}"] = chk
            wiring.connect(m, engine.z, chk.z)
            m.d.comb += [
                engine.seed.eq(self.seed), engine.load.eq(strobe[0]),
                engine.advance.eq(strobe[1]), engine.replay.eq(strobe[2]),
                chk.busy.eq(engine.busy), chk.rng_seed.eq(self.rng_seed),
                chk.threshold.eq(self.threshold), chk.reseed.eq(reseed), chk.arm.eq(arm),
                chk.count.eq(getattr(self, f"count{k}")), chk.step_end.eq(step_end),
                chk.strobe.eq(strobe), chk.load_idx.eq(self.cur_load),
                chk.step_idx.eq(self.cur_step), chk.pass_idx.eq(self.cur_pass),
                chk.cycle.eq(self.cycle), chk.rep_addr.eq(self.rep_addr),
                getattr(self, f"busy{k}").eq(engine.busy),
            ]
            for name in ("remaining", "compared", "mismatches", "stall_cycles", "busy_cycles",
                         "errors", "n_reports", "report"):
                m.d.comb += getattr(self, f"{name}{k}").eq(getattr(chk, name))
            for j in range(len(ERROR_KINDS)):
                m.d.comb += getattr(self, f"err_cycle{k}_{j}").eq(getattr(chk, f"err_cycle{j}"))
            checkers.append(chk)
        all_done = Cat(c.done for c in checkers).all()
        all_idle = ~Cat(c.busy for c in checkers).any()

        m.d.sync += self.cycle.eq(self.cycle + 1)
        rng = Signal(32, init=1)
        draw = ((rng[:16] * self.max_replays) >> 16)[:8] + 1     # replays of the next step
        m.d.sync += rng.eq(Mux(reseed, _seeded(self.rng_seed, 0xFFFF), _xorshift32(rng)))
        replays = Signal(8)
        wait = Signal(32)
        steps_left = Signal(32)
        loads = Signal(8)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.go):
                    m.d.comb += reseed.eq(1)
                    m.d.sync += [self.done.eq(0), self.status.eq(OK), self.cur_load.eq(loads),
                                 loads.eq(loads + 1), self.cur_step.eq(0),
                                 steps_left.eq(self.seg_steps)]
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += strobe.eq(0b001)
                m.d.sync += wait.eq(0)
                m.next = "WAIT_BUSY"
            with m.State("WAIT_BUSY"):
                m.d.sync += wait.eq(wait + 1)
                with m.If(all_idle):
                    m.d.sync += [self.load_cycles.eq(wait), replays.eq(draw),
                                 self.cur_pass.eq(0)]
                    m.next = "ARM"
                with m.Elif(wait == self.busy_timeout):
                    m.d.sync += [self.status.eq(BUSY_TIMEOUT), self.done.eq(1)]
                    m.next = "IDLE"
            with m.State("ARM"):
                m.d.comb += arm.eq(1)
                m.d.sync += wait.eq(0)
                m.next = "PASS"
            with m.State("PASS"):
                m.d.sync += wait.eq(wait + 1)
                with m.If(all_done):
                    with m.If(self.cur_pass == replays):
                        m.next = "ADVANCE"
                    with m.Else():
                        m.next = "REPLAY"
                with m.Elif(wait == self.pass_budget):
                    m.d.sync += [self.status.eq(STALLED), self.done.eq(1)]
                    m.next = "IDLE"
            with m.State("REPLAY"):
                m.d.comb += strobe.eq(0b100)
                m.d.sync += [self.cur_pass.eq(self.cur_pass + 1),
                             self.replays_done.eq(self.replays_done + 1)]
                m.next = "ARM"
            with m.State("ADVANCE"):
                m.d.comb += [strobe.eq(0b010), step_end.eq(1)]
                m.d.sync += [self.steps_done.eq(self.steps_done + 1),
                             steps_left.eq(steps_left - 1)]
                with m.If(steps_left == 1):
                    m.d.sync += self.done.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [self.cur_step.eq(self.cur_step + 1), self.cur_pass.eq(0),
                                 replays.eq(draw)]
                    m.next = "ARM"
        return m


def harness_verilog(configs, abits, *, engine_factory=None, report_limit=8,
                    name=HARNESS_TOPLEVEL):
    """``(verilog, ports)``: the harness's Verilog (with the golden memory module) and its
    top-level port names."""
    from zohw.hw.verilog import component_verilog, ports

    harness = EngineHarness(configs, abits, engine_factory=engine_factory,
                            report_limit=report_limit)
    names = [n for n, _, _ in ports(harness)]
    return component_verilog(harness, name) + ROM_VERILOG, names
