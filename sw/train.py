"""Golden model of the zeroth-order trainer: the whole step in vectorized torch integers.

This is the arithmetic the RTL trainer mirrors bit for bit; ``docs/trainer.md`` is its prose
specification. Every quantity is an int64 tensor; the only Python loop runs over steps.

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
import time
from dataclasses import dataclass, field

import torch

from zohw.hw.plan import TrainerPlan, layer_macros
from zohw.losses import get as get_loss
from zohw.sw.data import batch_indices, load_digits_split
from zohw.train_config import TrainerConfig

__all__ = ["shift", "rshift_round", "forward", "scores", "sample_losses", "batch_loss",
           "unflatten", "init_weights", "perturbation", "update_delta", "golden_step",
           "write_counts", "accuracy", "cycle_breakdown", "predicted_cycles_per_step",
           "TrainResult", "train_golden", "Z_CHUNK", "RESULT_KEYS"]

#: Steps of engine words generated at a time (bounds memory: Z_CHUNK · d int64).
Z_CHUNK = 500

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
    """CIM results of the output layer for inputs x ``[batch, 65]``.

    ``flat_w`` is one flat weight vector [d] (result ``[batch, 10]``) or a stack [K, d] (result
    ``[K, batch, 10]``). Every layer is the golden model of its CIM macro (``macro`` is the
    factory, default the behavioural macro: :func:`zohw.sw.cim.cim_matvec`). linear: one
    macro. mlp: ``h = clamp(y1 >> hidden_shift, 0, 2**input_bits - 1)`` (ReLU + saturation to
    the input format), then the output macro on ``[h, 2**input_bits - 1]`` (constant bias
    input). ``exact_reference=True`` runs the macros on one weight matrix at a time (slow; for
    tests of the stacking).
    """
    single = flat_w.dim() == 1
    stack = flat_w.unsqueeze(0) if single else flat_w
    y = _forward(cfg, _layers(cfg, macro), stack, x, exact_reference)
    return y[0] if single else y


def _layers(cfg, macro=None):
    """``(macro, cim config, first flat index)`` of every layer (resolved once per run: the
    configs of an MLP's layers are built on every ``layer_cims`` access)."""
    out, start = [], 0
    for mac, c in zip(layer_macros(cfg, macro), cfg.layer_cims):
        out.append((mac, c, start))
        start += c.rows * c.cols
    return out


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
    if cfg.model == "mlp":
        imax = layers[1][1].input_max
        h = torch.clamp(y >> cfg.hidden_shift, 0, imax)
        bias = torch.full((*h.shape[:-1], 1), imax, dtype=torch.int64)
        y = mv(layers[1], torch.cat([h, bias], dim=-1))
    return y


def scores(cfg: TrainerConfig, y):
    """Scores the loss sees: ``y >> logit_shift`` (floor)."""
    return y >> cfg.logit_shift


def sample_losses(cfg: TrainerConfig, s, labels):
    """Per-sample integer loss of scores s ``[batch, 10]``: the golden of the loss plug-in
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
    return shift(z * cfg.eps_mult, cfg.delta_shift)


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
    whole run at once: ``delta`` (:func:`perturbation`), ``signed`` = ``[delta, -delta]``
    per step (``w + signed[j]`` is the stack of both perturbed weights) and, per sign of G,
    ``-[z * G < 0]`` for the rounding bias of ``rshift_round(z * G)`` (the sign of ``z * G``
    is the sign of z times that of G)."""

    def __init__(self, cfg, z):
        self._cfg, self.z = cfg, z
        self.delta = perturbation(cfg, z)
        self.signed = torch.stack([self.delta, -self.delta], dim=1)
        self._neg = {}

    def descent(self, j, G, k):
        """``rshift_round(z[j] * G, k, rounding)``: minus the update of step j's words."""
        if k == 0:
            return self.z[j] * G
        if self._cfg.rounding == "floor" or G == 0:
            return (self.z[j] * G) >> k
        neg = self._neg.get(G > 0)
        if neg is None:
            neg = self._neg[G > 0] = -(self.z < 0 if G > 0 else self.z > 0).to(torch.int64)
        t = torch.add(neg[j], self.z[j], alpha=G)       # z * G - [z * G < 0]
        t += 1 << (k - 1)
        t >>= k
        return t


def _step(cfg, run, w, words, j, x, labels, step, out=None):
    """Step ``step`` on weights w with row j of ``words``: ``(w_new, l_plus, l_minus, g)``;
    ``run`` holds the per-configuration constants (:func:`_run_constants`)."""
    layers, lo, hi, dmin, dmax = run
    l_plus, l_minus = _batch_losses(cfg, layers, w + words.signed[j], x, labels).tolist()
    g = max(dmin, min(dmax, l_plus - l_minus))
    t = words.descent(j, _gain(cfg, g), cfg.lr_shift_at(step))
    w_new = torch.sub(w, t, out=out)
    w_new.clamp_(lo, hi)
    return w_new, l_plus, l_minus, g


def _run_constants(cfg, macro):
    lo, hi = cfg.weight_range
    return _layers(cfg, macro), lo, hi, cfg.diff_min, cfg.diff_max


def golden_step(cfg: TrainerConfig, w, z, x, labels, step=0, macro=None):
    """One full step on flat weights ``w`` [d] with words ``z`` [d] and a mini-batch.

    Returns ``(w_new, l_plus, l_minus, g, writes)`` where ``writes`` [d] counts the writes the
    step issues per weight (0 to 3; suppressed when the value does not change): a zero word
    (delta = 0) skips both perturbation writes, so sparse words (many zeros) save writes.
    """
    words = _Words(cfg, z.unsqueeze(0))
    w_new, l_plus, l_minus, g = _step(cfg, _run_constants(cfg, macro), w, words, 0, x, labels,
                                      step)
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

    @property
    def final_test_accuracy(self):
        return self.test_accuracy[-1]

    def step_loss(self):
        """Per-step training loss: (L+ + L−) / (2 · batch) as float64 [steps]."""
        return (self.l_plus + self.l_minus).double() / (2 * self.config.batch)


def _eval_points(cfg):
    pts = list(range(cfg.eval_every, cfg.steps + 1, cfg.eval_every))
    if not pts or pts[-1] != cfg.steps:
        pts.append(cfg.steps)
    return [0] + pts


def train_golden(cfg: TrainerConfig, data=None, progress=False, z_source=None, macro=None):
    """Run ``cfg.steps`` golden steps from :func:`init_weights`; returns a :class:`TrainResult`.

    ``z_source(first_step, count) -> LongTensor[count, d]`` overrides the engine (tests); by
    default the words come from :func:`zohw.sw.perturb.golden_perturbations` in chunks of
    :data:`Z_CHUNK` steps. ``macro`` is the CIM macro factory (default the behavioural
    macro): its golden model computes the layers, its latencies the cycles.
    """
    with single_thread():
        return _train_golden(cfg, data, progress, z_source, macro)


def _train_golden(cfg, data, progress, z_source, macro):
    from zohw.sw.perturb import golden_perturbations

    t0 = time.perf_counter()
    if data is None:
        data = load_digits_split(cfg.cim.input_bits)
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
                    f"golden {cfg.engine.strategy}")
    res.weights = res.weights.clone()   # a normal tensor again (inference tensors are frozen)
    res.cycles = predicted_cycles_per_step(cfg, macro) * cfg.steps
    res.seconds = time.perf_counter() - t0
    return res


