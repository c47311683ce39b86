"""cocotb testbench: run whole ZO training steps on the RTL trainer and compare every step.

The DUT is :class:`zohw.hw.trainer.ZOTrainer` (top level ``zohw_trainer``), normally inside the
simulation wrapper of :func:`zohw.sim.trainer.wrapper_verilog` (top level ``zohw_trainer_sim``:
power-on reset, checkpoint registers). The testbench

1. resets the design (or waits out the wrapper's power-on reset) and loads the train set into
   the sample memory over the ``samples`` stream,
   one transfer per sample (cycle-driven: a one-off);
2. writes the initial weights through the ``init_*`` port (one weight per cycle);
3. sets ``seed`` and ``steps`` and pulses ``start``;
4. awaits **one event per step** — the rising edge of ``step_done`` — and, after ``ReadOnly``,
   reads ``step``, ``l_plus``, ``l_minus``, ``g``, ``step_cycles`` and ``cycles``. No Python
   runs per clock while the steps run: the clock is cocotb's GPI (C) clock. At the checkpoints
   (after n steps, for each n in ``checkpoints``) it reads the wrapper's copy of every weight
   and write count (``ck_weights``, ``ck_counts``, taken in step n - 1's ``step_done`` cycle)
   at the next step's event; about four times a second it appends ``{"steps", "cycles",
   "wall"}`` to ``progress_file`` (the host's progress callback reads it);
5. after ``done``, reads back every weight and every write count through ``rb_*``.

The scoreboard compares L+, L− and g of every step and, at the end, every weight and every
write count with the golden model's values, precomputed by the host
(:func:`zohw.sim.trainer.run_trainer_cosim` runs :func:`zohw.sw.train.train_golden`).

Arguments come as JSON (:func:`zohw.sim.kit.tb_args`)::

    {"steps": 200, "seed": 1, "d": 650,
     "readback_latency": 1,
     "step_timeout_cycles": 100000, # per step
     "report_limit": 16,
     "until_stopped": false,        # steps = 0 (run until stopped), stop pulsed during the
                                    # last step
     "reset_cycles": 3,             # the wrapper's power-on reset (0: pulse rst)
     "checkpoints": [1000, 2000],   # step counts whose state is read mid-run
     "weight_bits": 12,
     "progress_file": "/path/progress.jsonl"}

and the bulk data (:func:`zohw.sim.kit.tb_data`) is ``{"payloads": [packed sample payload,
...], "expected": {"init_weights", "l_plus", "l_minus", "g", "weights", "write_counts"}}``.

The result document (:func:`zohw.sim.kit.run_recorded`) has what the RTL produced (``l_plus``,
``l_minus``, ``g``, ``step_cycles``, ``weights``, ``write_counts``), ``mismatches`` (total count)
and ``first_mismatches`` (``{"step", "quantity", "expected", "got"}`` for per-step quantities,
``{"quantity": "weight"|"write_count", "index", "expected", "got"}`` at the end),
``checkpoints`` (``{"<n>": {"weights": [...], "write_counts": [...]}}``, compared by the host
with :func:`zohw.sim.trainer.golden_checkpoints`), the cycle
counts (``run_cycles`` from ``start`` to the last ``step_done``) and the wall time of the run
(``run_wall_seconds``, ``sim_cycles_per_second``). The cocotb test fails on any mismatch.
"""

import json
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, ReadOnly, RisingEdge, Timer

from zohw.sim.kit import (CLOCK_PERIOD_NS, Scoreboard, StreamSource, format_mismatch,
                          pulse_reset, read, run_recorded, sim_cycle, tb_args, tb_data, unpack)


DEFAULTS = {"steps": 1, "seed": 1, "d": None, "readback_latency": 1,
            "step_timeout_cycles": 1_000_000, "report_limit": 16, "until_stopped": False,
            "reset_cycles": 0,
            "checkpoints": [], "weight_bits": None, "progress_file": None}


