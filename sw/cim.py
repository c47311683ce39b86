"""Bit-exact golden model of the CIM MAC macro (see ``docs/cim.md``).

All functions take a :class:`zohw.cim_config.CIMConfig` and integer tensors; they are vectorised
over a stack of weight matrices, the batch, the rows and the columns (no Python loop).
:func:`cim_matvec` is the one definition of the macro's arithmetic: the behavioural macro
(:class:`zohw.hw.cim.BehaviouralCIMMacro`) names it as its golden model and the trainer's golden
model (:mod:`zohw.sw.train`) calls it through the macro.
"""

import torch

from zohw.cim_config import CIMConfig

__all__ = ["weight_slices", "input_planes", "adc", "cim_matvec", "cim_passes", "exact_matvec",
           "check_weights", "check_inputs"]


def _describe(t):
    return type(t).__name__ + (f" of {t.dtype}" if isinstance(t, torch.Tensor) else "")


def check_weights(cfg: CIMConfig, weights):
    """Validate ``weights`` as a ``[rows, cols]`` (or stacked ``[K, rows, cols]``) integer
    tensor of signed ``weight_bits``."""
    if not isinstance(weights, torch.Tensor) or weights.dtype.is_floating_point:
        raise TypeError(f"weights must be an integer tensor, not {_describe(weights)}")
    if weights.dim() not in (2, 3) or tuple(weights.shape[-2:]) != (cfg.rows, cfg.cols):
        raise ValueError(f"weights must have shape ({cfg.rows}, {cfg.cols}) or "
                         f"(K, {cfg.rows}, {cfg.cols}), not {tuple(weights.shape)}")
    if weights.numel() and (int(weights.min()) < cfg.weight_min
                            or int(weights.max()) > cfg.weight_max):
        raise ValueError(f"weights must be integers from {cfg.weight_min} to {cfg.weight_max}, "
                         f"not from {int(weights.min())} to {int(weights.max())}")
    return weights.to(torch.int64)


def check_inputs(cfg: CIMConfig, x):
    """Validate ``x`` as a ``[batch, rows]`` (or ``[rows]``, or per stack ``[K, batch, rows]``)
    tensor of unsigned ``input_bits``."""
    if not isinstance(x, torch.Tensor) or x.dtype.is_floating_point:
        raise TypeError(f"x must be an integer tensor, not {_describe(x)}")
    if x.dim() not in (1, 2, 3) or x.shape[-1] != cfg.rows:
        raise ValueError(f"x must have shape (batch, {cfg.rows}), not {tuple(x.shape)}")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) > cfg.input_max):
        raise ValueError(f"x must be integers from 0 to {cfg.input_max}, "
                         f"not from {int(x.min())} to {int(x.max())}")
    return x.to(torch.int64)


def _slices(cfg, w):
    """Cells of int64 weights ``[..., R, C]``: ``[..., S, R, C]``."""
    ks = torch.arange(cfg.slices, dtype=torch.int64).mul_(cfg.cell_bits).view(-1, 1, 1)
    return ((w + cfg.weight_offset).unsqueeze(-3) >> ks) & cfg.cell_max


def _planes(cfg, x):
    """Row drives of int64 inputs ``[..., B, R]``: ``[..., I, B, R]``."""
    if cfg.input_mode == "parallel":
        return x.unsqueeze(-3)
    bits = torch.arange(cfg.input_bits, dtype=torch.int64).view(-1, 1, 1)
    return (x.unsqueeze(-3) >> bits) & 1


def weight_slices(cfg: CIMConfig, weights):
    """Cell contents: ``[slices, rows, cols]``, slice k = bits [k*cb, (k+1)*cb) of w + offset."""
    return _slices(cfg, check_weights(cfg, weights))


def input_planes(cfg: CIMConfig, x):
    """Row drive of every input pass: ``[input_passes, batch, rows]`` (bit i, or x itself)."""
    x = check_inputs(cfg, x)
    return _planes(cfg, x.unsqueeze(0) if x.dim() == 1 else x)


def adc(cfg: CIMConfig, column_sums):
    """The ADC model: ``q = min(A >> adc_shift, 2**adc_bits - 1)`` (truncate, then clip).

    Returns the ADC codes ``q``; the reconstructed partial sum is ``q << adc_shift``.
    """
    return torch.clamp(column_sums >> cfg.adc_shift, max=cfg.adc_max)


