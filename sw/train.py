"""Golden model of the zeroth-order trainer: the whole step in vectorized torch integers.

This is the arithmetic the RTL trainer mirrors bit for bit; ``docs/trainer.md`` is its prose
specification. Every quantity is an int64 tensor; the only Python loop runs over steps.

The model is the configuration's stack of CIM layers (``inputs → hidden… → classes``, a
constant bias input per layer, ``h = clamp(y >> hidden_shift, 0, 2**input_bits - 1)`` between
layers), each layer the golden model of its CIM macro (default: per-tile ADC,
:func:`zohw.sw.cim.cim_matvec`).

One step s (d weights, flat order: layer by layer, row-major ``r * cols + c``)::

    z     = golden_perturbations(engine, seed, d, ...)[s]      # engine words, F = B - 3 frac bits
    delta = shift(z * eps_mult, weight_frac - F - eps_shift)   # << k, or floor >> -k
    write w + delta           ; L+ = sum over the mini-batch of loss(forward(w + delta))
    write w - delta           ; L- = sum over the mini-batch of loss(forward(w - delta))
    g     = sat(L+ - L-, diff_bits)
    p     = g * z * lr_mult          (sgd)   |   sign(g) * z * lr_mult   (sign)
    Delta = -rshift(p, lr_shift)     rshift: round half away from zero (``nearest``) or floor
    write w' = clamp(w + Delta, w_min + H, w_max - H)          # H = max |delta|: headroom

Because every stored weight keeps H of headroom, ``w ± delta`` never overflows and the restore
is exact: the third write is ``(w - delta) + delta + Delta`` saturated. A write whose value equals
the cell's current content is suppressed (not issued, not counted); see :func:`write_counts`.
"""

import contextlib
import math
import time
from dataclasses import dataclass, field

import torch

from zohw.errors import ConfigError
from zohw.hw.plan import TrainerPlan, default_macro, layer_macros
from zohw.losses import get as get_loss
from zohw.sw import cim as _cim
from zohw.sw.data import batch_indices
from zohw.train_config import TrainerConfig

__all__ = ["shift", "rshift_round", "forward", "scores", "sample_losses", "batch_loss",
           "unflatten", "init_weights", "perturbation", "update_delta", "golden_step",
           "write_counts", "accuracy", "cycle_breakdown", "predicted_cycles_per_step",
           "TrainResult", "train_golden", "load_data", "Z_CHUNK", "CHUNK_BYTES", "RESULT_KEYS"]

#: Steps of engine words generated at a time (at most; see :data:`CHUNK_BYTES`).
Z_CHUNK = 500
#: Memory a chunk's per-step operands may take (words, perturbations, trajectory, rounding
#: biases): about 300 steps of the digits model, which kept more of them in cache than 500 on
#: a loaded machine; large models run shorter chunks.
CHUNK_BYTES = 1 << 24

#: Keys of a training result document (golden or co-simulation) that scripts rely on; more
#: keys may follow.
RESULT_KEYS = ("mode", "strategy", "steps", "test_accuracy", "train_loss", "mismatches",
               "cycles_per_step", "predicted_cycles_per_step")


@contextlib.contextmanager
def single_thread():
    """Run torch on one intra-op thread (the tensors of a step are tiny: more threads only add
    synchronisation, badly so on a loaded machine); the previous setting is restored."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


# -- arithmetic helpers ------------------------------------------------------------------------

def shift(v, k):
    """``v << k`` for k >= 0, arithmetic (floor) ``v >> -k`` for k < 0."""
    return v << k if k >= 0 else v >> -k


def rshift_round(v, k, rounding="nearest"):
    """Right shift by k >= 0 with rounding: ``nearest`` = half away from zero
    (``sign(v) * ((|v| + 2**(k-1)) >> k)``), ``floor`` = arithmetic shift."""
    if k == 0:
        return v
    if rounding == "floor":
        return v >> k
    return (v + _round_bias(v < 0, k)) >> k


def _round_bias(negative, k):
    """``2**(k-1) - [v < 0]``: ``(v + bias) >> k`` rounds half away from zero (for v < 0,
    ``floor((v + 2**(k-1) - 1) / 2**k) = -floor((|v| + 2**(k-1)) / 2**k)``)."""
    return (1 << (k - 1)) - negative.to(torch.int64)


def unflatten(cfg: TrainerConfig, flat):
    """Split a flat weight vector [d] (or [..., d]) into the layers' ``[rows, cols]`` matrices."""
    out, start = [], 0
    for c in cfg.layer_cims:
        n = c.rows * c.cols
        out.append(flat[..., start:start + n].reshape(*flat.shape[:-1], c.rows, c.cols))
        start += n
    return out


