"""The dynamic-power proxy: toggles of every net of the gate-level netlist, weighted by the cell
that drives it, plus the clock of every flip-flop — a *relative* estimate (see docs/power.md).

The engine is synthesized with the ``asic`` target (:mod:`.asic`: zohw's generic Liberty cells,
areas in NAND2 units) and its mapped netlist is simulated here, cycle by cycle, with zero
delay (:class:`GateSim`): the combinational cells are levelized once and every level is one
vectorized truth-table lookup. The stimulus is the trainer's protocol (:func:`engine_stimulus`):
reset, ``load`` a seed, wait while ``busy``, then steps of three passes over the step's words
(perturb +, perturb −, update: ``replay``, ``replay``, ``advance``, as :mod:`zohw.hw.plan`
schedules them) with ``z.ready`` always high. The words the netlist emits are checked against
the golden stream (:func:`zohw.sw.perturb.golden_stream`), so a simulation that does not do what
the engine does cannot produce a number.

Model, per clock cycle of the measured window (after ``busy`` fell)::

    power = Σ_nets toggles(net) × area(driving cell) / cycles   (logic and flip-flop outputs)
          + CLOCK_WEIGHT × flip-flops                            (every clock pin, every cycle)

in NAND2-toggle units (one output transition of a NAND2 = 1). ``power_gated`` replaces the
clock term by ``CLOCK_WEIGHT × Σ_ff toggle rate(Q)``: ideal clock gating, a lower bound.
"""

import hashlib
import json
from pathlib import Path

import numpy as np

from .asic import GENERIC_LIBERTY, liberty_hash, read_liberty, truth_table

__all__ = ["CLOCK_WEIGHT", "POWER_FORMAT", "GateSim", "engine_stimulus", "power_proxy",
           "power_of_toggles", "relative_power", "counter_toggle_error"]

#: NAND2-toggle equivalents one flip-flop's clock pin costs per cycle (two clock edges, each
#: switching the flip-flop's internal clock inverters: about one NAND2 output transition each).
CLOCK_WEIGHT = 2.0
#: Bump when the model, the stimulus or the cached result's layout changes meaning.
POWER_FORMAT = 1
#: Cycles ``busy`` may stay high after ``load`` (pool fills with adaptive scaling take passes).
BUSY_LIMIT = 100_000
#: Transfers per pass of a step in the stimulus (d = TRANSFERS × P weights).
TRANSFERS = 32


def _bit(b):
    """Index of a Yosys netlist bit in the value array: constants are 0 and 1 (x and z read
    as 0); nets keep their Yosys number (which starts at 2)."""
    if isinstance(b, int):
        return b
    return 1 if b == "1" else 0


