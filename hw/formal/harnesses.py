"""Amaranth harnesses of the formal checks. A harness is a component whose input ports are the
free inputs of the check (the solver picks them every cycle, reset included); it instantiates
the shipped components, observes their ports (and, for inductive invariants, their registers
through :func:`~.observe.elaborated`) and states ``Assert``/``Assume``/``Cover``."""

from amaranth import Array, Cat, Module, Mux, Signal, signed
from amaranth.hdl import Assert, Assume, Cover
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from ..controller import Controller, State
from ..counter import StepCounter
from ..engine import PerturbationEngine
from ..fill import PoolFill
from ..generators import GeneratorBank
from ..loss_unit import LossUnit
from ..sequencer import Phase, Sequencer
from ..update_unit import UpdateUnit
from .observe import elaborated

__all__ = ["GeneratorHarness", "BlockLfsrHarness", "FillGeneratorHarness",
           "RotationHarness", "FillHarness", "RestoreHarness", "StrobeHarness",
           "ReplayHarness", "ControllerHarness", "UpdateHarness", "LossHarness"]

_STROBES = {"seed": In(32), "load": In(1), "advance": In(1), "replay": In(1), "ready": In(1)}


def _drive_sequencer(m, seq, h):
    m.d.comb += [seq.seed.eq(h.seed), seq.load.eq(h.load), seq.advance.eq(h.advance),
                 seq.replay.eq(h.replay), seq.ready.eq(h.ready)]


class GeneratorHarness(wiring.Component):
    """Sequencer + :class:`GeneratorBank` of ``count`` generators of ``source``, wired as in the
    engine. Property: once seeded (phase ≠ IDLE) no generator state is zero, and in RUN no
    checkpoint is zero (so a replay cannot restore zero). Inductive: the step is an invertible
    GF(2)-linear map."""

    def __init__(self, source, count=2):
        self._source, self._count = source, count
        super().__init__(dict(_STROBES))

    def elaborate(self, platform):
        m = Module()
        m.submodules.seq = seq = Sequencer(pool=False, warm=True)
        bank = GeneratorBank(self._source, self._count)
        m.submodules.bank, regs = elaborated(bank, platform)
        _drive_sequencer(m, seq, self)
        wiring.connect(m, seq=seq.gen, bank=bank.cmd)
        m.d.comb += Assert(seq.phase.as_value() <= Phase.RUN.value)
        for k in range(self._count):
            m.d.comb += [Assert((seq.phase == Phase.IDLE) | (regs[f"gen{k}"] != 0)),
                         Assert((seq.phase != Phase.RUN) | (regs[f"ckpt{k}"] != 0))]
        return m


class BlockLfsrHarness(wiring.Component):
    """Sequencer + the ``pezo-block`` addresser of ``config`` (its 16-bit block-offset LFSR);
    the pool fill ends whenever the environment says (``fill_done``). Property: once seeded
    the LFSR is never zero, and in RUN neither is its checkpoint."""

    def __init__(self, config):
        self._config = config
        super().__init__({**_STROBES, "fill_done": In(1)})

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        m.submodules.seq = seq = Sequencer(pool=True, warm=True)
        addresser = cfg.strategy_object.addresser(cfg)
        m.submodules.addresser, regs = elaborated(addresser, platform)
        _drive_sequencer(m, seq, self)
        m.d.comb += seq.fill.done.eq(self.fill_done & seq.fill.fill)
        wiring.connect(m, seq=seq.ctl, addresser=addresser.ctl)
        m.d.comb += [Assert(seq.phase.as_value() <= Phase.RUN.value),
                     Assert((seq.phase == Phase.IDLE) | (regs["lfsr"] != 0)),
                     Assert((seq.phase != Phase.RUN) | (regs["ckpt"] != 0))]
        return m


