"""Plumbing shared by the cocotb testbenches: arguments in, a result document out.

The host side passes a testbench its arguments as JSON in ``ZOHW_TB_ARGS`` and reads the result
document the testbench writes (atomically) to the path in ``ZOHW_TB_RESULT``.
"""

import json
import os
import time

from zohw.io import write_json_atomic

__all__ = ["ARGS_ENV", "RESULT_ENV", "tb_args", "run_recorded"]

ARGS_ENV = "ZOHW_TB_ARGS"
RESULT_ENV = "ZOHW_TB_RESULT"


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
