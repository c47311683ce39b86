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

import functools
import math
from dataclasses import dataclass

from zohw.cim_config import CIMConfig
from zohw.config import EngineConfig
from zohw.configbase import Config, ConfigError, param
from zohw.digits import CLASSES, PIXELS
from zohw.losses import LOSSES, get as get_loss

__all__ = ["MODELS", "LOSSES", "UPDATES", "ROUNDINGS", "INITS", "CLASSES", "PIXELS",
           "DEFAULT_STRATEGY", "MAX_HIDDEN_LAYERS", "MAX_WIDTH", "MAX_PARAMS", "MAX_TILES",
           "TrainerConfig", "default_lr_shift"]

#: What ``TrainerConfig.model`` reads: "linear" (no hidden layer) or "mlp" (any depth).
MODELS = ("linear", "mlp")
UPDATES = ("sgd", "sign")
ROUNDINGS = ("nearest", "floor")
INITS = ("zero", "uniform")
#: Default perturbation strategy of the trainer (the best PeZO-family strategy in the accuracy
#: study).
DEFAULT_STRATEGY = "pezo-otf"
#: Capacity limits, checked when a configuration is made (one-line errors naming the limit):
#: hidden layers, units of a hidden layer, weights d of the model (the write passes' address
#: space), CIM macros over all layers.
MAX_HIDDEN_LAYERS = 8
MAX_WIDTH = 4096
MAX_PARAMS = 1 << 20
MAX_TILES = 1024


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


def _dataset_info(c):
    """The shape of the configuration's data set (cached by the data set registry)."""
    from zohw.sw.data import dataset_info
    return dataset_info(c.dataset, c.input_pool)


def _inputs(c):
    """the data set's features (pixels after pooling; the bias input comes on top)"""
    return _dataset_info(c).features


def _classes(c):
    """the data set's classes"""
    return _dataset_info(c).classes


def _lr_shift(c):
    """tuned per model, loss and update (default_lr_shift)"""
    return default_lr_shift(c.model, c.loss, c.update)


def _init(c):
    """zero for the linear model, uniform for the mlp"""
    return "zero" if c.model == "linear" else "uniform"


def _write_lanes(c):
    """the engine's lanes P (the largest power of two not above P): one engine word per lane
    and cycle"""
    return 1 << (c.engine.lanes.bit_length() - 1)


def _stride(c):
    """default_stride(train-set size): near n_train/φ and coprime with it (digits: 887)"""
    from zohw.sw.data import default_stride
    return default_stride(_dataset_info(c).n_train)


def _loss_help():
    return "; ".join(f"{name}: {get_loss(name).help}" for name in LOSSES)


