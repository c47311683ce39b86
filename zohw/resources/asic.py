"""The ASIC estimate: NAND2-equivalent gate count (GE) from a generic gate library, and the area
in µm² from a user's Liberty file.

The project's own library, :data:`GENERIC_LIBERTY` (``data/zohw_generic.lib``), has a dozen
cells whose areas are in NAND2 units (the NanGate FreePDK45 X1 ratios, documented in the file
and in ``docs/asic.md``), so the area Yosys maps a design to *is* its gate count. The flow is
the ``asic`` :class:`~.targets.Target` (``synth -flatten``, ``dfflibmap``, ``abc -liberty``);
:func:`gate_count` runs it on any Verilog text and, given ``liberty``, runs it a second time on
that library for ``area_um2`` (``stat -liberty``).

The Liberty reader here understands what the generic library uses (cells, ``area``, pins with
``direction`` and ``function``, ``ff`` groups); a user library is only handed to Yosys.
"""

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

__all__ = ["GENERIC_LIBERTY", "LibCell", "read_liberty", "liberty_hash", "check_liberty",
           "ge_counts", "gate_count", "truth_table"]

#: The generic gate library of the ``asic`` target (package data).
GENERIC_LIBERTY = Path(__file__).resolve().parent / "data" / "zohw_generic.lib"


@dataclass(frozen=True)
class LibCell:
    """One Liberty cell: ``area``, its input pins (in file order), its output pin and that
    pin's ``function``; a flip-flop has ``ff`` = ``{"next_state", "clocked_on", "clear",
    "preset"}`` (absent keys: None) and its output function names the ``ff`` state."""

    name: str
    area: float
    inputs: tuple
    output: str | None
    function: str | None
    ff: dict | None = None

    @property
    def sequential(self):
        return self.ff is not None


_TOKEN = re.compile(r'\s*(?:(/\*.*?\*/)|("(?:[^"\\]|\\.)*")|([{}();:,])|([^\s{}();:,"]+))',
                    re.S)


def _tokens(text):
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == "":
                return
            raise ValueError(f"cannot read Liberty text near {text[pos:pos + 30]!r}")
        pos = m.end()
        comment, string, punct, word = m.groups()
        if comment is not None:
            continue
        if string is not None:
            yield ("str", string[1:-1])
        elif punct is not None:
            yield ("p", punct)
        elif word is not None:
            yield ("w", word.rstrip("\\"))


def _parse_groups(text):
    """Nested ``(name, args, attributes, children)`` of a Liberty file."""
    toks = list(_tokens(text))
    i = 0

    def group_body():
        nonlocal i
        attrs, children = {}, []
        while i < len(toks) and toks[i] != ("p", "}"):
            name = toks[i][1]
            i += 1
            if toks[i] == ("p", ":"):                      # simple attribute
                i += 1
                value = []
                while toks[i] != ("p", ";"):
                    value.append(toks[i][1])
                    i += 1
                i += 1
                attrs[name] = " ".join(value)
            elif toks[i] == ("p", "("):                    # group or complex attribute
                i += 1
                args = []
                while toks[i] != ("p", ")"):
                    if toks[i] != ("p", ","):
                        args.append(toks[i][1])
                    i += 1
                i += 1
                if i < len(toks) and toks[i] == ("p", "{"):
                    i += 1
                    a, c = group_body()
                    i += 1                                  # "}"
                    children.append((name, args, a, c))
                elif i < len(toks) and toks[i] == ("p", ";"):
                    i += 1
            else:
                raise ValueError(f"unexpected Liberty token {toks[i][1]!r} after {name!r}")
        return attrs, children

    _, top = group_body()
    return top


@functools.lru_cache(maxsize=8)
def _read_liberty(path, digest):
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    libs = [g for g in _parse_groups(text) if g[0] == "library"]
    if not libs:
        raise ValueError(f"{path}: no library group")
    cells = {}
    for name, args, attrs, children in libs[0][3]:
        if name != "cell":
            continue
        inputs, output, function, ff = [], None, None, None
        for cname, cargs, cattrs, _ in children:
            if cname == "pin":
                direction = cattrs.get("direction")
                if direction == "input":
                    inputs.append(cargs[0])
                elif direction == "output":
                    output, function = cargs[0], cattrs.get("function")
            elif cname == "ff":
                ff = {k: cattrs.get(k) for k in ("next_state", "clocked_on", "clear", "preset")}
                ff["state"] = cargs[0]
        cells[args[0]] = LibCell(args[0], float(attrs.get("area", 0.0)), tuple(inputs), output,
                                 function, ff)
    return cells


def liberty_hash(path):
    """SHA-256 of a Liberty file's bytes (part of every cache key that used it)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_liberty(path=GENERIC_LIBERTY):
    """``{cell name: LibCell}`` of a Liberty file (cached by content)."""
    return _read_liberty(str(path), liberty_hash(path))


def check_liberty(path):
    """The resolved path of a readable Liberty file, or a one-line UsageError."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UsageError(f"liberty must be a readable Liberty (.lib) file, not {str(path)!r} "
                         f"(no such file)")
    try:
        with open(p, encoding="utf-8", errors="replace") as f:
            head = f.read(1 << 16)
    except OSError as exc:
        raise UsageError(f"liberty must be a readable Liberty (.lib) file, not {str(path)!r} "
                         f"({exc.strerror})") from None
    if not re.search(r"\blibrary\s*\(", head):
        raise UsageError(f"liberty must be a readable Liberty (.lib) file, not {str(path)!r} "
                         f"(no 'library (…)' group at its start)")
    return p.resolve()


