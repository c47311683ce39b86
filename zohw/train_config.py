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

import hashlib
import json
from dataclasses import dataclass, fields, asdict, replace

from zohw.config import EngineConfig
from zohw.validate import choice as _choice, integer as _int
from zohw.cim_config import CIMConfig

__all__ = ["MODELS", "LOSSES", "UPDATES", "ROUNDINGS", "INITS", "CLASSES", "PIXELS",
           "TrainerConfig", "default_lr_shift"]

MODELS = ("linear", "mlp")
LOSSES = ("hinge", "mse")
UPDATES = ("sgd", "sign")
ROUNDINGS = ("nearest", "floor")
INITS = ("zero", "uniform")
#: Classes of the digits task (columns of the output layer).
CLASSES = 10
#: Pixels per digits image (rows of the first layer, before the bias input).
PIXELS = 64


def _shift(v, k):
    return v << k if k >= 0 else v >> -k


def default_lr_shift(model, loss, update):
    """Tuned default update shift (digits, 10 000 steps, batch 32, ε = 2**-4, see
    ``docs/trainer.md``): sgd 13 for the hinge loss and 17 for MSE (its loss differences are
    about 2·|s − t| ≈ 2**4 times larger), one less for the MLP; sign updates 3 (|Δ| ≈ |z| / 8)."""
    if update == "sign":
        return 3
    base = 13 if loss == "hinge" else 17
    return base - (1 if model == "mlp" else 0)


