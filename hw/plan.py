# amaranth: UnusedElaboratable=no
"""The one cycle model and width plan of the ZO trainer, computed once from a configuration.

:class:`TrainerPlan` is what :class:`zohw.hw.trainer.ZOTrainer` elaborates to (its widths and
its schedule), what the golden model reports (:func:`zohw.sw.train.cycle_breakdown`) and what
the tests check the RTL's cycle counter against. Plain Python: it asks the CIM macros (made by
the injected factory, default :class:`zohw.hw.cim.BehaviouralCIMMacro`) for their latencies and
the loss plug-in (:mod:`zohw.losses`) for its maximum; nothing is elaborated.

Schedule of one step (``W = sum over layers of ceil(rows*cols / write_lanes)`` issue cycles of
a write pass — every layer's weights are banked in groups of ``write_lanes``, a group per
cycle —, ``RL`` the macros' read latency, ``cpv`` a macro's cycles per vector, C classes, B the
batch, n layers)::

    PERTURB_PLUS, PERTURB_MINUS   W + RL + 1      issue, read data, write register
    UPDATE                        W + RL + 2      ... plus the update unit's register
    FORWARD_PLUS, FORWARD_MINUS   Fw = 1 + B*I + (sum(cpv) - I + (n - 1)) + C + 1
                                  I = max(max(cpv), C): a vector every I cycles; a
                                  requantiser register between consecutive layers
    DIFF                          1
    strobes                       3               replay, replay, advance
"""

import functools

from zohw.errors import ConfigError
from zohw.losses import get as get_loss
from zohw.train_config import TrainerConfig

__all__ = ["TrainerPlan", "cycle_model", "layer_macros", "default_macro", "SAMPLE_READ",
           "REQUANT", "DIFF", "STROBES", "UPDATE_REGS", "SAMPLE_MEMORY_BITS_MAX"]

#: Cycles of the schedule that do not depend on the macros (see the module docstring).
SAMPLE_READ = 1      # sample memory read before the first CIM transfer
REQUANT = 1          # MLP: the requantiser's register between the macros
DIFF = 1             # g = sat(L+ - L-)
STROBES = 3          # replay, replay, advance: one cycle each
UPDATE_REGS = 1      # the update unit's register stage

#: Largest sample memory (bits) the trainer elaborates: 16 MiB of block RAM is far beyond any
#: FPGA this project targets; a bigger data set must be subsampled first.
SAMPLE_MEMORY_BITS_MAX = 1 << 27


def _bits(n):
    """Bits of an unsigned integer n >= 0 (at least 1)."""
    return max(1, int(n).bit_length())


def _dataset_capacity(config):
    """The sample memory's depth: the train-set size of the configuration's data set."""
    try:
        from zohw.sw.data import dataset_info
    except ImportError:         # TODO(issue 10): until sw.data re-exports it
        from zohw.datasets import dataset_info
    return dataset_info(config.dataset, config.input_pool).n_train


def default_macro():
    """The default macro factory: :class:`zohw.hw.cim.BehaviouralCIMMacro`."""
    from .cim import BehaviouralCIMMacro
    return BehaviouralCIMMacro


@functools.lru_cache(maxsize=64)
def _macros(cims, factory):
    return tuple(factory(c) for c in cims)


def layer_macros(config: TrainerConfig, macro=None):
    """The macro objects of every layer (``macro(cim_config)`` for each of
    ``config.layer_cims``; default :func:`default_macro`), cached: they only answer questions
    (latencies, golden model); the trainer elaborates fresh ones."""
    return _macros(config.layer_cims, macro or default_macro())


