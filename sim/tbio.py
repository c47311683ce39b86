"""Plumbing shared by the cocotb testbenches: arguments in, a result document out.

The host side passes a testbench its arguments as JSON in ``ZOHW_TB_ARGS`` and reads the result
document the testbench writes (atomically) to the path in ``ZOHW_TB_RESULT``.
"""

import json
import os
import time

from zohw.io import write_json_atomic

__all__ = ["ARGS_ENV", "RESULT_ENV", "CLOCK_PERIOD_NS", "tb_args", "run_recorded", "sim_cycle",
           "pulse_reset"]

ARGS_ENV = "ZOHW_TB_ARGS"
RESULT_ENV = "ZOHW_TB_RESULT"
#: Clock period of every testbench.
CLOCK_PERIOD_NS = 10


def tb_args():
    """The testbench's arguments (``ZOHW_TB_ARGS``)."""
    return json.loads(os.environ[ARGS_ENV])


async def run_recorded(tb):
    """Run ``tb.run()`` and write ``tb.result(seconds, error)`` to ``ZOHW_TB_RESULT`` whether it
    finished or raised (the exception propagates and fails the cocotb test). Returns the
    result document."""
    start = time.monotonic()
    error = None
    try:
        await tb.run()
    except Exception as exc:  # record what happened, then fail the test
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        result = tb.result(time.monotonic() - start, error)
        if os.environ.get(RESULT_ENV):
            write_json_atomic(os.environ[RESULT_ENV], result)
    return result


def sim_cycle():
    """The current simulation time in clock cycles."""
    from cocotb.simtime import get_sim_time   # only inside a simulator

    return int(get_sim_time(unit="ns") // CLOCK_PERIOD_NS)


async def pulse_reset(dut, cycles=3):
    """Hold ``rst`` for ``cycles`` clock edges, release it, and wait for the next edge."""
    from cocotb.triggers import ClockCycles, RisingEdge

    dut.rst.value = 1
    await ClockCycles(dut.clk, cycles)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