# -- model ------------------------------------------------------------------------------------

def forward(cfg: TrainerConfig, flat_w, x, exact_reference=False, macro=None):
    """CIM results of the output layer for inputs x ``[batch, inputs + 1]``.

    ``flat_w`` is one flat weight vector [d] (result ``[batch, classes]``) or a stack [K, d]
    (result ``[K, batch, classes]``). Every layer is the golden model of its CIM macro
    (``macro`` is the factory, default the behavioural macro: :func:`zohw.sw.cim.cim_matvec`);
    between layers ``h = clamp(y >> hidden_shift, 0, 2**input_bits - 1)`` (ReLU + saturation
    to the input format), then the next macro on ``[h, 2**input_bits - 1]`` (constant bias
    input). ``exact_reference=True`` runs the macros on one weight matrix at a time (slow; for
    tests of the stacking).
    """
    single = flat_w.dim() == 1
    stack = flat_w.unsqueeze(0) if single else flat_w
    y = _forward(cfg, _layers(cfg, macro), stack, x, exact_reference)
    return y[0] if single else y


def _layers(cfg, macro=None):
    """``(macro, cim config, first flat index)`` of every layer (resolved once per run)."""
    out, start = [], 0
    for mac, c in zip(layer_macros(cfg, macro), cfg.layer_cims):
        out.append((mac, c, start))
        start += c.rows * c.cols
    return out


def _requantise(cfg, y, imax):
    """The next layer's inputs: ``[clamp(y >> hidden_shift, 0, imax), imax]`` (bias last)."""
    h = torch.clamp(y >> cfg.hidden_shift, 0, imax)
    return torch.cat([h, torch.full((*h.shape[:-1], 1), imax, dtype=torch.int64)], dim=-1)


def _forward(cfg, layers, stack, x, exact_reference=False):
    """:func:`forward` of a stack [K, d] with the layers of :func:`_layers`."""
    K = stack.shape[0]

    def mv(layer, xin):
        mac, c, start = layer
        w = stack[:, start:start + c.rows * c.cols].view(K, c.rows, c.cols)
        if not exact_reference:
            return mac.golden(w, xin)
        xin = xin if xin.dim() == 3 else xin.expand(K, *xin.shape)
        return torch.stack([mac.golden(w[j], xin[j]) for j in range(K)])

    y = mv(layers[0], x)
    for layer in layers[1:]:
        y = mv(layer, _requantise(cfg, y, layer[1].input_max))
    return y


def scores(cfg: TrainerConfig, y):
    """Scores the loss sees: ``y >> logit_shift`` (floor)."""
    return y >> cfg.logit_shift


def sample_losses(cfg: TrainerConfig, s, labels):
    """Per-sample integer loss of scores s ``[batch, classes]``: the golden of the loss plug-in
    ``cfg.loss`` (:mod:`zohw.losses`)."""
    return get_loss(cfg.loss).golden(cfg, s, labels)


def batch_loss(cfg: TrainerConfig, flat_w, x, labels, macro=None):
    """L: the integer loss summed over the mini-batch (a stack [K, d] of weights gives [K])."""
    if flat_w.dim() == 1:
        return int(_batch_losses(cfg, _layers(cfg, macro), flat_w.unsqueeze(0), x, labels)[0])
    return _batch_losses(cfg, _layers(cfg, macro), flat_w, x, labels)


def _batch_losses(cfg, layers, stack, x, labels):
    """[K] batch losses of a weight stack [K, d] (the layers of :func:`_layers`)."""
    return sample_losses(cfg, scores(cfg, _forward(cfg, layers, stack, x)), labels).sum(-1)


def predict(cfg: TrainerConfig, flat_w, x, macro=None):
    """Class decisions: argmax of the CIM results (ties → lowest class index)."""
    return forward(cfg, flat_w, x, macro=macro).argmax(dim=1)


