"""Statistics of every strategy's golden stream, and the structure of PeZO reuse."""

import pytest
import torch

from zohw.config import STRATEGIES, EngineConfig
from zohw.strategies import REGISTRY, combinations
from zohw.strategies.base import Moments
from zohw.strategies.pezo_block import lane_offset
from zohw.sw.perturb import (adaptive_scale, cycles_per_step, golden_perturbations, golden_pool,
                             golden_stream)

SAMPLES_D, SAMPLES_STEPS = 1024, 64          # 65 536 samples per strategy

# Every (strategy, scaling) whose expected moments its strategy module documents (in units of
# the target std; pool strategies reuse N = 256 words, so their mean is the pool's sample mean).
DOCUMENTED = [(s, sc) for s, sc in combinations()
              if REGISTRY[s].moments(EngineConfig(strategy=s, scaling=sc)) is not None]


def moments(config, seed=1):
    z = golden_stream(config, seed, SAMPLES_D, SAMPLES_STEPS).double() * config.lsb
    mean, std = z.mean().item(), z.std().item()
    kurt = (((z - mean) / std) ** 4).mean().item()
    return z.numel(), mean, std, kurt


@pytest.mark.parametrize("strategy, scaling", DOCUMENTED)
@pytest.mark.parametrize("source", ["xorshift32", "lfsr32"])
def test_moments_within_documented_tolerances(strategy, scaling, source):
    config = EngineConfig(strategy=strategy, scaling=scaling, source=source)
    n, mean, std, kurt = moments(config)
    expected = REGISTRY[strategy].moments(config)
    assert n >= 65536
    assert not expected.failures(mean, std, kurt)


def test_every_strategy_documents_its_default_moments():
    """A new strategy cannot be left out of the statistics: its default configuration (default
    scaling) must declare expected moments."""
    for name, strategy in REGISTRY.items():
        assert isinstance(strategy.moments(EngineConfig(strategy=name)), Moments), name
    assert {s for s, _ in DOCUMENTED} == set(STRATEGIES)


def test_moment_check_can_fail():
    """The tolerance check reports what is off: a rademacher stream judged by uniform's
    moments (std 1 against 0.55–0.60; kurtosis 1 against 1.7–1.9)."""
    _, mean, std, kurt = moments(EngineConfig(strategy="rademacher"))
    wrong = REGISTRY["uniform"].moments(EngineConfig(strategy="uniform", scaling="none"))
    failures = wrong.failures(mean, std, kurt)
    assert len(failures) == 2
    assert failures[0].startswith("std") and failures[1].startswith("kurtosis")
    assert Moments(0.01, (0, 9), (0, 9), mean=0.5).failures(0.0, 1.0, 1.0)[0].startswith("mean")


@pytest.mark.parametrize("k, kurt", [(2, 2.4), (8, 2.85), (12, 2.9)])
def test_clt_kurtosis_approaches_gaussian_with_k(k, kurt):
    _, mean, std, measured = moments(EngineConfig(strategy="gauss-clt", clt_k=k))
    assert abs(mean) < 0.03 and 0.95 < std < 1.05
    assert abs(measured - kurt) < 0.12


def test_pezo_shift_is_pool_periodic_and_block_is_not():
    d, steps = 1024, 32
    shift = EngineConfig(strategy="pezo-shift", pool=256)
    z = golden_perturbations(shift, 5, d, steps)
    # weights i and i + N receive the same perturbation at every step
    assert torch.equal(z[:, :d - 256], z[:, 256:])
    # the leftover carries: step s starts at offset (s * d) mod N in the pool
    pool = golden_pool(shift, 5)
    assert torch.equal(z[1, :256], pool.roll(-(d % 256)))

    block = EngineConfig(strategy="pezo-block", pool=256)
    zb = golden_perturbations(block, 5, d, steps)
    same = (zb[:, :d - 256] == zb[:, 256:]).double().mean().item()
    assert same < 0.2, f"{same:.2f} of the pairs (i, i + N) are equal"
    # every word is a pool word, or its XOR-negation (-v - 1) under a fresh sign bit
    pool = golden_pool(block, 5)
    assert bool((torch.isin(zb, pool) | torch.isin(-zb - 1, pool)).all())


def test_replay_positions_are_step_aligned():
    config = EngineConfig(strategy="uniform", lanes=4)
    whole = golden_stream(config, 3, 10, 6)
    part = golden_stream(config, 3, 10, 3, first_step=3)
    assert torch.equal(whole[3:], part)
    assert whole.shape == (6, cycles_per_step(config, 10), 4)


def test_pezo_block_chunks_agree():
    config = EngineConfig(strategy="pezo-block", lanes=4, pool=16)
    whole = golden_stream(config, 9, 30, 8)
    assert torch.equal(whole[5:], golden_stream(config, 9, 30, 3, first_step=5))


def test_seed_changes_every_stream():
    for strategy in STRATEGIES:
        config = EngineConfig(strategy=strategy)
        assert not torch.equal(golden_stream(config, 1, 256, 2), golden_stream(config, 2, 256, 2))


def test_adaptive_scale_matches_float_within_table_precision():
    config = EngineConfig(strategy="pezo-block", pool=256)
    for sumsq in (10_000, 1_398_101, 3_000_000, 123_456_789):
        exact = 2 ** config.frac_bits * (256 / sumsq) ** 0.5 * 2 ** 10
        assert abs(adaptive_scale(config, sumsq) - exact) / exact < 0.02
    assert adaptive_scale(config, 0) == 0


def test_reuse_rank_shift_confined_block_and_otf_span():
    """pezo-shift's perturbations span only N/P directions (its N-periodic z is one of N/P
    rotations); pezo-block's per-lane offsets and fresh signs span every direction."""
    d, steps = 650, 1200
    shift = golden_perturbations(EngineConfig(strategy="pezo-shift"), 1, d, steps).double()
    assert torch.linalg.matrix_rank(shift).item() == 256 // 16
    block = golden_perturbations(EngineConfig(strategy="pezo-block"), 1, d, steps).double()
    assert torch.linalg.matrix_rank(block).item() == d
    otf = golden_perturbations(EngineConfig(strategy="pezo-otf"), 1, d, steps).double()
    assert torch.linalg.matrix_rank(otf).item() == d


def test_block_lane_offsets_are_rich_enough():
    """The lane offsets of one draw, as indicator functions of the LFSR state, have full rank
    1 + P (R - 1); a single window of the state per lane would reach only about half."""
    config = EngineConfig(strategy="pezo-block", lanes=16, pool=256)
    states = torch.arange(1, 1 << 16)
    R = config.pool_rows
    onehots = [torch.nn.functional.one_hot(lane_offset(config, states, j), R)
               for j in range(16)]
    m = torch.cat(onehots, 1).double()
    assert torch.linalg.matrix_rank(m).item() == 1 + 16 * (R - 1)
    window = [torch.nn.functional.one_hot(((states >> j) | (states << (16 - j))) & (R - 1), R)
              for j in range(16)]
    assert torch.linalg.matrix_rank(torch.cat(window, 1).double()).item() < 1 + 16 * (R - 1)
