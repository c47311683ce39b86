"""Unit tests of the engine's components in Amaranth's simulator: the checkpointed generator
bank, the sequencer (the one owner of the phase), the pool fill and memory, the addressers and
the adaptive scaler, each against the software definition; each check is shown to fail."""

import random

import pytest
import torch

from amaranth_tb import mismatches, pulse, simulate
from zohw.config import EngineConfig
from zohw.hw.addressing import BlockAddresser, RowAddresser
from zohw.hw.fill import PoolFill
from zohw.hw.generators import GeneratorBank
from zohw.hw.pool import PoolMemory
from zohw.hw.scaler import AdaptiveScaler
from zohw.hw.sequencer import Phase, Sequencer
from zohw.sources import lfsr32_step, mix_seed, xorshift32_step
from zohw.sw.perturb import adaptive_scale, golden_pool

STEP = {"lfsr32": lfsr32_step, "xorshift32": xorshift32_step}


# -- generator bank ----------------------------------------------------------------------------

def run_bank(source, count, base, seed, script):
    """States (one int per generator) after each command of ``script`` (command names of the
    bank: load, step, checkpoint, restore; "checkpoint+step" both at once)."""
    dut = GeneratorBank(source, count, base)
    states = []

    async def testbench(ctx):
        ctx.set(dut.cmd.seed, seed)
        for cmd in script:
            for name in cmd.split("+"):
                ctx.set(getattr(dut.cmd, name), 1)
            await ctx.tick()
            for name in cmd.split("+"):
                ctx.set(getattr(dut.cmd, name), 0)
            word = ctx.get(dut.state)
            states.append([(word >> (32 * k)) & 0xFFFF_FFFF for k in range(count)])

    simulate(dut, testbench)
    return states


def model_bank(source, count, base, seed, script):
    """The same commands on Python integers, from zohw.sources' step functions."""
    state = ckpt = None
    out = []
    for cmd in script:
        names = cmd.split("+")
        old = state
        if "checkpoint" in names:
            ckpt = list(old)
        if "load" in names:
            state = [mix_seed(seed, base + k) for k in range(count)]
        elif "restore" in names:
            state = list(ckpt)
        elif "step" in names:
            state = [STEP[source](x) for x in state]
        out.append(list(state))
    return out


BANK_SCRIPT = (["load", "step", "checkpoint"] + ["step"] * 7 + ["restore"] + ["step"] * 3 +
               ["checkpoint", "step", "step", "restore", "step", "checkpoint+step", "step",
                "restore", "load", "step"])


@pytest.mark.parametrize("source", ["lfsr32", "xorshift32"])
@pytest.mark.parametrize("count, base", [(1, 0), (3, 1)])
def test_generator_bank_seeds_steps_checkpoints_and_replays(source, count, base):
    got = run_bank(source, count, base, 0xC0FFEE, BANK_SCRIPT)
    assert got == model_bank(source, count, base, 0xC0FFEE, BANK_SCRIPT)
    # a replay really returns: the state after the first restore is the checkpointed one
    assert got[10] == got[2]


def test_generator_bank_check_can_fail():
    """The other source's step function as the model: the first step after the load differs."""
    got = run_bank("lfsr32", 1, 0, 5, BANK_SCRIPT)
    wrong = model_bank("xorshift32", 1, 0, 5, BANK_SCRIPT)
    first = next(i for i, (a, b) in enumerate(zip(got, wrong)) if a != b)
    assert first == 1 and BANK_SCRIPT[first] == "step"


# -- sequencer ---------------------------------------------------------------------------------

@pytest.mark.parametrize("pool, warm, fill_cycles", [(False, True, 0), (True, False, 5),
                                                     (True, True, 3)])
def test_sequencer_phases_and_events(pool, warm, fill_cycles):
    dut = Sequencer(pool=pool, warm=warm)
    trace = []

    async def testbench(ctx):
        assert ctx.get(dut.phase) == Phase.IDLE and ctx.get(dut.busy)
        ctx.set(dut.load, 1)
        assert ctx.get(dut.ctl.load) and ctx.get(dut.gen.load) and not ctx.get(dut.valid)
        await ctx.tick()
        ctx.set(dut.load, 0)
        for _ in range(12):
            if pool:
                done = ctx.get(dut.fill.fill) and sum(p == Phase.FILL for p in trace) == \
                    fill_cycles - 1
                ctx.set(dut.fill.done, done)
            trace.append(ctx.get(dut.phase))
            events = {n: ctx.get(getattr(dut.ctl, n)) for n in ("warm", "init")}
            assert events["warm"] == (trace[-1] == Phase.WARM)
            assert events["init"] == (trace[-1] == Phase.INIT)
            assert ctx.get(dut.gen.step) == events["warm"]
            assert ctx.get(dut.gen.checkpoint) == events["init"]
            await ctx.tick()
        assert ctx.get(dut.phase) == Phase.RUN and not ctx.get(dut.busy)
        ctx.set(dut.ready, 1)
        assert ctx.get(dut.valid) and ctx.get(dut.ctl.transfer) and ctx.get(dut.gen.step)
        for strobe, event, command in (("replay", "replay", "restore"),
                                       ("advance", "advance", "checkpoint")):
            ctx.set(getattr(dut, strobe), 1)
            assert not ctx.get(dut.valid) and not ctx.get(dut.ctl.transfer)
            assert ctx.get(getattr(dut.ctl, event)) and ctx.get(getattr(dut.gen, command))
            await ctx.tick()
            ctx.set(getattr(dut, strobe), 0)
        assert ctx.get(dut.phase) == Phase.RUN

    simulate(dut, testbench)
    expected = ([Phase.FILL] * fill_cycles if pool else []) + \
        ([Phase.WARM] if warm else []) + [Phase.INIT]
    assert trace[:len(expected)] == expected
    assert set(trace[len(expected):]) == {Phase.RUN}


