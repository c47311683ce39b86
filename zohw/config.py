"""The one configuration object of a perturbation engine.

:class:`EngineConfig` drives both the Amaranth elaboration (:mod:`zohw.hw`) and the golden model
(:mod:`zohw.sw`). Every constant either side needs — generator taps, seed-mixing constants, the
inverse-CDF table, shift-add scaling terms, bit layouts — is derived here, once.

Fixed-point format
------------------
Every strategy emits ``lanes`` signed words of ``width`` bits (B) per cycle. A word ``w`` stands
for ``w * 2**-(B - 3)``: the value of one LSB is :attr:`EngineConfig.lsb`, the range is
``[-4, 4)`` and the target standard deviation is 1.0.

Uniform sources
---------------
A *generator* is a 32-bit Galois LFSR (``lfsr32``, feedback mask ``LFSR32_TAPS``, stepped
32 times per cycle so that every cycle delivers 32 fresh bits) or Marsaglia's ``xorshift32``
(13, 17, 5), stepped once per cycle. Generator ``k`` is seeded with ``mix_seed(seed, k)``: the
seed XOR a per-generator constant ``fmix32(k + 1)`` (MurmurHash3's finaliser), replaced by that
constant if the XOR is zero, so no generator is ever in the all-zero state. The outputs of all
generators of an engine, concatenated (generator 0 in the low bits), form one wide random word per
cycle, sliced into fields as :meth:`EngineConfig.field_layout` documents.
"""

import hashlib
import json
import math
import statistics
from dataclasses import dataclass, fields, asdict

from .validate import choice as _choice, integer as _int

__all__ = [
    "STRATEGIES", "SCALINGS", "SOURCES", "POOL_READS", "UNIFORM_FAMILY", "POOL_STRATEGIES",
    "EngineConfig", "fmix32", "mix_seed",
]

STRATEGIES = ("gauss-clt", "gauss-icdf", "uniform", "rademacher",
              "pezo-shift", "pezo-block", "pezo-otf")
#: Strategies that draw U(-1, 1) words and therefore accept a scaling mode.
UNIFORM_FAMILY = ("uniform", "pezo-shift", "pezo-block", "pezo-otf")
#: Strategies that fill a pool of ``pool`` words once per seed load.
POOL_STRATEGIES = ("pezo-shift", "pezo-block")
SCALINGS = ("none", "fixed", "adaptive")
SOURCES = ("lfsr32", "xorshift32")
#: Read port of the pool memory: asynchronous (distributed RAM: LUTRAM on xilinx7, DPR16X4 on
#: ecp5) or registered (block RAM, which ice40 needs: it has no distributed RAM).
POOL_READS = ("comb", "sync")
CLT_K = (2, 4, 8, 12)

MASK32 = 0xFFFF_FFFF
#: Galois LFSR (right shift) feedback mask. Maximal length (period 2**32 - 1, checked by the
#: tests); chosen among 4-tap masks for the sparsest 32-step unrolled next-state network
#: (134 XOR inputs over 32 bits, at most 7 per bit, against 505 for the textbook 0x80200003).
LFSR32_TAPS = 0x9004_8000
#: Steps of the 32-bit Galois LFSR per cycle.
LFSR32_STEPS = 32
#: Marsaglia's xorshift32 triple (left, right, left).
XORSHIFT32_SHIFTS = (13, 17, 5)
#: The block-offset LFSR of ``pezo-block``: 16-bit Galois, x^16 + x^14 + x^13 + x^11 + 1.
LFSR16_TAPS = 0xB400
#: Generator index whose mixing constant seeds the block-offset LFSR.
BLOCK_LFSR_INDEX = 1000

