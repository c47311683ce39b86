"""One real synthesis of small engines (the same Amaranth code that is simulated), uncached."""

import dataclasses
import functools

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from zohw.config import EngineConfig
from zohw.resources import parse_stat
from zohw.resources.synth import SynthesisError, engine_verilog_checked, synth_verilog


def synth(cfg, tmp_path, target="ecp5"):
    res = synth_verilog(engine_verilog_checked(cfg), target, cache_dir=tmp_path)
    assert res["cached"] is False
    return parse_stat(res["stat"], target)


def test_small_engines_sane_relations(tmp_path):
    small = dict(lanes=2, width=6, pool=16)
    clt = synth(EngineConfig(strategy="gauss-clt", clt_k=12, **small), tmp_path)
    uni = synth(EngineConfig(strategy="uniform", scaling="none", **small), tmp_path)
    for c in (clt, uni):
        assert c["other"] == {} and c["bram"] == 0 and c["dsp"] == 0
    # K = 12 uniforms of 4 bits per lane summed by an adder tree vs. a bare generator slice
    assert clt["lut_total"] > uni["lut_total"]
    assert clt["ff"] >= uni["ff"]     # 24 x 4 random bits/cycle need 3 generators, uniform 1
    assert uni["ff"] >= 64            # state + checkpoint of one 32-bit generator


def test_cache_hit(tmp_path):
    cfg = EngineConfig(strategy="rademacher", lanes=2, width=4)
    v = engine_verilog_checked(cfg)
    first = synth_verilog(v, "ecp5", cache_dir=tmp_path)
    again = synth_verilog(v, "ecp5", cache_dir=tmp_path)
    assert (first["cached"], again["cached"]) == (False, True)
    assert again["stat"] == first["stat"]
    assert len(list(tmp_path.glob("*.json"))) == 1


def test_fallback_script(tmp_path, monkeypatch):
    from zohw.resources.cells import TARGETS

    tgt = dataclasses.replace(TARGETS["ecp5"], synth="synth_does_not_exist -top {top}")
    monkeypatch.setitem(TARGETS, "ecp5", tgt)
    v = engine_verilog_checked(EngineConfig(strategy="rademacher", lanes=2, width=4))
    res = synth_verilog(v, "ecp5", cache_dir=tmp_path)
    assert res["script"] == tgt.script("zohw_perturb_engine", fallback=True)
    monkeypatch.setitem(TARGETS, "ecp5", dataclasses.replace(tgt, fallback=None))
    with pytest.raises(RuntimeError, match="synth_does_not_exist"):
        synth_verilog(v, "ecp5", cache_dir=tmp_path, use_cache=False)


class _BadEngine(wiring.Component):
    """An engine that breaks the contract: a payload ``short`` bits short, or no replay."""

    def __init__(self, config, short=0, replay=True):
        members = {"seed": In(32), "load": In(1), "advance": In(1),
                   "z": Out(wiring.Signature({"payload": Out(config.lanes * config.width - short),
                                              "valid": Out(1), "ready": In(1)}))}
        if replay:
            members["replay"] = In(1)
        super().__init__(members)

    def elaborate(self, platform):
        return Module()


def test_port_check_can_fail(monkeypatch):
    """The equal-throughput check reads the component's signature and rejects a narrow payload
    or a missing replay input before anything is synthesized."""
    import zohw.hw.engine

    cfg = EngineConfig(strategy="rademacher", lanes=2, width=4)
    assert "module zohw_perturb_engine(" in engine_verilog_checked(cfg)
    monkeypatch.setattr(zohw.hw.engine, "PerturbationEngine",
                        functools.partial(_BadEngine, short=1))
    with pytest.raises(SynthesisError, match=r"z__payload is \('output', 7\), expected "
                                             r"\('output', 8\)"):
        engine_verilog_checked(cfg)
    monkeypatch.setattr(zohw.hw.engine, "PerturbationEngine",
                        functools.partial(_BadEngine, replay=False))
    with pytest.raises(SynthesisError, match="no 1-bit replay input"):
        engine_verilog_checked(cfg)


def test_logic_memories_leave_other_designs_alone(tmp_path, monkeypatch):
    """The asic flows map ``ram_style = "logic"`` memories first (``LOGIC_MEMORIES``), on the
    modules that hold one only: an engine's netlist is the same as without that step."""
    from zohw.resources.cells import TARGETS
    from zohw.resources.targets import LOGIC_MEMORIES

    v = engine_verilog_checked(EngineConfig(strategy="pezo-block", lanes=2, width=4, pool=16))
    with_step = synth_verilog(v, "asic", cache_dir=tmp_path)
    tgt = TARGETS["asic"]
    assert tgt.synth.startswith(LOGIC_MEMORIES)
    monkeypatch.setitem(TARGETS, "asic", dataclasses.replace(
        tgt, synth=tgt.synth[len(LOGIC_MEMORIES):]))
    without = synth_verilog(v, "asic", cache_dir=tmp_path)
    assert (with_step["cached"], without["cached"]) == (False, False)
    assert with_step["stat"] == without["stat"]
