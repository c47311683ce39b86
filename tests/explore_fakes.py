"""Stand-in task functions for the ``zohw explore`` tests: instant, deterministic results of
the real tasks' shapes, so that the cache, the interruption and the executors are tested
without Yosys or training. Importable by pool workers (fork) and by subprocesses (the tests
put this directory on PYTHONPATH).

Environment: ``ZOHW_FAKE_LOG`` — a file each call appends ``kind`` to (calls across
processes); ``ZOHW_FAKE_SLEEP`` — seconds each call sleeps; ``ZOHW_FAKE_INTERRUPT_AT`` — the
call number (1-based, counted in the log) that raises KeyboardInterrupt instead.
"""

import os
import sys
import time

from zohw.strategies import STRATEGIES

FAKES = {kind: f"explore_fakes:fake_{kind}" for kind in ("synth", "power", "train")}


def _log(kind):
    path = os.environ.get("ZOHW_FAKE_LOG")
    n = 0
    if path:
        with open(path, "a") as f:
            f.write(kind + "\n")
        with open(path) as f:
            n = sum(1 for _ in f)
    at = os.environ.get("ZOHW_FAKE_INTERRUPT_AT")
    if at and n == int(at):
        raise KeyboardInterrupt
    time.sleep(float(os.environ.get("ZOHW_FAKE_SLEEP", "0")))


#: Relative cost and accuracy loss of the stand-ins (strategies not listed: cost 3, no loss):
#: Gaussian engines dear, rademacher cheapest, pezo-otf cheap, pezo-shift inaccurate.
COST = {"gauss-clt": 10, "gauss-icdf": 6, "uniform": 5, "rademacher": 1, "pezo-shift": 4,
        "pezo-block": 7, "pezo-otf": 2, "sparse": 2}
LOSS = {"pezo-shift": 0.5}


def _rank(task):
    return STRATEGIES.index(task["engine"]["strategy"])


def _cost(task):
    return COST.get(task["engine"]["strategy"], 3)


def fake_synth(task):
    _log("synth")
    e = task["engine"]
    size = e["lanes"] * e["width"] * _cost(task)
    if task["target"] == "asic":
        return {"ge": 7.5 * size, "ge_comb": 5.0 * size, "ge_seq": 2.5 * size, "ff": size // 4,
                "area_um2": None}
    return {"lut": size, "lut_logic": size, "lutram": 0, "ff": size // 4, "carry": 0,
            "ram_bits": 0, "bram": 0, "dsp": 0}


def fake_power(task):
    _log("power")
    e = task["engine"]
    return {"power": float(e["lanes"] * (3 + _cost(task))), "toggles_per_cycle": 1.0,
            "power_ff": 1, "ge": 7.5 * e["lanes"] * e["width"] * _cost(task)}


def fake_train(task):
    _log("train")
    return {"test_accuracy": 0.9 + 0.002 * _rank(task) + 0.001 * task["seed"]
            - 0.0001 * task["engine"]["lanes"] - LOSS.get(task["engine"]["strategy"], 0.0),
            "train_accuracy": 0.5, "writes_per_weight": 3.0 * task["steps"],
            "cycles_per_step": 100 + task["engine"]["lanes"]}


def cli(argv):
    """``zohw`` with the stand-ins in place of the real tasks (for subprocess tests)."""
    from zohw import cli as zcli
    from zohw.explore import tasks

    tasks.EVALUATORS.update(FAKES)
    if "explore" not in zcli.COMMANDS:       # until zohw/commands registers it
        zcli.COMMANDS = (*zcli.COMMANDS, "explore")
    return zcli.main(argv)


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
