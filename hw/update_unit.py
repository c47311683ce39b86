"""The trainer's update unit: the loss difference g, the update rule and the update shift
schedule, and the per-weight update ``w' = clamp(w + Delta, lo, hi)`` (one register stage).

``g = sat(L+ - L-, diff_bits)``; ``gz = g * lr_mult`` (sgd) or ``sign(g) * lr_mult`` (sign);
``Delta = -rshift(gz * z, k)`` with ``k = lr_shift + step // lr_decay`` (saturating at
:attr:`zohw.hw.plan.TrainerPlan.max_shift`, beyond which every result is the same) and
``rshift`` rounding half away from zero (``nearest``) or flooring (``floor``).
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["UpdateUnit", "UpdateSignature", "lane"]


def lane(value, j, lanes):
    """Lane j of a member of :class:`UpdateSignature` with ``lanes`` lanes."""
    return value if lanes == 1 else value[j]


def _clamp(v, lo, hi):
    return Mux(v < lo, lo, Mux(v > hi, hi, v))


class UpdateSignature(wiring.Signature):
    """Port of the update unit for ``lanes`` weights at a time (members from the unit's side):
    ``en`` (the operands are valid), per lane ``w`` (the weight as stored, ``w - delta``),
    ``delta``, ``z``; one cycle later per lane ``w_new`` and bit ``write`` (``w_new`` differs
    from ``w``). Several lanes: arrays of the per-lane shapes (:func:`lane` picks one)."""

    def __init__(self, weight_bits, word_bits, lanes=1):
        def lanes_of(shape):            # one lane: the plain shape
            return shape if lanes == 1 else data.ArrayLayout(shape, lanes)
        super().__init__({
            "en": In(1),
            "w": In(lanes_of(signed(weight_bits))),
            "delta": In(lanes_of(signed(weight_bits + 1))),
            "z": In(lanes_of(signed(word_bits))),
            "w_new": Out(lanes_of(signed(weight_bits))),
            "write": Out(lanes),
        })


class UpdateUnit(wiring.Component):
    """Update unit of a :class:`zohw.train_config.TrainerConfig`.

    Members
    -------
    restart : In(1)
        Strobe at the start of a run: the update shift ← ``lr_shift``.
    advance : In(1)
        Strobe at the end of a step (the shift decays every ``lr_decay`` steps).
    diff : In(signed(loss_bits + 2))
        L+ - L-; sampled with ``latch``.
    latch : In(1)
        Strobe: g ← sat(diff), and the multiplier of the update from it.
    g : Out(signed(diff_bits))
    op : Out(UpdateSignature(weight_bits, word_bits, lanes))
        The per-weight datapath, ``lanes`` copies (one multiplier each) sharing g.
    """

    def __init__(self, config, *, loss_bits, product_bits, max_shift, lanes=1):
        self._cfg = config
        self._product_bits = product_bits
        self._max_shift = max_shift
        self._lanes = lanes
        super().__init__({
            "restart": In(1),
            "advance": In(1),
            "diff": In(signed(loss_bits + 2)),
            "latch": In(1),
            "g": Out(signed(config.diff_bits)),
            "op": Out(UpdateSignature(config.cim.weight_bits, config.engine.width, lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        wb = cfg.cim.weight_bits
        lo, hi = cfg.weight_range
        op = self.op

        gz = Signal(signed(cfg.diff_bits + 5))
        gs = Signal(signed(cfg.diff_bits))
        m.d.comb += gs.eq(_clamp(self.diff, cfg.diff_min, cfg.diff_max))
        with m.If(self.latch):
            if cfg.update == "sgd":
                m.d.sync += gz.eq(gs * cfg.lr_mult)
            else:
                m.d.sync += gz.eq(Mux(gs > 0, cfg.lr_mult, Mux(gs < 0, -cfg.lr_mult, 0)))
            m.d.sync += self.g.eq(gs)

        # the update shift k and its rounding constant 2**(k-1)
        decay, k0, kmax = cfg.lr_decay, cfg.lr_shift, self._max_shift
        if decay:
            k = Signal(range(kmax + 1), init=k0)
            rc = Signal(kmax + 1, init=(1 << k0) >> 1)
            dc = Signal(range(decay))
            with m.If(self.restart):
                m.d.sync += [k.eq(k0), rc.eq((1 << k0) >> 1), dc.eq(0)]
            with m.Elif(self.advance):
                with m.If(dc == decay - 1):
                    m.d.sync += dc.eq(0)
                    with m.If(k < kmax):
                        m.d.sync += [k.eq(k + 1), rc.eq(Mux(rc == 0, 1, rc << 1))]
                with m.Else():
                    m.d.sync += dc.eq(dc + 1)
        else:
            k, rc = k0, (1 << k0) >> 1

        # register stage: operands in, result out one cycle later (one datapath per lane)
        writes = []
        L = self._lanes
        for j in range(L):
            sfx = str(j) if L > 1 else ""
            w = Signal(signed(wb), name=f"w{sfx}")
            w_orig = Signal(signed(wb + 1), name=f"w_orig{sfx}")
            p = Signal(signed(self._product_bits + 1), name=f"p{sfx}")
            with m.If(op.en):
                m.d.sync += [w.eq(lane(op.w, j, L)),
                             w_orig.eq(lane(op.w, j, L) + lane(op.delta, j, L)),
                             p.eq(gz * lane(op.z, j, L))]

            absp = Signal(unsigned(len(p)), name=f"absp{sfx}")
            m.d.comb += absp.eq(Mux(p < 0, -p, p))
            step = Signal(signed(len(p) + 2), name=f"step{sfx}")
            if cfg.rounding == "nearest":
                mag = Signal(unsigned(len(p) + 1), name=f"mag{sfx}")
                m.d.comb += [mag.eq((absp + rc) >> k), step.eq(Mux(p < 0, mag, -mag))]
            else:
                m.d.comb += step.eq(-(p >> k))
            w_new = lane(op.w_new, j, L)
            m.d.comb += w_new.eq(_clamp(w_orig + step, lo, hi))
            writes.append(w_new != w)
        m.d.comb += op.write.eq(Cat(*writes))
        return m
