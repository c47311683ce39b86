"""The ASIC estimate: the generic library's weights, NAND2-equivalent counts of hand-countable
circuits, ``--liberty`` areas and the synthesis cache's recovery from damaged entries."""

import json

import pytest

from zohw.errors import UsageError
from zohw.resources.asic import (GENERIC_LIBERTY, check_liberty, gate_count, ge_counts,
                                 read_liberty, truth_table)
from zohw.resources.power import GateSim
from zohw.resources.synth import synth_verilog

#: NanGate FreePDK45 Open Cell Library, X1 cells: area in µm² (the library's datasheet; typed
#: here independently of zohw_generic.lib). GE = area / NAND2_X1 area.
NANGATE45_UM2 = {"INV": 0.532, "BUF": 0.798, "NAND2": 0.798, "NOR2": 0.798, "AND2": 1.064,
                 "OR2": 1.064, "XOR2": 1.596, "XNOR2": 1.596, "MUX2": 1.862, "AOI21": 1.064,
                 "OAI21": 1.064, "DFF": 4.522, "DFFR": 5.32}
NAND2_UM2 = NANGATE45_UM2["NAND2"]


def ge(cell):
    return NANGATE45_UM2[cell] / NAND2_UM2


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("synth")


def test_generic_library_weights_are_the_documented_ratios():
    lib = read_liberty()
    assert set(lib) == set(NANGATE45_UM2)
    for name, cell in lib.items():
        assert cell.area == pytest.approx(ge(name), abs=1e-4), name
    assert {n for n, c in lib.items() if c.sequential} == {"DFF", "DFFR"}
    # the functions read from the file: a multiplexer picks B when S is high
    mux = lib["MUX2"]
    assert mux.inputs == ("A", "B", "S")
    tt = truth_table(mux.function, mux.inputs)
    for a in (0, 1):
        for b in (0, 1):
            for s in (0, 1):
                assert (tt >> (a | b << 1 | s << 2)) & 1 == (b if s else a)
    assert truth_table(lib["AOI21"].function, lib["AOI21"].inputs) == 0b00000111


INVERTER = "module inv(input a, output y); assign y = ~a; endmodule\n"


def test_inverter(cache):
    r = gate_count(INVERTER, "inv", cache_dir=cache)
    assert r["cells"] == {"INV": 1}
    assert r["ge"] == pytest.approx(ge("INV"), abs=0.01)
    assert (r["ff"], r["ge_seq"], r["area_um2"]) == (0, 0, None)


def _full_adder(i):
    # s = a ^ b ^ c; carry = NAND(NAND(a, b), NAND(c, a ^ b)): 2 XOR2 + 3 NAND2
    return (f"  wire x{i}, n{i}a, n{i}b;\n"
            f"  XOR2 ux{i} (.A(a[{i}]), .B(b[{i}]), .Y(x{i}));\n"
            f"  XOR2 us{i} (.A(x{i}), .B(c[{i}]), .Y(s[{i}]));\n"
            f"  NAND2 ua{i} (.A(a[{i}]), .B(b[{i}]), .Y(n{i}a));\n"
            f"  NAND2 ub{i} (.A(c[{i}]), .B(x{i}), .Y(n{i}b));\n"
            f"  NAND2 uc{i} (.A(n{i}a), .B(n{i}b), .Y(c[{i + 1}]));\n")


#: A 4-bit ripple-carry adder drawn with the library's cells: a half adder (XOR2 + AND2) and
#: three full adders (2 XOR2 + 3 NAND2 each).
RIPPLE = ("module ripple(input [3:0] a, input [3:0] b, output [4:0] s);\n"
          "  wire [4:0] c;\n"
          "  XOR2 us0 (.A(a[0]), .B(b[0]), .Y(s[0]));\n"
          "  AND2 uc0 (.A(a[0]), .B(b[0]), .Y(c[1]));\n"
          + "".join(_full_adder(i) for i in (1, 2, 3)) +
          "  assign s[4] = c[4];\nendmodule\n"
          "(* blackbox *) module XOR2(input A, input B, output Y); endmodule\n"
          "(* blackbox *) module AND2(input A, input B, output Y); endmodule\n"
          "(* blackbox *) module NAND2(input A, input B, output Y); endmodule\n")
