"""Host side of the trainer co-simulation: run N training steps on the Verilated RTL trainer
(:class:`zohw.hw.trainer.ZOTrainer`) under :mod:`zohw.sim.tb_trainer` and compare them with the
golden model (:func:`zohw.sw.train.train_golden`).

:func:`run_trainer_cosim` is the hook of ``zohw train ... --cosim``. The Verilog text is cached
under ``$ZOHW_CACHE/trainer-verilog`` (keyed by the hardware fields of the configuration and the
sources that generate it: an elaboration costs seconds), the Verilator model by
:func:`zohw.sim.runner.build` (keyed by the Verilog text's hash).
"""

import contextlib
import hashlib
import json
import re
import os
import tempfile
import time
from pathlib import Path

from zohw.train_config import TrainerConfig
from zohw.sim.tbio import ARGS_ENV, RESULT_ENV

from .runner import cache_root, run_cocotb

__all__ = ["TB_MODULE", "TOPLEVEL", "hardware_key", "design_verilog", "pack_samples",
           "ports_public", "ports_only_public", "run_trainer_cosim", "RESULT_KEYS"]

TB_MODULE = "zohw.sim.tb_trainer"
TOPLEVEL = "zohw_trainer"
#: Keys of the result every caller (``zohw train --cosim``) relies on; more keys follow.
RESULT_KEYS = ("mode", "strategy", "steps", "test_accuracy", "train_loss", "mismatches",
               "cycles_per_step", "predicted_cycles_per_step")

_SOURCES = ("hw/trainer.py", "hw/cim.py", "hw/engine.py", "hw/verilog.py", "zohw/config.py",
            "zohw/cim_config.py", "zohw/train_config.py")


def _source_digest():
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for rel in _SOURCES:
        p = root / rel
        h.update(rel.encode())
        h.update(p.read_bytes() if p.is_file() else b"")
    try:
        from importlib import metadata
        h.update(metadata.version("amaranth").encode())
    except Exception:  # pragma: no cover
        pass
    return h.hexdigest()


def hardware_key(cfg: TrainerConfig, capacity=2048):
    """Hex key of the hardware a configuration elaborates to (run-time fields excluded)."""
    from zohw.hw.trainer import RUNTIME_FIELDS

    d = cfg.as_dict()
    for f in RUNTIME_FIELDS:
        d.pop(f, None)
    text = json.dumps({"config": d, "capacity": capacity, "src": _source_digest()},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def design_verilog(cfg: TrainerConfig, capacity=2048):
    """``(verilog, seconds)``: the trainer's Verilog (cached), and the time spent generating it
    (0.0 on a cache hit)."""
    from zohw.hw.trainer import trainer_verilog

    path = cache_root() / "trainer-verilog" / f"{hardware_key(cfg, capacity)}.v"
    if path.is_file():
        return path.read_text(), 0.0
    t0 = time.monotonic()
    text = trainer_verilog(cfg, name=TOPLEVEL, capacity=capacity)
    seconds = time.monotonic() - t0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
    return text, seconds


def pack_samples(x, y, input_bits):
    """Sample stream payloads: pixel r at bits ``[r*input_bits, ...)`` (the first 64 inputs;
    the constant bias input is the hardware's), the label above them."""
    from zohw.train_config import PIXELS

    xs = x[:, :PIXELS].tolist()
    out = []
    for row, label in zip(xs, y.tolist()):
        v = 0
        for r, p in enumerate(row):
            v |= int(p) << (r * input_bits)
        out.append(v | (int(label) << (PIXELS * input_bits)))
    return out


#: A top-level port declaration of Yosys's ``write_verilog``.
_PORT_DECL = re.compile(
    r"^(  (?:input|output) (?:signed )?(?:\[[^\]]+\] )?[A-Za-z_][A-Za-z_0-9]*);", re.M)


def ports_public(verilog):
    """``verilog`` with a ``/*verilator public_flat_rw*/`` metacomment on every top-level port
    declaration: the ports stay visible to cocotb when the model is built without
    ``--public-flat-rw`` (see :func:`ports_only_public`)."""
    text, n = _PORT_DECL.subn(r"\1 /*verilator public_flat_rw*/;", verilog)
    if not n:
        raise ValueError("no top-level port declaration found")
    return text


@contextlib.contextmanager
def ports_only_public():
    """Build Verilator models without ``--public-flat-rw`` inside this context.

    cocotb's Verilator runner makes every signal public and writable. Verilator must then keep
    every intermediate signal and re-evaluates all combinational logic on every ``eval()`` (two
    per clock cycle) — for the trainer, whose CIM macros hold thousands of combinational
    nodes, about 3.5 times slower than a model whose ports alone are public (measured: 3.6k
    against 12.6k cycles/s, -O0, the default configuration). The testbench only touches
    top-level ports, which :func:`ports_public` marks. The Verilog text differs from the plain
    one, so the build cache (keyed by the text) never mixes the two kinds of model.

    This wraps private parts of :mod:`zohw.sim.runner` and cocotb's runner (the runner has no
    option for it); if they change, the model is built the ordinary way — slower, still correct.
    """
    from . import runner

    make = getattr(runner, "_make_runner", None)
    if make is None:                    # the runner changed: build as it does (slower model)
        yield
        return

    def make_runner(timeout_s):
        r = make(timeout_s)
        build_command = getattr(r, "_build_command", None)
        if build_command is None:
            return r

        def _build_command():
            return [[a for a in cmd if a != "--public-flat-rw"] for cmd in build_command()]
        r._build_command = _build_command
        return r

    runner._make_runner = make_runner
    try:
        yield
    finally:
        runner._make_runner = make


def _write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)