class FillGeneratorHarness(wiring.Component):
    """Sequencer + :class:`PoolFill` of ``config`` (adaptive scaling: the fill checkpoints its
    generator at the start of pass 0 and restores it for pass 1). Property: once seeded the
    fill generator is never zero, nor its checkpoint from pass 0 on."""

    def __init__(self, config):
        self._config = config
        super().__init__(dict(_STROBES))

    def elaborate(self, platform):
        m = Module()
        m.submodules.seq = seq = Sequencer(pool=True, warm=False)
        fill = PoolFill(self._config)
        m.submodules.fill, regs = elaborated(fill, platform)
        _drive_sequencer(m, seq, self)
        wiring.connect(m, seq=seq.fill, fill=fill.fill)
        gen, ckpt = regs["generator.gen0"], regs["generator.ckpt0"]
        stage, k, sub = regs["stage"], regs["k"], regs["sub"]
        seeded = seq.phase != Phase.IDLE
        # the checkpoint is taken in the first cycle of pass 0 (k = 0, sub = 0, MEASURE)
        checkpointed = seeded & ((stage != 0) | (k != 0) | (sub != 0))
        m.d.comb += [Assert(~seeded | (gen != 0)), Assert(~checkpointed | (ckpt != 0))]
        return m


class RotationHarness(wiring.Component):
    """Sequencer + the ``pezo-otf`` rotation counter (:class:`StepCounter` of R) with the word
    map's source index ``rot + j mod R`` folded once. Property: the counter, its checkpoint and
    every lane's source index stay below R (an index of R would silently read the last source
    of Amaranth's ``Array``). ``modulus`` other than R is the planted bug."""

    def __init__(self, sources, lanes, modulus=None):
        self._r, self._lanes = sources, lanes
        self._modulus = sources if modulus is None else modulus
        super().__init__(dict(_STROBES))

    def elaborate(self, platform):
        m = Module()
        R = self._r
        m.submodules.seq = seq = Sequencer(pool=False, warm=True)
        counter = StepCounter(self._modulus)
        m.submodules.rotation, regs = elaborated(counter, platform)
        _drive_sequencer(m, seq, self)
        wiring.connect(m, seq=seq.ctl, rotation=counter.ctl)
        rot = counter.value
        m.d.comb += [Assert(rot < R), Assert(regs["ckpt"] < R)]
        for j in range(self._lanes):
            t = rot + (j % R)
            m.d.comb += Assert(Mux(t >= R, t - R, t) < R)
        return m


class FillHarness(wiring.Component):
    """Sequencer + :class:`PoolFill` of ``config`` (the pool has ``pool`` words: by default the
    config's; a fill from another config is the planted bug). Properties: a write index is in
    range, writes happen only in FILL, the k-th write of a fill has index k, and ``done`` comes
    with the write of index N - 1. Bounded: the depth covers a whole fill."""

    def __init__(self, config, pool=None):
        self._config = config
        self._pool = config.pool if pool is None else pool
        super().__init__(dict(_STROBES))

    def elaborate(self, platform):
        m = Module()
        cfg, N = self._config, self._pool
        m.submodules.seq = seq = Sequencer(pool=True, warm=False)
        m.submodules.fill = fill = PoolFill(cfg)
        _drive_sequencer(m, seq, self)
        wiring.connect(m, seq=seq.fill, fill=fill.fill)
        w = fill.write
        expected = Signal(range(N + 1))
        with m.If(self.load):
            m.d.sync += expected.eq(0)
        with m.Elif(w.en):
            m.d.sync += expected.eq(expected + 1)
        m.d.comb += [
            Assert(~w.en | (w.index < N)),
            Assert(~w.en | (seq.phase == Phase.FILL)),
            Assert(~w.en | (w.index == expected)),
            Assert(~fill.fill.done | (w.en & (w.index == N - 1))),
        ]
        m.d.comb += Cover(fill.fill.done)
        return m