RIPPLE_CELLS = {"XOR2": 1 + 3 * 2, "AND2": 1, "NAND2": 3 * 3}
RIPPLE_GE = sum(n * ge(c) for c, n in RIPPLE_CELLS.items())     # 24.33


def _exhaustive_adder(netlist):
    sim = GateSim(netlist)
    return [(a, b) for a in range(16) for b in range(16) if sim.step({"a": a, "b": b})["s"]
            != a + b]


def test_ripple_adder_hand_count(cache):
    r = gate_count(RIPPLE, "ripple", cache_dir=cache)
    assert r["cells"] == RIPPLE_CELLS
    assert r["ge"] == pytest.approx(RIPPLE_GE, abs=0.01) and r["ff"] == 0
    net = synth_verilog(RIPPLE, "asic", top="ripple", netlist=True, cache_dir=cache)["netlist"]
    assert _exhaustive_adder(net) == []


def test_behavioural_adder_mapped_by_abc(cache):
    """``a + b`` mapped by ABC: correct on all 256 inputs, and no bigger than the hand-drawn
    ripple adder plus 10 %."""
    v = "module add4(input [3:0] a, input [3:0] b, output [4:0] s); assign s = a + b; endmodule\n"
    r = gate_count(v, "add4", cache_dir=cache)
    assert 0 < r["ge"] <= 1.1 * RIPPLE_GE and r["ff"] == 0
    assert r["ge"] == pytest.approx(sum(n * ge(c) for c, n in r["cells"].items()), abs=0.01)
    net = synth_verilog(v, "asic", top="add4", netlist=True, cache_dir=cache)["netlist"]
    assert _exhaustive_adder(net) == []


CHAINS = """
module chain(input clk, input d, output q);
  reg [3:0] r;
  always @(posedge clk) r <= {r[2:0], d};
  assign q = r[3];
endmodule
module chain_arst(input clk, input rst_n, input d, output q);
  reg [3:0] r;
  always @(posedge clk or negedge rst_n) if (!rst_n) r <= 0; else r <= {r[2:0], d};
  assign q = r[3];
endmodule
"""


def test_flip_flop_chains(cache):
    r = gate_count(CHAINS, "chain", cache_dir=cache)
    assert r["cells"] == {"DFF": 4}
    assert (r["ff"], r["ge_comb"]) == (4, 0)
    assert r["ge"] == r["ge_seq"] == pytest.approx(4 * ge("DFF"), abs=0.01)
    r = gate_count(CHAINS, "chain_arst", cache_dir=cache)
    assert r["cells"] == {"DFFR": 4}
    assert r["ge"] == pytest.approx(4 * ge("DFFR"), abs=0.01)


def test_a_wrong_weight_changes_the_count(tmp_path, cache):
    """The hand count can fail: a library whose inverter weighs one NAND2 gives another GE."""
    bad = tmp_path / "bad.lib"
    bad.write_text(GENERIC_LIBERTY.read_text().replace("area : 0.6667;", "area : 1.0;", 1))
    assert ge_counts({"INV": 1}, bad)["ge"] == 1.0
    assert ge_counts({"INV": 1})["ge"] == pytest.approx(ge("INV"), abs=0.01)
    with pytest.raises(ValueError, match="cell NAND3 is not in"):
        ge_counts({"NAND3": 2})


def test_user_liberty_gives_area(tmp_path, cache):
    """``liberty``: the same cells with NanGate's µm² areas: area_um2 is the sum of those."""
    um2 = tmp_path / "nangate_like.lib"
    text = GENERIC_LIBERTY.read_text()
    for name, area in NANGATE45_UM2.items():
        head = f"cell ({name}) {{\n    area : "
        start = text.index(head) + len(head)
        text = text[:start] + f"{area}" + text[text.index(";", start):]
    um2.write_text(text)
    r = gate_count(CHAINS, "chain", liberty=um2, cache_dir=cache)
    assert r["area_um2"] == pytest.approx(4 * NANGATE45_UM2["DFF"], abs=1e-3)
    assert r["ge"] == pytest.approx(4 * ge("DFF"), abs=0.01)     # GE stays on the generic lib
    r = gate_count(RIPPLE, "ripple", liberty=um2, cache_dir=cache)
    assert r["area_um2"] == pytest.approx(
        sum(n * NANGATE45_UM2[c] for c, n in RIPPLE_CELLS.items()), abs=1e-3)


