"""Pool addressing of the pool strategies: which row each bank reads at each transfer.

Both addressers compute the next cycle's rows as well (``addr_next``), so that a registered read
port (``pool_read="sync"``, block RAM) can be addressed one cycle ahead.
"""

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from zohw.sources import step_matrix

from .counter import StepCounter
from .generators import linear_step, mixed_seed
from .pool import AddressSignature
from .sequencer import ControlSignature

__all__ = ["RowAddresser", "BlockAddresser"]


class RowAddresser(wiring.Component):
    """One row for all lanes: row ``t mod (N/P)`` at transfer position t, the pointer running
    on across steps; a replay returns to the step's first row."""

    def __init__(self, config):
        self._config = config
        super().__init__({"ctl": In(ControlSignature),
                          "rows": Out(AddressSignature(config, banked=False))})

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        m.submodules.row = row = StepCounter(self._config.pool_rows)
        wiring.connect(m, addresser=wiring.flipped(self.ctl), row=row.ctl)
        bits = self._config.block_offset_bits
        m.d.comb += [self.rows.addr[0].eq(row.value[:bits]),
                     self.rows.addr_next[0].eq(row.value_next[:bits])]
        return m


class BlockAddresser(wiring.Component):
    """One row per bank: ``offset(config, state, j) + row within the block``, where ``state``
    is a 16-bit LFSR drawn (``lfsr_steps`` shifts) when a step starts and when a block of N/P
    transfers is complete; a replay restores the step's first draw.

    ``offset`` is the strategy's own software definition of a lane's offset, evaluated on
    Amaranth values, so hardware and golden model share it.
    """

    def __init__(self, config, *, lfsr_index, lfsr_steps, offset):
        self._config = config
        self._lfsr_index, self._lfsr_steps, self._offset = lfsr_index, lfsr_steps, offset
        super().__init__({"ctl": In(ControlSignature),
                          "rows": Out(AddressSignature(config, banked=True))})

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        ctl = self.ctl
        rows = cfg.pool_rows
        draw = step_matrix("lfsr16", self._lfsr_steps)
        lfsr = Signal(16)
        lfsr_next = Signal(16)
        ckpt = Signal(16)
        row = Signal(range(max(rows, 2)))
        row_next = Signal.like(row)
        drawn = linear_step(lfsr, draw)
        m.d.comb += [lfsr_next.eq(lfsr), row_next.eq(row)]
        with m.If(ctl.load):
            m.d.comb += lfsr_next.eq(mixed_seed(ctl.seed, self._lfsr_index, 16))
        with m.Elif(ctl.init | ctl.advance):
            m.d.comb += [lfsr_next.eq(drawn), row_next.eq(0)]
            m.d.sync += ckpt.eq(drawn)
        with m.Elif(ctl.replay):
            m.d.comb += [lfsr_next.eq(ckpt), row_next.eq(0)]
        with m.Elif(ctl.transfer):
            with m.If(row == rows - 1):
                m.d.comb += [row_next.eq(0), lfsr_next.eq(drawn)]
            with m.Else():
                m.d.comb += row_next.eq(row + 1)
        m.d.sync += [lfsr.eq(lfsr_next), row.eq(row_next)]
        obits = cfg.block_offset_bits
        for out, state, r in ((self.rows.addr, lfsr, row), (self.rows.addr_next, lfsr_next,
                                                              row_next)):
            for j in range(cfg.lanes):
                m.d.comb += out[j].eq((self._offset(cfg, state, j) + r)[:obits])
        return m