def accuracy(cfg: TrainerConfig, flat_w, x, labels, macro=None):
    return float((predict(cfg, flat_w, x, macro) == labels).double().mean())


def init_weights(cfg: TrainerConfig):
    """Initial flat weights [d]: zeros, or uniform integers in [-2**init_bits, 2**init_bits]
    drawn by ``torch.randint`` from a ``torch.Generator`` seeded with ``seed`` (loaded into the
    CIM over the write port before training)."""
    d = cfg.params
    if cfg.init == "zero":
        return torch.zeros(d, dtype=torch.int64)
    g = torch.Generator().manual_seed(cfg.seed)
    r = 1 << cfg.init_bits
    w = torch.randint(-r, r + 1, (d,), generator=g, dtype=torch.int64)
    lo, hi = cfg.weight_range
    return w.clamp(lo, hi)


# -- the step ---------------------------------------------------------------------------------

def perturbation(cfg: TrainerConfig, z):
    """δ of engine words z."""
    return shift(z * cfg.eps_mult if cfg.eps_mult != 1 else z, cfg.delta_shift)


def _gain(cfg, g):
    """G of the update ``Delta = -rshift(z * G)``: ``g * lr_mult`` (sgd) or
    ``sign(g) * lr_mult`` (sign)."""
    if cfg.update == "sign":
        g = (g > 0) - (g < 0)
    return g * cfg.lr_mult


def update_delta(cfg: TrainerConfig, g, z, step=0):
    """Δ of the update of step ``step`` for a saturated loss difference g (python int) and
    words z [d]."""
    return -_Words(cfg, z.unsqueeze(0)).descent(0, _gain(cfg, g), cfg.lr_shift_at(step))


def write_counts(delta, w_minus, w_new):
    """Writes a step issues per weight (0 to 3; a write of the cell's current value is
    suppressed): both perturbation writes unless delta = 0, the update write unless
    ``w_new == w - delta``. Element-wise, so also for a run of steps ``[n, d]``."""
    return 2 * (delta != 0).to(torch.int64) + (w_new != w_minus).to(torch.int64)


class _Words:
    """What the steps of a run need from their engine words ``z`` ``[n, d]``, computed for the
    whole chunk at once: ``delta`` (:func:`perturbation`), ``signed`` = ``[delta, -delta]``
    per step (``w + signed[j]`` is the stack of both perturbed weights) and, per sign of G and
    shift k, ``2**(k-1) - [z * G < 0]``: the rounding bias of ``rshift_round(z * G, k)`` (the
    sign of ``z * G`` is the sign of z times that of G)."""

    def __init__(self, cfg, z):
        self._cfg, self.z = cfg, z
        self.delta = perturbation(cfg, z)
        self._signed = None
        self._rows = z.unbind(0)
        self._bias = {}

    @property
    def signed(self):
        if self._signed is None:
            self._signed = torch.stack([self.delta, -self.delta], dim=1)
        return self._signed

    def descent(self, j, G, k):
        """``rshift_round(z[j] * G, k, rounding)``: minus the update of step j's words."""
        if k == 0:
            return self._rows[j] * G
        if self._cfg.rounding == "floor" or G == 0:
            return (self._rows[j] * G) >> k
        key = (G > 0, k)
        bias = self._bias.get(key)
        if bias is None:
            neg = (self.z < 0) if G > 0 else (self.z > 0)
            bias = self._bias[key] = ((1 << (k - 1)) - neg.to(torch.int64)).unbind(0)
        t = torch.add(bias[j], self._rows[j], alpha=G)   # z * G + 2**(k-1) - [z * G < 0]
        t >>= k
        return t


