"""The adaptive scaler: the scale factor that brings a pool to unit RMS, from its sum of squares,
serially — bit for bit :func:`zohw.sw.perturb.adaptive_scale`."""

from amaranth import Array, C, Module, Mux, Signal, signed
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from zohw.strategies.base import ADAPTIVE_MANT_BITS, ADAPTIVE_SCALE_FRAC, ADAPTIVE_TABLE_FRAC

__all__ = ["AdaptiveScaler"]


class _Step(enum.Enum, shape=3):
    IDLE = 0
    NORMALISE = 1   # one left shift per cycle until the leading one is at the top
    LOOK_UP = 2     # 1/sqrt of the mantissa, exponent parity folded in
    SHIFT = 3       # one right shift per cycle of the table entry
    DONE = 4


class AdaptiveScaler(wiring.Component):
    """Normalise ``sumsq`` one left shift per cycle, look up 1/sqrt of its mantissa, then shift
    the table entry right one bit per cycle: a counter and two shift registers instead of a
    leading-one detector and barrel shifters.

    Members
    -------
    start : In(1)
        Strobe: take ``sumsq`` and compute.
    sumsq : In(config.adaptive_sum_bits)
    scale : Out(config.adaptive_scale_bits)
        The scale factor (``ADAPTIVE_SCALE_FRAC`` fraction bits), held until the next start.
    done : Out(1)
        High for one cycle when ``scale`` is ready.
    """

    def __init__(self, config):
        self._config = config
        super().__init__({
            "start": In(1),
            "sumsq": In(config.adaptive_sum_bits),
            "scale": Out(config.adaptive_scale_bits),
            "done": Out(1),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        M, W, Ws = ADAPTIVE_MANT_BITS, cfg.adaptive_sum_bits, cfg.adaptive_scale_bits
        n = cfg.pool.bit_length() - 1

        step = Signal(_Step)
        norm = Signal(W)
        lz = Signal(range(W + 1))
        value = Signal(ADAPTIVE_TABLE_FRAC + 1 + Ws)
        count = Signal(range(len(value) + 1))
        m.d.comb += self.done.eq(step == _Step.DONE)

        with m.If(self.start):
            m.d.sync += [norm.eq(self.sumsq), lz.eq(0), step.eq(_Step.NORMALISE)]
        with m.Else():
            with m.Switch(step):
                with m.Case(_Step.NORMALISE):
                    with m.If(norm[W - 1] | (lz == W)):
                        m.d.sync += step.eq(_Step.LOOK_UP)
                    with m.Else():
                        m.d.sync += [norm.eq(norm << 1), lz.eq(lz + 1)]
                with m.Case(_Step.LOOK_UP):
                    # bit length e = W - lz; exponent sh = e - M; fold the parity of sh - n
                    sh = Signal(signed(len(lz) + 2))
                    m.d.comb += sh.eq(W - M - lz)
                    odd = sh[0] ^ (n & 1)
                    mant = norm[W - M:]
                    table = Array(C(v, ADAPTIVE_TABLE_FRAC + 1) for v in cfg.adaptive_table)
                    entry = table[Mux(odd, mant << 1, mant) - (1 << (M - 1))]
                    half = Signal(signed(len(sh) + 1))
                    m.d.comb += half.eq((sh - n - odd) >> 1)
                    rshift = Signal(signed(len(half) + 8))
                    m.d.comb += rshift.eq(
                        Ws - (cfg.frac_bits + ADAPTIVE_SCALE_FRAC - ADAPTIVE_TABLE_FRAC) + half)
                    m.d.sync += [value.eq(Mux(lz == W, 0, entry << Ws)), step.eq(_Step.SHIFT),
                                 count.eq(Mux(rshift < 0, 0,
                                              Mux(rshift > len(value), len(value), rshift)))]
                with m.Case(_Step.SHIFT):
                    with m.If(count == 0):
                        cap = (1 << Ws) - 1
                        m.d.sync += [self.scale.eq(Mux(value > cap, cap, value)),
                                     step.eq(_Step.DONE)]
                    with m.Else():
                        m.d.sync += [value.eq(value >> 1), count.eq(count - 1)]
                with m.Case(_Step.DONE):
                    m.d.sync += step.eq(_Step.IDLE)
        return m
