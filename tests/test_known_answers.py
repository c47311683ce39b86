"""Known-answer tests: values published independently of this project (MurmurHash3's test
vectors, Marsaglia's xorshift32 sequence, the textbook Galois LFSR step, Gaussian quantiles) and
hand-worked values of the documented definitions.

These catch the faults a cross-check cannot: a constant that the RTL and the golden model both
import (fmix32's shifts and multipliers, the xorshift triple, a table) changes both sides the
same way, so only an answer from outside the code can refute it (docs/verification.md,
"Mutation testing").
"""

import math
import statistics
from pathlib import Path

import pytest

from zohw.sources import (LFSR16_TAPS, fmix32, galois_step, lfsr16_draw, mix_constant, mix_seed,
                          step_matrix, xorshift32_step)

MASK = 0xFFFF_FFFF


def _rotl(x, r):
    return ((x << r) | (x >> (32 - r))) & MASK


def murmur3_32(data, seed):
    """MurmurHash3_x86_32 (Appleby, SMHasher) with this project's fmix32 as its finaliser."""
    c1, c2 = 0xCC9E_2D51, 0x1B87_3593
    h, n = seed, len(data)
    for i in range(0, n - n % 4, 4):
        k = (int.from_bytes(data[i:i + 4], "little") * c1) & MASK
        h ^= (_rotl(k, 15) * c2) & MASK
        h = (_rotl(h, 13) * 5 + 0xE654_6B64) & MASK
    if n % 4:
        k = (int.from_bytes(data[n - n % 4:], "little") * c1) & MASK
        h ^= (_rotl(k, 15) * c2) & MASK
    return fmix32(h ^ n)


# The widely published MurmurHash3_x86_32 test vectors (data, seed, hash).
MURMUR3_VECTORS = [
    (b"", 0, 0), (b"", 1, 0x514E_28B7), (b"", 0xFFFF_FFFF, 0x81F1_6F39),
    (b"\0\0\0\0", 0, 0x2362_F9DE), (b"\0\0\0", 0, 0x85F0_B427), (b"\0\0", 0, 0x30F4_C306),
    (b"\0", 0, 0x514E_28B7), (b"\xff\xff\xff\xff", 0, 0x7629_3B50),
    (b"!Ce\x87", 0, 0xF55B_516B), (b"!Ce\x87", 0x5082_EDEE, 0x2362_F9DE),
    (b"aaaa", 0x9747_B28C, 0x5A97_808A), (b"Hello, world!", 0x9747_B28C, 0x2488_4CBA),
    (b"The quick brown fox jumps over the lazy dog", 0x9747_B28C, 0x2FA8_26CD),
]


@pytest.mark.parametrize("data, seed, expected", MURMUR3_VECTORS)
def test_fmix32_finishes_murmur3_vectors(data, seed, expected):
    assert murmur3_32(data, seed) == expected


def test_seed_mixing_is_seed_xor_fmix32_of_k_plus_1():
    # README / docs/strategies.md: generator k starts from seed XOR fmix32(k + 1); for the empty
    # message MurmurHash3(seed') = fmix32(seed'), so the constants are published vectors:
    assert mix_constant(0) == 0x514E_28B7                 # fmix32(1) = murmur3("", 1)
    assert mix_constant(0xFFFF_FFFE) == 0x81F1_6F39       # fmix32(2**32 - 1)
    assert mix_seed(0, 0) == 0x514E_28B7
    assert mix_seed(0x514E_28B7, 0) == 0x514E_28B7        # the cancelling seed: the constant
    assert mix_seed(0xFFFF_FFFF, 0) == 0x514E_28B7 ^ 0xFFFF_FFFF
    # narrower generators: the 32-bit seed folded by XOR of its chunks, then the low bits of
    # the constant (0x28B7 for k = 0)
    assert mix_constant(0, bits=16) == 0x28B7
    assert mix_seed(0x0001_0002, 0, bits=16) == 0x28B7 ^ 0x0003
    assert mix_seed(0x28B7_0000, 0, bits=16) == 0x28B7    # folds to the constant: not zero
    assert fmix32(0) == 0


