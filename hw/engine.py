"""The perturbation engine: P signed B-bit perturbation words per cycle, replayable per step.

One :class:`PerturbationEngine` elaborates any strategy of :data:`zohw.config.STRATEGIES`. Its
golden model is :func:`zohw.sw.perturb.golden_stream`; the contract both follow is in
``docs/engine-contract.md`` and in :mod:`zohw.config`.
"""

import operator
from functools import reduce

from amaranth import Array, C, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from zohw.config import (ADAPTIVE_MANT_BITS, ADAPTIVE_SCALE_FRAC, ADAPTIVE_TABLE_FRAC,
                         POOL_STRATEGIES, SQRT3_TERMS, UNIFORM_GUARD, EngineConfig, mix_constant)
from zohw.strategies.gauss_clt import CLT_GUARD, CLT_TERMS
from zohw.strategies.gauss_icdf import STRATEGY as _ICDF
from zohw.strategies.pezo_block import BLOCK_LFSR_INDEX, BLOCK_LFSR_STEPS, BLOCK_OFFSET_TWIST
from zohw.sources import matrix_rows, step_matrix

__all__ = ["PerturbationEngine", "Phase"]


class Phase(enum.Enum, shape=3):
    IDLE = 0   # after reset: no seed loaded
    FILL = 1   # pool strategies: filling the pool (one or two passes)
    SCALE = 2  # adaptive scaling: derive the scale factor from the sum of squares
    WARM = 3   # generator strategies: one warm-up step after seeding
    INIT = 4   # take the first checkpoint (and the first block-offset draw)
    RUN = 5    # emitting words


def _linear_step(state, matrix):
    """Next state of a GF(2)-linear generator: each bit is an XOR of state bits."""
    return Cat(*[reduce(operator.xor, [state[j] for j in js]) for js in matrix_rows(matrix)])


def _mixed(seed, k, bits=32):
    """``mix_seed`` in hardware: fold, XOR a constant, replace zero by the constant."""
    c = mix_constant(k, bits)
    folded = reduce(operator.xor, [seed[i:i + bits] for i in range(0, 32, bits)])
    x = folded ^ c
    return Mux(x == 0, c, x)


def _shift_add(x, terms):
    total = None
    for sign, s in terms:
        t = x << s if s >= 0 else x >> -s
        total = (t if sign > 0 else -t) if total is None else (total + t if sign > 0 else total - t)
    return total


def _saturate(x, lo, hi):
    return Mux(x > hi, hi, Mux(x < lo, lo, x))


