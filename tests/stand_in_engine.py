"""A deliberately simple stand-in for the perturbation engine, with injectable faults, and its
golden model — used to prove that the co-simulation testbench catches each kind of error.

Words: a 32-bit state starts at the seed and adds 3P + 1 per transfer; lane j emits the low B
bits of ``state + j`` (signed). ``advance`` checkpoints the state, ``replay`` restores it; after
``load`` the engine is busy for 5 cycles. Faults:

- ``replay``: ``replay`` is ignored, so replays continue the sequence instead of repeating it;
- ``strobe-valid``: ``z.valid`` stays high in strobe cycles (a protocol violation);
- ``bit-flip``: lane 1 has bit 0 flipped in transfer ``FLIP_CYCLE`` of step ``FLIP_STEP``;
- ``stale-reload``: only the first ``load`` seeds; later ones keep the old state;
- ``stall``: after the second ``load`` and one ``advance``, ``z.valid`` stays low for good.
"""

import torch
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.data import ArrayLayout
from amaranth.lib.wiring import In, Out

FAULTS = ("none", "replay", "strobe-valid", "bit-flip", "stale-reload", "stall")
FLIP_STEP, FLIP_CYCLE, FLIP_LANE = 2, 7, 1
BUSY_CYCLES = 5


def cycles_per_step(config, d):
    return -(-d // config.lanes)


def _increment(config):
    return 3 * config.lanes + 1


class StandInEngine(wiring.Component):
    def __init__(self, config, fault="none", d=None):
        assert fault in FAULTS
        self.config, self.fault, self.d = config, fault, d
        super().__init__({
            "seed": In(32), "load": In(1), "advance": In(1), "replay": In(1),
            "busy": Out(1, init=1),
            "z": Out(stream.Signature(ArrayLayout(signed(config.width), config.lanes))),
        })

    def elaborate(self, platform):
        c = self.config
        m = Module()
        state = Signal(32)
        ckpt = Signal(32)
        seed = Signal(32)
        fill = Signal(range(BUSY_CYCLES + 1))
        strobe = self.load | self.advance | self.replay
        loads = Signal(2)
        advances = Signal(4)
        with m.If(self.load):
            m.d.sync += [loads.eq(loads + (loads != 3)), advances.eq(0)]
        with m.Elif(self.advance & (advances != 15)):
            m.d.sync += advances.eq(advances + 1)
        stalled = (loads == 2) & (advances == 1) if self.fault == "stall" else 0
        if self.fault == "strobe-valid":
            m.d.comb += self.z.valid.eq(~self.busy)
        else:
            m.d.comb += self.z.valid.eq(~self.busy & ~strobe & ~stalled)
        flip = 0
        if self.fault == "bit-flip":
            offset = (FLIP_STEP * cycles_per_step(c, self.d) + FLIP_CYCLE) * _increment(c)
            flip = state == (seed + offset)[:32]
        for j in range(c.lanes):
            word = (state + j)[:c.width]
            if j == FLIP_LANE:
                word = word ^ flip
            m.d.comb += self.z.payload[j].eq(word)
        loaded = Signal()
        with m.If(self.load):
            m.d.sync += [self.busy.eq(1), fill.eq(BUSY_CYCLES), loaded.eq(1)]
            with m.If(~loaded if self.fault == "stale-reload" else 1):
                m.d.sync += [state.eq(self.seed), ckpt.eq(self.seed), seed.eq(self.seed)]
        with m.Elif(self.busy & (fill != 0)):
            m.d.sync += fill.eq(fill - 1)
            with m.If(fill == 1):
                m.d.sync += self.busy.eq(0)
        with m.Elif(self.advance):
            m.d.sync += ckpt.eq(state)
        with m.Elif(self.replay):
            if self.fault != "replay":
                m.d.sync += state.eq(ckpt)
        with m.Elif(self.z.valid & self.z.ready):
            m.d.sync += state.eq(state + _increment(c))
        return m


def golden_stream(config, seed, d, steps):
    P, B = config.lanes, config.width
    C = cycles_per_step(config, d)
    t = torch.arange(steps * C, dtype=torch.int64).reshape(steps, C, 1)
    state = (seed + t * _increment(config)) & 0xFFFF_FFFF
    words = (state + torch.arange(P, dtype=torch.int64)) & ((1 << B) - 1)
    return torch.where(words >= (1 << (B - 1)), words - (1 << B), words)