class RestoreHarness(wiring.Component):
    """Sequencer + :class:`GeneratorBank` + the rotation :class:`StepCounter`, as in the engine
    (``sequencer`` builds the sequencer: a twin passes a mutant). The harness records the
    generators' state and the counter when a step starts (``init``/``advance``). Properties
    (inductive, any number of steps and replays): in RUN the checkpoints hold that record, and
    the cycle after a replay the state and the counter equal it again — so the words, a
    function of that state, repeat."""

    def __init__(self, source="xorshift32", count=2, modulus=3, sequencer=Sequencer):
        self._source, self._count, self._modulus = source, count, modulus
        self._sequencer = sequencer
        super().__init__(dict(_STROBES))

    def elaborate(self, platform):
        m = Module()
        m.submodules.seq = seq = self._sequencer(pool=False, warm=True)
        bank = GeneratorBank(self._source, self._count)
        counter = StepCounter(self._modulus)
        m.submodules.bank, bregs = elaborated(bank, platform)
        m.submodules.counter, cregs = elaborated(counter, platform)
        _drive_sequencer(m, seq, self)
        wiring.connect(m, seq=seq.gen, bank=bank.cmd)
        m.d.comb += [counter.ctl.seed.eq(seq.ctl.seed), counter.ctl.load.eq(seq.ctl.load),
                     counter.ctl.warm.eq(seq.ctl.warm), counter.ctl.init.eq(seq.ctl.init),
                     counter.ctl.advance.eq(seq.ctl.advance),
                     counter.ctl.replay.eq(seq.ctl.replay),
                     counter.ctl.transfer.eq(seq.ctl.transfer)]
        rec_state = Signal.like(bank.state)
        rec_count = Signal.like(counter.value)
        # the step's start, seen from the engine's ports: INIT (not overridden by a load) or
        # an advance while running
        running = seq.phase == Phase.RUN
        start = ~self.load & ((seq.phase == Phase.INIT)
                              | (running & self.advance & ~self.replay))
        replay = ~self.load & running & self.replay
        with m.If(start):
            m.d.sync += [rec_state.eq(bank.state), rec_count.eq(counter.value)]
        after_replay = Signal()
        m.d.sync += after_replay.eq(replay)
        ckpts = Cat(*[bregs[f"ckpt{k}"] for k in range(self._count)])
        m.d.comb += [Assert(~running | (ckpts == rec_state)),
                     Assert(~running | (cregs["ckpt"] == rec_count)),
                     Assert(~after_replay | (bank.state == rec_state)),
                     Assert(~after_replay | (counter.value == rec_count))]
        return m


class StrobeHarness(wiring.Component):
    """The whole :class:`PerturbationEngine`. Property: ``z.valid`` is low while ``busy`` and
    in every cycle with a strobe (``load``, ``advance``, ``replay``), whatever ``z.ready``."""

    def __init__(self, config):
        self._config = config
        super().__init__(dict(_STROBES))

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = e = PerturbationEngine(self._config)
        m.d.comb += [e.seed.eq(self.seed), e.load.eq(self.load), e.advance.eq(self.advance),
                     e.replay.eq(self.replay), e.z.ready.eq(self.ready)]
        m.d.comb += [Assert(~e.busy | ~e.z.valid),
                     Assert(~(self.load | self.advance | self.replay) | ~e.z.valid)]
        return m