def test_bad_liberty_path(tmp_path):
    with pytest.raises(UsageError,
                       match=r"^liberty must be a readable Liberty .* \(no such file\)$"):
        gate_count(INVERTER, "inv", liberty=tmp_path / "missing.lib")
    not_lib = tmp_path / "x.lib"
    not_lib.write_text("hello\n")
    with pytest.raises(UsageError, match="no 'library"):
        check_liberty(not_lib)


@pytest.mark.parametrize("damage, why", [
    (lambda t: t[:len(t) // 2], "not valid JSON"),
    (lambda t: "{}", "not a zohw cache entry"),
    (lambda t: json.dumps({**json.loads(t), "sha256": "0" * 64}), "fails its checksum"),
])
def test_damaged_synthesis_entry_is_rebuilt(tmp_path, capsys, damage, why):
    """A truncated, emptied or tampered cache entry: one warning line, recomputed, same result."""
    first = gate_count(INVERTER, "inv", cache_dir=tmp_path)
    entries = [p for p in tmp_path.glob("*.json") if not p.name.endswith(".netlist.json")]
    assert len(entries) == 1
    capsys.readouterr()
    entries[0].write_text(damage(entries[0].read_text()))
    res = synth_verilog(INVERTER, "asic", top="inv", cache_dir=tmp_path)
    err = capsys.readouterr().err
    assert res["cached"] is False
    assert err.count("\n") == 1 and f"is damaged ({why}); rebuilding" in err
    assert gate_count(INVERTER, "inv", cache_dir=tmp_path) == first
    assert synth_verilog(INVERTER, "asic", top="inv", cache_dir=tmp_path)["cached"] is True
    assert capsys.readouterr().err == ""


#: A 64 x 8 memory with one write and one asynchronous read port, beside an 8-bit counter.
MEMORY = """
module m(input clk, input we, input [5:0] wa, input [5:0] ra, input [7:0] wd,
         output [7:0] rd, output reg [7:0] q);
  reg [7:0] mem [0:63];
  always @(posedge clk) begin if (we) mem[wa] <= wd; q <= q + 1; end
  assign rd = mem[ra];
endmodule
"""


def test_memories_as_flip_flops_or_macros(cache):
    """``asic`` maps a memory's 64 x 8 bits to 512 flip-flops; ``asic-sram`` (memories="macros")
    leaves one macro of 512 bits and counts only the counter's 8 flip-flops."""
    ffs = gate_count(MEMORY, "m", cache_dir=cache)
    assert ffs["ff"] == 64 * 8 + 8 and ffs["cells"]["DFF"] == 520
    macro = gate_count(MEMORY, "m", memories="macros", cache_dir=cache)
    assert (macro["memory_macros"], macro["memory_bits"]) == (1, 64 * 8)
    assert macro["ff"] == 8 and macro["ge_seq"] == pytest.approx(8 * ge("DFF"), abs=0.01)
    assert "$mem_v2" not in macro["cells"] and macro["ge"] < ffs["ge"] / 10
    with pytest.raises(UsageError, match="memories must be one of flipflops, macros, not 'sram'"):
        gate_count(MEMORY, "m", memories="sram", cache_dir=cache)


ROMS = """
module r(input clk, input [3:0] a, input [9:0] b, output reg [7:0] x, output reg [7:0] y);
  reg [7:0] small [0:15];
  reg [7:0] big [0:1023];
  integer i;
  initial begin
    for (i = 0; i < 16; i = i + 1) small[i] = i * 7;
    for (i = 0; i < 1024; i = i + 1) big[i] = i * 3;
  end
  always @(posedge clk) begin x <= small[a]; y <= big[b]; end
endmodule
"""


def test_small_roms_are_logic_on_asic_sram(cache):
    """A 16-word table becomes gates (an ASIC builds it so); a 1024-word ROM stays a macro."""
    r = gate_count(ROMS, "r", memories="macros", cache_dir=cache)
    assert (r["memory_macros"], r["memory_bits"]) == (1, 1024 * 8)
    assert r["ge_comb"] > 0
