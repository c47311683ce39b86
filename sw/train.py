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
           "accuracy", "cycle_breakdown", "predicted_cycles_per_step", "TrainResult",
           "train_golden", "Z_CHUNK", "RESULT_KEYS"]

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
    mag = (v.abs() + (1 << (k - 1))) >> k
    return torch.where(v < 0, -mag, mag)


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
    layers = unflatten(cfg, stack)
    macros = layer_macros(cfg, macro)

    def mv(mac, w, xin):
        if not exact_reference:
            return mac.golden(w, xin)
        xin = xin if xin.dim() == 3 else xin.expand(w.shape[0], *xin.shape)
        return torch.stack([mac.golden(w[j], xin[j]) for j in range(w.shape[0])])

    y = mv(macros[0], layers[0], x)
    if cfg.model == "mlp":
        c2 = cfg.layer_cims[1]
        h = torch.clamp(y >> cfg.hidden_shift, 0, c2.input_max)
        bias = torch.full((*h.shape[:-1], 1), c2.input_max, dtype=torch.int64)
        y = mv(macros[1], layers[1], torch.cat([h, bias], dim=-1))
    return y[0] if single else y


def scores(cfg: TrainerConfig, y):
    """Scores the loss sees: ``y >> logit_shift`` (floor)."""
    return y >> cfg.logit_shift


def sample_losses(cfg: TrainerConfig, s, labels):
    """Per-sample integer loss of scores s ``[batch, 10]``: the golden of the loss plug-in
    ``cfg.loss`` (:mod:`zohw.losses`)."""
    return get_loss(cfg.loss).golden(cfg, s, labels)


def batch_loss(cfg: TrainerConfig, flat_w, x, labels, macro=None):
    """L: the integer loss summed over the mini-batch (a stack [K, d] of weights gives [K])."""
    s = scores(cfg, forward(cfg, flat_w, x, macro=macro))
    if s.dim() == 2:
        return int(sample_losses(cfg, s, labels).sum())
    return sample_losses(cfg, s, labels).sum(-1)


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


def update_delta(cfg: TrainerConfig, g, z, step=0):
    """Δ of the update of step ``step`` for a saturated loss difference g (python int) and
    words z [d]."""
    if cfg.update == "sign":
        g = (g > 0) - (g < 0)
    p = z * (g * cfg.lr_mult)
    return -rshift_round(p, cfg.lr_shift_at(step), cfg.rounding)


def golden_step(cfg: TrainerConfig, w, z, x, labels, step=0, macro=None):
    """One full step on flat weights ``w`` [d] with words ``z`` [d] and a mini-batch.

    Returns ``(w_new, l_plus, l_minus, g, writes)`` where ``writes`` [d] counts the writes the
    step issues per weight (0 to 3; suppressed when the value does not change): a zero word
    (delta = 0) skips both perturbation writes, so sparse words (many zeros) save writes.
    """
    delta = perturbation(cfg, z)
    w_minus = w - delta
    lpm = batch_loss(cfg, torch.stack([w + delta, w_minus]), x, labels, macro).tolist()
    l_plus, l_minus = lpm
    g = max(cfg.diff_min, min(cfg.diff_max, l_plus - l_minus))
    lo, hi = cfg.weight_range
    w_new = torch.clamp(w + update_delta(cfg, g, z, step), lo, hi)
    moved = (delta != 0).to(torch.int64)
    writes = 2 * moved + (w_new != w_minus).to(torch.int64)
    return w_new, l_plus, l_minus, g, writes


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
    w = init_weights(cfg)
    T = cfg.steps
    l_plus = torch.zeros(T, dtype=torch.int64)
    l_minus = torch.zeros(T, dtype=torch.int64)
    gs = torch.zeros(T, dtype=torch.int64)
    writes = torch.zeros(d, dtype=torch.int64)
    points = _eval_points(cfg)
    res = TrainResult(cfg, w, l_plus, l_minus, gs, writes)

    def evaluate(step):
        res.eval_steps.append(step)
        res.test_accuracy.append(accuracy(cfg, w, data.x_test, data.y_test, macro))
        res.train_accuracy.append(accuracy(cfg, w, data.x_train, data.y_train, macro))

    evaluate(0)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=T, unit="step", desc=f"golden {cfg.engine.strategy}", leave=False)
    next_eval = 1
    for first in range(0, T, Z_CHUNK):
        n = min(Z_CHUNK, T - first)
        zs = z_source(first, n)
        idx = batch_indices(data.n_train, cfg.batch, first, n, cfg.stride)
        for k in range(n):
            s = first + k
            x = data.x_train[idx[k]]
            y = data.y_train[idx[k]]
            w, lp, lm, g, wr = golden_step(cfg, w, zs[k], x, y, s, macro)
            l_plus[s], l_minus[s], gs[s] = lp, lm, g
            writes += wr
            if s + 1 == points[next_eval]:
                evaluate(s + 1)
                next_eval += 1
        if bar is not None:
            bar.update(n)
    if bar is not None:
        bar.close()
    res.weights = w
    res.cycles = predicted_cycles_per_step(cfg, macro) * T
    res.seconds = time.perf_counter() - t0
    return res
