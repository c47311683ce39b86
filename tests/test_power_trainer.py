"""The trainer's power proxy over one training step (zohw.resources.trainer_power): the memory
macros' model on a hand-checkable RAM, a small trainer's gate-level run checked against the
golden model — and a wrong golden model and a faulty netlist caught — the engine's share,
the ratio to the cheapest Gaussian trainer from the registry, and ``zohw resources --design
trainer``'s report and one-line errors."""

import copy
import json
from pathlib import Path

import pytest

from zohw import cli
from zohw.cim_config import CIMConfig
from zohw.config import EngineConfig
from zohw.hw.plan import TrainerPlan
from zohw.resources import trainer_power as tp
from zohw.resources.power import CLOCK_WEIGHT, GateSim
from zohw.resources.synth import synth_verilog
from zohw.train_config import TrainerConfig

TINY3 = str(Path(__file__).parent / "data" / "tiny3.npz")
#: A small trainer: 12 inputs, 3 classes (d = 39), P = 4, mini-batch 4: one synthesis of a few
#: tens of seconds, a gate-level step of a fraction of a second.
SMALL = TrainerConfig(dataset=TINY3, batch=4, cim=CIMConfig(tile="16x4"),
                      engine=EngineConfig(strategy="pezo-otf", lanes=4))

RAM = """
module ram(input clk, input we, input re, input [3:0] wa, input [3:0] ra, input [7:0] wd,
           output reg [7:0] rd);
  reg [7:0] mem [0:15];
  always @(posedge clk) begin
    if (we) mem[wa] <= wd;
    if (re) rd <= mem[ra];
  end
endmodule
"""


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("synth")


@pytest.fixture(scope="module")
def small(cache):
    return tp.trainer_power(SMALL, cache_dir=cache)


def test_memory_macro_reads_old_contents_and_counts_accesses(cache):
    net = synth_verilog(RAM, "asic-sram", top="ram", cache_dir=cache)
    assert net["memory"] == {"macros": 1, "bits": 128}
    # the compact netlist with the macro's parameters, as the trainer's is kept
    from zohw.resources import synth
    import tempfile
    from zohw.resources.targets import LIBERTY_NAME, check_target
    tgt = check_target("asic-sram")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "engine.v").write_text(RAM)
        Path(tmp, LIBERTY_NAME).write_bytes(Path(tgt.liberty).read_bytes())
        synth._yosys(tmp, tgt, "ram", "asic-sram", True)
        doc = json.loads(Path(tmp, "netlist.json").read_text())
    sim = GateSim(tp._compact(doc, "ram"))
    assert sim.memory_bits == 128 and len(sim.memories) == 1
    sim.start_counting()
    for a in range(16):                                   # 16 writes of 8 bits
        sim.step({"we": 1, "re": 0, "wa": a, "wd": 3 * a + 1})
    got = []
    for a in range(16):      # 16 reads; rd after the edge (get reads the post-edge state)
        sim.step({"we": a == 5, "re": 1, "ra": a, "wa": 5, "wd": 0xEE})
        got.append(sim.get("rd"))
    assert got == [3 * a + 1 for a in range(16)]          # read 5 saw the old word (no bypass)
    assert sim.memory_accesses() == {"reads": 16, "writes": 17, "bits_read": 128,
                                     "bits_written": 136}
    sim.step({"we": 0, "re": 1, "ra": 5})
    assert sim.step({"re": 0})["rd"] == 0xEE               # the write landed


def test_asynchronous_read_port_is_refused(cache):
    from zohw.resources.power import _Memory
    params = {"MEMID": "m", "WIDTH": 8, "SIZE": 4, "ABITS": 2, "RD_PORTS": 1, "WR_PORTS": 0,
              "RD_CLK_ENABLE": "0", "WR_CLK_ENABLE": "0", "RD_TRANSPARENCY_MASK": "0"}
    conn = {"RD_CLK": ["x"], "RD_EN": ["1"], "RD_ADDR": [2, 3], "RD_DATA": list(range(4, 12)),
            "RD_ARST": ["0"], "RD_SRST": ["0"], "WR_CLK": [], "WR_EN": [], "WR_ADDR": [],
            "WR_DATA": []}
    with pytest.raises(ValueError, match="memory m: an asynchronous read port"):
        _Memory(conn, params, [1])


