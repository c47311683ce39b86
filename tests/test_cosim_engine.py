"""Co-simulation of the perturbation engine (Verilator + cocotb) against the golden model.

One Verilator build per shape holds every strategy × scaling combination of the registry (one
engine each in an EngineBank); each engine runs 8 steps of d weights under random
back-pressure, every step followed by one or two replays, and every word of every pass is
compared with ``zohw.sw.perturb.golden_stream``. The remaining tests prove each check can fail.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from zohw.config import SOURCES, EngineConfig
from zohw.sim.bank import strategy_configs
from zohw.sim.engine import cross_check
from zohw.strategies import combinations
from zohw.sw.perturb import golden_perturbations, golden_stream

# (P, B, N, d) — the second shape has d not a multiple of P, so the last transfer of a step
# carries padding lanes (generated and compared too).
SHAPES = [(4, 8, 16, 100), (16, 6, 64, 1000)]
STEPS = 8
REPORT_KEYS = {"load", "step", "pass", "cycle", "lane", "index", "expected", "got"}
RELOAD_STEPS = 2
#: The tests' runs are a few thousand cycles: an unoptimised model builds fastest (the
#: optimisation levels are measured in docs/cosim.md).
TEST_OPT = "-O0"


def shape_configs(i):
    P, B, N, _ = SHAPES[i]
    # Offsets 0 and 1: across the two shapes every combination runs on both sources.
    return strategy_configs(P, B, N, source_offset=i)


def _engine_words(result, engine):
    """Words an engine must have delivered: every pass of every step."""
    return engine["cycles_per_step"] * engine["config"]["lanes"] * (
        result["steps"] + result["replays"])


@pytest.mark.parametrize("shape", range(len(SHAPES)),
                         ids=[f"P{p}-B{b}-N{n}-d{d}" for p, b, n, d in SHAPES])
def test_cosim_all_strategies(shape):
    configs = shape_configs(shape)
    assert [(c.strategy, c.scaling) for c in configs] == combinations()
    assert {c.source for c in configs} == set(SOURCES)
    d = SHAPES[shape][3]
    # After the 8 steps, a reload with another seed must start over from that seed's step 0.
    result = cross_check(configs, seed=0x1234_5678 + shape, d=d, steps=STEPS,
                         reloads=[(0xC0FF_EE00 + shape, RELOAD_STEPS)], backpressure=0.3,
                         rng_seed=shape, opt=TEST_OPT)
    assert result["error"] is None
    assert result["protocol_errors"] == []
    assert result["steps"] == STEPS + RELOAD_STEPS and result["loads"] == 2
    assert result["replays"] >= STEPS
    bad = {e["name"]: (e["mismatches"], e["first_mismatches"][:2])
           for e in result["engines"] if e["mismatches"]}
    assert not bad, f"mismatching engines: {bad}"
    for engine in result["engines"]:
        assert engine["words_compared"] == _engine_words(result, engine), engine["name"]
    assert result["words_compared"] >= 8192
    assert (result["passed"], result["failed"]) == (1, 0)


@pytest.mark.parametrize("corruption", ["seed", "source"])
def test_cosim_detects_wrong_golden(corruption):
    """A golden model fed another seed, or another uniform source (which stands in for a
    flipped generator tap), mismatches on every engine, and the report pinpoints the words.
    Reuses the first shape's Verilator model."""
    configs = shape_configs(0)
    d = SHAPES[0][3]
    kwargs = {}
    if corruption == "seed":
        kwargs["golden_seed"] = 0x1234_5679
    else:
        kwargs["golden_config"] = [
            {"source": next(s for s in SOURCES if s != c.source)} for c in configs]
    result = cross_check(configs, seed=0x1234_5678, d=d, steps=2, backpressure=0.3,
                         rng_seed=7, opt=TEST_OPT, waves=False, **kwargs)
    assert result["failed"] == 1 and result["passed"] == 0
    assert result["waves"] is None            # waveforms: tests/test_waves.py
    assert "mismatches" in result["failures"][0][1]
    assert result["mismatches"] > 0
    for engine in result["engines"]:
        assert engine["mismatches"] > 0, engine["name"]
        reports = engine["first_mismatches"]
        assert reports, engine["name"]
        P = engine["config"]["lanes"]
        for r in reports:
            assert set(r) == REPORT_KEYS
            assert r["expected"] != r["got"]
            assert r["index"] == r["cycle"] * P + r["lane"]
            assert r["load"] == 0 and 0 <= r["step"] < 2 and 0 <= r["lane"] < P
        # The reported words are the golden model's and the hardware's, word for word.
        config = EngineConfig.from_dict(engine["config"])
        gconfig = (config if corruption == "seed" else
                   EngineConfig.from_dict({**engine["config"],
                                           **kwargs["golden_config"][engine["index"]]}))
        gseed = kwargs.get("golden_seed", 0x1234_5678)
        wrong = golden_stream(gconfig, gseed, d, 2)
        right = golden_stream(config, 0x1234_5678, d, 2)
        for r in reports:
            assert r["expected"] == wrong[r["step"], r["cycle"], r["lane"]].item()
            assert r["got"] == right[r["step"], r["cycle"], r["lane"]].item()


