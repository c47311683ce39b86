"""``pezo-otf``: R uniform sources shared by the P lanes, rotated per transfer, each lane with its
own fresh sign (PeZO's on-the-fly generation)."""

from zohw._lazy import torch

from .base import GeneratorStrategy, Knob, Moments, scale_uniform


def _default_sources(config):
    """max(1, P // 8)"""
    return max(1, config.lanes // 8)


class PezoOTF(GeneratorStrategy):
    name = "pezo-otf"
    order = 6
    summary = "R shared uniform sources, rotated over the lanes, fresh sign per word"
    uniform_family = True
    pezo_family = True
    scalings = ("fixed", "none")
    scaling_reason = "adaptive scaling measures a pool"
    min_lanes = 2
    knobs = (Knob("otf_sources", None, "R, uniform sources of pezo-otf shared by the P lanes",
                  derive=_default_sources, lo=1, hi=lambda c: c.lanes - 1, owner_only=True,
                  metavar="R"),)
    MOMENTS = {"fixed": Moments(0.03, (0.97, 1.05), (1.65, 1.95))}

    def summary_parts(self, config):
        return [f"R={config.otf_sources}"]

    def field_layout(self, config):
        """``raw`` — R words of B bits, then ``sign`` — P bits."""
        R, B = config.otf_sources, config.width
        return {"raw": (0, B, R), "sign": (R * B, 1, config.lanes)}

    def golden_words(self, config, fields, positions, reads=None):
        R, P = config.otf_sources, config.lanes
        src = scale_uniform(fields.signed("raw"), config.scaling)               # [count, R]
        sel = (torch.arange(P)[None, :] + positions[:, None]) % R                # rotation
        v = torch.gather(src, 1, sel)
        flip = fields.unsigned("sign") == 1
        return torch.where(flip, -v - 1, v)                                      # XOR-negate

    def hw_words(self, m, config, fields, ctl, reads=None):
        from amaranth import Array, Mux, Signal, signed
        from amaranth.lib import wiring

        from zohw.hw.counter import StepCounter
        R, B = config.otf_sources, config.width
        # the rotation is the transfer position mod R, checkpointed with the generators
        m.submodules.rotation = counter = StepCounter(R)
        wiring.connect(m, wordmap=wiring.flipped(ctl), rotation=counter.ctl)
        rot = counter.value
        sources = []
        for r in range(R):
            sig = Signal(signed(B), name=f"otf_src{r}")
            m.d.comb += sig.eq(scale_uniform(fields.signed("raw", r), config.scaling))
            sources.append(sig)
        sources = Array(sources)
        out = []
        for j in range(config.lanes):
            t = rot + (j % R)
            v = sources[Mux(t >= R, t - R, t)].as_unsigned()
            out.append((v ^ fields.unsigned("sign", j).replicate(B)).as_signed())
        return out


STRATEGY = PezoOTF()
