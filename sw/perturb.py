"""Golden model of the perturbation engine: the exact word stream, in vectorized torch integers.

The engine's words are a function of the seed and of the *position* of a transfer. Generator
strategies advance every uniform generator once per transfer; the checkpoint taken at a step's
start makes a replay re-emit the step's words, so step ``s`` covers transfer positions
``s*C … s*C + C - 1`` (C = :func:`cycles_per_step`). Generators are linear over GF(2), so all
positions are computed at once with matrix powers (:func:`linear_sequence`) — no per-element loops.

Pool strategies fill a pool of N words once per seed load (:func:`golden_pool`); word k sits
in bank (lane) ``k mod P``, row ``k // P``. ``pezo-shift`` reads row ``t mod (N/P)`` of every
bank at position t. ``pezo-block`` reads, in cycle c of step s, lane j from row
``(off_j + c mod (N/P)) mod (N/P)`` of bank j, where ``off_j`` is the lane's offset in block
``c // (N/P)`` (:meth:`~zohw.config.EngineConfig.block_lane_offset` of a 16-bit LFSR draw): one
draw when a step starts and one when a block is completed, so step s uses draws
``s*D … s*D + D - 1`` with ``D = 1 + C // (N/P)``. Each ``pezo-block`` word is then XOR-negated
by a fresh sign bit (lane j: bit j of its sign generators' word at that position).
"""

import math

import torch

from zohw.config import (ADAPTIVE_MANT_BITS, ADAPTIVE_SCALE_FRAC, ADAPTIVE_TABLE_FRAC,
                         BLOCK_LFSR_INDEX, SQRT3_TERMS, UNIFORM_GUARD, EngineConfig, mix_seed)
from zohw.sources import step_matrix

__all__ = ["cycles_per_step", "golden_stream", "golden_perturbations", "golden_pool",
           "adaptive_scale", "linear_sequence", "generator_bits", "shift_add", "saturate"]


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


def _pack(bits):
    """Integer value of a bit tensor along its last axis (LSB first)."""
    weights = torch.ones(bits.shape[-1], dtype=torch.int64) << torch.arange(bits.shape[-1])
    return (bits.to(torch.int64) * weights).sum(-1)


def _to_signed(v, nbits):
    return v - ((v >> (nbits - 1)) & 1) * (1 << nbits)


def generator_bits(config, seed, start, count):
    """The wide random word of positions ``start … start + count - 1``: bits [count, 32·G].

    Generator k starts at ``mix_seed(seed, k)``; the word at position t is its state after
    ``t + 1`` steps (one warm-up step before the first word). Generator 0 is in the low bits.
    """
    init = [mix_seed(seed, k) for k in range(config.generators)]
    seq = linear_sequence(step_matrix(config.source), init, start + 1, count)
    return seq.reshape(count, -1)


def _field(bits, layout, signed):
    lsb, width, count = layout
    sub = bits[:, lsb:lsb + width * count].reshape(bits.shape[0], count, width)
    v = _pack(sub)
    return _to_signed(v, width) if signed else v


# -- arithmetic shared with the RTL ------------------------------------------------------------

def shift_add(x, terms):
    """Sum of ``sign * (x << s)`` (``s >= 0``) or ``sign * (x >> -s)`` (arithmetic)."""
    total = torch.zeros_like(x)
    for sign, s in terms:
        total = total + sign * (x << s if s >= 0 else x >> -s)
    return total


def saturate(x, config):
    return x.clamp(config.word_min, config.word_max)