class ReplayHarness(wiring.Component):
    """The whole :class:`PerturbationEngine` under any strobe sequence (a strobe only while not
    busy, ``advance`` and ``replay`` not together). The harness records the first ``record``
    transfers of each step; every later transfer at a recorded position of the same step (after
    one or more replays) must carry the same words. Bounded: the cover shows a replayed transfer
    at the last recorded position (past a full pool row cycle) is reachable within the depth."""

    def __init__(self, config, record):
        self._config, self._record = config, record
        super().__init__(dict(_STROBES))

    def elaborate(self, platform):
        m = Module()
        M = self._record
        m.submodules.engine = e = PerturbationEngine(self._config)
        m.d.comb += [e.seed.eq(self.seed), e.load.eq(self.load), e.advance.eq(self.advance),
                     e.replay.eq(self.replay), e.z.ready.eq(self.ready)]
        m.d.comb += [Assume(~(self.advance | self.replay) | ~e.busy),
                     Assume(~(self.advance & self.replay))]
        width = len(e.z.payload.as_value())
        shadow = Array(Signal(width, name=f"rec{i}") for i in range(M))
        pos = Signal(range(M + 1))
        recorded = Signal(range(M + 1))
        replayed = Signal()          # a replay happened in this step
        transfer = e.z.valid & e.z.ready
        payload = e.z.payload.as_value()
        with m.If(self.load | self.advance):
            m.d.sync += [pos.eq(0), recorded.eq(0), replayed.eq(0)]
        with m.Elif(self.replay):
            m.d.sync += [pos.eq(0), replayed.eq(1)]
        with m.Elif(transfer & (pos < M)):
            m.d.sync += pos.eq(pos + 1)
            with m.If(pos == recorded):
                m.d.sync += [shadow[pos].eq(payload), recorded.eq(recorded + 1)]
        check = transfer & (pos < recorded)
        m.d.comb += Assert(~check | (payload == shadow[pos]))
        m.d.comb += Cover(check & replayed & (pos == M - 1))
        return m


class ControllerHarness(wiring.Component):
    """The trainer's :class:`Controller` with an environment that answers every wait within
    ``patience`` cycles (``prepared``/``engine_busy`` in PREP, ``writes_done`` in the write
    phases, ``forward_done`` in the forward passes).

    Properties ``props``: ``"deadlock"`` — the state is a defined one and no state but IDLE is
    held more than ``patience`` cycles (inductive); ``"run"`` — a run started in IDLE with
    1 ≤ ``steps`` ≤ ``max_steps`` is back in IDLE with ``done`` within :attr:`bound` cycles (the
    exact worst case), and after a ``stop`` within one step (bounded); the cover shows a
    run completing. ``wrap(state, writes_done, forward_done)`` lets a twin miswire an input.
    """

    def __init__(self, *, patience=2, max_steps=2, props=("deadlock", "run"), wrap=None):
        self._patience, self._max_steps = patience, max_steps
        self._props, self._wrap = tuple(props), wrap
        super().__init__({"start": In(1), "stop": In(1), "steps": In(32), "empty": In(1),
                          "prepared": In(1), "engine_busy": In(1), "writes_done": In(1),
                          "forward_done": In(1), "loss": In(signed(9)), "g_step": In(signed(8))})

    @staticmethod
    def bounds(patience=2, max_steps=2):
        """``(step, run, stop)``: cycles of one step at most (five waits and four one-cycle
        states), of a run of ``max_steps`` (LOAD, PREP and the steps), and from a ``stop`` back
        to IDLE (PREP and one step)."""
        step = 5 * patience + 4
        return step, 1 + patience + max_steps * step, 1 + patience + step

    @property
    def step_bound(self):
        return self.bounds(self._patience, self._max_steps)[0]

    @property
    def bound(self):
        return self.bounds(self._patience, self._max_steps)[1]

    @property
    def stop_bound(self):
        return self.bounds(self._patience, self._max_steps)[2]

    def elaborate(self, platform):
        m = Module()
        F = self._patience
        m.submodules.ctl = c = Controller(loss_bits=8, diff_bits=8)
        state = c.state
        writes_done, forward_done = self.writes_done, self.forward_done
        if self._wrap is not None:
            writes_done, forward_done = self._wrap(state, writes_done, forward_done)
        m.d.comb += [c.start.eq(self.start), c.stop.eq(self.stop), c.steps.eq(self.steps),
                     c.empty.eq(self.empty), c.prepared.eq(self.prepared),
                     c.engine_busy.eq(self.engine_busy), c.writes_done.eq(writes_done),
                     c.forward_done.eq(forward_done), c.loss.eq(self.loss),
                     c.g_step.eq(self.g_step)]
        # dwell: consecutive cycles in the current state, this one included (saturating)
        prev = Signal.like(state)
        last_dwell = Signal(range(F + 3))
        dwell = Signal(range(F + 3))
        m.d.comb += dwell.eq(Mux(state == prev, Mux(last_dwell < F + 2, last_dwell + 1,
                                                     last_dwell), 1))
        m.d.sync += [prev.eq(state), last_dwell.eq(dwell)]
        # the environment: a wait is answered at the latest in its F-th cycle
        due = dwell >= F
        m.d.comb += [
            Assume(~((state == State.PREP) & due) | (self.prepared & ~self.engine_busy)),
            Assume(~(((state == State.PERTURB_PLUS) | (state == State.PERTURB_MINUS)
                      | (state == State.UPDATE)) & due) | self.writes_done),
            Assume(~(((state == State.FORWARD_PLUS) | (state == State.FORWARD_MINUS)) & due)
                   | self.forward_done),
        ]
        if "deadlock" in self._props:
            m.d.comb += [Assert(state.as_value() <= State.ADVANCE.value),
                         Assert((state == State.IDLE) | (dwell <= F))]
        if "run" in self._props:
            run, limited, stopping = Signal(), Signal(), Signal()
            age = Signal(range(self.bound + 2))
            since_stop = Signal(range(self.stop_bound + 2))
            started = (state == State.IDLE) & self.start
            with m.If(started):
                m.d.sync += [run.eq(1), age.eq(0), stopping.eq(0), since_stop.eq(0),
                             limited.eq((self.steps != 0) & (self.steps <= self._max_steps))]
            with m.Elif(run & (state == State.IDLE)):
                m.d.sync += run.eq(0)
            with m.Elif(run):
                with m.If(age <= self.bound):
                    m.d.sync += age.eq(age + 1)
                with m.If(self.stop):
                    m.d.sync += stopping.eq(1)
                with m.If((stopping | self.stop) & (since_stop <= self.stop_bound)):
                    m.d.sync += since_stop.eq(since_stop + 1)
            m.d.comb += [Assert(~(run & limited) | (age <= self.bound)),
                         # after a stop the current step (or PREP and the first) finishes
                         Assert(~(run & stopping) | (since_stop <= self.stop_bound)),
                         Assert(~(run & (state == State.IDLE)) | c.done)]
            m.d.comb += Cover(run & limited & (c.step == self._max_steps - 1)
                              & (state == State.IDLE) & c.done)
        return m