def run_trainer_cosim(cfg: TrainerConfig, steps=None, *, golden_overrides=None, data=None,
                      capacity=2048, report_limit=16, timeout_s=None, progress=None,
                      golden=None, fast_model=True, until_stopped=False) -> dict:
    """Run ``steps`` training steps (default ``cfg.steps``) on the RTL and on the golden model,
    and compare them.

    ``golden_overrides`` (a dict of :class:`TrainerConfig` fields) changes the golden model's
    configuration only — to prove the check can fail. ``golden`` may pass a precomputed
    :class:`zohw.sw.train.TrainResult` of the same configuration and steps. ``fast_model``
    builds the Verilator model with only its ports public (:func:`ports_only_public`); False
    uses :func:`zohw.sim.runner.run_cocotb`'s plain build (every signal public, slower).
    ``until_stopped`` starts the RTL with ``steps = 0`` (run until stopped) and pulses ``stop``
    during the last step instead.

    Returns a dict with (at least) :data:`RESULT_KEYS`: ``mode`` ("cosim"), ``strategy``,
    ``steps``, ``test_accuracy`` (the RTL's final weights on the test set), ``train_loss`` (per
    step, ``(L+ + L-) / (2 * batch)`` of the RTL), ``mismatches`` (L+, L-, g of every step, then
    every weight and write count), ``cycles_per_step`` (measured by the RTL's cycle counter, mean
    over steps), ``predicted_cycles_per_step`` (:func:`zohw.sw.train.predicted_cycles_per_step`);
    and ``cycle_model_error`` (relative), ``rtl_cycles_per_step`` (the RTL's own schedule
    formula), ``sim_cycles_per_second``, ``build_seconds``, ``sim_seconds``, ``verilog_seconds``,
    ``golden_seconds``, ``run_wall_seconds``, ``first_mismatches``, ``passed``, ``error``.
    """
    import torch

    from zohw.hw.trainer import TrainerPlan
    from zohw.sw.data import load_digits_split
    from zohw.sw.train import accuracy, predicted_cycles_per_step, train_golden

    steps = cfg.steps if steps is None else steps
    cfg = cfg.replace(steps=steps, eval_every=max(steps, 1))
    gcfg = cfg.replace(**(golden_overrides or {}))
    if data is None:
        data = load_digits_split(cfg.cim.input_bits)
    if data.n_train > capacity:
        raise ValueError(f"{data.n_train} train samples do not fit the sample memory "
                         f"({capacity})")

    say = progress or (lambda msg: None)
    t0 = time.monotonic()
    if golden is None:
        say("golden model")
        golden = train_golden(gcfg, data)
    golden_seconds = time.monotonic() - t0

    say("generating Verilog")
    verilog, verilog_seconds = design_verilog(cfg, capacity)
    rtl = TrainerPlan(cfg, capacity=capacity)

    from zohw.sw.train import init_weights
    expected = {
        "init_weights": init_weights(cfg).tolist(),
        "l_plus": golden.l_plus.tolist(),
        "l_minus": golden.l_minus.tolist(),
        "g": golden.g.tolist(),
        "weights": golden.weights.tolist(),
        "write_counts": golden.write_counts.tolist(),
    }
    work = Path(tempfile.mkdtemp(prefix="zohw-trainer-cosim-"))
    try:
        samples_path = work / "samples.json"
        expected_path = work / "expected.json"
        result_path = work / "result.json"
        _write_json(samples_path, {"payloads": pack_samples(data.x_train, data.y_train,
                                                            cfg.cim.input_bits)})
        _write_json(expected_path, expected)
        args = {"steps": steps, "seed": cfg.seed, "d": cfg.params,
                "samples_path": str(samples_path), "expected_path": str(expected_path),
                "readback_latency": rtl.readback_latency,
                "step_timeout_cycles": 4 * rtl.cycles_per_step + 100_000,
                "report_limit": report_limit, "until_stopped": until_stopped}
        sim_verilog = ports_public(verilog) if fast_model else verilog
        with ports_only_public() if fast_model else contextlib.nullcontext():
            run = run_cocotb(sim_verilog, TOPLEVEL, TB_MODULE, timeout_s=timeout_s,
                             progress=progress,
                             extra_env={ARGS_ENV: json.dumps(args),
                                        RESULT_ENV: str(result_path)})
        if not result_path.is_file():
            raise RuntimeError(f"the trainer testbench wrote no result (log: {run['log']})")
        tb = json.loads(result_path.read_text())
    finally:
        for p in work.iterdir():
            p.unlink()
        work.rmdir()

    predicted = predicted_cycles_per_step(cfg)
    sc = [c for c in tb["step_cycles"] if c is not None]
    measured = sum(sc) / len(sc) if sc else None
    if measured is not None and measured == int(measured):
        measured = int(measured)
    weights = tb["weights"]
    test_acc = None
    if len(weights) == cfg.params and all(w is not None for w in weights):
        w = torch.tensor(weights, dtype=torch.int64)
        test_acc = accuracy(cfg, w, data.x_test, data.y_test)
    train_acc = None
    if test_acc is not None:
        train_acc = accuracy(cfg, w, data.x_train, data.y_train)
    train_loss = [(lp + lm) / (2 * cfg.batch) if lp is not None and lm is not None else None
                  for lp, lm in zip(tb["l_plus"], tb["l_minus"])]
    counts = [c for c in tb["write_counts"] if c is not None]
    write_counts = {"min": min(counts), "max": max(counts), "mean": sum(counts) / len(counts),
                    "total": sum(counts), "per_weight": tb["write_counts"]} if counts else None
    incomplete = tb["steps"] != steps or len(weights) != cfg.params
    mismatches = tb["mismatches"]
    return {
        "mode": "cosim",
        "strategy": cfg.engine.strategy,
        "steps": tb["steps"],
        "test_accuracy": test_acc,
        "golden_test_accuracy": accuracy(gcfg, golden.weights, data.x_test, data.y_test),
        "train_loss": train_loss,
        "train_accuracy": train_acc,
        # step 0: the initial weights (loaded into the RTL from the golden's init); the end:
        # the RTL's final weights
        "accuracy_curve": {"steps": [0, steps],
                           "test": [golden.test_accuracy[0], test_acc],
                           "train": [golden.train_accuracy[0], train_acc]},
        "write_counts": write_counts,
        "weights": weights,
        "mismatches": mismatches,
        "first_mismatches": tb["first_mismatches"],
        "compared": tb["compared"],
        "cycles_per_step": measured,
        "predicted_cycles_per_step": predicted,
        "cycle_model_error": (measured - predicted) / predicted if measured else None,
        "rtl_cycles_per_step": rtl.cycles_per_step,
        "cycle_breakdown": rtl.cycle_breakdown(),
        "run_cycles": tb["run_cycles"],
        "sim_cycles_per_second": tb["sim_cycles_per_second"],
        "run_wall_seconds": tb["run_wall_seconds"],
        "load_wall_seconds": tb["load_wall_seconds"],
        "readback_wall_seconds": tb["readback_wall_seconds"],
        "build_seconds": run["build_seconds"],
        "sim_seconds": run["sim_seconds"],
        "verilog_seconds": verilog_seconds,
        "golden_seconds": golden_seconds,
        "fast_model": fast_model,
        "passed": run["failed"] == 0 and mismatches == 0 and not incomplete and not tb["error"],
        "error": tb["error"],
        "l_plus": tb["l_plus"],
        "l_minus": tb["l_minus"],
        "g": tb["g"],
        "config": cfg.as_dict(),
        "golden_overrides": golden_overrides or {},
    }
