"""The grid of a design-space exploration: its axes, their parsing and their expansion.

The axes are derived, never listed by hand: the engine's common fields (``lanes``, ``width``,
``pool``, ``scaling``, ``source``) and every knob of every registered strategy
(:data:`zohw.strategies.KNOBS`), each given as a comma list. A knob varies only the strategies
that declare it; ``pool`` only the pool strategies. A point is one engine configuration on one
target; its accuracy is trained once per seed.

Bad grids are refused before any work (:class:`~zohw.errors.UsageError`, one line): an unknown
strategy or target, an empty axis, an axis that applies to none of the chosen strategies, a
value no chosen strategy accepts. A value some strategies refuse (``pezo-otf`` at one lane)
skips those points only; they are listed in the report's ``skipped``.
"""

import itertools
from dataclasses import dataclass, field

from zohw.config import EngineConfig
from zohw.errors import ConfigError, UsageError
from zohw.strategies import KNOBS, REGISTRY, STRATEGIES

__all__ = ["AXES", "COMMON_AXES", "Grid", "Point", "axis_applies", "parse_list", "parse_rng",
           "parse_targets", "parse_seeds", "parse_axis", "expand"]

#: Engine fields every strategy takes (``pool`` only the pool strategies: see
#: :func:`axis_applies`); then every strategy knob.
COMMON_AXES = ("lanes", "width", "pool", "scaling", "source")
AXES = (*COMMON_AXES, *KNOBS)


def axis_applies(axis, strategy):
    """Whether the engine field ``axis`` changes the hardware of ``strategy``."""
    s = REGISTRY[strategy]
    if axis in KNOBS:
        return strategy in KNOBS[axis][1]
    if axis == "pool":
        return s.pool
    return True


def parse_list(name, text):
    """``"a, b,a"`` → ``["a", "b"]`` (order kept, duplicates dropped); empty → UsageError."""
    items = [p.strip() for p in str(text).split(",")]
    if not items or any(p == "" for p in items):
        raise UsageError(f"{name} must be a comma list of values without empty entries, "
                         f"not {text!r}")
    return list(dict.fromkeys(items))


def parse_rng(text):
    """``all`` or a comma list of registered strategies."""
    items = parse_list("rng", text)
    if items == ["all"]:
        return list(STRATEGIES)
    for s in items:
        if s not in STRATEGIES:
            raise UsageError(f"rng must be 'all' or a comma list of {', '.join(STRATEGIES)}, "
                             f"not {s!r}")
    return items


def parse_targets(text):
    from zohw.resources.targets import TARGETS

    items = parse_list("target", text)
    for t in items:
        if t not in TARGETS:
            raise UsageError(f"target must be a comma list of {', '.join(TARGETS)}, not {t!r}")
    return items


def parse_seeds(text):
    seeds = []
    for item in parse_list("seeds", text):
        try:
            seed = int(item, 10)
        except ValueError:
            raise UsageError(f"seeds must be integers, not {item!r}") from None
        if not 0 <= seed < 1 << 32:
            raise UsageError(f"seeds must be integers from 0 to {(1 << 32) - 1}, not {seed}")
        seeds.append(seed)
    return seeds


def parse_axis(axis, text):
    """The values of one axis, converted to the field's type (ints for integer fields)."""
    p = EngineConfig.fields_meta()[axis]
    values = parse_list(axis, text)
    if p.kind is int:
        out = []
        for v in values:
            try:
                out.append(int(v, 10))
            except ValueError:
                raise UsageError(f"{axis} must be a comma list of integers, not {v!r}") from None
        return list(dict.fromkeys(out))
    return values


@dataclass(frozen=True)
class Point:
    """One engine on one target. ``engine`` is the configuration trained and simulated for
    power; ``synth_engine`` the one synthesized on ``target`` (a pool strategy's pool read
    port is the target's: distributed RAM, block RAM or flip-flops — the words do not
    change)."""

    engine: EngineConfig
    target: str
    synth_engine: EngineConfig
    values: dict = field(default_factory=dict, compare=False)


@dataclass
class Grid:
    """A parsed grid: strategies, ``axes`` (``{field: [values]}``), targets, seeds, steps and
    the trainer fields (``dataset``, …) every training uses."""

    strategies: list
    axes: dict
    targets: list
    seeds: list
    steps: int
    trainer: dict = field(default_factory=dict)

    def check(self):
        """Refuse an axis that applies to none of the strategies (UsageError)."""
        for axis, values in self.axes.items():
            if not values:
                raise UsageError(f"{axis} has no values")
            if not any(axis_applies(axis, s) for s in self.strategies):
                owners = [s for s in STRATEGIES if axis_applies(axis, s)]
                raise UsageError(
                    f"{axis} applies to {', '.join(owners)}, not to the chosen strategies "
                    f"({', '.join(self.strategies)})")
        if not self.targets:
            raise UsageError("target has no values")
        if not self.seeds:
            raise UsageError("seeds has no values")
        return self

    def as_dict(self):
        return {"strategies": list(self.strategies), "axes": dict(self.axes),
                "targets": list(self.targets), "seeds": list(self.seeds), "steps": self.steps,
                "trainer": dict(self.trainer)}


def _engines(grid):
    """``[(values, EngineConfig)]`` of every valid engine of the grid and the skipped ones."""
    engines, skipped, accepted = [], [], set()
    for strategy in grid.strategies:
        own = [a for a in grid.axes if axis_applies(a, strategy)]
        for combo in itertools.product(*(grid.axes[a] for a in own)):
            values = dict(zip(own, combo))
            try:
                cfg = EngineConfig(strategy=strategy, **values)
            except ConfigError as exc:
                skipped.append({"strategy": strategy, **values, "reason": str(exc)})
                continue
            accepted.update(values.items())
            engines.append((values, cfg))
    # A value that no strategy accepts is a mistake in the grid, not a point to skip.
    for axis, values in grid.axes.items():
        for v in values:
            if (axis, v) not in accepted:
                why = next(s["reason"] for s in skipped if s.get(axis) == v)
                raise UsageError(f"{axis}={v} fits none of the chosen strategies ({why})")
    return engines, skipped


def expand(grid):
    """The points of ``grid`` (engines × targets, strategies in registry order) and the skipped
    engine configurations."""
    from zohw.resources.targets import TARGETS

    grid.check()
    engines, skipped = _engines(grid)
    points, seen = [], set()
    for values, cfg in engines:
        for t in grid.targets:
            synth = cfg
            if cfg.strategy_object.pool:
                synth = cfg.replace(pool_read=TARGETS[t].pool_read)
            if (cfg.config_hash, t) in seen:
                continue
            seen.add((cfg.config_hash, t))
            points.append(Point(cfg, t, synth, values))
    return points, skipped
