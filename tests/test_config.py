"""EngineConfig validates at construction, naming the parameter, the value and what is allowed."""

import pytest

from zohw.config import STRATEGIES, EngineConfig


@pytest.mark.parametrize("kwargs, exc, words", [
    (dict(strategy="gauss"), ValueError, ["strategy", "'gauss'", "pezo-block", "gauss-clt"]),
    (dict(lanes=0), ValueError, ["lanes", "from 1 to 64", "0"]),
    (dict(lanes=2.0), TypeError, ["lanes", "integer", "2.0"]),
    (dict(width=3), ValueError, ["width", "from 4 to 16", "3"]),
    (dict(pool=96), ValueError, ["pool", "power of two", "96"]),
    (dict(strategy="pezo-shift", lanes=32, pool=16), ValueError, ["pool", "multiple of lanes"]),
    (dict(source="mt19937"), ValueError, ["source", "lfsr32", "xorshift32", "'mt19937'"]),
    (dict(strategy="gauss-clt", clt_k=3), ValueError, ["clt_k", "2, 4, 8, 12", "3"]),
    (dict(strategy="gauss-clt", scaling="fixed"), ValueError, ["scaling", "gauss-clt", "fixed"]),
    (dict(strategy="rademacher", scaling="adaptive"), ValueError, ["scaling", "rademacher"]),
    (dict(strategy="uniform", scaling="adaptive"), ValueError, ["scaling", "adaptive", "pool"]),
    (dict(strategy="pezo-otf", otf_sources=16), ValueError, ["otf_sources", "from 1 to 15"]),
    (dict(scaling="max"), ValueError, ["scaling", "none, fixed, adaptive", "'max'"]),
    (dict(icdf_bits=8, width=6), ValueError, ["icdf_bits", "from 2 to 5"]),
])
def test_invalid_configurations_are_named(kwargs, exc, words):
    with pytest.raises(exc) as info:
        EngineConfig(**kwargs)
    for word in words:
        assert word in str(info.value)


def test_defaults_resolve_per_strategy():
    assert EngineConfig(strategy="pezo-block").scaling == "adaptive"
    assert EngineConfig(strategy="uniform").scaling == "fixed"
    assert EngineConfig(strategy="gauss-icdf").scaling == "none"
    assert EngineConfig(strategy="pezo-otf", lanes=16).otf_sources == 2


def test_config_hash_is_stable_and_distinguishes_configs():
    hashes = {EngineConfig(strategy=s).config_hash for s in STRATEGIES}
    assert len(hashes) == len(STRATEGIES)
    assert EngineConfig().config_hash == EngineConfig().config_hash
    assert EngineConfig.from_dict(EngineConfig().as_dict()) == EngineConfig()


def test_random_bit_budget_matches_equal_throughput():
    c = EngineConfig(strategy="uniform", lanes=16, width=8)
    assert c.random_bits == 128 and c.generators == 4
    c = EngineConfig(strategy="gauss-clt", lanes=16, width=8, clt_k=4)
    assert c.random_bits == 16 * 4 * 6
    c = EngineConfig(strategy="pezo-otf", lanes=16, width=8, otf_sources=2)
    assert c.random_bits == 2 * 8 + 16 and c.generators == 1


def test_knob_fields_come_from_the_registry():
    """Every knob a strategy declares is an EngineConfig field with its default, its range is
    validated, and it has a command-line flag and help."""
    from dataclasses import fields

    from zohw.strategies import KNOBS, REGISTRY

    names = {f.name for f in fields(EngineConfig)}
    for name, (knob, owners) in KNOBS.items():
        assert name in names
        assert set(owners) <= set(STRATEGIES)
        assert all(knob in REGISTRY[o].knobs for o in owners)
        assert knob.flag == "--" + name.replace("_", "-")
        assert knob.help.split(" (")[0] in EngineConfig.describe(name)
    assert {"clt_k", "icdf_bits", "otf_sources", "density", "nonzero"} <= set(KNOBS)
    assert EngineConfig(strategy="gauss-clt", clt_k=8).clt_k == 8
    assert EngineConfig(strategy="sparse", density=8).density == 8


def test_defaults_derive_from_the_registry_and_replace_recomputes_them():
    from zohw.strategies import REGISTRY

    for name, s in REGISTRY.items():
        assert EngineConfig(strategy=name).scaling == s.scalings[0]
    c = EngineConfig(strategy="uniform", width=6)
    assert (c.scaling, c.icdf_bits) == ("fixed", 5)
    r = c.replace(strategy="pezo-shift", width=12)
    assert (r.scaling, r.icdf_bits) == ("adaptive", 8)
    # explicitly given values stay
    assert EngineConfig(strategy="uniform", scaling="none").replace(width=6).scaling == "none"


def test_errors_are_config_errors_and_owner_only_ranges():
    from zohw.errors import ConfigError

    with pytest.raises(ConfigError, match="lanes must be an integer from 2 to 64, not 1"):
        EngineConfig(strategy="pezo-otf", lanes=1)
    # otf_sources' range (1 to P - 1) binds pezo-otf only: a one-lane engine of another
    # strategy keeps its derived otf_sources = 1
    assert EngineConfig(strategy="uniform", lanes=1).otf_sources == 1


def test_engine_config_pickles_and_labels():
    import pickle

    c = EngineConfig(strategy="gauss-icdf", width=6)
    assert pickle.loads(pickle.dumps(c)) == c
    assert c.label() == "gauss-icdf (32-entry table)"
    assert c.summary() == "strategy=gauss-icdf P=16 B=6 table=32 scaling=none source=xorshift32"
