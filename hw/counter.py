"""A transfer counter that follows the step protocol: the position of a transfer modulo M
(``pezo-shift``'s row pointer, ``pezo-otf``'s source rotation)."""

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .sequencer import ControlSignature

__all__ = ["StepCounter"]


class StepCounter(wiring.Component):
    """Counts transfers modulo ``modulus``: 0 at a load, checkpointed when a step starts
    (``init``/``advance``), back to the checkpoint on ``replay``.

    Members: ``ctl`` (the control bus), ``value`` (the count for the current transfer) and
    ``value_next`` (the count of the next cycle, for a registered memory read).
    """

    def __init__(self, modulus):
        if isinstance(modulus, bool) or not isinstance(modulus, int) or modulus < 1:
            raise ValueError(f"modulus must be a positive integer, not {modulus!r}")
        self._modulus = modulus
        shape = range(max(modulus, 2))
        super().__init__({"ctl": In(ControlSignature), "value": Out(shape),
                          "value_next": Out(shape)})

    @property
    def modulus(self):
        return self._modulus

    def elaborate(self, platform):
        m = Module()
        ctl, value, nxt = self.ctl, self.value, self.value_next
        ckpt = Signal.like(value)
        m.d.comb += nxt.eq(value)
        with m.If(ctl.load):
            m.d.comb += nxt.eq(0)
        with m.Elif(ctl.init | ctl.advance):
            m.d.sync += ckpt.eq(value)
        with m.Elif(ctl.replay):
            m.d.comb += nxt.eq(ckpt)
        with m.Elif(ctl.transfer):
            m.d.comb += nxt.eq(Mux(value == self._modulus - 1, 0, value + 1))
        m.d.sync += value.eq(nxt)
        return m
