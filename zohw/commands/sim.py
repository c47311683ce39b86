"""``zohw sim``: co-simulate generated RTL against the golden model (Verilator + cocotb).

One subcommand per block, each with the block's configuration options, writing a JSON result;
exit code 0 when everything matches, 1 on any mismatch or simulation failure, 2 for invalid
input:

``zohw sim engine --rng STRATEGY [config options] [--seed S --params D --steps T
--backpressure F] [--dump FILE.npz] --json FILE`` (also ``zohw sim perturb``) builds the engine
(the Verilator model is cached), runs every step of D weights with random back-pressure and at
least one replay per step, and compares every transfer with
:func:`zohw.sw.perturb.golden_stream`.

``zohw sim cim [CIM options] [--vectors V --phases N --seed S --backpressure F] --json FILE``
writes, reads back and streams vectors through the behavioural CIM macro, and compares every
weight and every result column with :func:`zohw.sw.cim.cim_matvec`.

``cim`` and ``trainer`` estimate the memory a run needs from its configuration before any work
and refuse one above the limit (:mod:`zohw.limits`: ``$ZOHW_MEMORY_LIMIT``, else 80 % of the
RAM).

``zohw sim trainer [trainer options] [--steps T] [--checkpoint-every N] --json FILE`` runs T
training steps on the RTL trainer and compares every step's L+, L-, g, every weight and write
count after every N steps (default 1000) and at the end with :func:`zohw.sw.train.train_golden`;
a progress bar shows the steps and the simulated cycles per second.
"""

import sys
from pathlib import Path

from zohw.errors import UsageError
from zohw.io import check_output_path, save_npz_atomic, write_json_atomic
from zohw.limits import check_memory, cim_cosim_estimate, trainer_cosim_estimate

from ._engine_options import add_engine_options, engine_config, one_line_errors

#: Keys of the result JSON of ``zohw sim engine``/``perturb`` that scripts rely on (more keys
#: may follow).
RESULT_KEYS = ("strategy", "config_hash", "words_compared", "mismatches", "steps", "replays")
#: Largest ``--params`` x ``--steps`` of ``zohw sim engine``/``perturb``: the golden stream
#: and the testbench keep every word in memory (~64 bytes a word all told), so 2**24 words
#: is about 1 GiB.
MAX_WORDS = 1 << 24
#: Steps of ``zohw sim trainer`` unless ``--steps`` is given.
TRAINER_STEPS = 200


def register(subparsers):
    parser = one_line_errors(subparsers.add_parser(
        "sim", help="co-simulate generated RTL against the golden model",
        description=__doc__.splitlines()[0].replace("``", "")))
    sub = parser.add_subparsers(dest="target", required=True)
    for name, help_ in (("engine", "cross-check a perturbation engine against its golden "
                                   "model"),
                        ("perturb", "the same as zohw sim engine")):
        p = one_line_errors(sub.add_parser(
            name, help=help_,
            description="Build the engine (Verilator or Icarus, cached) and compare every word it "
                        "emits with zohw.sw.perturb.golden_stream."))
        _engine_arguments(p)
    _cim_arguments(one_line_errors(sub.add_parser(
        "cim", help="cross-check the behavioural CIM macro against its golden model",
        description="Build the CIM macro (Verilator or Icarus, cached), write and read back its "
                    "weights and compare every result with zohw.sw.cim.cim_matvec.")))
    _trainer_arguments(one_line_errors(sub.add_parser(
        "trainer", help="cross-check the RTL trainer against its golden model",
        description="Run training steps on the Verilated RTL trainer and compare every step "
                    f"with zohw.sw.train.train_golden ({TRAINER_STEPS} steps unless --steps "
                    "is given).")))


def _json_argument(p):
    p.add_argument("--json", required=True, metavar="FILE", help="write the result here")
    _simulator_argument(p)


def _simulator_argument(p):
    from zohw.sim.build import DEFAULT_SIMULATOR, SIMULATORS

    p.add_argument("--simulator", choices=sorted(SIMULATORS), default=DEFAULT_SIMULATOR,
                   help=f"HDL simulator under cocotb (default {DEFAULT_SIMULATOR}; icarus needs "
                        "iverilog on PATH and is ~1000x slower)")


