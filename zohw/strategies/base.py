"""What a perturbation strategy declares, and the arithmetic its word maps share.

A strategy (one module of :mod:`zohw.strategies`) is one object that gives both the software
model — a vectorized torch *golden word map* — and the hardware — an Amaranth *hardware word map*
— from the same description, as Amaranth's ``lib.crc`` ``Parameters`` gives ``compute()`` and
``create()``: its knobs, family flags, accepted scaling modes, random-field layout and expected
moments. :class:`zohw.config.EngineConfig`, the engine, the golden model, the command line and
the tests all read these declarations; nothing outside the strategy modules names a strategy.

Both word maps see the same *fields*: slices of the wide random word (the concatenated states of
the strategy's stream generators, generator 0 in the low bits) as the layout declares them.
"""

from dataclasses import dataclass

from zohw._lazy import torch

__all__ = ["Knob", "Moments", "Strategy", "GeneratorStrategy", "PoolStrategy",
           "GoldenFields", "HardwareFields", "shift_add", "scale_uniform",
           "SQRT3_TERMS", "UNIFORM_GUARD", "ADAPTIVE_MANT_BITS", "ADAPTIVE_TABLE_FRAC",
           "ADAPTIVE_SCALE_FRAC"]

#: √3 as shift-add terms (sign, left shift) applied to a word with 2 guard bits: 2 - 1/4 = 1.75.
SQRT3_TERMS = ((+1, 1), (-1, -2))
#: Guard bits between a raw uniform word (B bits, U(-1, 1)) and the output format (B - 3
#: fraction bits): the raw word has B - 1 fraction bits.
UNIFORM_GUARD = 2
#: Adaptive scaling (pool strategies): mantissa bits taken from the sum of squares, precision of
#: the 1/√m table, and fraction bits of the scale factor applied to raw words.
ADAPTIVE_MANT_BITS = 6
ADAPTIVE_TABLE_FRAC = 12
ADAPTIVE_SCALE_FRAC = 10


@dataclass(frozen=True)
class Knob:
    """A strategy parameter; it becomes an :class:`~zohw.config.EngineConfig` field and a
    command-line option. ``derive(config)`` computes a default left ``None`` (its docstring is
    the help's default text). ``lo``/``hi`` may be callables of the configuration; with
    ``owner_only`` the range is enforced only when the configuration's strategy declares the
    knob (a derived default may not fit the others). ``bank_values``: values the co-simulation
    bank alternates over its shapes (default: the default alone)."""

    name: str
    default: object
    help: str
    kind: type = int
    lo: object = None
    hi: object = None
    allowed: tuple | None = None
    choices: tuple | None = None
    derive: object = None
    metavar: str | None = None
    owner_only: bool = False
    bank_values: tuple = ()

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Moments:
    """Expected moments of a strategy's words (units of the target std) with tolerances:
    ``|mean - mean| <= mean_tol``, std within ``std``, kurtosis within ``kurtosis``."""

    mean_tol: float
    std: tuple
    kurtosis: tuple
    mean: float = 0.0

    def failures(self, mean, std, kurtosis):
        """What is out of tolerance, as text (empty if nothing)."""
        out = []
        if abs(mean - self.mean) > self.mean_tol:
            out.append(f"mean {mean:.4f} not within {self.mean} ± {self.mean_tol}")
        if not self.std[0] <= std <= self.std[1]:
            out.append(f"std {std:.4f} not in {self.std}")
        if not self.kurtosis[0] <= kurtosis <= self.kurtosis[1]:
            out.append(f"kurtosis {kurtosis:.3f} not in {self.kurtosis}")
        return out


# -- fields of the wide random word -------------------------------------------------------------

class GoldenFields:
    """Fields of the wide random word, from bits [count, nbits] (torch): int64 [count, n]."""

    def __init__(self, bits, layout):
        self._bits, self._layout = bits, layout

    def unsigned(self, name):
        lsb, width, count = self._layout[name]
        sub = self._bits[:, lsb:lsb + width * count].reshape(self._bits.shape[0], count, width)
        weights = torch.ones(width, dtype=torch.int64) << torch.arange(width)
        return (sub.to(torch.int64) * weights).sum(-1)

    def signed(self, name):
        v, width = self.unsigned(name), self._layout[name][1]
        return v - ((v >> (width - 1)) & 1) * (1 << width)


class HardwareFields:
    """Fields of the wide random word (an Amaranth value): entry ``i`` of field ``name``."""

    def __init__(self, wide, layout):
        self._wide, self._layout = wide, layout

    def unsigned(self, name, i):
        lsb, width, _ = self._layout[name]
        return self._wide[lsb + i * width:lsb + (i + 1) * width]

    def signed(self, name, i):
        return self.unsigned(name, i).as_signed()


# -- arithmetic written once for both sides (torch tensors and Amaranth values) -----------------

def shift_add(x, terms):
    """Sum of ``sign * (x << s)`` (``s >= 0``) or ``sign * (x >> -s)`` (arithmetic shift)."""
    total = None
    for sign, s in terms:
        t = x << s if s >= 0 else x >> -s
        if total is None:
            total = t if sign > 0 else -t
        else:
            total = total + t if sign > 0 else total - t
    return total