class _Fast:
    """The layers of a run with the behavioural macro's arithmetic on prepared operands
    (:mod:`zohw.sw.cim`: :func:`~zohw.sw.cim.prepare_weights`,
    :func:`~zohw.sw.cim.tile_results`): bit-identical to :func:`_forward` with fewer tensor
    operations per step. The first layer's input drives of every train sample are prepared
    once per run (a step gathers its mini-batch's); the weights enter in offset binary
    (``w + offset ± delta`` indexes the cell table directly), the first layer's two perturbed
    matrices side by side (one GEMM); scores and hidden activations are the floored, scaled
    shift-add (``y * 2**-shift``, exact)."""

    #: Largest drive table prepared once per run (bytes); larger ones are prepared per step.
    TABLE_BYTES = 1 << 28

    def __init__(self, cfg, layers, data):
        self.cfg = cfg
        self.cims = [c for _, c, _ in layers]
        self.plans = [_cim.plan(c) for c in self.cims]
        self.bounds = [(start, start + c.rows * c.cols) for _, c, start in layers]
        self.imax = self.cims[0].input_max
        self.off = self.cims[0].weight_offset
        last = len(self.cims) - 1
        self.shifts = [cfg.logit_shift if i == last else cfg.hidden_shift
                       for i in range(last + 1)]
        # scores stay float (exact integers) when every loss value fits the significand
        ytype = self.plans[-1].ytype
        self.float_scores = TrainerPlan(cfg).loss_max < (1 << (24 if ytype == torch.float32
                                                                 else 53))
        c = self.cims[0]
        self.one_tile = c.row_tiles == 1        # first layer: plain matrices, one GEMM
        self.kernel = _cim.matrix_kernel(c, 2 * c.cols, self.shifts[0]) if self.one_tile \
            else None
        rows = c.padded_rows if c.row_tiles > 1 else c.rows
        self.table = None
        if data.n_train * rows * c.input_passes * 4 <= self.TABLE_BYTES:
            d = _cim.prepare_inputs(c, data.x_train)        # [N*I, R] or [T, N*I, Rt]
            self.table = d.view(*d.shape[:-2], data.n_train, -1)    # [(T,) N, I*Rt]

    @staticmethod
    def applies(layers):
        """True when every layer's golden model is the behavioural macro's
        (:func:`zohw.sw.cim.cim_matvec`)."""
        golden = default_macro().golden
        return all(getattr(type(mac), "golden", None) is golden for mac, _, _ in layers)

    def chunk(self, words, idx, xs):
        """Per-chunk operands, one entry per step: every layer's ``offset ± delta`` (layer 0
        as ``[R, 2, C]``, the two matrices side by side; the others ``[2, R, C]``) and the
        first layer's drives of the step's mini-batch (gathered from the table at once, or
        prepared)."""
        n = words.delta.shape[0]
        signed = []
        for i, (c, (a, b)) in enumerate(zip(self.cims, self.bounds)):
            if i == 0:
                d = words.delta[:, a:b].view(n, c.rows, 1, c.cols)
                signed.append(torch.cat([d, -d], dim=2).add_(self.off).unbind(0))
            else:
                s = words.signed[:, :, a:b].view(n, 2, c.rows, c.cols) + self.off
                signed.append(s.unbind(0))
        c = self.cims[0]
        if self.table is None:
            drives = [_cim.prepare_inputs(c, x) for x in xs.unbind(0)]
        elif self.one_tile:                                     # [n, B*I, R]
            drives = self.table.index_select(0, idx.view(-1)).view(n, -1, c.rows).unbind(0)
        else:                                                   # [n, T, B*I, Rt]
            d = self.table.index_select(1, idx.view(-1))
            drives = d.view(d.shape[0], n, -1, c.tile_rows).transpose(0, 1).unbind(0)
        return signed, drives

    def scores(self, w, signed, drives, j):
        """Scores ``[2, B, classes]`` of the step-j stack ``w ± delta``: int64, or float
        holding integers when the loss plug-in computes exactly on them
        (``float_scores``)."""
        c, (a, b), p = self.cims[0], self.bounds[0], self.plans[0]
        u = torch.add(w[a:b].view(c.rows, 1, c.cols), signed[0][j]).view(c.rows, 2 * c.cols)
        if self.kernel is not None:
            y = self.kernel(u, drives[j]).floor_()
        else:
            y = _cim.tile_results(c, _cim.prepare_weights(c, u, p), drives[j], self.shifts[0],
                                  p).floor_()
        y = y.view(-1, 2, c.cols).transpose(0, 1)                          # [2, B, cols]
        for i in range(1, len(self.cims)):
            y.clamp_(0, self.imax)
            h = y.to(torch.int64)
            x = torch.cat([h, torch.full((*h.shape[:-1], 1), self.imax, dtype=torch.int64)], -1)
            c, (a, b), p = self.cims[i], self.bounds[i], self.plans[i]
            u = w[a:b].view(1, c.rows, c.cols) + signed[i][j]
            y = _cim.tile_results(c, _cim.prepare_weights(c, u, p), _cim.prepare_inputs(c, x),
                                  self.shifts[i], p).floor_()
        return y if self.float_scores else y.to(torch.int64)

    def scorer(self):
        """:meth:`scores` as a function; for one one-tile layer (the linear model) a closure
        over its constants (the same operations, less interpreter work per step)."""
        if len(self.cims) > 1 or self.kernel is None:
            return self.scores
        R, C, kernel, exact = self.cims[0].rows, self.cims[0].cols, self.kernel, self.float_scores

        def scores(w, signed, drives, j):
            y = kernel(torch.add(w.view(R, 1, C), signed[0][j]).view(R, 2 * C), drives[j])
            y = y.floor_().view(-1, 2, C).transpose(0, 1)
            return y if exact else y.to(torch.int64)

        return scores


