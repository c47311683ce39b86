"""Uniform sources: one step of each generator, and the GF(2) matrix of that step.

Every generator here is linear over GF(2): one step maps state bits ``x`` to ``M @ x (mod 2)``.
The step functions below (plain Python integers) are the single definition; :func:`step_matrix`
derives ``M`` from them, the hardware (:mod:`zohw.hw.engine`) builds each next-state bit as the XOR
of the state bits in its row of ``M``, and the golden model (:mod:`zohw.sw.perturb`) jumps ahead
with matrix powers. A wrong tap therefore changes both sides the same way only if it is written
here — which is why the tests also check the step functions against their textbook definitions.
"""

from functools import lru_cache

__all__ = ["SOURCES", "MASK32", "LFSR32_TAPS", "LFSR32_STEPS", "XORSHIFT32_SHIFTS", "LFSR16_TAPS",
           "galois_step", "lfsr32_step", "xorshift32_step", "lfsr16_draw", "step_function",
           "step_matrix", "matrix_rows", "fmix32", "mix_constant", "mix_seed"]

#: The 32-bit uniform generators an engine can use.
SOURCES = ("lfsr32", "xorshift32")

MASK32 = 0xFFFF_FFFF
#: Galois LFSR (right shift) feedback mask. Maximal length (period 2**32 - 1, checked by the
#: tests); chosen among 4-tap masks for the sparsest 32-step unrolled next-state network
#: (134 XOR inputs over 32 bits, at most 7 per bit, against 505 for the textbook 0x80200003).
LFSR32_TAPS = 0x9004_8000
#: Steps of the 32-bit Galois LFSR per cycle.
LFSR32_STEPS = 32
#: Marsaglia's xorshift32 triple (left, right, left).
XORSHIFT32_SHIFTS = (13, 17, 5)
#: A 16-bit Galois LFSR, x^16 + x^14 + x^13 + x^11 + 1 (pezo-block's block offsets).
LFSR16_TAPS = 0xB400


def galois_step(x, taps, steps=1):
    """``steps`` shifts of a right-shifting Galois LFSR with feedback mask ``taps``."""
    for _ in range(steps):
        x = (x >> 1) ^ taps if x & 1 else x >> 1
    return x


def lfsr32_step(x, taps=LFSR32_TAPS):
    """One cycle of the 32-bit Galois LFSR: 32 shifts, so all 32 state bits are fresh."""
    return galois_step(x & MASK32, taps, LFSR32_STEPS)


def xorshift32_step(x, shifts=XORSHIFT32_SHIFTS):
    """Marsaglia's xorshift32: x ^= x << a; x ^= x >> b; x ^= x << c."""
    a, b, c = shifts
    x &= MASK32
    x ^= (x << a) & MASK32
    x ^= x >> b
    x ^= (x << c) & MASK32
    return x


def lfsr16_draw(x, steps, taps=LFSR16_TAPS):
    """One draw of the 16-bit Galois LFSR: ``steps`` shifts."""
    return galois_step(x & 0xFFFF, taps, steps)


def step_function(source):
    """The 32-bit step of a named source (``lfsr32`` or ``xorshift32``)."""
    return {"lfsr32": lfsr32_step, "xorshift32": xorshift32_step}[source]


@lru_cache(maxsize=None)
def _matrix(key, bits):
    kind, arg = key
    step = step_function(kind) if kind != "lfsr16" else (lambda x: lfsr16_draw(x, arg))
    cols = [step(1 << j) for j in range(bits)]
    return tuple(tuple((cols[j] >> i) & 1 for j in range(bits)) for i in range(bits))


def step_matrix(source, draw_steps=None):
    """GF(2) matrix ``M`` (tuple of rows) with ``next_bit[i] = XOR_j M[i][j] & bit[j]``.

    ``source`` is ``lfsr32``, ``xorshift32`` or ``lfsr16`` (then ``draw_steps`` shifts per step).
    """
    if source == "lfsr16":
        return _matrix(("lfsr16", draw_steps), 16)
    return _matrix((source, None), 32)


def matrix_rows(matrix):
    """For each output bit, the list of input bits XORed into it."""
    return [[j for j, m in enumerate(row) if m] for row in matrix]


# -- seeding -----------------------------------------------------------------------------------

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
