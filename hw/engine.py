"""The perturbation engine: P signed B-bit perturbation words per cycle, replayable per step.

One :class:`PerturbationEngine` elaborates any strategy of :data:`zohw.strategies.REGISTRY`
from shared components joined with ``wiring.connect``:

- :class:`~zohw.hw.sequencer.Sequencer` — the one owner of the :class:`Phase`; it turns the
  strobes and the stream handshake into the control bus and the generators' commands;
- :class:`~zohw.hw.generators.GeneratorBank` — the strategy's checkpointed stream generators;
- pool strategies: :class:`~zohw.hw.fill.PoolFill` (with its own generator bank and the
  :class:`~zohw.hw.scaler.AdaptiveScaler`), :class:`~zohw.hw.pool.PoolMemory` and the
  strategy's addresser (:mod:`zohw.hw.addressing`, with :class:`~zohw.hw.counter.StepCounter`);
- :class:`~zohw.hw.wordmap.WordMap` — the strategy's hardware word map.

Its golden model is :func:`zohw.sw.perturb.golden_stream`; the contract both follow is in
``docs/engine-contract.md``.
"""

from amaranth import Module, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from zohw.config import EngineConfig

from .fill import PoolFill
from .generators import GeneratorBank
from .pool import PoolMemory
from .sequencer import Phase, Sequencer
from .wordmap import WordMap

__all__ = ["PerturbationEngine", "Phase"]


class PerturbationEngine(wiring.Component):
    """Perturbation engine for one :class:`~zohw.config.EngineConfig`.

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
        s = cfg.strategy_object
        m = Module()
        gens = s.stream_generators(cfg)

        m.submodules.sequencer = seq = Sequencer(pool=s.pool, warm=gens > 0)
        m.d.comb += [seq.seed.eq(self.seed), seq.load.eq(self.load),
                     seq.advance.eq(self.advance), seq.replay.eq(self.replay),
                     seq.ready.eq(self.z.ready),
                     self.busy.eq(seq.busy), self.z.valid.eq(seq.valid)]

        m.submodules.wordmap = wordmap = WordMap(cfg)
        if gens:
            m.submodules.generators = bank = GeneratorBank(cfg.source, gens, base=s.stream_base)
            wiring.connect(m, sequencer=seq.gen, generators=bank.cmd)
            m.d.comb += wordmap.bits.eq(bank.state)
        if s.pool:
            m.submodules.fill = fill = PoolFill(cfg)
            m.submodules.pool = pool = PoolMemory(cfg, banked=s.banked)
            m.submodules.addresser = addresser = s.addresser(cfg)
            wiring.connect(m, sequencer=seq.fill, fill=fill.fill)
            wiring.connect(m, fill=fill.write, pool=pool.write)
            wiring.connect(m, addresser=addresser.rows, pool=pool.rows)
            wiring.connect(m, sequencer=seq.ctl, wordmap=wordmap.ctl, addresser=addresser.ctl)
            m.d.comb += wordmap.reads.eq(pool.reads)
        else:
            wiring.connect(m, sequencer=seq.ctl, wordmap=wordmap.ctl)
        m.d.comb += self.z.payload.eq(wordmap.words)
        return m
