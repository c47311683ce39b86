"""``rademacher``: ±1 words from one random bit each."""

from .base import GeneratorStrategy, Moments


class Rademacher(GeneratorStrategy):
    name = "rademacher"
    order = 3
    summary = "±1 from one bit per word"
    MOMENTS = {"none": Moments(0.02, (0.99, 1.01), (0.99, 1.01))}

    def field_layout(self, config):
        """``sign`` — P bits, 0 → +1, 1 → -1."""
        return {"sign": (0, 1, config.lanes)}

    def golden_words(self, config, fields, positions, reads=None):
        return (1 - 2 * fields.unsigned("sign")) << config.frac_bits

    def hw_words(self, m, config, fields, ctl, reads=None):
        from amaranth import C, Mux, signed
        one, B = 1 << config.frac_bits, config.width
        return [Mux(fields.unsigned("sign", j), C(-one, signed(B)), C(one, signed(B)))
                for j in range(config.lanes)]


STRATEGY = Rademacher()
