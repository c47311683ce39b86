"""The word map: the strategy's hardware word map as a component — from the wide random word
(and the pool's reads) to the P output words."""

from amaranth import Module, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from zohw.strategies.base import HardwareFields

from .sequencer import ControlSignature

__all__ = ["WordMap"]


class WordMap(wiring.Component):
    """Members: ``ctl`` (the control bus, for state that follows the step protocol), ``bits``
    (the stream generators' wide word, if the strategy has stream generators), ``reads`` (pool
    strategies: this transfer's pool words) and ``words`` (the P output words)."""

    def __init__(self, config):
        self._config = config
        s = config.strategy_object
        members = {"ctl": In(ControlSignature)}
        gens = s.stream_generators(config)
        if gens:
            members["bits"] = In(32 * gens)
        if s.pool:
            members["reads"] = In(data.ArrayLayout(signed(config.width), config.lanes))
        members["words"] = Out(data.ArrayLayout(signed(config.width), config.lanes))
        super().__init__(members)

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        cfg = self._config
        s = cfg.strategy_object
        m = Module()
        bits = getattr(self, "bits", None)
        fields = HardwareFields(bits, s.stream_layout(cfg)) if bits is not None else None
        reads = getattr(self, "reads", None)
        words = s.hw_words(m, cfg, fields, self.ctl,
                           None if reads is None else [reads[j] for j in range(cfg.lanes)])
        for j, w in enumerate(words):
            m.d.comb += self.words[j].eq(w)
        return m