def test_small_trainer_step_equals_the_golden_model(small):
    from zohw.datasets import load_dataset
    from zohw.sw.train import train_golden

    cfg = tp.power_trainer_config(SMALL).replace(steps=2)
    data = load_dataset(TINY3, 4, 1)
    gold = train_golden(cfg, data)
    assert [s["l_plus"] for s in small["steps"]] == gold.l_plus.tolist()
    assert [s["l_minus"] for s in small["steps"]] == gold.l_minus.tolist()
    assert [s["g"] for s in small["steps"]] == gold.g.tolist()
    # L+, L-, g, the step index of 2 steps, then every weight and write count
    assert small["compared"] == 4 * 2 + 2 * cfg.params
    assert small["step_cycles"] == TrainerPlan(cfg).cycles_per_step   # the one cycle model


def test_small_trainer_power_terms(small, cache):
    r = small
    assert r["ff"] > 0 and r["memory_bits"] > 0 and r["ge"] > 0
    assert r["power_clock"] == CLOCK_WEIGHT * r["ff"]
    assert r["power"] == pytest.approx(r["power_logic"] + r["power_clock"], abs=1e-2)
    assert r["power_logic"] < r["power_gated"] < r["power"]
    assert r["total_power"] == pytest.approx(r["power"] + r["memory_power"], abs=1e-2)
    # the memory term: bits read and written in the window x the documented weight
    bits = sum(m["bits_read"] + m["bits_written"] for m in r["memory"].values())
    assert r["memory_power"] == pytest.approx(tp.MEMORY_BIT_WEIGHT * bits / r["step_cycles"],
                                              abs=1e-2)
    assert r["memory"]["samples.mem"]["reads"] >= SMALL.batch      # the step's draws
    # the engine's cells: its flip-flops are the standalone engine's
    from zohw.resources.asic import gate_count
    from zohw.resources.synth import TOP, engine_verilog_checked
    alone = gate_count(engine_verilog_checked(tp.power_trainer_config(SMALL).engine), TOP,
                       memories="macros", cache_dir=cache)
    assert r["engine"]["ff"] == alone["ff"]
    assert 0.8 < r["engine"]["ge"] / alone["ge"] < 1.25
    assert 0 < r["engine"]["total_power"] < r["total_power"]
    again = tp.trainer_power(SMALL, cache_dir=cache)
    assert again == {**r, "cached": True}


def test_a_wrong_golden_model_is_caught(small, cache):
    with pytest.raises(tp.TrainerPowerMismatch,
                       match=r"gives l_plus = -?\d+ at step 0, the golden model"):
        tp.trainer_power(SMALL, cache_dir=cache, golden_overrides={"margin": 63})


def test_a_faulty_netlist_is_caught(small, cache):
    """The engine's generator state bit 0 stuck at 0 (its flip-flop's D input tied low): the
    perturbations change, and the weights after the step disagree with the golden model."""
    from zohw.datasets import load_dataset
    from zohw.sw.train import init_weights, train_golden

    cfg = tp.power_trainer_config(SMALL).replace(steps=2)
    net = copy.deepcopy(tp.trainer_netlist(cfg, cache_dir=cache)["netlist"])
    target = net["names"]["engine.generators.state"][0]
    ffs = [c for c in net["cells"] if c[0].startswith("DFF") and c[1]["Q"] == [target]]
    assert len(ffs) == 1
    ffs[0][1]["D"] = ["0"]
    data = load_dataset(TINY3, 4, 1)
    with pytest.raises(tp.TrainerPowerMismatch, match="the gate-level trainer"):
        tp.run_trainer_stimulus(GateSim(net), cfg, data, train_golden(cfg, data),
                                init_weights(cfg).tolist())


FAKE_TOTALS = {"gauss-clt": 3000.0, "gauss-icdf": 2000.0, "pezo-otf": 1900.0,
               "rademacher": 1800.0}


def fake_power(small):
    def power(trainer_cfg, engine_cfg=None, **kwargs):
        s = engine_cfg.strategy
        total = FAKE_TOTALS[s]
        return {**small, "strategy": s, "total_power": total, "memory_power": 100.0,
                "power_gated": total / 2 - 100.0,
                "engine": {**small["engine"], "total_power": total / 100}, "cached": False}
    return power