def scale_uniform(raw, config, scale=None):
    """Raw U(-1, 1) words (B bits, B - 1 fraction bits) to the output format.

    ``none``: drop the guard bits (floor); ``fixed``: multiply by 1.75 ≈ √3 with shift-adds,
    then round the guard bits away (half up); ``adaptive``: multiply by the pool's scale factor
    (see :func:`adaptive_scale`), round half up, saturate.
    """
    if config.scaling == "none":
        return raw >> UNIFORM_GUARD
    if config.scaling == "fixed":
        return (shift_add(raw, SQRT3_TERMS) + (1 << (UNIFORM_GUARD - 1))) >> UNIFORM_GUARD
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
    raw = _to_signed(_pack(seq[:, 0, :config.width]), config.width)
    scale = None
    if config.scaling == "adaptive":
        scale = adaptive_scale(config, int((raw * raw).sum()))
    return scale_uniform(raw, config, scale)


# -- strategies --------------------------------------------------------------------------------

def _generator_words(config, seed, start, count):
    """Words [count, P] of a generator strategy at positions start … start + count - 1."""
    bits = generator_bits(config, seed, start, count)
    layout = config.field_layout()
    P, F = config.lanes, config.frac_bits
    s = config.strategy
    if s == "uniform":
        return scale_uniform(_field(bits, layout["raw"], True), config)
    if s == "rademacher":
        return (1 - 2 * _field(bits, layout["sign"], False)) << F
    if s == "gauss-clt":
        u = _field(bits, layout["u"], True).reshape(count, P, config.clt_k).sum(-1)
        u = u + config.clt_k // 2                    # each uniform has mean -1/2 LSB
        g = config.clt_guard
        return saturate((shift_add(u << g, config.clt_terms) + (1 << (g - 1))) >> g, config)
    if s == "gauss-icdf":
        v = _field(bits, layout["icdf"], False)
        table = torch.tensor(config.icdf_table, dtype=torch.int64)
        mag = table[v & ((1 << config.icdf_bits) - 1)]
        return torch.where((v >> config.icdf_bits) == 1, -mag, mag)
    if s == "pezo-otf":
        R = config.otf_sources
        src = scale_uniform(_field(bits, layout["raw"], True), config)          # [count, R]
        pos = torch.arange(start, start + count)[:, None]
        sel = (torch.arange(P)[None, :] + pos) % R                               # rotation
        v = torch.gather(src, 1, sel)
        flip = _field(bits, layout["sign"], False) == 1
        return torch.where(flip, -v - 1, v)                                      # XOR-negate
    raise AssertionError(s)


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
    if config.strategy in ("pezo-shift", "pezo-block"):
        rows = golden_pool(config, seed).reshape(config.pool_rows, P)
        R = config.pool_rows
        if config.strategy == "pezo-shift":
            pos = torch.arange(first_step * C, (first_step + steps) * C)
            return rows[pos % R].reshape(steps, C, P)
        D = 1 + C // R
        init = mix_seed(seed, BLOCK_LFSR_INDEX, bits=16)
        draws = linear_sequence(step_matrix("lfsr16", config.block_lfsr_steps), [init],
                                1 + first_step * D, steps * D)
        state = _pack(draws[:, 0, :]).reshape(steps, D)
        lanes = torch.arange(P)
        off = config.block_lane_offset(state[..., None], lanes)                  # [steps, D, P]
        c = torch.arange(C)
        row = (off[:, c // R, :] + (c % R)[:, None]) % R                         # [steps, C, P]
        words = rows[row, lanes]
        init = [mix_seed(seed, 1 + g) for g in range(config.sign_generators)]
        signs = linear_sequence(step_matrix(config.source), init, 1 + first_step * C, steps * C)
        flip = signs.reshape(steps, C, -1)[..., :P] == 1
        return torch.where(flip, -words - 1, words)                              # XOR-negate
    words = _generator_words(config, seed, first_step * C, steps * C)
    return words.reshape(steps, C, P)


def golden_perturbations(config, seed, d, steps, first_step=0):
    """The perturbation vectors z of each step: int64 [steps, d] (padding lanes dropped)."""
    z = golden_stream(config, seed, d, steps, first_step)
    return z.reshape(steps, -1)[:, :d]