#: √3 as shift-add terms (sign, left shift) applied to a word with 2 guard bits: 2 - 1/4 = 1.75.
SQRT3_TERMS = ((+1, 1), (-1, -2))
#: Guard bits between a raw uniform word (B bits, U(-1, 1)) and the output format (B - 3
#: fraction bits): the raw word has B - 1 fraction bits.
UNIFORM_GUARD = 2
#: Adaptive scaling: mantissa bits taken from the sum of squares, and precision of the table.
ADAPTIVE_MANT_BITS = 6
ADAPTIVE_TABLE_FRAC = 12
#: Fraction bits of the adaptive scale factor applied to raw words.
ADAPTIVE_SCALE_FRAC = 10


def fmix32(x):
    """MurmurHash3's 32-bit finaliser: a bijection on 32-bit integers with fmix32(0) == 0."""
    x &= MASK32
    x ^= x >> 16
    x = (x * 0x85EB_CA6B) & MASK32
    x ^= x >> 13
    x = (x * 0xC2B2_AE35) & MASK32
    x ^= x >> 16
    return x


def mix_constant(k, bits=32):
    """The nonzero mixing constant of generator ``k`` (``bits`` wide)."""
    c = fmix32(k + 1) & ((1 << bits) - 1)
    return c if c else 1


def mix_seed(seed, k, bits=32):
    """Initial state of generator ``k`` for a 32-bit ``seed``: never zero.

    For ``bits < 32`` the seed is first folded by XOR of its ``bits``-wide chunks.
    """
    seed &= MASK32
    folded = 0
    for shift in range(0, 32, bits):
        folded ^= (seed >> shift) & ((1 << bits) - 1)
    c = mix_constant(k, bits)
    s = folded ^ c
    return s if s else c


