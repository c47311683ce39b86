"""Planted bugs for the twins: each wraps or re-parameterises the shipped design (never edits it)
and must make its property fail."""

import operator
from functools import reduce

from amaranth import Module
from amaranth.lib import wiring

from zohw.sources import mix_constant

from ..sequencer import Sequencer

__all__ = ["unguarded_seed", "MutantSequencer", "identity_clamp"]


def unguarded_seed(seed, k, bits=32):
    """``mixed_seed`` without its zero guard: a seed equal to the constant gives state 0."""
    c = mix_constant(k, bits)
    return reduce(operator.xor, [seed[i:i + bits] for i in range(0, 32, bits)]) ^ c


def identity_clamp(v, lo, hi):
    """An update unit without saturation."""
    return v


class MutantSequencer(wiring.Component):
    """The shipped :class:`~zohw.hw.sequencer.Sequencer` with some outputs rewired:
    ``overrides`` maps a member path (a tuple of names) to a function of the inner sequencer
    giving the value driven instead."""

    def __init__(self, *, pool, warm, overrides):
        self._inner = Sequencer(pool=pool, warm=warm)
        self._overrides = dict(overrides)
        super().__init__(self._inner.signature)

    @property
    def pool(self):
        return self._inner.pool

    @property
    def warm(self):
        return self._inner.warm

    def elaborate(self, platform):
        m = Module()
        inner = self._inner
        m.submodules.inner = inner
        for (path, member, outer), (_, _, value) in zip(self.signature.flatten(self),
                                                         inner.signature.flatten(inner)):
            if member.flow == wiring.In:
                m.d.comb += value.eq(outer)
            elif path in self._overrides:
                m.d.comb += outer.eq(self._overrides[path](inner))
            else:
                m.d.comb += outer.eq(value)
        return m


def sequencer_factory(**overrides):
    """A drop-in for ``Sequencer`` (as ``zohw.hw.engine`` calls it) with ``overrides``."""
    paths = {tuple(k.split("__")): v for k, v in overrides.items()}
    return lambda *, pool, warm: MutantSequencer(pool=pool, warm=warm, overrides=paths)
