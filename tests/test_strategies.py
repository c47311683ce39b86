"""Every strategy of the registry in Amaranth's simulator: its hardware word map against its
golden word map, and the whole engine against the golden stream (a few hundred words, with
replays and advances). Each check is shown to fail on a deliberately wrong golden."""

import random

import pytest
import torch

from amaranth_tb import mismatches, pulse, simulate, stream_get
from zohw.config import EngineConfig
from zohw.hw.engine import PerturbationEngine
from zohw.hw.wordmap import WordMap
from zohw.strategies import REGISTRY, STRATEGIES, combinations
from zohw.strategies.base import GoldenFields
from zohw.sw.perturb import cycles_per_step, golden_stream

SHAPE = dict(lanes=4, width=8, pool=16)
COMBOS = combinations()


def config_for(strategy, scaling, **extra):
    return EngineConfig(strategy=strategy, scaling=scaling, **{**SHAPE, **extra})


def _ids(combos):
    return [f"{s}-{sc}" for s, sc in combos]


# -- the word map on its own -------------------------------------------------------------------

# (event, ...) script: "t" a transfer, "r" a replay, "a" an advance. Positions follow the step
# protocol: a replay returns to the step's first position.
SCRIPT = ["t"] * 60 + ["r"] + ["t"] * 60 + ["a"] + ["t"] * 70 + ["r"] + ["t"] * 70 + ["a"] + \
    ["t"] * 60


def run_wordmap(config, seed=1):
    """Drive a WordMap with random wide words (and random pool reads) through SCRIPT; returns
    (words [n, P], bits [n, nbits], reads [n, P] or None, positions [n]) of every transfer."""
    s = config.strategy_object
    rng = random.Random(seed)
    dut = WordMap(config)
    nbits = len(dut.bits) if hasattr(dut, "bits") else 0
    P, B = config.lanes, config.width
    rows = []

    async def testbench(ctx):
        await pulse(ctx, dut.ctl.load)
        await pulse(ctx, dut.ctl.init)
        pos = start = 0
        for event in SCRIPT:
            if event == "t":
                bits = rng.getrandbits(nbits) if nbits else 0
                reads = [rng.randrange(-(1 << (B - 1)), 1 << (B - 1)) for _ in range(P)]
                if nbits:
                    ctx.set(dut.bits, bits)
                if s.pool:
                    for j in range(P):
                        ctx.set(dut.reads[j], reads[j])
                words = [ctx.get(dut.words[j]) for j in range(P)]
                rows.append((words, bits, reads, pos))
                await pulse(ctx, dut.ctl.transfer)
                pos += 1
            elif event == "r":
                await pulse(ctx, dut.ctl.replay)
                pos = start
            else:
                await pulse(ctx, dut.ctl.advance)
                start = pos

    simulate(dut, testbench)
    words = torch.tensor([r[0] for r in rows])
    bits = torch.tensor([[(r[1] >> i) & 1 for i in range(nbits)] for r in rows],
                        dtype=torch.float32)
    reads = torch.tensor([r[2] for r in rows]) if s.pool else None
    positions = torch.tensor([r[3] for r in rows])
    return words, bits, reads, positions


def golden_wordmap(config, bits, reads, positions):
    s = config.strategy_object
    return s.golden_words(config, GoldenFields(bits, s.stream_layout(config)), positions, reads)


@pytest.mark.parametrize("strategy, scaling", COMBOS, ids=_ids(COMBOS))
def test_hardware_word_map_matches_golden_word_map(strategy, scaling):
    config = config_for(strategy, scaling)
    words, bits, reads, positions = run_wordmap(config)
    assert len(words) == SCRIPT.count("t") >= 300
    assert positions.unique().numel() < len(positions)            # replays revisit positions
    expected = golden_wordmap(config, bits, reads, positions)
    assert not mismatches(words[:, None, :], expected[:, None, :])


def test_word_map_check_can_fail():
    """A golden word map applied to other random bits (a wrong golden) is reported with the
    transfer, lane and index of each differing word."""
    config = config_for("uniform", "fixed")
    words, bits, reads, positions = run_wordmap(config)
    wrong = golden_wordmap(config, bits.roll(1, 0), reads, positions)
    reports = mismatches(words[:, None, :], wrong[:, None, :])
    assert reports
    for r in reports:
        assert set(r) == {"step", "cycle", "lane", "index", "expected", "got"}
        assert r["expected"] == wrong[r["step"], r["lane"]] != r["got"]


# -- the whole engine --------------------------------------------------------------------------

def run_engine(config, seed, d, steps, replays=1, engine=None):
    """Words the engine emits: int64 [steps, 1 + replays, C, P] (every pass of every step)."""
    dut = engine or PerturbationEngine(config)
    C, P = cycles_per_step(config, d), config.lanes
    out = torch.zeros(steps, 1 + replays, C, P, dtype=torch.int64)

    async def testbench(ctx):
        ctx.set(dut.seed, seed)
        await pulse(ctx, dut.load)
        await ctx.tick().until(~dut.busy)
        for s in range(steps):
            for p in range(1 + replays):
                if p:
                    await pulse(ctx, dut.replay)
                for c in range(C):
                    payload = await stream_get(ctx, dut.z)
                    for j in range(P):
                        out[s, p, c, j] = payload[j]
            await pulse(ctx, dut.advance)

    simulate(dut, testbench)
    return out


def golden_passes(config, seed, d, steps, replays=1):
    g = golden_stream(config, seed, d, steps)
    return g[:, None].expand(-1, 1 + replays, -1, -1)


@pytest.mark.parametrize("strategy, scaling", COMBOS, ids=_ids(COMBOS))
def test_engine_matches_golden_stream(strategy, scaling):
    config = config_for(strategy, scaling)
    d, steps = 30, 4                                 # C = 8: a padded last transfer
    got = run_engine(config, 0xBEEF, d, steps)
    assert got.numel() >= 256
    assert not mismatches(got, golden_passes(config, 0xBEEF, d, steps))


@pytest.mark.parametrize("pool_read", ["comb", "sync"])
@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if REGISTRY[s].pool])
def test_pool_engines_match_with_both_read_ports(strategy, pool_read):
    config = config_for(strategy, None, pool_read=pool_read, source="lfsr32")
    d, steps = 40, 3                                 # C = 10 > N/P: blocks wrap inside a step
    assert not mismatches(run_engine(config, 7, d, steps), golden_passes(config, 7, d, steps))


def test_engine_check_can_fail():
    """The engine against the golden of another seed: every mismatch is reported with its
    step, pass, cycle, lane and index, and the words are the two models' words."""
    config = config_for("gauss-clt", "none")
    got = run_engine(config, 5, 12, 2)
    wrong = golden_passes(config, 6, 12, 2)
    reports = mismatches(got, wrong)
    assert len(reports) == 8
    for r in reports:
        assert set(r) == {"step", "pass", "cycle", "lane", "index", "expected", "got"}
        assert r["index"] == r["cycle"] * 4 + r["lane"]
        assert r["expected"] == wrong[r["step"], r["pass"], r["cycle"], r["lane"]]
        assert r["got"] == golden_stream(config, 5, 12, 2)[r["step"], r["cycle"], r["lane"]]