@dataclass(frozen=True)
class EngineConfig:
    """Configuration of one perturbation engine.

    Parameters
    ----------
    strategy : str
        One of :data:`STRATEGIES`.
    lanes : int
        P, words emitted per cycle (1 to 64).
    width : int
        B, bits per word (4 to 16); the format is signed with B - 3 fraction bits.
    pool : int
        N, words in the reuse pool of ``pezo-shift``/``pezo-block``: a power of two, a multiple of
        ``lanes``, at most 4096. Ignored (but validated) by the other strategies.
    scaling : str or None
        ``none``, ``fixed`` or ``adaptive``; None picks the strategy's default (``adaptive`` for
        the pool strategies, ``fixed`` for ``uniform``/``pezo-otf``, ``none`` otherwise). Only the
        uniform family accepts a mode other than ``none``; ``adaptive`` needs a pool.
    source : str
        Uniform generator, ``lfsr32`` or ``xorshift32``.
    clt_k : int
        K, uniforms summed per word by ``gauss-clt`` (2, 4, 8 or 12).
    icdf_bits : int
        Index bits of the ``gauss-icdf`` half table (2 to B - 1): the table holds 2**icdf_bits
        magnitudes and each word uses icdf_bits + 1 random bits.
    otf_sources : int or None
        R, uniform sources of ``pezo-otf`` shared by the P lanes (1 to P - 1); None picks
        max(1, P // 8).
    pool_read : str
        Read port of the pool: ``comb`` (asynchronous; distributed RAM) or ``sync`` (registered;
        block RAM). The words and their timing at the stream are the same either way.
    """

    strategy: str = "pezo-block"
    lanes: int = 16
    width: int = 8
    pool: int = 256
    scaling: str | None = None
    source: str = "xorshift32"
    clt_k: int = 4
    icdf_bits: int | None = None
    otf_sources: int | None = None
    pool_read: str = "comb"

    def __post_init__(self):
        _choice("strategy", self.strategy, STRATEGIES)
        _int("lanes", self.lanes, 1, 64)
        _int("width", self.width, 4, 16)
        _int("pool", self.pool, 1, 4096)
        if self.pool & (self.pool - 1):
            raise ValueError(f"pool must be a power of two, not {self.pool}")
        if self.strategy in POOL_STRATEGIES and self.pool % self.lanes:
            raise ValueError(f"pool must be a multiple of lanes ({self.lanes}), not {self.pool}")
        _choice("source", self.source, SOURCES)
        _choice("pool_read", self.pool_read, POOL_READS)
        _int("clt_k", self.clt_k, allowed=CLT_K)
        if self.icdf_bits is None:
            object.__setattr__(self, "icdf_bits", min(self.width - 1, 8))
        _int("icdf_bits", self.icdf_bits, 2, self.width - 1)
        if self.otf_sources is None:
            object.__setattr__(self, "otf_sources", max(1, self.lanes // 8))
        if self.strategy == "pezo-otf":
            if self.lanes < 2:
                raise ValueError("lanes must be at least 2 for pezo-otf, not 1")
            _int("otf_sources", self.otf_sources, 1, self.lanes - 1)
        if self.scaling is None:
            default = ("adaptive" if self.strategy in POOL_STRATEGIES else
                       "fixed" if self.strategy in UNIFORM_FAMILY else "none")
            object.__setattr__(self, "scaling", default)
        _choice("scaling", self.scaling, SCALINGS)
        if self.strategy not in UNIFORM_FAMILY and self.scaling != "none":
            raise ValueError(
                f"scaling must be none for {self.strategy} (unit std by construction), "
                f"not {self.scaling!r}")
        if self.scaling == "adaptive" and self.strategy not in POOL_STRATEGIES:
            raise ValueError(
                f"scaling must be none or fixed for {self.strategy} (adaptive scaling measures "
                f"a pool: {', '.join(POOL_STRATEGIES)}), not 'adaptive'")

    # -- identity ------------------------------------------------------------------------------

    def as_dict(self):
        return asdict(self)

    @property
    def config_hash(self):
        """Hex digest that names this hardware configuration (the seed is a runtime input)."""
        text = json.dumps(self.as_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def name(self):
        return f"{self.strategy}-{self.scaling}-p{self.lanes}b{self.width}n{self.pool}"

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

    @property
    def clt_uniform_bits(self):
        """Bits of each uniform summed by ``gauss-clt``: F + 1, i.e. U(-1, 1) at output LSB."""
        return self.frac_bits + 1

    def field_layout(self):
        """Bits per cycle a strategy takes from the wide random word, as ``{field: (lsb, bits,
        count)}``: field ``count`` entries of ``bits`` bits each, packed upward from ``lsb``.

        - ``uniform``: ``raw`` — P words of B bits (U(-1, 1) with B - 1 fraction bits).
        - ``rademacher``: ``sign`` — P bits, 0 → +1, 1 → -1.
        - ``gauss-clt``: ``u`` — P·K words of F + 1 bits; lane j sums entries j·K … j·K + K - 1.
        - ``gauss-icdf``: ``icdf`` — P fields of icdf_bits + 1 bits: the low icdf_bits index the
          half table, the top bit is the sign.
        - ``pezo-otf``: ``raw`` — R words of B bits, then ``sign`` — P bits.
        - ``pezo-shift``/``pezo-block``: ``raw`` — one B-bit word per fill cycle (generator
          0). ``pezo-block`` also draws P sign bits per cycle from its
          :attr:`sign_generators` (generators 1 …).
        """
        P, B = self.lanes, self.width
        if self.strategy == "uniform":
            return {"raw": (0, B, P)}
        if self.strategy == "rademacher":
            return {"sign": (0, 1, P)}
        if self.strategy == "gauss-clt":
            return {"u": (0, self.clt_uniform_bits, P * self.clt_k)}
        if self.strategy == "gauss-icdf":
            return {"icdf": (0, self.icdf_bits + 1, P)}
        if self.strategy == "pezo-otf":
            R = self.otf_sources
            return {"raw": (0, B, R), "sign": (R * B, 1, P)}
        return {"raw": (0, B, 1)}

    @property
    def random_bits(self):
        """Random bits consumed per cycle."""
        return max(lsb + bits * count for lsb, bits, count in self.field_layout().values())

    @property
    def generators(self):
        """Number of 32-bit uniform generators (pezo-block: the fill generator only)."""
        return -(-self.random_bits // 32)

    @property
    def sign_generators(self):
        """``pezo-block``: 32-bit generators for the P sign bits per cycle, indices 1 …"""
        return -(-self.lanes // 32) if self.strategy == "pezo-block" else 0

    # -- strategy constants --------------------------------------------------------------------

    @property
    def pool_rows(self):
        """Rows of P words in the pool (N / P)."""
        return self.pool // self.lanes

    @property
    def block_offset_bits(self):
        """Bits of a ``pezo-block`` row offset: log2(N / P)."""
        return self.pool_rows.bit_length() - 1

    #: Steps of the 16-bit block LFSR per draw: a whole new state for every block.
    block_lfsr_steps = 16

    #: The second rotation of :meth:`block_lane_offset`.
    block_offset_twist = 5

    def block_lane_offset(self, state, lane):
        """Row offset of bank ``lane`` for a block-LFSR ``state`` (ints or integer tensors):
        ``(rotr16(state, j) + rotr16(state, j + 5)) mod (N/P)`` with j = lane mod 16.

        One offset per block would confine a block's perturbations to N/P directions; a plain
        window of the state per lane (overlapping windows) to about half of the N. The sum of
        two rotations makes the lanes' offsets independent enough that the perturbations of a
        block span all N directions (rank 1 + P·(N/P - 1) of the lane-offset indicators,
        checked in ``tests/test_perturb_golden.py``).
        """
        def rotr(x, r):
            return ((x >> r) | (x << (16 - r))) & 0xFFFF
        j = lane % 16
        total = rotr(state, j) + rotr(state, (j + self.block_offset_twist) % 16)
        return total & (self.pool_rows - 1)

    @property
    def clt_terms(self):
        """Shift-add terms (sign, left shift) of √(3/K) · 2**-? normalising a sum of K uniforms.

        Each uniform has F fraction bits and std 1/√3, so the sum has std √(K/3); multiplying by
        √(3/K) gives unit std. Terms are applied with 3 guard bits (see :attr:`clt_guard`).
        """
        return {2: ((+1, 0), (+1, -2), (-1, -5)),      # 1.21875   (√1.5   = 1.2247)
                4: ((+1, 0), (-1, -3)),                # 0.875     (√0.75  = 0.8660)
                8: ((+1, -1), (+1, -3), (-1, -6)),     # 0.609375  (√0.375 = 0.6124)
                12: ((+1, -1),)}[self.clt_k]           # 0.5       (exact)

    clt_guard = 3

    @property
    def icdf_table(self):
        """Half table of ``gauss-icdf``: 2**icdf_bits magnitudes in output LSBs, increasing.

        Entry i is Φ⁻¹(½ + (i + ½) / 2**(icdf_bits + 1)), the midpoint quantile, rescaled so the
        symmetric discrete distribution has unit variance, rounded and clipped to the word range.
        """
        n = 1 << self.icdf_bits
        nd = statistics.NormalDist()
        q = [nd.inv_cdf(0.5 + (i + 0.5) / (2 * n)) for i in range(n)]
        rms = math.sqrt(sum(v * v for v in q) / n)
        scale = (1 << self.frac_bits) / rms
        return tuple(min(self.word_max, int(round(v * scale))) for v in q)

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

    @property
    def pool_bits(self):
        return self.pool * self.width

    def summary(self):
        parts = [f"strategy={self.strategy}", f"P={self.lanes}", f"B={self.width}"]
        if self.strategy in POOL_STRATEGIES:
            parts.append(f"N={self.pool}")
        if self.strategy == "gauss-clt":
            parts.append(f"K={self.clt_k}")
        if self.strategy == "gauss-icdf":
            parts.append(f"table={1 << self.icdf_bits}")
        if self.strategy == "pezo-otf":
            parts.append(f"R={self.otf_sources}")
        parts += [f"scaling={self.scaling}", f"source={self.source}"]
        return " ".join(parts)

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
        return cls(**d)