# -- Boolean functions of the cells ------------------------------------------------------------

def _eval_function(expr, env):
    """Value (0/1) of a Liberty ``function`` string: ``!`` / postfix ``'`` not, ``&`` ``*`` or
    juxtaposition and, ``^`` xor, ``|`` ``+`` or; parentheses."""
    toks = re.findall(r"[A-Za-z_][A-Za-z0-9_\[\]]*|[01]|[!'&*^|+()]", expr)
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else None

    def take():
        nonlocal pos
        pos += 1
        return toks[pos - 1]

    def primary():
        t = take()
        if t == "!":
            v = 1 - primary()
        elif t == "(":
            v = or_expr()
            if take() != ")":
                raise ValueError(f"unbalanced parentheses in {expr!r}")
        elif t in ("0", "1"):
            v = int(t)
        else:
            v = env[t]
        while peek() == "'":
            take()
            v = 1 - v
        return v

    def and_expr():
        v = primary()
        while peek() is not None and peek() not in ("|", "+", "^", ")"):
            if peek() in ("&", "*"):
                take()
            v &= primary()
        return v

    def xor_expr():
        v = and_expr()
        while peek() == "^":
            take()
            v ^= and_expr()
        return v

    def or_expr():
        v = xor_expr()
        while peek() in ("|", "+"):
            take()
            v |= xor_expr()
        return v

    value = or_expr()
    if pos != len(toks):
        raise ValueError(f"cannot read Liberty function {expr!r}")
    return value


def truth_table(function, inputs):
    """The truth table of ``function`` over ``inputs`` as an integer: bit ``i`` is the output
    when input ``k`` has value ``(i >> k) & 1``."""
    tt = 0
    for i in range(1 << len(inputs)):
        env = {pin: (i >> k) & 1 for k, pin in enumerate(inputs)}
        tt |= _eval_function(function, env) << i
    return tt


# -- gate equivalents ---------------------------------------------------------------------------

def ge_counts(cells, liberty=GENERIC_LIBERTY):
    """``{ge, ge_comb, ge_seq, ff}`` of a ``{cell type: count}`` dict mapped to ``liberty``
    (areas in NAND2 units): GE = Σ count × area; flip-flops (cells with an ``ff`` group)
    counted separately. A cell the library does not define raises ValueError."""
    lib = read_liberty(liberty)
    comb = seq = 0.0
    ff = 0
    for name, n in cells.items():
        name = name[1:] if name.startswith("\\") else name
        if name not in lib:
            raise ValueError(f"cell {name} is not in {liberty}")
        cell = lib[name]
        if cell.sequential:
            seq += n * cell.area
            ff += n
        else:
            comb += n * cell.area
    return {"ge": round(comb + seq, 2), "ge_comb": round(comb, 2), "ge_seq": round(seq, 2),
            "ff": ff}


#: ``gate_count``'s ``memories``: the target that implements each choice.
MEMORY_TARGETS = {"flipflops": "asic", "macros": "asic-sram"}


def gate_count(verilog, top, liberty=None, *, memories="flipflops", cache_dir=None,
               use_cache=True):
    """NAND2-equivalent gate count of module ``top`` of ``verilog`` (synthesized with the
    ``asic`` target, cached): ``ge`` (combinational + sequential), ``ge_comb``, ``ge_seq``,
    ``ff`` (flip-flops), ``cells`` ``{name: n}`` and ``area_um2`` (with ``liberty``: the area
    ``stat -liberty`` reports on that library, in its unit, normally µm²; else None).

    ``memories="macros"`` (the ``asic-sram`` target) leaves memories as macros, outside the
    GE, and adds ``memory_bits`` and ``memory_macros``; the default maps them to flip-flops."""
    from .cells import cells_by_type
    from .synth import synth_verilog

    if memories not in MEMORY_TARGETS:
        raise UsageError(f"memories must be one of {', '.join(MEMORY_TARGETS)}, "
                         f"not {memories!r}")
    if liberty is not None:
        liberty = check_liberty(liberty)
    res = synth_verilog(verilog, MEMORY_TARGETS[memories], top=top, liberty=liberty,
                        cache_dir=cache_dir, use_cache=use_cache)
    cells = {(k[1:] if k.startswith("\\") else k): v
             for k, v in sorted(cells_by_type(res["stat"]).items())}
    cells.pop("$scopeinfo", None)
    mems = cells.pop("$mem_v2", 0)
    out = ge_counts(cells)
    out["cells"] = cells
    out["area_um2"] = res.get("area_um2")
    if memories == "macros":
        out["memory_macros"] = mems
        out["memory_bits"] = res["memory"]["bits"]
    return out
