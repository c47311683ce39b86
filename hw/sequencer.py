"""The engine's sequencer: the one owner of the :class:`Phase` state.

It turns the engine's strobes (``load``, ``advance``, ``replay``) and the stream handshake into
the events every other component follows: the control bus :data:`ControlSignature` (for the word
map and the pool addressing), the commands of the stream generators (:data:`CommandSignature`)
and the pool fill handshake (:data:`FillSignature`).
"""

from amaranth import Module
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Phase", "ControlSignature", "CommandSignature", "FillSignature", "Sequencer"]


class Phase(enum.Enum, shape=3):
    IDLE = 0   # after reset: no seed loaded
    FILL = 1   # pool strategies: filling the pool (the fill may scale it in passes)
    WARM = 2   # stream generators: one warm-up step after seeding
    INIT = 3   # take the first checkpoint (and the first block-offset draw)
    RUN = 4    # emitting words


#: Events of the step protocol, one-cycle strobes (mutually exclusive but ``transfer`` is
#: never high with another): ``load`` (with ``seed``), ``warm`` (a generator step without a
#: word), ``init`` (step 0 starts), ``advance`` (a new step starts), ``replay`` (the step
#: restarts), ``transfer`` (a word was taken).
ControlSignature = wiring.Signature({
    "seed": Out(32), "load": Out(1), "warm": Out(1), "init": Out(1), "advance": Out(1),
    "replay": Out(1), "transfer": Out(1),
})

#: Commands of a :class:`~zohw.hw.generators.GeneratorBank`: ``load`` seeds it from ``seed``;
#: ``restore`` returns to the checkpoint, else ``step`` advances one step; ``checkpoint`` saves
#: the current state (and may coincide with ``step``).
CommandSignature = wiring.Signature({
    "seed": Out(32), "load": Out(1), "step": Out(1), "checkpoint": Out(1), "restore": Out(1),
})

#: Pool fill handshake: the fill is seeded on ``load``, runs while ``fill`` is high and raises
#: ``done`` in its last cycle.
FillSignature = wiring.Signature({
    "seed": Out(32), "load": Out(1), "fill": Out(1), "done": In(1),
})


class Sequencer(wiring.Component):
    """Phase of the engine: ``load`` → [FILL until the pool is done] → [WARM if there are
    stream generators] → INIT → RUN.

    Parameters
    ----------
    pool : bool
        The strategy fills a pool after each ``load``.
    warm : bool
        There are stream generators, which take one warm-up step before INIT.
    """

    def __init__(self, *, pool, warm):
        self._pool, self._warm = bool(pool), bool(warm)
        members = {
            "seed": In(32), "load": In(1), "advance": In(1), "replay": In(1), "ready": In(1),
            "busy": Out(1), "valid": Out(1), "phase": Out(Phase),
            "ctl": Out(ControlSignature), "gen": Out(CommandSignature),
        }
        if self._pool:
            members["fill"] = Out(FillSignature)
        super().__init__(members)

    @property
    def pool(self):
        return self._pool

    @property
    def warm(self):
        return self._warm

    def elaborate(self, platform):
        m = Module()
        phase = self.phase
        running = phase == Phase.RUN
        strobe = self.load | self.advance | self.replay
        after_fill = Phase.WARM if self._warm else Phase.INIT

        with m.If(self.load):
            m.d.sync += phase.eq(Phase.FILL if self._pool else after_fill)
        with m.Elif(phase == Phase.FILL):
            if self._pool:
                with m.If(self.fill.done):
                    m.d.sync += phase.eq(after_fill)
        with m.Elif(phase == Phase.WARM):
            m.d.sync += phase.eq(Phase.INIT)
        with m.Elif(phase == Phase.INIT):
            m.d.sync += phase.eq(Phase.RUN)

        ctl, gen = self.ctl, self.gen
        m.d.comb += [
            self.busy.eq(~running),
            self.valid.eq(running & ~strobe),
            ctl.seed.eq(self.seed),
            ctl.load.eq(self.load),
            ctl.warm.eq(~self.load & (phase == Phase.WARM)),
            ctl.init.eq(~self.load & (phase == Phase.INIT)),
            # replay wins over advance if both are (wrongly) strobed together
            ctl.replay.eq(~self.load & running & self.replay),
            ctl.advance.eq(~self.load & running & self.advance & ~self.replay),
            ctl.transfer.eq(self.valid & self.ready),
            gen.seed.eq(self.seed),
            gen.load.eq(self.load),
            gen.step.eq(ctl.warm | ctl.transfer),
            gen.checkpoint.eq(ctl.init | ctl.advance),
            gen.restore.eq(ctl.replay),
        ]
        if self._pool:
            m.d.comb += [
                self.fill.seed.eq(self.seed),
                self.fill.load.eq(self.load),
                self.fill.fill.eq(~self.load & (phase == Phase.FILL)),
            ]
        return m