class UpdateHarness(wiring.Component):
    """The trainer's :class:`UpdateUnit` of ``config``. Environment: the stored weight is
    ``w - delta`` with ``w`` in the weight range and ``|delta| ≤ H``, ``z`` an engine word.
    Properties: ``w_new`` stays in ``[w_min + H, w_max - H]``; the registered product
    ``g·z`` and the multiplier ``g·lr_mult`` equal their exact (wide) values (no overflow).
    ``product_bits`` other than the plan's is the planted bug (a product register too
    narrow)."""

    def __init__(self, config, *, loss_bits, product_bits, max_shift,
                 props=("range", "exact")):
        self._config, self._props = config, tuple(props)
        self._args = dict(loss_bits=loss_bits, product_bits=product_bits, max_shift=max_shift)
        cim = config.cim
        super().__init__({"restart": In(1), "advance": In(1),
                          "diff": In(signed(loss_bits + 2)), "latch": In(1), "en": In(1),
                          "w": In(signed(cim.weight_bits + 1)),
                          "delta": In(signed(cim.weight_bits + 1)),
                          "z": In(signed(config.engine.width))})

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        lo, hi = cfg.weight_range
        H = cfg.headroom
        unit = UpdateUnit(cfg, **self._args)
        m.submodules.update, regs = elaborated(unit, platform)
        op = unit.op
        m.d.comb += [unit.restart.eq(self.restart), unit.advance.eq(self.advance),
                     unit.diff.eq(self.diff), unit.latch.eq(self.latch), op.en.eq(self.en),
                     op.w.eq(self.w - self.delta), op.delta.eq(self.delta), op.z.eq(self.z)]
        eng = cfg.engine
        m.d.comb += [Assume((self.w >= lo) & (self.w <= hi)),
                     Assume((self.delta >= -H) & (self.delta <= H)),
                     Assume((self.z >= eng.word_min) & (self.z <= eng.word_max))]
        # exact values in wide arithmetic
        g = Signal(signed(cfg.diff_bits))
        gz = Signal(signed(64))
        prod = Signal(signed(96))
        valid = Signal()
        with m.If(self.latch):
            gs = Mux(self.diff < cfg.diff_min, cfg.diff_min,
                     Mux(self.diff > cfg.diff_max, cfg.diff_max, self.diff))
            m.d.sync += g.eq(gs)
            if cfg.update == "sgd":
                m.d.sync += gz.eq(gs * cfg.lr_mult)
            else:
                m.d.sync += gz.eq(Mux(gs > 0, cfg.lr_mult, Mux(gs < 0, -cfg.lr_mult, 0)))
        with m.If(self.en):
            m.d.sync += [prod.eq(regs["gz"] * self.z), valid.eq(1)]
        if "exact" in self._props:
            gmax = cfg.lr_mult << (cfg.diff_bits - 1)     # |g · lr_mult| at most
            m.d.comb += [Assert(regs["gz"] == gz), Assert(unit.g == g),
                         Assert((gz >= -gmax) & (gz <= gmax)),
                         Assert(~valid | (regs["p"] == prod))]
        if "range" in self._props:
            m.d.comb += Assert(~valid | ((op.w_new >= lo) & (op.w_new <= hi)))
        return m


