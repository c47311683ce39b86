"""``uniform``: U(-1, 1) words, optionally scaled by ≈ √3 to unit std."""

from .base import GeneratorStrategy, Moments, scale_uniform


class Uniform(GeneratorStrategy):
    name = "uniform"
    order = 2
    summary = "U(-1, 1) words"
    uniform_family = True
    scalings = ("fixed", "none")
    scaling_reason = "adaptive scaling measures a pool"
    MOMENTS = {"none": Moments(0.03, (0.55, 0.60), (1.70, 1.90)),      # U(-1, 1): 1/√3, 1.8
               "fixed": Moments(0.02, (0.98, 1.04), (1.70, 1.90))}

    def field_layout(self, config):
        """``raw`` — P words of B bits (U(-1, 1) with B - 1 fraction bits)."""
        return {"raw": (0, config.width, config.lanes)}

    def golden_words(self, config, fields, positions, reads=None):
        return scale_uniform(fields.signed("raw"), config.scaling)

    def hw_words(self, m, config, fields, ctl, reads=None):
        return [scale_uniform(fields.signed("raw", j), config.scaling)
                for j in range(config.lanes)]


STRATEGY = Uniform()