class GateSim:
    """Zero-delay cycle simulation of a mapped netlist (:func:`.synth.synth_verilog`'s
    ``netlist``) with one clock: combinational cells and flip-flops of ``liberty``.

    ``step(inputs)`` applies the input ports (``{name: int}``, unlisted ports keep their value),
    settles the logic, counts the nets that changed since the previous settled state into
    :attr:`toggles` (when :attr:`counting`) and returns the outputs ``{name: int}`` of the cycle;
    the clock edge at the end of the cycle loads the flip-flops.

    Yosys ``$mem_v2`` cells (memories the ``asic-sram`` target leaves as macros; the netlist
    must carry their parameters as a third element) are simulated as memories with registered
    read ports; they are not gates: their accesses are counted (:meth:`memory_accesses`), not
    their nets' toggles.
    """

    def __init__(self, netlist, liberty=GENERIC_LIBERTY, clock="clk"):
        lib = read_liberty(liberty)
        self.ports = {name: (d, [_bit(b) for b in bits])
                      for name, (d, bits) in netlist["ports"].items()}
        nbits = 2 + max([b for _, bits in self.ports.values() for b in bits] +
                        [_bit(b) for cell in netlist["cells"] for bs in cell[1].values()
                         for b in bs])
        clock_bits = self.ports[clock][1] if clock in self.ports else []
        self.weight = np.zeros(nbits)          # area of the cell driving each net
        self.is_ff_q = np.zeros(nbits, bool)
        comb, ffs = [], []
        self.memories = []
        for ctype, conn, *params in netlist["cells"]:
            if ctype == "$mem_v2":
                self.memories.append(_Memory(conn, params[0] if params else None, clock_bits))
                continue
            cell = lib.get(ctype.lstrip("\\"))
            if cell is None:
                raise ValueError(f"cell {ctype} is not in {liberty}")
            pins = [_bit(conn[p][0]) for p in cell.inputs]
            out = _bit(conn[cell.output][0])
            self.weight[out] = cell.area
            if cell.sequential:
                ff = cell.ff
                clk = cell.inputs.index(ff["clocked_on"])
                if pins[clk] not in clock_bits:
                    raise ValueError(f"flip-flop {ctype} is not clocked by port {clock}")
                if cell.function != ff["state"]:
                    raise ValueError(f"{ctype}: only a Q output equal to the ff state is "
                                     f"simulated, not {cell.function!r}")
                tts = [truth_table(ff[k], cell.inputs) if ff[k] else 0
                       for k in ("next_state", "clear", "preset")]
                ffs.append((pins, out, tts))
                self.is_ff_q[out] = True
            else:
                comb.append((pins, out, truth_table(cell.function, cell.inputs)))
        self.n_ff = len(ffs)
        self._levels = self._levelize(comb, nbits)
        width = max([len(p) for p, _, _ in ffs] + [1])
        self._ff_in = np.array([p + [0] * (width - len(p)) for p, _, _ in ffs] or
                               np.zeros((0, 1)), dtype=np.int64).reshape(len(ffs), width)
        self._ff_out = np.array([o for _, o, _ in ffs], dtype=np.int64)
        self._ff_tt = np.array([t for _, _, t in ffs] or np.zeros((0, 3)),
                               dtype=np.int64).reshape(len(ffs), 3)
        self._ff_pow = (1 << np.arange(width, dtype=np.int64))
        self.values = np.zeros(nbits, np.int64)
        self.values[1] = 1
        self._prev = None
        self.toggles = np.zeros(nbits, np.int64)
        self.counting = False
        self.cycles = 0                        # cycles counted

    @staticmethod
    def _levelize(comb, nbits):
        driver_level = np.zeros(nbits, np.int64)      # 0: inputs, flip-flops, constants
        pending = list(range(len(comb)))
        drives = {out: i for i, (_, out, _) in enumerate(comb)}
        level = [None] * len(comb)
        # iterative depth-first levelization (the netlist is acyclic between flip-flops)
        for start in pending:
            stack = [start]
            while stack:
                i = stack[-1]
                if level[i] is not None:
                    stack.pop()
                    continue
                deps = [drives[b] for b in comb[i][0] if b in drives and level[drives[b]] is None]
                if deps:
                    if len(stack) > len(comb):
                        raise ValueError("combinational loop in the netlist")
                    stack.extend(deps)
                    continue
                level[i] = 1 + max([level[drives[b]] for b in comb[i][0] if b in drives],
                                   default=0)
                driver_level[comb[i][1]] = level[i]
                stack.pop()
        groups = {}
        for i, (pins, out, tt) in enumerate(comb):
            groups.setdefault(level[i], []).append((pins + [0] * (3 - len(pins)), out, tt))
        out = []
        for lv in sorted(groups):
            g = groups[lv]
            out.append((np.array([p for p, _, _ in g], dtype=np.int64),
                        np.array([o for _, o, _ in g], dtype=np.int64),
                        np.array([t for _, _, t in g], dtype=np.int64)))
        return out

    @property
    def depth(self):
        return len(self._levels)

    def _set(self, name, value):
        for k, b in enumerate(self.ports[name][1]):
            if b > 1:
                self.values[b] = (value >> k) & 1

    def get(self, name):
        bits = self.values[self.ports[name][1]].astype(np.uint8)
        return int.from_bytes(np.packbits(bits, bitorder="little").tobytes(), "little")

    def step(self, inputs):
        v = self.values
        for name, value in inputs.items():
            self._set(name, value)
        for ins, outs, tts in self._levels:
            idx = v[ins] @ _POW3
            v[outs] = (tts >> idx) & 1
        if self.counting:
            if self._prev is not None:
                self.toggles += v != self._prev
            self._prev = v.copy()
            self.cycles += 1
        outputs = {name: self.get(name) for name, (d, _) in self.ports.items() if d == "output"}
        # the clock edge: every state element samples the settled values first
        mem_updates = [m.edge(v, self.counting) for m in self.memories]
        if self.n_ff:
            idx = v[self._ff_in] @ self._ff_pow
            nxt, clr, pre = ((self._ff_tt[:, k] >> idx) & 1 for k in range(3))
            v[self._ff_out] = np.where(clr == 1, 0, np.where(pre == 1, 1, nxt))
        for bits, data in (u for ups in mem_updates for u in ups):
            v[bits] = data
        return outputs

    @property
    def memory_bits(self):
        """Σ width × words of the memory macros."""
        return sum(m.width * m.size for m in self.memories)

    def memory_accesses(self):
        """``{reads, writes, bits_read, bits_written}`` of the memory macros over the counted
        cycles (a read: a read port enabled at a clock edge, ``width`` bits; a write: a write
        port with any enabled bit, the enabled bits)."""
        keys = ("reads", "writes", "bits_read", "bits_written")
        return {k: sum(m.counts[k] for m in self.memories) for k in keys}

    def start_counting(self):
        """Count toggles from the next cycle on (the first counted cycle is the reference)."""
        self.counting = True
        self._prev = None
        self.cycles = 0
        self.toggles[:] = 0
        for m in self.memories:
            m.counts = dict.fromkeys(m.counts, 0)


