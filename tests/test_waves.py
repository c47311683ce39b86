"""Waveforms on a mismatch (issue 13, deliverable 3; :mod:`zohw.sim.waves`): a co-simulation that
finds a mismatch reruns on a traced model and leaves an FST file of the failing step, named in
its result; the window module goes inside the top level; FST files are recognised."""

import pytest

from zohw.config import EngineConfig
from zohw.sim.engine import cross_check
from zohw.sim.kit import CLOCK_PERIOD_NS
from zohw.sim.waves import (WINDOW_MODULE, fst_span, is_fst, place_wave, trainer_window,
                            wave_plusargs, windowed_verilog)

TWO_MODULES = """\
module leaf(input wire clk, output wire q);
  assign q = clk;
endmodule

module top(input wire clk, output wire [7:0] n);
  leaf l (.clk(clk), .q());
  assign n = 8'd0;
endmodule
"""


def test_window_goes_inside_the_top_module():
    text = windowed_verilog(TWO_MODULES, "top", "n", 8)
    top = text[text.index("module top("):]
    body = top[:top.index("endmodule")]
    assert f"{WINDOW_MODULE} #(.KEYBITS(8)) zohw_wave (.clk(clk), .key(n));" in body
    leaf = text[:text.index("module top(")]
    assert WINDOW_MODULE not in leaf                    # the other module is untouched
    assert text.count(f"module {WINDOW_MODULE}") == 1 and "$dumpvars(0, top);" in text
    with pytest.raises(ValueError, match="no module other in the Verilog"):
        windowed_verilog(TWO_MODULES, "other", "n", 8)


def test_plusargs_and_fst_recognition(tmp_path):
    assert wave_plusargs(tmp_path / "w.fst", 3, 4) == [
        f"+zohw_wave_file={tmp_path / 'w.fst'}", "+zohw_wave_from=3", "+zohw_wave_to=4"]
    with pytest.raises(ValueError, match="must not contain white space"):
        wave_plusargs("/a b/w.fst", 0, 1)
    vcd = tmp_path / "w.vcd"
    vcd.write_text("$date today $end\n$timescale 1ps $end\n")
    empty = tmp_path / "empty.fst"
    empty.write_bytes(b"")
    truncated = tmp_path / "short.fst"
    truncated.write_bytes(bytes([0, 0, 0, 0, 0, 0, 0, 1]))
    assert not any(is_fst(p) for p in (vcd, empty, truncated, tmp_path / "missing.fst"))
    with pytest.raises(ValueError, match="is not an FST file"):
        fst_span(vcd)
    src = tmp_path / "run" / "w.fst"
    src.parent.mkdir()
    src.write_bytes(b"x")
    dest = place_wave(src, tmp_path / "out.fst")
    assert dest.read_bytes() == b"x" and not src.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.fst", "out.fst", "run",
                                                           "short.fst", "w.vcd"]


def test_trainer_window_picks_the_earliest_failing_step():
    per_step = {"step": 5, "quantity": "g", "expected": 1, "got": 2}
    checkpoint = {"step": 4, "quantity": "weight", "index": 9, "expected": 1, "got": 2}
    final = {"quantity": "weight", "index": 3, "expected": 1, "got": 2}
    assert trainer_window([per_step], 10) == (4, 4, 5)       # from step 4's done to step 5's
    assert trainer_window([per_step, checkpoint], 10) == (2, 2, 3)
    assert trainer_window([final], 10) == (8, 8, 9)
    assert trainer_window([{**per_step, "step": 0}], 10) == (0, 0, 0)


def test_verilator_waveform_of_a_planted_mismatch(tmp_path):
    """A golden with one flipped bit (tests/flipped_golden.py) under Verilator: the result names
    an FST file of the failing step, built with ``--trace-fst``; the file starts after time 0
    and ends before the run did (a window, not the whole run). A passing run writes none."""
    import flipped_golden as fg

    config = EngineConfig(strategy="pezo-otf", lanes=4)
    result = cross_check([config], seed=5, d=100, steps=6, backpressure=0.3, rng_seed=2,
                         golden_module="flipped_golden", bank=False, opt="-O0",
                         waves_dir=tmp_path)
    assert result["failed"] == 1 and result["mismatches"] >= 2
    waves = result["waves"]
    assert waves["error"] is None, waves
    assert (waves["simulator"], waves["load"], waves["step"]) == ("verilator", 0, fg.FLIP_STEP)
    path = tmp_path / f"zohw_engine_harness-load0-step{fg.FLIP_STEP}.fst"
    assert waves["path"] == str(path) and is_fst(path) and path.stat().st_size > 1000
    start, end = fst_span(path)
    run_end = result["cycles"] * CLOCK_PERIOD_NS * 1e-9
    # step 3 of 6: dumping starts after steps 0-2 and ends with step 3
    assert 0 < start < end < run_end
    assert start > 3 * result["engines"][0]["cycles_per_step"] * CLOCK_PERIOD_NS * 1e-9
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]

    ok = cross_check([config], seed=5, d=100, steps=6, backpressure=0.3, rng_seed=2,
                     bank=False, opt="-O0", waves_dir=tmp_path / "none")
    assert ok["mismatches"] == 0 and ok["waves"] is None
    assert not (tmp_path / "none").exists()
