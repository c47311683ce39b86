"""``sparse``: most words zero; one word in ``density`` (on average) nonzero, Rademacher ±√density
or uniform U(-1, 1)·√(3·density), so that E[z²] = 1 (Sparse MeZO's subset perturbation in its
cheapest hardware form: a zero word needs no perturbation write in the trainer).

Per lane and transfer the word takes log2(density) *gate* bits — the word is nonzero iff all are
zero, so ρ = 1/density exactly — and either one sign bit (``rademacher``) or a B-bit raw uniform
word (``uniform``) from the generators.

Scale (B - 3 fraction bits, F = B - 3):

- ``rademacher``: magnitude ``round(√density · 2**F)`` LSBs; E[z²] = magnitude² · 2**-2F /
  density (B = 8: 0.9888, 1, 1.0109 at density 2, 4, 8; :func:`second_moment`).
- ``uniform``: the raw word (B - 1 fraction bits) times ``UNIFORM_SCALE[density]`` by shift-adds
  (with guard bits), rounded half up to F fraction bits and saturated to [-4, 4). Density 2 and
  4 use √6 ≈ 2.453 and √12 ≈ 3.469; √24 = 4.9 would saturate a fifth of the words (E[z²] 0.91),
  so density 8 uses 5.328, which saturates a quarter of them (at ±4) but keeps E[z²] ≈ 1.
"""

import math

from zohw._lazy import torch

from .base import GeneratorStrategy, Knob, Moments, saturate, shift_add

DENSITIES = (2, 4, 8)
NONZERO = ("rademacher", "uniform")
#: Shift-add terms (sign, left shift) of the uniform scale per density, applied to the raw word
#: with :data:`UNIFORM_SCALE_GUARD` guard bits.
UNIFORM_SCALE = {2: ((+1, 1), (+1, -1), (-1, -5), (-1, -6)),            # 2.453125 (√6)
                 4: ((+1, 2), (-1, -1), (-1, -5)),                       # 3.46875  (√12)
                 8: ((+1, 2), (+1, 0), (+1, -2), (+1, -4), (+1, -6))}    # 5.328125 (saturating)
UNIFORM_SCALE_GUARD = 6
#: Fraction bits dropped from a raw uniform word (B - 1) to the output format (B - 3).
_RAW_TO_OUT = 2


def rademacher_magnitude(config):
    """The nonzero magnitude in LSBs: round(√density · 2**F)."""
    return int(round(math.sqrt(config.density) * (1 << config.frac_bits)))


def _uniform_word(config, raw):
    """Both sides: raw U(-1, 1) word × the density's scale, rounded, saturated."""
    g = UNIFORM_SCALE_GUARD + _RAW_TO_OUT
    acc = shift_add(raw << UNIFORM_SCALE_GUARD, UNIFORM_SCALE[config.density])
    return saturate((acc + (1 << (g - 1))) >> g, config)


def nonzero_values(config):
    """Every nonzero-branch word value with its probability (equiprobable raw words):
    int64 tensor of the values (LSBs), for :func:`second_moment` and the moments."""
    if config.nonzero == "rademacher":
        mag = rademacher_magnitude(config)
        return torch.tensor([mag, -mag])
    B = config.width
    raw = torch.arange(-(1 << (B - 1)), 1 << (B - 1))
    return _uniform_word(config, raw)


def second_moment(config):
    """Exact E[z²] of the words (units of the target variance)."""
    v = nonzero_values(config).double() * config.lsb
    return (v ** 2).mean().item() / config.density


class Sparse(GeneratorStrategy):
    name = "sparse"
    order = 7
    summary = "nonzero with density 1/D (Rademacher or uniform), zero otherwise; E[z²] = 1"
    knobs = (
        Knob("density", 4, "D, one word in D is nonzero on average: ρ = 1/D",
             allowed=DENSITIES, metavar="D", bank_values=(2, 8)),
        Knob("nonzero", "rademacher", "distribution of the nonzero words", kind=str,
             choices=NONZERO, metavar="DIST", bank_values=NONZERO),
    )

    def summary_parts(self, config):
        return [f"density=1/{config.density}", f"nonzero={config.nonzero}"]

    def label_parts(self, config):
        return [f"ρ=1/{config.density}", config.nonzero]

    def moments(self, config):
        if config.scaling != "none":
            return None
        v = nonzero_values(config).double() * config.lsb
        d = config.density
        m1, m2, m4 = v.mean().item() / d, (v ** 2).mean().item() / d, (v ** 4).mean().item() / d
        kurt = m4 / (m2 * m2)
        return Moments(0.03, (math.sqrt(m2) - 0.03, math.sqrt(m2) + 0.03),
                       (kurt * 0.88, kurt * 1.12), mean=m1)

    def field_layout(self, config):
        """``gate`` — P fields of log2(density) bits (the word is nonzero iff all are zero),
        then ``sign`` — P bits (``rademacher``) or ``raw`` — P words of B bits (``uniform``)."""
        P, g = config.lanes, config.density.bit_length() - 1
        if config.nonzero == "rademacher":
            return {"gate": (0, g, P), "sign": (P * g, 1, P)}
        return {"gate": (0, g, P), "raw": (P * g, config.width, P)}

    def golden_words(self, config, fields, positions, reads=None):
        if config.nonzero == "rademacher":
            mag = rademacher_magnitude(config)
            v = (1 - 2 * fields.unsigned("sign")) * mag
        else:
            v = _uniform_word(config, fields.signed("raw"))
        return torch.where(fields.unsigned("gate") == 0, v, torch.zeros_like(v))

    def hw_words(self, m, config, fields, ctl, reads=None):
        from amaranth import C, Mux, signed
        B = config.width
        out = []
        for j in range(config.lanes):
            if config.nonzero == "rademacher":
                mag = rademacher_magnitude(config)
                v = Mux(fields.unsigned("sign", j), C(-mag, signed(B)), C(mag, signed(B)))
            else:
                v = _uniform_word(config, fields.signed("raw", j))
            out.append(Mux(fields.unsigned("gate", j) == 0, v, 0))
        return out


STRATEGY = Sparse()
