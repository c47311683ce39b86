"""The MLP's requantiser between the two CIM macros: ReLU and saturation into the input
format, ``h = clamp(y1 >> hidden_shift, 0, 2**input_bits - 1)``, plus the constant bias input.
One register stage (a skid-free pipeline register: ready when empty or being emptied)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Requantiser"]


class Requantiser(wiring.Component):
    """Members: ``inp`` In(stream of ``hidden`` signed ``result_bits`` results), ``out``
    Out(stream of ``hidden + 1`` unsigned ``input_bits`` inputs, the last one
    ``2**input_bits - 1``)."""

    def __init__(self, *, hidden, result_bits, input_bits, shift):
        self._hidden = hidden
        self._ib = input_bits
        self._shift = shift
        super().__init__({
            "inp": In(stream.Signature(data.ArrayLayout(signed(result_bits), hidden))),
            "out": Out(stream.Signature(data.ArrayLayout(unsigned(input_bits), hidden + 1))),
        })

    def elaborate(self, platform):
        m = Module()
        ib, imax = self._ib, (1 << self._ib) - 1
        h = Signal(self._hidden * ib)
        m.d.comb += self.inp.ready.eq(~self.out.valid | self.out.ready)
        with m.If(self.inp.valid & self.inp.ready):
            hs = []
            for c in range(self._hidden):
                v = self.inp.payload[c] >> self._shift
                hs.append(Mux(v < 0, 0, Mux(v > imax, imax, v))[:ib])
            m.d.sync += [self.out.valid.eq(1), h.eq(Cat(*hs))]
        with m.Elif(self.out.valid & self.out.ready):
            m.d.sync += self.out.valid.eq(0)
        m.d.comb += self.out.payload.as_value().eq(Cat(h, Const(imax, ib)))
        return m
