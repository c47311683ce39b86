"""Amaranth Python-simulator helpers for the engine's unit tests (Glasgow style): stream_get,
strobes, and a driver that runs the step protocol and reports mismatches by position."""

from amaranth import Module, Signal
from amaranth.sim import Simulator


async def stream_get(ctx, stream):
    """One transfer from ``stream``: ready high until valid is seen at a clock edge."""
    ctx.set(stream.ready, 1)
    payload, = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


async def pulse(ctx, signal, value=1):
    ctx.set(signal, value)
    await ctx.tick()
    ctx.set(signal, 0)


def simulate(dut, testbench, *, deadline_cycles=None):
    """Run ``testbench(ctx)`` against ``dut`` on a 1 MHz ``sync`` clock."""
    top = Module()
    top.submodules.dut = dut
    tick = Signal()                    # a sync domain even for a combinational DUT
    top.d.sync += tick.eq(~tick)
    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    if deadline_cycles is None:
        sim.run()
    else:
        sim.run_until(deadline_cycles * 1e-6)


def mismatches(got, expected, limit=8):
    """Positions where the int tensors ``got`` and ``expected`` ([..., C, P], same shape)
    differ: dicts with the leading indices (``step``, ``pass``, …), ``cycle``, ``lane``,
    ``index`` (cycle * P + lane), ``expected`` and ``got``; at most ``limit``."""
    assert got.shape == expected.shape, (tuple(got.shape), tuple(expected.shape))
    names = ["step", "pass"][:got.dim() - 2]
    P = got.shape[-1]
    out = []
    for pos in (got != expected).nonzero().tolist()[:limit]:
        *lead, cycle, lane = pos
        report = dict(zip(names, lead))
        report.update(cycle=cycle, lane=lane, index=cycle * P + lane,
                      expected=int(expected[tuple(pos)]), got=int(got[tuple(pos)]))
        out.append(report)
    return out
