"""Bit-exact golden model of the CIM MAC macro (see ``docs/cim.md``).

All functions take a :class:`zohw.cim_config.CIMConfig` and integer tensors; they are vectorised
over a stack of weight matrices, the batch, the rows and the columns (no Python loop).
:func:`cim_matvec` is the one definition of the macro's arithmetic: the behavioural macro
(:class:`zohw.hw.cim.BehaviouralCIMMacro`) names it as its golden model and the trainer's golden
model (:mod:`zohw.sw.train`) calls it through the macro.
"""

import functools

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
    scaled = column_sums.to(torch.float64) * 2.0 ** -cfg.adc_shift     # exact: A < 2**53
    return _adc_scaled(cfg, scaled, clip=cfg.adc_can_clip).to(torch.int64)


def _adc_scaled(cfg, scaled, clip):
    """The ADC, in place, on column sums already scaled by ``2**-adc_shift`` (float, exact):
    the floor is the truncating shift (sums are never negative), then the clip."""
    q = scaled.floor_() if cfg.adc_shift else scaled
    if clip:
        q.clamp_(max=cfg.adc_max)
    return q


class _Plan:
    """Per-configuration constants of :func:`cim_matvec`, built once (see :func:`_plan`).

    ``cells``: ``[2**weight_bits, S + 1]`` float, row u = the S cells of ``u = w + offset``
    (:func:`_slices`) and a last column ``2**adc_shift``; ``planes``: ``[I, 2**input_bits]``
    float, column v = the I row drives of v (:func:`_planes`) times ``2**-adc_shift``. A row
    drive times a cell is then the analog product scaled by ``2**-adc_shift``, and the last
    column sums the drives exactly (the offset correction rides the same GEMM).
    ``pass_weight`` ``[(S + 1) * I]``: the shift-add weight of pass (k, i),
    ``2**(adc_shift + k*cell_bits + i)``, and ``-weight_offset * 2**i`` for the drive sums.
    """

    def __init__(self, cfg):
        S, I, a = cfg.slices, cfg.input_passes, cfg.adc_shift
        # GEMM exactness: every partial column sum is a multiple of 2**-a below full_scale *
        # 2**-a, so it fits the significand when full_scale < 2**24 (float32) or 2**53.
        self.ftype = torch.float32 if cfg.full_scale < (1 << 24) else torch.float64
        u = torch.arange(1 << cfg.weight_bits, dtype=torch.int64) - cfg.weight_offset
        cells = _slices(cfg, u.view(-1, 1)).view(S, -1).T                   # [2**wb, S]
        extra = torch.full((cells.shape[0], 1), 1 << a, dtype=torch.int64)
        self.cells = torch.cat([cells, extra], dim=1).to(self.ftype).contiguous()
        v = torch.arange(1 << cfg.input_bits, dtype=torch.int64).view(1, -1)
        self.planes = (_planes(cfg, v).view(I, -1).to(self.ftype) * 2.0 ** -a).contiguous()
        # shift-add exactness: every term is an integer and every partial sum lies between
        # -offset * rows * input_max and full_scale * sum_k 2**(k*cb) * sum_i 2**i
        pos = cfg.full_scale * sum(1 << (k * cfg.cell_bits) for k in range(S)) * ((1 << I) - 1)
        bound = max(pos, cfg.weight_offset * cfg.rows * cfg.input_max)
        if bound >= 1 << 53:            # beyond CIMConfig's limits (at most ~2**50)
            raise ValueError(f"CIM configuration {cfg.name} exceeds the golden model's exact "
                             f"float64 range (bound {bound} >= 2**53)")
        self.ytype = torch.float32 if bound < (1 << 24) else torch.float64
        ks = [2.0 ** (a + k * cfg.cell_bits) for k in range(S)] + [-float(cfg.weight_offset)]
        self.pass_weight = torch.tensor([k * 2.0 ** i for k in ks for i in range(I)],
                                        dtype=self.ytype)
        self.clip = cfg.adc_can_clip


@functools.lru_cache(maxsize=64)
def _plan(cfg):
    return _Plan(cfg)


def _gemm(cfg, p, w, x):
    """Scaled analog column sums of every pass, ``[K, C, S + 1, I, B]`` (slice S: the drive
    sums), for int64 weights ``[K, R, C]`` and inputs ``[B, R]`` (shared) or ``[K, B, R]``.

    Table look-ups give the cells and the row drives; ``index_select`` rejects every index
    outside a table, which is exactly a weight or input out of range (the caller then
    explains). A float GEMM is exact here (see :class:`_Plan`) and much faster than int64;
    it multiplies the transposed look-ups (no copy) so that the passes (k, i) of a column
    are adjacent for the shift-add.
    """
    K, R, C = w.shape
    cells = p.cells.index_select(0, (w + cfg.weight_offset).reshape(-1)).view(K, R, -1)
    I = p.planes.shape[0]
    planes = p.planes.index_select(1, x.reshape(-1))                   # [I, (K,) B * R]
    if x.dim() == 2:                    # shared inputs: [K, C*(S+1), R] @ [R, I*B]
        B = x.shape[0]
        sums = torch.matmul(cells.transpose(1, 2), planes.view(I * B, R).T)
    else:                               # per-stack inputs: [K, C*(S+1), R] @ [K, R, I*B]
        B = x.shape[1]
        planes = planes.view(I, K, B, R).permute(1, 3, 0, 2).reshape(K, R, I * B)
        sums = torch.bmm(cells.transpose(1, 2), planes)
    return sums.view(K, C, -1, I, B)