def test_xorshift32_follows_marsaglias_sequence():
    # Marsaglia, "Xorshift RNGs" (2003), xor32 with (13, 17, 5) from y = 2463534242
    expected = [723471715, 2497366906, 2064144800, 2008045182, 3532304609, 374114282,
                1350636274, 691148861, 746858951, 2653896249]
    x, got = 2463534242, []
    for _ in expected:
        x = xorshift32_step(x)
        got.append(x)
    assert got == expected
    assert xorshift32_step(0) == 0 and xorshift32_step(1 << 32) == 0   # 32-bit state


def test_galois_lfsr16_textbook_step():
    # The textbook 16-bit Galois LFSR (x^16 + x^14 + x^13 + x^11 + 1, mask 0xB400) from 0xACE1:
    # shift right, XOR the mask when the bit shifted out was 1.
    assert LFSR16_TAPS == 0xB400
    assert galois_step(0xACE1, 0xB400) == 0xE270
    assert [lfsr16_draw(0xACE1, n) for n in (1, 2, 3)] == [0xE270, 0x7138, 0x389C]
    assert lfsr16_draw(0x1_ACE1, 1) == 0xE270             # a 16-bit state


@pytest.mark.parametrize("source, bits", [("lfsr32", 32), ("xorshift32", 32)])
def test_step_matrices_are_square_over_the_state(source, bits):
    m = step_matrix(source)
    assert len(m) == bits and all(len(row) == bits for row in m)
    m16 = step_matrix("lfsr16", 3)
    assert len(m16) == 16 and all(len(row) == 16 for row in m16)


def test_gauss_icdf_table_from_published_quantiles():
    """gauss-icdf's half table at 2 index bits from the standard normal table: the midpoint
    quantiles Φ⁻¹(0.5625) = 0.15731, Φ⁻¹(0.6875) = 0.48878, Φ⁻¹(0.8125) = 0.88715,
    Φ⁻¹(0.9375) = 1.53412, rescaled to unit variance in units of 2**-F and rounded."""
    from zohw.config import EngineConfig
    from zohw.strategies import REGISTRY
    q = (0.15731, 0.48878, 0.88715, 1.53412)
    rms = math.sqrt(sum(v * v for v in q) / len(q))
    for width in (6, 8, 10):
        cfg = EngineConfig(strategy="gauss-icdf", width=width, icdf_bits=2)
        expected = tuple(min(cfg.word_max, round(v / rms * 2 ** (width - 3))) for v in q)
        assert REGISTRY["gauss-icdf"].table(cfg) == expected
    assert expected == (22, 68, 123, 213)               # width 10: 2**7 / rms 0.92253
    # the quantiles themselves (statistics.NormalDist is what the table uses)
    assert statistics.NormalDist().inv_cdf(0.9375) == pytest.approx(1.53412, abs=1e-5)


def test_clt_normalisation_constants_approximate_sqrt_3_over_k():
    # gauss-clt multiplies the sum of K uniforms by √(3/K) written as shift-add terms; the
    # documented values: 1.21875 (K = 2), 0.875 (4), 0.609375 (8), 0.5 (12, exact)
    from zohw.strategies.gauss_clt import CLT_K, CLT_TERMS
    documented = {2: 1.21875, 4: 0.875, 8: 0.609375, 12: 0.5}
    assert set(CLT_K) == set(documented)
    for k in CLT_K:
        value = sum(sign * 2.0 ** s for sign, s in CLT_TERMS[k])
        assert value == documented[k]
        assert abs(value - math.sqrt(3 / k)) < 0.01 * math.sqrt(3 / k) + 0.001


@pytest.mark.parametrize("raw, fixed, none", [
    # fixed: 1.75·raw / 4 rounded half up (raw a multiple of 4: the shift-add is exact;
    # -3.5 rounds up to -3);
    # none: raw / 4 floored
    (100, 44, 25), (-100, -44, -25), (4, 2, 1), (-4, -2, -1), (12, 5, 3), (-12, -5, -3),
    (0, 0, 0), (8, 4, 2), (-8, -3, -2), (7, None, 1), (-7, None, -2), (127, None, 31),
    (-128, -56, -32)])
