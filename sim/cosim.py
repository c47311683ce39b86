"""The engine configurations the co-simulation bank covers (every strategy and scaling).

The engine cross-check itself is :mod:`zohw.sim.engine`.
"""

from zohw.config import EngineConfig

__all__ = ["strategy_configs"]


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