def test_cosim_detects_engine_faults():
    """Each check of the testbench catches its fault, on a stand-in engine: a broken replay
    (only replay passes mismatch), valid during strobes (protocol error), a single flipped bit
    (reported at its exact step, cycle and lane, in every pass of that step), a reload that
    does not re-seed (only words after the reload mismatch) and an engine that stops offering
    words (the run ends with a stall report instead of hanging; it is placed in the last step so
    that every other fault is seen first)."""
    import stand_in_engine as sie

    d = 100
    faults = iter(sie.FAULTS)
    configs = [EngineConfig(strategy="uniform", lanes=4, width=w) for w in (8, 7, 6, 5, 8, 8)]
    result = cross_check(
        configs, seed=99, d=d, steps=4, reloads=[(12345, 2)], backpressure=0.3, rng_seed=3,
        engine_factory=lambda c: sie.StandInEngine(c, next(faults), d),
        golden_module="stand_in_engine", opt=TEST_OPT, waves=False)
    by_fault = dict(zip(sie.FAULTS, result["engines"]))
    assert result["failed"] == 1

    assert result["error"].startswith("AssertionError: engines stalled in load 1 step 1 pass 0")
    assert result["error"].endswith("{5: 25}")
    assert (result["steps"], result["loads"]) == (4 + 1, 2)

    good = by_fault["none"]
    assert good["mismatches"] == 0
    # Every completed pass, plus the pass the stalled engine did not finish.
    assert good["words_compared"] == _engine_words(result, good) + 25 * 4

    replay = by_fault["replay"]
    assert replay["mismatches"] > 0
    assert all(r["pass"] >= 1 for r in replay["first_mismatches"])
    first = replay["first_mismatches"][0]
    assert (first["step"], first["pass"], first["cycle"]) == (0, 1, 0)

    strobe = by_fault["strobe-valid"]
    assert strobe["mismatches"] == 0
    messages = {p["message"] for p in result["protocol_errors"] if p["engine"] == 2}
    assert messages >= {"z.valid high during replay", "z.valid high during advance"}
    assert {p["engine"] for p in result["protocol_errors"]} == {2}

    flip = by_fault["bit-flip"]
    reports = flip["first_mismatches"]
    assert flip["mismatches"] == len(reports) >= 2      # first pass and at least one replay
    assert [r["pass"] for r in reports] == list(range(len(reports)))
    for r in reports:
        assert (r["load"], r["step"], r["cycle"], r["lane"]) == (0, sie.FLIP_STEP,
                                                                 sie.FLIP_CYCLE, sie.FLIP_LANE)
        assert r["index"] == sie.FLIP_CYCLE * 4 + sie.FLIP_LANE
        assert (r["expected"] ^ r["got"]) & 0x1F == 1    # bit 0 of the 5-bit word

    stale = by_fault["stale-reload"]
    assert stale["mismatches"] > 0
    assert all(r["load"] == 1 for r in stale["first_mismatches"])
    first = stale["first_mismatches"][0]
    assert (first["load"], first["step"], first["pass"], first["cycle"]) == (1, 0, 0, 0)