def _stepper(cfg, run):
    """``step(w, words, j, x, labels, s, out=None, fast=None) -> (w_new, l_plus, l_minus,
    g)``: step s on weights w with row j of ``words`` (the per-configuration constants of
    ``run``, :func:`_run_constants`, bound once); ``fast`` is the chunk's prepared operands
    (:class:`_Fast`) or None (then ``x`` is the mini-batch)."""
    layers, lo, hi, dmin, dmax, model = run
    loss = get_loss(cfg.loss).golden
    scores = model.scorer() if model is not None else None
    sign = cfg.update == "sign"
    mult = cfg.lr_mult
    decay = cfg.lr_decay
    shift0 = cfg.lr_shift

    def step(w, words, j, x, labels, s, out=None, fast=None):
        if fast is None:
            losses = _batch_losses(cfg, layers, w + words.signed[j], x, labels)
        else:
            losses = loss(cfg, scores(w, fast[0], fast[1], j), labels).sum(-1)
        l_plus, l_minus = map(int, losses.tolist())
        g = max(dmin, min(dmax, l_plus - l_minus))
        G = ((g > 0) - (g < 0) if sign else g) * mult                  # _gain
        t = words.descent(j, G, shift0 + (s // decay if decay else 0))  # lr_shift_at
        w_new = torch.sub(w, t, out=out)
        w_new.clamp_(lo, hi)
        return w_new, l_plus, l_minus, g

    return step


def _step(cfg, run, w, words, j, x, labels, step, out=None, fast=None):
    """One step (:func:`_stepper`)."""
    return _stepper(cfg, run)(w, words, j, x, labels, step, out, fast)


def _run_constants(cfg, macro, data=None):
    """``(layers, lo, hi, diff_min, diff_max, fast model or None)`` of a run."""
    lo, hi = cfg.weight_range
    layers = _layers(cfg, macro)
    model = _Fast(cfg, layers, data) if data is not None and _Fast.applies(layers) else None
    return layers, lo, hi, cfg.diff_min, cfg.diff_max, model


def golden_step(cfg: TrainerConfig, w, z, x, labels, step=0, macro=None):
    """One full step on flat weights ``w`` [d] with words ``z`` [d] and a mini-batch.

    Returns ``(w_new, l_plus, l_minus, g, writes)`` where ``writes`` [d] counts the writes the
    step issues per weight (0 to 3; suppressed when the value does not change): a zero word
    (delta = 0) skips both perturbation writes, so sparse words (many zeros) save writes.
    """
    words = _Words(cfg, z.unsqueeze(0))
    run = _run_constants(cfg, macro)
    w_new, l_plus, l_minus, g = _step(cfg, run, w, words, 0, x, labels, step)
    delta = words.delta[0]
    return w_new, l_plus, l_minus, g, write_counts(delta, w - delta, w_new)


# -- cycle model ------------------------------------------------------------------------------

def cycle_breakdown(cfg: TrainerConfig, macro=None):
    """Cycles of every phase of a step: the RTL's own plan (:class:`zohw.hw.plan.TrainerPlan`,
    the one cycle model)."""
    return TrainerPlan(cfg, macro=macro).cycle_breakdown()


def predicted_cycles_per_step(cfg: TrainerConfig, macro=None):
    """Cycles per step of the RTL (:attr:`zohw.hw.plan.TrainerPlan.cycles_per_step`)."""
    return TrainerPlan(cfg, macro=macro).cycles_per_step


# -- training loop ----------------------------------------------------------------------------

@dataclass
class TrainResult:
    config: TrainerConfig
    weights: torch.Tensor                  # final flat weights [d]
    l_plus: torch.Tensor                   # [steps] int64
    l_minus: torch.Tensor                  # [steps] int64
    g: torch.Tensor                        # [steps] int64 (saturated)
    write_counts: torch.Tensor             # [d] writes issued per weight
    eval_steps: list = field(default_factory=list)
    test_accuracy: list = field(default_factory=list)
    train_accuracy: list = field(default_factory=list)
    cycles: int = 0
    seconds: float = 0.0
    #: ``{n: (weights [d], write_counts [d])}`` after step count n, for each n asked for
    #: (``train_golden(..., snapshots=...)``; the co-simulation's checkpoints)
    snapshots: dict = field(default_factory=dict)

    @property
    def final_test_accuracy(self):
        return self.test_accuracy[-1]

    def step_loss(self):
        """Per-step training loss: (L+ + L−) / (2 · batch) as float64 [steps]."""
        return (self.l_plus + self.l_minus).double() / (2 * self.config.batch)


def load_data(cfg: TrainerConfig):
    """The configuration's data set: ``load_dataset(dataset, cim.input_bits, input_pool)``."""
    from zohw.sw.data import load_dataset
    return check_data(cfg, load_dataset(cfg.dataset, cfg.cim.input_bits, cfg.input_pool))


def check_data(cfg: TrainerConfig, data):
    """``data`` if its shape fits the configuration, else a one-line ConfigError."""
    name = getattr(data, "name", "the data set")
    for split in ("train", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if x.dim() != 2 or x.shape[1] != cfg.inputs + 1 or len(y) != len(x):
            raise ConfigError(f"{name}: x_{split} must have shape (n, {cfg.inputs + 1}) (inputs "
                              f"{cfg.inputs} + bias) and one label per row, not "
                              f"{tuple(x.shape)} with {len(y)} labels")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= cfg.classes):
            raise ConfigError(f"{name}: y_{split} must hold labels from 0 to {cfg.classes - 1}, "
                              f"not from {int(y.min())} to {int(y.max())}")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) > cfg.cim.input_max):
            raise ConfigError(f"{name}: x_{split} must hold codes from 0 to "
                              f"{cfg.cim.input_max}, not from {int(x.min())} to {int(x.max())}")
    if math.gcd(cfg.stride, data.n_train) != 1:
        raise ConfigError(f"stride must be coprime with the train-set size {data.n_train} of "
                          f"{name}, not {cfg.stride}")
    return data


