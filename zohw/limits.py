"""Resource bounds checked before any work starts: the memory a run would need, estimated from
its configuration, against a limit.

The limit is ``$ZOHW_MEMORY_LIMIT`` (bytes, or with a unit: ``512M``, ``8G``, ``1.5GiB``) if
set, else :data:`RAM_FRACTION` of the machine's physical memory. A run whose estimate is above
it is refused with one line naming the estimate, its largest part and the limit
(:class:`~zohw.errors.UsageError`, exit 2, nothing written).

The estimates are deliberately simple sums of per-item costs (the constants below, each
measured or bounded as its comment says); they err on the high side, to refuse a run that would
end in an out-of-memory kill after minutes, not to predict its footprint.
"""

import os
import re

from .errors import UsageError

__all__ = ["RAM_FRACTION", "LIMIT_ENV", "memory_limit", "Estimate", "check_memory",
           "golden_train_estimate", "trainer_cosim_estimate", "cim_cosim_estimate",
           "format_bytes"]

#: Share of the physical memory a run may plan to use when ``$ZOHW_MEMORY_LIMIT`` is unset.
RAM_FRACTION = 0.8
LIMIT_ENV = "ZOHW_MEMORY_LIMIT"

#: Python, torch, Amaranth and cocotb imported (measured: a 2000-step golden run peaks at
#: 477 MB, most of it the interpreter and torch).
BASE_BYTES = 500 << 20
#: A golden training step: L+, L-, g as Python ints and tensors, the loss curve, its JSON
#: (measured: +42 MB from 2 000 to 40 000 steps of the default digits run, 1.1 kB a step).
GOLDEN_STEP_BYTES = 1200
#: A weight in the golden run: weights, write counts, the step's perturbation and trajectory
#: rows of a chunk (int64 tensors), and the per-weight lists of the JSON result.
GOLDEN_WEIGHT_BYTES = 400
#: A sample feature held by the data set (raw, pooled and quantised copies, int64 and float).
SAMPLE_FEATURE_BYTES = 32
#: The golden model's chunk buffers (zohw.sw.train.CHUNK_BYTES is 64 MiB), twice.
GOLDEN_CHUNK_BYTES = 128 << 20
#: A co-simulated step on top of the golden one: the expected L+, L-, g as JSON and Python
#: lists in the host and in the testbench process, and the testbench's per-step record.
COSIM_STEP_BYTES = 1000
#: A weight compared at a checkpoint: the golden state (tensors) and the testbench's JSON of
#: weights and write counts, parsed on both sides.
CHECKPOINT_WEIGHT_BYTES = 200
#: A weight cell in a Verilated model (the behavioural CIM macro keeps every weight in a
#: register): Verilator's peak, per cell (measured: 540 MB for a 130x20 macro, 2 600 cells,
#: against 317 MB for 65x10, 650 cells — about 200 kB a cell; 256 kB leaves a margin for the
#: C++ compiler running beside it).
MODEL_CELL_BYTES = 256 << 10
#: A value of the CIM cross-check's test data (weights, inputs, expected columns): nested
#: Python lists and JSON text in the host and in the testbench process.
CIM_VALUE_BYTES = 150

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1000, "kib": 1 << 10, "m": 1 << 20, "mb": 10 ** 6,
          "mib": 1 << 20, "g": 1 << 30, "gb": 10 ** 9, "gib": 1 << 30, "t": 1 << 40,
          "tb": 10 ** 12, "tib": 1 << 40}


def format_bytes(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _parse_limit(text):
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise UsageError(f"{LIMIT_ENV} must be a memory size such as 8G or 512M, not {text!r}")
    value = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if value <= 0:
        raise UsageError(f"{LIMIT_ENV} must be a positive memory size, not {text!r}")
    return value


def _physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):       # pragma: no cover - not POSIX
        return None


def memory_limit():
    """``(bytes, description)``: the limit a run's estimate must not exceed."""
    text = os.environ.get(LIMIT_ENV)
    if text is not None and text.strip():
        return _parse_limit(text), f"{LIMIT_ENV}={text.strip()}"
    ram = _physical_memory()
    if ram is None:                                      # pragma: no cover
        return float("inf"), "no limit: the physical memory is unknown"
    return int(RAM_FRACTION * ram), (f"{RAM_FRACTION:.0%} of this machine's "
                                     f"{format_bytes(ram)} of RAM; {LIMIT_ENV} sets another")


