"""The uniform sources against their textbook definitions, and the LFSR's period."""

import pytest

from zohw.sources import LFSR16_TAPS, LFSR32_TAPS, mix_seed
from zohw.sources import galois_step, lfsr32_step, matrix_rows, step_matrix, xorshift32_step

ORDER32 = (1 << 32) - 1
PRIME_FACTORS32 = (3, 5, 17, 257, 65537)


def test_xorshift32_matches_marsaglia():
    # Marsaglia, "Xorshift RNGs" (2003): y = 2463534242 gives 723471715 first.
    assert xorshift32_step(2463534242) == 723471715


def _columns(step, bits):
    return [step(1 << j) for j in range(bits)]


def _compose(a, b, bits):
    """Columns of A∘B over GF(2)."""
    def apply(cols, v):
        r, j = 0, 0
        while v:
            if v & 1:
                r ^= cols[j]
            v >>= 1
            j += 1
        return r
    return [apply(a, b[j]) for j in range(bits)]


def _power(cols, e, bits):
    result = [1 << j for j in range(bits)]
    while e:
        if e & 1:
            result = _compose(result, cols, bits)
        cols = _compose(cols, cols, bits)
        e >>= 1
    return result


@pytest.mark.parametrize("taps, bits, factors", [
    (LFSR32_TAPS, 32, PRIME_FACTORS32),
    (LFSR16_TAPS, 16, (3, 5, 17, 257)),
])
def test_galois_lfsr_has_maximal_period(taps, bits, factors):
    one = _columns(lambda x: galois_step(x, taps), bits)
    identity = [1 << j for j in range(bits)]
    order = (1 << bits) - 1
    assert _power(one, order, bits) == identity
    for q in factors:
        assert _power(one, order // q, bits) != identity


def test_a_non_maximal_mask_is_rejected_by_the_period_check():
    # The check above must be able to fail: a mask with an even number of taps is reducible.
    one = _columns(lambda x: galois_step(x, 0x8000_0003), 32)
    identity = [1 << j for j in range(32)]
    periodic = _power(one, ORDER32, 32) == identity
    assert not periodic or any(_power(one, ORDER32 // q, 32) == identity for q in PRIME_FACTORS32)


def test_lfsr32_cycle_is_32_galois_shifts():
    x = 0x1234_5678
    y = x
    for _ in range(32):
        y = (y >> 1) ^ LFSR32_TAPS if y & 1 else y >> 1
    assert lfsr32_step(x) == y


@pytest.mark.parametrize("source", ["lfsr32", "xorshift32"])
def test_step_matrix_reproduces_step(source):
    rows = matrix_rows(step_matrix(source))
    step = lfsr32_step if source == "lfsr32" else xorshift32_step
    for x in (1, 0xDEAD_BEEF, 0x8000_0001, 0x7FFF_FFFF):
        bits = [(x >> j) & 1 for j in range(32)]
        y = sum((sum(bits[j] for j in js) & 1) << i for i, js in enumerate(rows))
        assert y == step(x)


def test_seed_mixing_never_gives_zero_state():
    for k in range(8):
        # the seed that would cancel the constant is mapped to the constant itself
        cancel = mix_seed(0, k) if mix_seed(0, k) != 0 else 1
        assert mix_seed(cancel, k) != 0
        assert all(mix_seed(s, k) != 0 for s in range(64))
    assert mix_seed(0, 3, bits=16) != 0
    assert len({mix_seed(1, k) for k in range(64)}) == 64
