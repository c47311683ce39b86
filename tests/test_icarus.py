"""The engine, CIM and trainer cocotb testbenches under the second simulator, Icarus Verilog,
bit-exact against the same golden models as under Verilator (issue 12, deliverable 5).

Collected only when ``iverilog`` is installed (tests/conftest.py prints one line otherwise).
Icarus is slow, so the runs are short: two steps of one engine per strategy, one
CIM batch, three trainer steps at a small batch. A planted one-bit golden error is located
exactly as under Verilator — and leaves an FST waveform of its step.
"""

import pytest

from zohw.cim_config import CIMConfig
from zohw.config import SOURCES, EngineConfig
from zohw.sim.bank import strategy_configs
from zohw.sim.engine import cross_check
from zohw.sim.waves import is_fst
from zohw.strategies import REGISTRY
from zohw.sw.perturb import golden_stream

ICARUS = {"simulator": "icarus"}


def test_engine_every_strategy_family():
    """One bank with one engine per registered strategy (the scalings and both sources spread
    over them), 2 steps of d = 100 with replays and back-pressure: every word equals the golden
    model's. (Every strategy x scaling combination runs under Verilator,
    tests/test_cosim_engine.py.)"""
    configs = list({c.strategy: c for c in reversed(strategy_configs(4, 8, 16))}.values())
    assert sorted(c.strategy for c in configs) == sorted(REGISTRY)
    assert {c.source for c in configs} == set(SOURCES)
    assert len({c.scaling for c in configs}) > 1
    result = cross_check(configs, seed=0x1234_5678, d=100, steps=2, backpressure=0.3,
                         rng_seed=1, **ICARUS)
    assert result["simulator"] == "icarus"
    assert result["error"] is None and result["protocol_errors"] == []
    bad = {e["name"]: e["first_mismatches"][:2] for e in result["engines"] if e["mismatches"]}
    assert not bad, bad
    assert (result["passed"], result["failed"], result["steps"]) == (1, 0, 2)
    for e in result["engines"]:
        assert e["words_compared"] == (e["cycles_per_step"] * e["config"]["lanes"]
                                       * (result["steps"] + result["replays"])), e["name"]
    assert result["waves"] is None


def test_engine_flipped_bit_located_with_waveform(tmp_path):
    """The one-bit golden error of tests/flipped_golden.py is caught under Icarus in every pass
    of its step and nowhere else, at its exact step, transfer, lane and bit; the rerun leaves an
    FST file of that step in ``waves_dir``."""
    import flipped_golden as fg

    config = EngineConfig(strategy="pezo-otf", lanes=4)
    result = cross_check([config], seed=5, d=100, steps=fg.FLIP_STEP + 1, backpressure=0.3,
                         rng_seed=2, golden_module="flipped_golden", bank=False,
                         waves_dir=tmp_path, **ICARUS)
    (engine,) = result["engines"]
    reports = engine["first_mismatches"]
    assert result["failed"] == 1 and engine["mismatches"] == len(reports) >= 2
    for r in reports:
        assert (r["load"], r["step"], r["cycle"], r["lane"]) == (0, fg.FLIP_STEP,
                                                                 fg.FLIP_CYCLE, fg.FLIP_LANE)
        assert (r["expected"] ^ r["got"]) & 0xFF == 1 << fg.FLIP_BIT
    right = golden_stream(config, 5, 100, fg.FLIP_STEP + 1)
    assert reports[0]["got"] == right[fg.FLIP_STEP, fg.FLIP_CYCLE, fg.FLIP_LANE].item()
    waves = result["waves"]
    assert waves["error"] is None and waves["simulator"] == "icarus"
    assert (waves["load"], waves["step"]) == (0, fg.FLIP_STEP)
    path = tmp_path / f"zohw_engine_harness-load0-step{fg.FLIP_STEP}.fst"
    assert waves["path"] == str(path)
    assert is_fst(path) and path.stat().st_size > 1000
    assert [p.name for p in tmp_path.iterdir()] == [path.name]     # no temporary file left


#: One CIM batch: the lossy serial macro of tests/test_cim.py.
CIM = CIMConfig(rows=20, cols=4, weight_bits=8, cell_bits=2, input_bits=3, adc_bits=4,
                adc_shift=1, input_mode="serial", write_lanes=3)


def test_cim_one_batch():
    from zohw.sim.cim import cim_cosim

    result = cim_cosim(CIM, vectors=8, phases=1, seed=3, **ICARUS)
    run = result["run"]
    assert run["simulator"] == "icarus"
    assert (run["passed"], run["failed"]) == (1, 0), run["failures"]
    assert result["vectors"] == 8 and result["columns_compared"] == 8 * CIM.cols
    assert result["mismatches"] == 0 and result["weight_mismatches"] == 0
    assert result["weights_read"] >= CIM.words
    assert result["latency_errors"] == [] and result["protocol_errors"] == []


