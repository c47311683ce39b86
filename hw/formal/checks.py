"""The formal checks: each property with its harness, mode and depth, and its planted-bug twin
(same harness, mutated design) that the solver must refute."""

from dataclasses import dataclass, field
from typing import Callable

from amaranth import Const

from zohw.config import EngineConfig
from zohw.train_config import TrainerConfig

from .. import addressing as addressing_module
from .. import engine as engine_module
from .. import generators as generators_module
from .. import update_unit as update_unit_module
from ..controller import State
from ..plan import TrainerPlan
from . import harnesses as h
from .mutants import identity_clamp, sequencer_factory, unguarded_seed
from .observe import patched

__all__ = ["Check", "CHECKS", "QUICK", "by_name"]


@dataclass(frozen=True)
class Check:
    """``build()`` → ``(harness, patches)``; ``expect`` is ``"pass"`` for a property of the
    shipped design and ``"fail"`` for a planted-bug twin."""
    name: str
    property: str
    mode: str
    depth: int
    build: Callable = field(repr=False)
    expect: str = "pass"
    twin_of: str | None = None


def _plain(harness):
    return lambda: (harness(), ())


# -- configurations ------------------------------------------------------------------------------

# pool strategies at P = 2, N = 8 (4 rows), B = 4; unscaled fill (8 cycles)
SHIFT = EngineConfig(strategy="pezo-shift", lanes=2, width=4, pool=8, scaling="none")
BLOCK = EngineConfig(strategy="pezo-block", lanes=2, width=4, pool=8, scaling="none")
ADAPTIVE = SHIFT.replace(scaling="adaptive")    # two fill passes: checkpoint and restore
STREAM = EngineConfig(strategy="gauss-clt", lanes=2, width=4)
# the default trainer with a mini-batch of 2 (the update unit does not depend on the batch;
# the loss unit's whole pass then fits a bounded check)
TRAINER = TrainerConfig(batch=2)
PLAN = TrainerPlan(TRAINER)


def _update(product_bits=None, props=("range", "exact")):
    return h.UpdateHarness(TRAINER, loss_bits=PLAN.loss_bits,
                           product_bits=product_bits or PLAN.product_max.bit_length(),
                           max_shift=PLAN.max_shift, props=props)


def _loss(loss_bits=None):
    return h.LossHarness(TRAINER, result_bits=TRAINER.layer_cims[-1].result_bits,
                         score_bits=PLAN.score_bits, loss_bits=loss_bits or PLAN.loss_bits,
                         loss_max=PLAN.loss_max)


_NO_RESTORE = dict(gen__restore=lambda s: Const(0), ctl__replay=lambda s: Const(0))
_VALID_IGNORES_STROBES = dict(valid=lambda s: ~s.busy)


def _replay_depth(config, record):
    """Cycles to load, fill (N), warm up, start, emit ``record`` transfers, replay and emit
    them again."""
    s = config.strategy_object
    return (1 + (config.pool if s.pool else 0) + (1 if s.stream_generators(config) else 0)
            + 1 + record + 1 + record)


