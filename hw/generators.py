"""A bank of checkpointed 32-bit generators: seed, warm-up (a step), checkpoint, replay
(restore), advance. Every generator strategy's random word, ``pezo-block``'s sign bits and the
pool fill come from one of these."""

import operator
from functools import reduce

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from zohw.sources import SOURCES, matrix_rows, mix_constant, step_matrix

from .sequencer import CommandSignature

__all__ = ["GeneratorBank", "linear_step", "mixed_seed"]


def linear_step(state, matrix):
    """Next state of a GF(2)-linear generator: each bit is an XOR of state bits."""
    return Cat(*[reduce(operator.xor, [state[j] for j in js]) for js in matrix_rows(matrix)])


def mixed_seed(seed, k, bits=32):
    """:func:`zohw.sources.mix_seed` in hardware: fold, XOR a constant, replace zero by it."""
    c = mix_constant(k, bits)
    folded = reduce(operator.xor, [seed[i:i + bits] for i in range(0, 32, bits)])
    x = folded ^ c
    return Mux(x == 0, c, x)


class GeneratorBank(wiring.Component):
    """``count`` generators of ``source``, indices ``base`` … ``base + count - 1``.

    Members
    -------
    cmd : In(CommandSignature)
        ``load`` seeds generator k with ``mix_seed(seed, base + k)``; ``restore`` returns to the
        checkpoint, else ``step`` advances every generator; ``checkpoint`` saves the state.
    state : Out(32 * count)
        The generators' states, generator ``base`` in the low bits (the wide random word).
    state_next : Out(32 * count)
        The states one step on.
    """

    def __init__(self, source, count, base=0):
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive integer, not {count!r}")
        self._source, self._count, self._base = source, count, base
        super().__init__({
            "cmd": In(CommandSignature),
            "state": Out(32 * count),
            "state_next": Out(32 * count),
        })

    @property
    def source(self):
        return self._source

    @property
    def count(self):
        return self._count

    @property
    def base(self):
        return self._base

    def elaborate(self, platform):
        m = Module()
        matrix = step_matrix(self._source)
        gens = [Signal(32, name=f"gen{self._base + k}") for k in range(self._count)]
        ckpts = [Signal(32, name=f"ckpt{self._base + k}") for k in range(self._count)]
        nexts = [linear_step(g, matrix) for g in gens]
        cmd = self.cmd
        # load, else restore, else step (multiplexers rather than a priority case: a command
        # tied to 0 by its user then folds away without overlapping case arms)
        with m.If(cmd.load | cmd.restore | cmd.step):
            m.d.sync += [g.eq(Mux(cmd.load, mixed_seed(cmd.seed, self._base + k),
                                  Mux(cmd.restore, c, n)))
                         for k, (g, c, n) in enumerate(zip(gens, ckpts, nexts))]
        with m.If(cmd.checkpoint):
            m.d.sync += [c.eq(g) for c, g in zip(ckpts, gens)]
        m.d.comb += [self.state.eq(Cat(*gens)), self.state_next.eq(Cat(*nexts))]
        return m
