"""The trainer's loss unit: one class per cycle, the term of the loss plug-in, summed over the
mini-batch (no saturation: the accumulator is as wide as the largest possible sum)."""

from amaranth.hdl import Array, Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from zohw.digits import CLASSES, LABEL_BITS
from zohw.losses import get as get_loss

__all__ = ["LossUnit", "LABEL_QUEUE"]

#: Depth of the label queue (labels of vectors between the sample memory and the loss unit).
LABEL_QUEUE = 4


class LossUnit(wiring.Component):
    """Loss unit of a :class:`zohw.train_config.TrainerConfig` (its ``loss`` plug-in, margin or
    target, ``logit_shift`` and ``batch``).

    It takes a result vector from ``y`` (scores ``y_c >> logit_shift``) with the next label of
    the queue, then adds the loss term of one class per cycle (C cycles), ready for the next
    vector in its last class cycle.

    Members
    -------
    y : In(stream(ArrayLayout(signed(result_bits), C)))
        Results of the output layer.
    label : In(stream(unsigned(LABEL_BITS)))
        Labels in the order of the results; queued (``LABEL_QUEUE`` deep, always ready: at most
        one vector per macro and register is in flight).
    active : In(1)
        A forward pass; low: the sample count restarts.
    clear : In(1)
        Strobe: the loss accumulator ← 0.
    loss : Out(signed(loss_bits + 1))
        The accumulated loss.
    done : Out(1)
        The last class of the ``batch``-th sample of the pass is added at this edge.
    """

    def __init__(self, config, *, result_bits, score_bits, loss_bits):
        self._cfg = config
        self._loss = get_loss(config.loss)
        self._score_bits = score_bits
        super().__init__({
            "y": In(stream.Signature(data.ArrayLayout(signed(result_bits), CLASSES))),
            "label": In(stream.Signature(unsigned(LABEL_BITS))),
            "active": In(1),
            "clear": In(1),
            "loss": Out(signed(loss_bits + 1)),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        queue = Array(Signal(LABEL_BITS, name=f"lq{k}") for k in range(LABEL_QUEUE))
        qw = Signal(range(LABEL_QUEUE))
        qr = Signal(range(LABEL_QUEUE))
        m.d.comb += self.label.ready.eq(1)
        with m.If(self.label.valid):
            m.d.sync += [queue[qw].eq(self.label.payload), qw.eq(qw + 1)]

        sshape = signed(self._score_bits)
        sreg = [Signal(sshape, name=f"score{c}") for c in range(CLASSES)]
        sy = Signal(sshape)
        lab = Signal(LABEL_BITS)
        j = Signal(range(CLASSES))
        busy = Signal()
        taken = Signal(range(cfg.batch + 1))
        last = j == CLASSES - 1
        m.d.comb += [self.y.ready.eq(~busy | last),
                     self.done.eq(busy & last & (taken == cfg.batch))]
        scores = [self.y.payload[c] >> cfg.logit_shift for c in range(CLASSES)]
        term = Signal(unsigned(len(self.loss) - 1))
        m.d.comb += term.eq(self._loss.term(cfg, sreg[0], sy, j == lab))

        with m.If(busy):
            m.d.sync += [j.eq(j + 1), self.loss.eq(self.loss + term)]
            m.d.sync += [sreg[c].eq(sreg[c + 1]) for c in range(CLASSES - 1)]
            with m.If(last):
                m.d.sync += [busy.eq(0), j.eq(0)]
        with m.If(self.y.valid & self.y.ready):
            m.d.sync += [busy.eq(1), j.eq(0), lab.eq(queue[qr]), qr.eq(qr + 1),
                         sy.eq(Array(scores)[queue[qr]]), taken.eq(taken + 1)]
            m.d.sync += [sreg[c].eq(scores[c]) for c in range(CLASSES)]
        with m.If(~self.active):
            m.d.sync += taken.eq(0)
        with m.If(self.clear):
            m.d.sync += self.loss.eq(0)
        return m