def _waves_dir(args):
    """Waveforms of a failing run go beside the JSON report."""
    return Path(args.json).resolve().parent


def _print_waves(waves):
    if waves and waves.get("path"):
        print(f"  waveform: {waves['path']} (load {waves.get('load')} step {waves.get('step')}; "
              "open with gtkwave or surfer)")
    elif waves and waves.get("error"):
        print(f"  waveform: not written ({waves['error']})")


def _engine_arguments(p):
    add_engine_options(p)
    p.add_argument("--seed", type=int, default=1, help="seed loaded into the engine (32 bit)")
    p.add_argument("--params", type=int, default=1024, metavar="D",
                   help="weights per step, d (default 1024)")
    p.add_argument("--steps", type=int, default=8, help="steps to simulate (default 8)")
    p.add_argument("--backpressure", type=float, default=0.25, metavar="F",
                   help="probability that z.ready is low in a cycle (default 0.25)")
    p.add_argument("--tb-seed", type=int, default=0,
                   help="seed of the testbench's back-pressure and replay choices")
    p.add_argument("--dump", metavar="FILE.npz",
                   help="save the golden perturbations: z (int64 [steps, d]) and lsb")
    _json_argument(p)
    p.set_defaults(func=run_perturb)


def _cim_arguments(p):
    from zohw.cim_config import CIMConfig
    from zohw.configbase import add_options

    add_options(p, CIMConfig)
    p.add_argument("--vectors", type=int, default=24, metavar="V",
                   help="input vectors per phase (default 24)")
    p.add_argument("--phases", type=int, default=2, metavar="N",
                   help="weight matrices, each later one partly rewritten (default 2)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the test data and the testbench's choices (default 0)")
    p.add_argument("--backpressure", type=float, default=0.3, metavar="F",
                   help="probability that y.ready is low in a cycle (default 0.3)")
    p.add_argument("--input-gaps", type=float, default=0.3, metavar="F",
                   help="probability of an idle cycle before an input vector (default 0.3)")
    _json_argument(p)
    p.set_defaults(func=run_cim)


def _trainer_arguments(p):
    from zohw.cim_config import CIMConfig
    from zohw.configbase import add_options
    from zohw.train_config import TrainerConfig

    from .train import _CIM_FIELDS

    add_engine_options(p, strategy_required=False)
    add_options(p, TrainerConfig)
    add_options(p, CIMConfig, _CIM_FIELDS)
    p.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                   help="also compare every weight and write count after every N steps "
                        "(default 1000; 0: only at the end)")
    _json_argument(p)
    p.set_defaults(func=run_trainer)


def _check_probability(name, value):
    if not 0.0 <= value < 1.0:
        raise UsageError(f"{name} must be in [0, 1), not {value}")


def _check_run_args(args):
    if not 0 <= args.seed <= 0xFFFF_FFFF:
        raise UsageError(f"seed must be a 32-bit unsigned integer, not {args.seed}")
    if args.params < 1:
        raise UsageError(f"params must be at least 1, not {args.params}")
    if args.steps < 1:
        raise UsageError(f"steps must be at least 1, not {args.steps}")
    _check_probability("backpressure", args.backpressure)
    if args.params * args.steps > MAX_WORDS:
        raise UsageError(f"params x steps must be at most {MAX_WORDS} words (2**24, about 1 GiB "
                         f"of golden and testbench memory), not {args.params} x {args.steps} = "
                         f"{args.params * args.steps}")


def _check_outputs(args):
    check_output_path("--json", args.json)
    if getattr(args, "dump", None) is not None:
        check_output_path("--dump", args.dump, suffix=".npz")


def _write(path, doc):
    try:
        write_json_atomic(path, doc)
    except OSError as exc:   # checked up front; this is a race (e.g. the disk filled up)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def _simulation_failed(command, exc):
    print(f"zohw sim {command}: simulation failed: {str(exc).splitlines()[0]}",
          file=sys.stderr)
    return 1


