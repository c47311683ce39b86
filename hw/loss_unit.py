"""The trainer's loss unit: one class per cycle, the term of the loss plug-in, summed over the
mini-batch (no saturation: the accumulator is as wide as the largest possible sum)."""

from amaranth.hdl import Array, Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from zohw.losses import get as get_loss

__all__ = ["LossUnit", "LABEL_QUEUE", "label_bits"]

#: Default depth of the label queue (labels of vectors between the sample memory and the loss
#: unit; the trainer passes :attr:`zohw.hw.plan.TrainerPlan.label_queue`).
LABEL_QUEUE = 4


def label_bits(classes):
    """Width of a label 0 .. classes - 1."""
    return max(1, (classes - 1).bit_length())


class LossUnit(wiring.Component):
    """Loss unit of a :class:`zohw.train_config.TrainerConfig` (its ``loss`` plug-in, margin or
    target, ``logit_shift`` and ``batch``).

    It takes a result vector from ``y`` (scores ``y_c >> logit_shift``) with the next label of
    the queue, then adds the loss term of one class per cycle (C cycles), ready for the next
    vector in its last class cycle.

    Members
    -------
    y : In(stream(ArrayLayout(signed(result_bits), C)))
        Results of the output layer (C = ``config.classes``).
    label : In(stream(unsigned(label_bits(C))))
        Labels in the order of the results; queued (``label_queue`` deep, always ready: at most
        two vectors per macro and one per register are in flight).
    active : In(1)
        A forward pass; low: the sample count restarts.
    clear : In(1)
        Strobe: the loss accumulator ← 0.
    loss : Out(signed(loss_bits + 1))
        The accumulated loss.
    done : Out(1)
        The last class of the ``batch``-th sample of the pass is added at this edge.
    """

    def __init__(self, config, *, result_bits, score_bits, loss_bits, label_queue=LABEL_QUEUE):
        self._cfg = config
        self._loss = get_loss(config.loss)
        self._score_bits = score_bits
        self._classes = config.classes
        self._queue = label_queue
        super().__init__({
            "y": In(stream.Signature(data.ArrayLayout(signed(result_bits), self._classes))),
            "label": In(stream.Signature(unsigned(label_bits(self._classes)))),
            "active": In(1),
            "clear": In(1),
            "loss": Out(signed(loss_bits + 1)),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        C, LB, Q = self._classes, label_bits(self._classes), self._queue
        queue = Array(Signal(LB, name=f"lq{k}") for k in range(Q))
        qw = Signal(range(Q))
        qr = Signal(range(Q))
        m.d.comb += self.label.ready.eq(1)
        with m.If(self.label.valid):
            m.d.sync += [queue[qw].eq(self.label.payload), qw.eq(qw + 1)]

        sshape = signed(self._score_bits)
        sreg = [Signal(sshape, name=f"score{c}") for c in range(C)]
        sy = Signal(sshape)
        lab = Signal(LB)
        j = Signal(range(max(2, C)))
        busy = Signal()
        taken = Signal(range(cfg.batch + 1))
        last = j == C - 1
        m.d.comb += [self.y.ready.eq(~busy | last),
                     self.done.eq(busy & last & (taken == cfg.batch))]
        scores = [self.y.payload[c] >> cfg.logit_shift for c in range(C)]
        term = Signal(unsigned(len(self.loss) - 1))
        m.d.comb += term.eq(self._loss.term(cfg, sreg[0], sy, j == lab))

        with m.If(busy):
            m.d.sync += [j.eq(j + 1), self.loss.eq(self.loss + term)]
            m.d.sync += [sreg[c].eq(sreg[c + 1]) for c in range(C - 1)]
            with m.If(last):
                m.d.sync += [busy.eq(0), j.eq(0)]
        with m.If(self.y.valid & self.y.ready):
            m.d.sync += [busy.eq(1), j.eq(0), lab.eq(queue[qr]), qr.eq(qr + 1),
                         sy.eq(Array(scores)[queue[qr]]), taken.eq(taken + 1)]
            m.d.sync += [sreg[c].eq(scores[c]) for c in range(C)]
        with m.If(~self.active):
            m.d.sync += taken.eq(0)
        with m.If(self.clear):
            m.d.sync += self.loss.eq(0)
        return m