def _checks():
    c = []

    def add(name, prop, mode, depth, build, twin=None):
        c.append(Check(name, prop, mode, depth, build))
        if twin is not None:
            # a twin is refuted by a counterexample: bmc, deep enough to reach the bug
            bug, twin_build, twin_depth = (*twin, depth)[:3]
            c.append(Check(f"{name}~{bug}", prop, "bmc", twin_depth, twin_build,
                           expect="fail", twin_of=name))

    for source in ("xorshift32", "lfsr32"):
        add(f"generator-nonzero-{source}", "no generator state or checkpoint is zero once "
            "seeded", "prove", 3, _plain(lambda s=source: h.GeneratorHarness(s)),
            ("unguarded-seed", lambda s=source: (
                h.GeneratorHarness(s),
                (patched(generators_module, "mixed_seed", unguarded_seed),)), 3))
    add("generator-nonzero-lfsr16", "pezo-block's block-offset LFSR and its checkpoint are "
        "never zero once seeded", "prove", 3, _plain(lambda: h.BlockLfsrHarness(BLOCK)),
        ("unguarded-seed", lambda: (h.BlockLfsrHarness(BLOCK),
                                    (patched(addressing_module, "mixed_seed", unguarded_seed),)),
         3))
    add("generator-nonzero-fill", "the pool fill's generator is never zero once seeded, nor "
        "the checkpoint its adaptive pass 1 restores", "prove", 3,
        _plain(lambda: h.FillGeneratorHarness(ADAPTIVE)),
        ("unguarded-seed", lambda: (h.FillGeneratorHarness(ADAPTIVE),
                                    (patched(generators_module, "mixed_seed", unguarded_seed),)),
         3))
    add("rotation-index", "pezo-otf's rotation and source indices stay below R (R=3, P=4)",
        "prove", 3, _plain(lambda: h.RotationHarness(3, 4)),
        ("modulus-off-by-one", lambda: (h.RotationHarness(3, 4, modulus=4), ()), 9))
    add("fill-index", "the pool fill writes indices 0..N-1 in order, only in FILL, done with "
        "N-1 (P=2, N=8)", "bmc", SHIFT.pool + 6, _plain(lambda: h.FillHarness(SHIFT)),
        ("fill-sized-2N", lambda: (h.FillHarness(SHIFT.replace(pool=16), pool=8), ())))
    c.append(Check("fill-index-cover", "a fill completes", "cover", SHIFT.pool + 6,
                   _plain(lambda: h.FillHarness(SHIFT))))
    for label, cfg in (("stream", STREAM), ("pool", BLOCK)):
        add(f"valid-{label}", f"z.valid low while busy and during strobes ({cfg.strategy})",
            "prove", 2, _plain(lambda cfg=cfg: h.StrobeHarness(cfg)),
            ("valid-ignores-strobes", lambda cfg=cfg: (
                h.StrobeHarness(cfg), (patched(engine_module, "Sequencer",
                                               sequencer_factory(**_VALID_IGNORES_STROBES)),)),
             cfg.pool + 6 if cfg.strategy_object.pool else 6))
    add("restore", "replay restores the generators and the rotation counter to the step's "
        "start (any number of steps and replays)", "prove", 3,
        _plain(lambda: h.RestoreHarness()),
        ("replay-without-restore", lambda: (h.RestoreHarness(
            sequencer=sequencer_factory(**_NO_RESTORE)), ()), 8))
    for label, cfg, record in (("pezo-shift", SHIFT, SHIFT.pool_rows), ("gauss-clt", STREAM, 2)):
        depth = _replay_depth(cfg, record)
        words = f"{record} transfers = {record * cfg.lanes} words"
        add(f"replay-{label}", f"after replay the step's words repeat ({cfg.strategy}, "
            f"P={cfg.lanes}, B={cfg.width}"
            + (f", N={cfg.pool}" if cfg.strategy_object.pool else "") + f", {words})",
            "bmc", depth, _plain(lambda cfg=cfg, r=record: h.ReplayHarness(cfg, r)),
            ("replay-without-restore", lambda cfg=cfg, r=record: (
                h.ReplayHarness(cfg, r),
                (patched(engine_module, "Sequencer", sequencer_factory(**_NO_RESTORE)),))))
        c.append(Check(f"replay-{label}-cover", "a replayed transfer at the last recorded "
                       "position is reachable", "cover", depth,
                       _plain(lambda cfg=cfg, r=record: h.ReplayHarness(cfg, r))))

    def miswired(state, writes_done, forward_done):
        return writes_done & (state != State.UPDATE), forward_done

    add("controller-deadlock", "no trainer state but IDLE is held beyond the environment's "
        "patience (F=2)", "prove", 4, _plain(lambda: h.ControllerHarness(props=("deadlock",))),
        ("update-waits-wrong-done", lambda: (h.ControllerHarness(props=("deadlock",),
                                                                 wrap=miswired), ()), 24))
    _, run_bound, stop_bound = h.ControllerHarness.bounds()
    add("controller-run", f"a run of 1..2 steps returns to IDLE with done within {run_bound} "
        f"cycles, a stop within {stop_bound}", "bmc", run_bound + 4,
        _plain(lambda: h.ControllerHarness(props=("run",))),
        ("update-waits-wrong-done", lambda: (h.ControllerHarness(props=("run",),
                                                                 wrap=miswired), ())))
    c.append(Check("controller-run-cover", "a 2-step run completes", "cover", run_bound + 4,
                   _plain(lambda: h.ControllerHarness(props=("run",)))))
    lo, hi = TRAINER.weight_range
    add("update-range", f"updated weights stay in [w_min + H, w_max - H] = [{lo}, {hi}]",
        "prove", 2, _plain(lambda: _update(props=("range",))),
        ("no-clamp", lambda: (_update(props=("range",)),
                              (patched(update_unit_module, "_clamp", identity_clamp),)), 5))
    add("update-product", "g·lr_mult and g·z are exact (no overflow)", "prove", 2,
        _plain(lambda: _update(props=("exact",))),
        ("product-2-bits-short", lambda: (_update(
            product_bits=PLAN.product_max.bit_length() - 2, props=("exact",)), ()), 5))
    loss_depth = 2 + TRAINER.batch * 10 + 2
    add("loss-accumulator", f"the mini-batch loss stays in [0, loss_max] (batch "
        f"{TRAINER.batch})", "bmc", loss_depth, _plain(_loss),
        ("accumulator-1-bit-short", lambda: (_loss(loss_bits=PLAN.loss_bits - 1), ())))
    c.append(Check("loss-accumulator-cover", "a loss above loss_max / 2 is reachable", "cover",
                   loss_depth, _plain(_loss)))
    return tuple(c)


CHECKS = _checks()

#: The subset tests/test_formal.py runs: every kind of property with its twin, the fast ones.
QUICK = tuple(n for base in (
    "generator-nonzero-xorshift32", "rotation-index", "fill-index", "valid-stream", "restore",
    "replay-gauss-clt", "controller-deadlock", "controller-run", "update-range")
    for n in (base, next(c.name for c in CHECKS if c.twin_of == base))) + (
    "update-product~product-2-bits-short", "loss-accumulator~accumulator-1-bit-short")


def by_name(name):
    for check in CHECKS:
        if check.name == name:
            return check
    raise KeyError(f"no formal check named {name!r}; known: {', '.join(c.name for c in CHECKS)}")