class TrainerPlan:
    """Geometry and schedule of the trainer for a configuration (plain Python, no hardware).

    Parameters
    ----------
    config : TrainerConfig
    capacity : int
        Depth of the sample memory.
    count_bits : int
        Width of a write counter.
    macro : callable or None
        CIM macro factory ``macro(CIMConfig) -> component`` with ``cycles_per_vector`` and
        ``read_latency``; default :class:`zohw.hw.cim.BehaviouralCIMMacro`.
    """

    def __init__(self, config: TrainerConfig, capacity=None, count_bits=32, macro=None):
        if not isinstance(config, TrainerConfig):
            raise TypeError(f"config must be a TrainerConfig, not {config!r}")
        if capacity is None:
            capacity = _dataset_capacity(config)
        for name, v, lo, hi in (("capacity", capacity, 1, 1 << 20),
                                ("count_bits", count_bits, 1, 64)):
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an integer from {lo} to {hi}, not {v!r}")
        self._cfg = config
        self._capacity = capacity
        self._count_bits = count_bits
        self._macro = macro or default_macro()
        self._macros = layer_macros(config, self._macro)
        rl = {m.read_latency for m in self._macros}
        if len(rl) != 1 or min(rl) < 1:
            raise ValueError("the CIM macros must share one read latency of at least 1, "
                             f"not {sorted(rl)}")
        self._read_latency = rl.pop()
        lanes = {c.write_lanes for c in config.layer_cims}
        if len(lanes) != 1:
            raise ValueError(f"the CIM macros must share one write_lanes, not {sorted(lanes)}")
        self._lanes = lanes.pop()
        bits = capacity * self.sample_bits
        if bits > SAMPLE_MEMORY_BITS_MAX:
            raise ConfigError(
                f"the sample memory of {capacity} samples x {self.sample_bits} bits "
                f"({bits} bits) exceeds the limit of {SAMPLE_MEMORY_BITS_MAX} bits; use fewer "
                "samples, fewer input bits or --input-pool")

    @property
    def config(self):
        return self._cfg

    @property
    def capacity(self):
        """Depth of the sample memory (samples): the data set's train-set size unless given."""
        return self._capacity

    @property
    def inputs(self):
        """Features of a sample (the model's inputs before the constant bias input)."""
        return self._cfg.inputs

    @property
    def classes(self):
        """Classes (the output layer's columns)."""
        return self._cfg.classes

    @property
    def label_bits(self):
        """Width of a label."""
        return self._cfg.label_bits

    @property
    def sample_bits(self):
        """Bits of one sample in the sample memory: the input codes, then the label."""
        return self.inputs * self._cfg.layer_cims[0].input_bits + self.label_bits

    @property
    def write_lanes(self):
        """Weights a write pass reads and writes per cycle (every layer's bank width)."""
        return self._lanes

    @property
    def layer_groups(self):
        """Write groups (addresses of a bank) of every layer: ``ceil(rows*cols / lanes)``."""
        L = self._lanes
        return tuple(-(-n // L) for n in self._cfg.layer_sizes)

    @property
    def tiles(self):
        """``(row_tiles, col_tiles)`` of every layer's macro."""
        return tuple((c.row_tiles, c.col_tiles) for c in self._cfg.layer_cims)

    @property
    def utilisation(self):
        """Used cells / tile cells of every layer's macro."""
        return tuple(c.utilisation for c in self._cfg.layer_cims)

    @property
    def label_queue(self):
        """Depth of the loss unit's label queue: at least the vectors in flight between the
        sample memory and the loss unit (two per macro, one per requantiser, one at the loss
        unit), a power of two."""
        n = len(self._macros)
        return 1 << (3 * n).bit_length()

    @property
    def count_bits(self):
        return self._count_bits

    @property
    def macro(self):
        """The macro factory."""
        return self._macro

    @property
    def macros(self):
        """The macro objects of every layer (latencies, golden model)."""
        return self._macros

    @property
    def params(self):
        """d: weights per step."""
        return self._cfg.params

    @property
    def read_latency(self):
        """RL: edges from a CIM read request to its data."""
        return self._read_latency

    @property
    def cycles_per_vector(self):
        """cpv of every layer's macro."""
        return tuple(m.cycles_per_vector for m in self._macros)

    @property
    def readback_latency(self):
        """Edges from ``rb_addr`` to ``rb_weight``/``rb_count``: the boundary register, then
        the CIM read port."""
        return 1 + self._read_latency

    # -- widths ---------------------------------------------------------------------------------

    @property
    def score_range(self):
        """(min, max) of a score ``y >> logit_shift`` of the output layer."""
        last = self._cfg.layer_cims[-1]
        ls = self._cfg.logit_shift
        return last.result_min >> ls, last.result_max >> ls

    @property
    def score_bits(self):
        """Width of a signed score."""
        smin, smax = self.score_range
        return max(_bits(abs(smin)), _bits(smax)) + 1

    @property
    def loss_max(self):
        """Largest mini-batch loss (the loss plug-in's per-sample maximum times the batch)."""
        cfg = self._cfg
        return cfg.batch * get_loss(cfg.loss).sample_max(cfg, *self.score_range)

    @property
    def loss_bits(self):
        """Bits of an (unsigned) mini-batch loss."""
        return _bits(self.loss_max)

    @property
    def product_max(self):
        """Largest |gz * z| of the update."""
        cfg = self._cfg
        gmax = (1 << (cfg.diff_bits - 1)) if cfg.update == "sgd" else 1
        return gmax * cfg.lr_mult * (1 << (cfg.engine.width - 1))

    @property
    def max_shift(self):
        """Update shifts beyond this give the same result (the decayed shift saturates here)."""
        return max(self._cfg.lr_shift, _bits(self.product_max) + 1)

    # -- schedule -------------------------------------------------------------------------------

    @property
    def issue_interval(self):
        """I: cycles between vectors of the forward pass (slowest macro or the loss unit)."""
        return max(max(self.cycles_per_vector), self.classes)

    @property
    def write_pass_cycles(self):
        """W: issue cycles of one write pass (one bank group of ``write_lanes`` weights of one
        layer per cycle)."""
        return sum(self.layer_groups)

    @property
    def write_pipe(self):
        """Cycles a perturbation write pass adds to W: the read latency and the write
        register."""
        return self._read_latency + 1

    @property
    def update_pipe(self):
        """Cycles the update pass adds to W: the write pipe and the update unit's register."""
        return self.write_pipe + UPDATE_REGS

    @property
    def forward_cycles(self):
        """Fw: cycles of one forward pass, loss included (see the module docstring)."""
        cfg = self._cfg
        cpv = self.cycles_per_vector
        I = self.issue_interval
        extra = sum(cpv) - I + REQUANT * (len(cpv) - 1)
        return SAMPLE_READ + cfg.batch * I + extra + self.classes + 1

    def cycle_breakdown(self):
        """Cycles of every phase of a step."""
        w, f = self.write_pass_cycles, self.forward_cycles
        return {"perturb_plus": w + self.write_pipe, "forward_plus": f,
                "perturb_minus": w + self.write_pipe, "forward_minus": f, "difference": DIFF,
                "update": w + self.update_pipe, "strobes": STROBES}

    @property
    def cycles_per_step(self):
        """Cycles per step (exact: the schedule has no data-dependent stalls)."""
        return sum(self.cycle_breakdown().values())

    @property
    def floor_cycles_per_step(self):
        """The schedule's floor ``3*ceil(d/P) + 2*B*cpv`` (P engine lanes, B the batch, cpv
        the slowest macro's cycles per vector): three write passes at the engine's rate and two
        forward passes at the macros' rate, no pipeline."""
        cfg = self._cfg
        return (3 * -(-cfg.params // cfg.engine.lanes)
                + 2 * cfg.batch * max(self.cycles_per_vector))


def cycle_model(config: TrainerConfig, macro=None, **kwargs):
    """The :class:`TrainerPlan` of ``config`` with the macro factory ``macro``."""
    return TrainerPlan(config, macro=macro, **kwargs)