def test_uniform_scaling_by_hand(raw, fixed, none):
    import torch

    from zohw.strategies.base import scale_uniform
    t = torch.tensor([raw])
    assert int(scale_uniform(t, "none")) == none
    if fixed is not None:
        assert int(scale_uniform(t, "fixed")) == fixed


# -- edge cases ----------------------------------------------------------------------------------

def test_cycles_per_step_edges():
    from zohw.config import EngineConfig
    from zohw.sw.perturb import cycles_per_step
    cfg = EngineConfig(strategy="uniform", lanes=16)
    assert [cycles_per_step(cfg, d) for d in (1, 15, 16, 17, 32, 33)] == [1, 1, 1, 2, 2, 3]
    for bad in (0, -1, True, False, 2.0, "4"):
        with pytest.raises(ValueError, match="params must be a positive integer"):
            cycles_per_step(cfg, bad)


def test_moment_tolerances_are_inclusive_bounds():
    from zohw.strategies.base import Moments
    m = Moments(0.02, (0.97, 1.03), (2.75, 3.10))
    assert m.failures(0.0, 1.0, 3.0) == []
    assert m.failures(0.02, 0.97, 2.75) == [] and m.failures(-0.02, 1.03, 3.10) == []
    assert [f.split()[0] for f in m.failures(0.03, 0.96, 3.2)] == ["mean", "std", "kurtosis"]
    assert [f.split()[0] for f in m.failures(-0.03, 1.04, 2.7)] == ["mean", "std", "kurtosis"]


@pytest.mark.parametrize("bits", [32, 16])
def test_hardware_seed_mixing_known_answers(bits):
    """zohw.hw.generators.mixed_seed in Amaranth's simulator: seed XOR fmix32(k + 1) (low
    ``bits`` of the constant, the seed folded to ``bits``), a zero result replaced by the
    constant — including the seeds that cancel the constant and that give 1."""
    from amaranth import Module, Signal
    from amaranth.sim import Simulator

    from zohw.hw.generators import mixed_seed
    c = 0x514E_28B7 & ((1 << bits) - 1)              # fmix32(1) = murmur3("", 1), k = 0
    seeds = {0: c, c: c, c ^ 1: 1, 0xFFFF_FFFF: None, 0x1234_5678: None}
    m = Module()
    seed, out = Signal(32), Signal(bits)
    m.d.comb += out.eq(mixed_seed(seed, 0, bits) if bits != 32 else mixed_seed(seed, 0))
    got = {}

    async def bench(ctx):
        for s in seeds:
            ctx.set(seed, s)
            got[s] = ctx.get(out)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    for s, want in seeds.items():
        folded = 0
        for i in range(0, 32, bits):
            folded ^= (s >> i) & ((1 << bits) - 1)
        assert got[s] == (want if want is not None else folded ^ c), hex(s)
        assert got[s] == mix_seed(s, 0, bits)


# -- strategy definitions (docs/strategies.md) ---------------------------------------------------

