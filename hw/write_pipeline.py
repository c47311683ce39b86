"""The trainer's write pipeline: one weight per cycle through the CIM macros' read and write
ports, for the three write phases of a step, plus the write counts and the idle-time ports.

::

    stage 0   issue: CIM read of weight i, engine transfer into the lane buffer on lane 0
    stage RL  read data valid; perturb: w + delta / w - 2 delta -> write register
              update: operands -> the update unit (its register)
    +1        perturb: CIM write; update: w_new -> write register, count written
    +2        update: CIM write

A write whose value equals the cell's content (``delta = 0``, or an update that changes
nothing) is suppressed. The write-count memory is updated once per step and weight in the
UPDATE phase with the step's issued writes, ``2 * (delta != 0) + (w_new != w - delta)``.
While idle the macros' ports serve the (registered) ``init_*`` write port and ``rb_addr``.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .cim import CIMSignature
from .update_unit import UpdateSignature

__all__ = ["WritePipeline"]


def _const_shift(v, k):
    """``v << k`` for k >= 0, arithmetic ``v >> -k`` otherwise (constant k)."""
    return v << k if k >= 0 else v >> -k


class WritePipeline(wiring.Component):
    """Write pipeline of a :class:`zohw.train_config.TrainerConfig` with macros of read latency
    ``read_latency``.

    Members
    -------
    z : In(stream(ArrayLayout(signed(B), P)))
        The engine's words; word j of a step perturbs flat weight j.
    idle, plus, minus, update : In(1)
        The phase: idle (ports serve init/read-back), PERTURB_PLUS, PERTURB_MINUS, UPDATE.
    done : Out(1)
        The phase's last write is in the write register this cycle.
    upd : In(UpdateSignature)
        To the update unit.
    read<l>, write<l> : In(the read / write port signatures of layer l's macro)
    init_en, init_addr, init_data : In
        Weight write port while idle (flat index).
    rb_addr : In ; rb_weight, rb_count : Out
        Read-back of a weight and its write count (flat index).
    """

    def __init__(self, config, *, read_latency=1, count_bits=32):
        self._cfg = config
        self._rl = read_latency
        self._count_bits = count_bits
        cims = config.layer_cims
        d = config.params
        wb = config.cim.weight_bits
        members = {
            "z": In(stream.Signature(data.ArrayLayout(signed(config.engine.width),
                                                      config.engine.lanes))),
            "idle": In(1), "plus": In(1), "minus": In(1), "update": In(1),
            "done": Out(1),
            "upd": In(UpdateSignature(wb, config.engine.width)),
            "init_en": In(1),
            "init_addr": In(range(max(2, d))),
            "init_data": In(signed(wb)),
            "rb_addr": In(range(max(2, d))),
            "rb_weight": Out(signed(wb)),
            "rb_count": Out(count_bits),
        }
        for l, c in enumerate(cims):
            ports = CIMSignature(c).members
            members[f"read{l}"] = In(ports["read"].signature)
            members[f"write{l}"] = In(ports["write"].signature)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        sizes = cfg.layer_sizes
        nl, d = len(sizes), cfg.params
        P, B = cfg.engine.lanes, cfg.engine.width
        wb, RL = cfg.cim.weight_bits, self._rl
        reads = [getattr(self, f"read{l}") for l in range(nl)]
        writes = [getattr(self, f"write{l}") for l in range(nl)]
        plus, minus, upd, idle = self.plus, self.minus, self.update, self.idle
        wphase = plus | minus | upd

        # -- stage 0: issue ----------------------------------------------------------------------
        i0 = Signal(range(max(2, d)))             # flat index
        lay0 = Signal(range(max(2, nl)))          # layer
        loc0 = Signal(range(max(2, max(sizes))))  # index within the layer
        lane0 = Signal(range(max(2, P)))
        iss_done = Signal()
        zbuf = Signal(P * B)                      # lanes 1.. of the current transfer, shifting
        need_z = lane0 == 0
        issue = wphase & ~iss_done & (~need_z | self.z.valid)
        m.d.comb += self.z.ready.eq(wphase & ~iss_done & need_z)
        zword = self.z.payload.as_value()
        z0 = Mux(need_z, zword[:B], zbuf[:B]).as_signed()
        with m.If(~wphase):
            m.d.sync += [i0.eq(0), lay0.eq(0), loc0.eq(0), lane0.eq(0), iss_done.eq(0)]
        with m.Elif(issue):
            m.d.sync += [i0.eq(i0 + 1), lane0.eq(Mux(lane0 == P - 1, 0, lane0 + 1)),
                         zbuf.eq(Mux(need_z, zword, zbuf) >> B)]
            if nl > 1:
                last_loc = Array(Const(sz - 1, len(loc0)) for sz in sizes)[lay0]
                with m.If(loc0 == last_loc):
                    m.d.sync += [loc0.eq(0), lay0.eq(lay0 + 1)]
                with m.Else():
                    m.d.sync += loc0.eq(loc0 + 1)
            else:
                m.d.sync += loc0.eq(loc0 + 1)
            with m.If(i0 == d - 1):
                m.d.sync += iss_done.eq(1)

        # -- delay line: stage 0 (comb) .. stage RL (the read data is valid) --------------------
        def meta(k):
            return {"valid": Signal(name=f"s{k}_valid"), "last": Signal(name=f"s{k}_last"),
                    "lay": Signal.like(lay0, name=f"s{k}_lay"),
                    "loc": Signal.like(loc0, name=f"s{k}_loc"),
                    "i": Signal.like(i0, name=f"s{k}_i"),
                    "z": Signal(signed(B), name=f"s{k}_z")}
        stages = [meta(0)]
        m.d.comb += [stages[0]["valid"].eq(issue), stages[0]["last"].eq(i0 == d - 1),
                     stages[0]["lay"].eq(lay0), stages[0]["loc"].eq(loc0),
                     stages[0]["i"].eq(i0), stages[0]["z"].eq(z0)]
        for k in range(1, RL + 1):
            st = meta(k)
            m.d.sync += [st[f].eq(stages[-1][f]) for f in st]
            stages.append(st)
        s1 = stages[RL]

        # -- CIM read ports: the training address, or the read-back address while idle ----------
        rb_loc = Signal.like(loc0)
        in_loc = Signal.like(loc0)
        if nl > 1:
            rb_lay = Signal.like(lay0)
            in_lay = Signal.like(lay0)
            m.d.comb += [
                rb_lay.eq(self.rb_addr >= sizes[0]),
                rb_loc.eq(Mux(rb_lay, self.rb_addr - sizes[0], self.rb_addr)),
                in_lay.eq(self.init_addr >= sizes[0]),
                in_loc.eq(Mux(in_lay, self.init_addr - sizes[0], self.init_addr)),
            ]
            rb_lay_d = rb_lay                     # layer of the read data (delayed like it)
            for k in range(RL):
                nxt = Signal.like(lay0, name=f"rb_lay_d{k + 1}")
                m.d.sync += nxt.eq(rb_lay_d)
                rb_lay_d = nxt
        else:
            in_lay = Const(0, 1)
            m.d.comb += [rb_loc.eq(self.rb_addr), in_loc.eq(self.init_addr)]
        for rd in reads:
            m.d.comb += [rd.en.eq(1), rd.addr.eq(Mux(idle, rb_loc, loc0))]
        rdata = [rd.data for rd in reads]
        m.d.comb += self.rb_weight.eq(Array(rdata)[rb_lay_d] if nl > 1 else rdata[0])
        w_cur = Signal(signed(wb))
        m.d.comb += w_cur.eq(Array(rdata)[s1["lay"]] if nl > 1 else rdata[0])

        # -- write counts: read at stage RL - 1, data at stage RL, written one stage later -------
        m.submodules.counts = cmem = memory.Memory(shape=unsigned(self._count_bits), depth=d,
                                                  init=[])
        crd = cmem.read_port()
        cwr = cmem.write_port()
        m.d.comb += [self.rb_count.eq(crd.data),
                     crd.addr.eq(Mux(idle, self.rb_addr, stages[RL - 1]["i"]))]

        delta = Signal(signed(wb + 1))
        m.d.comb += delta.eq(_const_shift(s1["z"] * cfg.eps_mult, cfg.delta_shift))

        # -- the write register (feeds the CIM write ports) -------------------------------------
        wr_valid = Signal()
        wr_last = Signal()
        wr_en = Signal()
        wr_lay = Signal.like(lay0)
        wr_loc = Signal.like(loc0)
        wr_data = Signal(signed(wb))
        m.d.sync += wr_valid.eq(0)
        m.d.comb += self.done.eq(wr_valid & wr_last)
        with m.If(s1["valid"] & (plus | minus)):
            m.d.sync += [wr_valid.eq(1), wr_last.eq(s1["last"]), wr_lay.eq(s1["lay"]),
                         wr_loc.eq(s1["loc"]), wr_en.eq(delta != 0),
                         wr_data.eq(Mux(plus, w_cur + delta, w_cur - (delta << 1)))]

        # -- update: operands to the update unit, metadata alongside its register ----------------
        u_valid = Signal()
        u_last = Signal()
        u_lay = Signal.like(lay0)
        u_loc = Signal.like(loc0)
        u_i = Signal.like(i0)
        u_moved = Signal()
        u_cnt = Signal(self._count_bits)
        u_en = s1["valid"] & upd
        m.d.comb += [self.upd.en.eq(u_en), self.upd.w.eq(w_cur), self.upd.delta.eq(delta),
                     self.upd.z.eq(s1["z"])]
        m.d.sync += u_valid.eq(0)
        with m.If(u_en):
            m.d.sync += [u_valid.eq(1), u_last.eq(s1["last"]), u_lay.eq(s1["lay"]),
                         u_loc.eq(s1["loc"]), u_i.eq(s1["i"]), u_moved.eq(delta != 0),
                         u_cnt.eq(crd.data)]
        with m.If(u_valid):
            m.d.sync += [wr_valid.eq(1), wr_last.eq(u_last), wr_lay.eq(u_lay),
                         wr_loc.eq(u_loc), wr_en.eq(self.upd.write),
                         wr_data.eq(self.upd.w_new)]
        m.d.comb += [cwr.addr.eq(u_i), cwr.data.eq(u_cnt + Cat(self.upd.write, u_moved)),
                     cwr.en.eq(u_valid)]

        # -- CIM write ports: training writes, or the init port while idle -----------------------
        for l, wr in enumerate(writes):
            m.d.comb += [
                wr.en.eq(Mux(idle, self.init_en & (in_lay == l),
                             wr_valid & wr_en & (wr_lay == l))),
                wr.addr.eq(Mux(idle, in_loc, wr_loc)),
                wr.data[0].eq(Mux(idle, self.init_data, wr_data)),
            ]
        return m
