"""The zeroth-order (SPSA/MeZO) trainer: a controller that runs whole training steps on its own.

:class:`ZOTrainer` wires a :class:`zohw.hw.engine.PerturbationEngine`, the
:class:`zohw.hw.cim.BehaviouralCIMMacro` of every layer (``TrainerConfig.layer_cims``), a sample
memory, a loss unit and an update unit around one controller FSM. Its integer arithmetic is the
golden model's, :func:`zohw.sw.train.golden_step`, bit for bit; its schedule is the cycle model
:func:`zohw.sw.train.cycle_breakdown` (the table below).

One step s (d weights, flat order layer by layer, row-major ``r * cols + c``)
--------------------------------------------------------------------------
============== ============ ===================================================================
phase          cycles       what happens
============== ============ ===================================================================
PERTURB_PLUS   W + 2        read w, write ``w + delta`` (suppressed when delta = 0)
FORWARD_PLUS   Fw           the mini-batch through the CIM macro(s) and the loss unit: L+
REPLAY_1       1            ``replay`` strobe to the engine
PERTURB_MINUS  W + 2        read ``w + delta``, write ``w - delta`` (suppressed when delta = 0)
FORWARD_MINUS  Fw           the same mini-batch again: L-
DIFF           1            ``g = sat(L+ - L-, diff_bits)``, ``gz = g * lr_mult`` (or sign(g))
REPLAY_2       1            ``replay`` strobe
UPDATE         W + 3        read ``w - delta``, write ``clamp(w + Delta, lo, hi)`` when it differs
ADVANCE        1            ``advance`` strobe; step results latched, ``step_done`` next cycle
============== ============ ===================================================================

``delta = shift(z * eps_mult, weight_frac - F - eps_shift)`` (``<<`` or floor ``>>``; exact,
never saturated: every stored weight keeps the headroom H = max|delta|).
``Delta = -rshift(gz * z, lr_shift + s // lr_decay)`` where ``rshift`` rounds half away from zero
(``rounding="nearest"``: ``sign(p) * ((|p| + 2**(k-1)) >> k)``) or floors (``"floor"``: ``p >> k``).
``lo, hi = TrainerConfig.weight_range`` (saturating weights).

Write pipeline (the three write phases share it; ``W = d`` cycles with ``write_lanes = 1``)::

    stage 0  issue: CIM read of weight i, engine transfer into the lane buffer on lane 0
    stage 1  read data valid (CIMSignature.read_latency = 1); w + delta / w - 2 delta -> write reg
             UPDATE: p = gz * z, w = (w - delta) + delta                     -> update reg
    stage 2  CIM write (perturb phases); UPDATE: round, add, saturate, count   -> write reg
    stage 3  CIM write (UPDATE)

One weight flows per cycle; an engine transfer of P words feeds P consecutive weights (the
padding lanes past d of a step's last transfer are dropped). A write whose value equals the cell's
content is suppressed. The write-count memory is updated once per step and weight in the UPDATE
phase with the step's issued writes, ``2 * (delta != 0) + (w_new != w - delta)``
(read-modify-write, stage 1 read, stage 2 write) — the counts of the golden's ``writes``.

Forward pass (``Fw`` cycles; ``cpv`` = ``cycles_per_vector`` of a macro, C = 10 classes)::

    cycle 0            sample memory read of draw 0 (address register, see below)
    cycle 1 + k*I      draw k enters macro 1 (I = max(cpv..., C): one vector per I cycles)
    mlp                y1 -> h = clamp(y1 >> hidden_shift, 0, 2**input_bits - 1) register
                       (1 cycle) -> macro 2 with the constant bias input
    loss unit          takes a result vector (1 cycle), then one class per cycle (C cycles),
                       overlapped with the next vector; the last class of the last draw ends
                       the phase

so ``Fw = 1 + B*I + (sum(cpv) - I + [mlp]) + C + 1`` — the golden's ``_forward_pass`` whenever
``max(cpv) >= C`` (the default: cpv = 12).

Mini-batch order: draw n (n = s*B + j, counted across steps) reads sample address
``(n * stride) mod n_samples`` (:func:`zohw.sw.data.batch_indices`): one address register, plus
``stride mod n_samples`` (reduced once after ``start`` by repeated subtraction), minus
``n_samples`` when the sum reaches it. Both forward passes of a step read the same B draws.

Losses (integers, scores ``s_j = y_j >> logit_shift``, label y): hinge
``sum_{j != y} max(0, margin + s_j - s_y)``; mse ``sum_j (s_j - t_j)**2`` with
``t_y = target``, 0 elsewhere; summed over the mini-batch (no saturation: the accumulator is as
wide as the largest possible sum, :attr:`ZOTrainer.loss_bits`).

Ports
-----
Every top-level input that reaches the engine or a macro (``seed``, the ``init_*`` write port,
``rb_addr``) passes a register first: no combinational path runs from a port into the macros.
Read-back therefore takes :attr:`ZOTrainer.readback_latency` = 2 edges, and an ``init`` write
lands one edge after it is presented.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from zohw.train_config import CLASSES, PIXELS, TrainerConfig

from .cim import BehaviouralCIMMacro, CIMSignature
from .engine import PerturbationEngine

__all__ = ["ZOTrainer", "TrainerPlan", "State", "sample_layout", "trainer_verilog",
           "flat_verilog", "TRAINER_TOPLEVEL", "RUNTIME_FIELDS", "WRITE_PIPE", "UPDATE_PIPE",
           "SAMPLE_READ", "REQUANT", "DIFF", "STROBES", "LABEL_BITS"]

TRAINER_TOPLEVEL = "zohw_trainer"
#: TrainerConfig fields the hardware never reads (run-time inputs or host-side only).
RUNTIME_FIELDS = ("seed", "steps", "init", "init_bits", "eval_every")
#: Pipeline depths of the schedule (the same constants as the golden's cycle model).
WRITE_PIPE = 2
UPDATE_PIPE = 3
SAMPLE_READ = 1
REQUANT = 1
DIFF = 1
STROBES = 3
#: Bits of a class label.
LABEL_BITS = max(1, (CLASSES - 1).bit_length())
#: Depth of the label queue between the sample memory and the loss unit (vectors in flight).
LABEL_QUEUE = 4


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


def sample_layout(input_bits):
    """Payload of the sample stream: 64 pixel codes (pixel r at bits ``[r*input_bits, ...)``),
    then the label."""
    return data.StructLayout({
        "x": data.ArrayLayout(unsigned(input_bits), PIXELS),
        "label": unsigned(LABEL_BITS),
    })


def _bits(n):
    """Bits of an unsigned integer n >= 0 (at least 1)."""
    return max(1, int(n).bit_length())


def _clamp(v, lo, hi):
    return Mux(v < lo, lo, Mux(v > hi, hi, v))


def _const_shift(v, k):
    """``v << k`` for k >= 0, arithmetic ``v >> -k`` otherwise (constant k)."""
    return v << k if k >= 0 else v >> -k


class TrainerPlan:
    """Geometry and schedule of the trainer for a configuration (plain Python, no hardware):
    the widths and the analytic cycle counts :class:`ZOTrainer` elaborates to.

    Parameters
    ----------
    config : TrainerConfig
    capacity : int
        Depth of the sample memory.
    count_bits : int
        Width of a write counter.
    """

    def __init__(self, config: TrainerConfig, capacity=2048, count_bits=32):
        if not isinstance(config, TrainerConfig):
            raise TypeError(f"config must be a TrainerConfig, not {config!r}")
        if config.cim.write_lanes != 1:
            raise ValueError("ZOTrainer reads one weight per cycle: cim.write_lanes must be 1, "
                             f"not {config.cim.write_lanes}")
        if CIMSignature.read_latency < 1:
            raise ValueError("the CIM read port must have a latency of at least 1")
        if not 1 <= capacity <= 1 << 20:
            raise ValueError(f"capacity must be from 1 to 2**20, not {capacity}")
        if not 1 <= count_bits <= 64:
            raise ValueError(f"count_bits must be from 1 to 64, not {count_bits}")
        self._cfg = config
        self._capacity = capacity
        self._count_bits = count_bits

    @property
    def config(self):
        return self._cfg

    @property
    def capacity(self):
        return self._capacity

    @property
    def count_bits(self):
        return self._count_bits

    @property
    def params(self):
        """d: weights per step."""
        return self._cfg.params

    @property
    def readback_latency(self):
        """Edges from ``rb_addr`` to ``rb_weight``/``rb_count``: the boundary register, then
        the CIM read port."""
        return 1 + CIMSignature.read_latency

    @property
    def score_range(self):
        """(min, max) of a score ``y >> logit_shift`` of the output layer."""
        last = self._cfg.layer_cims[-1]
        ls = self._cfg.logit_shift
        return last.result_min >> ls, last.result_max >> ls

    @property
    def loss_max(self):
        """Largest mini-batch loss."""
        cfg = self._cfg
        smin, smax = self.score_range
        if cfg.loss == "hinge":
            per_sample = (CLASSES - 1) * (cfg.margin + smax - smin)
        else:
            t = cfg.target
            per_sample = CLASSES * max((smin - t) ** 2, (smax - t) ** 2, smin ** 2, smax ** 2)
        return cfg.batch * per_sample

    @property
    def loss_bits(self):
        """Bits of an (unsigned) mini-batch loss."""
        return _bits(self.loss_max)

    @property
    def product_max(self):
        """Largest |gz * z| of the update."""
        cfg = self._cfg
        gmax = (1 << (cfg.diff_bits - 1)) if cfg.update == "sgd" else 1
        return gmax * cfg.lr_mult * (1 << (cfg.engine.width - 1))

    @property
    def max_shift(self):
        """Update shifts beyond this give the same result (the decayed shift saturates here)."""
        return max(self._cfg.lr_shift, _bits(self.product_max) + 1)

    @property
    def issue_interval(self):
        """I: cycles between vectors of the forward pass (slowest macro or the loss unit)."""
        return max(max(c.cycles_per_vector for c in self._cfg.layer_cims), CLASSES)

    @property
    def write_pass_cycles(self):
        """W: issue cycles of one write pass (one weight per cycle)."""
        return self._cfg.params

    @property
    def forward_cycles(self):
        """Fw: cycles of one forward pass, loss included (see the module docstring)."""
        cfg = self._cfg
        cpv = [c.cycles_per_vector for c in cfg.layer_cims]
        I = self.issue_interval
        extra = sum(cpv) - I + (REQUANT if cfg.model == "mlp" else 0)
        return SAMPLE_READ + cfg.batch * I + extra + CLASSES + 1

    def cycle_breakdown(self):
        """Cycles of every phase of a step in this RTL's schedule."""
        w, f = self.write_pass_cycles, self.forward_cycles
        return {"perturb_plus": w + WRITE_PIPE, "forward_plus": f,
                "perturb_minus": w + WRITE_PIPE, "forward_minus": f, "difference": DIFF,
                "update": w + UPDATE_PIPE, "strobes": STROBES}

    @property
    def cycles_per_step(self):
        """Cycles per step of this RTL (exact: the schedule has no data-dependent stalls)."""
        return sum(self.cycle_breakdown().values())



