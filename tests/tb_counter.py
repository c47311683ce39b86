"""cocotb test module for tests/test_runner.py: an 8-bit counter counts enabled cycles; its
internal ``shadow`` register is visible to cocotb only in an all-public model."""

import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge


@cocotb.test()
async def counts(dut):
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.en.value = 0
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    dut.en.value = 1
    for _ in range(10):
        await RisingEdge(dut.clk)
    await ReadOnly()
    expect = int(os.environ.get("COUNTER_EXPECT", "10"))
    assert dut.count.value.to_unsigned() == expect


@cocotb.test()
async def internal_signal(dut):
    visible = os.environ.get("COUNTER_SHADOW_VISIBLE", "1") == "1"
    try:
        dut.shadow
    except AttributeError:
        found = False
    else:
        found = True
    assert found == visible, f"shadow {'not ' if visible else ''}visible"
    assert len(dut.count) == 8          # the ports are there either way
