"""The pool fill: N raw uniform words from the fill generator (generator 0), scaled and written to
the pool after each seed load — bit for bit :func:`zohw.sw.perturb.golden_pool`."""

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from zohw.strategies.base import ADAPTIVE_SCALE_FRAC, saturate, scale_uniform

from .generators import GeneratorBank
from .pool import WriteSignature
from .scaler import AdaptiveScaler
from .sequencer import FillSignature

__all__ = ["PoolFill"]


class _Stage(enum.Enum, shape=2):
    MEASURE = 0   # adaptive pass 0: accumulate the sum of squares
    SCALE = 1     # the scaler derives the scale factor
    WRITE = 2     # write the words (adaptive: pass 1, the raw words regenerated and scaled)


class PoolFill(wiring.Component):
    """Fills the pool while ``fill.fill`` is high; ``fill.done`` in the last write.

    ``none``/``fixed`` scaling: one word per cycle, N cycles. ``adaptive``: two passes over the
    raw words with one serial shift-add multiplier — pass 0 accumulates the sum of squares, the
    :class:`~zohw.hw.scaler.AdaptiveScaler` derives the scale factor, pass 1 regenerates the raw
    words from the generator's checkpoint and writes ``raw * scale``.
    """

    def __init__(self, config):
        self._config = config
        super().__init__({
            "fill": In(FillSignature),
            "write": Out(WriteSignature(config)),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        B, N = cfg.width, cfg.pool
        m.submodules.generator = gen = GeneratorBank(cfg.source, 1, base=0)
        m.d.comb += [gen.cmd.seed.eq(self.fill.seed), gen.cmd.load.eq(self.fill.load)]
        raw_next = gen.state_next[:B].as_signed()
        k = Signal(range(N))
        filling = self.fill.fill
        w = self.write
        m.d.comb += w.index.eq(k)
        with m.If(self.fill.load):
            m.d.sync += k.eq(0)

        if cfg.scaling != "adaptive":
            m.d.comb += [gen.cmd.step.eq(filling), w.en.eq(filling),
                         w.data.eq(scale_uniform(raw_next, cfg.scaling)),
                         self.fill.done.eq(filling & (k == N - 1))]
            with m.If(~self.fill.load & filling):
                m.d.sync += k.eq(k + 1)
            return m

        m.submodules.scaler = scaler = AdaptiveScaler(cfg)
        Ws, Fs = cfg.adaptive_scale_bits, ADAPTIVE_SCALE_FRAC
        acc_bits = max(cfg.adaptive_sum_bits, B + Ws + 2)
        stage = Signal(_Stage)
        sub = Signal(2)                         # 0: start a word, 1: multiply, 2: finish
        mul_a = Signal(signed(acc_bits))
        mul_b = Signal(max(Ws, B))
        # One accumulator: the running sum of squares in pass 0 (never reset between words),
        # the rounded product raw * scale in pass 1 (reset to the rounding constant per word).
        acc = Signal(signed(acc_bits))
        count = Signal(range(max(Ws, B) + 1))
        writing = stage == _Stage.WRITE
        m.d.comb += scaler.sumsq.eq(acc[:cfg.adaptive_sum_bits])

        with m.If(self.fill.load):
            m.d.sync += [stage.eq(_Stage.MEASURE), sub.eq(0)]
        with m.Elif(filling & (stage == _Stage.SCALE)):
            with m.If(scaler.done):
                m.d.comb += gen.cmd.restore.eq(1)
                m.d.sync += [k.eq(0), stage.eq(_Stage.WRITE), sub.eq(0)]
        with m.Elif(filling):
            # the first cycle of pass 0 saves the seeded state for pass 1
            with m.If((sub == 0) & (k == 0) & (stage == _Stage.MEASURE)):
                m.d.comb += gen.cmd.checkpoint.eq(1)
                m.d.sync += acc.eq(0)
            with m.Switch(sub):
                with m.Case(0):
                    m.d.comb += gen.cmd.step.eq(1)
                    m.d.sync += sub.eq(1)
                    with m.If(writing):
                        m.d.sync += [mul_a.eq(raw_next), mul_b.eq(scaler.scale), count.eq(Ws),
                                     acc.eq(1 << (Fs - 1))]
                    with m.Else():
                        mag = Mux(raw_next < 0, -raw_next, raw_next)
                        m.d.sync += [mul_a.eq(mag), mul_b.eq(mag), count.eq(B)]
                with m.Case(1):
                    with m.If(mul_b[0]):
                        m.d.sync += acc.eq(acc + mul_a)
                    m.d.sync += [mul_a.eq(mul_a << 1), mul_b.eq(mul_b >> 1),
                                 count.eq(count - 1)]
                    with m.If(count == 1):
                        m.d.sync += sub.eq(2)
                with m.Case(2):
                    m.d.sync += [sub.eq(0), k.eq(k + 1)]
                    with m.If(writing):
                        m.d.comb += [w.en.eq(1), w.data.eq(saturate(acc >> Fs, cfg)),
                                     self.fill.done.eq(k == N - 1)]
                    with m.Elif(k == N - 1):
                        m.d.comb += scaler.start.eq(1)
                        m.d.sync += stage.eq(_Stage.SCALE)
        return m
