"""``gauss-clt``: the sum of K uniforms, normalised by √(3/K) with shift-adds (central limit)."""

import operator
from functools import reduce

from .base import GeneratorStrategy, Knob, Moments, saturate, shift_add

#: Uniforms summed per word.
CLT_K = (2, 4, 8, 12)
#: Shift-add terms (sign, left shift) of √(3/K), applied with :data:`CLT_GUARD` guard bits.
CLT_TERMS = {2: ((+1, 0), (+1, -2), (-1, -5)),      # 1.21875   (√1.5   = 1.2247)
             4: ((+1, 0), (-1, -3)),                # 0.875     (√0.75  = 0.8660)
             8: ((+1, -1), (+1, -3), (-1, -6)),     # 0.609375  (√0.375 = 0.6124)
             12: ((+1, -1),)}                       # 0.5       (exact)
CLT_GUARD = 3


class GaussCLT(GeneratorStrategy):
    name = "gauss-clt"
    order = 0
    summary = "sum of K uniforms, normalised by √(3/K)"
    gaussian = True
    knobs = (Knob("clt_k", 4, "K, uniforms summed per gauss-clt word", allowed=CLT_K,
                  metavar="K"),)

    def summary_parts(self, config):
        return [f"K={config.clt_k}"]

    def moments(self, config):
        if config.scaling != "none":
            return None
        # kurtosis of a sum of K uniforms: 3 - 1.2 / K
        if config.clt_k == 4:
            return Moments(0.02, (0.97, 1.04), (2.55, 2.85))
        k = 3 - 1.2 / config.clt_k
        return Moments(0.03, (0.95, 1.05), (k - 0.12, k + 0.12))

    def field_layout(self, config):
        """``u`` — P·K words of F + 1 bits (U(-1, 1) at the output LSB); lane j sums entries
        j·K … j·K + K - 1."""
        return {"u": (0, config.frac_bits + 1, config.lanes * config.clt_k)}

    def golden_words(self, config, fields, positions, reads=None):
        K = config.clt_k
        u = fields.signed("u").reshape(-1, config.lanes, K).sum(-1)
        return self._normalise(config, u)

    def hw_words(self, m, config, fields, ctl, reads=None):
        K = config.clt_k
        return [self._normalise(config, reduce(operator.add,
                                               [fields.signed("u", j * K + i) for i in range(K)]))
                for j in range(config.lanes)]

    @staticmethod
    def _normalise(config, total):
        """Both sides: each uniform has mean -1/2 LSB (add K/2), then × √(3/K), rounded."""
        g = CLT_GUARD
        total = total + config.clt_k // 2
        return saturate((shift_add(total << g, CLT_TERMS[config.clt_k]) + (1 << (g - 1))) >> g,
                        config)


STRATEGY = GaussCLT()
