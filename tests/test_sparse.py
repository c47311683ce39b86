"""The ``sparse`` strategy, added through the registry alone: density, scale (E[z²] = 1),
moments, hardware against golden for every density and nonzero distribution, validation."""

import argparse

import pytest
import torch

from amaranth_tb import mismatches
from test_strategies import golden_passes, run_engine
from zohw.config import EngineConfig
from zohw.configbase import add_options, options_to_kwargs
from zohw.strategies import REGISTRY, combinations
from zohw.strategies.sparse import DENSITIES, NONZERO, rademacher_magnitude, second_moment
from zohw.sw.perturb import golden_stream

VARIANTS = [(d, n) for d in DENSITIES for n in NONZERO]


def _config(density, nonzero, **extra):
    return EngineConfig(strategy="sparse", density=density, nonzero=nonzero, **extra)


def test_sparse_is_registered_with_its_knobs():
    s = REGISTRY["sparse"]
    assert ("sparse", "none") in combinations()
    assert [k.name for k in s.knobs] == ["density", "nonzero"]
    assert not (s.gaussian or s.uniform_family or s.pool or s.pezo_family)
    c = EngineConfig(strategy="sparse")
    assert (c.density, c.nonzero, c.scaling) == (4, "rademacher", "none")
    assert s.label(c) == "sparse (ρ=1/4, rademacher)"
    assert "density=1/4" in c.summary()


@pytest.mark.parametrize("kwargs, words", [
    (dict(density=3), ["density", "2, 4, 8", "3"]),
    (dict(nonzero="gauss"), ["nonzero", "rademacher, uniform", "'gauss'"]),
    (dict(scaling="fixed"), ["scaling", "sparse", "fixed"]),
])
def test_sparse_knobs_are_validated(kwargs, words):
    with pytest.raises(ValueError) as info:
        EngineConfig(strategy="sparse", **kwargs)
    for w in words:
        assert w in str(info.value)


def test_sparse_knobs_are_command_line_options():
    parser = argparse.ArgumentParser()
    add_options(parser, EngineConfig)
    assert "--density" in parser.format_help() and "--nonzero" in parser.format_help()
    args = parser.parse_args(["--strategy", "sparse", "--density", "8", "--nonzero", "uniform"])
    assert EngineConfig(**options_to_kwargs(args, EngineConfig)) == _config(8, "uniform")


@pytest.mark.parametrize("density, nonzero", VARIANTS)
def test_density_and_values(density, nonzero):
    config = _config(density, nonzero, lanes=16, width=8)
    z = golden_stream(config, 3, 1024, 32)
    nonzero_fraction = (z != 0).double().mean().item()
    # 32 768 words: the binomial std of the fraction is below 0.003
    assert abs(nonzero_fraction - 1 / density) < 0.012
    if nonzero == "rademacher":
        mag = rademacher_magnitude(config)
        assert set(z.unique().tolist()) == {-mag, 0, mag}
    else:
        assert z.abs().max().item() <= 4 * 32 and (z != 0).sum() > 0.9 * z.numel() / density


@pytest.mark.parametrize("density, nonzero", VARIANTS)
def test_second_moment_is_one(density, nonzero):
    """The documented scale: exact E[z²] within 1.2 % of 1 at B = 8 (Rademacher density 2 and 8
    are off by the rounding of √density · 32), and the stream's mean square agrees."""
    config = _config(density, nonzero, width=8)
    exact = second_moment(config)
    assert abs(exact - 1) < 0.012
    z = golden_stream(config, 11, 1024, 64).double() * config.lsb
    assert abs((z ** 2).mean().item() - exact) < 0.05
    if nonzero == "rademacher":
        assert exact == rademacher_magnitude(config) ** 2 / 32 ** 2 / density


@pytest.mark.parametrize("source", ["lfsr32", "xorshift32"])
@pytest.mark.parametrize("density, nonzero", VARIANTS)
def test_moments_within_tolerances_at_every_density(density, nonzero, source):
    config = _config(density, nonzero, source=source)
    z = golden_stream(config, 1, 1024, 64).double() * config.lsb
    mean, std = z.mean().item(), z.std().item()
    kurt = (((z - mean) / std) ** 4).mean().item()
    assert not REGISTRY["sparse"].moments(config).failures(mean, std, kurt)


@pytest.mark.parametrize("density, nonzero", VARIANTS)
def test_sparse_hardware_matches_golden(density, nonzero):
    config = _config(density, nonzero, lanes=4, width=7)
    got = run_engine(config, 0x5A5A, 30, 3)
    assert (got == 0).any() and (got != 0).any()
    assert not mismatches(got, golden_passes(config, 0x5A5A, 30, 3))


def test_sparse_check_can_fail():
    """Judged by the golden of another density, the hardware's words mismatch, reported by
    step, pass, cycle and lane."""
    config = _config(4, "rademacher", lanes=4, width=7)
    got = run_engine(config, 0x5A5A, 30, 2)
    wrong = golden_passes(_config(2, "rademacher", lanes=4, width=7), 0x5A5A, 30, 2)
    reports = mismatches(got, wrong)
    assert reports and all(r["expected"] != r["got"] for r in reports)
    assert torch.equal(got[:, 0], golden_stream(config, 0x5A5A, 30, 2))
