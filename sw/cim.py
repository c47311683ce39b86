"""Bit-exact golden model of the CIM MAC macro (see ``docs/cim.md``).

All functions take a :class:`zohw.cim_config.CIMConfig` and integer tensors; they are vectorised
over the batch, the rows and the columns (the only Python loops run over the weight slices and
the input bit-planes).
"""

import torch

from zohw.cim_config import CIMConfig

__all__ = ["weight_slices", "input_planes", "adc", "cim_matvec", "cim_passes", "exact_matvec",
           "check_weights", "check_inputs"]


def check_weights(cfg: CIMConfig, weights):
    """Validate ``weights`` as a ``[rows, cols]`` integer tensor of signed ``weight_bits``."""
    if not isinstance(weights, torch.Tensor) or weights.dtype.is_floating_point:
        raise TypeError(f"weights must be an integer tensor, not {type(weights).__name__}"
                        + (f" of {weights.dtype}" if isinstance(weights, torch.Tensor) else ""))
    if tuple(weights.shape) != (cfg.rows, cfg.cols):
        raise ValueError(f"weights must have shape ({cfg.rows}, {cfg.cols}), "
                         f"not {tuple(weights.shape)}")
    if weights.numel() and (int(weights.min()) < cfg.weight_min
                            or int(weights.max()) > cfg.weight_max):
        raise ValueError(f"weights must be integers from {cfg.weight_min} to {cfg.weight_max}, "
                         f"not from {int(weights.min())} to {int(weights.max())}")
    return weights.to(torch.int64)


def check_inputs(cfg: CIMConfig, x):
    """Validate ``x`` as a ``[batch, rows]`` (or ``[rows]``) tensor of unsigned ``input_bits``."""
    if not isinstance(x, torch.Tensor) or x.dtype.is_floating_point:
        raise TypeError(f"x must be an integer tensor, not {type(x).__name__}"
                        + (f" of {x.dtype}" if isinstance(x, torch.Tensor) else ""))
    if x.dim() not in (1, 2) or x.shape[-1] != cfg.rows:
        raise ValueError(f"x must have shape (batch, {cfg.rows}), not {tuple(x.shape)}")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) > cfg.input_max):
        raise ValueError(f"x must be integers from 0 to {cfg.input_max}, "
                         f"not from {int(x.min())} to {int(x.max())}")
    return x.to(torch.int64)


def weight_slices(cfg: CIMConfig, weights):
    """Cell contents: ``[slices, rows, cols]``, slice k = bits [k*cb, (k+1)*cb) of w + offset."""
    u = check_weights(cfg, weights) + cfg.weight_offset
    shifts = torch.arange(cfg.slices, dtype=torch.int64).mul_(cfg.cell_bits).view(-1, 1, 1)
    return (u.unsqueeze(0) >> shifts) & cfg.cell_max


def input_planes(cfg: CIMConfig, x):
    """Row drive of every input pass: ``[input_passes, batch, rows]`` (bit i, or x itself)."""
    x = check_inputs(cfg, x)
    if x.dim() == 1:
        x = x.unsqueeze(0)
    if cfg.input_mode == "parallel":
        return x.unsqueeze(0)
    bits = torch.arange(cfg.input_bits, dtype=torch.int64).view(-1, 1, 1)
    return (x.unsqueeze(0) >> bits) & 1


def adc(cfg: CIMConfig, column_sums):
    """The ADC model: ``q = min(A >> adc_shift, 2**adc_bits - 1)`` (truncate, then clip).

    Returns the ADC codes ``q``; the reconstructed partial sum is ``q << adc_shift``.
    """
    return torch.clamp(column_sums >> cfg.adc_shift, max=cfg.adc_max)


def cim_passes(cfg: CIMConfig, weights, x):
    """Exact analog column sums of every pass: ``[slices, input_passes, batch, cols]``."""
    cells = weight_slices(cfg, weights)                   # [S, R, C]
    planes = input_planes(cfg, x)                         # [I, B, R]
    # int64 matmul is exact; einsum over r for every (slice, plane) pair
    return torch.einsum("ibr,src->sibc", planes, cells)


def cim_matvec(cfg: CIMConfig, weights, x):
    """The macro's results for a batch of input vectors: ``LongTensor[batch, cols]``.

    ``weights``: ``[rows, cols]`` signed ``weight_bits`` integers; ``x``: ``[batch, rows]``
    unsigned ``input_bits`` integers (a single ``[rows]`` vector gives ``[1, cols]``).

    ``Y[c] = sum_k sum_i (adc(A_ki[c]) << adc_shift) << (k*cell_bits + i)
    - 2**(weight_bits-1) * sum_r x[r]`` — equal to ``x @ weights`` when ``cfg.adc_exact``.
    """
    xs = check_inputs(cfg, x)
    if xs.dim() == 1:
        xs = xs.unsqueeze(0)
    sums = cim_passes(cfg, weights, xs)                   # [S, I, B, C]
    recon = adc(cfg, sums) << cfg.adc_shift
    k = torch.arange(cfg.slices, dtype=torch.int64).view(-1, 1, 1, 1)
    i = torch.arange(cfg.input_passes, dtype=torch.int64).view(1, -1, 1, 1)
    y = (recon << (k * cfg.cell_bits + i)).sum(dim=(0, 1))  # [B, C]
    return y - cfg.weight_offset * xs.sum(dim=1, keepdim=True)


def exact_matvec(cfg: CIMConfig, weights, x):
    """The ideal product ``x @ weights`` in int64: ``[batch, cols]``."""
    w = check_weights(cfg, weights)
    xs = check_inputs(cfg, x)
    if xs.dim() == 1:
        xs = xs.unsqueeze(0)
    return xs @ w
