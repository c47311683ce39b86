"""The configuration object of the zeroth-order trainer.

:class:`TrainerConfig` holds everything that fixes the trainer's integer arithmetic: the
perturbation engine (:class:`zohw.config.EngineConfig`), the CIM macro
(:class:`zohw.cim_config.CIMConfig`), the model, the loss, the update rule and every shift,
and the run (batch, steps, seed). The golden model (:mod:`zohw.sw.train`), the float references
(:mod:`zohw.sw.reference`) and — later — the RTL trainer all read it. ``docs/trainer.md`` is the
arithmetic specification; the properties below derive its constants.

Fixed-point conventions (all integers, see ``docs/trainer.md``)
--------------------------------------------------------------
* A weight is a signed ``cim.weight_bits`` integer ``w`` standing for ``w * 2**-weight_frac``.
* A perturbation word ``z`` (engine output, B bits) stands for ``z * 2**-F`` with F = B - 3.
* ε = ``eps_mult * 2**-eps_shift`` (weight units): the weight perturbation is
  ``delta = shift(z * eps_mult, weight_frac - F - eps_shift)`` where ``shift(v, k)`` is ``v << k``
  for k >= 0 and the arithmetic (floor) right shift ``v >> -k`` otherwise.
* Update step: ``lr_mult * 2**-lr_shift`` multiplies the (saturated) loss difference times z.
"""

from dataclasses import dataclass

from zohw.cim_config import CIMConfig
from zohw.config import EngineConfig
from zohw.configbase import Config, ConfigError, param
from zohw.digits import CLASSES, DEFAULT_STRIDE, PIXELS
from zohw.losses import LOSSES, get as get_loss

__all__ = ["MODELS", "LOSSES", "UPDATES", "ROUNDINGS", "INITS", "CLASSES", "PIXELS",
           "DEFAULT_STRATEGY", "TrainerConfig", "default_lr_shift"]

MODELS = ("linear", "mlp")
UPDATES = ("sgd", "sign")
ROUNDINGS = ("nearest", "floor")
INITS = ("zero", "uniform")
#: Default perturbation strategy of the trainer (the best PeZO-family strategy in the accuracy
#: study).
DEFAULT_STRATEGY = "pezo-otf"


def _shift(v, k):
    return v << k if k >= 0 else v >> -k


def default_lr_shift(model, loss, update):
    """Tuned default update shift (digits, 10 000 steps, batch 32, ε = 2**-4, see
    ``docs/trainer.md``): sgd the loss's own tuned shift (hinge 13, MSE 17: its loss differences
    are about 2·|s − t| ≈ 2**4 times larger), one less for the MLP; sign updates 3
    (|Δ| ≈ |z| / 8)."""
    if update == "sign":
        return 3
    return get_loss(loss).sgd_lr_shift - (1 if model == "mlp" else 0)


def _lr_shift(c):
    """tuned per model, loss and update (default_lr_shift)"""
    return default_lr_shift(c.model, c.loss, c.update)


def _init(c):
    """zero for the linear model, uniform for the mlp"""
    return "zero" if c.model == "linear" else "uniform"


def _loss_help():
    return "; ".join(f"{name}: {get_loss(name).help}" for name in LOSSES)


