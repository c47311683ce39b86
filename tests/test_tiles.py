"""CIM tiling: a layer over fixed-size macros, one ADC per row tile and column (docs/cim.md)."""

import pytest
import torch

from cim_reference import scalar_reference
from zohw.cim_config import CIMConfig
from zohw.sw.cim import cim_matvec, cim_passes, exact_matvec


def case(cfg, batch, seed, k=None):
    g = torch.Generator().manual_seed(seed)
    shape = (cfg.rows, cfg.cols) if k is None else (k, cfg.rows, cfg.cols)
    w = torch.randint(cfg.weight_min, cfg.weight_max + 1, shape, generator=g)
    x = torch.randint(0, cfg.input_max + 1, (batch, cfg.rows), generator=g)
    return w, x


# several row tiles (the last one partial) and several column tiles
TILED = [
    dict(rows=20, cols=6, weight_bits=6, cell_bits=2, input_bits=3, adc_bits=3, tile="8x4"),
    dict(rows=17, cols=5, weight_bits=8, cell_bits=4, input_bits=2, adc_bits=4, tile="4x2",
         input_mode="parallel"),
    dict(rows=24, cols=3, weight_bits=6, cell_bits=3, input_bits=2, adc_bits=3, tile="8x1",
         adc_shift=1),                                      # clipping in every tile
    dict(rows=10, cols=70, weight_bits=4, cell_bits=2, input_bits=2, adc_bits=2,
         tile="4x32"),                   # more columns than the one-GEMM shift-add takes
]


@pytest.mark.parametrize("kw", TILED, ids=lambda kw: CIMConfig(**kw).name)
def test_tiled_matches_element_by_element_reference(kw):
    cfg = CIMConfig(**kw)
    assert cfg.row_tiles > 1 and (cfg.col_tiles > 1 or cfg.tile_cols == 1)
    for seed in range(2):
        w, x = case(cfg, batch=6, seed=seed)
        assert torch.equal(cim_matvec(cfg, w, x), scalar_reference(cfg, w, x))
    extreme = torch.full((cfg.rows, cfg.cols), cfg.weight_max)
    xs = torch.full((2, cfg.rows), cfg.input_max)
    assert torch.equal(cim_matvec(cfg, extreme, xs), scalar_reference(cfg, extreme, xs))


def test_one_adc_over_all_rows_is_caught():
    """The deliberately wrong tiling (one ADC over a column's rows, the pre-tiling model with
    the same ADC) differs from the golden model: the comparison above can fail."""
    cfg = CIMConfig(**TILED[0])
    w, x = case(cfg, batch=6, seed=0)
    assert not torch.equal(cim_matvec(cfg, w, x), scalar_reference(cfg, w, x, per_tile=False))


@pytest.mark.parametrize("kw", [dict(rows=13, cols=3, weight_bits=6, cell_bits=2,
                                     input_bits=3, adc_bits=3),
                                dict(rows=65, cols=10)], ids=["small", "digits"])
def test_one_tile_is_the_untiled_arithmetic(kw):
    """A tile as large as the array: one ADC over all the rows (the arithmetic before tiling,
    with its ADC sized for the array's rows)."""
    base = CIMConfig(**kw)
    cfg = base.replace(tile=f"{base.rows}x{base.cols}")
    assert cfg.tiles == 1 and cfg.utilisation == 1.0
    assert cfg.full_scale == base.rows * cfg.cell_max * cfg.plane_max
    w, x = case(cfg, batch=5, seed=1)
    assert torch.equal(cim_matvec(cfg, w, x), scalar_reference(cfg, w, x, per_tile=False))


def test_column_tiles_have_no_arithmetic_effect():
    base = CIMConfig(rows=20, cols=9, weight_bits=6, cell_bits=2, input_bits=3, adc_bits=3)
    w, x = case(base, batch=4, seed=2)
    ys = [cim_matvec(base.replace(tile=f"8x{c}"), w, x) for c in (1, 4, 9, 32)]
    assert all(torch.equal(ys[0], y) for y in ys[1:])


def test_row_tiles_change_the_result():
    """The row tiling is visible in the results (each tile truncates on its own)."""
    base = CIMConfig(rows=20, cols=9, weight_bits=6, cell_bits=2, input_bits=3, adc_bits=3,
                     adc_shift=1)
    w, x = case(base, batch=16, seed=3)
    y8 = cim_matvec(base.replace(tile="8x4"), w, x)
    y20 = cim_matvec(base.replace(tile="20x4"), w, x)
    assert not torch.equal(y8, y20)