def _param_int(value):
    """A Yosys cell parameter (a binary string or an integer) as an integer."""
    return int(value, 2) if isinstance(value, str) else int(value)


def _param_bits(value, width):
    """A Yosys bit-string parameter (MSB first; x and z read as 0) as ``width`` 0/1 ints, LSB
    first."""
    if isinstance(value, int):
        return [(value >> k) & 1 for k in range(width)]
    bits = [1 if c == "1" else 0 for c in reversed(value)]
    return (bits + [0] * width)[:width]


class _Memory:
    """A Yosys ``$mem_v2`` macro (the ``asic-sram`` target's SRAMs) in :class:`GateSim`:
    registered read ports (the data appear after the clock edge, old contents: not
    transparent) and write ports with per-bit enables, on the simulation's one clock. It is
    not gates: its accesses are counted (:attr:`counts`), its nets carry no cell weight."""

    def __init__(self, conn, params, clock_bits):
        if params is None:
            raise ValueError("a $mem_v2 cell needs its parameters in the netlist")
        self.name = name = str(params.get("MEMID", "?")).lstrip("\\")
        self.width, self.size = _param_int(params["WIDTH"]), _param_int(params["SIZE"])
        self.offset = _param_int(params.get("OFFSET", 0))
        nrd, nwr = _param_int(params["RD_PORTS"]), _param_int(params["WR_PORTS"])
        abits = _param_int(params["ABITS"])
        w = self.width

        def split(pin, n, k):
            bits = [_bit(b) for b in conn[pin]]
            return [bits[i * k:(i + 1) * k] for i in range(n)]

        rd_clk_en = _param_bits(params["RD_CLK_ENABLE"], max(nrd, 1))
        trans = _param_int(params.get("RD_TRANSPARENCY_MASK", 0))
        wr_clk_en = _param_bits(params["WR_CLK_ENABLE"], max(nwr, 1))
        for what, ok in (("an asynchronous read port (use a registered read port)",
                          all(rd_clk_en[:nrd])),
                         ("a transparent read port", trans == 0),
                         ("an asynchronous write port", all(wr_clk_en[:nwr]))):
            if not ok:
                raise ValueError(f"memory {name}: {what} is not simulated")
        for pin in ("RD_CLK", "WR_CLK"):
            if any(b not in clock_bits for port in split(pin, nrd if pin == "RD_CLK" else nwr, 1)
                   for b in port):
                raise ValueError(f"memory {name}: {pin} is not the clock")
        for pin in ("RD_ARST", "RD_SRST"):
            if any(b != 0 for port in split(pin, nrd, 1) for b in port):
                raise ValueError(f"memory {name}: a read port with {pin} is not simulated")
        self.rd = list(zip(split("RD_EN", nrd, 1), split("RD_ADDR", nrd, abits),
                           split("RD_DATA", nrd, w)))
        self.wr = list(zip(split("WR_EN", nwr, w), split("WR_ADDR", nwr, abits),
                           split("WR_DATA", nwr, w)))
        self._apow = 1 << np.arange(abits, dtype=np.int64)
        init = _param_bits(params.get("INIT", 0), w * self.size)
        self.data = np.array(init, dtype=np.int64).reshape(self.size, w)
        self.counts = {"reads": 0, "writes": 0, "bits_read": 0, "bits_written": 0}

    def _addr(self, v, bits):
        return int(v[bits] @ self._apow) - self.offset

    def edge(self, v, counting):
        """The clock edge on the settled values ``v``: writes done, ``[(data bits, values)]``
        of the read ports to apply after the edge (old contents)."""
        updates = []
        for (en,), abits, dbits in self.rd:
            if v[en]:
                a = self._addr(v, abits)
                updates.append((dbits, self.data[a].copy() if 0 <= a < self.size
                                else np.zeros(self.width, np.int64)))
                if counting:
                    self.counts["reads"] += 1
                    self.counts["bits_read"] += self.width
        for en, abits, dbits in self.wr:
            mask = v[en].astype(bool)
            if mask.any():
                a = self._addr(v, abits)
                if 0 <= a < self.size:
                    self.data[a, mask] = v[dbits][mask]
                if counting:
                    self.counts["writes"] += 1
                    self.counts["bits_written"] += int(mask.sum())
        return updates