def test_ratio_to_the_cheapest_gaussian_trainer_from_the_registry(small, monkeypatch):
    monkeypatch.setattr(tp, "trainer_power", fake_power(small))
    engines = {s: EngineConfig(strategy=s) for s in FAKE_TOTALS}
    rows = tp.trainer_power_rows(SMALL, engines)
    # gauss-icdf (2000) is the cheaper of the registry's two Gaussian strategies
    assert {s: r["ratio"] for s, r in rows.items()} == {
        "gauss-clt": 1.5, "gauss-icdf": 1.0, "pezo-otf": 0.95, "rademacher": 0.9}
    assert rows["pezo-otf"]["gated_ratio"] == 0.95       # (total/2 - 100 + 100) / 1000
    assert rows["rademacher"]["engine_share"] == 0.01
    assert rows["rademacher"]["energy_per_step"] == round(1800.0 * small["step_cycles"])
    with pytest.raises(ValueError, match="no baseline among"):
        tp.trainer_power_rows(SMALL, {"pezo-otf": engines["pezo-otf"]})


def test_resources_design_trainer_power_report(small, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(tp, "trainer_power", fake_power(small))
    out, md = tmp_path / "t.json", tmp_path / "t.md"
    assert cli.main(["resources", "--design", "trainer", "--power", "--rng", "pezo-otf",
                     "--quiet", "--json", str(out), "--markdown", str(md)]) == 0
    report = json.loads(out.read_text())
    assert report["design"] == "trainer" and report["target"] == "asic-sram"
    assert report["baseline"].startswith("gauss-icdf")
    assert [r["strategy"] for r in report["rows"]] == ["gauss-clt", "gauss-icdf", "pezo-otf"]
    assert [r["ratio"] for r in report["rows"]] == [1.5, 1.0, 0.95]
    assert report["command"].startswith("zohw resources --design trainer --rng pezo-otf")
    text = md.read_text()
    assert "| strategy | GE |" in text and "0.950" in text and "(1.0 %)" in text
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("3 trainer power runs (3 run, 0 cached) in ")
    assert err[-1].endswith(f"wrote {out}, {md}")


@pytest.mark.parametrize("argv, message", [
    (["--design", "chip"], "design must be one of engine, trainer, not 'chip'"),
    (["--design", "trainer", "--target", "asic"], "target must be asic-sram with --design "
                                                  "trainer"),
    (["--design", "trainer", "--sweep", "lanes=4,8"], "sweep does not apply to --design "
                                                      "trainer"),
    (["--design", "trainer", "--power", "--power-cycles", "99"],
     "power_cycles does not apply to --design trainer"),
    (["--design", "trainer", "--rng", "nope"], "rng must be 'all' or a list of"),
    (["--design", "trainer", "--jobs", "2"], "jobs does not apply to --design trainer"),
])
def test_resources_design_trainer_bad_input(argv, message, monkeypatch, capsys):
    def boom(*a, **k):
        raise AssertionError("nothing may run on bad input")
    monkeypatch.setattr(tp, "trainer_power", boom)
    monkeypatch.setattr(tp, "trainer_netlist", boom)
    assert cli.main(["resources", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("zohw resources: error: ") and message in err[0]


def test_resources_design_trainer_area_report(small, cache, monkeypatch, tmp_path, capsys):
    """Without --power: the trainer's GE, flip-flops and memory bits per strategy (here the
    small trainer's synthesis stands in for every strategy's)."""
    entry = tp.trainer_netlist(tp.power_trainer_config(SMALL), cache_dir=cache)
    monkeypatch.setattr(tp, "trainer_netlist", lambda cfg, **kw: entry)
    out = tmp_path / "a.json"
    assert cli.main(["resources", "--design", "trainer", "--rng", "rademacher", "--quiet",
                     "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["strategy"] for r in rows] == ["gauss-clt", "gauss-icdf", "rademacher"]
    assert all(r["ge"] == small["ge"] and r["ff"] == small["ff"] and
               r["memory_bits"] == small["memory_bits"] == 72 * 50 + 10 * 128 for r in rows)
    assert "power" not in rows[0]
    text = tp.render_trainer_markdown(json.loads(out.read_text()))
    assert text.startswith("## Trainer area (asic-sram)") and "4 880 (2)" in text
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        "3 trainer syntheses (")
