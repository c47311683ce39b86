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

from zohw.cim_config import CIMConfig
from zohw.sw.cim import cim_matvec
from zohw.sw.data import batch_indices, load_digits_split
from zohw.train_config import CLASSES, TrainerConfig

__all__ = ["shift", "rshift_round", "forward", "scores", "sample_losses", "batch_loss",
           "unflatten", "init_weights", "perturbation", "update_delta", "golden_step",
           "accuracy", "cycle_breakdown", "predicted_cycles_per_step", "TrainResult",
           "train_golden", "Z_CHUNK"]

#: Steps of engine words generated at a time (bounds memory: Z_CHUNK · d int64).
Z_CHUNK = 500

#: Cycle-model constants (see :func:`cycle_breakdown` and ``docs/trainer.md``).
WRITE_PIPE = 2       # z register → add/saturate → CIM write
UPDATE_PIPE = 3      # z register → multiply → round/add/saturate → CIM write
SAMPLE_READ = 1      # sample memory read before the first CIM transfer
REQUANT = 1          # MLP: shift/clamp of the hidden results, one register stage
DIFF = 1             # g = sat(L+ - L-)
STROBES = 3          # replay, replay, advance: one cycle each (no transfer in a strobe cycle)


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

def stacked_matvec(c: CIMConfig, weights, x):
    """:func:`zohw.sw.cim.cim_matvec` for a stack of weight matrices, bit-identical, faster.

    ``weights``: int64 ``[K, rows, cols]`` (values already in range); ``x``: ``[batch, rows]``
    (shared) or ``[K, batch, rows]``. Returns int64 ``[K, batch, cols]``. The analog column sums
    of every (slice, bit-plane) pass are computed with a float matmul, exact because they are
    integers below 2**24 (float32) or 2**53 (float64); the ADC, the shift-add and the offset
    correction are the integer operations of ``cim_matvec``. The tests check equality.
    """
    K = weights.shape[0]
    u = weights + c.weight_offset
    ks = torch.arange(c.slices, dtype=torch.int64).mul_(c.cell_bits).view(1, -1, 1, 1)
    cells = (u.unsqueeze(1) >> ks) & c.cell_max                       # [K, S, R, C]
    if c.input_mode == "parallel":
        planes = x.unsqueeze(-3)                                      # [(K,) 1, B, R]
    else:
        bits = torch.arange(c.input_bits, dtype=torch.int64).view(-1, 1, 1)
        planes = (x.unsqueeze(-3) >> bits) & 1                        # [(K,) I, B, R]
    ftype = torch.float32 if c.full_scale < (1 << 24) else torch.float64
    S, R, C = c.slices, c.rows, c.cols
    if planes.dim() == 3:
        # shared inputs: one GEMM [I*B, R] @ [R, K*S*C]
        I, B = planes.shape[0], planes.shape[1]
        rhs = cells.permute(2, 0, 1, 3).reshape(R, K * S * C)
        sums = (planes.reshape(I * B, R).to(ftype) @ rhs.to(ftype)).to(torch.int64)
        sums = sums.view(I, B, K, S, C).permute(2, 3, 0, 1, 4)
    else:
        # per-stack inputs: [K, I*B, R] @ [K, R, S*C]
        I, B = planes.shape[1], planes.shape[2]
        rhs = cells.permute(0, 2, 1, 3).reshape(K, R, S * C)
        sums = torch.bmm(planes.reshape(K, I * B, R).to(ftype), rhs.to(ftype)).to(torch.int64)
        sums = sums.view(K, I, B, S, C).permute(0, 3, 1, 2, 4)            # [K, S, I, B, C]
    recon = torch.clamp(sums >> c.adc_shift, max=c.adc_max) << c.adc_shift
    k = torch.arange(c.slices, dtype=torch.int64).view(1, -1, 1, 1, 1) * c.cell_bits
    i = torch.arange(c.input_passes, dtype=torch.int64).view(1, 1, -1, 1, 1)
    y = (recon << (k + i)).sum(dim=(1, 2))                            # [K, B, C]
    xs = x.sum(dim=-1, keepdim=True)
    return y - c.weight_offset * (xs if xs.dim() == 3 else xs.unsqueeze(0))


def forward(cfg: TrainerConfig, flat_w, x, exact_reference=False):
    """CIM results of the output layer for inputs x ``[batch, 65]``.

    ``flat_w`` is one flat weight vector [d] (result ``[batch, 10]``) or a stack [K, d] (result
    ``[K, batch, 10]``). linear: the macro's ``cim_matvec(cim, W, x)``. mlp:
    ``h = clamp(y1 >> hidden_shift, 0, 2**input_bits - 1)`` (ReLU + saturation to the input
    format), then the output macro on ``[h, 2**input_bits - 1]`` (constant bias input).
    ``exact_reference=True`` calls :func:`zohw.sw.cim.cim_matvec` itself (slow; for tests).
    """
    single = flat_w.dim() == 1
    stack = flat_w.unsqueeze(0) if single else flat_w
    layers = unflatten(cfg, stack)
    cims = cfg.layer_cims
    if exact_reference:
        def mv(c, w, xin):
            xin = xin if xin.dim() == 3 else xin.expand(w.shape[0], *xin.shape)
            return torch.stack([cim_matvec(c, w[j], xin[j]) for j in range(w.shape[0])])
    else:
        mv = stacked_matvec
    y = mv(cims[0], layers[0], x)
    if cfg.model == "mlp":
        c2 = cims[1]
        h = torch.clamp(y >> cfg.hidden_shift, 0, c2.input_max)
        bias = torch.full((*h.shape[:-1], 1), c2.input_max, dtype=torch.int64)
        y = mv(c2, layers[1], torch.cat([h, bias], dim=-1))
    return y[0] if single else y