_POW3 = np.array([1, 2, 4], dtype=np.int64)


def power_of_toggles(toggles, weight, is_ff_q, n_ff, intervals):
    """The model (module docstring) from per-net toggle counts over ``intervals`` cycle
    boundaries: ``{power, power_logic, power_clock, power_gated, toggles_per_cycle}``."""
    toggles = np.asarray(toggles, dtype=np.float64)
    if intervals < 1:
        raise ValueError("the measured window must span at least two cycles")
    driven = weight > 0
    logic = float((toggles * weight)[driven].sum()) / intervals
    clock = CLOCK_WEIGHT * n_ff
    gated = CLOCK_WEIGHT * float(toggles[is_ff_q].sum()) / intervals
    return {"power": round(logic + clock, 3), "power_logic": round(logic, 3),
            "power_clock": round(clock, 3), "power_gated": round(logic + gated, 3),
            "toggles_per_cycle": round(float(toggles[driven].sum()) / intervals, 3)}


def counter_toggle_error(toggles_per_bit, intervals):
    """For a free-running binary counter observed over ``intervals`` consecutive cycle
    boundaries starting at count 0: None when bit k toggled exactly ``intervals // 2**k``
    times (bit k flips when the low k bits wrap), else a message naming the first wrong bit."""
    for k, n in enumerate(toggles_per_bit):
        expected = intervals // (1 << k)
        if int(n) != expected:
            return f"bit {k} toggled {int(n)} times in {intervals} cycles, expected {expected}"
    return None


# -- the engine under the trainer's protocol ---------------------------------------------------

def engine_stimulus(sim, cfg, seed, cycles, transfers=TRANSFERS):
    """Drive :class:`GateSim` ``sim`` of engine ``cfg``: reset, load ``seed``, wait for
    ``busy`` low, then count toggles over ``cycles`` cycles of steps (``transfers`` words per
    pass, three passes per step with ``replay``, ``replay``, ``advance`` between them; z.ready
    always high). Returns the words taken, ``[steps][pass] -> list of payload ints``, and the
    cycles spent before the window (reset, load, busy)."""
    idle = {"rst": 0, "load": 0, "advance": 0, "replay": 0, "z__ready": 1, "seed": 0}
    sim.step({**idle, "rst": 1})
    sim.step({**idle, "load": 1, "seed": seed})
    warm = 2
    limit = BUSY_LIMIT
    # z.ready low until busy falls: the first word is taken inside the window
    while sim.step({**idle, "z__ready": 0})["busy"]:
        warm += 1
        if warm > limit:
            raise RuntimeError(f"{cfg.name}: busy for more than {limit} cycles after load")
    sim.start_counting()
    steps = [[[]]]
    strobes = ("replay", "replay", "advance")
    pending = None
    while sim.cycles < cycles:
        if pending is not None:
            sim.step({**idle, pending: 1})
            pending = None
            continue
        out = sim.step(idle)
        if out["z__valid"]:
            words = steps[-1][-1]
            words.append(out["z__payload"])
            if len(words) == transfers:
                pending = strobes[len(steps[-1]) - 1]
                if pending == "advance":
                    steps.append([[]])
                else:
                    steps[-1].append([])
    return steps, warm


def _lanes(words, cfg):
    """Payload integers → int64 array [n, P] of signed B-bit lane words."""
    B, P = cfg.width, cfg.lanes
    raw = np.array([[(w >> (j * B)) & ((1 << B) - 1) for j in range(P)] for w in words],
                   dtype=np.int64).reshape(len(words), P)
    return np.where(raw >= 1 << (B - 1), raw - (1 << B), raw)


