"""CIM MAC: configuration validation and the golden model alone (no simulator)."""

import itertools

import pytest
import torch

from zohw.cim_config import CIMConfig, DIGITS_CIM
from zohw.hw.cim import BehaviouralCIMMacro
from zohw.sw.cim import adc, cim_matvec, exact_matvec, input_planes, weight_slices

from cim_reference import scalar_reference


def rand_case(cfg, batch=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randint(cfg.weight_min, cfg.weight_max + 1, (cfg.rows, cfg.cols), generator=g)
    x = torch.randint(0, cfg.input_max + 1, (batch, cfg.rows), generator=g)
    return w, x


def extreme_cases(cfg):
    """All-min / all-max weights against all-max / all-zero / alternating inputs."""
    full = lambda v: torch.full((cfg.rows, cfg.cols), v, dtype=torch.int64)  # noqa: E731
    xs = torch.stack([torch.zeros(cfg.rows, dtype=torch.int64),
                      torch.full((cfg.rows,), cfg.input_max, dtype=torch.int64),
                      torch.arange(cfg.rows) % 2 * cfg.input_max])
    for w in (full(cfg.weight_min), full(cfg.weight_max), full(0), full(-1)):
        yield w, xs


# -- configuration -------------------------------------------------------------------------------

def test_digits_defaults():
    c = DIGITS_CIM
    assert (c.rows, c.cols, c.weight_bits, c.cell_bits, c.input_bits, c.adc_bits,
            c.input_mode, c.write_lanes, c.tile) == (65, 10, 12, 4, 4, 11, "serial", 1, "128x32")
    assert c.slices == 3 and c.input_passes == 4 and c.passes == 12
    # the ADC is sized for the 128-row tile: 128 * 15 = 1920 < 2**11, 11 bits: exact
    assert (c.tile_rows, c.tile_cols, c.row_tiles, c.col_tiles, c.tiles) == (128, 32, 1, 1, 1)
    assert c.full_scale == 128 * 15 and c.column_sum_bits == 11
    assert c.adc_shift == 0 and c.adc_exact and not c.adc_can_clip and c.error_bound == 0
    # the cheaper 9-bit ADC drops 2 LSBs of the same full scale, without clipping
    c9 = CIMConfig(adc_bits=9)
    assert c9.adc_shift == 2 and not c9.adc_exact and not c9.adc_can_clip
    # the derived resolution follows the tile, the cells and the input mode (bits of the full
    # scale, at most 24): 64 x 15 = 960 (10 bits); 128 x 15 x 15 = 28800 (15 bits)
    assert CIMConfig(tile="64x32").adc_bits == 10
    assert CIMConfig(input_mode="parallel").adc_bits == 15
    assert CIMConfig(tile="1024x4", weight_bits=16, cell_bits=8, input_bits=8,
                     input_mode="parallel").adc_bits == 24
    assert c.utilisation == 65 * 10 / (128 * 32)
    assert c.result_bits == 22                      # |-2048 * 65 * 15| < 2**21
    # the latency belongs to the macro implementation, not to the configuration
    assert BehaviouralCIMMacro(c).cycles_per_vector == 12 and not hasattr(c, "cycles_per_vector")
    assert CIMConfig(adc_bits=11).adc_exact and not CIMConfig(adc_bits=10).adc_exact
    # a tile of exactly the digits array with the pre-tiling 8-bit ADC (975 < 2**10: shift 2)
    assert CIMConfig(tile="65x10", adc_bits=8).adc_shift == 2
    assert CIMConfig(adc_bits=8).adc_shift == 3
    assert CIMConfig.from_dict(c.as_dict()) == c


@pytest.mark.parametrize("kwargs, message", [
    ({"rows": 0}, "rows must be an integer from 1 to 8192, not 0"),
    ({"cols": 4097}, "cols must be an integer from 1 to 4096, not 4097"),
    ({"weight_bits": 12, "cell_bits": 5}, "cell_bits must divide weight_bits (12): one of "
                                          "1, 2, 3, 4, 6, not 5"),
    ({"input_bits": 9}, "input_bits must be an integer from 1 to 8, not 9"),
    ({"adc_bits": 0}, "adc_bits must be an integer from 1 to 24, not 0"),
    ({"input_mode": "bitwise"}, "input_mode must be one of serial, parallel, not 'bitwise'"),
    ({"write_lanes": 65}, "write_lanes must be an integer from 1 to 64, not 65"),
    ({"adc_shift": 1}, "adc_shift must be an integer from 0 to 0, not 1"),
    ({"adc_bits": 9, "adc_shift": 3}, "adc_shift must be an integer from 0 to 2, not 3"),
    ({"tile": "128"}, "tile must be ROWSxCOLS with ROWS from 1 to 1024 and COLS from 1 to 1024 "
                      "(e.g. 128x32), not '128'"),
    ({"tile": "0x32"}, "tile must be ROWSxCOLS with ROWS from 1 to 1024 and COLS from 1 to "
                       "1024 (e.g. 128x32), not '0x32'"),
    ({"tile": "2048x8"}, "tile must be ROWSxCOLS with ROWS from 1 to 1024 and COLS from 1 to "
                         "1024 (e.g. 128x32), not '2048x8'"),
])
def test_validation_names_parameter_value_and_range(kwargs, message):
    with pytest.raises(ValueError) as err:
        CIMConfig(**kwargs)
    assert str(err.value) == message


@pytest.mark.parametrize("kwargs", [{"rows": 4.0}, {"adc_bits": True}, {"input_mode": 1}])
def test_validation_types(kwargs):
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        CIMConfig(**kwargs)


def test_unknown_keys():
    with pytest.raises(ValueError, match="unknown CIMConfig keys: foo"):
        CIMConfig.from_dict({"foo": 1})


# -- golden model ---------------------------------------------------------------------------------

SMALL = [
    dict(rows=7, cols=3, weight_bits=6, cell_bits=2, input_bits=3, adc_bits=2),
    dict(rows=7, cols=3, weight_bits=6, cell_bits=3, input_bits=2, adc_bits=3, adc_shift=0),
    dict(rows=5, cols=2, weight_bits=4, cell_bits=4, input_bits=3, adc_bits=5,
         input_mode="parallel"),
    dict(rows=5, cols=4, weight_bits=4, cell_bits=1, input_bits=2, adc_bits=3,
         input_mode="parallel", adc_shift=1),
    dict(rows=9, cols=2, weight_bits=8, cell_bits=8, input_bits=1, adc_bits=6),
]


@pytest.mark.parametrize("kw", SMALL, ids=lambda kw: CIMConfig(**kw).name)
def test_matches_scalar_reference(kw):
    cfg = CIMConfig(**kw)
    w, x = rand_case(cfg, batch=12, seed=3)
    assert torch.equal(cim_matvec(cfg, w, x), scalar_reference(cfg, w, x))
    for w, x in extreme_cases(cfg):
        assert torch.equal(cim_matvec(cfg, w, x), scalar_reference(cfg, w, x))


def exact_configs():
    for rows, (wb, cb), ib, mode in itertools.product(
            (1, 13, 65), ((12, 4), (12, 3), (8, 1), (8, 8), (4, 2)), (1, 4, 8),
            ("serial", "parallel")):
        base = CIMConfig(rows=rows, cols=5, weight_bits=wb, cell_bits=cb, input_bits=ib,
                         input_mode=mode, adc_bits=24)
        yield CIMConfig(**{**base.as_dict(), "adc_bits": base.column_sum_bits,
                           "adc_shift": None})


@pytest.mark.parametrize("cfg", list(exact_configs()), ids=lambda c: c.name)
def test_exact_when_adc_is_wide_enough(cfg):
    assert cfg.adc_exact and cfg.error_bound == 0
    w, x = rand_case(cfg, batch=32)
    assert torch.equal(cim_matvec(cfg, w, x), x @ w)
    for w, x in extreme_cases(cfg):
        y = cim_matvec(cfg, w, x)
        assert torch.equal(y, x @ w)
        assert int(y.min()) >= cfg.result_min and int(y.max()) <= cfg.result_max


LOSSY = [
    CIMConfig(adc_bits=9),                                  # shift 2
    CIMConfig(adc_bits=6),
    CIMConfig(input_mode="parallel", adc_bits=9),           # shift 6
    CIMConfig(adc_bits=8, adc_shift=0),                     # clipping only
    CIMConfig(adc_bits=6, adc_shift=2),                     # truncation and clipping
    CIMConfig(input_mode="parallel", adc_bits=5, adc_shift=4),
    CIMConfig(rows=16, cols=4, weight_bits=8, cell_bits=2, input_bits=3, adc_bits=4,
              adc_shift=1),
]


@pytest.mark.parametrize("cfg", LOSSY, ids=lambda c: c.name)
def test_adc_loss_is_bounded(cfg):
    """The ADC only loses value: 0 <= W^T x - Y <= error_bound, for every column."""
    cases = [rand_case(cfg, batch=256, seed=s) for s in range(3)] + list(extreme_cases(cfg))
    worst = 0
    for w, x in cases:
        y = cim_matvec(cfg, w, x)
        err = exact_matvec(cfg, w, x) - y
        assert int(err.min()) >= 0
        assert int(err.max()) <= cfg.error_bound
        assert int(y.min()) >= cfg.result_min and int(y.max()) <= cfg.result_max
        worst = max(worst, int(err.max()))
    assert worst > 0                                        # the configs really are lossy


def test_truncation_bound_is_attained():
    """All-max cells and inputs: every pass loses exactly 2**t - 1 when A_max is all ones."""
    cfg = CIMConfig(rows=1, cols=1, weight_bits=4, cell_bits=2, input_bits=2, adc_bits=1,
                    tile="1x1")
    assert cfg.full_scale == 3 and cfg.adc_shift == 1 and not cfg.adc_can_clip
    w = torch.tensor([[cfg.weight_max]])                    # u = 15: both slices 3
    x = torch.tensor([[cfg.input_max]])
    assert int((exact_matvec(cfg, w, x) - cim_matvec(cfg, w, x))[0, 0]) == cfg.error_bound


def test_adc_model():
    cfg = CIMConfig(rows=65, cols=1, adc_bits=8, adc_shift=1)   # clip level 255 << 1 = 510
    a = torch.tensor([0, 1, 2, 3, 509, 510, 511, 512, 975, 1920])
    assert adc(cfg, a).tolist() == [0, 0, 1, 1, 254, 255, 255, 255, 255, 255]
    assert cfg.adc_can_clip and cfg.pass_error_bound == 1920 - 510     # the tile's full scale


def test_slices_and_planes():
    cfg = CIMConfig(rows=2, cols=1, weight_bits=8, cell_bits=4, input_bits=2)
    w = torch.tensor([[-128], [0x35 - 128]])                 # u = 0x00, 0x35
    s = weight_slices(cfg, w)
    assert s[:, :, 0].tolist() == [[0, 5], [0, 3]]
    p = input_planes(cfg, torch.tensor([[2, 3]]))
    assert p[:, 0].tolist() == [[0, 1], [1, 1]]


def test_single_vector_and_dtypes():
    cfg = CIMConfig(rows=4, cols=2, weight_bits=4, cell_bits=2, input_bits=2, adc_bits=8,
                    tile="4x2")
    w = torch.tensor([[1, -8], [7, 0], [-1, 3], [2, 2]], dtype=torch.int32)
    x = torch.tensor([3, 1, 0, 2])
    y = cim_matvec(cfg, w, x)
    assert y.dtype == torch.int64 and y.shape == (1, 2)
    assert y.tolist() == [[3 + 7 + 4, -24 + 4]]


@pytest.mark.parametrize("w, x, exc, match", [
    (torch.zeros(3, 2, dtype=torch.int64), torch.zeros(1, 4, dtype=torch.int64), ValueError,
     r"weights must have shape \(4, 2\)"),
    (torch.full((4, 2), 8), torch.zeros(1, 4, dtype=torch.int64), ValueError,
     "weights must be integers from -8 to 7"),
    (torch.zeros(4, 2), torch.zeros(1, 4, dtype=torch.int64), TypeError, "integer tensor"),
    (torch.zeros(4, 2, dtype=torch.int64), torch.full((1, 4), 4), ValueError,
     "x must be integers from 0 to 3"),
    (torch.zeros(4, 2, dtype=torch.int64), torch.zeros(1, 5, dtype=torch.int64), ValueError,
     r"x must have shape \(batch, 4\)"),
])
def test_input_validation(w, x, exc, match):
    cfg = CIMConfig(rows=4, cols=2, weight_bits=4, cell_bits=2, input_bits=2, adc_bits=8)
    with pytest.raises(exc, match=match):
        cim_matvec(cfg, w, x)
