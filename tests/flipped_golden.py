"""The engine's golden model with one bit flipped in one word of one step — a deliberately
wrong golden the co-simulation must catch and locate (tests/test_cosim_engine.py)."""

from zohw.sw.perturb import cycles_per_step, golden_stream as _golden_stream

__all__ = ["FLIP_STEP", "FLIP_CYCLE", "FLIP_LANE", "FLIP_BIT", "cycles_per_step",
           "golden_stream"]

FLIP_STEP, FLIP_CYCLE, FLIP_LANE, FLIP_BIT = 3, 5, 2, 4


def golden_stream(config, seed, d, steps, first_step=0):
    z = _golden_stream(config, seed, d, steps, first_step).clone()
    if first_step <= FLIP_STEP < first_step + steps:
        word = z[FLIP_STEP - first_step, FLIP_CYCLE, FLIP_LANE]
        raw = (int(word) & ((1 << config.width) - 1)) ^ (1 << FLIP_BIT)
        z[FLIP_STEP - first_step, FLIP_CYCLE, FLIP_LANE] = raw - ((raw >> (config.width - 1))
                                                                  << config.width)
    return z
