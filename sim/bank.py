"""A bank of perturbation engines in one Verilog top level, so that one Verilator build checks
many configurations at once.

All engines share ``seed``, ``load``, ``advance`` and ``replay``; engine ``K`` exposes its own
stream as ``zK__valid``/``zK__ready``/``zK__payload`` and its own ``busyK``. Engines may differ in
every configuration field (strategy, scaling, source, lanes, width, pool, ...).
"""

from amaranth.hdl import Module, signed
from amaranth.lib import stream, wiring
from amaranth.lib.data import ArrayLayout
from amaranth.lib.wiring import In, Out

from zohw.config import EngineConfig

__all__ = ["EngineBank", "bank_verilog", "strategy_configs", "BANK_TOPLEVEL"]

BANK_TOPLEVEL = "zohw_engine_bank"


def _default_factory(config):
    from zohw.hw.engine import PerturbationEngine

    return PerturbationEngine(config)


class EngineBank(wiring.Component):
    """``len(configs)`` engines side by side; see the module docstring for the ports.

    ``engine_factory(config)`` builds one engine (default
    :class:`zohw.hw.engine.PerturbationEngine`); it exists so the testbench itself can be tested
    against a stand-in engine.
    """

    def __init__(self, configs, engine_factory=None):
        configs = tuple(configs)
        if not configs:
            raise ValueError("an engine bank needs at least one configuration")
        for c in configs:
            if not isinstance(c, EngineConfig):
                raise TypeError(f"bank members must be EngineConfig objects, not {c!r}")
        self.configs = configs
        self._factory = engine_factory or _default_factory
        members = {"seed": In(32), "load": In(1), "advance": In(1), "replay": In(1)}
        for k, c in enumerate(configs):
            members[f"busy{k}"] = Out(1)
            members[f"z{k}"] = Out(stream.Signature(ArrayLayout(signed(c.width), c.lanes)))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        for k, config in enumerate(self.configs):
            engine = self._factory(config)
            m.submodules[f"engine{k}"] = engine
            z = getattr(self, f"z{k}")
            m.d.comb += [
                engine.seed.eq(self.seed),
                engine.load.eq(self.load),
                engine.advance.eq(self.advance),
                engine.replay.eq(self.replay),
                getattr(self, f"busy{k}").eq(engine.busy),
                z.valid.eq(engine.z.valid),
                z.payload.eq(engine.z.payload),
                engine.z.ready.eq(z.ready),
            ]
        return m


def bank_verilog(configs, name=BANK_TOPLEVEL, engine_factory=None) -> str:
    """Verilog of an :class:`EngineBank`, emitted like the engine's own Verilog (no source
    locations, lint waiver header; see :mod:`zohw.hw.verilog`)."""
    from zohw.hw.verilog import component_verilog

    return component_verilog(EngineBank(configs, engine_factory), name)


def strategy_configs(lanes, width, pool, *, source_offset=0, **fields):
    """One :class:`EngineConfig` per :func:`zohw.strategies.combinations` pair (strategy and
    accepted scaling), sources alternating between ``lfsr32`` and ``xorshift32`` (starting at
    ``SOURCES[source_offset]``) so both are exercised; two lists with offsets 0 and 1 give every
    combination both. The pool strategies alternate their ``pool_read`` port (``comb``,
    ``sync``); a knob with ``bank_values`` takes value ``source_offset`` of them."""
    from zohw.config import POOL_READS, SOURCES
    from zohw.strategies import REGISTRY, combinations

    configs = []
    pool_reads = 0
    for strategy, scaling in combinations():
        s = REGISTRY[strategy]
        source = SOURCES[(len(configs) + source_offset) % len(SOURCES)]
        extra = {k.name: k.bank_values[source_offset % len(k.bank_values)]
                 for k in s.knobs if k.bank_values and k.name not in fields}
        extra.update(fields)
        if s.pool and "pool_read" not in fields:
            # alternate the pool's read port so both kinds are cross-checked
            extra["pool_read"] = POOL_READS[pool_reads % len(POOL_READS)]
            pool_reads += 1
        configs.append(EngineConfig(strategy=strategy, scaling=scaling, lanes=lanes,
                                    width=width, pool=pool, source=source, **extra))
    return configs
