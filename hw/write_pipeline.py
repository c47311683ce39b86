"""The trainer's write pipeline: ``write_lanes`` weights per cycle through the CIM macros' banked
read and write ports, for the three write phases of a step, plus the write counts and the
idle-time ports.

Banking: every layer's weights (flat order within the layer, row-major) are cut into groups of
L = ``write_lanes`` consecutive weights, the layer's last group partial (its *tail*); a macro's
read and write ports move one group per cycle (:class:`zohw.hw.cim.CIMSignature`). A write pass
issues the groups of layer 0, then layer 1, …: ``W = sum_l ceil(rows_l*cols_l / L)`` cycles.

::

    stage 0   issue: CIM read of group g (every lane), its L engine words from the word buffer
    stage RL  read data valid; perturb: w + delta / w - 2 delta -> write register (per lane)
              update: operands -> the update unit (its register)
    +1        perturb: CIM write; update: w_new -> write register, counts written
    +2        update: CIM write

Word buffer: the engine delivers P words per transfer (word j of a step perturbs flat weight
j), the pipeline takes L words per cycle (fewer at a layer's tail), so groups that are not
aligned with the transfers (a layer starting mid-transfer) are realigned: a buffer of at most
P - 1 words, a transfer appended behind them when the group needs more. The padding words past
d of a step's last transfer are dropped at the end of the pass.

A lane whose write would not change the cell (``delta = 0``, or an update that changes
nothing) is not written. The write-count memory (one word of L counters per group) is updated
once per step and group in the UPDATE phase with the step's issued writes,
``2 * (delta != 0) + (w_new != w - delta)`` per lane. While idle the macros' ports serve the
(registered) ``init_*`` write port and ``rb_addr`` (flat weight indices).
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .cim import CIMSignature
from .update_unit import UpdateSignature, lane

__all__ = ["WritePipeline", "Banking"]


def _const_shift(v, k):
    """``v << k`` for k >= 0, arithmetic ``v >> -k`` otherwise (constant k)."""
    return v << k if k >= 0 else v >> -k


class Banking:
    """Where every weight lives when the layers of ``sizes`` are banked in groups of
    ``lanes``: per layer its first flat index, its groups, its tail (weights of the last
    group) and its first global group (the write-count memory's address)."""

    def __init__(self, sizes, lanes):
        self.sizes, self.lanes = tuple(sizes), lanes
        self.groups = tuple(-(-n // lanes) for n in sizes)
        self.tails = tuple(n - (g - 1) * lanes for n, g in zip(sizes, self.groups))
        self.starts = tuple(sum(sizes[:l]) for l in range(len(sizes)))
        self.group_starts = tuple(sum(self.groups[:l]) for l in range(len(sizes)))
        self.total_groups = sum(self.groups)

    def locate(self, flat):
        """``(layer, group, lane, global group)`` of flat weight index ``flat`` (python)."""
        layer = max(l for l, s in enumerate(self.starts) if s <= flat)
        g, j = divmod(flat - self.starts[layer], self.lanes)
        return layer, g, j, self.group_starts[layer] + g


class WritePipeline(wiring.Component):
    """Write pipeline of a :class:`zohw.train_config.TrainerConfig` with macros of read latency
    ``read_latency`` and banks of ``lanes`` weights (default: the layers' ``write_lanes``).

    Members
    -------
    z : In(stream(ArrayLayout(signed(B), P)))
        The engine's words; word j of a step perturbs flat weight j.
    idle, plus, minus, update : In(1)
        The phase: idle (ports serve init/read-back), PERTURB_PLUS, PERTURB_MINUS, UPDATE.
    done : Out(1)
        The phase's last write is in the write register this cycle.
    upd : In(UpdateSignature(lanes))
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
        self._lanes = cims[0].write_lanes
        self._bank = Banking(config.layer_sizes, self._lanes)
        d = config.params
        wb = config.cim.weight_bits
        members = {
            "z": In(stream.Signature(data.ArrayLayout(signed(config.engine.width),
                                                      config.engine.lanes))),
            "idle": In(1), "plus": In(1), "minus": In(1), "update": In(1),
            "done": Out(1),
            "upd": In(UpdateSignature(wb, config.engine.width, self._lanes)),
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

    @property
    def banking(self):
        return self._bank

    def _locate(self, m, addr, name):
        """``(layer, group, lane, global group)`` signals of a flat index ``addr``."""
        bank, L = self._bank, self._lanes
        nl = len(bank.sizes)
        lay = Signal(range(max(2, nl)), name=f"{name}_lay")
        loc = Signal(range(max(2, max(bank.sizes))), name=f"{name}_loc")
        grp = Signal(range(max(2, max(bank.groups))), name=f"{name}_grp")
        lane = Signal(range(max(2, L)), name=f"{name}_lane")
        gi = Signal(range(max(2, bank.total_groups)), name=f"{name}_gi")
        if nl > 1:
            m.d.comb += lay.eq(sum((addr >= s).as_unsigned() for s in bank.starts[1:]))
            m.d.comb += loc.eq(addr - Array(Const(s, len(addr)) for s in bank.starts)[lay])
        else:
            m.d.comb += [lay.eq(0), loc.eq(addr)]
        if L & (L - 1) == 0:
            shift = L.bit_length() - 1
            m.d.comb += [grp.eq(loc >> shift), lane.eq(loc[:shift] if shift else 0)]
        else:
            m.d.comb += [grp.eq(loc // L), lane.eq(loc % L)]
        if nl > 1:
            m.d.comb += gi.eq(Array(Const(s, len(gi)) for s in bank.group_starts)[lay] + grp)
        else:
            m.d.comb += gi.eq(grp)
        return lay, grp, lane, gi

    def elaborate(self, platform):
        m = Module()
        cfg, bank = self._cfg, self._bank
        nl, L = len(bank.sizes), self._lanes
        P, B = cfg.engine.lanes, cfg.engine.width
        wb, RL, cb = cfg.cim.weight_bits, self._rl, self._count_bits
        Gt = bank.total_groups
        reads = [getattr(self, f"read{l}") for l in range(nl)]
        writes = [getattr(self, f"write{l}") for l in range(nl)]
        plus, minus, upd, idle = self.plus, self.minus, self.update, self.idle
        wphase = plus | minus | upd

        # -- stage 0: issue ----------------------------------------------------------------------
        lay0 = Signal(range(max(2, nl)))                # layer
        grp0 = Signal(range(max(2, max(bank.groups))))  # group within the layer
        gi0 = Signal(range(max(2, Gt)))                 # global group
        iss_done = Signal()
        if nl > 1:
            last_grp = grp0 == Array(Const(g - 1, len(grp0)) for g in bank.groups)[lay0]
        else:
            last_grp = grp0 == bank.groups[0] - 1
        tails = sorted(set(bank.tails) - {L})
        need = Signal(range(L + 1))                     # words this group takes
        if not tails:
            m.d.comb += need.eq(L)
        elif nl > 1:
            m.d.comb += need.eq(Mux(last_grp, Array(Const(t, len(need)) for t in bank.tails)
                                    [lay0], L))
        else:
            m.d.comb += need.eq(Mux(last_grp, bank.tails[0], L))

        # the word buffer: ``fill`` words from the last transfer(s); a transfer is appended
        # when the group needs more (then fill < need <= L)
        buf = Signal(P * B)
        fill = Signal(range(P + 1))
        short = fill < need
        issue = wphase & ~iss_done & (~short | self.z.valid)
        m.d.comb += self.z.ready.eq(wphase & ~iss_done & short)
        zword = self.z.payload.as_value()
        window = Signal((P + L) * B)
        if L == 1:
            appended = zword                            # fill = 0 whenever short
        else:
            appended = Array(Cat(buf[:f * B], zword) for f in range(L))[fill[:(L - 1).bit_length()]]
        m.d.comb += window.eq(Mux(short, appended, buf))
        rest = window[L * B:]
        for t in tails:
            rest = Mux(need == t, window[t * B:], rest)
        lanes0 = Cat((need > j) for j in range(L))      # lanes of this group that exist
        with m.If(~wphase):
            m.d.sync += [lay0.eq(0), grp0.eq(0), gi0.eq(0), iss_done.eq(0), fill.eq(0)]
        with m.Elif(issue):
            m.d.sync += [gi0.eq(gi0 + 1), buf.eq(rest[:P * B]),
                         fill.eq(fill + Mux(short, P, 0) - need)]
            with m.If(last_grp):
                m.d.sync += [grp0.eq(0), lay0.eq(lay0 + 1)]
            with m.Else():
                m.d.sync += grp0.eq(grp0 + 1)
            with m.If(gi0 == Gt - 1):
                m.d.sync += iss_done.eq(1)

        # -- delay line: stage 0 (comb) .. stage RL (the read data is valid) --------------------
        def meta(k):
            return {"valid": Signal(name=f"s{k}_valid"), "last": Signal(name=f"s{k}_last"),
                    "lay": Signal.like(lay0, name=f"s{k}_lay"),
                    "grp": Signal.like(grp0, name=f"s{k}_grp"),
                    "gi": Signal.like(gi0, name=f"s{k}_gi"),
                    "mask": Signal(L, name=f"s{k}_mask"),
                    "z": Signal(L * B, name=f"s{k}_z")}
        stages = [meta(0)]
        m.d.comb += [stages[0]["valid"].eq(issue), stages[0]["last"].eq(gi0 == Gt - 1),
                     stages[0]["lay"].eq(lay0), stages[0]["grp"].eq(grp0),
                     stages[0]["gi"].eq(gi0), stages[0]["mask"].eq(lanes0),
                     stages[0]["z"].eq(window[:L * B])]
        for k in range(1, RL + 1):
            st = meta(k)
            m.d.sync += [st[f].eq(stages[-1][f]) for f in st]
            stages.append(st)
        s1 = stages[RL]
        z1 = [s1["z"][j * B:(j + 1) * B].as_signed() for j in range(L)]

        # -- CIM read ports: the training group, or the read-back group while idle ---------------
        rb_lay, rb_grp, rb_lane, rb_gi = self._locate(m, self.rb_addr, "rb")
        in_lay, in_grp, in_lane, _ = self._locate(m, self.init_addr, "in")
        rb_lay_d, rb_lane_d = rb_lay, rb_lane           # delayed like the read data
        for k in range(RL):
            nxt_lay = Signal.like(rb_lay, name=f"rb_lay_d{k + 1}")
            nxt_lane = Signal.like(rb_lane, name=f"rb_lane_d{k + 1}")
            m.d.sync += [nxt_lay.eq(rb_lay_d), nxt_lane.eq(rb_lane_d)]
            rb_lay_d, rb_lane_d = nxt_lay, nxt_lane
        for rd in reads:
            m.d.comb += [rd.en.eq(1), rd.addr.eq(Mux(idle, rb_grp, grp0))]

        def pick_layer(values, lay):
            return Array(values)[lay] if nl > 1 else values[0]

        rb_words = [pick_layer([rd.data[j] for rd in reads], rb_lay_d) for j in range(L)]
        m.d.comb += self.rb_weight.eq(Array(rb_words)[rb_lane_d] if L > 1 else rb_words[0])
        w_cur = [Signal(signed(wb), name=f"w_cur{j}") for j in range(L)]
        m.d.comb += [w_cur[j].eq(pick_layer([rd.data[j] for rd in reads], s1["lay"]))
                     for j in range(L)]

        # -- write counts: one word of L counters per group; read at stage RL - 1, data at
        # stage RL, written one stage later -------------------------------------------------------
        m.submodules.counts = cmem = memory.Memory(shape=unsigned(L * cb), depth=max(2, Gt),
                                                  init=[])
        crd = cmem.read_port()
        cwr = cmem.write_port()
        rb_cnt_lane = Signal.like(rb_lane)
        m.d.sync += rb_cnt_lane.eq(rb_lane)
        cnt_words = [crd.data[j * cb:(j + 1) * cb] for j in range(L)]
        m.d.comb += [self.rb_count.eq(Array(cnt_words)[rb_cnt_lane] if L > 1 else cnt_words[0]),
                     crd.addr.eq(Mux(idle, rb_gi, stages[RL - 1]["gi"]))]

        delta = [Signal(signed(wb + 1), name=f"delta{j}") for j in range(L)]
        m.d.comb += [delta[j].eq(_const_shift(z1[j] * cfg.eps_mult, cfg.delta_shift))
                     for j in range(L)]
        moved = Cat(*[(delta[j] != 0) & s1["mask"][j] for j in range(L)])

        # -- the write register (feeds the CIM write ports) -------------------------------------
        wr_valid = Signal()
        wr_last = Signal()
        wr_en = Signal(L)
        wr_lay = Signal.like(lay0)
        wr_grp = Signal.like(grp0)
        wr_data = [Signal(signed(wb), name=f"wr_data{j}") for j in range(L)]
        m.d.sync += wr_valid.eq(0)
        m.d.comb += self.done.eq(wr_valid & wr_last)
        with m.If(s1["valid"] & (plus | minus)):
            m.d.sync += [wr_valid.eq(1), wr_last.eq(s1["last"]), wr_lay.eq(s1["lay"]),
                         wr_grp.eq(s1["grp"]), wr_en.eq(moved)]
            m.d.sync += [wr_data[j].eq(Mux(plus, w_cur[j] + delta[j],
                                           w_cur[j] - (delta[j] << 1))) for j in range(L)]

        # -- update: operands to the update unit, metadata alongside its register ----------------
        u_valid = Signal()
        u_last = Signal()
        u_lay = Signal.like(lay0)
        u_grp = Signal.like(grp0)
        u_gi = Signal.like(gi0)
        u_mask = Signal(L)
        u_moved = Signal(L)
        u_cnt = Signal(L * cb)
        u_en = s1["valid"] & upd
        m.d.comb += [self.upd.en.eq(u_en)]
        m.d.comb += [lane(self.upd.w, j, L).eq(w_cur[j]) for j in range(L)]
        m.d.comb += [lane(self.upd.delta, j, L).eq(delta[j]) for j in range(L)]
        m.d.comb += [lane(self.upd.z, j, L).eq(z1[j]) for j in range(L)]
        m.d.sync += u_valid.eq(0)
        with m.If(u_en):
            m.d.sync += [u_valid.eq(1), u_last.eq(s1["last"]), u_lay.eq(s1["lay"]),
                         u_grp.eq(s1["grp"]), u_gi.eq(s1["gi"]), u_mask.eq(s1["mask"]),
                         u_moved.eq(moved), u_cnt.eq(crd.data)]
        u_write = self.upd.write & u_mask
        with m.If(u_valid):
            m.d.sync += [wr_valid.eq(1), wr_last.eq(u_last), wr_lay.eq(u_lay),
                         wr_grp.eq(u_grp), wr_en.eq(u_write)]
            m.d.sync += [wr_data[j].eq(lane(self.upd.w_new, j, L)) for j in range(L)]
        m.d.comb += [cwr.addr.eq(u_gi), cwr.en.eq(u_valid),
                     cwr.data.eq(Cat(*[(u_cnt[j * cb:(j + 1) * cb]
                                        + Cat(u_write[j], u_moved[j]))[:cb]
                                       for j in range(L)]))]

        # -- CIM write ports: training writes, or the init port while idle -----------------------
        init_lanes = Signal(L)
        m.d.comb += init_lanes.eq(self.init_en << in_lane)
        for l, wr in enumerate(writes):
            m.d.comb += [
                wr.en.eq(Mux(idle, Mux(in_lay == l, init_lanes, 0),
                             Mux(wr_valid & (wr_lay == l), wr_en, 0))),
                wr.addr.eq(Mux(idle, in_grp, wr_grp)),
            ]
            m.d.comb += [wr.data[j].eq(Mux(idle, self.init_data, wr_data[j]))
                         for j in range(L)]
        return m
