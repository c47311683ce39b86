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
    ``read__data``): one signed weight at flat index ``addr``; when ``en`` is high at an edge,
    ``data`` shows the weight (as it was before any write at the same edge) after
    :attr:`CIMSignature.read_latency` edges, and holds while ``en`` is low.
``x`` — ``In(stream.Signature(ArrayLayout(unsigned(input_bits), rows)))``: one whole input vector
    per transfer (element r at bits ``[r*input_bits, (r+1)*input_bits)``).
``y`` — ``Out(stream.Signature(ArrayLayout(signed(result_bits), cols)))``: one result vector per
    input vector, in order (column c at bits ``[c*result_bits, (c+1)*result_bits)``).
``busy`` — ``Out(1)``: a vector is in flight (its passes are not done); weights must not be
    written while ``busy`` nor in a cycle with an input transfer.
"""

from amaranth.hdl import Array, C, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from zohw.cim_config import CIMConfig

__all__ = ["CIMSignature", "BehaviouralCIMMacro", "cim_verilog", "macro_verilog"]


class CIMSignature(wiring.Signature):
    """Interface of a CIM MAC macro configured by ``cfg`` (see the module docstring)."""

    #: Clock edges from a read request (``read.en`` high at an edge) to ``read.data`` valid.
    read_latency = 1

    def __init__(self, cfg: CIMConfig):
        if not isinstance(cfg, CIMConfig):
            raise TypeError(f"cfg must be a CIMConfig, not {cfg!r}")
        self._cfg = cfg
        super().__init__({
            "write": Out(memory.WritePort.Signature(
                addr_width=max(1, (cfg.write_groups - 1).bit_length()),
                shape=data.ArrayLayout(signed(cfg.weight_bits), cfg.write_lanes),
                granularity=1)),
            "read": Out(memory.ReadPort.Signature(
                addr_width=max(1, (cfg.words - 1).bit_length()),
                shape=signed(cfg.weight_bits))),
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


class BehaviouralCIMMacro(wiring.Component):
    """Synthesizable behavioural CIM macro, bit-exact with :func:`zohw.sw.cim.cim_matvec`.

    Weights live in ``rows * cols`` registers in offset binary (``w`` with its sign bit
    inverted); they reset to 0. Every cycle of a vector performs one pass — slice k of every
    cell times input bit-plane i (serial) or the whole input (parallel) — for all columns at
    once: ``rows`` products summed by an adder tree per column (the "analog" column sum), the
    ADC (drop ``adc_shift`` LSBs, clip at ``2**adc_bits - 1``), and a shift-add into a
    per-column accumulator. Passes run slice-major: (k, i) = (0, 0), (0, 1), …, (S-1, I-1). The
    first pass happens at the input transfer edge (on ``x.payload`` directly), the last one
    also subtracts the offset term and loads the result register, so the result is valid
    :attr:`cycles_per_vector` = ``slices * input_passes`` edges after the input transfer.

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

        # -- weight array (offset binary) ------------------------------------------------------
        cells = [Signal(wb, name=f"u_r{n // cfg.cols}_c{n % cfg.cols}", init=cfg.weight_offset)
                 for n in range(cfg.words)]
        for n, u in enumerate(cells):
            g, j = divmod(n, L)
            with m.If(self.write.en[j] & (self.write.addr == g)):
                m.d.sync += u.eq(self.write.data[j].as_unsigned() ^ sign)

        with m.If(self.read.en):
            m.d.sync += self.read.data.eq(Array(cells)[self.read.addr] ^ sign)

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

        # -- one pass: column sums, ADC, shift-add ---------------------------------------------
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
        A_bits = cfg.column_sum_bits
        contrib = []
        for c in range(cfg.cols):
            prods = []
            for r in range(cfg.rows):
                u = cells[r * cfg.cols + c]
                cell = u.word_select(k, cb) if k is not None else u
                prods.append(Mux(drive[r], cell, 0) if cfg.input_mode == "serial"
                             else cell * drive[r])
            col_sum = Signal(A_bits, name=f"colsum_c{c}")
            code = Signal(cfg.adc_bits, name=f"adc_c{c}")
            m.d.comb += col_sum.eq(_tree_sum(prods, A_bits))
            trunc = col_sum[cfg.adc_shift:]
            if cfg.adc_can_clip:
                m.d.comb += code.eq(Mux(trunc > cfg.adc_max, cfg.adc_max, trunc))
            else:                                # A_max >> adc_shift fits: clipping is a no-op
                m.d.comb += code.eq(trunc)
            recon = code << cfg.adc_shift
            contrib.append(recon << shamt if max_shift else recon)

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