class ZOTrainer(wiring.Component):
    """Zeroth-order trainer: runs ``steps`` ZO steps after ``start`` without outside help.

    Parameters
    ----------
    config : TrainerConfig
        Everything but :data:`RUNTIME_FIELDS` is elaborated into the hardware (engine, CIM
        macros, model, loss, update rule, shifts, batch, stride). ``cim.write_lanes`` must be 1
        (one read port: one weight per cycle).
    capacity : int
        Depth of the sample memory (samples; default 2048 ≥ 1 433 digits train samples).
    count_bits : int
        Width of a write counter (wraps around; default 32).

    Members
    -------
    samples : In(stream.Signature(sample_layout(input_bits)))
        One training sample per transfer (64 pixel codes + label), written at address
        ``n_samples`` (then incremented). Ready while idle and not full.
    clear : In(1)
        Strobe (while idle): empty the sample memory (``n_samples`` ← 0).
    n_samples : Out(range(capacity + 1))
        Samples loaded; the modulus of the mini-batch order.
    seed : In(32)
        Engine seed, sampled on ``start`` (engine ``load``).
    steps : In(32)
        Steps to run, sampled on ``start``; 0 runs until ``stop``.
    start : In(1)
        Strobe (while idle): load the engine, restart the mini-batch order at draw 0 and the
        update shift at ``lr_shift``, then run steps 0, 1, ….
    stop : In(1)
        Strobe: finish after the current step.
    busy : Out(1)
        High from ``start`` until the last step is done.
    done : Out(1)
        High after a run finished (until the next ``start``).
    step_done : Out(1)
        One-cycle strobe the cycle after a step's last cycle; ``step``, ``l_plus``, ``l_minus``,
        ``g`` and ``step_cycles`` then hold that step's values until the next strobe.
    step : Out(32)
        Index of the step reported by the last ``step_done`` (0-based).
    l_plus, l_minus : Out(signed(loss_bits + 1))
        The step's mini-batch losses L+ and L-.
    g : Out(signed(diff_bits))
        The step's saturated loss difference.
    step_cycles : Out(32)
        Cycles of the step (PERTURB_PLUS through ADVANCE).
    cycles : Out(48)
        Cycles since ``start`` (engine load included); counts while ``busy``.
    init_en, init_addr, init_data : In(1), In(range(d)), In(signed(weight_bits))
        Weight write port (while idle): flat index, value; registered, so the write takes
        effect one edge later. Not counted as a training write.
    rb_addr : In(range(d))
        Read-back address (flat index; while idle).
    rb_weight : Out(signed(weight_bits))
        The weight at ``rb_addr``, :attr:`readback_latency` cycles after the address.
    rb_count : Out(count_bits)
        The write count of that weight (same latency).
    """

    def __init__(self, config: TrainerConfig, *, capacity=2048, count_bits=32):
        self._plan = plan = TrainerPlan(config, capacity, count_bits)
        self._cfg = config
        self._capacity = capacity
        self._count_bits = count_bits
        cims = config.layer_cims
        ib = cims[0].input_bits
        d = config.params
        super().__init__({
            "samples": In(stream.Signature(sample_layout(ib))),
            "clear": In(1),
            "n_samples": Out(range(capacity + 1)),
            "seed": In(32),
            "steps": In(32),
            "start": In(1),
            "stop": In(1),
            "busy": Out(1),
            "done": Out(1),
            "step_done": Out(1),
            "step": Out(32),
            "l_plus": Out(signed(plan.loss_bits + 1)),
            "l_minus": Out(signed(plan.loss_bits + 1)),
            "g": Out(signed(config.diff_bits)),
            "step_cycles": Out(32),
            "cycles": Out(48),
            "init_en": In(1),
            "init_addr": In(range(max(2, d))),
            "init_data": In(signed(config.cim.weight_bits)),
            "rb_addr": In(range(max(2, d))),
            "rb_weight": Out(signed(config.cim.weight_bits)),
            "rb_count": Out(count_bits),
        })

    @property
    def plan(self):
        """The :class:`TrainerPlan` (widths and schedule) of this trainer."""
        return self._plan

    def cycle_breakdown(self):
        """Cycles of every phase of a step (see :meth:`TrainerPlan.cycle_breakdown`)."""
        return self._plan.cycle_breakdown()

    # -- elaboration ----------------------------------------------------------------------------

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()
        cims = cfg.layer_cims
        nl = len(cims)
        sizes = cfg.layer_sizes
        d = cfg.params
        ecfg = cfg.engine
        P, B = ecfg.lanes, ecfg.width
        wb = cfg.cim.weight_bits
        ib = cims[0].input_bits
        imax = cims[0].input_max
        RL = CIMSignature.read_latency
        batch = cfg.batch
        lo, hi = cfg.weight_range

        m.submodules.engine = engine = PerturbationEngine(ecfg)
        macros = []
        for l, c in enumerate(cims):
            mac = BehaviouralCIMMacro(c)
            m.submodules[f"cim{l}"] = mac
            macros.append(mac)

        state = Signal(State)
        idle = state == State.IDLE

        # Boundary registers: no combinational path from a top-level input into the macros or
        # the engine (Verilator then evaluates their logic once per clock edge, not on every
        # input change; see the module docstring).
        seed = Signal(32)
        init_en = Signal()
        init_addr = Signal.like(self.init_addr)
        init_data = Signal.like(self.init_data)
        rb_addr = Signal.like(self.rb_addr)
        m.d.sync += [seed.eq(self.seed), init_en.eq(self.init_en), init_addr.eq(self.init_addr),
                     init_data.eq(self.init_data), rb_addr.eq(self.rb_addr)]
        m.d.comb += self.busy.eq(~idle)

        # -- sample memory ---------------------------------------------------------------------
        cap = self._capacity
        sbits = PIXELS * ib + LABEL_BITS
        m.submodules.samples = smem = memory.Memory(shape=unsigned(sbits), depth=cap, init=[])
        swr = smem.write_port()
        srd = smem.read_port()
        n = self.n_samples
        m.d.comb += [
            self.samples.ready.eq(idle & (n < cap)),
            swr.addr.eq(n),
            swr.data.eq(self.samples.payload.as_value()),
            swr.en.eq(self.samples.valid & self.samples.ready),
        ]
        with m.If(swr.en):
            m.d.sync += n.eq(n + 1)
        with m.If(idle & self.clear):
            m.d.sync += n.eq(0)

        # -- run control -----------------------------------------------------------------------
        steps_reg = Signal(32)
        stop_req = Signal()
        step = Signal(32)
        sc = Signal(32)                         # cycles of the current step so far
        cyc = self.cycles
        stride_bits = max(_bits(cfg.stride), _bits(cap))
        smod = Signal(stride_bits)              # stride mod n_samples
        a_base = Signal(range(cap))             # address of the step's first draw
        m.d.comb += [
            engine.seed.eq(seed),
            engine.load.eq(state == State.LOAD),
            engine.replay.eq((state == State.REPLAY_1) | (state == State.REPLAY_2)),
            engine.advance.eq(state == State.ADVANCE),
        ]
        m.d.sync += self.step_done.eq(0)
        with m.If(~idle):
            m.d.sync += cyc.eq(cyc + 1)
        with m.If(~idle & self.stop):
            m.d.sync += stop_req.eq(1)

        # update shift (lr_decay) and its rounding constant
        decay = cfg.lr_decay
        kmax = self.max_shift
        if decay:
            kreg = Signal(range(kmax + 1), init=cfg.lr_shift)
            rc = Signal(kmax + 1, init=(1 << cfg.lr_shift) >> 1)
            dc = Signal(range(decay))

        # -- the FSM ---------------------------------------------------------------------------
        wr_done = Signal()                      # last write of a write phase this cycle
        fwd_done = Signal()                     # last loss cycle of a forward phase
        lp = Signal(signed(self.loss_bits + 1))
        lm = Signal(signed(self.loss_bits + 1))
        g = Signal(signed(cfg.diff_bits))
        gz_shape = signed(cfg.diff_bits + 5)
        gz = Signal(gz_shape)

        with m.Switch(state):
            with m.Case(State.IDLE):
                with m.If(self.start):
                    m.d.sync += [state.eq(State.LOAD), self.done.eq(0), stop_req.eq(0),
                                 steps_reg.eq(self.steps), cyc.eq(0)]
            with m.Case(State.LOAD):
                m.d.sync += [step.eq(0), a_base.eq(0), smod.eq(cfg.stride), sc.eq(0)]
                if decay:
                    m.d.sync += [kreg.eq(cfg.lr_shift), rc.eq((1 << cfg.lr_shift) >> 1),
                                 dc.eq(0)]
                with m.If(n == 0):
                    m.d.sync += [state.eq(State.IDLE), self.done.eq(1)]
                with m.Else():
                    m.d.sync += state.eq(State.PREP)
            with m.Case(State.PREP):
                with m.If(smod >= n):
                    m.d.sync += smod.eq(smod - n)
                with m.Elif(~engine.busy):
                    m.d.sync += state.eq(State.PERTURB_PLUS)
            with m.Case(State.PERTURB_PLUS):
                m.d.sync += lp.eq(0)
                with m.If(wr_done):
                    m.d.sync += state.eq(State.FORWARD_PLUS)
            with m.Case(State.FORWARD_PLUS):
                with m.If(fwd_done):
                    m.d.sync += state.eq(State.REPLAY_1)
            with m.Case(State.REPLAY_1):
                m.d.sync += state.eq(State.PERTURB_MINUS)
            with m.Case(State.PERTURB_MINUS):
                m.d.sync += lm.eq(0)
                with m.If(wr_done):
                    m.d.sync += state.eq(State.FORWARD_MINUS)
            with m.Case(State.FORWARD_MINUS):
                with m.If(fwd_done):
                    m.d.sync += state.eq(State.DIFF)
            with m.Case(State.DIFF):
                diff = Signal(signed(self.loss_bits + 2))
                m.d.comb += diff.eq(lp - lm)
                gs = Signal(signed(cfg.diff_bits))
                m.d.comb += gs.eq(_clamp(diff, cfg.diff_min, cfg.diff_max))
                if cfg.update == "sgd":
                    gzv = gs * cfg.lr_mult
                else:
                    gzv = Mux(gs > 0, cfg.lr_mult, Mux(gs < 0, -cfg.lr_mult, 0))
                m.d.sync += [g.eq(gs), gz.eq(gzv), state.eq(State.REPLAY_2)]
            with m.Case(State.REPLAY_2):
                m.d.sync += state.eq(State.UPDATE)
            with m.Case(State.UPDATE):
                with m.If(wr_done):
                    m.d.sync += state.eq(State.ADVANCE)
            with m.Case(State.ADVANCE):
                m.d.sync += [
                    self.step_done.eq(1), self.step.eq(step), self.l_plus.eq(lp),
                    self.l_minus.eq(lm), self.g.eq(g), self.step_cycles.eq(sc + 1),
                    step.eq(step + 1),
                ]
                if decay:
                    with m.If(dc == decay - 1):
                        m.d.sync += dc.eq(0)
                        with m.If(kreg < kmax):
                            m.d.sync += [kreg.eq(kreg + 1), rc.eq(Mux(rc == 0, 1, rc << 1))]
                    with m.Else():
                        m.d.sync += dc.eq(dc + 1)
                last_step = (steps_reg != 0) & (step + 1 == steps_reg)
                with m.If(stop_req | last_step):
                    m.d.sync += [state.eq(State.IDLE), self.done.eq(1)]
                with m.Else():
                    m.d.sync += state.eq(State.PERTURB_PLUS)

        in_step = ((state != State.IDLE) & (state != State.LOAD) & (state != State.PREP))
        with m.If(state == State.ADVANCE):
            m.d.sync += sc.eq(0)
        with m.Elif(in_step):
            m.d.sync += sc.eq(sc + 1)

        # -- write pipeline --------------------------------------------------------------------
        plus = state == State.PERTURB_PLUS
        minus = state == State.PERTURB_MINUS
        upd = state == State.UPDATE
        wphase = plus | minus | upd

        i0 = Signal(range(max(2, d)))           # stage 0: flat index
        lay0 = Signal(range(max(2, nl)))        # layer
        loc0 = Signal(range(max(2, max(sizes))))  # index within the layer
        lane0 = Signal(range(max(2, P)))
        iss_done = Signal()
        zbuf = Signal(P * B)                    # lanes 1.. of the current transfer, shifting

        need_z = lane0 == 0
        issue = wphase & ~iss_done & (~need_z | engine.z.valid)
        m.d.comb += engine.z.ready.eq(wphase & ~iss_done & need_z)
        z0 = Mux(need_z, engine.z.payload.as_value()[:B], zbuf[:B]).as_signed()

        with m.If(~wphase):
            m.d.sync += [i0.eq(0), lay0.eq(0), loc0.eq(0), lane0.eq(0), iss_done.eq(0)]
        with m.Elif(issue):
            m.d.sync += [i0.eq(i0 + 1), lane0.eq(Mux(lane0 == P - 1, 0, lane0 + 1))]
            with m.If(need_z):
                m.d.sync += zbuf.eq(engine.z.payload.as_value() >> B)
            with m.Else():
                m.d.sync += zbuf.eq(zbuf >> B)
            if nl > 1:
                last_loc = Array(Const(sz - 1, len(loc0)) for sz in sizes)[lay0]
                with m.If(loc0 == last_loc):
                    m.d.sync += [loc0.eq(0), lay0.eq(lay0 + 1)]
                with m.Else():
                    m.d.sync += loc0.eq(loc0 + 1)
            else:
                m.d.sync += loc0.eq(loc0 + 1)
            with m.If(i0 == d - 1):
                m.d.sync += iss_done.eq(1)

        # metadata delay line: stage 0 (comb) .. stage RL (the read data is valid)
        def meta(k):
            return {"valid": Signal(name=f"s{k}_valid"), "last": Signal(name=f"s{k}_last"),
                    "lay": Signal.like(lay0, name=f"s{k}_lay"),
                    "loc": Signal.like(loc0, name=f"s{k}_loc"),
                    "i": Signal.like(i0, name=f"s{k}_i"),
                    "z": Signal(signed(B), name=f"s{k}_z")}
        stages = [meta(0)]
        m.d.comb += [stages[0]["valid"].eq(issue), stages[0]["last"].eq(i0 == d - 1),
                     stages[0]["lay"].eq(lay0), stages[0]["loc"].eq(loc0),
                     stages[0]["i"].eq(i0), stages[0]["z"].eq(z0)]
        for k in range(1, RL + 1):
            st = meta(k)
            m.d.sync += [st[f].eq(stages[-1][f]) for f in st]
            stages.append(st)
        s1 = stages[RL]

        # CIM read ports: training address at stage 0, the read-back address while idle
        rb_loc = Signal.like(loc0)
        in_loc = Signal.like(loc0)
        if nl > 1:
            rb_lay = Signal.like(lay0)
            in_lay = Signal.like(lay0)
            m.d.comb += [
                rb_lay.eq(rb_addr >= sizes[0]),
                rb_loc.eq(Mux(rb_lay, rb_addr - sizes[0], rb_addr)),
                in_lay.eq(init_addr >= sizes[0]),
                in_loc.eq(Mux(in_lay, init_addr - sizes[0], init_addr)),
            ]
            rb_lay_d = rb_lay               # layer of the read data (delayed like the data)
            for k in range(RL):
                nxt = Signal.like(lay0, name=f"rb_lay_d{k + 1}")
                m.d.sync += nxt.eq(rb_lay_d)
                rb_lay_d = nxt
        else:
            in_lay = Const(0, 1)
            m.d.comb += [rb_loc.eq(rb_addr), in_loc.eq(init_addr)]
        for mac in macros:
            m.d.comb += [mac.read.en.eq(1), mac.read.addr.eq(Mux(idle, rb_loc, loc0))]
        reads = [mac.read.data for mac in macros]
        m.d.comb += self.rb_weight.eq(Array(reads)[rb_lay_d] if nl > 1 else reads[0])
        w_cur = Signal(signed(wb))
        m.d.comb += w_cur.eq(Array(reads)[s1["lay"]] if nl > 1 else reads[0])

        # write counts: read at stage RL - 1, data at stage RL, written at stage RL + 1
        m.submodules.counts = cmem = memory.Memory(shape=unsigned(self._count_bits), depth=d,
                                                  init=[])
        crd = cmem.read_port()
        cwr = cmem.write_port()
        m.d.comb += self.rb_count.eq(crd.data)
        m.d.comb += crd.addr.eq(Mux(idle, rb_addr, stages[RL - 1]["i"]))

        delta = Signal(signed(wb + 1))
        m.d.comb += delta.eq(_const_shift(s1["z"] * cfg.eps_mult, cfg.delta_shift))

        # final write register (feeds the CIM write ports)
        wr_valid = Signal()
        wr_last = Signal()
        wr_en = Signal()
        wr_lay = Signal.like(lay0)
        wr_loc = Signal.like(loc0)
        wr_data = Signal(signed(wb))
        m.d.sync += wr_valid.eq(0)
        m.d.comb += wr_done.eq(wr_valid & wr_last)

        with m.If(s1["valid"] & (plus | minus)):
            m.d.sync += [wr_valid.eq(1), wr_last.eq(s1["last"]), wr_lay.eq(s1["lay"]),
                         wr_loc.eq(s1["loc"]), wr_en.eq(delta != 0),
                         wr_data.eq(Mux(plus, w_cur + delta, w_cur - (delta << 1)))]

        # update: stage RL -> u2 registers -> write register
        u_valid = Signal()
        u_last = Signal()
        u_lay = Signal.like(lay0)
        u_loc = Signal.like(loc0)
        u_i = Signal.like(i0)
        u_wcur = Signal(signed(wb))
        u_worig = Signal(signed(wb + 1))
        pshape = signed(_bits(self.product_max) + 1)
        u_p = Signal(pshape)
        u_dnz = Signal()
        u_cnt = Signal(self._count_bits)
        m.d.sync += u_valid.eq(0)
        with m.If(s1["valid"] & upd):
            m.d.sync += [u_valid.eq(1), u_last.eq(s1["last"]), u_lay.eq(s1["lay"]),
                         u_loc.eq(s1["loc"]), u_i.eq(s1["i"]), u_wcur.eq(w_cur),
                         u_worig.eq(w_cur + delta), u_p.eq(gz * s1["z"]),
                         u_dnz.eq(delta != 0), u_cnt.eq(crd.data)]

        absp = Signal(unsigned(len(u_p)))
        m.d.comb += absp.eq(Mux(u_p < 0, -u_p, u_p))
        dmag = Signal(unsigned(len(u_p) + 1))   # |Delta| (nearest) / shifted p (floor)
        step_delta = Signal(signed(len(u_p) + 2))
        if decay:
            if cfg.rounding == "nearest":
                m.d.comb += dmag.eq((absp + rc) >> kreg)
                m.d.comb += step_delta.eq(Mux(u_p < 0, dmag, -dmag))
            else:
                m.d.comb += step_delta.eq(-(u_p >> kreg))
        else:
            k = cfg.lr_shift
            if cfg.rounding == "nearest":
                rconst = (1 << k) >> 1
                m.d.comb += dmag.eq((absp + rconst) >> k)
                m.d.comb += step_delta.eq(Mux(u_p < 0, dmag, -dmag))
            else:
                m.d.comb += step_delta.eq(-(u_p >> k))
        w_new = Signal(signed(wb))
        m.d.comb += w_new.eq(_clamp(u_worig + step_delta, lo, hi))
        u_we = Signal()
        m.d.comb += u_we.eq(w_new != u_wcur)
        with m.If(u_valid):
            m.d.sync += [wr_valid.eq(1), wr_last.eq(u_last), wr_lay.eq(u_lay),
                         wr_loc.eq(u_loc), wr_en.eq(u_we), wr_data.eq(w_new)]
        m.d.comb += [
            cwr.addr.eq(u_i),
            cwr.data.eq(u_cnt + Cat(u_we, u_dnz)),
            cwr.en.eq(u_valid),
        ]

        # CIM write ports: training writes, or the init port while idle
        for l, mac in enumerate(macros):
            m.d.comb += [
                mac.write.en.eq(Mux(idle, init_en & (in_lay == l),
                                    wr_valid & wr_en & (wr_lay == l))),
                mac.write.addr.eq(Mux(idle, in_loc, wr_loc)),
                mac.write.data[0].eq(Mux(idle, init_data, wr_data)),
            ]

        # -- forward pass ----------------------------------------------------------------------
        fwd = (state == State.FORWARD_PLUS) | (state == State.FORWARD_MINUS)
        a = Signal(range(cap))
        fetched = Signal(range(batch + 1))
        xv = Signal()                           # the sample read port holds a draw
        x1 = macros[0].x
        x1_fire = x1.valid & x1.ready
        fetch = fwd & (~xv | x1_fire)
        more = fetched != batch
        t_next = Signal(range(2 * cap + (1 << stride_bits)))
        m.d.comb += t_next.eq(a + smod)
        a_next = Mux(t_next >= n, t_next - n, t_next)
        m.d.comb += [srd.addr.eq(a), srd.en.eq(fetch)]
        with m.If(~fwd):
            m.d.sync += [a.eq(a_base), fetched.eq(0), xv.eq(0)]
        with m.Elif(fetch):
            m.d.sync += xv.eq(more)
            with m.If(more):
                m.d.sync += [a.eq(a_next), fetched.eq(fetched + 1)]
        with m.If(fwd_done & (state == State.FORWARD_MINUS)):
            m.d.sync += a_base.eq(a)
        m.d.comb += [
            x1.valid.eq(fwd & xv),
            x1.payload.as_value().eq(Cat(srd.data[:PIXELS * ib], Const(imax, ib))),
        ]
        label_in = srd.data[PIXELS * ib:]

        # label queue: pushed when a draw enters macro 0, popped when the loss unit takes it
        lq = Array(Signal(LABEL_BITS, name=f"lq{k}") for k in range(LABEL_QUEUE))
        lq_w = Signal(range(LABEL_QUEUE))
        lq_r = Signal(range(LABEL_QUEUE))
        with m.If(x1_fire):
            m.d.sync += [lq[lq_w].eq(label_in), lq_w.eq(lq_w + 1)]

        if cfg.model == "mlp":
            y1 = macros[0].y
            x2 = macros[1].x
            c1, c2 = cims
            hv = Signal()
            hreg = Signal(c1.cols * ib)
            m.d.comb += y1.ready.eq(~hv | x2.ready)
            with m.If(y1.valid & y1.ready):
                hs = [_clamp(y1.payload[c] >> cfg.hidden_shift, 0, c2.input_max)
                      for c in range(c1.cols)]
                m.d.sync += [hv.eq(1), hreg.eq(Cat(*[h[:ib] for h in hs]))]
            with m.Elif(x2.valid & x2.ready):
                m.d.sync += hv.eq(0)
            m.d.comb += [x2.valid.eq(hv),
                         x2.payload.as_value().eq(Cat(hreg, Const(c2.input_max, ib)))]

        # -- loss unit: takes a result vector, then one class per cycle ------------------------
        yl = macros[-1].y
        smin, smax = self.score_range
        sshape = signed(max(_bits(abs(smin)), _bits(smax)) + 1)
        sreg = [Signal(sshape, name=f"score{c}") for c in range(CLASSES)]
        sy = Signal(sshape)
        lab = Signal(LABEL_BITS)
        j = Signal(range(CLASSES))
        lbusy = Signal()
        ncap = Signal(range(batch + 1))
        last_class = lbusy & (j == CLASSES - 1)
        m.d.comb += yl.ready.eq(~lbusy | (j == CLASSES - 1))
        y_fire = yl.valid & yl.ready
        scores = [yl.payload[c] >> cfg.logit_shift for c in range(CLASSES)]
        m.d.comb += fwd_done.eq(last_class & (ncap == batch))

        is_y = j == lab
        cur = sreg[0]
        term = Signal(unsigned(self.loss_bits))
        if cfg.loss == "hinge":
            t = Signal(signed(sshape.width + 2 + _bits(cfg.margin)))
            m.d.comb += t.eq(cfg.margin + cur - sy)
            m.d.comb += term.eq(Mux(is_y | (t < 0), 0, t))
        else:
            dlt = Signal(signed(sshape.width + 2 + _bits(cfg.target)))
            m.d.comb += dlt.eq(cur - Mux(is_y, cfg.target, 0))
            m.d.comb += term.eq(dlt * dlt)

        with m.If(lbusy):
            m.d.sync += [j.eq(j + 1)]
            m.d.sync += [sreg[c].eq(sreg[c + 1]) for c in range(CLASSES - 1)]
            with m.If(state == State.FORWARD_PLUS):
                m.d.sync += lp.eq(lp + term)
            with m.Else():
                m.d.sync += lm.eq(lm + term)
            with m.If(j == CLASSES - 1):
                m.d.sync += [lbusy.eq(0), j.eq(0)]
        with m.If(y_fire):
            m.d.sync += [lbusy.eq(1), j.eq(0), lab.eq(lq[lq_r]), lq_r.eq(lq_r + 1),
                         sy.eq(Array(scores)[lq[lq_r]]), ncap.eq(ncap + 1)]
            m.d.sync += [sreg[c].eq(scores[c]) for c in range(CLASSES)]
        with m.If(~fwd):
            m.d.sync += ncap.eq(0)

        return m


