"""One real synthesis of small engines (the same Amaranth code that is simulated), uncached."""

import pytest

from zohw.config import EngineConfig
from zohw.resources import parse_stat
from zohw.resources.synth import engine_verilog_checked, synth_verilog


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

    tgt = TARGETS["ecp5"]
    monkeypatch.setattr(tgt, "synth", "synth_does_not_exist -top {top}")
    v = engine_verilog_checked(EngineConfig(strategy="rademacher", lanes=2, width=4))
    res = synth_verilog(v, "ecp5", cache_dir=tmp_path)
    assert res["script"] == tgt.script("zohw_perturb_engine", fallback=True)
    monkeypatch.setattr(tgt, "fallback", None)
    with pytest.raises(RuntimeError, match="synth_does_not_exist"):
        synth_verilog(v, "ecp5", cache_dir=tmp_path, use_cache=False)