def test_cim_wrong_golden_fails():
    """The same batch against a golden model with the weight offset off by one: caught."""
    from zohw.sim.cim import cim_cosim

    result = cim_cosim(CIM, vectors=8, phases=1, seed=3, golden_offset_delta=1, **ICARUS)
    assert result["run"]["failed"] == 1
    assert result["mismatches"] > 0 and result["first_mismatches"]


def test_trainer_steps_bit_exact_and_a_waveform(monkeypatch, tmp_path):
    """Three training steps of the digits trainer (batch 2) on the RTL under Icarus: L+, L- and
    g of every step, and every weight and write count at the end and after 2 steps (read from
    the wrapper's checkpoint registers) equal the golden model's — but one weight planted wrong
    in the golden checkpoint, which is reported at its step and index; the rerun leaves an FST
    file of the failing step (step 1: the checkpoint after 2 steps)."""
    from zohw.sim import trainer as host
    from zohw.sim.waves import fst_span
    from zohw.train_config import TrainerConfig

    real = host.golden_checkpoints

    def wrong(cfg, data, at, golden=None):
        out = real(cfg, data, at, golden)
        w, c = out[2]
        w = w.clone()
        w[17] += 1
        out[2] = (w, c)
        return out

    monkeypatch.setattr(host, "golden_checkpoints", wrong)
    cfg = TrainerConfig(batch=2)
    r = host.run_trainer_cosim(cfg, 3, checkpoint_every=2, waves=True, waves_dir=tmp_path,
                               **ICARUS)
    assert r["simulator"] == "icarus"
    assert r["error"] is None and r["steps"] == 3 and r["checkpoints"] == [2]
    assert r["compared"] == 4 * 3 + 2 * cfg.params * 2
    assert r["mismatches"] == 1 and not r["passed"]
    (m,) = r["first_mismatches"]
    assert (m["step"], m["quantity"], m["index"], m["expected"] - m["got"]) == (2, "weight",
                                                                                 17, 1)
    waves = r["waves"]
    assert waves["error"] is None, waves
    assert (waves["simulator"], waves["step"], waves["window"]) == ("icarus", 1, [0, 0])
    path = tmp_path / "zohw_trainer_sim-step1.fst"
    assert waves["path"] == str(path) and is_fst(path)
    start, end = fst_span(path)
    assert start < end
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize("name", ["icarus", "verilator"])
def test_simulator_registry(name):
    from zohw.sim.build import SIMULATORS, build_key, get_simulator

    assert get_simulator(name) is SIMULATORS[name] and get_simulator(name).available()
    text = "module m(input wire clk);\nendmodule\n"
    assert build_key(text, "m", simulator=name) != build_key(
        text, "m", simulator=({"icarus", "verilator"} - {name}).pop())
    with pytest.raises(ValueError, match="simulator must be one of icarus, verilator, not 'x'"):
        get_simulator("x")


def test_damaged_icarus_model_is_rebuilt(tmp_path, monkeypatch, capfd):
    """A truncated ``.vvp`` and an entry without its completion marker: each is discarded with
    one warning line naming it, rebuilt, and the run passes."""
    import re
    import sys
    from pathlib import Path

    from zohw.cache import CacheEntry
    from zohw.sim.host import run_cocotb

    sys.path.insert(0, str(Path(__file__).parent))
    from test_runner import counter_verilog

    monkeypatch.setenv("ZOHW_CACHE", str(tmp_path))
    first = run_cocotb(counter_verilog(), "zohw_counter", "tb_counter", **ICARUS)
    assert (first["passed"], first["failed"]) == (2, 0)
    entry = Path(first["build_dir"])
    vvp = entry / "zohw_counter.vvp"
    text = vvp.read_bytes()
    damages = [lambda: vvp.write_bytes(text[:len(text) // 2]),
               lambda: next(p for p in entry.iterdir() if p.name.startswith(".zohw")).unlink()]
    for damage in damages:
        damage()
        capfd.readouterr()
        healed = run_cocotb(counter_verilog(), "zohw_counter", "tb_counter", **ICARUS)
        warnings = [line for line in capfd.readouterr().err.splitlines()
                    if "cache entry" in line]
        assert len(warnings) == 1, warnings
        assert re.fullmatch(rf"zohw: cache entry {re.escape(str(entry))} is damaged \(.+\); "
                            r"rebuilding", warnings[0])
        assert (healed["passed"], healed["failed"]) == (2, 0)
        assert healed["build_seconds"] > 0 and CacheEntry(entry).damage() is None
