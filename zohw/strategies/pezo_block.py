"""``pezo-block``: a pool of N uniform words in P banks, each lane read from its own pseudo-random
block offset, each word XOR-negated by a fresh sign bit.

In cycle c of step s lane j reads row ``(off_j + c mod (N/P)) mod (N/P)`` of bank j, where
``off_j`` is the lane's offset in block ``c // (N/P)`` (:func:`lane_offset` of a 16-bit LFSR
draw): one draw when a step starts and one when a block is completed, so step s uses draws
``s*D … s*D + D - 1`` with ``D = 1 + C // (N/P)``. The sign of lane j is bit j of the sign
generators' word (generators 1 …) at that position.
"""

from zohw._lazy import torch

from .base import Moments, PoolStrategy

#: Generator index whose mixing constant seeds the block-offset LFSR.
BLOCK_LFSR_INDEX = 1000
#: Steps of the 16-bit block LFSR per draw: a whole new state for every block.
BLOCK_LFSR_STEPS = 16
#: The second rotation of :func:`lane_offset`.
BLOCK_OFFSET_TWIST = 5


def lane_offset(config, state, lane):
    """Row offset of bank ``lane`` for a block-LFSR ``state`` (ints, integer tensors or
    Amaranth values — the hardware evaluates this same definition):
    ``(rotr16(state, j) + rotr16(state, j + 5)) mod (N/P)`` with j = lane mod 16.

    One offset per block would confine a block's perturbations to N/P directions; a plain
    window of the state per lane (overlapping windows) to about half of the N. The sum of two
    rotations makes the lanes' offsets independent enough that the perturbations of a block
    span all N directions (checked in ``tests/test_perturb_golden.py``).
    """
    def rotr(x, r):
        return ((x >> r) | (x << (16 - r))) & 0xFFFF
    j = lane % 16
    total = rotr(state, j) + rotr(state, (j + BLOCK_OFFSET_TWIST) % 16)
    return total & (config.pool_rows - 1)


class PezoBlock(PoolStrategy):
    name = "pezo-block"
    order = 5
    summary = "pool of N words in P banks, per-lane block offsets, fresh sign per word"
    banked = True
    MOMENTS = {"adaptive": Moments(0.15, (0.97, 1.03), (1.50, 2.10))}

    def summary_parts(self, config):
        return [f"N={config.pool}"]

    def stream_layout(self, config):
        """``sign`` — P bits per transfer from the sign generators (generators 1 …)."""
        return {"sign": (0, 1, config.lanes)}

    def golden_rows(self, config, seed, C, steps, first_step):
        from zohw.config import mix_seed
        from zohw.sources import step_matrix
        from zohw.sw.perturb import linear_sequence, pack
        R, P = config.pool_rows, config.lanes
        D = 1 + C // R
        init = mix_seed(seed, BLOCK_LFSR_INDEX, bits=16)
        draws = linear_sequence(step_matrix("lfsr16", BLOCK_LFSR_STEPS), [init],
                                1 + first_step * D, steps * D)
        state = pack(draws[:, 0, :]).reshape(steps, D)
        off = lane_offset(config, state[..., None], torch.arange(P))           # [steps, D, P]
        c = torch.arange(C)
        rows = (off[:, c // R, :] + (c % R)[:, None]) % R                        # [steps, C, P]
        return rows.reshape(steps * C, P)

    def golden_words(self, config, fields, positions, reads=None):
        flip = fields.unsigned("sign") == 1
        return torch.where(flip, -reads - 1, reads)                              # XOR-negate

    def hw_words(self, m, config, fields, ctl, reads=None):
        B = config.width
        return [(reads[j].as_unsigned() ^ fields.unsigned("sign", j).replicate(B)).as_signed()
                for j in range(config.lanes)]

    def addresser(self, config):
        from zohw.hw.addressing import BlockAddresser
        return BlockAddresser(config, lfsr_index=BLOCK_LFSR_INDEX, lfsr_steps=BLOCK_LFSR_STEPS,
                              offset=lane_offset)


STRATEGY = PezoBlock()
