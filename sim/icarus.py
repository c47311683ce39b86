"""Icarus Verilog as the second simulator of every cocotb testbench (a plug-in of
:data:`zohw.sim.build.SIMULATORS`, name ``"icarus"``).

The flow is cocotb's documented custom flow ("Extending existing build flows", Icarus
Verilog)::

    iverilog -g2005 -f cmds.f -s TOP -o TOP.vvp TOP.v      # cmds.f: +timescale+1ns/1ps
    vvp -M $(cocotb-config --lib-dir) -m $(cocotb-config --lib-name vpi icarus) TOP.vvp

with the same environment variables as Verilator's (:func:`zohw.sim.build.simulate`).
Amaranth's Verilog (Yosys ``write_verilog``) is Verilog-2005, and is compiled as such: Yosys
makes every ``always @*`` block run at time 0 through a register with a declaration
initialiser, an event in Verilog-2005 but not in SystemVerilog (``-g2012``), where a block
whose inputs never change would stay X forever (the trainer's read-back multiplexers). The
compiled ``.vvp`` is cached like a Verilator model (``$ZOHW_CACHE/icarus/<key>``, a
:class:`zohw.cache.CacheEntry`). Icarus is four-state and makes every signal visible, so the
``public`` and ``opt`` build arguments do not apply (they are not in its cache key); a
waveform run passes ``-fst`` to ``vvp`` (:mod:`zohw.sim.waves`).

Icarus is one to two orders of magnitude slower than Verilator on these designs: it
cross-checks the RTL with a second, independent simulator on short runs; the long runs stay
on Verilator.
"""

import functools
import shutil
import subprocess
from pathlib import Path

from .build import SimulationError, Simulator, _run, cocotb_config, register, tail

__all__ = ["Icarus", "ICARUS", "TIMESCALE", "iverilog_available"]

#: Time unit and precision of every design (cocotb's makefiles' default); the testbenches'
#: clock period is 10 ns.
TIMESCALE = "1ns/1ps"
#: Language standard of the compilation (see the module docstring: not SystemVerilog).
LANGUAGE = "-g2005"


def iverilog_available() -> bool:
    """Whether ``iverilog`` and ``vvp`` are on ``PATH``."""
    return bool(shutil.which("iverilog") and shutil.which("vvp"))


@functools.lru_cache(maxsize=1)
def _version():
    try:
        out = subprocess.run(["iverilog", "-V"], capture_output=True, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise SimulationError(f"cannot run iverilog: {exc}") from exc
    return out.splitlines()[0].strip() if out else "unknown"


class Icarus(Simulator):
    name = "icarus"
    install_hint = "install Icarus Verilog (Debian: apt-get install iverilog)"

    def available(self):
        return iverilog_available()

    def version(self):
        return _version()

    def key_parts(self, *, public, opt, trace, timing):
        # nothing is compiled and every signal is visible: only the language and timescale
        return [LANGUAGE, f"+timescale+{TIMESCALE}"]

    def executable(self, directory, toplevel):
        return Path(directory) / f"{toplevel}.vvp"

    def build_into(self, directory, verilog, toplevel, *, public, opt, trace, timing,
                   timeout_s):
        src = directory / f"{toplevel}.v"
        src.write_text(verilog)
        cmds = directory / "cmds.f"
        cmds.write_text(f"+timescale+{TIMESCALE}\n")
        log = directory / "build.log"
        try:
            _run(["iverilog", LANGUAGE, "-f", str(cmds), "-s", toplevel, "-o",
                  str(self.executable(directory, toplevel)), str(src)], cwd=directory,
                 env=None, log=log, timeout_s=timeout_s, what="iverilog")
        except SimulationError as exc:
            raise SimulationError(f"Icarus build of {toplevel} failed: {exc}\n"
                                  f"{tail(log)}") from None

    def command(self, model, *, plusargs=(), trace=False):
        # vvp's own options, the compiled design, then its extended arguments and plusargs
        return ["vvp", "-M", cocotb_config("--lib-dir"),
                "-m", cocotb_config("--lib-name", "vpi", "icarus"), str(model.executable),
                *(["-fst"] if trace else []), *plusargs]


ICARUS = register(Icarus())
