"""``gauss-icdf``: a sign bit and an index into a half table of Gaussian quantiles."""

import math
import statistics

from zohw._lazy import torch

from .base import GeneratorStrategy, Knob, Moments


def _default_icdf_bits(config):
    """min(B - 1, 8)"""
    return min(config.width - 1, 8)


class GaussICDF(GeneratorStrategy):
    name = "gauss-icdf"
    order = 1
    summary = "inverse-CDF half table indexed by random bits, random sign"
    gaussian = True
    knobs = (Knob("icdf_bits", None, "index bits of the gauss-icdf half table",
                  derive=_default_icdf_bits, lo=2, hi=lambda c: c.width - 1, metavar="I"),)
    MOMENTS = {"none": Moments(0.02, (0.97, 1.03), (2.75, 3.10))}

    def summary_parts(self, config):
        return [f"table={1 << config.icdf_bits}"]

    def label_parts(self, config):
        return [f"{1 << config.icdf_bits}-entry table"]

    @staticmethod
    def table(config):
        """Half table: 2**icdf_bits magnitudes in output LSBs, increasing.

        Entry i is Φ⁻¹(½ + (i + ½) / 2**(icdf_bits + 1)), the midpoint quantile, rescaled so the
        symmetric discrete distribution has unit variance, rounded and clipped to the word range.
        """
        n = 1 << config.icdf_bits
        nd = statistics.NormalDist()
        q = [nd.inv_cdf(0.5 + (i + 0.5) / (2 * n)) for i in range(n)]
        rms = math.sqrt(sum(v * v for v in q) / n)
        scale = (1 << config.frac_bits) / rms
        return tuple(min(config.word_max, int(round(v * scale))) for v in q)

    def field_layout(self, config):
        """``icdf`` — P fields of icdf_bits + 1 bits: the low icdf_bits index the half table,
        the top bit is the sign."""
        return {"icdf": (0, config.icdf_bits + 1, config.lanes)}

    def golden_words(self, config, fields, positions, reads=None):
        v = fields.unsigned("icdf")
        table = torch.tensor(self.table(config), dtype=torch.int64)
        mag = table[v & ((1 << config.icdf_bits) - 1)]
        return torch.where((v >> config.icdf_bits) == 1, -mag, mag)

    def hw_words(self, m, config, fields, ctl, reads=None):
        from amaranth import Array, C, Mux, Signal, unsigned
        B = config.width
        table = Array(C(v, unsigned(B - 1)) for v in self.table(config))
        out = []
        for j in range(config.lanes):
            v = fields.unsigned("icdf", j)
            mag = Signal(unsigned(B - 1), name=f"icdf_mag{j}")
            m.d.comb += mag.eq(table[v[:config.icdf_bits]])
            out.append(Mux(v[config.icdf_bits], -mag, mag))
        return out


STRATEGY = GaussICDF()