def _checked(cfg, weights, x):
    """Weights ``[K, R, C]`` and inputs ``[B, R]`` / ``[K, B, R]`` as int64 (shapes and types
    checked here; ranges by the table look-ups), and whether the weights were one matrix."""
    for name, t in (("weights", weights), ("x", x)):
        if not isinstance(t, torch.Tensor) or t.dtype.is_floating_point:
            raise TypeError(f"{name} must be an integer tensor, not {_describe(t)}")
    if weights.dim() not in (2, 3) or tuple(weights.shape[-2:]) != (cfg.rows, cfg.cols):
        check_weights(cfg, weights)
    if x.dim() not in (1, 2, 3) or x.shape[-1] != cfg.rows:
        check_inputs(cfg, x)
    w = weights if weights.dtype == torch.int64 else weights.to(torch.int64)
    xs = x if x.dtype == torch.int64 else x.to(torch.int64)
    single = w.dim() == 2
    if xs.dim() == 1:
        xs = xs.unsqueeze(0)
    if single and xs.dim() == 3:
        raise ValueError(f"x must have shape (batch, {cfg.rows}) for one weight matrix, "
                         f"not {tuple(xs.shape)}")
    if xs.dim() == 3 and xs.shape[0] != w.shape[0]:
        raise ValueError(f"x must have shape ({w.shape[0]}, batch, {cfg.rows}) for "
                         f"{w.shape[0]} weight matrices, not {tuple(xs.shape)}")
    return (w.unsqueeze(0) if single else w), xs, single


def _column_sums(cfg, weights, x):
    """Scaled column sums ``[K, C, S + 1, I, B]`` of checked operands (see :func:`_gemm`); a
    weight or an input out of range raises the validation error naming it."""
    w, xs, single = _checked(cfg, weights, x)
    p = _plan(cfg)
    try:
        sums = _gemm(cfg, p, w, xs)
    except (IndexError, RuntimeError):
        check_weights(cfg, weights)     # out of a table: say which operand and its range
        check_inputs(cfg, x)
        raise
    if not sums.numel():                # nothing looked up: check the ranges explicitly
        check_weights(cfg, weights)
        check_inputs(cfg, x)
    return p, sums, single


def cim_passes(cfg: CIMConfig, weights, x):
    """Exact analog column sums of every pass: ``[slices, input_passes, batch, cols]``."""
    check_weights(cfg, weights)
    if weights.dim() != 2:
        raise ValueError(f"weights must have shape ({cfg.rows}, {cfg.cols}), "
                         f"not {tuple(weights.shape)}")
    _, sums, _ = _column_sums(cfg, weights, x)
    a = sums[0, :, :cfg.slices].to(torch.float64) * 2.0 ** cfg.adc_shift       # exact
    return a.to(torch.int64).permute(1, 2, 3, 0)


def cim_matvec(cfg: CIMConfig, weights, x):
    """The macro's results for a batch of input vectors: ``LongTensor[batch, cols]``.

    ``weights``: ``[rows, cols]`` signed ``weight_bits`` integers; ``x``: ``[batch, rows]``
    unsigned ``input_bits`` integers (a single ``[rows]`` vector gives ``[1, cols]``). A stack
    of weights ``[K, rows, cols]`` gives ``[K, batch, cols]``, with ``x`` shared or per stack
    ``[K, batch, rows]``.

    ``Y[c] = sum_k sum_i (adc(A_ki[c]) << adc_shift) << (k*cell_bits + i)
    - 2**(weight_bits-1) * sum_r x[r]`` — equal to ``x @ weights`` when ``cfg.adc_exact``.
    The pass sums are one GEMM (:func:`_gemm`), the ADC works on them in place, and the
    shift-add (with the offset correction as one more slice) is one exact matmul.
    """
    p, sums, single = _column_sums(cfg, weights, x)
    K, C, S1, I, B = sums.shape
    q = _adc_scaled(cfg, sums, clip=False)
    if p.clip:                          # never the drive sums (slice S)
        q[:, :, :S1 - 1].clamp_(max=cfg.adc_max)
    q = q.view(K * C, S1 * I, B)
    if q.dtype != p.ytype:
        q = q.to(p.ytype)
    y = torch.matmul(p.pass_weight, q)                                  # [K*C, B]
    y = y.view(K, C, B).transpose(1, 2).to(torch.int64, memory_format=torch.contiguous_format)
    return y[0] if single else y


def exact_matvec(cfg: CIMConfig, weights, x):
    """The ideal product ``x @ weights`` in int64: ``[batch, cols]``."""
    w = check_weights(cfg, weights)
    xs = check_inputs(cfg, x)
    if xs.dim() == 1:
        xs = xs.unsqueeze(0)
    return xs @ w
