"""cocotb testbench: run whole ZO training steps on the RTL trainer and compare every step.

The DUT is :class:`zohw.hw.trainer.ZOTrainer` (top level ``zohw_trainer``) inside the
simulation wrapper of :func:`zohw.sim.trainer.wrapper_verilog` (top level ``zohw_trainer_sim``:
power-on reset, its own clock, step log, checkpoint registers). The testbench

1. waits out the wrapper's power-on reset and loads the train set into the sample memory over
   the ``samples`` stream, one transfer per sample (cycle-driven: a one-off);
2. writes the initial weights through the ``init_*`` port (one weight per cycle);
3. sets ``seed``, ``steps`` and ``log_every`` and pulses ``start``;
4. wakes **once per ``log_every`` steps** (up to 64) — the rising edge of the wrapper's
   ``log_pub`` — and reads that many records of ``step``, ``l_plus``, ``l_minus``, ``g``,
   ``step_cycles`` and ``cycles`` from the step log in one read. No Python runs per clock or
   per step while the steps run: the clock is the model's own. At
   the checkpoints (after n steps, for each n in ``checkpoints``) it reads the wrapper's copy
   of every weight and write count (``ck_weights``, ``ck_counts``, taken in step n - 1's
   ``step_done`` cycle) at the first batch ending at or after it; about four times a second it
   appends ``{"steps", "cycles", "wall"}`` to ``progress_file`` (the host's progress callback
   reads it);
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
     "reset_cycles": 3,             # the wrapper's power-on reset
     "checkpoints": [1000, 2000],   # step counts whose state is read mid-run
     "weight_bits": 12,
     "progress_file": "/path/progress.jsonl",
     "log_every": 64,               # steps per wake-up (at most the log's 64 slots)
     "log_fields": [["step", 32, false], ...]}   # a record's fields from bit 0

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
from cocotb.triggers import ClockCycles, First, ReadOnly, RisingEdge, Timer

from zohw.sim.kit import (CLOCK_PERIOD_NS, Scoreboard, StreamSource, format_mismatch,
                          read, run_recorded, sim_cycle, tb_args, tb_data, unpack)


DEFAULTS = {"steps": 1, "seed": 1, "d": None, "readback_latency": 1,
            "step_timeout_cycles": 1_000_000, "report_limit": 16, "until_stopped": False,
            "reset_cycles": 3,
            "checkpoints": [], "weight_bits": None, "progress_file": None,
            "log_every": 1, "log_fields": []}


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

    def cycle_now(self):
        return sim_cycle()

    async def reset(self):
        """Wait out the wrapper's power-on reset (:func:`zohw.sim.trainer.wrapper_verilog`:
        ``rst`` is no top-level input, so Verilator need not re-evaluate the logic it reaches
        on every clock edge; the wrapper drives ``clk`` too: no Python per clock edge)."""
        await ClockCycles(self.dut.clk, self.args["reset_cycles"] + 1)

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
        """Start the run and take the wrapper's step log: one wake-up per ``log_every`` steps
        (:func:`zohw.sim.trainer.wrapper_verilog`), the last unfinished batch after the last
        step."""
        a = self.args
        dut = self.dut
        steps, every = a["steps"], a["log_every"]
        until_stopped = a["until_stopped"]
        dut.log_every.value = every
        dut.seed.value = a["seed"] & 0xFFFF_FFFF
        dut.steps.value = 0 if until_stopped else steps
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        if until_stopped and steps == 1:
            await self.pulse_stop()
        self.start_cycle = self.cycle_now()
        t0 = time.monotonic()
        published = RisingEdge(dut.log_pub)
        timeout = Timer(every * a["step_timeout_cycles"] * CLOCK_PERIOD_NS, unit="ns")
        # a checkpoint after n steps: the wrapper copies the state in the step_done cycle of
        # step n - 1 (ck_step); it is read at the first batch ending at or after that step
        targets = [n - 1 for n in a["checkpoints"]]
        if targets:
            dut.ck_step.value = targets[0]
        reported = t0
        done = 0
        while done + every <= steps:
            if await First(published, timeout) is not published:
                raise AssertionError(f"step {done}: no step_done within "
                                     f"{a['step_timeout_cycles']} cycles")
            read_only = await self.settled()
            self.take_records(read(dut.log_out), every, done)
            done += every
            if targets and targets[0] < done:
                while targets and targets[0] < done:
                    self.read_checkpoint(targets.pop(0) + 1)
                if read_only:                    # no writes in the read-only phase
                    await RisingEdge(dut.clk)
                dut.ck_step.value = targets[0] if targets else 0xFFFF_FFFF
            now = time.monotonic()
            if now - reported >= 0.25:
                self.report_progress(done, now - t0)
                reported = now
            if until_stopped and done == steps - 1:
                await self.pulse_stop()          # the trainer stops after the next step
        if done < steps:                         # the unfinished batch, after the last step
            if not read(dut.done):
                if await First(RisingEdge(dut.done), timeout) is timeout:
                    raise AssertionError(f"step {done}: no step_done within "
                                         f"{a['step_timeout_cycles']} cycles")
            await RisingEdge(dut.clk)
            await ReadOnly()
            n = read(dut.log_n)
            if n != steps - done:
                raise AssertionError(f"the step log holds {n} steps after step {done}, "
                                     f"expected {steps - done}")
            self.take_records(read(dut.log_fill), n, done)
            while targets:
                self.read_checkpoint(targets.pop(0) + 1)
        self.run_wall = time.monotonic() - t0
        self.run_cycles = self.cycle_now() - self.start_cycle
        self.report_progress(steps, self.run_wall)
        await RisingEdge(dut.clk)
        await ReadOnly()
        if read(dut.done) != 1 or read(dut.busy) != 0:
            # the last step_done follows the last step's last cycle, when done is already set
            raise AssertionError("trainer not done after the last step")

    async def settled(self):
        """Wait until the values of this time step are settled; True if that entered the
        read-only phase. Verilator calls value-change callbacks after the whole evaluation
        (settled); other simulators may call them earlier."""
        if cocotb.SIM_NAME.lower() == "verilator":
            return False
        await ReadOnly()
        return True

    def take_records(self, raw, count, first):
        """Decode and check the first ``count`` records (slots) of a step-log register
        ``raw``: steps ``first`` … ``first + count - 1``, oldest first."""
        fields = self.args["log_fields"]
        got, exp, sb = self.got, self.expected, self.sb
        for s in range(first, first + count):
            for name, width, signed in fields:
                got[name].append(unpack(raw, 1, width, signed)[0])
                raw >>= width
            sb.check(s, got["step"][-1], step=s, quantity="step index")
            sb.check(exp["l_plus"][s], got["l_plus"][-1], step=s, quantity="L+")
            sb.check(exp["l_minus"][s], got["l_minus"][-1], step=s, quantity="L-")
            sb.check(exp["g"][s], got["g"][-1], step=s, quantity="g")

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
