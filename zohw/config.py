"""The one configuration object of a perturbation engine.

:class:`EngineConfig` drives both the Amaranth elaboration (:mod:`zohw.hw`) and the golden model
(:mod:`zohw.sw`). Its fields are the engine's common fields plus every knob the strategies of
:data:`zohw.strategies.REGISTRY` declare (``clt_k``, ``icdf_bits``, …): a new strategy's knob is
a field, a command-line option and a validated value without an edit here.

Fixed-point format
------------------
Every strategy emits ``lanes`` signed words of ``width`` bits (B) per cycle. A word ``w`` stands
for ``w * 2**-(B - 3)``: the value of one LSB is :attr:`EngineConfig.lsb`, the range is
``[-4, 4)`` and the target standard deviation is 1.0.

Uniform sources
---------------
A *generator* is a 32-bit Galois LFSR (``lfsr32``, feedback mask ``LFSR32_TAPS``, stepped
32 times per cycle so that every cycle delivers 32 fresh bits) or Marsaglia's ``xorshift32``
(13, 17, 5), stepped once per cycle (:mod:`zohw.sources`). Generator ``k`` is seeded with
``mix_seed(seed, k)``: the seed XOR a per-generator constant ``fmix32(k + 1)`` (MurmurHash3's
finaliser), replaced by that constant if the XOR is zero, so no generator is ever in the all-zero
state. The outputs of all generators of an engine, concatenated (generator 0 in the low bits),
form one wide random word per cycle, sliced into fields as the strategy's
:meth:`~zohw.strategies.base.Strategy.field_layout` documents.
"""

import math
from dataclasses import make_dataclass

from .configbase import Config, param
from .errors import ConfigError
from .sources import (LFSR16_TAPS, LFSR32_STEPS, LFSR32_TAPS, MASK32, SOURCES,  # noqa: F401
                      XORSHIFT32_SHIFTS, fmix32, mix_constant, mix_seed)
from .strategies import (KNOBS, POOL_STRATEGIES, REGISTRY, STRATEGIES,  # noqa: F401
                         UNIFORM_FAMILY)
from .strategies.base import (ADAPTIVE_MANT_BITS, ADAPTIVE_SCALE_FRAC,  # noqa: F401
                              ADAPTIVE_TABLE_FRAC, SQRT3_TERMS, UNIFORM_GUARD)

__all__ = [
    "STRATEGIES", "SCALINGS", "SOURCES", "POOL_READS", "UNIFORM_FAMILY", "POOL_STRATEGIES",
    "EngineConfig", "fmix32", "mix_seed",
]

SCALINGS = ("none", "fixed", "adaptive")
#: Read port of the pool memory: asynchronous (distributed RAM: LUTRAM on xilinx7, DPR16X4 on
#: ecp5) or registered (block RAM, which ice40 needs: it has no distributed RAM).
POOL_READS = ("comb", "sync")


def _default_scaling(config):
    """the strategy's own (its first accepted mode)"""
    return REGISTRY[config.strategy].scalings[0]


def _min_lanes(config):
    return REGISTRY[config.strategy].min_lanes


def _knob_param(knob, owners):
    def bound(b):
        # a bound set by other fields may not fit the strategies that ignore the knob
        if not (knob.owner_only and callable(b)):
            return b
        return lambda c: b(c) if c.strategy in owners else None
    help_ = knob.help + ("" if set(owners) == set(STRATEGIES) else f" ({', '.join(owners)})")
    return param(knob.default, help=help_, lo=bound(knob.lo), hi=bound(knob.hi),
                 allowed=knob.allowed, choices=knob.choices, derive=knob.derive,
                 metavar=knob.metavar, kind=knob.kind)


def _fields():
    common = [
        ("strategy", str, param("pezo-block", choices=STRATEGIES, metavar="STRATEGY",
                                help="perturbation strategy")),
        ("lanes", int, param(16, lo=_min_lanes, hi=64, metavar="P", help="P, words per cycle")),
        ("width", int, param(8, lo=4, hi=16, metavar="B",
                             help="B, bits per word (signed, B - 3 fraction bits)")),
        ("pool", int, param(256, lo=1, hi=4096, metavar="N",
                            help=f"N, pool words, a power of two and a multiple of P "
                                 f"({', '.join(POOL_STRATEGIES)})")),
        ("scaling", str | None, param(None, choices=SCALINGS, derive=_default_scaling,
                                      metavar="MODE", help="scaling of uniform words")),
        ("source", str, param("xorshift32", choices=SOURCES, metavar="NAME",
                              help="uniform generator")),
    ]
    knobs = [(name, knob.kind | None if knob.derive else knob.kind, _knob_param(knob, owners))
             for name, (knob, owners) in KNOBS.items()]
    tail = [("pool_read", str, param("comb", choices=POOL_READS, metavar="PORT",
                                     help="read port of the pool: comb (asynchronous, "
                                          "distributed RAM) or sync (registered, block RAM)"))]
    return common + knobs + tail


