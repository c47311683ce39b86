"""``zohw resources``: bad inputs give one-line errors with exit code 2 (before any synthesis);
the report writers and the README updater work on a stored report."""

import json
from pathlib import Path

import pytest

from zohw import cli
from zohw.resources import report as rp
from zohw.resources.asic import GENERIC_LIBERTY

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_synthesis(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("synthesis must not start on bad input")
    monkeypatch.setattr(rp, "run", boom)


@pytest.mark.parametrize("argv, message", [
    (["--target", "xilinx7,virtex2"],
     "target must be one of xilinx7, ice40, ecp5, asic, asic-sram, not 'virtex2'"),
    (["--target", "asic", "--liberty", "/nonexistent/cells.lib"],
     "liberty must be a readable Liberty (.lib) file, not '/nonexistent/cells.lib' "
     "(no such file)"),
    (["--target", "asic", "--liberty", str(ROOT / "LICENSE")],
     f"liberty must be a readable Liberty (.lib) file, not '{ROOT / 'LICENSE'}' "
     "(no 'library (…)' group"),
    (["--target", "ice40", "--liberty", str(GENERIC_LIBERTY)],
     "liberty applies to a cell-library target (asic, asic-sram), which --target 'ice40' does "
     "not name"),
    (["--power", "--power-cycles", "1"], "power_cycles must be at least 2, not 1"),
    (["--power", "--power-seed", "x"], "power_seed must be an integer, not 'x'"),
    (["--lanes", "0"], "lanes must be an integer from 1 to 64, not 0"),
    (["--lanes", "many"], "lanes must be an integer, not 'many'"),
    (["--width", "40"], "width must be an integer from 4 to 16, not 40"),
    (["--pool", "100"], "pool must be a power of two, not 100"),
    (["--rng", "gauss-box-muller"], "rng must be 'all' or a list of"),
    (["--rng", "uniform:loud"], "scaling of uniform must be one of none, fixed, adaptive"),
    (["--rng", "uniform:adaptive"], "for uniform (adaptive scaling measures a pool), "
                                    "not 'adaptive'"),
    (["--scaling", "huge"], "scaling must be one of none, fixed, adaptive, not 'huge'"),
    (["--source", "mt19937"], "source must be one of lfsr32, xorshift32, not 'mt19937'"),
    (["--clt-k", "3"], "clt_k must be one of 2, 4, 8, 12, not 3"),
    (["--sweep", "depth=1,2"], "sweep must be PARAM=V1,V2,… with PARAM one of lanes"),
    (["--sweep", "lanes=1,x"], "sweep lanes must be an integer, not 'x'"),
    (["--jobs", "0"], "jobs must be at least 1, not 0"),
    (["--plot", "chart.svg"], "plot must be a .png file"),
    (["--pool-read", "dual"], "pool_read must be one of auto, comb, sync, not 'dual'"),
])
def test_bad_input_one_line_exit_2(argv, message, capsys):
    assert cli.main(["resources", "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("zohw resources: error: ")
    assert message in err


FIRST_SEVEN = {"gauss-clt", "gauss-icdf", "uniform", "rademacher", "pezo-shift", "pezo-block",
               "pezo-otf"}


def test_sweep_skips_invalid_points():
    specs = rp.parse_rng("pezo-otf,pezo-block")
    base = {"lanes": 16, "width": 8, "pool": 256, "source": "xorshift32", "clt_k": 4}
    entries, jobs, skipped = rp.plan(specs, ["ice40"], base, rp.parse_sweep(["lanes=1,4"]))
    assert [s["strategy"] for s in skipped] == ["pezo-otf"] and skipped[0]["lanes"] == 1
    strategies = {(p["lanes"], c.strategy) for p, c, _ in entries}
    assert (4, "pezo-otf") in strategies and (1, "gauss-clt") in strategies
    assert len(jobs) == len(entries)


def test_rng_all_and_baselines():
    from zohw.strategies import STRATEGIES

    names = [s for s, _ in rp.parse_rng("all")]
    assert names == list(STRATEGIES)
    # the first seven keep their order (a new strategy adds rows, it does not reorder them)
    assert [n for n in names if n in FIRST_SEVEN] == [
        "gauss-clt", "gauss-icdf", "uniform", "rademacher", "pezo-shift", "pezo-block",
        "pezo-otf"]
    # the baselines are always added, first
    assert rp.parse_rng("pezo-block:fixed") == [
        ("gauss-clt", None), ("gauss-icdf", None), ("pezo-block", "fixed")]


def test_pool_read_auto_per_target():
    base = {"lanes": 16, "width": 8, "pool": 256, "source": "xorshift32", "clt_k": 4}
    entries, jobs, _ = rp.plan(rp.parse_rng("pezo-shift"), ["xilinx7", "ice40", "ecp5"], base)
    ports = {(c.strategy, t): c.pool_read for _, c, t in entries}
    assert ports[("pezo-shift", "ice40")] == "sync"
    assert ports[("pezo-shift", "xilinx7")] == ports[("pezo-shift", "ecp5")] == "comb"
    # the generator strategies share one configuration across targets
    assert len({c.config_hash for _, c, _ in entries if c.strategy == "gauss-clt"}) == 1
    assert len(jobs) == 9
    entries, _, _ = rp.plan(rp.parse_rng("pezo-shift"), ["ice40"], base, pool_read="comb")
    assert {c.pool_read for _, c, _ in entries} == {"comb"}


def test_pool_sweep_shares_baseline_jobs():
    base = {"lanes": 16, "width": 8, "pool": 256, "source": "xorshift32", "clt_k": 4}
    entries, jobs, _ = rp.plan(rp.parse_rng("pezo-block"), ["ecp5"], base,
                               rp.parse_sweep(["pool=64,256"]))
    assert len(entries) == 6 and len(jobs) == 4     # gauss-* synthesized once each


def fake_report():
    rows = []
    cells = {"gauss-clt": (400, 300), "gauss-icdf": (500, 200), "uniform": (150, 160),
             "pezo-block": (120, 90)}
    for t in ("xilinx7", "ice40"):
        for s, (lut, ff) in cells.items():
            rows.append({"strategy": s, "target": t, "lanes": 16, "width": 8, "pool": 256,
                         "scaling": "adaptive" if s == "pezo-block" else "none",
                         "source": "xorshift32", "clt_k": 4, "icdf_bits": 7, "otf_sources": 2,
                         "lut": lut, "lutram": 8 if s == "pezo-block" else 0,
                         "lut_total": lut + (8 if s == "pezo-block" else 0), "ff": ff,
                         "carry": 10, "ram_bits": 512 if s == "pezo-block" else 0, "bram": 0,
                         "bram_bits": 0, "dsp": 0, "muxf": 0})
    rp.add_deltas(rows)
    return {"yosys_version": "0.70+28ba3cb92", "parameters": {"lanes": 16, "width": 8},
            "sweep": {}, "skipped": [], "rows": rows, "wall_seconds": 12.0,
            "command": "zohw resources --rng all"}


def test_deltas_and_markdown():
    report = fake_report()
    blk = next(r for r in report["rows"] if r["strategy"] == "pezo-block")
    assert blk["delta_pct"]["gauss-clt"] == {"lut": -70.0, "lut_total": -68.0, "ff": -70.0}
    assert blk["delta_pct"]["gauss-icdf"]["ff"] == -55.0
    md = rp.render_markdown(report)
    assert "### xilinx7: P = 16, B = 8 → 128 bits/cycle" in md
    assert "| `pezo-block` (N=256, adaptive scaling) | 120 | 8 (512 b) | 90 |" in md
    assert "−68 %" in md and "Wall time 12 s" in md


def test_plot_and_readme(tmp_path):
    report = fake_report()
    png = tmp_path / "r.png"
    rp.write_plot(png, report)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- resources:begin -->\nold\n<!-- resources:end -->\n\ntail\n")
    js = tmp_path / "r.json"
    js.write_text(json.dumps(report))
    from zohw.resources.__main__ import main
    assert main(["--readme", str(readme), "--json", str(js)]) == 0
    text = readme.read_text()
    assert "old" not in text and text.endswith("<!-- resources:end -->\n\ntail\n")
    assert "| `gauss-clt` (K=4) | 400 |" in text
    before = text
    assert main(["--readme", str(readme), "--json", str(js)]) == 0
    assert readme.read_text() == before
    readme.write_text("no markers\n")
    assert main(["--readme", str(readme), "--json", str(js)]) == 2


def test_argparse_errors_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["resources", "--json"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --json: expected one argument" in err


def test_sweep_plot_and_summary(tmp_path):
    rows = []
    for lanes in (4, 16):
        for s, lut, ff in (("gauss-clt", 100 * lanes, 50 * lanes), ("gauss-icdf", 60 * lanes, 70),
                           ("pezo-otf", 20 * lanes + 100, 69)):
            rows.append({"strategy": s, "target": "ecp5", "lanes": lanes, "width": 8,
                         "pool": 256, "scaling": "fixed" if s == "pezo-otf" else "none",
                         "clt_k": 4, "icdf_bits": 7, "otf_sources": 2, "lut": lut, "lutram": 0,
                         "lut_total": lut, "ff": ff, "carry": 0, "ram_bits": 0, "bram": 0,
                         "bram_bits": 0, "dsp": 0, "muxf": 0, "sweep": {"lanes": lanes}})
    rp.add_deltas(rows)
    report = {"yosys_version": "x", "sweep": {"lanes": [4, 16]}, "rows": rows,
              "parameters": {}}
    summary = rp.summarize(rows)
    assert [(s["sweep"]["lanes"], s["pezo"], s["lut_total_pct"]) for s in summary] == [
        (4, "pezo-otf:fixed", -25.0), (16, "pezo-otf:fixed", -56.2)]
    png = tmp_path / "sweep.png"
    rp.write_plot(png, report)
    assert png.stat().st_size > 10_000
    md = rp.render_markdown(report)
    assert "### ecp5: P = 16, B = 8 → 128 bits/cycle (lanes=16)" in md


def test_tool_failure_exit_1(monkeypatch, capsys):
    from zohw.resources.synth import SynthesisError

    def fail(*a, **k):
        raise SynthesisError("yosys (ecp5) failed (exit 1):\nERROR: something")
    monkeypatch.setattr(rp, "run", fail)
    assert cli.main(["resources", "--quiet", "--rng", "uniform", "--target", "ecp5"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("zohw resources: yosys (ecp5) failed") and "Traceback" not in err


def test_record_names_only_what_defines_the_report():
    from zohw.commands.resources import _argv_for_record, _base

    parser = cli.build_parser()
    args = parser.parse_args(["resources"])
    base = _base(args)
    assert {k: base[k] for k in ("lanes", "width", "pool", "source", "clt_k")} == {
        "lanes": 16, "width": 8, "pool": 256, "source": "xorshift32", "clt_k": 4}
    # derived defaults are left to each configuration
    assert "icdf_bits" not in base and "otf_sources" not in base
    assert _argv_for_record(args, base) == ["--rng", "all", "--target", "xilinx7,ice40,ecp5",
                                            "--lanes", "16", "--width", "8"]
    args = parser.parse_args(["resources", "--clt-k", "8", "--icdf-bits", "5", "--lanes", "8",
                              "--pool-read", "sync", "--sweep", "pool=64,128"])
    base = _base(args)
    assert base["clt_k"] == 8 and base["icdf_bits"] == 5 and base["lanes"] == 8
    assert _argv_for_record(args, base) == [
        "--rng", "all", "--target", "xilinx7,ice40,ecp5", "--lanes", "8", "--width", "8",
        "--clt-k", "8", "--icdf-bits", "5", "--pool-read", "sync", "--sweep", "pool=64,128"]


def test_a_new_target_is_one_record(monkeypatch, capsys):
    """A Target record added to TARGETS is a --target choice (named in the help and in the
    errors) and brings its own pool read port to --pool-read auto."""
    import dataclasses

    from zohw.resources.targets import TARGETS

    fake = dataclasses.replace(TARGETS["ice40"], name="gowin", title="Gowin GW1N",
                               pool_read="comb", nextpnr=None, fmax_mhz=None)
    monkeypatch.setitem(TARGETS, "gowin", fake)
    with pytest.raises(SystemExit):
        cli.main(["resources", "--help"])
    assert "gowin (Gowin GW1N)" in " ".join(capsys.readouterr().out.split())
    assert rp.parse_targets("ice40,gowin") == ["ice40", "gowin"]
    with pytest.raises(ValueError, match="target must be one of xilinx7, ice40, ecp5, asic, "
                                         "asic-sram, gowin, "
                                         "not 'xc7'"):
        rp.parse_targets("xc7")
    base = {"lanes": 16, "width": 8, "pool": 256, "source": "xorshift32", "clt_k": 4}
    entries, _, _ = rp.plan(rp.parse_rng("pezo-block"), ["ice40", "gowin"], base)
    ports = {t: c.pool_read for _, c, t in entries if c.strategy == "pezo-block"}
    assert ports == {"ice40": "sync", "gowin": "comb"}


def test_knob_sweep_from_the_registry():
    """Every strategy knob is sweepable; only the strategies that declare it get new jobs."""
    from zohw.strategies import KNOBS

    assert set(KNOBS) <= set(rp.SWEEPABLE)
    assert {"clt_k", "icdf_bits", "otf_sources"} <= set(rp.SWEEPABLE)
    base = {"lanes": 16, "width": 8, "pool": 256, "source": "xorshift32", "clt_k": 4}
    entries, jobs, skipped = rp.plan(rp.parse_rng("uniform"), ["ecp5"], base,
                                     rp.parse_sweep(["clt_k=2,8"]))
    assert skipped == [] and len(entries) == 6
    clt = sorted(c.clt_k for _, c, _ in entries if c.strategy == "gauss-clt")
    assert clt == [2, 8]
    # gauss-icdf and uniform do not have the knob: one job each for both points
    assert len(jobs) == 4


def test_text_knob_sweep_and_label():
    """A knob of text values (sparse's nonzero) sweeps like a number; rows carry every knob and
    are labelled by the strategy's own label."""
    base = {"lanes": 16, "width": 8, "pool": 256, "source": "xorshift32", "clt_k": 4}
    sweep = rp.parse_sweep(["nonzero=rademacher,uniform", "density=2,8"])
    assert sweep == {"nonzero": ["rademacher", "uniform"], "density": [2, 8]}
    entries, jobs, skipped = rp.plan(rp.parse_rng("sparse"), ["ecp5"], base, sweep)
    sparse = {(c.nonzero, c.density) for _, c, _ in entries if c.strategy == "sparse"}
    assert sparse == {("rademacher", 2), ("rademacher", 8), ("uniform", 2), ("uniform", 8)}
    assert skipped == [] and len(jobs) == 4 + 2      # the baselines once each
    with pytest.raises(ValueError, match="nonzero must be one of rademacher, uniform, "
                                         "not 'gauss'"):
        rp.plan(rp.parse_rng("sparse"), ["ecp5"], {**base, "nonzero": "gauss"})
    row = {"strategy": "sparse", "target": "ecp5", "lanes": 16, "width": 8, "pool": 256,
           "scaling": "none", "density": 8, "nonzero": "uniform", "pool_read": None}
    assert rp._label(row) == "`sparse` (ρ=1/8, uniform)"
