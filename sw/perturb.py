"""Golden model of the perturbation engine: the exact word stream, in vectorized torch integers.

The engine's words are a function of the seed and of the *position* of a transfer. The stream
generators advance once per transfer; the checkpoint taken at a step's start makes a replay
re-emit the step's words, so step ``s`` covers transfer positions ``s*C … s*C + C - 1``
(C = :func:`cycles_per_step`). Generators are linear over GF(2), so all positions are computed at
once with matrix powers (:func:`linear_sequence`) — no per-element loops.

Each strategy's golden word map (``zohw.strategies``) turns the fields of the wide random word at
those positions — and, for pool strategies, the pool words its addressing reads
(``golden_rows``) — into words. Pool strategies fill a pool of N words once per seed load
(:func:`golden_pool`); word k sits in bank (lane) ``k mod P``, row ``k // P``.
"""

import torch

from zohw.config import EngineConfig
from zohw.sources import mix_seed, step_matrix
from zohw.strategies import base as _base
from zohw.strategies.base import (ADAPTIVE_MANT_BITS, ADAPTIVE_SCALE_FRAC, ADAPTIVE_TABLE_FRAC,
                                  GoldenFields, saturate, shift_add)

__all__ = ["cycles_per_step", "golden_stream", "golden_perturbations", "golden_pool",
           "adaptive_scale", "linear_sequence", "stream_bits", "golden_fields",
           "shift_add", "saturate", "scale_uniform", "pack"]


