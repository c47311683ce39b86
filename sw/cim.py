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
           "check_weights", "check_inputs", "plan", "prepare_weights", "prepare_inputs",
           "tile_results"]


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
    """The ADC model of one tile's column sums: ``q = min(A >> adc_shift, 2**adc_bits - 1)``
    (truncate, then clip).

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
    """Per-configuration constants of the macro's arithmetic, built once (see :func:`_plan`).

    ``cells``: ``[2**weight_bits, S + 1]`` float, row u = the S cells of ``u = w + offset``
    (:func:`_slices`) and a last column ``2**adc_shift``; ``planes``: ``[2**input_bits, I]``
    float, row v = the I row drives of v (:func:`_planes`) times ``2**-adc_shift``. A row drive
    times a cell is then the analog product scaled by ``2**-adc_shift``, and the last column
    sums the drives exactly (the offset correction rides the same GEMM, as slice S).
    The shift-add weight of pass (k, i) is separable, ``slice_weight[k] * plane_weight[i]``:
    ``slice_weight = [2**(adc_shift + k*cell_bits)] + [-weight_offset]``,
    ``plane_weight = [2**i]``.

    One tile given as plain matrices runs an exact int8 GEMM with int32 sums when the
    operands fit (``int_gemm``): ``cells8`` (the cells, last column ``2**adc_shift``) and
    ``planes8`` (unscaled drives); the ADC is then an integer shift.
    """

    def __init__(self, cfg):
        S, I, a = cfg.slices, cfg.input_passes, cfg.adc_shift
        # GEMM exactness: every partial column sum of a tile is a multiple of 2**-a below
        # full_scale * 2**-a, so it fits the significand when full_scale < 2**24 (float32).
        self.ftype = torch.float32 if cfg.full_scale < (1 << 24) else torch.float64
        u = torch.arange(1 << cfg.weight_bits, dtype=torch.int64) - cfg.weight_offset
        cells = _slices(cfg, u.view(-1, 1)).view(S, -1).T                   # [2**wb, S]
        extra = torch.full((cells.shape[0], 1), 1 << a, dtype=torch.int64)
        self.cells = torch.cat([cells, extra], dim=1).to(self.ftype).contiguous()
        v = torch.arange(1 << cfg.input_bits, dtype=torch.int64).view(1, -1)
        self.planes = (_planes(cfg, v).view(I, -1).T.to(self.ftype) * 2.0 ** -a).contiguous()
        # shift-add exactness: every term is an integer (times 2**-shift when scaled) and every
        # partial sum is at most the positive part (row_tiles ADC codes of every pass at most
        # full_scale >> a, weighted) plus the offset term in magnitude
        pos = (cfg.row_tiles * cfg.full_scale
               * sum(1 << (k * cfg.cell_bits) for k in range(S)) * ((1 << I) - 1))
        bound = pos + cfg.weight_offset * cfg.rows * cfg.input_max
        if bound >= 1 << 53:
            raise ValueError(f"CIM configuration {cfg.name} exceeds the golden model's exact "
                             f"float64 range (bound {bound} >= 2**53)")
        self.ytype = torch.float32 if bound < (1 << 24) else torch.float64
        self.slice_weight = [2.0 ** (a + k * cfg.cell_bits) for k in range(S)]
        self.slice_weight.append(-float(cfg.weight_offset))
        self.plane_weight = torch.tensor([2.0 ** i for i in range(I)], dtype=self.ytype)
        self._scaled = {}
        self.clip = cfg.adc_can_clip
        self.T, self.Rt, self.R = cfg.row_tiles, cfg.tile_rows, cfg.rows
        # rows of the GEMM: one tile holds every row when there is one (no padding)
        self.Rp = cfg.padded_rows if self.T > 1 else cfg.rows
        self.S1, self.I = S + 1, I
        # int8 operands (cells, drives and the drive-sum cell 2**a at most 127), int32 sums
        self.int_gemm = (_INT_GEMM and self.T == 1 and cfg.cell_max <= 127
                         and cfg.plane_max <= 127 and a <= 6
                         and cfg.full_scale + (cfg.rows << a) * cfg.plane_max < 1 << 31)
        self.cells_word = None
        if self.int_gemm:
            self.cells8 = torch.cat([cells, extra], dim=1).to(torch.int8).contiguous()
            self.planes8 = _planes(cfg, v).view(I, -1).T.to(torch.int8).contiguous()
            # a weight's S + 1 int8 cells as one machine word: one 1-D gather per weight
            word = {2: torch.int16, 4: torch.int32, 8: torch.int64}.get(S + 1)
            if word is not None:
                self.cells_word = self.cells8.view(word).view(-1)

    def shift_add(self, N, shift):
        """The shift-add of N columns as one matrix ``[I * N * (S + 1), N]``: row (i, n, k)
        holds ``plane_weight[i] * slice_weight[k] * 2**-shift`` in column n (cached per
        (N, shift); only for small N, see :data:`_BLOCK_COLUMNS`)."""
        key = (N, shift)
        m = self._scaled.get(key)
        if m is None:
            sw = torch.tensor(self.slice_weight, dtype=torch.float64) * 2.0 ** -shift
            pw = self.plane_weight.to(torch.float64)
            m = torch.einsum("i,k,nm->inkm", pw, sw, torch.eye(N, dtype=torch.float64))
            m = self._scaled[key] = m.reshape(-1, N).to(self.ytype)
        return m

    def slice_weights(self, shift):
        """``slice_weight * 2**-shift`` as a tensor (cached per shift)."""
        t = self._scaled.get(shift)
        if t is None:
            t = self._scaled[shift] = torch.tensor([v * 2.0 ** -shift
                                                    for v in self.slice_weight],
                                                   dtype=self.ytype)
        return t


def _int_gemm_works():
    """Whether torch has the exact int8 GEMM (``torch._int_mm``, int32 sums) on this CPU."""
    try:
        a = torch.tensor([[1, 0, 1]], dtype=torch.int8)
        b = torch.tensor([[3], [5], [7]], dtype=torch.int8)
        return torch._int_mm(a, b).tolist() == [[10]]
    except (AttributeError, RuntimeError):
        return False


_INT_GEMM = _int_gemm_works()


def _row_major(t):
    """``t`` with the strides of a row-major matrix (``torch._int_mm`` reads them even for
    dimensions of size 1, where a "contiguous" tensor may carry any stride)."""
    if t.stride() == (t.shape[1], 1):
        return t
    return torch.empty(t.shape, dtype=t.dtype).copy_(t)

#: Up to this many columns the shift-add is one GEMM with a block matrix (few, large tensor
#: operations win on small layers); beyond, two matrix-vector products (linear in N).
_BLOCK_COLUMNS = 64


@functools.lru_cache(maxsize=64)
def _plan(cfg):
    return _Plan(cfg)


def plan(cfg: CIMConfig):
    """The cached per-configuration constants of the golden model (for fast callers such as
    the trainer's golden loop, which prepares its operands once per run)."""
    return _plan(cfg)


def prepare_inputs(cfg: CIMConfig, x):
    """Row drives of the inputs ``x`` ``[..., B, rows]`` (int64 codes, unchecked), laid out for
    :func:`tile_results`: ``[..., T, B*I, Rt]`` float, rows (sample, input pass); rows of the
    array past ``rows`` are driven with 0. Inputs ``[B, rows]`` of a one-tile array give a
    plain ``[B*I, rows]`` matrix (int8 when the plan's ``int_gemm``)."""
    p = _plan(cfg)
    *lead, B, R = x.shape
    if p.T == 1 and not lead:           # one tile as a plain matrix (int8 for the int GEMM)
        table = p.planes8 if p.int_gemm else p.planes
        return _row_major(table.index_select(0, x.reshape(-1)).view(B, R, p.I)
                          .transpose(1, 2).reshape(B * p.I, R))
    if p.Rp != R:
        x = torch.nn.functional.pad(x, (0, p.Rp - R))
    d = p.planes.index_select(0, x.reshape(-1))                    # [..., B, Rp, I] flat
    Rt = p.Rp // p.T
    if p.T == 1:
        return d.view(*lead, 1, B, R, p.I).transpose(-1, -2).reshape(*lead, 1, B * p.I, R)
    d = d.view(*lead, B, p.T, Rt, p.I)
    n = len(lead)
    perm = (*range(n), n + 1, n, n + 3, n + 2)                       # [..., T, B, I, Rt]
    return d.permute(perm).reshape(*lead, p.T, B * p.I, Rt)


def prepare_weights(cfg: CIMConfig, u, plan=None):
    """Cells of offset weights ``u = w + weight_offset`` ``[..., rows, N]`` (int64,
    unchecked; N columns, e.g. several weight matrices side by side), laid out for
    :func:`tile_results`: ``[..., T, Rt, N * (S + 1)]`` float (``plan``: :func:`plan` of
    ``cfg``, looked up when None). One-tile arrays with plain matrices use
    :func:`matrix_kernel` instead."""
    p = plan or _plan(cfg)
    *lead, R, N = u.shape
    cells = p.cells.index_select(0, u.reshape(-1)).view(*lead, R, N * p.S1)
    if p.Rp != R:
        cells = torch.nn.functional.pad(cells, (0, 0, 0, p.Rp - R))
    return cells.view(*lead, p.T, p.Rp // p.T, N * p.S1)


@functools.lru_cache(maxsize=64)
def matrix_kernel(cfg: CIMConfig, N, shift=0):
    """The macro's arithmetic for a one-tile array (``row_tiles == 1``) with its constants
    bound once: ``kernel(u, drives) -> Y * 2**-shift`` ``[B, N]`` (float, exact) for offset
    weights ``u = w + weight_offset`` ``[rows, N]`` (int64, unchecked; e.g. several weight
    matrices side by side) and drives ``[B*I, rows]`` (:func:`prepare_inputs`, or rows of it:
    a row-major matrix).

    The same steps as :func:`tile_results`: the cell look-up, one GEMM (exact int8 with int32
    sums when the plan's ``int_gemm``, else float), the ADC in place, the shift-add as one
    GEMM (small N) or two products.
    """
    p = _plan(cfg)
    if p.T != 1:
        raise ValueError(f"matrix_kernel needs one row tile, not {p.T} ({cfg.name})")
    R, S1, I, a, NS = cfg.rows, p.S1, p.I, cfg.adc_shift, N * p.S1
    clip, amax, ytype = p.clip, cfg.adc_max, p.ytype
    block = p.shift_add(N, shift) if N <= _BLOCK_COLUMNS else None
    sw, pw = p.slice_weights(shift), p.plane_weight
    word = p.cells_word

    def kernel(u, drives):
        if word is not None:
            cells = word.index_select(0, u.view(-1)).view(torch.int8).view(R, NS)
        else:
            cells = (p.cells8 if p.int_gemm else p.cells).index_select(0, u.reshape(-1)) \
                .view(R, NS)
        if p.int_gemm:
            q = torch._int_mm(drives, cells)         # both row-major (cells: a fresh view)
            if a:
                q >>= a
            q = q.to(ytype)
        else:
            q = torch.mm(drives, cells)
            if a:
                q.floor_()
            if q.dtype != ytype:
                q = q.to(ytype)
        if clip:                        # never the drive sums (slice S)
            q.view(-1, S1)[:, :S1 - 1].clamp_(max=amax)
        B = q.shape[0] // I
        if block is not None:
            return torch.mm(q.view(B, I * NS), block)
        t = torch.matmul(q.view(B * I, N, S1), sw)
        return t if I == 1 else torch.matmul(pw, t.view(B, I, N))

    return kernel


def tile_results(cfg: CIMConfig, cells, drives, shift=0, plan=None):
    """The macro's arithmetic on prepared operands: ``Y * 2**-shift`` ``[..., B, N]`` (float,
    exact; floor it for ``Y >> shift``).

    ``cells`` ``[..., T, Rt, N * (S + 1)]`` (:func:`prepare_weights`) and ``drives``
    ``[..., T, B*I, Rt]`` (:func:`prepare_inputs`) broadcast over their leading dimensions.
    Per row tile, one GEMM gives the scaled analog column sums of every pass; the tile's ADC
    floors (and clips) them in place; the row tiles' codes are added (exact); the shift-add
    weights pass (k, i) by ``2**(adc_shift + k*cell_bits + i)`` (slice S: the offset
    correction, ``-weight_offset * 2**i`` times the drive sums). ``plan`` is :func:`plan`
    of ``cfg`` (looked up when None).
    """
    p = plan or _plan(cfg)
    q = torch.matmul(drives, cells)                                 # [..., T, B*I, N*(S+1)]
    if cfg.adc_shift:
        q.floor_()
    if p.clip:                          # never the drive sums (slice S)
        q.view(-1, p.S1)[:, :p.S1 - 1].clamp_(max=cfg.adc_max)
    if q.dim() > 2:
        q = q.sum(-3) if q.shape[-3] > 1 else q.squeeze(-3)
    if q.dtype != p.ytype:
        q = q.to(p.ytype)
    *lead, BI, NS = q.shape
    B, N = BI // p.I, NS // p.S1
    if N <= _BLOCK_COLUMNS:
        return torch.matmul(q.view(*lead, B, p.I * NS), p.shift_add(N, shift))
    t = torch.matmul(q.view(*lead, BI, N, p.S1), p.slice_weights(shift))   # [..., B*I, N]
    if p.I == 1:
        return t
    return torch.matmul(p.plane_weight, t.view(*lead, B, p.I, N))


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


def _results(cfg, weights, x, shift=0):
    """``Y * 2**-shift`` ``[K, B, C]`` (float) of checked operands, and whether the weights
    were one matrix; a weight or an input out of range raises the validation error naming
    it (``index_select`` rejects every index outside a table)."""
    w, xs, single = _checked(cfg, weights, x)
    K, R, C = w.shape
    try:
        if xs.dim() == 2 and cfg.row_tiles == 1:    # the K matrices side by side, one GEMM
            u = (w + cfg.weight_offset).permute(1, 0, 2).reshape(R, K * C)
            y = matrix_kernel(cfg, K * C, shift)(u, prepare_inputs(cfg, xs))
            y = y.view(-1, K, C).transpose(0, 1)                   # [K, B, C]
        elif xs.dim() == 2:             # several row tiles: shared drives broadcast
            u = (w + cfg.weight_offset).permute(1, 0, 2).reshape(R, K * C)
            y = tile_results(cfg, prepare_weights(cfg, u), prepare_inputs(cfg, xs), shift)
            y = y.view(-1, K, C).transpose(0, 1)                   # [K, B, C]
        else:
            y = tile_results(cfg, prepare_weights(cfg, w + cfg.weight_offset),
                             prepare_inputs(cfg, xs), shift)
    except (IndexError, RuntimeError):
        check_weights(cfg, weights)     # out of a table: say which operand and its range
        check_inputs(cfg, x)
        raise
    if not y.numel():                   # nothing looked up: check the ranges explicitly
        check_weights(cfg, weights)
        check_inputs(cfg, x)
    return y, single


def cim_passes(cfg: CIMConfig, weights, x):
    """Exact analog column sums of every row tile and pass (before the ADC):
    ``[row_tiles, slices, input_passes, batch, cols]`` for weights ``[rows, cols]``."""
    w = check_weights(cfg, weights)
    if w.dim() != 2:
        raise ValueError(f"weights must have shape ({cfg.rows}, {cfg.cols}), "
                         f"not {tuple(weights.shape)}")
    xs = check_inputs(cfg, x)
    xs = xs.unsqueeze(0) if xs.dim() == 1 else xs
    T, Rt = cfg.row_tiles, cfg.tile_rows
    pad = T * Rt - cfg.rows
    cells = torch.nn.functional.pad(_slices(cfg, w), (0, 0, 0, pad))       # [S, T*Rt, C]
    drive = torch.nn.functional.pad(_planes(cfg, xs), (0, pad))           # [I, B, T*Rt]
    cells = cells.view(cfg.slices, T, Rt, cfg.cols)
    drive = drive.view(cfg.input_passes, -1, T, Rt)
    return torch.einsum("ktrc,ibtr->tkibc", cells, drive)


def cim_matvec(cfg: CIMConfig, weights, x):
    """The macro's results for a batch of input vectors: ``LongTensor[batch, cols]``.

    ``weights``: ``[rows, cols]`` signed ``weight_bits`` integers; ``x``: ``[batch, rows]``
    unsigned ``input_bits`` integers (a single ``[rows]`` vector gives ``[1, cols]``). A stack
    of weights ``[K, rows, cols]`` gives ``[K, batch, cols]``, with ``x`` shared or per stack
    ``[K, batch, rows]``.

    With ``A_tki[c]`` the analog column sum of row tile t (its ``tile_rows`` rows only), slice
    k and input pass i: ``Y[c] = sum_t sum_k sum_i (adc(A_tki[c]) << adc_shift) <<
    (k*cell_bits + i) - 2**(weight_bits-1) * sum_r x[r]`` — equal to ``x @ weights`` when
    ``cfg.adc_exact``. See :func:`tile_results` for how it is computed.
    """
    y, single = _results(cfg, weights, x)
    y = y.to(torch.int64, memory_format=torch.contiguous_format)
    return y[0] if single else y


def exact_matvec(cfg: CIMConfig, weights, x):
    """The ideal product ``x @ weights`` in int64: ``[batch, cols]``."""
    w = check_weights(cfg, weights)
    xs = check_inputs(cfg, x)
    if xs.dim() == 1:
        xs = xs.unsqueeze(0)
    return xs @ w