def scale_uniform(raw, scaling):
    """Raw U(-1, 1) words (B bits, B - 1 fraction bits) to the output format, for ``none``
    (drop the guard bits: floor) and ``fixed`` (multiply by 1.75 ≈ √3 with shift-adds, round the
    guard bits away, half up). Works on torch tensors and on Amaranth values alike; adaptive
    scaling is the pool's (:mod:`zohw.hw.fill`, :func:`zohw.sw.perturb.scale_uniform`)."""
    if scaling == "none":
        return raw >> UNIFORM_GUARD
    if scaling == "fixed":
        return (shift_add(raw, SQRT3_TERMS) + (1 << (UNIFORM_GUARD - 1))) >> UNIFORM_GUARD
    raise ValueError(f"scaling must be none or fixed here, not {scaling!r}")


def saturate(x, config):
    """Clamp to the word range: a torch tensor, or an Amaranth value (``Mux``es)."""
    if isinstance(x, torch.Tensor):
        return x.clamp(config.word_min, config.word_max)
    from amaranth import C, Mux, signed
    lo, hi = C(config.word_min, signed(config.width)), C(config.word_max, signed(config.width))
    return Mux(x > hi, hi, Mux(x < lo, lo, x))


# -- the strategy object -----------------------------------------------------------------------

class Strategy:
    """Base of every strategy; subclasses set the class attributes and the word maps."""

    #: Name on the command line and in every report.
    name = None
    #: Position in :data:`zohw.strategies.STRATEGIES` (CLI listings, reports, the bank).
    order = 100
    #: One line for listings.
    summary = ""
    knobs = ()
    #: Family flags: Gaussian words, U(-1, 1) words (takes a scaling mode), a pool of words
    #: filled per seed load, PeZO (reuses or shares a few random words).
    gaussian = False
    uniform_family = False
    pool = False
    pezo_family = False
    #: Accepted scaling modes, default first, and why the others are refused.
    scalings = ("none",)
    scaling_reason = "unit std by construction"
    #: Smallest lane count the strategy works with.
    min_lanes = 1
    #: Expected moments per scaling mode (:class:`Moments`), for the default knobs.
    MOMENTS = {}

    def __repr__(self):
        return f"<strategy {self.name}>"

    # -- description ---------------------------------------------------------------------------

    def summary_parts(self, config):
        """``["K=4"]``-style parts of :meth:`zohw.config.EngineConfig.summary`."""
        return []

    def label_parts(self, config):
        """Human words for :meth:`label` (default: the summary parts)."""
        return self.summary_parts(config)

    def label(self, config):
        """Human label, e.g. ``gauss-clt (K=4)``."""
        parts = self.label_parts(config)
        return self.name + (f" ({', '.join(parts)})" if parts else "")

    def moments(self, config):
        """Expected :class:`Moments` of ``config``'s words, or None if not documented."""
        return self.MOMENTS.get(config.scaling)

    def check(self, config):
        """Cross-field rules beyond the knobs' ranges (raise ConfigError)."""

    # -- random fields -------------------------------------------------------------------------

    def field_layout(self, config):
        """``{field: (lsb, bits, count)}``: bits per cycle taken from the wide random word of
        generators 0 … (pool strategies: the fill generator)."""
        raise NotImplementedError

    #: Index of the first stream generator (the ones the word map reads per transfer).
    stream_base = 0

    def stream_layout(self, config):
        """Fields the word map reads per transfer from the stream generators."""
        return self.field_layout(config)

    def stream_generators(self, config):
        """32-bit generators the word map's fields need."""
        layout = self.stream_layout(config)
        bits = max((lsb + w * n for lsb, w, n in layout.values()), default=0)
        return -(-bits // 32)

    # -- word maps -----------------------------------------------------------------------------

    def golden_words(self, config, fields, positions, reads=None):
        """int64 [count, P] words from :class:`GoldenFields` ``fields`` at transfer
        ``positions`` (int64 [count]); pool strategies also get the pool ``reads`` [count, P]."""
        raise NotImplementedError

    def hw_words(self, m, config, fields, ctl, reads=None):
        """P Amaranth values from :class:`HardwareFields` ``fields``; ``ctl`` is the engine's
        control bus (:data:`zohw.hw.sequencer.ControlSignature`), for state that follows the
        step protocol; ``reads`` the pool words of this transfer."""
        raise NotImplementedError


class GeneratorStrategy(Strategy):
    """Words straight from checkpointed generators, one draw per transfer."""


class PoolStrategy(Strategy):
    """Words read from a pool of N uniform words filled once per seed load by generator 0."""

    pool = True
    uniform_family = True
    pezo_family = True
    scalings = ("adaptive", "fixed", "none")
    stream_base = 1
    #: True: P banks each with its own row address; False: one row for all lanes.
    banked = False

    def field_layout(self, config):
        return {"raw": (0, config.width, 1)}

    def stream_layout(self, config):
        return {}

    def check(self, config):
        from zohw.errors import ConfigError
        if config.pool % config.lanes:
            raise ConfigError(
                f"pool must be a multiple of lanes ({config.lanes}), not {config.pool}")

    def golden_rows(self, config, seed, C, steps, first_step):
        """Pool row of each lane at each transfer: int64 [steps * C, P]."""
        raise NotImplementedError

    def addresser(self, config):
        """The component that addresses the pool (:class:`zohw.hw.pool.AddressSignature`)."""
        raise NotImplementedError

    def golden_words(self, config, fields, positions, reads=None):
        return reads

    def hw_words(self, m, config, fields, ctl, reads=None):
        return list(reads)