def _check_stream(cfg, seed, steps, transfers):
    """Compare the words taken with the golden stream (every pass of a step emits the step's
    words); returns the number of transfers checked."""
    from zohw.sw.perturb import golden_stream

    gold = golden_stream(cfg, seed, transfers * cfg.lanes, len(steps)).numpy()  # [S, C, P]
    checked = 0
    for s, passes in enumerate(steps):
        for p, got in enumerate(passes):
            lanes = _lanes(got, cfg)
            bad = np.nonzero((lanes != gold[s, :len(got)]).any(axis=1))[0]
            if bad.size:
                i = int(bad[0])
                raise RuntimeError(f"{cfg.name}: the gate-level netlist emits {lanes[i].tolist()}"
                                   f" at step {s} pass {p} transfer {i}, the golden stream "
                                   f"{gold[s, i].tolist()}")
            checked += len(got)
    return checked


def _cache_path(key, cache_dir):
    from .synth import default_cache_dir

    return Path(cache_dir or default_cache_dir()) / f"{key}.power.json"


def power_proxy(engine_cfg, cycles=1024, seed=1, *, transfers=TRANSFERS, cache_dir=None,
                use_cache=True):
    """Dynamic-power proxy of the perturbation engine ``engine_cfg`` (model: module
    docstring), from its generic-gate netlist simulated for ``cycles`` cycles of the trainer's
    protocol; cached with the synthesis results. Returns ``power`` (NAND2-toggle units per
    cycle), ``power_logic``, ``power_clock``, ``power_gated``, ``toggles_per_cycle``, ``ff``,
    ``ge``, ``cycles``, ``words_checked`` (transfers compared with the golden stream)."""
    from zohw.cache import read_json_entry, write_json_entry

    from .asic import ge_counts
    from .synth import engine_verilog_checked, synth_verilog, yosys_version

    if isinstance(cycles, bool) or not isinstance(cycles, int) or cycles < 2:
        raise ValueError(f"cycles must be an integer of at least 2, not {cycles!r}")
    verilog = engine_verilog_checked(engine_cfg)
    key = hashlib.sha256(json.dumps({
        "format": POWER_FORMAT, "verilog": hashlib.sha256(verilog.encode()).hexdigest(),
        "yosys": yosys_version(), "liberty": liberty_hash(GENERIC_LIBERTY),
        "clock_weight": CLOCK_WEIGHT, "cycles": cycles, "seed": seed,
        "transfers": transfers, "config": engine_cfg.config_hash}, sort_keys=True
    ).encode()).hexdigest()
    path = _cache_path(key, cache_dir)
    if use_cache:
        hit = read_json_entry(path)
        if hit is not None:
            return {**hit, "cached": True}
    res = synth_verilog(verilog, "asic", netlist=True, cache_dir=cache_dir, use_cache=use_cache)
    sim = GateSim(res["netlist"])
    steps, warm = engine_stimulus(sim, engine_cfg, seed, cycles, transfers)
    checked = _check_stream(engine_cfg, seed, steps, transfers)
    cells = {k.lstrip("\\"): v for k, v in res["stat"]["design"]["num_cells_by_type"].items()
             if k != "$scopeinfo"}
    out = {**power_of_toggles(sim.toggles, sim.weight, sim.is_ff_q, sim.n_ff, sim.cycles - 1),
           "ff": sim.n_ff, "ge": ge_counts(cells)["ge"], "cycles": cycles,
           "warmup_cycles": warm, "words_checked": checked, "logic_depth": sim.depth,
           "seed": seed, "transfers_per_pass": transfers}
    if use_cache:
        write_json_entry(path, out)
    return {**out, "cached": False}


def relative_power(powers, baselines=None):
    """``{name: power / cheapest baseline power}`` for ``{name: power}``; the baseline is the
    lowest power among the ``baselines`` names present (default: the Gaussian strategies of
    the registry, ``gauss-clt`` and ``gauss-icdf``)."""
    if baselines is None:
        from zohw.strategies import REGISTRY, STRATEGIES
        baselines = [s for s in STRATEGIES if REGISTRY[s].gaussian]
    present = [powers[b] for b in baselines if b in powers]
    if not present:
        raise ValueError(f"no baseline among {', '.join(baselines)} to normalise to")
    base = min(present)
    if base <= 0:
        raise ValueError(f"the baseline power must be positive, not {base}")
    return {name: round(p / base, 4) for name, p in powers.items()}