class PerturbationEngine(wiring.Component):
    """Perturbation engine for one :class:`~zohw.config.EngineConfig`.

    Parameters
    ----------
    config : EngineConfig
        Strategy, lanes P, width B, pool N, scaling and source.

    Members
    -------
    seed : In(32)
        Seed, sampled when ``load`` is high.
    load : In(1)
        Strobe: seed every generator; pool strategies then fill their pool. ``busy`` until the
        first word of step 0 is available.
    advance : In(1)
        Strobe: end the current step; the next word starts a new step (a checkpoint is taken).
    replay : In(1)
        Strobe: restart the current step; the next word is the step's first word again.
    busy : Out(1)
        High from reset or ``load`` until words are available.
    z : Out(stream.Signature(data.ArrayLayout(signed(B), P)))
        The words, P lanes per transfer. ``z.valid`` is low while ``busy`` and in any cycle in
        which a strobe is high; it never depends on ``z.ready``.
    """

    def __init__(self, config):
        if not isinstance(config, EngineConfig):
            raise TypeError(f"config must be an EngineConfig, not {config!r}")
        self._config = config
        super().__init__({
            "seed": In(32),
            "load": In(1),
            "advance": In(1),
            "replay": In(1),
            "busy": Out(1),
            "z": Out(stream.Signature(data.ArrayLayout(signed(config.width), config.lanes))),
        })

    @property
    def config(self):
        return self._config

    @property
    def latency(self):
        """Cycles from a transfer (or strobe) to the next word: the output is combinational
        from the state, so words flow back to back at one transfer per cycle."""
        return 0

    def elaborate(self, platform):
        cfg = self._config
        m = Module()

        phase = Signal(Phase)
        strobe = self.load | self.advance | self.replay
        running = phase == Phase.RUN
        m.d.comb += [
            self.busy.eq(~running),
            self.z.valid.eq(running & ~strobe),
        ]
        transfer = self.z.valid & self.z.ready
        ctl = dict(phase=phase, running=running, transfer=transfer)

        if cfg.strategy in POOL_STRATEGIES:
            words = self._elaborate_pool(m, **ctl)
        else:
            words = self._elaborate_generators(m, **ctl)
        for j, w in enumerate(words):
            m.d.comb += self.z.payload[j].eq(w)
        return m

    # -- generator strategies ------------------------------------------------------------------

    def _elaborate_generators(self, m, phase, running, transfer):
        cfg = self._config
        matrix = step_matrix(cfg.source)
        gens = [Signal(32, name=f"gen{k}") for k in range(cfg.generators)]
        ckpts = [Signal(32, name=f"ckpt{k}") for k in range(cfg.generators)]
        R = cfg.otf_sources
        rot = Signal(range(max(R, 2)))
        ckpt_rot = Signal.like(rot)

        with m.If(self.load):
            m.d.sync += [g.eq(_mixed(self.seed, k)) for k, g in enumerate(gens)]
            m.d.sync += [rot.eq(0), phase.eq(Phase.WARM)]
        with m.Elif(phase == Phase.WARM):
            m.d.sync += [g.eq(_linear_step(g, matrix)) for g in gens]
            m.d.sync += phase.eq(Phase.INIT)
        with m.Elif(phase == Phase.INIT):
            m.d.sync += [c.eq(g) for c, g in zip(ckpts, gens)]
            m.d.sync += [ckpt_rot.eq(rot), phase.eq(Phase.RUN)]
        with m.Elif(running & self.replay):
            m.d.sync += [g.eq(c) for c, g in zip(ckpts, gens)]
            m.d.sync += rot.eq(ckpt_rot)
        with m.Elif(running & self.advance):
            m.d.sync += [c.eq(g) for c, g in zip(ckpts, gens)]
            m.d.sync += ckpt_rot.eq(rot)
        with m.Elif(transfer):
            m.d.sync += [g.eq(_linear_step(g, matrix)) for g in gens]
            m.d.sync += rot.eq(Mux(rot == R - 1, 0, rot + 1))

        wide = Cat(*gens)
        layout = cfg.field_layout()

        def field(name, i, signed_=True):
            lsb, bits, _ = layout[name]
            v = wide[lsb + i * bits:lsb + (i + 1) * bits]
            return v.as_signed() if signed_ else v

        P, B, F = cfg.lanes, cfg.width, cfg.frac_bits
        lo, hi = C(cfg.word_min, signed(B)), C(cfg.word_max, signed(B))
        s = cfg.strategy
        if s == "uniform":
            return [self._scale_uniform(field("raw", j)) for j in range(P)]
        if s == "rademacher":
            one = 1 << F
            return [Mux(field("sign", j, False), C(-one, signed(B)), C(one, signed(B)))
                    for j in range(P)]
        if s == "gauss-clt":
            K, g = cfg.clt_k, CLT_GUARD
            out = []
            for j in range(P):
                total = reduce(operator.add, [field("u", j * K + i) for i in range(K)])
                total = total + K // 2
                acc = _shift_add(total << g, CLT_TERMS[K])
                out.append(_saturate((acc + (1 << (g - 1))) >> g, lo, hi))
            return out
        if s == "gauss-icdf":
            table = Array(C(v, unsigned(B - 1)) for v in _ICDF.table(cfg))
            out = []
            for j in range(P):
                v = field("icdf", j, False)
                mag = Signal(unsigned(B - 1), name=f"icdf_mag{j}")
                m.d.comb += mag.eq(table[v[:cfg.icdf_bits]])
                out.append(Mux(v[cfg.icdf_bits], -mag, mag))
            return out
        if s == "pezo-otf":
            sources = []
            for r in range(R):
                sig = Signal(signed(B), name=f"otf_src{r}")
                m.d.comb += sig.eq(self._scale_uniform(field("raw", r)))
                sources.append(sig)
            sources = Array(sources)
            out = []
            for j in range(P):
                t = rot + (j % R)
                sel = Mux(t >= R, t - R, t)
                v = sources[sel].as_unsigned()
                out.append((v ^ field("sign", j, False).replicate(B)).as_signed())
            return out
        raise AssertionError(s)

    def _scale_uniform(self, raw, scale=None):
        """Raw U(-1, 1) word (B bits) to the output format; see ``zohw.sw.perturb``."""
        cfg = self._config
        if cfg.scaling == "none":
            return raw >> UNIFORM_GUARD
        if cfg.scaling == "fixed":
            return (_shift_add(raw, SQRT3_TERMS) + (1 << (UNIFORM_GUARD - 1))) >> UNIFORM_GUARD
        raise AssertionError("adaptive scaling is applied while filling the pool")

    # -- pool strategies -----------------------------------------------------------------------

    def _elaborate_pool(self, m, phase, running, transfer):
        cfg = self._config
        P, B, N = cfg.lanes, cfg.width, cfg.pool
        rows = cfg.pool_rows
        lane_bits = P.bit_length() - 1
        matrix = step_matrix(cfg.source)

        read_domain = "sync" if cfg.pool_read == "sync" else "comb"
        # pezo-block's sign generators take their warm-up step after the fill
        self._after_fill = Phase.WARM if cfg.strategy == "pezo-block" else Phase.INIT
        gen = Signal(32)
        k = Signal(range(N))
        gen_next = _linear_step(gen, matrix)
        raw_next = gen_next[:B].as_signed()

        # Pool word k lives in bank (lane) k mod P, row k // P. pezo-shift reads one row of all
        # banks (one memory, P words wide); pezo-block addresses every bank on its own.
        write_word = Signal(signed(B))
        write = Signal()
        if cfg.strategy == "pezo-shift":
            m.submodules.pool = pool = memory.Memory(shape=unsigned(P * B), depth=rows, init=[])
            wr = pool.write_port(granularity=B)
            rd = pool.read_port(domain=read_domain)
            m.d.comb += [
                wr.addr.eq(k >> lane_bits),
                wr.data.eq(write_word.as_unsigned().replicate(P)),
                wr.en.eq(Mux(write, Const(1, P) << k[:lane_bits], 0)),
            ]
        else:
            banks = []
            for j in range(P):
                bank = memory.Memory(shape=unsigned(B), depth=rows, init=[])
                m.submodules[f"bank{j}"] = bank
                bw = bank.write_port()
                banks.append(bank.read_port(domain=read_domain))
                lane_match = (k[:lane_bits] == j) if lane_bits else 1
                m.d.comb += [bw.addr.eq(k >> lane_bits), bw.data.eq(write_word.as_unsigned()),
                             bw.en.eq(write & lane_match)]

        with m.If(self.load):
            m.d.sync += [gen.eq(_mixed(self.seed, 0)), k.eq(0), phase.eq(Phase.FILL)]
        with m.Elif(phase == Phase.FILL):
            if cfg.scaling != "adaptive":
                m.d.sync += [gen.eq(gen_next), k.eq(k + 1)]
                m.d.comb += [write.eq(1), write_word.eq(self._scale_uniform(raw_next))]
                with m.If(k == N - 1):
                    m.d.sync += phase.eq(self._after_fill)
        if cfg.scaling == "adaptive":
            self._fill_adaptive(m, phase, gen, gen_next, raw_next, k, write, write_word)

        # The row pointer is computed as a next-state value so that a registered read port
        # (``pool_read="sync"``, block RAM) can be addressed with the row of the next cycle.
        if cfg.strategy == "pezo-shift":
            row = Signal(range(max(rows, 2)))
            row_next = Signal.like(row)
            ckpt_row = Signal.like(row)
            m.d.comb += row_next.eq(row)
            with m.If(self.load):
                pass
            with m.Elif(phase == Phase.INIT):
                m.d.comb += row_next.eq(0)
                m.d.sync += [ckpt_row.eq(0), phase.eq(Phase.RUN)]
            with m.Elif(running & self.replay):
                m.d.comb += row_next.eq(ckpt_row)
            with m.Elif(running & self.advance):
                m.d.sync += ckpt_row.eq(row)
            with m.Elif(transfer):
                m.d.comb += row_next.eq(Mux(row == rows - 1, 0, row + 1))
            m.d.sync += row.eq(row_next)
            address, address_next = row, row_next
        else:
            obits = cfg.block_offset_bits
            draw = step_matrix("lfsr16", BLOCK_LFSR_STEPS)
            lfsr = Signal(16)
            lfsr_next = Signal(16)
            ckpt_lfsr = Signal(16)
            blk_row = Signal(range(max(rows, 2)))
            blk_row_next = Signal.like(blk_row)
            drawn = _linear_step(lfsr, draw)
            m.d.comb += [lfsr_next.eq(lfsr), blk_row_next.eq(blk_row)]
            with m.If(self.load):
                m.d.comb += lfsr_next.eq(_mixed(self.seed, BLOCK_LFSR_INDEX, 16))
            with m.Elif((phase == Phase.INIT) | (running & self.advance)):
                m.d.comb += [lfsr_next.eq(drawn), blk_row_next.eq(0)]
                m.d.sync += ckpt_lfsr.eq(drawn)
                with m.If(phase == Phase.INIT):
                    m.d.sync += phase.eq(Phase.RUN)
            with m.Elif(running & self.replay):
                m.d.comb += [lfsr_next.eq(ckpt_lfsr), blk_row_next.eq(0)]
            with m.Elif(transfer):
                with m.If(blk_row == rows - 1):
                    m.d.comb += [blk_row_next.eq(0), lfsr_next.eq(drawn)]
                with m.Else():
                    m.d.comb += blk_row_next.eq(blk_row + 1)
            m.d.sync += [lfsr.eq(lfsr_next), blk_row.eq(blk_row_next)]
            source, source_row = ((lfsr_next, blk_row_next) if cfg.pool_read == "sync"
                                  else (lfsr, blk_row))
            if rows > 1:
                for j, bank in enumerate(banks):
                    # EngineConfig.block_lane_offset, plus the row within the block
                    a = source.rotate_right(j % 16)[:obits]
                    b = source.rotate_right((j + BLOCK_OFFSET_TWIST) % 16)[:obits]
                    m.d.comb += bank.addr.eq((a + b + source_row)[:obits])

            # A fresh sign per word (XOR-negation), from checkpointed generators.
            signs = [Signal(32, name=f"sign_gen{g}") for g in range(cfg.sign_generators)]
            ckpts = [Signal(32, name=f"sign_ckpt{g}") for g in range(cfg.sign_generators)]
            with m.If(self.load):
                m.d.sync += [g.eq(_mixed(self.seed, 1 + i)) for i, g in enumerate(signs)]
            with m.Elif(phase == Phase.WARM):
                m.d.sync += [g.eq(_linear_step(g, matrix)) for g in signs]
                m.d.sync += phase.eq(Phase.INIT)
            with m.Elif((phase == Phase.INIT) | (running & self.advance)):
                m.d.sync += [c.eq(g) for c, g in zip(ckpts, signs)]
            with m.Elif(running & self.replay):
                m.d.sync += [g.eq(c) for c, g in zip(ckpts, signs)]
            with m.Elif(transfer):
                m.d.sync += [g.eq(_linear_step(g, matrix)) for g in signs]
            sign_bits = Cat(*signs)
            return [(bank.data ^ sign_bits[j].replicate(B)).as_signed()
                    for j, bank in enumerate(banks)]

        if rows > 1:
            m.d.comb += rd.addr.eq(address_next if cfg.pool_read == "sync" else address)
        return [rd.data[j * B:(j + 1) * B].as_signed() for j in range(P)]

    def _fill_adaptive(self, m, phase, gen, gen_next, raw_next, k, write, write_word):
        """Two passes over the pool's raw words, one serial shift-add multiplier shared.

        Pass 0 accumulates the sum of squares; ``SCALE`` derives the scale factor; pass 1
        regenerates the raw words from the saved seed state and writes ``raw * scale``.
        """
        cfg = self._config
        B, N = cfg.width, cfg.pool
        Ws, Fs = cfg.adaptive_scale_bits, ADAPTIVE_SCALE_FRAC
        W = cfg.adaptive_sum_bits
        acc_bits = max(W, B + Ws + 2)

        gen_seed = Signal(32)
        second = Signal()                       # 0: measure, 1: scale and write
        sub = Signal(2)                         # 0: start a word, 1: multiply, 2: finish
        mul_a = Signal(signed(acc_bits))
        mul_b = Signal(Ws)
        # One accumulator: the running sum of squares in pass 0 (never reset between words),
        # the rounded product raw * scale in pass 1 (reset to the rounding constant per word).
        acc = Signal(signed(acc_bits))
        count = Signal(range(Ws + 1))
        scale = Signal(Ws)

        filling = ~self.load & (phase == Phase.FILL)
        # The load cycle saved nothing yet: remember the mixed seed on the first fill cycle.
        with m.If(filling & (sub == 0) & (k == 0) & ~second):
            m.d.sync += [gen_seed.eq(gen), acc.eq(0)]

        with m.If(filling), m.Switch(sub):
            with m.Case(0):
                m.d.sync += [gen.eq(gen_next), sub.eq(1)]
                with m.If(second):
                    m.d.sync += [mul_a.eq(raw_next), mul_b.eq(scale), count.eq(Ws),
                                 acc.eq(1 << (Fs - 1))]
                with m.Else():
                    mag = Mux(raw_next < 0, -raw_next, raw_next)
                    m.d.sync += [mul_a.eq(mag), mul_b.eq(mag), count.eq(B)]
            with m.Case(1):
                with m.If(mul_b[0]):
                    m.d.sync += acc.eq(acc + mul_a)
                m.d.sync += [mul_a.eq(mul_a << 1), mul_b.eq(mul_b >> 1), count.eq(count - 1)]
                with m.If(count == 1):
                    m.d.sync += sub.eq(2)
            with m.Case(2):
                m.d.sync += [sub.eq(0), k.eq(k + 1)]
                with m.If(second):
                    lo, hi = C(cfg.word_min, signed(B)), C(cfg.word_max, signed(B))
                    m.d.comb += [write.eq(1), write_word.eq(_saturate(acc >> Fs, lo, hi))]
                    with m.If(k == N - 1):
                        m.d.sync += [second.eq(0), phase.eq(self._after_fill)]
                with m.Else():
                    with m.If(k == N - 1):
                        m.d.sync += phase.eq(Phase.SCALE)

        with m.If(self.load):
            m.d.sync += [second.eq(0), sub.eq(0)]
        # SCALE: derive the scale factor from the sum of squares, serially (see adaptive_scale).
        with m.Elif(phase == Phase.SCALE):
            self._adaptive_scale(m, acc, scale)
            with m.If(self._scale_done):
                m.d.sync += [gen.eq(gen_seed), k.eq(0), second.eq(1), sub.eq(0),
                             phase.eq(Phase.FILL)]

    def _adaptive_scale(self, m, acc, scale):
        """Normalise ``sumsq`` one left shift per cycle, look up 1/sqrt of its mantissa, then
        shift the table entry right one bit per cycle: a counter and two shift registers
        instead of a leading-one detector and barrel shifters."""
        cfg = self._config
        M = ADAPTIVE_MANT_BITS
        n = cfg.pool.bit_length() - 1
        Ws = cfg.adaptive_scale_bits
        W = cfg.adaptive_sum_bits
        sumsq = acc[:W]

        step = Signal(2, name="scale_step")     # 0: normalise, 1: look up, 2: shift, 3: done
        lz = Signal(range(W + 1))
        value = Signal(ADAPTIVE_TABLE_FRAC + 1 + Ws)
        count = Signal(range(len(value) + 1), name="scale_count")
        self._scale_done = step == 3

        with m.Switch(step):
            with m.Case(0):
                with m.If(sumsq[W - 1] | (lz == W)):
                    m.d.sync += step.eq(1)
                with m.Else():
                    m.d.sync += [acc.eq((sumsq << 1)[:W]), lz.eq(lz + 1)]
            with m.Case(1):
                # bit length e = W - lz; exponent sh = e - M; fold the parity of sh - n
                sh = Signal(signed(len(lz) + 2), name="scale_sh")
                m.d.comb += sh.eq(W - M - lz)
                odd = sh[0] ^ (n & 1)
                mant = sumsq[W - M:]
                table = Array(C(v, ADAPTIVE_TABLE_FRAC + 1) for v in cfg.adaptive_table)
                entry = table[Mux(odd, mant << 1, mant) - (1 << (M - 1))]
                half = Signal(signed(len(sh) + 1), name="scale_half")
                m.d.comb += half.eq((sh - n - odd) >> 1)
                rshift = Signal(signed(len(half) + 8), name="scale_rshift")
                m.d.comb += rshift.eq(
                    Ws - (cfg.frac_bits + ADAPTIVE_SCALE_FRAC - ADAPTIVE_TABLE_FRAC) + half)
                m.d.sync += [value.eq(Mux(lz == W, 0, entry << Ws)), step.eq(2),
                             count.eq(Mux(rshift < 0, 0,
                                          Mux(rshift > len(value), len(value), rshift)))]
            with m.Case(2):
                with m.If(count == 0):
                    cap = (1 << Ws) - 1
                    m.d.sync += [scale.eq(Mux(value > cap, cap, value)), step.eq(3)]
                with m.Else():
                    m.d.sync += [value.eq(value >> 1), count.eq(count - 1)]
            with m.Case(3):
                m.d.sync += [step.eq(0), lz.eq(0)]
        with m.If(self.load):
            m.d.sync += [step.eq(0), lz.eq(0)]