def cycles_per_step(config, d):
    """Transfers per step of ``d`` weights: ceil(d / P)."""
    if isinstance(d, bool) or not isinstance(d, int) or d < 1:
        raise ValueError(f"params must be a positive integer, not {d!r}")
    return -(-d // config.lanes)


# -- GF(2) sequences ---------------------------------------------------------------------------

def _matrix_tensor(matrix):
    return torch.tensor(matrix, dtype=torch.float32)


def _apply(m, bits):
    """``m @ bits`` over GF(2) on the last axis; float32 is exact for these small sums."""
    return torch.remainder(bits @ m.T, 2.0)


def _gf2_square(m):
    return torch.remainder(m @ m, 2.0)


def _int_to_bits(values, nbits):
    v = torch.tensor(values, dtype=torch.int64)
    return ((v[..., None] >> torch.arange(nbits)) & 1).to(torch.float32)


def linear_sequence(matrix, init, start, count):
    """Bits of ``M**(start + i) @ init`` for i in range(count): float32 tensor [count, n, bits].

    ``init`` is a list of n integer states; ``matrix`` a tuple-of-rows GF(2) matrix.
    """
    m = _matrix_tensor(matrix)
    nbits = m.shape[0]
    x = _int_to_bits(init, nbits)                    # [n, bits]
    power, e = m, start                              # jump ahead: M**start
    while e:
        if e & 1:
            x = _apply(power, x)
        e >>= 1
        if e:
            power = _gf2_square(power)
    seq = x[None]
    power, length = m, 1
    while length < count:                            # doubling: [0, L) -> [0, 2L)
        seq = torch.cat([seq, _apply(power, seq)])
        length *= 2
        power = _gf2_square(power)
    return seq[:count]


def pack(bits):
    """Integer value of a bit tensor along its last axis (LSB first)."""
    weights = torch.ones(bits.shape[-1], dtype=torch.int64) << torch.arange(bits.shape[-1])
    return (bits.to(torch.int64) * weights).sum(-1)


# -- arithmetic shared with the RTL ------------------------------------------------------------

def scale_uniform(raw, config, scale=None):
    """Raw U(-1, 1) words (B bits, B - 1 fraction bits) to the output format.

    ``none``: drop the guard bits (floor); ``fixed``: multiply by 1.75 ≈ √3 with shift-adds,
    then round the guard bits away (half up); ``adaptive``: multiply by the pool's scale factor
    (see :func:`adaptive_scale`), round half up, saturate.
    """
    if config.scaling != "adaptive":
        return _base.scale_uniform(raw, config.scaling)
    rounding = 1 << (ADAPTIVE_SCALE_FRAC - 1)
    return saturate((raw * scale + rounding) >> ADAPTIVE_SCALE_FRAC, config)


def adaptive_scale(config, sumsq):
    """Scale factor (``ADAPTIVE_SCALE_FRAC`` fraction bits) that brings a pool whose raw words
    have sum of squares ``sumsq`` to unit RMS: ``2**(B-3) * sqrt(N / sumsq)``.

    Hardware-friendly: normalise ``sumsq`` to an M-bit mantissa ``m`` and exponent ``sh``
    (leading-one detector and shifter); fold the exponent's parity into the mantissa so that the
    square root of the power of two is a shift; look ``1/sqrt(m)`` up in a small table; shift.
    """
    if sumsq == 0:
        return 0
    M = ADAPTIVE_MANT_BITS
    n = config.pool.bit_length() - 1
    sh = sumsq.bit_length() - M
    m = sumsq >> sh if sh >= 0 else sumsq << -sh
    p = sh - n
    if p & 1:
        m, p = 2 * m, p - 1
    a = config.frac_bits + ADAPTIVE_SCALE_FRAC - ADAPTIVE_TABLE_FRAC - p // 2
    table = config.adaptive_table[m - (1 << (M - 1))]
    a0 = config.adaptive_scale_bits
    value = (table << a0) >> max(0, a0 - a)
    return min(value, (1 << config.adaptive_scale_bits) - 1)


def golden_pool(config, seed):
    """The N scaled pool words of ``pezo-shift``/``pezo-block`` after a seed load (int64 [N]).

    Pool word k is the low B bits (signed) of the fill generator (generator 0) after ``k + 1``
    steps, scaled as :func:`scale_uniform` documents.
    """
    seq = linear_sequence(step_matrix(config.source), [mix_seed(seed, 0)], 1, config.pool)
    raw = GoldenFields(seq.reshape(config.pool, -1), config.field_layout()).signed("raw")[:, 0]
    scale = None
    if config.scaling == "adaptive":
        scale = adaptive_scale(config, int((raw * raw).sum()))
    return scale_uniform(raw, config, scale)


# -- the stream ---------------------------------------------------------------------------------

def stream_bits(config, seed, start, count):
    """The wide random word of the strategy's stream generators (indices ``stream_base`` …) at
    positions ``start … start + count - 1``: bits [count, 32·G], or None without generators.
    The word at position t is the generators' state after ``t + 1`` steps (one warm-up step)."""
    s = config.strategy_object
    n = s.stream_generators(config)
    if n == 0:
        return None
    init = [mix_seed(seed, s.stream_base + g) for g in range(n)]
    seq = linear_sequence(step_matrix(config.source), init, start + 1, count)
    return seq.reshape(count, -1)


def golden_fields(config, bits):
    """:class:`~zohw.strategies.base.GoldenFields` of the stream layout over ``bits``."""
    return GoldenFields(bits, config.strategy_object.stream_layout(config))


def golden_stream(config, seed, d, steps, first_step=0):
    """Words of every transfer of steps ``first_step … first_step + steps - 1``.

    Returns int64 [steps, C, P] with C = :func:`cycles_per_step`; a replayed step emits the
    same words again.
    """
    if not isinstance(config, EngineConfig):
        raise TypeError(f"config must be an EngineConfig, not {config!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, not {steps!r}")
    C = cycles_per_step(config, d)
    P = config.lanes
    strategy = config.strategy_object
    start, count = first_step * C, steps * C
    positions = torch.arange(start, start + count)
    reads = None
    if strategy.pool:
        words = golden_pool(config, seed).reshape(config.pool_rows, P)
        rows = strategy.golden_rows(config, seed, C, steps, first_step)            # [count, P]
        reads = words[rows, torch.arange(P)]
    fields = golden_fields(config, stream_bits(config, seed, start, count))
    return strategy.golden_words(config, fields, positions, reads).reshape(steps, C, P)


def golden_perturbations(config, seed, d, steps, first_step=0):
    """The perturbation vectors z of each step: int64 [steps, d] (padding lanes dropped)."""
    z = golden_stream(config, seed, d, steps, first_step)
    return z.reshape(steps, -1)[:, :d]
