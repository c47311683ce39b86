"""The zeroth-order (SPSA/MeZO) trainer: a controller that runs whole training steps on its own.

:class:`ZOTrainer` joins small components: the :class:`~zohw.hw.engine.PerturbationEngine`, the
CIM macro of every layer (``TrainerConfig.layer_cims``; made by the injected ``macro`` factory,
default :class:`zohw.hw.cim.BehaviouralCIMMacro`), the :class:`~.sample_memory.SampleMemory`,
the :class:`~.controller.Controller` (the FSM), the :class:`~.write_pipeline.WritePipeline`,
the :class:`~.update_unit.UpdateUnit`, the MLP's :class:`~.requantiser.Requantiser` and the
:class:`~.loss_unit.LossUnit` (its term from the loss plug-in, :mod:`zohw.losses`). Its integer
arithmetic is the golden model's, :func:`zohw.sw.train.golden_step`, bit for bit; its schedule
is the one cycle model, :class:`zohw.hw.plan.TrainerPlan` (the table below, for read latency
RL = 1).

One step s (d weights, flat order layer by layer, row-major ``r * cols + c``; every layer
banked in groups of L = ``write_lanes`` weights, ``W = sum_l ceil(rows_l * cols_l / L)``)
--------------------------------------------------------------------------------------------
============== ============ ===================================================================
phase          cycles       what happens
============== ============ ===================================================================
PERTURB_PLUS   W + 2        read w, write ``w + delta`` (a lane with delta = 0 is not written)
FORWARD_PLUS   Fw           the mini-batch through the CIM macro(s) and the loss unit: L+
REPLAY_1       1            ``replay`` strobe to the engine
PERTURB_MINUS  W + 2        read ``w + delta``, write ``w - delta`` (not when delta = 0)
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

Write pipeline (:mod:`zohw.hw.write_pipeline`; the three write phases share it)::

    stage 0  issue: banked CIM read of group g (L weights), its L engine words
    stage 1  read data valid (CIMSignature.read_latency = 1); w + delta / w - 2 delta -> write reg
             UPDATE: p = gz * z, w = (w - delta) + delta (L lanes)        -> update reg
    stage 2  CIM write (perturb phases); UPDATE: round, add, saturate, count   -> write reg
    stage 3  CIM write (UPDATE)

One group of L weights flows per cycle; the engine's transfers of P >= L words are realigned to
the groups by a word buffer (a layer may start mid-transfer; the padding words past d of a
step's last transfer are dropped). A lane whose value equals the cell's content is not written.
The write-count memory (L counters per group) is updated once per step and group in the UPDATE
phase with the step's issued writes, ``2 * (delta != 0) + (w_new != w - delta)`` per lane
(read-modify-write, stage 1 read, stage 2 write) — the counts of the golden's ``writes``.

Forward pass (``Fw`` cycles; ``cpv`` = ``cycles_per_vector`` of a macro, C classes, n layers)::

    cycle 0            sample memory read of draw 0 (address register, see below)
    cycle 1 + k*I      draw k enters macro 1 (I = max(cpv..., C): one vector per I cycles)
    hidden layers      y_l -> h = clamp(y_l >> hidden_shift, 0, 2**input_bits - 1) register
                       (1 cycle) -> macro l + 1 with the constant bias input
    loss unit          takes a result vector (1 cycle), then one class per cycle (C cycles),
                       overlapped with the next vector; the last class of the last draw ends
                       the phase

so ``Fw = 1 + B*I + (sum(cpv) - I + (n - 1)) + C + 1`` (:attr:`TrainerPlan.forward_cycles`).
Every macro is tiled (``cim.tile``): the behavioural macro has one ADC per row tile and column.

Mini-batch order: draw n (n = s*B + j, counted across steps) reads sample address
``(n * stride) mod n_samples`` (:func:`zohw.sw.data.batch_indices`): one address register, plus
``stride mod n_samples`` (reduced once after ``start`` by repeated subtraction), minus
``n_samples`` when the sum reaches it. Both forward passes of a step read the same B draws.

Losses (integers, scores ``s_j = y_j >> logit_shift``, label y): the plug-in's term of every
class (:mod:`zohw.losses`, e.g. hinge ``max(0, margin + s_j - s_y)`` for j != y), summed over
the classes and the mini-batch (no saturation: the accumulator is as wide as the largest
possible sum, :attr:`ZOTrainer.loss_bits`).

Ports
-----
Every top-level input that reaches the engine or a macro (``seed``, the ``init_*`` write port,
``rb_addr``) passes a register first: no combinational path runs from a port into the macros.
Read-back therefore takes :attr:`ZOTrainer.readback_latency` = 2 edges, and an ``init`` write
lands one edge after it is presented.
"""

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from zohw.digits import LABEL_BITS
from zohw.train_config import TrainerConfig