class Estimate:
    """A sum of named parts, in bytes."""

    def __init__(self, what):
        self.what = what
        self.parts = []

    def add(self, name, nbytes):
        self.parts.append((name, int(nbytes)))
        return self

    def extend(self, other):
        self.parts += other.parts
        return self

    @property
    def total(self):
        return sum(n for _, n in self.parts)

    def largest(self):
        return max(self.parts, key=lambda p: p[1])

    def __repr__(self):
        return f"Estimate({self.what!r}, {format_bytes(self.total)})"


def check_memory(estimate):
    """Raise :class:`UsageError` when ``estimate`` is above :func:`memory_limit`."""
    limit, why = memory_limit()
    if estimate.total > limit:
        name, nbytes = estimate.largest()
        raise UsageError(f"{estimate.what} would need about {format_bytes(estimate.total)} of "
                         f"memory (largest part: {name}, {format_bytes(nbytes)}), more than "
                         f"the limit {format_bytes(limit)} ({why})")
    return estimate


def _samples(cfg):
    """``(samples, features)`` of the training configuration's data set."""
    try:
        try:
            from zohw.datasets import dataset_info
        except ImportError:                              # pragma: no cover
            from zohw.sw.data import dataset_info
        info = dataset_info(cfg.dataset, getattr(cfg, "input_pool", 1))
        return info.n_train + info.n_test, info.features
    except (ImportError, AttributeError):                # pragma: no cover - older data code
        return 1797, cfg.inputs


def golden_train_estimate(cfg, steps=None):
    """Memory of :func:`zohw.sw.train.train_golden` on ``cfg`` (a TrainerConfig)."""
    steps = cfg.steps if steps is None else steps
    samples, features = _samples(cfg)
    est = Estimate(f"the golden training run ({steps} steps of {cfg.params} weights)")
    est.add("interpreter and libraries", BASE_BYTES)
    est.add("chunk buffers", GOLDEN_CHUNK_BYTES)
    est.add(f"{samples} samples x {features} features", samples * features
            * SAMPLE_FEATURE_BYTES)
    est.add(f"per-step records, {steps} steps", steps * GOLDEN_STEP_BYTES)
    est.add(f"per-weight state, {cfg.params} weights", cfg.params * GOLDEN_WEIGHT_BYTES)
    return est


def trainer_cosim_estimate(cfg, steps=None, checkpoints=0):
    """Memory of :func:`zohw.sim.trainer.run_trainer_cosim`: the golden run, the model of the
    trainer (one register per weight) and the per-step and checkpoint data of both sides."""
    steps = cfg.steps if steps is None else steps
    est = Estimate(f"the co-simulation ({steps} steps of {cfg.params} weights)")
    est.extend(golden_train_estimate(cfg, steps))
    est.add(f"Verilated trainer, {cfg.params} weight registers", cfg.params * MODEL_CELL_BYTES)
    est.add(f"co-simulated step records, {steps} steps", steps * COSIM_STEP_BYTES)
    if checkpoints:
        est.add(f"{checkpoints} checkpoints of {cfg.params} weights",
                checkpoints * cfg.params * CHECKPOINT_WEIGHT_BYTES)
    return est


def cim_cosim_estimate(cfg, vectors, phases):
    """Memory of :func:`zohw.sim.cim.cim_cosim` on ``cfg`` (a CIMConfig)."""
    cells = cfg.rows * cfg.cols
    values = phases * (cells + vectors * (cfg.rows + cfg.cols))
    est = Estimate(f"the CIM co-simulation ({cfg.rows}x{cfg.cols} cells, {phases} phases of "
                   f"{vectors} vectors)")
    est.add("interpreter and libraries", BASE_BYTES)
    est.add(f"Verilated macro, {cells} weight cells", cells * MODEL_CELL_BYTES)
    est.add(f"test data, {values} values", values * CIM_VALUE_BYTES)
    return est