def test_cosim_locates_one_flipped_bit():
    """A golden with a single bit flipped in one word of one step (tests/flipped_golden.py)
    is caught in every pass of that step — and nowhere else — and located: load, step, pass,
    transfer, lane and index, with the two words differing in exactly that bit. Every other
    word is still compared (and matches)."""
    import flipped_golden as fg

    config = EngineConfig(strategy="pezo-otf", lanes=4)
    d = 100
    result = cross_check([config], seed=5, d=d, steps=6, backpressure=0.3, rng_seed=2,
                         golden_module="flipped_golden", bank=False, opt=TEST_OPT,
                         waves=False)
    (engine,) = result["engines"]
    reports = engine["first_mismatches"]
    assert result["failed"] == 1 and result["error"] is None
    assert engine["words_compared"] == _engine_words(result, engine)
    assert engine["mismatches"] == len(reports) >= 2       # the first pass and its replays
    assert [r["pass"] for r in reports] == list(range(len(reports)))
    for r in reports:
        assert (r["load"], r["step"], r["cycle"], r["lane"]) == (0, fg.FLIP_STEP,
                                                                 fg.FLIP_CYCLE, fg.FLIP_LANE)
        assert r["index"] == fg.FLIP_CYCLE * 4 + fg.FLIP_LANE
        assert (r["expected"] ^ r["got"]) & ((1 << config.width) - 1) == 1 << fg.FLIP_BIT
    right = golden_stream(config, 5, d, 6)
    assert reports[0]["got"] == right[fg.FLIP_STEP, fg.FLIP_CYCLE, fg.FLIP_LANE].item()
    assert result["clock"] == "gpi"


def test_hex_rows_pack_like_the_stream():
    """The golden memory image: one hex line per transfer, lanes packed as the payload."""
    from zohw.sim.engine import address_bits, hex_rows
    from zohw.sim.kit import pack

    g = torch.Generator().manual_seed(3)
    for lanes, width in ((4, 8), (3, 5), (16, 7), (1, 2)):
        words = torch.randint(-(1 << (width - 1)), 1 << (width - 1), (37, lanes), generator=g)
        lines = hex_rows(words, width).decode().splitlines()
        digits = -(-lanes * width // 4)
        assert lines == [format(pack(row, width), f"0{digits}x") for row in words.tolist()]
    assert [address_bits(n) for n in (1, 4096, 4097, 10000)] == [12, 12, 13, 14]


@pytest.mark.parametrize("command", ["perturb", "engine"])
def test_sim_perturb_cli_end_to_end(tmp_path, command):
    """``zohw sim perturb`` (or its new name ``zohw sim engine``) as a user runs it: JSON
    keys, 0 mismatches, golden dump."""
    out, dump = tmp_path / "r.json", tmp_path / "z.npz"
    argv = ["sim", command, "--rng", "gauss-clt", "--lanes", "4", "--width", "7",
            "--source", "lfsr32", "--params", "300", "--steps", "8", "--seed", "42",
            "--json", str(out), "--dump", str(dump)]
    proc = subprocess.run([sys.executable, "-m", "zohw.cli", *argv], capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout and "0 mismatches" in proc.stdout
    doc = json.loads(out.read_text())
    assert {"strategy", "config_hash", "words_compared", "mismatches", "steps",
            "replays"} <= set(doc)
    config = EngineConfig(strategy="gauss-clt", lanes=4, width=7, source="lfsr32")
    assert doc["strategy"] == "gauss-clt"
    assert doc["config_hash"] == config.config_hash
    assert doc["mismatches"] == 0 and doc["steps"] == 8 and doc["replays"] >= 8
    assert doc["words_compared"] == 75 * 4 * (8 + doc["replays"])
    with np.load(dump) as f:
        assert f["z"].dtype == np.int64 and f["z"].shape == (8, 300)
        assert float(f["lsb"]) == config.lsb
        expected = golden_perturbations(config, 42, 300, 8).to(torch.int64).numpy()
        assert np.array_equal(f["z"], expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "z.npz"]