class _EngineConfigMethods(Config):
    """Derived quantities of :class:`EngineConfig` (the fields come from :func:`_fields`)."""

    def _check(self):
        s = self.strategy_object
        if self.pool & (self.pool - 1):
            raise ConfigError(f"pool must be a power of two, not {self.pool}")
        if self.scaling not in s.scalings:
            raise ConfigError(
                f"scaling must be {' or '.join(s.scalings)} for {s.name} ({s.scaling_reason}), "
                f"not {self.scaling!r}")
        s.check(self)

    @property
    def strategy_object(self):
        """The :class:`~zohw.strategies.base.Strategy` of this configuration."""
        return REGISTRY[self.strategy]

    @property
    def name(self):
        return f"{self.strategy}-{self.scaling}-p{self.lanes}b{self.width}n{self.pool}"

    def summary(self):
        parts = [f"strategy={self.strategy}", f"P={self.lanes}", f"B={self.width}"]
        parts += self.strategy_object.summary_parts(self)
        parts += [f"scaling={self.scaling}", f"source={self.source}"]
        return " ".join(parts)

    def label(self):
        """Human label of the strategy and its knobs, e.g. ``gauss-clt (K=4)``."""
        return self.strategy_object.label(self)

    # -- number format -------------------------------------------------------------------------

    @property
    def frac_bits(self):
        """Fraction bits F of the output format (B - 3)."""
        return self.width - 3

    @property
    def lsb(self):
        """Value of one LSB of an output word, in units of the target std."""
        return 2.0 ** -self.frac_bits

    @property
    def word_min(self):
        return -(1 << (self.width - 1))

    @property
    def word_max(self):
        return (1 << (self.width - 1)) - 1

    # -- random bit budget ---------------------------------------------------------------------

    def field_layout(self):
        """Bits per cycle the strategy takes from the wide random word, as ``{field: (lsb,
        bits, count)}``: ``count`` entries of ``bits`` bits each, packed upward from ``lsb``
        (see each strategy's ``field_layout``)."""
        return self.strategy_object.field_layout(self)

    @property
    def random_bits(self):
        """Random bits consumed per cycle."""
        return max(lsb + bits * count for lsb, bits, count in self.field_layout().values())

    @property
    def generators(self):
        """Number of 32-bit uniform generators (pool strategies: the fill generator only)."""
        return -(-self.random_bits // 32)

    @property
    def sign_generators(self):
        """Pool strategies: 32-bit generators read per transfer (``pezo-block``'s signs),
        indices 1 …"""
        s = self.strategy_object
        return s.stream_generators(self) if s.pool else 0

    @property
    def stream_generators(self):
        """32-bit generators the word map reads per transfer (generator strategies: all)."""
        return self.strategy_object.stream_generators(self)

    # -- pool ----------------------------------------------------------------------------------

    @property
    def pool_rows(self):
        """Rows of P words in the pool (N / P)."""
        return self.pool // self.lanes

    @property
    def block_offset_bits(self):
        """Bits of a pool row address: log2(N / P)."""
        return self.pool_rows.bit_length() - 1

    @property
    def pool_bits(self):
        return self.pool * self.width

    @property
    def adaptive_table(self):
        """Table of ``round(2**ADAPTIVE_TABLE_FRAC / sqrt(m))`` for the normalised mantissa m.

        m ranges over [2**(M-1), 2**(M+1)) with M = ADAPTIVE_MANT_BITS (an odd exponent doubles
        the mantissa); entry ``m - 2**(M-1)``.
        """
        lo = 1 << (ADAPTIVE_MANT_BITS - 1)
        hi = 1 << (ADAPTIVE_MANT_BITS + 1)
        return tuple(int(round((1 << ADAPTIVE_TABLE_FRAC) / math.sqrt(m))) for m in range(lo, hi))

    @property
    def adaptive_sum_bits(self):
        """Width of the adaptive sum of squares: N * 2**(2B - 2) at most."""
        return (self.pool.bit_length() - 1) + 2 * self.width - 1

    @property
    def adaptive_scale_bits(self):
        """Width of the adaptive scale factor: scales up to 8 (three integer bits)."""
        return ADAPTIVE_SCALE_FRAC + 3


_DOC = """Configuration of one perturbation engine (validated at construction).

Common fields: ``strategy`` (one of :data:`STRATEGIES`), ``lanes`` P, ``width`` B, ``pool`` N
(pool strategies; validated for all), ``scaling`` (None: the strategy's default), ``source``,
``pool_read``; then one field per strategy knob (:data:`zohw.strategies.KNOBS`). Every field's
help, default and range: :meth:`EngineConfig.describe`.
"""

EngineConfig = make_dataclass("EngineConfig", _fields(), bases=(_EngineConfigMethods,),
                              frozen=True, namespace={"__doc__": _DOC})
EngineConfig.__module__ = __name__
