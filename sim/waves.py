"""Waveforms of a failing co-simulation: an FST file of the window around the first mismatch.

When a cross-check finds a mismatch, its host reruns the same simulation on a model built with
tracing (Verilator ``--trace-fst``; Icarus ``vvp -fst``) with a small window module instantiated
inside the top level (:func:`windowed_verilog`). The window is a range of a *key* — any
expression of the top level's signals that counts forward, e.g. the engine harness's
``{cur_load, cur_step}`` or the trainer's ``step`` — given at run time as plusargs, so one traced
model serves every window::

    +zohw_wave_file=PATH +zohw_wave_from=LO +zohw_wave_to=HI

Dumping starts (``$dumpfile``/``$dumpvars`` of the whole design) at the first clock edge where
the key reaches ``LO`` and the simulation ends (``$finish``) at the first edge where it passes
``HI``: the file covers exactly the window, and the rerun stops right after the failing step
(Verilator ignores ``$dumpoff``, so the window is cut by starting late and finishing early).
Open the file with GTKWave or Surfer.
"""

import os
import re
import shutil
from pathlib import Path

__all__ = ["WINDOW_MODULE", "WAVES_OPT", "windowed_verilog", "wave_plusargs", "is_fst",
           "fst_span", "place_wave", "rerun_with_waves", "trainer_window"]

WINDOW_MODULE = "zohw_wave_window"
#: C++ optimisation level of a traced Verilator model: it runs only up to the failing step, so
#: its build time is what counts.
WAVES_OPT = "-O0"
_INSTANCE = "zohw_wave"

_WINDOW_VERILOG = """\
// zohw: waveform window (zohw.sim.waves) -- dumps while LO <= key <= HI, then ends the run
module {module} #(
  parameter KEYBITS = 32
) (
  input wire clk,
  input wire [KEYBITS-1:0] key
);
  reg [KEYBITS-1:0] lo = 0;
  reg [KEYBITS-1:0] hi = 0;
  reg [8*1024-1:0] file = 0;
  reg armed = 1'b0;
  reg on = 1'b0;
  initial begin
    armed = $value$plusargs("zohw_wave_file=%s", file);
    if (!$value$plusargs("zohw_wave_from=%d", lo)) lo = 0;
    if (!$value$plusargs("zohw_wave_to=%d", hi)) hi = 0;
  end
  always @(posedge clk) if (armed) begin
    if (!on && key >= lo) begin
      $dumpfile(file);
      $dumpvars(0, {top});
      on <= 1'b1;
    end
    if (on && key > hi) begin
      $dumpflush;
      $finish;
    end
  end
endmodule
"""


def windowed_verilog(verilog, toplevel, key, key_bits, clock="clk"):
    """``verilog`` with the window module instantiated inside module ``toplevel``, watching
    the expression ``key`` (``key_bits`` wide, in the top level's names) on ``clock``."""
    m = re.search(rf"^module\s+{re.escape(toplevel)}\s*[(#;]", verilog, re.M)
    if m is None:
        raise ValueError(f"no module {toplevel} in the Verilog")
    end = re.compile(r"^endmodule\b", re.M).search(verilog, m.end())
    if end is None:
        raise ValueError(f"module {toplevel} has no endmodule")
    instance = (f"  {WINDOW_MODULE} #(.KEYBITS({key_bits})) {_INSTANCE} "
                f"(.clk({clock}), .key({key}));\n")
    module = _WINDOW_VERILOG.format(module=WINDOW_MODULE, top=toplevel)
    return verilog[:end.start()] + instance + verilog[end.start():] + "\n" + module


def wave_plusargs(path, lo, hi):
    """The plusargs of a window ``lo <= key <= hi`` written to ``path``."""
    path = str(path)
    if any(c.isspace() for c in path):
        raise ValueError(f"a waveform path must not contain white space, not {path!r}")
    return [f"+zohw_wave_file={path}", f"+zohw_wave_from={int(lo)}", f"+zohw_wave_to={int(hi)}"]


