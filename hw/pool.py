"""The pool memory of the pool strategies: N words in P banks (word k in bank k mod P, row
k // P), written by the fill, read by row addresses, with either read port."""

from amaranth import Const, Module, Mux, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["WriteSignature", "AddressSignature", "PoolMemory"]


def WriteSignature(config):
    """Pool word ``index`` := ``data`` when ``en``."""
    return wiring.Signature({"en": Out(1), "index": Out(range(config.pool)),
                             "data": Out(signed(config.width))})


def AddressSignature(config, banked):
    """Row addresses of the current cycle (``addr``) and of the next (``addr_next``, for a
    registered read port): one per bank if ``banked``, else one for all lanes."""
    # at least one bit: a one-row pool (N = P) has a constant address
    shape = data.ArrayLayout(unsigned(max(1, config.block_offset_bits)),
                             config.lanes if banked else 1)
    return wiring.Signature({"addr": Out(shape), "addr_next": Out(shape)})


class PoolMemory(wiring.Component):
    """``banked``: one memory per bank, each with its own address (``pezo-block``); else one
    memory P words wide, one row for all lanes (``pezo-shift``). ``config.pool_read`` picks the
    read port: ``comb`` (asynchronous, addressed by ``addr``) or ``sync`` (registered,
    addressed by ``addr_next``); the words at ``reads`` are the same either way."""

    def __init__(self, config, *, banked):
        self._config, self._banked = config, bool(banked)
        super().__init__({
            "write": In(WriteSignature(config)),
            "rows": In(AddressSignature(config, banked)),
            "reads": Out(data.ArrayLayout(signed(config.width), config.lanes)),
        })

    @property
    def config(self):
        return self._config

    @property
    def banked(self):
        return self._banked

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        P, B, rows = cfg.lanes, cfg.width, cfg.pool_rows
        lane_bits = P.bit_length() - 1
        sync = cfg.pool_read == "sync"
        domain = "sync" if sync else "comb"
        addr = self.rows.addr_next if sync else self.rows.addr
        w = self.write
        row = w.index >> lane_bits
        word = w.data.as_unsigned()
        if self._banked:
            for j in range(P):
                m.submodules[f"bank{j}"] = bank = memory.Memory(shape=unsigned(B), depth=rows,
                                                                 init=[])
                wr, rd = bank.write_port(), bank.read_port(domain=domain)
                lane_match = (w.index[:lane_bits] == j) if lane_bits else 1
                m.d.comb += [wr.addr.eq(row), wr.data.eq(word), wr.en.eq(w.en & lane_match)]
                if rows > 1:
                    m.d.comb += rd.addr.eq(addr[j])
                m.d.comb += self.reads[j].eq(rd.data.as_signed())
        else:
            m.submodules.memory = pool = memory.Memory(shape=unsigned(P * B), depth=rows, init=[])
            wr, rd = pool.write_port(granularity=B), pool.read_port(domain=domain)
            m.d.comb += [wr.addr.eq(row), wr.data.eq(word.replicate(P)),
                         wr.en.eq(Mux(w.en, Const(1, P) << w.index[:lane_bits], 0))]
            if rows > 1:
                m.d.comb += rd.addr.eq(addr[0])
            m.d.comb += [self.reads[j].eq(rd.data[j * B:(j + 1) * B].as_signed())
                         for j in range(P)]
        return m
