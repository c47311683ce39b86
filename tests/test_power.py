"""The power proxy: the gate-level toggle counter on a known sequence, the model's arithmetic,
the normalisation to the cheapest Gaussian baseline, and an engine run checked against (and
caught by a deliberately wrong) golden stream."""

import json

import numpy as np
import pytest

from zohw import cli
from zohw.config import EngineConfig
from zohw.resources import power as pw
from zohw.resources.power import (CLOCK_WEIGHT, GateSim, counter_toggle_error,
                                  power_of_toggles, power_proxy, relative_power)
from zohw.resources.synth import synth_verilog

COUNTERS = """
module counter(input clk, input rst, output reg [7:0] q);
  always @(posedge clk) if (rst) q <= 0; else q <= q + 1;
endmodule
module counter_by_two(input clk, input rst, output reg [7:0] q);
  always @(posedge clk) if (rst) q <= 0; else q <= q + 2;
endmodule
"""


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("synth")


def run_counter(top, cache, intervals=256):
    """Reset, then count over ``intervals`` cycle boundaries from q = 0; returns the toggles
    of q's bits, the values seen and the simulator."""
    net = synth_verilog(COUNTERS, "asic", top=top, netlist=True, cache_dir=cache)["netlist"]
    sim = GateSim(net)
    sim.step({"rst": 1})
    sim.start_counting()
    seen = [sim.step({"rst": 0})["q"] for _ in range(intervals + 1)]
    q_bits = sim.ports["q"][1]          # constant bits map to the never-toggling 0 and 1
    return sim.toggles[q_bits], seen, sim


def test_free_running_counter_bit_k_toggles_every_2_to_the_k(cache):
    toggles, seen, sim = run_counter("counter", cache)
    assert seen[:5] == [0, 1, 2, 3, 4] and seen[256] == 0          # it wraps
    # bit k toggles 2^-k per cycle: 256, 128, ..., 2 times in 256 cycles
    assert toggles.tolist() == [256 >> k for k in range(8)]
    assert counter_toggle_error(toggles, 256) is None
    assert sim.n_ff == 8 and sim.cycles == 257


def test_a_wrong_toggle_count_is_caught(cache):
    toggles, _, _ = run_counter("counter", cache)
    wrong = toggles.copy()
    wrong[3] += 1
    assert counter_toggle_error(wrong, 256) == "bit 3 toggled 33 times in 256 cycles, expected 32"
    # a faulty counter (steps of two): bit 0 never moves
    faulty, _, _ = run_counter("counter_by_two", cache)
    assert counter_toggle_error(faulty, 256) == \
        "bit 0 toggled 0 times in 256 cycles, expected 256"


def test_power_of_toggles_by_hand():
    # nets: 0/1 constants, 2 an input port (no driver), 3 a NAND2 output, 4 an XOR2 output,
    # 5 a flip-flop output (area 5.6667)
    weight = np.array([0, 0, 0, 1.0, 2.0, 5.6667])
    is_q = np.array([False] * 5 + [True])
    toggles = np.array([0, 0, 99, 10, 4, 2])
    out = power_of_toggles(toggles, weight, is_q, n_ff=1, intervals=10)
    logic = (10 * 1.0 + 4 * 2.0 + 2 * 5.6667) / 10
    assert out["power_logic"] == pytest.approx(logic, abs=1e-3)
    assert out["power_clock"] == CLOCK_WEIGHT
    assert out["power"] == pytest.approx(logic + CLOCK_WEIGHT, abs=1e-3)
    assert out["power_gated"] == pytest.approx(logic + CLOCK_WEIGHT * 2 / 10, abs=1e-3)
    assert out["toggles_per_cycle"] == pytest.approx(16 / 10)        # the input port excluded


def test_normalisation_to_the_cheapest_gaussian():
    powers = {"gauss-clt": 5000.0, "gauss-icdf": 2500.0, "rademacher": 400.0, "pezo-otf": 500.0}
    ratio = relative_power(powers)
    assert ratio == {"gauss-clt": 2.0, "gauss-icdf": 1.0, "rademacher": 0.16, "pezo-otf": 0.2}
    assert relative_power({**powers, "gauss-clt": 1000.0})["rademacher"] == 0.4
    with pytest.raises(ValueError, match="no baseline among gauss-clt, gauss-icdf"):
        relative_power({"rademacher": 1.0})
    # report rows: the ratio per target and point, against the lower Gaussian row
    from zohw.resources.report import add_deltas
    rows = [{"strategy": s, "target": "asic", "lut": 0, "lut_total": 0, "ff": 1, "ge": g,
             "power": p} for s, g, p in (("gauss-clt", 10, 30.0), ("gauss-icdf", 9, 20.0),
                                          ("uniform", 5, 5.0))]
    add_deltas(rows)
    assert [r["power_ratio"] for r in rows] == [1.5, 1.0, 0.25]
    assert rows[2]["delta_pct"]["gauss-icdf"]["power"] == -75.0


SMALL = EngineConfig(strategy="rademacher", lanes=4, width=4)   # FLIP_LANE = 2 exists


def test_engine_power_checked_against_golden(cache):
    first = power_proxy(SMALL, cycles=64, cache_dir=cache, transfers=8)
    assert first["cached"] is False
    assert first["words_checked"] >= 40               # the netlist's words = the golden stream
    assert first["ff"] > 0 and first["power"] == pytest.approx(
        first["power_logic"] + CLOCK_WEIGHT * first["ff"], abs=1e-2)
    assert first["power_logic"] < first["power_gated"] < first["power"]
    again = power_proxy(SMALL, cycles=64, cache_dir=cache, transfers=8)
    assert again == {**first, "cached": True}


def test_a_wrong_golden_stream_is_caught(cache, monkeypatch):
    """A golden model with one flipped bit (tests/flipped_golden.py): the run stops and names
    the transfer."""
    import flipped_golden
    import zohw.sw.perturb

    monkeypatch.setattr(zohw.sw.perturb, "golden_stream", flipped_golden.golden_stream)
    with pytest.raises(RuntimeError, match=f"at step {flipped_golden.FLIP_STEP} pass 0 "
                                           f"transfer {flipped_golden.FLIP_CYCLE}, the golden"):
        power_proxy(SMALL, cycles=160, cache_dir=cache, transfers=8, use_cache=False)


def test_resources_asic_power_cli(cache, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert cli.main(["resources", "--quiet", "--rng", "rademacher", "--lanes", "4", "--width",
                     "4", "--target", "asic", "--power", "--power-cycles", "64",
                     "--cache-dir", str(cache), "--json", str(out), "--jobs", "1"]) == 0
    rows = {r["strategy"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"gauss-clt", "gauss-icdf", "rademacher"}
    for r in rows.values():
        assert {"ge", "ff", "power", "power_ratio", "ge_comb", "ge_seq"} <= set(r)
    assert min(rows["gauss-clt"]["power_ratio"], rows["gauss-icdf"]["power_ratio"]) == 1.0
    assert rows["rademacher"]["power_ratio"] == pytest.approx(
        rows["rademacher"]["power"] / min(rows["gauss-clt"]["power"],
                                          rows["gauss-icdf"]["power"]), abs=1e-3)
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("3 syntheses (") and "3 power simulations" in err


def test_power_cycles_must_be_a_window():
    with pytest.raises(ValueError, match="cycles must be an integer of at least 2, not 1"):
        pw.power_proxy(SMALL, cycles=1)