def is_fst(path) -> bool:
    """Whether ``path`` is a non-empty FST file: it starts with FST's header block (block
    type 0, section length 329)."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[0] == 0 and int.from_bytes(head[1:], "big") == 329


def fst_span(path):
    """``(start, end)`` of an FST file in seconds, from its header block (start and end time
    at bytes 9 and 17, the timescale exponent at byte 73)."""
    with open(path, "rb") as f:
        head = f.read(74)
    if not is_fst(path) or len(head) < 74:
        raise ValueError(f"{path} is not an FST file")
    start, end = (int.from_bytes(head[i:i + 8], "big") for i in (9, 17))
    scale = 10.0 ** int.from_bytes(head[73:74], "big", signed=True)
    return start * scale, end * scale


def place_wave(written, destination):
    """Move the FST a simulator ``written`` to ``destination`` (atomically: through a
    temporary name in its directory). Returns the destination path."""
    destination = Path(destination)
    tmp = destination.with_name(f".{destination.name}.tmp-{os.getpid()}")
    try:
        shutil.move(written, tmp)
        os.replace(tmp, destination)
    finally:
        tmp.unlink(missing_ok=True)
    return destination


def trainer_window(first_mismatches, steps):
    """``(lo, hi, step)``: the window of the trainer's ``step`` output (the index of the step
    the last ``step_done`` reported) covering the earliest failing step of a trainer
    co-simulation's mismatch reports (:mod:`zohw.sim.tb_trainer`): a per-step quantity names
    its step; a checkpoint after n steps, step n - 1; a final weight or write count, the last
    step. The window runs from the ``step_done`` before that step to its own (from the start
    for step 0, to step 1's end)."""
    failing = []
    for m in first_mismatches:
        if "step" not in m:
            failing.append(steps - 1)
        elif "index" in m:                     # a checkpoint after m["step"] steps
            failing.append(m["step"] - 1)
        else:
            failing.append(m["step"])
    step = max(0, min(failing, default=steps - 1))
    return max(step - 1, 0), max(step - 1, 0), step


def rerun_with_waves(verilog, toplevel, test_module, args, *, key, key_bits, lo, hi, name,
                     simulator, data=None, files=None, public="all", waves_dir=None,
                     timeout_s=None, progress=None, timing=False):
    """Rerun the testbench ``test_module`` (as :func:`zohw.sim.host.run_testbench` would) on a
    traced model of ``verilog`` with the window ``lo <= key <= hi`` and keep the FST file as
    ``name`` (in ``waves_dir``, else in the rerun's run directory).

    Returns ``{"path", "simulator", "window", "build_seconds", "sim_seconds", "error"}``;
    ``path`` is None and ``error`` says why when no FST file was written (the mismatch report
    stands without it)."""
    from zohw.io import run_directory

    from .build import SimulationError
    from .host import run_testbench

    traced = windowed_verilog(verilog, toplevel, key, key_bits)
    run_dir = run_directory("waves")
    written = run_dir / name
    doc = {"path": None, "simulator": simulator, "window": [int(lo), int(hi)],
           "build_seconds": None, "sim_seconds": None, "error": None}
    try:
        # the run ends at the window's end ($finish): the testbench may write no result
        _, run = run_testbench(traced, toplevel, test_module, args, data=data, files=files,
                               public=public, opt=WAVES_OPT, timeout_s=timeout_s,
                               progress=progress, simulator=simulator, trace=True,
                               run_dir=run_dir, plusargs=wave_plusargs(written, lo, hi),
                               timing=timing)
        doc.update(build_seconds=run["build_seconds"], sim_seconds=run["sim_seconds"])
    except (SimulationError, ValueError) as exc:
        if not is_fst(written):
            doc["error"] = str(exc).splitlines()[0]
            return doc
    if not is_fst(written):
        doc["error"] = f"the traced rerun wrote no FST file ({written})"
        return doc
    doc["path"] = str(place_wave(written, Path(waves_dir) / name) if waves_dir else written)
    return doc