class TrainerTB:
    def __init__(self, dut, args, data):
        self.dut = dut
        self.args = {**DEFAULTS, **args}
        a = self.args
        self.payloads = data["payloads"]
        self.expected = data["expected"]
        self.d = a["d"] if a["d"] is not None else len(self.expected["init_weights"])
        self.sb = Scoreboard(a["report_limit"])
        self.got = {"l_plus": [], "l_minus": [], "g": [], "step_cycles": [], "cycles": [],
                    "step": []}
        self.weights = []
        self.write_counts = []
        self.checkpoints = {}
        self.run_wall = None
        self.run_cycles = None
        self.start_cycle = None
        self.samples = StreamSource(dut, "samples")
        for name in ("clear", "start", "stop", "init_en"):
            getattr(dut, name).value = 0
        dut.seed.value = 0
        dut.steps.value = 0
        dut.init_addr.value = 0
        dut.init_data.value = 0
        dut.rb_addr.value = 0
        if not self.args["reset_cycles"]:
            dut.rst.value = 1
        # The GPI (C++) clock: no Python runs per clock edge.
        self.clock = Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns", impl="gpi")

    def cycle_now(self):
        return sim_cycle()

    async def reset(self):
        self.clock.start()
        if self.args["reset_cycles"]:
            # the wrapper's power-on reset (zohw.sim.trainer.wrapper_verilog): rst is no
            # top-level input, so Verilator need not re-evaluate the logic it reaches on
            # every clock edge
            await ClockCycles(self.dut.clk, self.args["reset_cycles"] + 1)
        else:
            await pulse_reset(self.dut)

    async def load_samples(self):
        """One transfer per sample, without gaps."""
        dut = self.dut
        clk = dut.clk
        for payload in self.payloads:
            await self.samples.send(payload)
        await ReadOnly()
        n = read(dut.n_samples)
        await RisingEdge(clk)
        if n != len(self.payloads):
            raise AssertionError(f"n_samples is {n} after loading {len(self.payloads)} samples")

    async def load_weights(self, weights):
        dut = self.dut
        wbits = len(dut.init_data)
        mask = (1 << wbits) - 1
        for i, w in enumerate(weights):
            dut.init_en.value = 1
            dut.init_addr.value = i
            dut.init_data.value = w & mask
            await RisingEdge(dut.clk)
        dut.init_en.value = 0
        await RisingEdge(dut.clk)

    async def run_steps(self):
        a = self.args
        dut = self.dut
        exp = self.expected
        until_stopped = a["until_stopped"]
        dut.seed.value = a["seed"] & 0xFFFF_FFFF
        dut.steps.value = 0 if until_stopped else a["steps"]
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        if until_stopped and a["steps"] == 1:
            await self.pulse_stop()
        self.start_cycle = self.cycle_now()
        t0 = time.monotonic()
        step_done = RisingEdge(dut.step_done)
        timeout = a["step_timeout_cycles"] * CLOCK_PERIOD_NS
        # checkpoint after n steps: the wrapper copies the state in the step_done cycle of
        # step n - 1; it is read at the next step's event
        targets = [n - 1 for n in a["checkpoints"]]
        pending = None
        if targets:
            dut.ck_step.value = targets[0]
        reported = t0
        for s in range(a["steps"]):
            fired = await First(step_done, Timer(timeout, unit="ns"))
            if fired is not step_done:
                raise AssertionError(f"step {s}: no step_done within {a['step_timeout_cycles']} "
                                     "cycles")
            if pending is not None:
                dut.ck_step.value = pending
                pending = None
            await ReadOnly()
            if targets and s == targets[0] + 1:
                self.read_checkpoint(s)
                targets.pop(0)
                pending = targets[0] if targets else 0xFFFF_FFFF
            now = time.monotonic()
            if now - reported >= 0.25:
                self.report_progress(s + 1, now - t0)
                reported = now
            step = read(dut.step)
            lp = read(dut.l_plus, signed=True)
            lm = read(dut.l_minus, signed=True)
            g = read(dut.g, signed=True)
            got = self.got
            got["step"].append(step)
            got["l_plus"].append(lp)
            got["l_minus"].append(lm)
            got["g"].append(g)
            got["step_cycles"].append(read(dut.step_cycles))
            got["cycles"].append(read(dut.cycles))
            self.sb.check(s, step, step=s, quantity="step index")
            self.sb.check(exp["l_plus"][s], lp, step=s, quantity="L+")
            self.sb.check(exp["l_minus"][s], lm, step=s, quantity="L-")
            self.sb.check(exp["g"][s], g, step=s, quantity="g")
            if until_stopped and s == a["steps"] - 2:
                await self.pulse_stop()          # the trainer stops after the next step
        self.run_wall = time.monotonic() - t0
        self.run_cycles = self.cycle_now() - self.start_cycle
        self.report_progress(a["steps"], self.run_wall)
        await RisingEdge(dut.clk)
        await ReadOnly()
        if read(dut.done) != 1 or read(dut.busy) != 0:
            # the last step_done follows the last step's last cycle, when done is already set
            raise AssertionError("trainer not done after the last step")

    def read_checkpoint(self, steps):
        """The wrapper's copy of every weight and write count after ``steps`` steps."""
        dut = self.dut
        d, wb, cb = self.d, self.args["weight_bits"], len(dut.rb_count)
        self.checkpoints[str(steps)] = {
            "weights": unpack(read(dut.ck_weights), d, wb),
            "write_counts": unpack(read(dut.ck_counts), d, cb, signed=False)}

    def report_progress(self, steps, wall):
        """One line (steps done, cycles, wall seconds) appended to the progress file."""
        path = self.args["progress_file"]
        if path:
            cycles = self.cycle_now() - self.start_cycle
            with open(path, "a") as f:
                f.write(json.dumps({"steps": steps, "cycles": cycles, "wall": wall}) + "\n")

    async def pulse_stop(self):
        await RisingEdge(self.dut.clk)
        self.dut.stop.value = 1
        await RisingEdge(self.dut.clk)
        self.dut.stop.value = 0

    async def read_back(self):
        dut = self.dut
        lat = self.args["readback_latency"]
        for i in range(self.d):
            await RisingEdge(dut.clk)
            dut.rb_addr.value = i
            for _ in range(lat):
                await RisingEdge(dut.clk)
            await ReadOnly()
            self.weights.append(read(dut.rb_weight, signed=True))
            self.write_counts.append(read(dut.rb_count))
        exp = self.expected
        for i, (e, g) in enumerate(zip(exp["weights"], self.weights)):
            self.sb.check(e, g, quantity="weight", index=i)
        for i, (e, g) in enumerate(zip(exp["write_counts"], self.write_counts)):
            self.sb.check(e, g, quantity="write_count", index=i)

    async def run(self):
        await self.reset()
        t = time.monotonic()
        await self.load_samples()
        await self.load_weights(self.expected["init_weights"])
        self.load_wall = time.monotonic() - t
        await self.run_steps()
        t = time.monotonic()
        await self.read_back()
        self.readback_wall = time.monotonic() - t

    def result(self, wall, error=None):
        got = self.got
        cps = None
        if self.run_wall:
            cps = self.run_cycles / self.run_wall
        return {
            "steps": len(got["l_plus"]),
            **got,
            "weights": self.weights,
            "write_counts": self.write_counts,
            "checkpoints": self.checkpoints,
            "mismatches": self.sb.mismatches,
            "compared": self.sb.compared,
            "first_mismatches": self.sb.reports,
            "run_cycles": self.run_cycles,
            "run_wall_seconds": self.run_wall,
            "sim_cycles_per_second": cps,
            "load_wall_seconds": getattr(self, "load_wall", None),
            "readback_wall_seconds": getattr(self, "readback_wall", None),
            "total_cycles": self.cycle_now(),
            "sim_wall_seconds": wall,
            "error": error,
        }


@cocotb.test()
async def train_cross_check(dut):
    """Every step's L+, L-, g and the final weights and write counts equal the golden's."""
    result = await run_recorded(TrainerTB(dut, tb_args(), tb_data()))
    if result["mismatches"]:
        first = "; ".join(format_mismatch(m) for m in result["first_mismatches"][:4])
        raise AssertionError(f"{result['mismatches']} mismatches; first: {first}")
    dut._log.info("%d steps, %d values compared: no mismatch (%.0f simulated cycles/s)",
                  result["steps"], result["compared"], result["sim_cycles_per_second"] or 0)