def perturb_result(config, result, *, seed, params, backpressure):
    """The JSON document of ``zohw sim perturb`` from a :func:`cross_check` result."""
    (engine,) = result["engines"]
    return {
        "strategy": config.strategy,
        "config_hash": config.config_hash,
        "words_compared": result["words_compared"],
        "mismatches": result["mismatches"],
        "steps": result["steps"],
        "replays": result["replays"],
        "config": config.as_dict(),
        "summary": config.summary(),
        "seed": seed,
        "params": params,
        "backpressure": backpressure,
        "cycles": result["cycles"],
        "load_cycles": result["load_cycles"],
        "first_mismatches": engine["first_mismatches"],
        "protocol_errors": result["protocol_errors"],
        "simulator": result.get("simulator"),
        "waves": result.get("waves"),
        "passed": result["failed"] == 0 and result["mismatches"] == 0
        and not result["protocol_errors"],
        "build_seconds": round(result["build_seconds"], 3),
        "sim_seconds": round(result["sim_seconds"], 3),
        "words_per_second": (round(result["words_per_second"], 1)
                             if result["words_per_second"] else None),
    }


def run_perturb(args):
    from zohw.progress import Spinner
    from zohw.sim.build import SimulationError
    from zohw.sim.engine import cross_check
    from zohw.sw.perturb import golden_perturbations

    config = engine_config(args)
    _check_run_args(args)
    _check_outputs(args)
    try:
        with Spinner(f"zohw sim {args.target} {config.name}") as spinner:
            result = cross_check([config], seed=args.seed, d=args.params, steps=args.steps,
                                 backpressure=args.backpressure, rng_seed=args.tb_seed,
                                 bank=False, progress=spinner.phase,
                                 simulator=args.simulator, waves_dir=_waves_dir(args))
    except SimulationError as exc:
        return _simulation_failed(args.target, exc)
    from zohw.sim.kit import format_mismatch

    doc = perturb_result(config, result, seed=args.seed, params=args.params,
                         backpressure=args.backpressure)
    _write(args.json, doc)
    if args.dump:
        import numpy as np
        import torch

        z = golden_perturbations(config, args.seed, args.params, args.steps)
        try:
            save_npz_atomic(args.dump, z=z.to(torch.int64).numpy(),
                            lsb=np.float64(config.lsb))
        except OSError as exc:
            raise UsageError(f"cannot write {args.dump}: {exc.strerror or exc}") from None
    status = "PASS" if doc["passed"] else "FAIL"
    print(f"{status} {config.summary()}: {doc['words_compared']} words compared over "
          f"{doc['steps']} steps and {doc['replays']} replays, {doc['mismatches']} mismatches")
    build = (f"built in {doc['build_seconds']:.1f} s" if doc["build_seconds"]
             else "cached model")
    wps = doc["words_per_second"]
    print(f"  {build}; simulated {doc['cycles']} cycles in {doc['sim_seconds']:.1f} s"
          + (f" ({wps:,.0f} words/s)" if wps else ""))
    for m in doc["first_mismatches"][:3]:
        print(f"  mismatch: {format_mismatch(m)}")
    for p in doc["protocol_errors"][:3]:
        print(f"  protocol error at cycle {p['cycle']}: {p['message']}")
    _print_waves(doc["waves"])
    print(f"  wrote {args.json}" + (f", {args.dump}" if args.dump else ""))
    return 0 if doc["passed"] else 1


def run_cim(args):
    from zohw.cim_config import CIMConfig
    from zohw.configbase import options_to_kwargs
    from zohw.progress import Spinner
    from zohw.sim.build import SimulationError
    from zohw.sim.cim import cim_cosim

    cfg = CIMConfig(**options_to_kwargs(args, CIMConfig))
    if args.vectors < 1:
        raise UsageError(f"vectors must be at least 1, not {args.vectors}")
    if args.phases < 1:
        raise UsageError(f"phases must be at least 1, not {args.phases}")
    _check_probability("backpressure", args.backpressure)
    _check_probability("input_gaps", args.input_gaps)
    check_memory(cim_cosim_estimate(cfg, args.vectors, args.phases))
    _check_outputs(args)
    try:
        with Spinner(f"zohw sim cim {cfg.name}") as spinner:
            result = cim_cosim(cfg, vectors=args.vectors, phases=args.phases, seed=args.seed,
                               backpressure=args.backpressure, input_gaps=args.input_gaps,
                               progress=spinner.phase, simulator=args.simulator)
    except SimulationError as exc:
        return _simulation_failed("cim", exc)
    from zohw.sim.kit import format_mismatch

    run = result["run"]
    bad = (result["mismatches"] + result["weight_mismatches"] + len(result["latency_errors"])
           + len(result["protocol_errors"]))
    passed = run["failed"] == 0 and bad == 0 and not result.get("error")
    _write(args.json, {**result, "passed": passed})
    print(f"{'PASS' if passed else 'FAIL'} {cfg.name}: {result['vectors']} vectors "
          f"({result['columns_compared']} columns) and {result['weights_read']} weight reads "
          f"compared, {result['mismatches'] + result['weight_mismatches']} mismatches; "
          f"latency {result['latency_min']} cycles")
    for m in result["first_mismatches"][:3] + result["first_weight_mismatches"][:3]:
        print(f"  mismatch: {format_mismatch(m)}")
    for e in result["latency_errors"][:3]:
        print(f"  phase {e['phase']} vector {e['vector']}: latency {e['measured']} cycles, "
              f"expected {e['expected']}")
    for p in result["protocol_errors"][:3]:
        print(f"  protocol error at cycle {p['cycle']}: {p['message']}")
    print(f"  wrote {args.json}")
    return 0 if passed else 1