def _eval_points(cfg):
    pts = list(range(cfg.eval_every, cfg.steps + 1, cfg.eval_every))
    if not pts or pts[-1] != cfg.steps:
        pts.append(cfg.steps)
    return [0] + pts


def train_golden(cfg: TrainerConfig, data=None, progress=False, z_source=None, macro=None,
                 snapshots=()):
    """Run ``cfg.steps`` golden steps from :func:`init_weights`; returns a :class:`TrainResult`.

    ``data`` defaults to :func:`load_data` (the configuration's data set); its shape must
    match the configuration (``inputs + 1`` columns, labels below ``classes``).
    ``z_source(first_step, count) -> LongTensor[count, d]`` overrides the engine (tests); by
    default the words come from :func:`zohw.sw.perturb.golden_perturbations` in chunks of at
    most :data:`Z_CHUNK` steps. ``macro`` is the CIM macro factory (default the behavioural
    macro): its golden model computes the layers, its latencies the cycles. ``snapshots``:
    step counts (1 … ``steps``) after which the weights and write counts are kept
    (``TrainResult.snapshots``), taken from the run's own trajectory.
    """
    with single_thread():
        return _train_golden(cfg, data, progress, z_source, macro, snapshots)


def _train_golden(cfg, data, progress, z_source, macro, snapshots=()):
    from zohw.sw.perturb import golden_perturbations

    t0 = time.perf_counter()
    data = load_data(cfg) if data is None else check_data(cfg, data)
    d = cfg.params
    if z_source is None:
        def z_source(first, count):
            return golden_perturbations(cfg.engine, cfg.seed, d, count, first_step=first)
    T = cfg.steps
    res = TrainResult(cfg, init_weights(cfg), torch.zeros(T, dtype=torch.int64),
                      torch.zeros(T, dtype=torch.int64), torch.zeros(T, dtype=torch.int64),
                      torch.zeros(d, dtype=torch.int64))
    with torch.inference_mode():        # no autograd bookkeeping: a step is ~30 tiny ops
        _train_loop(cfg, data, z_source, macro, res, bar_desc=progress and
                    f"golden {cfg.engine.strategy}", snapshots=snapshots)
    res.weights = res.weights.clone()   # a normal tensor again (inference tensors are frozen)
    res.cycles = predicted_cycles_per_step(cfg, macro) * cfg.steps
    res.seconds = time.perf_counter() - t0
    return res