# -- pool fill and memory ----------------------------------------------------------------------

def fill_and_pool(config, banked):
    """PoolFill writing a PoolMemory, joined as the engine joins them: (module, fill, pool)."""
    from amaranth import Module
    from amaranth.lib import wiring
    m = Module()
    m.submodules.fill = fill = PoolFill(config)
    m.submodules.pool = pool = PoolMemory(config, banked=banked)
    wiring.connect(m, fill.write, pool.write)
    return m, fill, pool


def read_pool(config, banked, seed):
    """Fill the pool after a load, then read every row (every bank at the same row): the N
    words in pool order (int64 [N]) and the number of fill cycles."""
    top, fill, pool = fill_and_pool(config, banked)
    rows, P = config.pool_rows, config.lanes
    lanes = P if banked else 1
    words = torch.zeros(rows, P, dtype=torch.int64)
    cycles = []

    async def testbench(ctx):
        ctx.set(fill.fill.seed, seed)
        await pulse(ctx, fill.fill.load)
        ctx.set(fill.fill.fill, 1)
        n = 1
        while not ctx.get(fill.fill.done):
            await ctx.tick()
            n += 1
        await ctx.tick()
        ctx.set(fill.fill.fill, 0)
        cycles.append(n)
        sync = config.pool_read == "sync"
        for r in range(rows):
            for j in range(lanes):
                ctx.set(pool.rows.addr[j], r)
                ctx.set(pool.rows.addr_next[j], r)
            if sync:
                await ctx.tick()
            for j in range(P):
                words[r, j] = ctx.get(pool.reads[j])

    simulate(top, testbench)
    return words.reshape(-1), cycles[0]


@pytest.mark.parametrize("scaling", ["none", "fixed", "adaptive"])
@pytest.mark.parametrize("banked, pool_read", [(False, "comb"), (True, "sync")])
def test_pool_fill_and_memory_hold_the_golden_pool(scaling, banked, pool_read):
    config = EngineConfig(strategy="pezo-block", lanes=4, width=7, pool=32, scaling=scaling,
                          pool_read=pool_read, source="lfsr32")
    words, cycles = read_pool(config, banked, 0x5EED)
    assert torch.equal(words, golden_pool(config, 0x5EED))
    if scaling == "adaptive":                        # two passes of a serial multiplier
        assert cycles > 2 * 32 * 7
    else:
        assert cycles == 32                          # one word per cycle


def test_pool_check_can_fail():
    """The golden pool of another seed differs word by word and is reported by index."""
    config = EngineConfig(strategy="pezo-shift", lanes=4, width=8, pool=16, scaling="fixed")
    words, _ = read_pool(config, False, 1)
    reports = mismatches(words.reshape(1, -1), golden_pool(config, 2).reshape(1, -1))
    assert reports and all(r["expected"] != r["got"] for r in reports)
    assert reports[0]["index"] == reports[0]["lane"]


# -- addressers --------------------------------------------------------------------------------

def run_addresser(config, dut, C, steps, seed=3):
    """Rows the addresser gives at each transfer of ``steps`` steps of C transfers, each step
    replayed once: int64 [steps, 2, C, lanes]; also checks addr_next against the next addr."""
    lanes = len(dut.rows.addr)
    out = torch.zeros(steps, 2, C, lanes, dtype=torch.int64)

    async def testbench(ctx):
        ctl = dut.ctl
        ctx.set(ctl.seed, seed)
        await pulse(ctx, ctl.load)
        await pulse(ctx, ctl.init)
        for s in range(steps):
            for p in range(2):
                if p:
                    await pulse(ctx, ctl.replay)
                for c in range(C):
                    ctx.set(ctl.transfer, 1)
                    nxt = [ctx.get(dut.rows.addr_next[j]) for j in range(lanes)]
                    out[s, p, c] = torch.tensor([ctx.get(dut.rows.addr[j])
                                                 for j in range(lanes)])
                    await ctx.tick()
                    assert nxt == [ctx.get(dut.rows.addr[j]) for j in range(lanes)]
                ctx.set(ctl.transfer, 0)
            await pulse(ctx, ctl.advance)

    simulate(dut, testbench)
    return out