def _documented_strategies():
    """The first column of docs/strategies.md's strategy table, in its order."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "strategies.md").read_text()
    start = text.index("| strategy | bits per cycle |")
    rows = text[start:].split("\n\n")[0].splitlines()[2:]
    return tuple(r.split("|")[1].strip().strip("`") for r in rows)


def test_strategies_are_listed_in_the_documented_order():
    from zohw.strategies import STRATEGIES
    assert STRATEGIES == _documented_strategies()


def test_documented_knob_defaults_and_bounds():
    from zohw.config import EngineConfig
    from zohw.errors import ConfigError
    from zohw.strategies.gauss_clt import GaussCLT
    # pezo-otf: R defaults to max(1, P/8) and is at most P - 1
    assert [EngineConfig(strategy="pezo-otf", lanes=p).otf_sources for p in (2, 8, 16, 64)] \
        == [1, 1, 2, 8]
    assert EngineConfig(strategy="pezo-otf", lanes=8, otf_sources=7).otf_sources == 7
    with pytest.raises(ConfigError, match="otf_sources"):
        EngineConfig(strategy="pezo-otf", lanes=8, otf_sources=8)
    # gauss-icdf: I = min(B - 1, 8)
    assert [EngineConfig(strategy="gauss-icdf", width=b).icdf_bits for b in (4, 8, 9, 12)] \
        == [3, 7, 8, 8]
    # gauss-clt: kurtosis of a sum of K uniforms 3 - 6/(5K) (K = 4 has its own measured band)
    for k in (2, 8, 12):
        lo, hi = GaussCLT().moments(EngineConfig(strategy="gauss-clt", clt_k=k)).kurtosis
        assert (lo + hi) / 2 == pytest.approx(3 - 6 / (5 * k))


def test_sparse_uniform_scales_are_the_documented_values():
    # sparse, nonzero=uniform: U(-1, 1)·√(3D) as shift-adds: √6 and √12 to 0.2 %, 5.328125 for
    # D = 8 (saturating, below √24)
    from zohw.strategies.sparse import DENSITIES, UNIFORM_SCALE
    documented = {2: 2.453125, 4: 3.46875, 8: 5.328125}
    assert set(DENSITIES) == set(documented)
    for d in DENSITIES:
        assert sum(sign * 2.0 ** s for sign, s in UNIFORM_SCALE[d]) == documented[d]
    for d in (2, 4):
        assert documented[d] == pytest.approx(math.sqrt(3 * d), rel=2e-3)


@pytest.mark.parametrize("seed, lanes, pool", [(0, 4, 64), (12345, 8, 256), (0xFFFF_FFFF, 2, 16)])
def test_pezo_block_rows_from_their_definition(seed, lanes, pool):
    """pezo-block's read rows of step 0, rendered from its docstring: the 16-bit block LFSR
    (mask 0xB400, 16 shifts per draw) starts at seed XOR fmix32(1000 + 1) (folded to 16 bits;
    fmix32 checked against MurmurHash3 above), takes a warm-up draw, then one draw per block of
    N/P cycles; lane j reads row (rotr16(s, j) + rotr16(s, j + 5) + c) mod (N/P)."""
    from zohw.config import EngineConfig
    from zohw.strategies import REGISTRY
    cfg = EngineConfig(strategy="pezo-block", lanes=lanes, pool=pool)
    R = pool // lanes
    C = 2 * R + 3                                  # three blocks, the last one partial
    s = ((seed & 0xFFFF) ^ (seed >> 16)) ^ (murmur3_32(b"", 1001) & 0xFFFF)
    s = s or (murmur3_32(b"", 1001) & 0xFFFF)
    draws = []
    for _ in range(1 + C // R):
        for _ in range(16):
            s = (s >> 1) ^ 0xB400 if s & 1 else s >> 1
        draws.append(s)

    def rotr(x, r):
        return ((x >> r) | (x << (16 - r))) & 0xFFFF

    expected = [[(rotr(draws[c // R], j % 16) + rotr(draws[c // R], (j + 5) % 16) + c) % R
                 for j in range(lanes)] for c in range(C)]
    got = REGISTRY["pezo-block"].golden_rows(cfg, seed, C, 1, 0)
    assert got.tolist() == expected


def _wide_words(source, seed, gens, cycles):
    """The generators' concatenated states per cycle, from docs/strategies.md: generator k
    starts at seed XOR fmix32(k + 1), takes one warm-up step, then one step per cycle (the
    steps written out here: Marsaglia's triple, or 32 shifts of the documented Galois mask)."""
    def step(x):
        if source == "xorshift32":
            x ^= (x << 13) & MASK
            x ^= x >> 17
            return x ^ ((x << 5) & MASK)
        for _ in range(32):
            x = (x >> 1) ^ 0x9004_8000 if x & 1 else x >> 1
        return x
    states = [step((seed ^ murmur3_32(b"", k + 1)) or murmur3_32(b"", k + 1))
              for k in range(gens)]
    out = []
    for _ in range(cycles):
        out.append(sum(s << (32 * k) for k, s in enumerate(states)))
        states = [step(s) for s in states]
    return out


@pytest.mark.parametrize("strategy, lanes, width, source", [
    ("uniform", 4, 8, "xorshift32"), ("uniform", 8, 6, "xorshift32"), ("uniform", 4, 8, "lfsr32"),
    ("rademacher", 8, 8, "xorshift32"), ("rademacher", 4, 10, "lfsr32")])
def test_generator_streams_from_their_definition(strategy, lanes, width, source):
    """uniform (scaling none): lane j's word is bits [jB, (j+1)B) of the wide word, signed,
    floored to B - 3 fraction bits; rademacher: ±2**(B-3), minus where bit j is set."""
    from zohw.config import EngineConfig
    from zohw.sw.perturb import golden_stream
    cfg = EngineConfig(strategy=strategy, lanes=lanes, width=width, source=source,
                       scaling="none")
    seed, cycles = 0xC0FFEE, 5
    bits = lanes * (width if strategy == "uniform" else 1)
    expected = []
    for wide in _wide_words(source, seed, -(-bits // 32), cycles):
        row = []
        for j in range(lanes):
            if strategy == "uniform":
                r = (wide >> (width * j)) & ((1 << width) - 1)
                row.append((r - (1 << width) if r >> (width - 1) else r) >> 2)
            else:
                row.append(-(1 << (width - 3)) if (wide >> j) & 1 else 1 << (width - 3))
        expected.append(row)
    got = golden_stream(cfg, seed, cycles * lanes, 1)
    assert got[0].tolist() == expected


# -- the engine's interface (docs/engine-contract.md) ----------------------------------------------

def test_engine_ports_are_the_documented_ones():
    from amaranth import Shape

    from zohw.config import EngineConfig
    from zohw.hw.engine import PerturbationEngine
    text = (Path(__file__).resolve().parent.parent / "docs" / "engine-contract.md").read_text()
    table = text[text.index("| port | dir | width | meaning |"):].split("\n\n")[0]
    rows = [[c.strip().strip("`") for c in r.split("|")[1:4]] for r in table.splitlines()[2:]]
    engine = PerturbationEngine(EngineConfig(strategy="uniform", lanes=4, width=8))
    engine._MustUse__silence = True          # only its signature is read (no elaboration)
    members = engine.signature.members
    assert [r[0] for r in rows] == list(members)
    for name, direction, width in rows:
        assert str(members[name].flow) == direction, name
        if width.isdigit():
            assert Shape.cast(members[name].shape).width == int(width), name


def test_engine_latency_is_measured_back_to_back():
    """``latency`` (0: words back to back) against the Amaranth simulation: after the load, with
    ready high, a word is valid in every cycle."""
    from amaranth_tb import pulse, simulate

    from zohw.config import EngineConfig
    from zohw.hw.engine import PerturbationEngine
    dut = PerturbationEngine(EngineConfig(strategy="uniform", lanes=2, width=8))
    valid = []

    async def bench(ctx):
        ctx.set(dut.seed, 5)
        await pulse(ctx, dut.load)
        while ctx.get(dut.busy):
            await ctx.tick()
        ctx.set(dut.z.ready, 1)
        for _ in range(6):
            valid.append(ctx.get(dut.z.valid))
            await ctx.tick()

    simulate(dut, bench)
    gaps = valid.count(0)
    assert dut.latency == gaps == 0, valid


def test_step_counter_rejects_non_positive_moduli():
    from zohw.hw.counter import StepCounter
    for modulus in (1, 7):
        counter = StepCounter(modulus)
        counter._MustUse__silence = True     # not elaborated
        assert counter.modulus == modulus
    import gc
    import warnings

    from amaranth.hdl import UnusedElaboratable
    with warnings.catch_warnings():     # the rejected objects exist (half made) and are dropped
        warnings.simplefilter("ignore", UnusedElaboratable)
        for bad in (0, -3, True, False, 2.0):
            with pytest.raises(ValueError, match="modulus must be a positive integer"):
                StepCounter(bad)
        gc.collect()
