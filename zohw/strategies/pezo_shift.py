"""``pezo-shift``: a pool of N uniform words read one row of P words per transfer, the row pointer
running on across steps (PeZO's reuse with a shifting window)."""

from zohw._lazy import torch

from .base import Moments, PoolStrategy


class PezoShift(PoolStrategy):
    name = "pezo-shift"
    order = 4
    summary = "pool of N words, read row after row"
    banked = False
    MOMENTS = {"adaptive": Moments(0.15, (0.97, 1.03), (1.50, 2.10)),
               "fixed": Moments(0.15, (0.92, 1.10), (1.50, 2.10))}

    def summary_parts(self, config):
        return [f"N={config.pool}"]

    def golden_rows(self, config, seed, C, steps, first_step):
        """Row ``t mod (N/P)`` at transfer position t, for every lane."""
        pos = torch.arange(first_step * C, (first_step + steps) * C)
        return (pos % config.pool_rows)[:, None].expand(-1, config.lanes)

    def addresser(self, config):
        from zohw.hw.addressing import RowAddresser
        return RowAddresser(config)


STRATEGY = PezoShift()
