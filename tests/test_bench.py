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


def test_optimizer_overhead_section_at_small_sizes():
    o = bench.bench_optimizer_overhead(sizes=(64, 300), strategies=("pezo-otf", "pezo-block"),
                                       steps=1, say=lambda m: None)
    assert o["exact"] == {"pezo-otf": True, "pezo-block": True} and o["passed"]
    assert list(o["d"]) == ["64", "300"]
    for row in o["d"].values():
        assert row["steps"] == 10                    # 10 x steps below d = 10**6
        assert set(row) == {"steps", "randn_mezo_seconds", "gaussian_seconds",
                            "pezo-otf_seconds", "pezo-block_seconds"}
        assert all(v > 0 for k, v in row.items() if k.endswith("_seconds"))
    r = o["ratios_over_randn_mezo"]
    assert set(r) == {"gaussian", "pezo-otf", "pezo-block"}
    assert r["pezo-otf"]["300"] == (o["d"]["300"]["pezo-otf_seconds"]
                                    / o["d"]["300"]["randn_mezo_seconds"])


def test_randn_mezo_reference_step():
    """The baseline is MeZO's step: w - lr * (L+ - L-) / (2 eps) * z, z ~ N(0, 1) reseeded."""
    import torch

    w = torch.nn.Parameter(torch.zeros(5))
    target = torch.arange(5.0)
    bench.randn_mezo_step([w], lambda: ((w - target) ** 2).sum(), lr=0.1, eps=0.5, seed=3)
    torch.manual_seed(3)
    z = torch.normal(0.0, 1.0, size=(5,))
    lp, lm = (((s * 0.5 * z - target) ** 2).sum().item() for s in (1, -1))
    assert torch.allclose(w.detach(), -0.1 * (lp - lm) / 1.0 * z, atol=1e-5)


def test_optimizer_only_summary_and_argument():
    doc = {"passed": True, "optimizer_overhead": {
        "sizes": [10**4, 10**7], "strategies": ["pezo-otf", "gauss-clt"],
        "ratios_over_randn_mezo": {"pezo-otf": {"10000000": 2.44}, "gauss-clt":
                                   {"10000000": 13.9}}}}
    assert bench.summary(doc) == ("PASS ZOOptimizer step / torch.randn-MeZO step at d=1e+07: "
                                  "pezo-otf 2.4x, gauss-clt 13.9x")
    with pytest.raises(SystemExit) as exc:
        bench.main(["--json", "x.json", "--optimizer-steps", "0"])
    assert exc.value.code == 2