@dataclass(frozen=True)
class TrainerConfig(Config):
    """Configuration of one zeroth-order trainer.

    Hardware fields fix the RTL (and :attr:`config_hash`); run fields (``init``, ``init_bits``,
    ``steps``, ``seed``, ``eval_every``) are inputs of a run: the seed and the step count are
    sampled on ``start``, the initial weights are loaded over the write port, evaluation is the
    host's. ``stride`` is hardware: the mini-batch order's stride is elaborated as a constant.

    The CIM macro ``cim`` is the output layer's (linear model: the only layer); it must have
    ``rows = 65`` (64 pixels + bias) for the linear model, ``cols = 10`` and ``write_lanes = 1``
    (the trainer reads and writes one weight per cycle). The MLP derives its two macros from it
    (:attr:`layer_cims`). The loss is a plug-in of :mod:`zohw.losses`.
    """

    engine: EngineConfig = param(EngineConfig(strategy=DEFAULT_STRATEGY), nested=True,
                                 help="the perturbation engine")
    cim: CIMConfig = param(CIMConfig(), nested=True, help="the CIM macro of the output layer")
    model: str = param("linear", choices=MODELS,
                       help="linear (one layer with bias) or mlp (hidden ReLU units, then a "
                            "linear layer)")
    hidden: int = param(16, lo=1, hi=256, help="hidden units of the mlp", metavar="H")
    hidden_shift: int = param(11, lo=0, hi=24, metavar="K",
                              help="mlp requantisation h = clamp(y1 >> K, 0, 2**input_bits - 1)")
    loss: str = param("hinge", choices=LOSSES, help=_loss_help())
    update: str = param("sgd", choices=UPDATES,
                        help="sgd (Δ ∝ (L+ − L−)·z) or sign (Δ ∝ sign(L+ − L−)·z)")
    weight_frac: int = param(10, lo=0, hi=lambda c: c.cim.weight_bits + 8, metavar="BITS",
                             help="fraction bits of the weight format")
    eps_shift: int = param(4, lo=-8, hi=24, metavar="E",
                           help="ε = eps_mult · 2**-E in weight units")
    eps_mult: int = param(1, lo=1, hi=15, metavar="M", help="ε mantissa (1: a pure shift)")
    lr_shift: int | None = param(None, derive=_lr_shift, lo=0, hi=40, metavar="L",
                                 help="update shift: Δ = round(g·z·lr_mult / 2**L)")
    lr_mult: int = param(1, lo=1, hi=15, metavar="M", help="update mantissa")
    lr_decay: int = param(0, lo=0, hi=10 ** 7, metavar="STEPS",
                          help="add 1 to the update shift every STEPS steps (0: off)")
    logit_shift: int = param(9, lo=0, hi=24, metavar="K",
                             help="scores s = CIM results >> K (floor)")
    margin: int = param(64, lo=1, hi=1 << 15, metavar="M", help="hinge margin in score units")
    target: int = param(64, lo=1, hi=1 << 15, metavar="T",
                        help="mse target of the true class in score units (the others 0)")
    diff_bits: int = param(16, lo=2, hi=32, metavar="BITS",
                           help="g = L+ − L− saturates to a signed BITS integer")
    rounding: str = param("nearest", choices=ROUNDINGS,
                          help="update rounding: nearest (half away from zero) or floor")
    init: str | None = param(None, derive=_init, choices=INITS, run=True,
                             help="initial weights: zero, or uniform in ±2**init_bits "
                                  "(seeded with seed)")
    init_bits: int = param(9, lo=0, hi=lambda c: max(0, c.cim.weight_bits - 2), run=True,
                           metavar="BITS", help="uniform init range ±2**BITS")
    batch: int = param(32, lo=1, hi=1024, metavar="B", help="samples per mini-batch")
    steps: int = param(10000, lo=1, hi=10 ** 7, run=True, metavar="T", help="training steps")
    seed: int = param(1, lo=0, hi=(1 << 32) - 1, run=True, metavar="S",
                      help="engine seed, 32 bit (also seeds the uniform init)")
    stride: int = param(DEFAULT_STRIDE, lo=1, hi=1 << 20, metavar="K",
                        help="sample-memory stride of the mini-batch order (coprime with the "
                             "train-set size)")
    eval_every: int = param(500, lo=1, hi=10 ** 7, run=True, metavar="STEPS",
                            help="steps between test evaluations (reporting only)")

    def _check(self):
        if self.cim.cols != CLASSES:
            raise ConfigError(f"cim.cols must be {CLASSES} (one column per class), "
                              f"not {self.cim.cols}")
        if self.model == "linear" and self.cim.rows != PIXELS + 1:
            raise ConfigError(f"cim.rows must be {PIXELS + 1} for the linear model "
                              f"({PIXELS} pixels + bias input), not {self.cim.rows}")
        if self.cim.write_lanes != 1:
            raise ConfigError("cim.write_lanes must be 1 (the trainer reads and writes one "
                              f"weight per cycle), not {self.cim.write_lanes}")
        lo, hi = self.weight_range
        if lo > 0 or hi < 0:
            wb = self.cim.weight_bits
            raise ConfigError(
                f"eps_shift must leave room for the perturbation in a {wb}-bit weight "
                f"(largest |delta| {self.headroom} >= {1 << (wb - 1)}), not {self.eps_shift}")

    def summary(self):
        return (f"model={self.model} loss={self.loss} update={self.update} "
                f"eps=2^-{self.eps_shift}*{self.eps_mult} lr=2^-{self.lr_shift}*{self.lr_mult} "
                f"batch={self.batch} steps={self.steps} seed={self.seed} "
                f"engine=[{self.engine.summary()}]")

    # -- layers --------------------------------------------------------------------------------

    @property
    def layer_cims(self):
        """The CIM macro of every layer, input side first.

        linear: ``(cim,)``. mlp: ``(cim with rows=65, cols=hidden; cim with rows=hidden+1,
        cols=10)`` — the same cell, ADC and input formats, the ADC shift re-derived for each
        array's rows unless ``cim.adc_shift`` was set below the default.
        """
        if self.model == "linear":
            return (self.cim,)
        kw = self.cim.as_dict()
        explicit = self.cim.adc_shift != self.cim.default_adc_shift
        out = []
        for rows, cols in ((PIXELS + 1, self.hidden), (self.hidden + 1, CLASSES)):
            c = CIMConfig(**dict(kw, rows=rows, cols=cols, adc_shift=None))
            if explicit:
                c = c.replace(adc_shift=min(self.cim.adc_shift, c.default_adc_shift))
            out.append(c)
        return tuple(out)

    @property
    def layer_sizes(self):
        """Weights per layer (rows · cols)."""
        return tuple(c.rows * c.cols for c in self.layer_cims)

    @property
    def params(self):
        """d: the weights perturbed per step (flat order: layer by layer, row-major
        ``r*cols + c``)."""
        return sum(self.layer_sizes)

    # -- number formats ------------------------------------------------------------------------

    @property
    def delta_shift(self):
        """k of ``delta = shift(z * eps_mult, k)``: ``weight_frac - F - eps_shift``."""
        return self.weight_frac - self.engine.frac_bits - self.eps_shift

    def delta_of(self, z):
        """The weight perturbation of engine words ``z`` (int or int tensor)."""
        return _shift(z * self.eps_mult, self.delta_shift)

    @property
    def headroom(self):
        """H: the largest |delta| over every engine word."""
        return max(abs(self.delta_of(self.engine.word_min)), abs(self.delta_of(self.engine.word_max)))

    @property
    def weight_range(self):
        """(lo, hi): the update saturates weights to ``[w_min + H, w_max - H]`` so that w ± δ is
        always representable and the perturb/restore writes are exact."""
        wb = self.cim.weight_bits
        return (-(1 << (wb - 1)) + self.headroom, (1 << (wb - 1)) - 1 - self.headroom)

    @property
    def eps(self):
        """ε in weight units (float, for reporting)."""
        return self.eps_mult * 2.0 ** -self.eps_shift

    @property
    def lr(self):
        """The update scale lr_mult · 2**-lr_shift (float, for reporting)."""
        return self.lr_mult * 2.0 ** -self.lr_shift

    def lr_shift_at(self, step):
        """The update shift of step ``step`` (0-based): ``lr_shift + step // lr_decay``."""
        return self.lr_shift + (step // self.lr_decay if self.lr_decay else 0)

    @property
    def diff_min(self):
        return -(1 << (self.diff_bits - 1))

    @property
    def diff_max(self):
        return (1 << (self.diff_bits - 1)) - 1

    @property
    def n_layers(self):
        return len(self.layer_cims)

    def equivalent_eta(self):
        """The SGD learning rate η of the update in value units (documentation only):
        Δw = −η · (L+ − L−)/(2ε) · z with weights, z and losses in value units
        (loss value = loss integer)."""
        # Δ_int = g·z_word·lr; Δ_val = Δ_int·2^-wf, z_word = z_val·2^F
        # Δ_val = g·z_val·2^F·lr·2^-wf = η·g/(2ε)·z_val  →  η = 2ε·2^F·lr·2^-wf
        return 2 * self.eps * 2.0 ** self.engine.frac_bits * self.lr * 2.0 ** -self.weight_frac

    @property
    def score_scale(self):
        """Value of one CIM result LSB relative to a score LSB: 2**-logit_shift."""
        return 2.0 ** -self.logit_shift

