"""The trainer's controller: the FSM that sequences a run of ZO steps (see
:mod:`zohw.hw.trainer` for the phases), the step and cycle counters and the step results."""

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Controller", "State"]


class State(enum.Enum, shape=4):
    IDLE = 0
    LOAD = 1
    PREP = 2
    PERTURB_PLUS = 3
    FORWARD_PLUS = 4
    REPLAY_1 = 5
    PERTURB_MINUS = 6
    FORWARD_MINUS = 7
    DIFF = 8
    REPLAY_2 = 9
    UPDATE = 10
    ADVANCE = 11


class Controller(wiring.Component):
    """Members
    -------
    start, stop : In(1)
        Strobes: start a run (while idle); finish after the current step.
    steps : In(32)
        Steps to run, sampled on ``start``; 0 runs until ``stop``.
    empty : In(1)
        No samples loaded (the run ends at once).
    prepared : In(1)
        The sample memory's stride is reduced; ``engine_busy``: the engine is warming up.
    writes_done, forward_done : In(1)
        The last write of a write phase / the last loss cycle of a forward pass, this cycle.
    loss : In(signed(loss_bits + 1))
        The loss unit's accumulator: L+ at the end of FORWARD_PLUS, L- at the end of
        FORWARD_MINUS.
    g_step : In(signed(diff_bits))
        The step's saturated difference (from the update unit).
    state : Out(State)
    diff : Out(signed(loss_bits + 2))
        L+ - loss (valid in DIFF).
    busy, done, step_done, step, l_plus, l_minus, g, step_cycles, cycles
        The trainer's status ports (see :class:`zohw.hw.trainer.ZOTrainer`).
    """

    def __init__(self, *, loss_bits, diff_bits):
        super().__init__({
            "start": In(1),
            "stop": In(1),
            "steps": In(32),
            "empty": In(1),
            "prepared": In(1),
            "engine_busy": In(1),
            "writes_done": In(1),
            "forward_done": In(1),
            "loss": In(signed(loss_bits + 1)),
            "g_step": In(signed(diff_bits)),
            "state": Out(State),
            "diff": Out(signed(loss_bits + 2)),
            "busy": Out(1),
            "done": Out(1),
            "step_done": Out(1),
            "step": Out(32),
            "l_plus": Out(signed(loss_bits + 1)),
            "l_minus": Out(signed(loss_bits + 1)),
            "g": Out(signed(diff_bits)),
            "step_cycles": Out(32),
            "cycles": Out(48),
        })

    def elaborate(self, platform):
        m = Module()
        state = self.state
        idle = state == State.IDLE
        steps = Signal(32)
        stop_req = Signal()
        step = Signal(32)
        sc = Signal(32)                         # cycles of the current step so far
        lp = Signal.like(self.loss)
        m.d.comb += [self.busy.eq(~idle), self.diff.eq(lp - self.loss)]
        m.d.sync += self.step_done.eq(0)
        with m.If(~idle):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        with m.If(~idle & self.stop):
            m.d.sync += stop_req.eq(1)

        def after(done, nxt):
            with m.If(done):
                m.d.sync += state.eq(nxt)

        with m.Switch(state):
            with m.Case(State.IDLE):
                with m.If(self.start):
                    m.d.sync += [state.eq(State.LOAD), self.done.eq(0), stop_req.eq(0),
                                 steps.eq(self.steps), self.cycles.eq(0)]
            with m.Case(State.LOAD):
                m.d.sync += [step.eq(0), sc.eq(0)]
                with m.If(self.empty):
                    m.d.sync += [state.eq(State.IDLE), self.done.eq(1)]
                with m.Else():
                    m.d.sync += state.eq(State.PREP)
            with m.Case(State.PREP):
                after(self.prepared & ~self.engine_busy, State.PERTURB_PLUS)
            with m.Case(State.PERTURB_PLUS):
                after(self.writes_done, State.FORWARD_PLUS)
            with m.Case(State.FORWARD_PLUS):
                after(self.forward_done, State.REPLAY_1)
            with m.Case(State.REPLAY_1):
                m.d.sync += [lp.eq(self.loss), state.eq(State.PERTURB_MINUS)]
            with m.Case(State.PERTURB_MINUS):
                after(self.writes_done, State.FORWARD_MINUS)
            with m.Case(State.FORWARD_MINUS):
                after(self.forward_done, State.DIFF)
            with m.Case(State.DIFF):
                m.d.sync += state.eq(State.REPLAY_2)
            with m.Case(State.REPLAY_2):
                m.d.sync += state.eq(State.UPDATE)
            with m.Case(State.UPDATE):
                after(self.writes_done, State.ADVANCE)
            with m.Case(State.ADVANCE):
                m.d.sync += [
                    self.step_done.eq(1), self.step.eq(step), self.l_plus.eq(lp),
                    self.l_minus.eq(self.loss), self.g.eq(self.g_step),
                    self.step_cycles.eq(sc + 1), step.eq(step + 1),
                ]
                last_step = (steps != 0) & (step + 1 == steps)
                with m.If(stop_req | last_step):
                    m.d.sync += [state.eq(State.IDLE), self.done.eq(1)]
                with m.Else():
                    m.d.sync += state.eq(State.PERTURB_PLUS)

        in_step = ~idle & (state != State.LOAD) & (state != State.PREP)
        with m.If(state == State.ADVANCE):
            m.d.sync += sc.eq(0)
        with m.Elif(in_step):
            m.d.sync += sc.eq(sc + 1)
        return m