@dataclass(frozen=True)
class TrainerConfig(Config):
    """Configuration of one zeroth-order trainer.

    Hardware fields fix the RTL (and :attr:`config_hash`); run fields (``dataset``,
    ``input_pool``, ``init``, ``init_bits``, ``steps``, ``seed``, ``eval_every``) are inputs of
    a run: the seed and the step count are sampled on ``start``, the samples and the initial
    weights are loaded, evaluation is the host's. The data set's shape is hardware:
    ``inputs`` and ``classes`` (derived from it) size the layers, ``stride`` (derived from its
    train-set size) is elaborated as a constant.

    The model is a feed-forward stack of CIM layers: ``inputs → hidden[0] → … → classes``,
    each layer with a constant bias input (``rows = fan_in + 1``, ``cols = fan_out``), ReLU +
    requantisation (``hidden_shift``) between layers. ``cim`` is the template of every layer's
    array (cell, ADC, input format, ``tile``); :attr:`layer_cims` sets each layer's rows, cols
    and ``write_lanes``. The loss is a plug-in of :mod:`zohw.losses`.
    """

    engine: EngineConfig = param(EngineConfig(strategy=DEFAULT_STRATEGY), nested=True,
                                 help="the perturbation engine")
    cim: CIMConfig = param(CIMConfig(), nested=True,
                           help="the CIM array template of every layer (cells, ADC, inputs, "
                                "tile; rows and cols are set per layer)")
    dataset: str = param("digits", kind=str, run=True, metavar="NAME|PATH.npz",
                         help="the data set: a bundled name or a .npz file (arrays x, y, "
                              "optional x_test, y_test, x_max)")
    input_pool: int = param(1, lo=1, hi=16, run=True, metavar="K",
                            help="sum KxK blocks of square images (1: off)")
    inputs: int | None = param(None, derive=_inputs, lo=1, hi=1 << 16, metavar="N",
                               help="input features of the first layer (before its bias input)")
    classes: int | None = param(None, derive=_classes, lo=2, hi=256, metavar="C",
                                help="classes = columns of the output layer")
    hidden: tuple = param((), kind=tuple, lo=1, hi=MAX_WIDTH, metavar="H[,H2,...]",
                          help="hidden layer widths, input side first (none: a linear model)")
    hidden_shift: int = param(11, lo=0, hi=24, metavar="K",
                              help="requantisation between layers "
                                   "h = clamp(y >> K, 0, 2**input_bits - 1)")
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
    write_lanes: int | None = param(None, derive=_write_lanes, lo=1,
                                    hi=lambda c: c.engine.lanes, metavar="N",
                                    help="weights read and written per cycle by the perturb, "
                                         "restore and update passes (a power of two)")
    stride: int | None = param(None, derive=_stride, lo=1, hi=1 << 20, metavar="K",
                               help="sample-memory stride of the mini-batch order (coprime "
                                    "with the train-set size)")
    eval_every: int = param(500, lo=1, hi=10 ** 7, run=True, metavar="STEPS",
                            help="steps between test evaluations (reporting only)")

    def _check(self):
        w = self.write_lanes
        if w & (w - 1):
            raise ConfigError(f"write_lanes must be a power of two from 1 to "
                              f"{self.engine.lanes}, not {w}")
        if self.cim.write_lanes not in (1, w):
            raise ConfigError(f"cim.write_lanes must be 1 or write_lanes ({w}): the layers "
                              f"take write_lanes, not {self.cim.write_lanes}")
        if len(self.hidden) > MAX_HIDDEN_LAYERS:
            raise ConfigError(f"hidden must have at most {MAX_HIDDEN_LAYERS} layers (limit "
                              f"MAX_HIDDEN_LAYERS), not {len(self.hidden)}")
        rows_max = CIMConfig.fields_meta()["rows"].hi
        if self.inputs + 1 > rows_max:
            raise ConfigError(f"inputs must be at most {rows_max - 1} (a layer has at most "
                              f"{rows_max} rows with its bias input), not {self.inputs}")
        info = _dataset_info(self)
        for name, value, have in (("inputs", self.inputs, info.features),
                                  ("classes", self.classes, info.classes)):
            if value != have:
                raise ConfigError(f"{name} must be {have} ({name} of data set {info.name} with "
                                  f"input_pool {self.input_pool}), not {value}")
        if math.gcd(self.stride, info.n_train) != 1:
            raise ConfigError(f"stride must be coprime with the train-set size {info.n_train} "
                              f"of data set {info.name}, not {self.stride}")
        if self.params > MAX_PARAMS:
            raise ConfigError(f"the model {self.shape} has d = {self.params} weights, more than "
                              f"the limit MAX_PARAMS = {MAX_PARAMS}")
        if self.tiles > MAX_TILES:
            raise ConfigError(f"the model {self.shape} needs {self.tiles} CIM tiles of "
                              f"{self.cim.tile}, more than the limit MAX_TILES = {MAX_TILES}")
        lo, hi = self.weight_range
        if lo > 0 or hi < 0:
            wb = self.cim.weight_bits
            raise ConfigError(
                f"eps_shift must leave room for the perturbation in a {wb}-bit weight "
                f"(largest |delta| {self.headroom} >= {1 << (wb - 1)}), not {self.eps_shift}")

    def summary(self):
        return (f"model={self.shape} ({self.model}) dataset={self.dataset} loss={self.loss} "
                f"update={self.update} eps=2^-{self.eps_shift}*{self.eps_mult} "
                f"lr=2^-{self.lr_shift}*{self.lr_mult} batch={self.batch} steps={self.steps} "
                f"seed={self.seed} tile={self.cim.tile} write_lanes={self.write_lanes} "
                f"engine=[{self.engine.summary()}]")

    # -- layers --------------------------------------------------------------------------------

    @property
    def model(self):
        """"linear" (no hidden layer) or "mlp" (one or more hidden layers)."""
        return "mlp" if self.hidden else "linear"

    @property
    def widths(self):
        """Units of every layer boundary: ``(inputs, *hidden, classes)``."""
        return (self.inputs, *self.hidden, self.classes)

    @property
    def shape(self):
        """The model as text, e.g. ``64-16-10``."""
        return "-".join(map(str, self.widths))

    @property
    def label_bits(self):
        """Bits of a class label."""
        return max(1, (self.classes - 1).bit_length())

    @functools.cached_property
    def layer_cims(self):
        """The CIM array of every layer, input side first: the template ``cim`` with
        ``rows = fan_in + 1`` (bias input), ``cols = fan_out`` and ``write_lanes``; the ADC shift
        (default: from the tile's full scale) is the template's, the same for every layer."""
        kw = dict(self.cim.as_dict(), write_lanes=self.write_lanes)
        w = self.widths
        return tuple(CIMConfig(**dict(kw, rows=w[i] + 1, cols=w[i + 1]))
                     for i in range(len(w) - 1))

    @property
    def layer_sizes(self):
        """Weights per layer (rows · cols)."""
        return tuple(c.rows * c.cols for c in self.layer_cims)

    @property
    def params(self):
        """d: the weights perturbed per step (flat order: layer by layer, row-major
        ``r*cols + c``)."""
        return sum(self.layer_sizes)

    @property
    def layer_tiles(self):
        """CIM macros per layer."""
        return tuple(c.tiles for c in self.layer_cims)

    @property
    def tiles(self):
        """CIM macros of the whole model."""
        return sum(self.layer_tiles)

    @property
    def utilisation(self):
        """Fraction of the model's macro cells that hold weights."""
        c = self.cim
        return self.params / (self.tiles * c.tile_rows * c.tile_cols)

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