@pytest.mark.parametrize("strategy", ["pezo-shift", "pezo-block"])
def test_addressers_follow_the_golden_rows(strategy):
    config = EngineConfig(strategy=strategy, lanes=4, width=8, pool=32)
    s = config.strategy_object
    C, steps = 11, 4                                 # C > N/P: blocks complete inside a step
    dut = s.addresser(config)
    assert isinstance(dut, BlockAddresser if s.banked else RowAddresser)
    got = run_addresser(config, dut, C, steps)
    rows = s.golden_rows(config, 3, C, steps, 0).reshape(steps, 1, C, 4)
    if not s.banked:
        rows = rows[..., :1]
    assert not mismatches(got, rows.expand(-1, 2, -1, -1))


def test_addresser_check_can_fail():
    """A block addresser judged by the shifting window's rows mismatches."""
    config = EngineConfig(strategy="pezo-block", lanes=4, width=8, pool=32)
    got = run_addresser(config, config.strategy_object.addresser(config), 11, 2)
    shift = EngineConfig(strategy="pezo-shift", lanes=4, width=8, pool=32)
    wrong = shift.strategy_object.golden_rows(shift, 3, 11, 2, 0).reshape(2, 1, 11, 4)
    assert mismatches(got, wrong.expand(-1, 2, -1, -1))


# -- adaptive scaler ---------------------------------------------------------------------------

def run_scaler(config, values):
    dut = AdaptiveScaler(config)
    out = []

    async def testbench(ctx):
        for v in values:
            ctx.set(dut.sumsq, v)
            await pulse(ctx, dut.start)
            await ctx.tick().until(dut.done)
            out.append(ctx.get(dut.scale))

    simulate(dut, testbench)
    return out


def test_scaler_matches_software_adaptive_scale():
    config = EngineConfig(strategy="pezo-block", lanes=4, width=8, pool=64)
    W = config.adaptive_sum_bits
    rng = random.Random(4)
    values = [0, 1, 2, 3, (1 << W) - 1, 1 << (W - 1), 64 * 1024] + \
        [rng.getrandbits(rng.randrange(1, W + 1)) for _ in range(40)]
    assert run_scaler(config, values) == [adaptive_scale(config, v) for v in values]


def test_scaler_check_can_fail():
    """The software scale of a neighbouring sum of squares (a wrong golden) is caught."""
    config = EngineConfig(strategy="pezo-block", lanes=4, width=8, pool=64)
    values = [5000, 50_000, 400_000]                 # scales below the cap
    got = run_scaler(config, values)
    wrong = [adaptive_scale(config, 4 * v) for v in values]
    assert [i for i, (a, b) in enumerate(zip(got, wrong)) if a != b] == [0, 1, 2]


# -- step counter ------------------------------------------------------------------------------

def run_counter(modulus, script):
    """The counter's value before each event of ``script`` (t: transfer, r: replay,
    a: advance), after a load and init."""
    from zohw.hw.counter import StepCounter
    dut = StepCounter(modulus)
    names = {"t": "transfer", "r": "replay", "a": "advance"}
    values = []

    async def testbench(ctx):
        await pulse(ctx, dut.ctl.load)
        await pulse(ctx, dut.ctl.init)
        for event in script:
            values.append(ctx.get(dut.value))
            await pulse(ctx, getattr(dut.ctl, names[event]))

    simulate(dut, testbench)
    return values


def model_counter(modulus, script):
    """Transfer positions modulo ``modulus`` under the step protocol."""
    pos = start = 0
    out = []
    for event in script:
        out.append(pos % modulus)
        if event == "t":
            pos += 1
        elif event == "r":
            pos = start
        else:
            start = pos
    return out


COUNTER_SCRIPT = list("tttttrttttttatttrtttttttattt")


@pytest.mark.parametrize("modulus", [1, 3, 4])
def test_step_counter_follows_transfer_positions(modulus):
    assert run_counter(modulus, COUNTER_SCRIPT) == model_counter(modulus, COUNTER_SCRIPT)


def test_step_counter_check_can_fail():
    """A model that forgets the replay (positions run on) differs right after the replay."""
    got = run_counter(3, COUNTER_SCRIPT)
    wrong = model_counter(3, [e if e != "r" else "a" for e in COUNTER_SCRIPT])
    first = next(i for i, (a, b) in enumerate(zip(got, wrong)) if a != b)
    assert COUNTER_SCRIPT[first - 1] == "r"