def scores(cfg: TrainerConfig, y):
    """Scores the loss sees: ``y >> logit_shift`` (floor)."""
    return y >> cfg.logit_shift


def sample_losses(cfg: TrainerConfig, s, labels):
    """Per-sample integer loss of scores s ``[batch, 10]``.

    hinge: ``sum_{j != y} max(0, margin + s_j - s_y)``; mse: ``sum_j (s_j - t_j)**2`` with
    ``t_y = target`` and 0 elsewhere.
    """
    sy = s.gather(1, labels.view(-1, 1))
    if cfg.loss == "hinge":
        return torch.clamp(cfg.margin + s - sy, min=0).sum(1) - cfg.margin
    t = torch.zeros_like(s).scatter_(1, labels.view(-1, 1), cfg.target)
    return ((s - t) ** 2).sum(1)


def batch_loss(cfg: TrainerConfig, flat_w, x, labels):
    """L: the integer loss summed over the mini-batch (a stack [K, d] of weights gives [K])."""
    s = scores(cfg, forward(cfg, flat_w, x))
    if s.dim() == 2:
        return int(sample_losses(cfg, s, labels).sum())
    K, B, C = s.shape
    return sample_losses(cfg, s.reshape(K * B, C), labels.repeat(K)).view(K, B).sum(1)


def predict(cfg: TrainerConfig, flat_w, x):
    """Class decisions: argmax of the CIM results (ties → lowest class index)."""
    return forward(cfg, flat_w, x).argmax(dim=1)


def accuracy(cfg: TrainerConfig, flat_w, x, labels):
    return float((predict(cfg, flat_w, x) == labels).double().mean())


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


def golden_step(cfg: TrainerConfig, w, z, x, labels, step=0):
    """One full step on flat weights ``w`` [d] with words ``z`` [d] and a mini-batch.

    Returns ``(w_new, l_plus, l_minus, g, writes)`` where ``writes`` [d] counts the writes the
    step issues per weight (0 to 3; suppressed when the value does not change).
    """
    delta = perturbation(cfg, z)
    w_minus = w - delta
    lpm = batch_loss(cfg, torch.stack([w + delta, w_minus]), x, labels).tolist()
    l_plus, l_minus = lpm
    g = max(cfg.diff_min, min(cfg.diff_max, l_plus - l_minus))
    lo, hi = cfg.weight_range
    w_new = torch.clamp(w + update_delta(cfg, g, z, step), lo, hi)
    moved = (delta != 0).to(torch.int64)
    writes = 2 * moved + (w_new != w_minus).to(torch.int64)
    return w_new, l_plus, l_minus, g, writes


# -- cycle model ------------------------------------------------------------------------------

def _write_pass(cfg: TrainerConfig):
    """Cycles to stream the d words of one step through the CIM write ports: every engine
    transfer is split into beats of ``write_lanes`` words; beats holding only padding lanes of
    the last transfer are skipped."""
    P = cfg.engine.lanes
    wl = cfg.cim.write_lanes
    d = cfg.params
    C = -(-d // P)
    last = d - (C - 1) * P
    return (C - 1) * -(-P // wl) + -(-last // wl)


def _forward_pass(cfg: TrainerConfig):
    """Cycles of one forward pass over the mini-batch, loss included."""
    B = cfg.batch
    cpv = [c.cycles_per_vector for c in cfg.layer_cims]
    loss_per_sample = CLASSES          # sequential loss unit: one class per cycle
    issue = max(max(cpv), loss_per_sample)
    extra = sum(cpv) - max(cpv) + (REQUANT if cfg.model == "mlp" else 0)
    return SAMPLE_READ + B * issue + extra + loss_per_sample + 1


def cycle_breakdown(cfg: TrainerConfig):
    """Cycles of every phase of a step in the documented schedule (``docs/trainer.md``)."""
    w = _write_pass(cfg)
    f = _forward_pass(cfg)
    return {
        "perturb_plus": w + WRITE_PIPE,
        "forward_plus": f,
        "perturb_minus": w + WRITE_PIPE,
        "forward_minus": f,
        "difference": DIFF,
        "update": w + UPDATE_PIPE,
        "strobes": STROBES,
    }


def predicted_cycles_per_step(cfg: TrainerConfig):
    """Analytic cycles per step: ``3·W + 2·Fw + 2·WRITE_PIPE + UPDATE_PIPE + DIFF + STROBES``
    with W = :func:`_write_pass` and Fw = :func:`_forward_pass`."""
    return sum(cycle_breakdown(cfg).values())


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


def train_golden(cfg: TrainerConfig, data=None, progress=False, z_source=None):
    """Run ``cfg.steps`` golden steps from :func:`init_weights`; returns a :class:`TrainResult`.

    ``z_source(first_step, count) -> LongTensor[count, d]`` overrides the engine (tests); by
    default the words come from :func:`zohw.sw.perturb.golden_perturbations` in chunks of
    :data:`Z_CHUNK` steps.
    """
    with single_thread():
        return _train_golden(cfg, data, progress, z_source)


def _train_golden(cfg, data, progress, z_source):
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
        res.test_accuracy.append(accuracy(cfg, w, data.x_test, data.y_test))
        res.train_accuracy.append(accuracy(cfg, w, data.x_train, data.y_train))

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
            w, lp, lm, g, wr = golden_step(cfg, w, zs[k], x, y, s)
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
    res.cycles = predicted_cycles_per_step(cfg) * T
    res.seconds = time.perf_counter() - t0
    return res
