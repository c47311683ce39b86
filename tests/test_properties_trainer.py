"""Property-based tests (hypothesis) of the golden trainer step: random valid TrainerConfigs —
small models (linear and one or two hidden layers) on small inputs (digits pooled 4×4 or 2×2,
the 3-class tests/data/tiny3.npz), loss, update, rounding, ε and learning-rate shifts and
mantissas, decay, score and hidden shifts, the difference saturation, the CIM formats (weight
and cell bits, serial/parallel inputs, ADC bits and shift) and the tile size — against an
element-by-element rendering of docs/trainer.md §2–§5 and docs/cim.md written here.

The CIM is rendered here too (per row tile, per slice, per input pass, per column: one ADC
conversion at a time), so the reference shares nothing with :mod:`zohw.sw.cim` or
:mod:`zohw.sw.train` but the configuration. A failing example is shrunk and reported as the
configuration (``cfg.as_dict()``), replayable with ``TrainerConfig.from_dict``.
"""

from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, Phase, assume, given, note, settings
from hypothesis import strategies as st

from zohw.cim_config import CIMConfig
from zohw.config import EngineConfig
from zohw.errors import ConfigError
from zohw.losses import LOSSES
from zohw.sw.train import forward, golden_step, single_thread
from zohw.train_config import ROUNDINGS, UPDATES, TrainerConfig

TINY3 = str(Path(__file__).parent / "data" / "tiny3.npz")
#: (dataset, input_pool): 4 inputs × 10 classes, 16 × 10, 12 × 3.
DATASETS = (("digits", 4), ("digits", 2), (TINY3, 1))
TILES = ("2x2", "3x4", "4x2", "8x4", "128x32")
WEIGHT_CELLS = ((6, 1), (6, 2), (6, 3), (8, 2), (8, 4), (12, 3), (12, 4), (12, 6))


# -- the reference, element by element -----------------------------------------------------------

def _shift(v, k):
    return v << k if k >= 0 else v >> -k


def ref_cim(c, W, xv):
    """docs/cim.md for one input vector: W is a [rows][cols] list, xv a list of rows ints."""
    tile_rows = int(c.tile.split("x")[0])
    S = c.weight_bits // c.cell_bits
    passes = c.input_bits if c.input_mode == "serial" else 1
    t, qmax = c.adc_shift, (1 << c.adc_bits) - 1
    out = []
    for col in range(c.cols):
        y = 0
        for t0 in range(0, c.rows, tile_rows):          # every row tile has its own ADC
            for k in range(S):
                for i in range(passes):
                    a = 0
                    for r in range(t0, min(t0 + tile_rows, c.rows)):
                        u = W[r][col] + (1 << (c.weight_bits - 1))
                        cell = (u >> (k * c.cell_bits)) % (1 << c.cell_bits)
                        drive = (xv[r] >> i) & 1 if c.input_mode == "serial" else xv[r]
                        a += cell * drive
                    q = min(a >> t, qmax)
                    y += (q << t) << (k * c.cell_bits + i)
        out.append(y - (1 << (c.weight_bits - 1)) * sum(xv))
    return out


def ref_forward(cfg, w, xv, cim=ref_cim):
    """The output layer's CIM results for one sample (w: flat list, layer by layer, row-major)."""
    start, h = 0, xv
    for n, c in enumerate(cfg.layer_cims):
        W = [[w[start + r * c.cols + col] for col in range(c.cols)] for r in range(c.rows)]
        start += c.rows * c.cols
        if n:
            imax = (1 << c.input_bits) - 1
            h = [min(max(v >> cfg.hidden_shift, 0), imax) for v in h] + [imax]
        h = cim(c, W, h)
    return h


def ref_loss(cfg, w, xs, ys, cim=ref_cim):
    total = 0
    for xv, lab in zip(xs, ys):
        s = [v >> cfg.logit_shift for v in ref_forward(cfg, w, xv, cim)]
        if cfg.loss == "hinge":
            total += sum(max(0, cfg.margin + s[j] - s[lab]) for j in range(len(s)) if j != lab)
        else:
            total += sum((s[j] - (cfg.target if j == lab else 0)) ** 2 for j in range(len(s)))
    return total


