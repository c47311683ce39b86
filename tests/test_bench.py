"""``python -m zohw.bench``: the pieces that run in seconds (the co-simulation rates are
measured by the command itself; the co-simulations are tested in their own files)."""

import pytest

from zohw import bench


def test_amaranth_engine_rate():
    r = bench.bench_engine_amaranth("pezo-otf", d=64, steps=2)
    # 2 steps of C = 64 / 16 = 4 transfers each, plus busy cycles, pauses and advances
    assert r["cycles"] >= 2 * (4 + 1)
    assert r["cycles_per_second"] > 0 and r["words_per_second"] > 0


def test_summary_line_and_ratios():
    doc = {"passed": True,
           "trainer_cosim": {"cycles_per_second": 412_000.0},
           "engine_cosim": {s: {"words_per_second": 2.5e6} for s in bench.ENGINE_STRATEGIES},
           "ratios": {"engine_cosim_over_amaranth_cycles": {"pezo-otf": 300.0,
                                                            "pezo-block": 900.0,
                                                            "gauss-clt": 450.0},
                      "golden_over_float_mezo_steps": 1.5}}
    line = bench.summary(doc)
    assert line == ("PASS trainer co-sim 412 k cycles/s; engine co-sim M words/s: pezo-otf "
                    "2.50, pezo-block 2.50, gauss-clt 2.50; engine Verilator/Amaranth >= 300x; "
                    "golden/float MeZO 1.50x")


def test_arguments_are_validated(capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--json", "x.json", "--engine-steps", "0"])
    assert exc.value.code == 2
    assert "--engine-steps must be at least 1, not 0" in capsys.readouterr().err