def _column_sums(cfg, w, x):
    """Exact analog column sums of every pass: ``[K, S, I, B, C]`` for int64 weights
    ``[K, R, C]`` and inputs ``[B, R]`` (shared) or ``[K, B, R]``.

    A float matmul is exact here: the sums are integers of at most ``full_scale`` < 2**24
    (float32) or 2**53 (float64), and much faster than an int64 one.
    """
    K = w.shape[0]
    S, R, C = cfg.slices, cfg.rows, cfg.cols
    cells = _slices(cfg, w)                                            # [K, S, R, C]
    planes = _planes(cfg, x)                                           # [(K,) I, B, R]
    ftype = torch.float32 if cfg.full_scale < (1 << 24) else torch.float64
    if planes.dim() == 3:                       # shared inputs: one GEMM [I*B, R] @ [R, K*S*C]
        I, B = planes.shape[0], planes.shape[1]
        rhs = cells.permute(2, 0, 1, 3).reshape(R, K * S * C)
        sums = (planes.reshape(I * B, R).to(ftype) @ rhs.to(ftype)).to(torch.int64)
        return sums.view(I, B, K, S, C).permute(2, 3, 0, 1, 4)
    I, B = planes.shape[1], planes.shape[2]     # per-stack inputs: [K, I*B, R] @ [K, R, S*C]
    rhs = cells.permute(0, 2, 1, 3).reshape(K, R, S * C)
    sums = torch.bmm(planes.reshape(K, I * B, R).to(ftype), rhs.to(ftype)).to(torch.int64)
    return sums.view(K, I, B, S, C).permute(0, 3, 1, 2, 4)


def cim_passes(cfg: CIMConfig, weights, x):
    """Exact analog column sums of every pass: ``[slices, input_passes, batch, cols]``."""
    w = check_weights(cfg, weights)
    xs = check_inputs(cfg, x)
    xs = xs.unsqueeze(0) if xs.dim() == 1 else xs
    return _column_sums(cfg, w.view(1, cfg.rows, cfg.cols), xs)[0]


def cim_matvec(cfg: CIMConfig, weights, x):
    """The macro's results for a batch of input vectors: ``LongTensor[batch, cols]``.

    ``weights``: ``[rows, cols]`` signed ``weight_bits`` integers; ``x``: ``[batch, rows]``
    unsigned ``input_bits`` integers (a single ``[rows]`` vector gives ``[1, cols]``). A stack
    of weights ``[K, rows, cols]`` gives ``[K, batch, cols]``, with ``x`` shared or per stack
    ``[K, batch, rows]``.

    ``Y[c] = sum_k sum_i (adc(A_ki[c]) << adc_shift) << (k*cell_bits + i)
    - 2**(weight_bits-1) * sum_r x[r]`` — equal to ``x @ weights`` when ``cfg.adc_exact``.
    """
    w = check_weights(cfg, weights)
    xs = check_inputs(cfg, x)
    xs = xs.unsqueeze(0) if xs.dim() == 1 else xs
    single = w.dim() == 2
    if single and xs.dim() == 3:
        raise ValueError(f"x must have shape (batch, {cfg.rows}) for one weight matrix, "
                         f"not {tuple(xs.shape)}")
    stack = w.unsqueeze(0) if single else w
    recon = adc(cfg, _column_sums(cfg, stack, xs)) << cfg.adc_shift      # [K, S, I, B, C]
    k = torch.arange(cfg.slices, dtype=torch.int64).view(1, -1, 1, 1, 1) * cfg.cell_bits
    i = torch.arange(cfg.input_passes, dtype=torch.int64).view(1, 1, -1, 1, 1)
    y = (recon << (k + i)).sum(dim=(1, 2))                               # [K, B, C]
    xsum = xs.sum(dim=-1, keepdim=True)
    y = y - cfg.weight_offset * (xsum if xsum.dim() == 3 else xsum.unsqueeze(0))
    return y[0] if single else y


def exact_matvec(cfg: CIMConfig, weights, x):
    """The ideal product ``x @ weights`` in int64: ``[batch, cols]``."""
    w = check_weights(cfg, weights)
    xs = check_inputs(cfg, x)
    if xs.dim() == 1:
        xs = xs.unsqueeze(0)
    return xs @ w
