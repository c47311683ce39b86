"""Property-based tests (hypothesis): random valid engine configurations — strategy, its knobs,
P, B, N, source, pool read port, seed, d — against the golden stream in Amaranth's simulator.
A failing example is shrunk and reported as the configuration (``config.as_dict()``), so it can
be replayed with ``EngineConfig.from_dict``."""

import dataclasses

import torch
from hypothesis import HealthCheck, Phase, assume, given, note, settings
from hypothesis import strategies as st

from amaranth_tb import mismatches
from test_strategies import golden_passes, run_engine
from zohw.config import POOL_READS, SOURCES, EngineConfig
from zohw.errors import ConfigError
from zohw.strategies import REGISTRY, STRATEGIES

# Small shapes keep one example to about a second in Amaranth's simulator.
LANES = (1, 2, 4, 8)
WIDTHS = range(4, 11)
POOLS = (8, 16, 32, 64)
KNOB_SPAN = 6          # a ranged knob is drawn from [lo, min(hi, lo + KNOB_SPAN)]


def _bound(b, config):
    return b(config) if callable(b) else b


@st.composite
def engine_configs(draw):
    """A valid EngineConfig: the common fields, then each knob of the drawn strategy from its
    registry descriptor (allowed values, choices, or its lo..hi range at this shape)."""
    name = draw(st.sampled_from(STRATEGIES))
    s = REGISTRY[name]
    lanes = draw(st.sampled_from([p for p in LANES if p >= s.min_lanes]))
    base = dict(strategy=name, lanes=lanes, width=draw(st.sampled_from(WIDTHS)),
                pool=draw(st.sampled_from([n for n in POOLS if n >= lanes])),
                scaling=draw(st.sampled_from(s.scalings)), source=draw(st.sampled_from(SOURCES)),
                pool_read=draw(st.sampled_from(POOL_READS)))
    try:
        config = EngineConfig(**base)
    except ConfigError as exc:
        note(f"rejected base {base}: {exc}")
        assume(False)
    knobs = {}
    for knob in s.knobs:
        if knob.allowed or knob.choices:
            knobs[knob.name] = draw(st.sampled_from(tuple(knob.allowed or knob.choices)))
        else:
            lo, hi = _bound(knob.lo, config), _bound(knob.hi, config)
            knobs[knob.name] = draw(st.integers(lo, min(hi, lo + KNOB_SPAN)))
    try:
        return config.replace(**knobs)
    except ConfigError as exc:
        note(f"rejected knobs {knobs}: {exc}")
        assume(False)


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(config=engine_configs(), seed=st.integers(0, 2**32 - 1), d=st.integers(1, 40),
       steps=st.integers(1, 2))
def test_random_engine_matches_golden_stream(config, seed, d, steps):
    note(f"config = EngineConfig.from_dict({config.as_dict()!r}); seed={seed} d={d} "
         f"steps={steps}")
    got = run_engine(config, seed, d, steps)
    bad = mismatches(got, golden_passes(config, seed, d, steps))
    assert not bad, f"{config.as_dict()} seed={seed} d={d} steps={steps}: {bad[:3]}"


def test_generated_configs_cover_every_strategy_and_knob():
    """The generator reaches every strategy and every knob (a generator stuck on defaults would
    make the property above vacuous)."""
    seen_strategies, seen_knobs = set(), set()

    @settings(max_examples=200, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.filter_too_much])
    @given(engine_configs())
    def collect(config):
        seen_strategies.add(config.strategy)
        default = EngineConfig(strategy=config.strategy, lanes=config.lanes, width=config.width,
                               pool=config.pool)
        for knob in REGISTRY[config.strategy].knobs:
            if getattr(config, knob.name) != getattr(default, knob.name):
                seen_knobs.add(knob.name)

    collect()
    assert seen_strategies == set(STRATEGIES)
    assert seen_knobs == {k.name for s in REGISTRY.values() for k in s.knobs}


def test_property_check_can_fail():
    """The same property against a planted fault (the golden of the neighbouring seed) is
    refuted by hypothesis and the failure names the configuration."""
    # no shrinking: one failing example is enough to show the fault is caught
    @settings(max_examples=3, deadline=None, derandomize=True, database=None,
              phases=[Phase.generate], suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(config=engine_configs(), seed=st.integers(0, 2**16))
    def planted(config, seed):
        got = run_engine(config, seed, 8, 1)
        bad = mismatches(got, golden_passes(config, seed + 1, 8, 1))
        assert not bad, f"{config.as_dict()}: {bad[:1]}"

    try:
        planted()
    except AssertionError as exc:
        assert "'strategy':" in str(exc) and "expected" in str(exc)
    else:
        raise AssertionError("a golden of another seed was not caught")
