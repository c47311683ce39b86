"""The trainer's sample memory: the train set (as deep as the data set's train split), loaded
over a stream, read in mini-batch order.

Draw n (counted across steps) reads address ``(n * stride) mod n_samples``
(:func:`zohw.sw.data.batch_indices`): one address register plus ``stride mod n_samples``
(reduced by repeated subtraction after ``restart``), minus ``n_samples`` when the sum reaches
it. Both forward passes of a step read the same draws: ``next_batch`` moves the step's first
address on.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from zohw.digits import LABEL_BITS, PIXELS

__all__ = ["SampleMemory", "sample_layout"]


def sample_layout(input_bits, inputs=PIXELS, label_bits=LABEL_BITS):
    """Payload of the sample stream: ``inputs`` input codes (input r at bits
    ``[r*input_bits, ...)``), then the label (default: the digits' 64 pixels, 10 classes)."""
    return data.StructLayout({
        "x": data.ArrayLayout(unsigned(input_bits), inputs),
        "label": unsigned(label_bits),
    })


class SampleMemory(wiring.Component):
    """Sample memory with its mini-batch address generator.

    Members
    -------
    samples : In(stream(sample_layout))
        One sample per transfer, written at ``n_samples`` (then incremented); ready while
        ``writable`` and not full.
    writable, clear : In(1)
        Loading allowed (the trainer is idle); ``clear`` (while writable) empties the memory.
    n_samples : Out(range(capacity + 1))
    restart : In(1)
        Strobe: draw 0 next, stride reloaded (then reduced modulo ``n_samples``).
    ready : Out(1)
        The stride is reduced (``stride mod n_samples`` is known).
    active : In(1)
        A forward pass: emit the step's ``batch`` draws on ``x``; low: rewind to the step's
        first draw.
    next_batch : In(1)
        Strobe: the next step starts after the draws emitted so far.
    x : Out(stream(ArrayLayout(unsigned(input_bits), inputs + 1)))
        The draw's inputs and the constant bias input ``2**input_bits - 1``.
    label : Out(label_bits)
        The label of the draw on ``x``.
    """

    def __init__(self, input_bits, *, capacity, stride, batch, inputs=PIXELS,
                 label_bits=LABEL_BITS):
        self._ib = input_bits
        self._capacity = capacity
        self._stride = stride
        self._batch = batch
        self._inputs = inputs
        self._lb = label_bits
        super().__init__({
            "samples": In(stream.Signature(sample_layout(input_bits, inputs, label_bits))),
            "writable": In(1),
            "clear": In(1),
            "n_samples": Out(range(capacity + 1)),
            "restart": In(1),
            "ready": Out(1),
            "active": In(1),
            "next_batch": In(1),
            "x": Out(stream.Signature(data.ArrayLayout(unsigned(input_bits), inputs + 1))),
            "label": Out(label_bits),
        })

    @property
    def capacity(self):
        return self._capacity

    def elaborate(self, platform):
        m = Module()
        ib, cap, batch, nx = self._ib, self._capacity, self._batch, self._inputs
        m.submodules.mem = mem = memory.Memory(shape=unsigned(nx * ib + self._lb),
                                               depth=cap, init=[])
        wr = mem.write_port()
        rd = mem.read_port()
        n = self.n_samples
        m.d.comb += [
            self.samples.ready.eq(self.writable & (n < cap)),
            wr.addr.eq(n),
            wr.data.eq(self.samples.payload.as_value()),
            wr.en.eq(self.samples.valid & self.samples.ready),
        ]
        with m.If(wr.en):
            m.d.sync += n.eq(n + 1)
        with m.If(self.writable & self.clear):
            m.d.sync += n.eq(0)

        stride_bits = max(self._stride.bit_length(), cap.bit_length(), 1)
        smod = Signal(stride_bits)              # stride mod n_samples
        base = Signal(range(cap))               # address of the step's first draw
        with m.If(self.restart):
            m.d.sync += [base.eq(0), smod.eq(self._stride)]
        with m.Elif(smod >= n):
            m.d.sync += smod.eq(smod - n)
        m.d.comb += self.ready.eq(smod < n)

        a = Signal(range(cap))
        fetched = Signal(range(batch + 1))
        held = Signal()                         # the read port holds a draw
        fetch = self.active & (~held | (self.x.valid & self.x.ready))
        more = fetched != batch
        t = Signal(range(2 * cap + (1 << stride_bits)))
        m.d.comb += [t.eq(a + smod), rd.addr.eq(a), rd.en.eq(fetch)]
        with m.If(~self.active):
            m.d.sync += [a.eq(base), fetched.eq(0), held.eq(0)]
        with m.Elif(fetch):
            m.d.sync += held.eq(more)
            with m.If(more):
                m.d.sync += [a.eq(Mux(t >= n, t - n, t)), fetched.eq(fetched + 1)]
        with m.If(self.next_batch):
            m.d.sync += base.eq(a)
        m.d.comb += [
            self.x.valid.eq(self.active & held),
            self.x.payload.as_value().eq(Cat(rd.data[:nx * ib], Const((1 << ib) - 1, ib))),
            self.label.eq(rd.data[nx * ib:]),
        ]
        return m