class StepBar:
    """A tqdm bar of a trainer co-simulation: :meth:`phase` is the ``progress`` callback of
    :func:`zohw.sim.trainer.run_trainer_cosim` (build, simulate, …), :meth:`update` its
    ``on_progress`` (steps done and simulated cycles/s). Silent when stderr is not a terminal
    (tqdm's ``disable=None``)."""

    def __init__(self, steps, desc, *, disable=None):
        from tqdm import tqdm

        self._bar = tqdm(total=steps, desc=desc, unit="step", file=sys.stderr,
                         disable=disable, leave=False, dynamic_ncols=True)

    def phase(self, message):
        self._bar.set_description_str(message, refresh=True)

    def update(self, done, steps, cycles_per_second):
        self._bar.n = done
        self._bar.set_postfix_str(f"{cycles_per_second / 1e3:,.0f} k cycles/s", refresh=False)
        self._bar.refresh()

    def close(self):
        self._bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def run_trainer(args):
    from zohw.configbase import options_to_kwargs
    from zohw.sim.build import SimulationError
    from zohw.sim.trainer import CHECKPOINT_EVERY, run_trainer_cosim
    from zohw.train_config import TrainerConfig

    from .train import check_stride, trainer_config

    cfg = trainer_config(args)
    steps = options_to_kwargs(args, TrainerConfig, ["steps"]).get("steps", TRAINER_STEPS)
    every = CHECKPOINT_EVERY if args.checkpoint_every is None else args.checkpoint_every
    if every == 1 or every < 0:
        raise UsageError(f"checkpoint-every must be 0 (none) or at least 2, not {every}")
    check_stride(cfg)
    check_memory(trainer_cosim_estimate(cfg, steps, (steps - 1) // every if every else 0))
    _check_outputs(args)
    try:
        with StepBar(steps, f"zohw sim trainer {steps} steps") as bar:
            result = run_trainer_cosim(cfg, steps, progress=bar.phase, on_progress=bar.update,
                                       checkpoint_every=every, simulator=args.simulator,
                                       waves=True, waves_dir=_waves_dir(args))
    except SimulationError as exc:
        return _simulation_failed("trainer", exc)
    from zohw.sim.kit import format_mismatch

    _write(args.json, result)
    print(f"{'PASS' if result['passed'] else 'FAIL'} trainer {cfg.engine.strategy}: "
          f"{result['steps']} steps, {result['compared']} values compared, "
          f"{result['mismatches']} mismatches; {result['cycles_per_step']} cycles/step "
          f"(model {result['predicted_cycles_per_step']})")
    rate = result["sim_cycles_per_second"]
    print(f"  checkpoints after {result['checkpoints'] or 'no'} steps; "
          f"{result['run_cycles']} cycles simulated in {result['run_wall_seconds']:.1f} s"
          + (f" ({rate / 1e3:,.0f} k cycles/s)" if rate else ""))
    for m in result["first_mismatches"][:3]:
        print(f"  mismatch: {format_mismatch(m)}")
    if result["error"]:
        print(f"  error: {result['error']}")
    _print_waves(result.get("waves"))
    print(f"  wrote {args.json}")
    return 0 if result["passed"] else 1