from .controller import Controller, State
from .engine import PerturbationEngine
from .loss_unit import LossUnit
from .plan import TrainerPlan
from .requantiser import Requantiser
from .sample_memory import SampleMemory, sample_layout
from .update_unit import UpdateUnit
from .write_pipeline import WritePipeline

__all__ = ["ZOTrainer", "TrainerPlan", "State", "sample_layout", "trainer_verilog",
           "TRAINER_TOPLEVEL", "RUNTIME_FIELDS", "LABEL_BITS"]

TRAINER_TOPLEVEL = "zohw_trainer"
#: TrainerConfig fields the hardware never reads (the configuration's run fields).
RUNTIME_FIELDS = tuple(n for n, p in TrainerConfig.fields_meta().items() if p.run)


class ZOTrainer(wiring.Component):
    """Zeroth-order trainer: runs ``steps`` ZO steps after ``start`` without outside help.

    Parameters
    ----------
    config : TrainerConfig
        Its hardware fields (all but the run fields, :data:`RUNTIME_FIELDS`) are elaborated
        (engine, CIM macros, model, loss, update rule, shifts, batch, stride).
    macro : callable
        CIM macro factory, ``macro(CIMConfig) -> component`` with signature
        ``CIMSignature(cim)`` and the properties ``cycles_per_vector`` and ``read_latency``
        (default :class:`zohw.hw.cim.BehaviouralCIMMacro`); the schedule follows its latencies.
    capacity : int
        Depth of the sample memory (samples; default: the train-set size of the configuration's
        data set, :attr:`TrainerPlan.capacity`).
    count_bits : int
        Width of a write counter (wraps around; default 32).

    Members
    -------
    samples : In(stream.Signature(sample_layout(input_bits)))
        One training sample per transfer (``inputs`` input codes + label), written at address
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

    def __init__(self, config: TrainerConfig, *, capacity=None, count_bits=32, macro=None):
        self._plan = plan = TrainerPlan(config, capacity, count_bits, macro=macro)
        cims = config.layer_cims
        ib = cims[0].input_bits
        d = config.params
        super().__init__({
            "samples": In(stream.Signature(sample_layout(ib, plan.inputs, plan.label_bits))),
            "clear": In(1),
            "n_samples": Out(range(plan.capacity + 1)),
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
        plan = self._plan
        cfg = plan.config
        m = Module()
        cims = cfg.layer_cims

        m.submodules.engine = engine = PerturbationEngine(cfg.engine)
        macros = [plan.macro(c) for c in cims]
        for l, mac in enumerate(macros):
            m.submodules[f"cim{l}"] = mac
        m.submodules.control = ctl = Controller(loss_bits=plan.loss_bits,
                                                diff_bits=cfg.diff_bits)
        m.submodules.samples = smem = SampleMemory(cims[0].input_bits, capacity=plan.capacity,
                                                   stride=cfg.stride, batch=cfg.batch,
                                                   inputs=plan.inputs,
                                                   label_bits=plan.label_bits)
        m.submodules.writes = wp = WritePipeline(cfg, read_latency=plan.read_latency,
                                                 count_bits=plan.count_bits)
        m.submodules.update = uu = UpdateUnit(cfg, loss_bits=plan.loss_bits,
                                              product_bits=plan.product_max.bit_length(),
                                              max_shift=plan.max_shift, lanes=plan.write_lanes)
        m.submodules.loss = lu = LossUnit(cfg, result_bits=cims[-1].result_bits,
                                          score_bits=plan.score_bits, loss_bits=plan.loss_bits,
                                          label_queue=plan.label_queue)

        state = ctl.state
        idle = state == State.IDLE
        fwd = (state == State.FORWARD_PLUS) | (state == State.FORWARD_MINUS)

        # Boundary registers: no combinational path from a top-level input into the macros or
        # the engine (Verilator then evaluates their logic once per clock edge, not on every
        # input change).
        seed = Signal(32)
        m.d.sync += [seed.eq(self.seed), wp.init_en.eq(self.init_en),
                     wp.init_addr.eq(self.init_addr), wp.init_data.eq(self.init_data),
                     wp.rb_addr.eq(self.rb_addr)]
        m.d.comb += [self.rb_weight.eq(wp.rb_weight), self.rb_count.eq(wp.rb_count)]

        # controller and status
        m.d.comb += [
            ctl.start.eq(self.start), ctl.stop.eq(self.stop), ctl.steps.eq(self.steps),
            ctl.empty.eq(smem.n_samples == 0), ctl.prepared.eq(smem.ready),
            ctl.engine_busy.eq(engine.busy), ctl.writes_done.eq(wp.done),
            ctl.forward_done.eq(lu.done), ctl.loss.eq(lu.loss), ctl.g_step.eq(uu.g),
        ]
        m.d.comb += [getattr(self, n).eq(getattr(ctl, n))
                     for n in ("busy", "done", "step_done", "step", "l_plus", "l_minus", "g",
                               "step_cycles", "cycles")]

        # engine
        m.d.comb += [
            engine.seed.eq(seed),
            engine.load.eq(state == State.LOAD),
            engine.replay.eq((state == State.REPLAY_1) | (state == State.REPLAY_2)),
            engine.advance.eq(state == State.ADVANCE),
        ]

        # write pipeline, update unit, CIM weight ports
        connect(m, engine.z, wp.z)
        connect(m, uu.op, wp.upd)
        for l, mac in enumerate(macros):
            connect(m, mac.read, getattr(wp, f"read{l}"))
            connect(m, mac.write, getattr(wp, f"write{l}"))
        m.d.comb += [
            wp.idle.eq(idle), wp.plus.eq(state == State.PERTURB_PLUS),
            wp.minus.eq(state == State.PERTURB_MINUS), wp.update.eq(state == State.UPDATE),
            uu.restart.eq(state == State.LOAD), uu.advance.eq(state == State.ADVANCE),
            uu.latch.eq(state == State.DIFF), uu.diff.eq(ctl.diff),
        ]

        # sample memory -> macros -> loss unit
        connect(m, flipped(self.samples), smem.samples)
        m.d.comb += [
            smem.writable.eq(idle), smem.clear.eq(self.clear),
            self.n_samples.eq(smem.n_samples),
            smem.restart.eq(state == State.LOAD), smem.active.eq(fwd),
            smem.next_batch.eq(lu.done & (state == State.FORWARD_MINUS)),
        ]
        connect(m, smem.x, macros[0].x)
        m.d.comb += [lu.label.valid.eq(smem.x.valid & smem.x.ready),
                     lu.label.payload.eq(smem.label)]
        # hidden layers: ReLU + requantisation (a register) into the next layer's inputs
        for l in range(len(macros) - 1):
            c1, c2 = cims[l], cims[l + 1]
            req = Requantiser(hidden=c1.cols, result_bits=c1.result_bits,
                              input_bits=c2.input_bits, shift=cfg.hidden_shift)
            m.submodules["requant" if l == 0 else f"requant{l}"] = req
            connect(m, macros[l].y, req.inp)
            connect(m, req.out, macros[l + 1].x)
        connect(m, macros[-1].y, lu.y)
        m.d.comb += [lu.active.eq(fwd), lu.clear.eq((state == State.PERTURB_PLUS)
                                                     | (state == State.PERTURB_MINUS))]
        return m


#: Properties of :class:`TrainerPlan` that :class:`ZOTrainer` exposes as its own.
_PLAN_PROPERTIES = ("config", "capacity", "count_bits", "params", "readback_latency",
                    "score_range", "loss_max", "loss_bits", "product_max", "max_shift",
                    "issue_interval", "write_lanes", "write_pass_cycles", "forward_cycles",
                    "cycles_per_step", "inputs", "classes", "label_bits")


def _delegate(name):
    def get(self):
        return getattr(self._plan, name)
    get.__doc__ = getattr(TrainerPlan, name).__doc__
    return property(get)


for _name in _PLAN_PROPERTIES:
    setattr(ZOTrainer, _name, _delegate(_name))
del _name


def trainer_verilog(config: TrainerConfig, name=TRAINER_TOPLEVEL, **kwargs) -> str:
    """Verilog text of :class:`ZOTrainer` flattened into one module (Amaranth writes a module
    per component; :func:`zohw.hw.verilog.flatten`); deterministic for a configuration."""
    from .verilog import flatten
    return flatten(ZOTrainer(config, **kwargs), name)