def test_stacks_and_passes_follow_the_tiles():
    cfg = CIMConfig(**TILED[0])
    w, x = case(cfg, batch=5, seed=4, k=3)
    y = cim_matvec(cfg, w, x)
    assert y.shape == (3, 5, cfg.cols)
    for j in range(3):
        assert torch.equal(y[j], cim_matvec(cfg, w[j], x))
    xk = torch.stack([x, x.flip(0), x.roll(1, 0)])
    yk = cim_matvec(cfg, w, xk)
    for j in range(3):
        assert torch.equal(yk[j], cim_matvec(cfg, w[j], xk[j]))
    a = cim_passes(cfg, w[0], x)
    assert a.shape == (cfg.row_tiles, cfg.slices, cfg.input_passes, 5, cfg.cols)
    assert int(a.max()) <= cfg.full_scale


@pytest.mark.parametrize("kw", TILED + [dict(rows=785, cols=10, adc_bits=9)],
                         ids=lambda kw: CIMConfig(**kw).name)
def test_tiled_loss_is_bounded(kw):
    """0 <= W^T x - Y <= error_bound (row_tiles times the one-tile bound)."""
    cfg = CIMConfig(**kw)
    w, x = case(cfg, batch=64, seed=5)
    err = exact_matvec(cfg, w, x) - cim_matvec(cfg, w, x)
    assert int(err.min()) >= 0 and 0 < int(err.max()) <= cfg.error_bound


@pytest.mark.parametrize("rows, cols, tile, expect", [
    (65, 10, "128x32", (1, 1, 1, 650 / 4096)),
    (785, 10, "128x32", (7, 1, 7, 7850 / (7 * 4096))),
    (33, 40, "16x16", (3, 3, 9, 1320 / (9 * 256))),
    (256, 64, "128x32", (2, 2, 4, 1.0)),
])
def test_mapping(rows, cols, tile, expect):
    cfg = CIMConfig(rows=rows, cols=cols, tile=tile)
    assert (cfg.row_tiles, cfg.col_tiles, cfg.tiles, cfg.utilisation) == expect
    assert cfg.padded_rows == cfg.row_tiles * cfg.tile_rows


def test_both_shift_add_forms_agree(monkeypatch):
    """The one-GEMM shift-add of small layers and the two-product form of wide ones."""
    import zohw.sw.cim as cim

    cfg = CIMConfig(**TILED[0])
    w, x = case(cfg, batch=7, seed=6, k=4)
    block = cim_matvec(cfg, w, x)
    monkeypatch.setattr(cim, "_BLOCK_COLUMNS", 0)
    assert torch.equal(cim_matvec(cfg, w, x), block)


def test_int8_and_float_gemms_agree(monkeypatch):
    """One tile as plain matrices runs the exact int8 GEMM when torch has it; the float GEMM
    (every other case) gives the same results, also with clipping and odd strides."""
    import zohw.sw.cim as cim

    cfgs = [CIMConfig(), CIMConfig(rows=1, cols=5, adc_bits=11),
            CIMConfig(rows=9, cols=4, weight_bits=6, cell_bits=2, input_bits=3, adc_bits=3,
                      adc_shift=1, input_mode="parallel")]
    cases = [(cfg, *case(cfg, batch=9, seed=7, k=2)) for cfg in cfgs]
    assert cim._plan(cfgs[0]).int_gemm == cim._INT_GEMM
    ys = [cim_matvec(cfg, w, x) for cfg, w, x in cases]
    monkeypatch.setattr(cim, "_INT_GEMM", False)
    cim._plan.cache_clear()
    cim.matrix_kernel.cache_clear()
    try:
        assert not any(cim._plan(cfg).int_gemm for cfg in cfgs)
        for (cfg, w, x), y in zip(cases, ys):
            assert torch.equal(cim_matvec(cfg, w, x), y)
            assert torch.equal(y[1], scalar_reference(cfg, w[1], x))
    finally:
        cim._plan.cache_clear()
        cim.matrix_kernel.cache_clear()


def test_nine_bit_tile_keeps_the_pre_tiling_digits_arithmetic():
    """The 128x32 tile with a 9-bit ADC computes the 65-row digits layer exactly as the array
    before tiling did (one 65-row column ADC of 8 bits, 2 LSBs dropped); the default ADC
    (11 bits) is exact."""
    cfg = CIMConfig(adc_bits=9)
    old = CIMConfig(tile="65x10", adc_bits=8)
    assert CIMConfig().adc_exact and CIMConfig().adc_bits == 11
    assert cfg.adc_shift == old.adc_shift == 2
    w, x = case(cfg, batch=8, seed=8)
    assert torch.equal(cim_matvec(cfg, w, x), scalar_reference(old, w, x, per_tile=False))
    for v in (cfg.weight_min, cfg.weight_max):
        full = torch.full((65, 10), v)
        xs = torch.full((2, 65), 15)
        assert torch.equal(cim_matvec(cfg, full, xs), scalar_reference(old, full, xs))