def _train_loop(cfg, data, z_source, macro, res, bar_desc, snapshots=()):
    """The steps of :func:`train_golden` into ``res`` (its tensors pre-allocated)."""
    T, d = cfg.steps, cfg.params
    snapshots = sorted(set(snapshots))
    if snapshots and not (1 <= snapshots[0] and snapshots[-1] <= T):
        raise ValueError(f"snapshots must be step counts from 1 to {T}, not {snapshots}")
    w = res.weights
    points = _eval_points(cfg)

    def evaluate(step):
        res.eval_steps.append(step)
        res.test_accuracy.append(accuracy(cfg, w, data.x_test, data.y_test, macro))
        res.train_accuracy.append(accuracy(cfg, w, data.x_train, data.y_train, macro))

    evaluate(0)
    bar = None
    if bar_desc:
        from tqdm import tqdm
        bar = tqdm(total=T, unit="step", desc=bar_desc, leave=False)
    run = _run_constants(cfg, macro, data)
    model = run[-1]
    # bytes a step of a chunk holds: words, deltas, both signs (twice), the trajectory and the
    # rounding biases, 8 bytes each per weight
    chunk = max(1, min(Z_CHUNK, CHUNK_BYTES // (80 * d)))
    lp_all, lm_all, g_all = [], [], []
    next_eval = 1
    step = _stepper(cfg, run)
    for first in range(0, T, chunk):
        n = min(chunk, T - first)
        words = _Words(cfg, z_source(first, n))
        idx = batch_indices(data.n_train, cfg.batch, first, n, cfg.stride)
        ys = data.y_train[idx].unbind(0)
        xs = None if model is not None and model.table is not None else data.x_train[idx]
        fast = model.chunk(words, idx, xs) if model is not None else None
        # the weights after every step of the chunk (row 0: before); write counts at the end
        traj = torch.empty(n + 1, d, dtype=torch.int64)
        traj[0] = w
        rows = traj.unbind(0)
        for k in range(n):
            s = first + k
            w, lp, lm, g = step(w, words, k, xs if xs is None else xs[k], ys[k], s,
                                rows[k + 1], fast)
            lp_all.append(lp)
            lm_all.append(lm)
            g_all.append(g)
            if s + 1 == points[next_eval]:
                evaluate(s + 1)
                next_eval += 1
        # write_counts summed over the chunk: 2 per non-zero delta, 1 per changed update
        perturbed = words.delta != 0
        updated = traj[1:] != traj[:-1] - words.delta
        for s in (s for s in snapshots if first < s <= first + n):
            j = s - first
            res.snapshots[s] = (traj[j].clone(), res.write_counts + perturbed[:j].sum(0) * 2
                                + updated[:j].sum(0))
        res.write_counts += perturbed.sum(0) * 2
        res.write_counts += updated.sum(0)
        w = traj[n].clone()
        if bar is not None:
            bar.update(n)
    if bar is not None:
        bar.close()
    res.weights = w
    res.l_plus.copy_(torch.tensor(lp_all, dtype=torch.int64))
    res.l_minus.copy_(torch.tensor(lm_all, dtype=torch.int64))
    res.g.copy_(torch.tensor(g_all, dtype=torch.int64))
