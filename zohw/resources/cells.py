"""The classification of Yosys ``stat -json`` cell counts into resource classes.

Everything here reads the machine-readable ``stat -json`` output of Yosys (never its text log).
Each :class:`~.targets.Target` maps the primitive cell types its script emits to these resource
classes:

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

A cell-library target (``asic``) instead reads its Liberty file: ``ff`` counts the cells with an
``ff`` group, and the counts gain ``ge``, ``ge_comb`` and ``ge_seq`` (:func:`.asic.ge_counts`).

Cell types that are pure I/O, clock buffering or constants are ignored; any other cell type lands
in ``other`` (a dict) so that a primitive the table does not know never disappears silently.
"""

from .targets import TARGETS, Target, check_target

__all__ = ["TARGETS", "COUNT_KEYS", "Target", "parse_stat", "cells_by_type", "classify",
           "check_target"]

COUNT_KEYS = ("lut", "lutram", "lut_total", "ff", "carry", "ram_bits", "bram", "bram_bits",
              "dsp", "muxf")


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
    lib = None
    if target.liberty is not None:
        from .asic import read_liberty
        lib = read_liberty(target.liberty)
    for raw, n in sorted(cells.items()):
        cell = _strip(raw)
        if cell in target.ignore:
            continue
        if lib is not None and cell in lib:
            # a library cell: flip-flops are counted here, every cell in the gate equivalents
            if lib[cell].sequential:
                counts["ff"] += n
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
    if lib is not None:
        from .asic import ge_counts
        known = {_strip(k): v for k, v in cells.items() if _strip(k) in lib}
        counts.update({k: v for k, v in ge_counts(known, target.liberty).items() if k != "ff"})
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