@dataclass(frozen=True)
class TrainerConfig:
    """Configuration of one zeroth-order trainer (hardware + run).

    Parameters
    ----------
    engine : EngineConfig
        The perturbation engine (any strategy plugs in).
    cim : CIMConfig
        The CIM macro of the output layer (linear model: the only layer). Must have
        ``rows = 65`` (64 pixels + bias) for the linear model and ``cols = 10``. The MLP derives
        its two macros from it (see :attr:`layer_cims`).
    model : str
        ``linear`` (one layer with bias) or ``mlp`` (``hidden`` ReLU units, then a linear layer).
    hidden : int
        Hidden units of the MLP (1 to 256).
    hidden_shift : int
        MLP requantisation: ``h = clamp(y1 >> hidden_shift, 0, 2**input_bits - 1)`` (0 to 24).
    loss : str
        ``hinge`` (multi-class, Weston–Watkins) or ``mse`` (one-hot targets).
    update : str
        ``sgd`` (Δ ∝ (L+ − L−)·z) or ``sign`` (Δ ∝ sign(L+ − L−)·z).
    weight_frac : int
        Fraction bits of the weight format (0 to weight_bits + 8).
    eps_shift, eps_mult : int
        ε = eps_mult · 2**-eps_shift in weight units (eps_mult 1 to 15: 1 is a pure shift).
    lr_shift, lr_mult : int
        Update scale: Δ = round((g · z · lr_mult) / 2**lr_shift(s)) (lr_shift 0 to 40, lr_mult
        1 to 15). ``lr_shift=None`` picks the tuned default of the model, loss and update
        (:func:`default_lr_shift`).
    lr_decay : int
        Step decay of the update scale: at step s the shift is ``lr_shift + s // lr_decay``
        (halving the step every ``lr_decay`` steps); 0 turns decay off (0 to 10**7).
    logit_shift : int
        Scores the loss sees: ``s = y >> logit_shift`` (floor) of the CIM results y (0 to 24).
    margin : int
        Hinge margin in score units (1 to 2**15).
    target : int
        MSE target of the true class in score units (the others are 0) (1 to 2**15).
    diff_bits : int
        g = L+ − L− saturates to a signed ``diff_bits`` integer before the update (2 to 32).
    rounding : str
        Rounding of the update's right shift: ``nearest`` (half away from zero, unbiased for a
        sign-symmetric product) or ``floor``.
    init : str or None
        Initial weights: ``zero`` or ``uniform`` (integers in ±2**init_bits from a
        ``torch.Generator`` seeded with ``seed``; loaded over the write port). None picks
        ``zero`` for the linear model and ``uniform`` for the MLP (whose hidden units need
        distinct weights).
    init_bits : int
        Range of the uniform init (0 to weight_bits - 2).
    batch : int
        Samples per mini-batch (1 to 1024); each forward pass (L+ and L−) sums over the batch.
    steps : int
        Training steps (1 to 10**7).
    seed : int
        32-bit seed of the perturbation engine (0 to 2**32 − 1).
    stride : int
        Sample-memory stride of the mini-batch order (see :mod:`zohw.sw.data`); coprime with the
        train-set size.
    eval_every : int
        Steps between test-accuracy evaluations (reporting only, 1 to 10**7).
    """

    engine: EngineConfig = EngineConfig(strategy="pezo-otf")
    cim: CIMConfig = CIMConfig()
    model: str = "linear"
    hidden: int = 16
    hidden_shift: int = 11
    loss: str = "hinge"
    update: str = "sgd"
    weight_frac: int = 10
    eps_shift: int = 4
    eps_mult: int = 1
    lr_shift: int | None = None
    lr_mult: int = 1
    lr_decay: int = 0
    logit_shift: int = 9
    margin: int = 64
    target: int = 64
    diff_bits: int = 16
    rounding: str = "nearest"
    init: str | None = None
    init_bits: int = 9
    batch: int = 32
    steps: int = 10000
    seed: int = 1
    stride: int = 887
    eval_every: int = 500

    def __post_init__(self):
        if not isinstance(self.engine, EngineConfig):
            raise TypeError(f"engine must be an EngineConfig, not {self.engine!r}")
        if not isinstance(self.cim, CIMConfig):
            raise TypeError(f"cim must be a CIMConfig, not {self.cim!r}")
        _choice("model", self.model, MODELS)
        _int("hidden", self.hidden, 1, 256)
        _int("hidden_shift", self.hidden_shift, 0, 24)
        _choice("loss", self.loss, LOSSES)
        _choice("update", self.update, UPDATES)
        wb = self.cim.weight_bits
        _int("weight_frac", self.weight_frac, 0, wb + 8)
        _int("eps_shift", self.eps_shift, -8, 24)
        _int("eps_mult", self.eps_mult, 1, 15)
        if self.lr_shift is None:
            object.__setattr__(self, "lr_shift",
                               default_lr_shift(self.model, self.loss, self.update))
        _int("lr_shift", self.lr_shift, 0, 40)
        _int("lr_mult", self.lr_mult, 1, 15)
        _int("lr_decay", self.lr_decay, 0, 10 ** 7)
        _int("logit_shift", self.logit_shift, 0, 24)
        _int("margin", self.margin, 1, 1 << 15)
        _int("target", self.target, 1, 1 << 15)
        _int("diff_bits", self.diff_bits, 2, 32)
        _choice("rounding", self.rounding, ROUNDINGS)
        if self.init is None:
            object.__setattr__(self, "init", "zero" if self.model == "linear" else "uniform")
        _choice("init", self.init, INITS)
        _int("init_bits", self.init_bits, 0, max(0, wb - 2))
        _int("batch", self.batch, 1, 1024)
        _int("steps", self.steps, 1, 10 ** 7)
        _int("seed", self.seed, 0, (1 << 32) - 1)
        _int("stride", self.stride, 1, 1 << 20)
        _int("eval_every", self.eval_every, 1, 10 ** 7)
        if self.cim.cols != CLASSES:
            raise ValueError(f"cim.cols must be {CLASSES} (one column per class), "
                             f"not {self.cim.cols}")
        if self.model == "linear" and self.cim.rows != PIXELS + 1:
            raise ValueError(f"cim.rows must be {PIXELS + 1} for the linear model (64 pixels + "
                             f"bias input), not {self.cim.rows}")
        lo, hi = self.weight_range
        if lo > 0 or hi < 0:
            raise ValueError(
                f"eps_shift must leave room for the perturbation in a {wb}-bit weight "
                f"(largest |delta| {self.headroom} >= {1 << (wb - 1)}), not {self.eps_shift}")

    # -- identity ------------------------------------------------------------------------------

    def as_dict(self):
        d = asdict(self)
        d["engine"] = self.engine.as_dict()
        d["cim"] = self.cim.as_dict()
        return d

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown trainer configuration keys: {', '.join(sorted(unknown))}")
        if isinstance(d.get("engine"), dict):
            d["engine"] = EngineConfig.from_dict(d["engine"])
        if isinstance(d.get("cim"), dict):
            d["cim"] = CIMConfig.from_dict(d["cim"])
        return cls(**d)

    def replace(self, **changes):
        return replace(self, **changes)

    @property
    def config_hash(self):
        text = json.dumps(self.as_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

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
            k = dict(kw, rows=rows, cols=cols, adc_shift=None)
            c = CIMConfig(**k)
            if explicit:
                c = replace(c, adc_shift=min(self.cim.adc_shift, c.default_adc_shift))
            out.append(c)
        return tuple(out)

    @property
    def layer_sizes(self):
        """Weights per layer (rows · cols)."""
        return tuple(c.rows * c.cols for c in self.layer_cims)

    @property
    def params(self):
        """d: weights perturbed per step (flat order: layer by layer, row-major ``r*cols + c``)."""
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

