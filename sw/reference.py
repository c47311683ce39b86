"""Float references of the trainer, for accuracy comparison with the integer golden model.

Both references train the *same model* on the *same mini-batches* from the *same initial
weights* as :func:`zohw.sw.train.train_golden`, in float32, with none of the hardware's
quantisation: exact products ``x @ W`` instead of the CIM macro, real-valued scores
``y / 2**logit_shift`` instead of a floor shift, no saturation of weights or of the loss
difference, no rounding of the update. Weights are kept in the hardware's integer LSB units so the
hyper-parameters carry over unchanged.

``float-gauss`` — MeZO/SPSA with Gaussian z
    ``z ~ N(0, 1) · 2**F`` (F = B − 3: the engine's word scale, so z has the engine's std) from a
    ``torch.Generator`` seeded with ``seed``; ``delta = z · eps_mult · 2**(weight_frac − F −
    eps_shift)``; ``g = L(w + delta) − L(w − delta)``; ``w −= g · z · lr_mult · 2**-lr_shift``
    (``sign``: ``sign(g)`` instead of g) — the golden step with real numbers.

``fo-sgd`` — first-order SGD with back-propagation
    ``w −= fo_lr · 2**-(s // lr_decay) · ∇L(w)`` where L is the same batch-summed loss; ``fo_lr``
    (default :func:`default_fo_lr`: 4 linear, 16 MLP) is the only extra hyper-parameter.

Both follow the golden model's step decay ``lr_shift + s // lr_decay`` when ``lr_decay > 0``.

Every hidden layer of the MLP is ``clamp(y / 2**hidden_shift, 0, 2**input_bits − 1)`` (the
golden requantisation without the floor), followed by the constant bias input; any depth and
any numbers of inputs and classes, as the configuration says.
"""

import time

import torch

from zohw.losses import get as get_loss
from zohw.sw.data import batch_indices
from zohw.sw.train import (TrainResult, _eval_points, check_data, init_weights, load_data,
                           single_thread, unflatten)
from zohw.train_config import TrainerConfig

__all__ = ["REFERENCES", "FO_LR", "FO_LR_MLP", "default_fo_lr", "float_forward", "float_losses",
           "train_reference"]

REFERENCES = ("float-gauss", "fo-sgd")
#: Default learning rate of the first-order reference (weights in LSB units, loss summed over
#: the batch), tuned on digits: linear 2 → 0.953, 4 → 0.953, 8 → 0.953, 16 → 0.959 after
#: 10 000 steps; the MLP (hidden activations scaled by 2**-hidden_shift) needs 16.
FO_LR = 4.0
FO_LR_MLP = 16.0


def default_fo_lr(cfg):
    """:data:`FO_LR` for the linear model, :data:`FO_LR_MLP` for the MLP."""
    return FO_LR if cfg.model == "linear" else FO_LR_MLP


def float_forward(cfg: TrainerConfig, flat_w, x):
    """Float results ``[batch, classes]`` (``flat_w`` float32 [d] or [k, d]; x float32
    ``[batch, inputs + 1]``)."""
    layers = unflatten(cfg, flat_w)
    y = x @ layers[0]
    if len(layers) > 1:
        imax = float(cfg.cim.input_max)
        for w in layers[1:]:
            h = torch.clamp(y * 2.0 ** -cfg.hidden_shift, 0.0, imax)
            y = torch.cat([h, torch.full_like(h[..., :1], imax)], dim=-1) @ w
    return y


def float_losses(cfg: TrainerConfig, y, labels):
    """Per-sample float loss of results y (scores ``y / 2**logit_shift``): the float loss of
    the plug-in ``cfg.loss`` (:mod:`zohw.losses`)."""
    return get_loss(cfg.loss).float_loss(cfg, y * 2.0 ** -cfg.logit_shift, labels)


def _accuracy(cfg, w, x, labels):
    return float((float_forward(cfg, w, x).argmax(dim=-1) == labels).double().mean())


def train_reference(cfg: TrainerConfig, kind, data=None, progress=False, fo_lr=None):
    """Train the float reference ``kind`` (``float-gauss`` or ``fo-sgd``): a
    :class:`zohw.sw.train.TrainResult` whose ``l_plus``/``l_minus`` are float64 (fo-sgd: both
    the batch loss) and whose ``write_counts`` and ``cycles`` are zero."""
    if kind not in REFERENCES:
        raise ValueError(f"reference must be one of {', '.join(REFERENCES)}, not {kind!r}")
    if fo_lr is None:
        fo_lr = default_fo_lr(cfg)
    with single_thread():
        return _train_reference(cfg, kind, data, progress, fo_lr)


def _train_reference(cfg, kind, data, progress, fo_lr):
    t0 = time.perf_counter()
    data = load_data(cfg) if data is None else check_data(cfg, data)
    xtr, xte = data.x_train.float(), data.x_test.float()
    d, T = cfg.params, cfg.steps
    w = init_weights(cfg).float()
    l_plus = torch.zeros(T, dtype=torch.float64)
    l_minus = torch.zeros(T, dtype=torch.float64)
    gs = torch.zeros(T, dtype=torch.float64)
    res = TrainResult(cfg, w, l_plus, l_minus, gs, torch.zeros(d, dtype=torch.int64))
    points = _eval_points(cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    zscale = 2.0 ** cfg.engine.frac_bits
    eps = cfg.eps_mult * 2.0 ** cfg.delta_shift

    def evaluate(step, w):
        res.eval_steps.append(step)
        res.test_accuracy.append(_accuracy(cfg, w, xte, data.y_test))
        res.train_accuracy.append(_accuracy(cfg, w, xtr, data.y_train))

    evaluate(0, w)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=T, unit="step", desc=kind, leave=False)
    next_eval = 1
    chunk = 1000
    for first in range(0, T, chunk):
        n = min(chunk, T - first)
        idx = batch_indices(data.n_train, cfg.batch, first, n, cfg.stride)
        for k in range(n):
            s = first + k
            x, y = xtr[idx[k]], data.y_train[idx[k]]
            lr = cfg.lr_mult * 2.0 ** -cfg.lr_shift_at(s)
            decay = 2.0 ** (cfg.lr_shift - cfg.lr_shift_at(s))
            if kind == "float-gauss":
                z = torch.randn(d, generator=gen) * zscale
                wz = torch.stack([w + eps * z, w - eps * z])
                lpm = float_losses(cfg, float_forward(cfg, wz, x), y).sum(-1)
                lp, lm = float(lpm[0]), float(lpm[1])
                g = lp - lm
                if cfg.update == "sign":
                    g = float((g > 0) - (g < 0))
                w = w - (g * lr) * z
            else:
                wg = w.clone().requires_grad_(True)
                loss = float_losses(cfg, float_forward(cfg, wg, x), y).sum()
                loss.backward()
                with torch.no_grad():
                    w = w - (fo_lr * decay) * wg.grad
                lp = lm = float(loss.detach())
                g = 0.0
            l_plus[s], l_minus[s], gs[s] = lp, lm, g
            if s + 1 == points[next_eval]:
                evaluate(s + 1, w)
                next_eval += 1
        if bar is not None:
            bar.update(n)
    if bar is not None:
        bar.close()
    res.weights = w
    res.seconds = time.perf_counter() - t0
    return res