class LossHarness(wiring.Component):
    """The trainer's :class:`LossUnit`. Environment: after ``clear`` at most ``batch`` result
    vectors (any results in the output macro's result range, any labels) before the next
    ``clear``, which comes while the unit is idle, as the trainer feeds it. Property: the
    accumulated loss stays in ``[0, loss_max]`` (the accumulator never wraps). Bounded over a
    whole mini-batch. ``loss_bits`` below the plan's is the planted bug."""

    def __init__(self, config, *, result_bits, score_bits, loss_bits, loss_max):
        self._config = config
        self._args = dict(result_bits=result_bits, score_bits=score_bits, loss_bits=loss_bits)
        self._loss_max = loss_max
        from zohw.digits import CLASSES, LABEL_BITS
        super().__init__({"y": In(signed(result_bits)).array(CLASSES), "y_valid": In(1),
                          "label": In(LABEL_BITS), "active": In(1), "clear": In(1)})

    def elaborate(self, platform):
        from zohw.digits import CLASSES
        m = Module()
        cfg = self._config
        lu = LossUnit(cfg, **self._args)
        m.submodules.loss, regs = elaborated(lu, platform)
        m.d.comb += [lu.y.valid.eq(self.y_valid), lu.active.eq(self.active),
                     lu.clear.eq(self.clear), lu.label.valid.eq(self.y_valid),
                     lu.label.payload.eq(self.label)]
        m.d.comb += [lu.y.payload[c].eq(self.y[c]) for c in range(CLASSES)]
        m.d.comb += Assume(self.label < CLASSES)
        # vectors since the last clear (a vector taken with the clear counts: its terms follow)
        taken = Signal(range(cfg.batch + 2))
        m.d.sync += taken.eq(Mux(self.clear, 0, taken) + (lu.y.valid & lu.y.ready))
        last = cfg.layer_cims[-1]
        m.d.comb += [Assume((self.y[c] >= last.result_min) & (self.y[c] <= last.result_max))
                     for c in range(CLASSES)]
        m.d.comb += [Assume(taken <= cfg.batch), Assume(~self.clear | ~regs["busy"])]
        # start from a cleared accumulator (the trainer clears it before each pass)
        first = Signal(init=1)
        m.d.sync += first.eq(0)
        m.d.comb += Assume(~first | self.clear)
        m.d.comb += [Assert(lu.loss >= 0), Assert(lu.loss <= self._loss_max)]
        m.d.comb += Cover(lu.loss > self._loss_max // 2)
        return m