#: Properties of :class:`TrainerPlan` that :class:`ZOTrainer` exposes as its own.
_PLAN_PROPERTIES = ("config", "capacity", "count_bits", "params", "readback_latency",
                    "score_range", "loss_max", "loss_bits", "product_max", "max_shift",
                    "issue_interval", "write_pass_cycles", "forward_cycles", "cycles_per_step")


def _delegate(name):
    def get(self):
        return getattr(self._plan, name)
    get.__doc__ = getattr(TrainerPlan, name).__doc__
    return property(get)


for _name in _PLAN_PROPERTIES:
    setattr(ZOTrainer, _name, _delegate(_name))
del _name


def flat_verilog(component, name):
    """Verilog text of ``component`` flattened into one module named ``name`` (Yosys
    ``flatten``), with :func:`zohw.hw.verilog.component_verilog`'s lint waiver header.

    The trainer instantiates the engine and the CIM macros; Amaranth writes one Verilog module
    per elaboratable, and a file holding several modules fails Verilator's ``DECLFILENAME``.
    Flattening keeps the file a single module (and the waived categories the same).
    """
    from amaranth._toolchain.yosys import find_yosys
    from amaranth.back import rtlil

    from .verilog import LINT_WAIVERS

    text = rtlil.convert(component, name=name, emit_src=False)
    yosys = find_yosys(lambda ver: ver >= (0, 40))
    script = [f"read_rtlil <<rtlil\n{text}\nrtlil", f"hierarchy -top {name}",
              "proc -nomux -norom", "flatten", f"hierarchy -top {name}", "memory_collect",
              "write_verilog -norename"]
    verilog_text = yosys.run(["-q", "-"], "\n".join(script), ignore_warnings=True)
    header = ["// Generated by zohw with Amaranth; do not edit.",
              "// Waived Verilator -Wall categories: artefacts of Yosys's write_verilog "
              "(see zohw.hw.verilog)."]
    header += [f"/* verilator lint_off {w} */" for w in LINT_WAIVERS]
    return "\n".join(header) + "\n" + verilog_text


def trainer_verilog(config: TrainerConfig, name=TRAINER_TOPLEVEL, **kwargs) -> str:
    """Verilog text of :class:`ZOTrainer`, flattened (see :func:`flat_verilog`); deterministic
    for a configuration."""
    return flat_verilog(ZOTrainer(config, **kwargs), name)