def _train_loop(cfg, data, z_source, macro, res, bar_desc):
    """The steps of :func:`train_golden` into ``res`` (its tensors pre-allocated)."""
    T, d = cfg.steps, cfg.params
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
    run = _run_constants(cfg, macro)
    lp_all, lm_all, g_all = [], [], []
    next_eval = 1
    for first in range(0, T, Z_CHUNK):
        n = min(Z_CHUNK, T - first)
        words = _Words(cfg, z_source(first, n))
        idx = batch_indices(data.n_train, cfg.batch, first, n, cfg.stride)
        xs, ys = data.x_train[idx], data.y_train[idx]
        # the weights after every step of the chunk (row 0: before); write counts at the end
        traj = torch.empty(n + 1, d, dtype=torch.int64)
        traj[0] = w
        for k in range(n):
            s = first + k
            w, lp, lm, g = _step(cfg, run, w, words, k, xs[k], ys[k], s, out=traj[k + 1])
            lp_all.append(lp)
            lm_all.append(lm)
            g_all.append(g)
            if s + 1 == points[next_eval]:
                evaluate(s + 1)
                next_eval += 1
        res.write_counts += write_counts(words.delta, traj[:-1] - words.delta, traj[1:]).sum(0)
        w = traj[n].clone()
        if bar is not None:
            bar.update(n)
    if bar is not None:
        bar.close()
    res.weights = w
    res.l_plus.copy_(torch.tensor(lp_all, dtype=torch.int64))
    res.l_minus.copy_(torch.tensor(lm_all, dtype=torch.int64))
    res.g.copy_(torch.tensor(g_all, dtype=torch.int64))