def ref_step(cfg, w, z, xs, ys, step, cim=ref_cim):
    """docs/trainer.md §5, one weight at a time: (w_new, L+, L-, g, writes)."""
    e = cfg.engine
    k = cfg.weight_frac - e.frac_bits - cfg.eps_shift
    delta = [_shift(zi * cfg.eps_mult, k) for zi in z]
    H = max(abs(_shift(e.word_min * cfg.eps_mult, k)), abs(_shift(e.word_max * cfg.eps_mult, k)))
    wb = cfg.cim.weight_bits
    lo, hi = -(1 << (wb - 1)) + H, (1 << (wb - 1)) - 1 - H
    lp = ref_loss(cfg, [a + b for a, b in zip(w, delta)], xs, ys, cim)
    lm = ref_loss(cfg, [a - b for a, b in zip(w, delta)], xs, ys, cim)
    gmax = (1 << (cfg.diff_bits - 1)) - 1
    g = max(-gmax - 1, min(gmax, lp - lm))
    G = ((g > 0) - (g < 0) if cfg.update == "sign" else g) * cfg.lr_mult
    sh = cfg.lr_shift + (step // cfg.lr_decay if cfg.lr_decay else 0)
    w_new, writes = [], []
    for wi, zi, di in zip(w, z, delta):
        p = G * zi
        if sh == 0:
            r = p
        elif cfg.rounding == "floor":
            r = p >> sh
        else:                                   # half away from zero
            r = (abs(p) + (1 << (sh - 1))) >> sh
            r = -r if p < 0 else r
        wn = max(lo, min(hi, wi - r))
        w_new.append(wn)
        writes.append(2 * (di != 0) + (wn != wi - di))
    return w_new, lp, lm, g, writes


def one_adc_per_column(c, W, xv):
    """A planted fault: one ADC over all the rows of a column (tiles ignored)."""
    return ref_cim(c.replace(tile=f"{max(c.rows, 1)}x{int(c.tile.split('x')[1])}"), W, xv)


# -- random configurations -----------------------------------------------------------------------

@st.composite
def trainer_configs(draw):
    dataset, pool = draw(st.sampled_from(DATASETS))
    wb, cb = draw(st.sampled_from(WEIGHT_CELLS))
    cim = dict(weight_bits=wb, cell_bits=cb, input_bits=draw(st.integers(1, 4)),
               adc_bits=draw(st.integers(2, 12)),
               input_mode=draw(st.sampled_from(("serial", "parallel"))),
               tile=draw(st.sampled_from(TILES)))
    try:
        default_shift = CIMConfig(**cim).default_adc_shift
    except ConfigError as exc:
        note(f"rejected cim {cim}: {exc}")
        assume(False)
    cim["adc_shift"] = draw(st.integers(0, default_shift))
    lanes = draw(st.sampled_from((1, 2, 4, 8)))
    engine = EngineConfig(strategy="uniform", lanes=lanes, width=draw(st.integers(4, 10)))
    width = st.integers(1, 5)
    kw = dict(
        dataset=dataset, input_pool=pool, engine=engine, cim=CIMConfig(**cim),
        hidden=draw(st.sampled_from([(), (), "one", "two"])),
        loss=draw(st.sampled_from(LOSSES)), update=draw(st.sampled_from(UPDATES)),
        rounding=draw(st.sampled_from(ROUNDINGS)),
        weight_frac=draw(st.integers(4, wb + 2)), eps_mult=draw(st.integers(1, 15)),
        lr_shift=draw(st.integers(0, 20)),
        lr_mult=draw(st.integers(1, 15)), lr_decay=draw(st.sampled_from((0, 1, 3))),
        logit_shift=draw(st.integers(0, 12)), margin=draw(st.integers(1, 300)),
        target=draw(st.integers(1, 300)), diff_bits=draw(st.integers(2, 24)),
        hidden_shift=draw(st.integers(0, 14)),
        write_lanes=draw(st.sampled_from([p for p in (1, 2, 4, 8) if p <= lanes])),
        batch=draw(st.integers(1, 3)), seed=draw(st.integers(0, 2**32 - 1)))
    # ε: the delta shift k = weight_frac - F - eps_shift, drawn so that the largest |delta|
    # (about 2**(B-1) * eps_mult * 2**k) leaves room in the weight (up to a quarter of it)
    kmax = (wb - 3) - (engine.width - 1) - kw["eps_mult"].bit_length()
    k = draw(st.integers(kmax - 6, kmax))
    kw["eps_shift"] = kw["weight_frac"] - engine.frac_bits - k
    kw["init_bits"] = 0                 # a run field (golden_step takes the weights)
    if kw["hidden"] == "one":
        kw["hidden"] = (draw(width),)
    elif kw["hidden"] == "two":
        kw["hidden"] = (draw(width), draw(width))
    try:
        return TrainerConfig(**kw)
    except ConfigError as exc:
        note(f"rejected {kw}: {exc}")
        assume(False)


def _operands(cfg, seed):
    """Weights (some at the saturation limits), words (some zero and extreme), a mini-batch of
    inputs in the input format with the constant bias input last, labels."""
    g = torch.Generator().manual_seed(seed)
    d, lo, hi = cfg.params, *cfg.weight_range
    w = torch.randint(lo, hi + 1, (d,), generator=g)
    w[torch.randint(0, d, (max(1, d // 8),), generator=g)] = hi
    w[torch.randint(0, d, (max(1, d // 8),), generator=g)] = lo
    e = cfg.engine
    z = torch.randint(e.word_min, e.word_max + 1, (d,), generator=g)
    z[torch.randint(0, d, (max(1, d // 8),), generator=g)] = 0
    z[:2] = torch.tensor([e.word_min, e.word_max])[: min(2, d)]
    imax = cfg.cim.input_max
    x = torch.randint(0, imax + 1, (cfg.batch, cfg.inputs + 1), generator=g)
    x[:, -1] = imax
    y = torch.randint(0, cfg.classes, (cfg.batch,), generator=g)
    return w, z, x, y


def check_step(cfg, seed, step, cim=ref_cim):
    note(f"cfg = TrainerConfig.from_dict({cfg.as_dict()!r}); seed={seed} step={step}")
    w, z, x, y = _operands(cfg, seed)
    with single_thread():               # tiny tensors: threads only wait on a loaded machine
        w_new, lp, lm, g, writes = golden_step(cfg, w, z, x, y, step=step)
        got_y = forward(cfg, w, x).tolist()
    xs, ys, wl = x.tolist(), y.tolist(), w.tolist()
    ref_y = [ref_forward(cfg, wl, xv, cim) for xv in xs]
    assert got_y == ref_y, f"{cfg.as_dict()} seed={seed}: forward {got_y} != {ref_y}"
    rw, rlp, rlm, rg, rwrites = ref_step(cfg, wl, z.tolist(), xs, ys, step, cim)
    assert (lp, lm, g) == (rlp, rlm, rg), \
        f"{cfg.as_dict()} seed={seed} step={step}: (L+, L-, g) {(lp, lm, g)} != {(rlp, rlm, rg)}"
    assert w_new.tolist() == rw, f"{cfg.as_dict()} seed={seed} step={step}: updated weights"
    assert writes.tolist() == rwrites, f"{cfg.as_dict()} seed={seed} step={step}: write counts"


SETTINGS = dict(deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@settings(max_examples=40, **SETTINGS)
@given(cfg=trainer_configs(), seed=st.integers(0, 2**16), step=st.integers(0, 7))
def test_random_trainer_step_matches_scalar_reference(cfg, seed, step):
    check_step(cfg, seed, step)


def test_generated_trainer_configs_cover_the_space():
    """The generator reaches every loss, update, rounding, input mode, data set, model depth,
    a multi-tile layer and a clipping ADC (a generator stuck on defaults would make the
    property above vacuous)."""
    seen = set()

    @settings(max_examples=150, **SETTINGS)
    @given(trainer_configs())
    def collect(cfg):
        c = cfg.layer_cims[0]
        seen.update({("loss", cfg.loss), ("update", cfg.update), ("rounding", cfg.rounding),
                     ("mode", cfg.cim.input_mode), ("data", cfg.dataset, cfg.input_pool),
                     ("depth", len(cfg.hidden)), ("tiles", c.row_tiles > 1),
                     ("clip", c.adc_can_clip), ("decay", cfg.lr_decay > 0),
                     ("lr0", cfg.lr_shift == 0), ("negk", cfg.delta_shift < 0)})

    collect()
    want = ({("loss", n) for n in LOSSES} | {("update", u) for u in UPDATES}
            | {("rounding", r) for r in ROUNDINGS} | {("mode", "serial"), ("mode", "parallel")}
            | {("data", *d) for d in DATASETS} | {("depth", n) for n in (0, 1, 2)}
            | {(k, True) for k in ("tiles", "clip", "decay", "lr0", "negk")})
    assert want <= seen, f"never generated: {sorted(want - seen)}"


@pytest.mark.parametrize("fault", ["one ADC per column", "floor for nearest"])
def test_trainer_property_check_can_fail(fault):
    """The same property against a planted fault is refuted by hypothesis, and the failure names
    the configuration."""
    if fault == "one ADC per column":
        def run(cfg, seed, step):
            assume(cfg.layer_cims[0].row_tiles > 1)
            check_step(cfg, seed, step, cim=one_adc_per_column)
    else:
        def run(cfg, seed, step):
            assume(cfg.rounding == "nearest")
            w, z, x, y = _operands(cfg, seed)
            got = golden_step(cfg, w, z, x, y, step=step)[0].tolist()
            ref = ref_step(cfg.replace(rounding="floor"), w.tolist(), z.tolist(), x.tolist(),
                           y.tolist(), step)[0]
            assert got == ref, f"{cfg.as_dict()} seed={seed} step={step}: updated weights"

    prop = settings(max_examples=30, database=None, phases=[Phase.generate], **SETTINGS)(
        given(cfg=trainer_configs(), seed=st.integers(0, 2**16), step=st.integers(0, 7))(run))
    with pytest.raises(AssertionError) as exc:
        prop()
    assert "'loss':" in str(exc.value) and "'cim':" in str(exc.value)
