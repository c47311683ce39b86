"""The strategy registry: every perturbation strategy, one module each.

``REGISTRY`` maps a name to its strategy object (:class:`~zohw.strategies.base.Strategy`).
Modules of this package that define ``STRATEGY`` are found by name, so a new strategy is one new
module; everything else — :data:`STRATEGIES`, the families, :class:`zohw.config.EngineConfig`'s
knob fields and validation, the command-line options, the engine, the golden model, the
co-simulation bank (:func:`combinations`) and the statistics tests — is derived from here.
"""


from zohw.registry import discover

from .base import Knob, Moments, Strategy

__all__ = ["REGISTRY", "STRATEGIES", "GAUSSIAN", "UNIFORM_FAMILY", "POOL_STRATEGIES",
           "PEZO_FAMILY", "KNOBS", "combinations", "family", "Knob", "Moments", "Strategy"]


def _discover():
    return discover(__name__, __path__, "STRATEGY", Strategy,
                    order=lambda s: (s.order, s.name))

REGISTRY = _discover()

STRATEGIES = tuple(REGISTRY)
GAUSSIAN = tuple(n for n, s in REGISTRY.items() if s.gaussian)
#: Strategies that draw U(-1, 1) words and therefore accept a scaling mode.
UNIFORM_FAMILY = tuple(n for n, s in REGISTRY.items() if s.uniform_family)
#: Strategies that fill a pool of ``pool`` words once per seed load.
POOL_STRATEGIES = tuple(n for n, s in REGISTRY.items() if s.pool)
PEZO_FAMILY = tuple(n for n, s in REGISTRY.items() if s.pezo_family)


def _knobs():
    """Every knob of every strategy, by name, with the strategies that declare it."""
    knobs, owners = {}, {}
    for s in REGISTRY.values():
        for k in s.knobs:
            if k.name in knobs and knobs[k.name] != k:
                raise RuntimeError(f"knob {k.name} is declared differently by "
                                   f"{', '.join(owners[k.name])} and {s.name}")
            knobs[k.name] = k
            owners.setdefault(k.name, []).append(s.name)
    return {n: (knobs[n], tuple(owners[n])) for n in knobs}


#: ``{knob name: (Knob, owner strategy names)}``.
KNOBS = _knobs()


def combinations():
    """The (strategy, scaling) pairs the cross-check bank covers: every accepted scaling of
    every strategy."""
    return [(name, scaling) for name, s in REGISTRY.items() for scaling in s.scalings]


def family(name):
    """The family flags of strategy ``name`` as a set of words (``gaussian``, ``uniform``,
    ``pool``, ``pezo``)."""
    s = REGISTRY[name]
    flags = {"gaussian": s.gaussian, "uniform": s.uniform_family, "pool": s.pool,
             "pezo": s.pezo_family}
    return {k for k, v in flags.items() if v}
