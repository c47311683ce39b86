"""The configuration base: validation, derived defaults, identity and command-line options."""

import argparse
from dataclasses import dataclass

import pytest

from zohw.configbase import Config, add_options, options_to_kwargs, param
from zohw.errors import ConfigError


@dataclass(frozen=True)
class Inner(Config):
    rows: int = param(4, lo=1, hi=8, help="rows of the array")


def _half_lanes(c):
    """half the lanes"""
    return max(1, c.lanes // 2)


@dataclass(frozen=True)
class Outer(Config):
    lanes: int = param(16, lo=1, hi=64, help="P, words per cycle", metavar="P")
    mode: str = param("fast", choices=("fast", "small"), help="what to optimise")
    share: int | None = param(None, derive=_half_lanes, lo=1, hi=lambda c: c.lanes,
                              help="shared sources")
    k: int = param(4, allowed=(2, 4, 8), help="terms")
    seed: int = param(1, lo=0, hi=2 ** 32 - 1, run=True, help="seed")
    inner: Inner = param(Inner(), nested=True, help="the array")

    def _check(self):
        if self.mode == "small" and self.lanes > 8:
            raise ConfigError(f"lanes must be at most 8 when mode is small, not {self.lanes}")


@pytest.mark.parametrize("kwargs, message", [
    (dict(lanes=0), "lanes must be an integer from 1 to 64, not 0"),
    (dict(lanes=True), "lanes must be an integer, not True"),
    (dict(lanes="4"), "lanes must be an integer, not '4'"),
    (dict(mode="tiny"), "mode must be one of fast, small, not 'tiny'"),
    (dict(k=3), "k must be one of 2, 4, 8, not 3"),
    (dict(lanes=4, share=5), "share must be an integer from 1 to 4, not 5"),
    (dict(mode="small"), "lanes must be at most 8 when mode is small, not 16"),
    (dict(inner=3), "inner must be of type Inner, not 3"),
    (dict(inner=Inner(rows=2), seed=-1), "seed must be an integer from 0 to 4294967295, not -1"),
])
def test_errors_name_parameter_value_and_allowed(kwargs, message):
    with pytest.raises(ConfigError) as info:
        Outer(**kwargs)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


def test_derived_default_is_recomputed_by_replace_unless_explicit():
    c = Outer(lanes=16)
    assert c.share == 8
    assert c.replace(lanes=4).share == 2                 # derived again
    explicit = Outer(lanes=16, share=3)
    assert explicit.replace(lanes=8).share == 3          # given: kept
    with pytest.raises(ConfigError, match="unknown Outer fields: lane"):
        c.replace(lane=3)


def test_dict_round_trip_and_unknown_keys():
    c = Outer(lanes=8, inner=Inner(rows=2), seed=7)
    d = c.as_dict()
    assert d["inner"] == {"rows": 2}
    assert Outer.from_dict(d) == c
    with pytest.raises(ConfigError, match="unknown Outer keys: lans"):
        Outer.from_dict({"lans": 3})
    with pytest.raises(ConfigError, match="rows must be an integer from 1 to 8, not 9"):
        Outer.from_dict({"inner": {"rows": 9}})


def test_config_hash_is_hardware_identity():
    a, b = Outer(seed=1), Outer(seed=2)
    assert a.config_hash == b.config_hash                # run field
    assert a.config_hash != Outer(lanes=8).config_hash
    assert a.config_hash != Outer(inner=Inner(rows=3)).config_hash
    assert "seed" not in a.hardware_dict() and a.run_dict() == {"seed": 1}


def test_options_generated_from_metadata():
    parser = argparse.ArgumentParser()
    added = add_options(parser, Outer, exclude=("seed",))
    assert added == ("lanes", "mode", "share", "k")
    help_text = parser.format_help()
    assert "P, words per cycle (an integer from 1 to 64; default 16)" in " ".join(help_text.split())
    assert "derived: half the lanes" in " ".join(help_text.split())
    args = parser.parse_args(["--lanes", "8", "--mode", "small"])
    assert options_to_kwargs(args, Outer) == {"lanes": 8, "mode": "small"}
    with pytest.raises(ConfigError, match="lanes must be an integer, not 'many'"):
        options_to_kwargs(parser.parse_args(["--lanes", "many"]), Outer)


@dataclass(frozen=True)
class Stack(Config):
    widths: tuple = param((), kind=tuple, lo=1, hi=64, metavar="W[,W2,...]",
                          help="layer widths")
    depth: int = param(2, lo=1, hi=4, help="depth")


def test_tuple_of_int_fields():
    assert Stack().widths == () and Stack(widths=(3, 5)).widths == (3, 5)
    assert Stack(widths=[3, 5]).widths == (3, 5)                 # a list (JSON) becomes a tuple
    assert Stack.from_dict({"widths": [4]}) == Stack(widths=(4,))
    for bad in ((0,), (3, 65), (2.0,), (True,), 5, "3,5"):
        with pytest.raises(ConfigError) as info:
            Stack(widths=bad)
        assert str(info.value) == f"widths must be a tuple of integers from 1 to 64, not {bad!r}"
    assert Stack(widths=(1, 2)).config_hash != Stack(widths=(2, 1)).config_hash


def test_tuple_options_parse_lists_and_none():
    parser = argparse.ArgumentParser()
    add_options(parser, Stack)
    text = " ".join(parser.format_help().split())
    assert "layer widths (comma-separated, each an integer from 1 to 64, or none; default " \
           "none)" in text
    assert "--widths W[,W2,...]" in text
    assert options_to_kwargs(parser.parse_args(["--widths", "32,16"]), Stack) == \
        {"widths": (32, 16)}
    assert options_to_kwargs(parser.parse_args(["--widths", "none"]), Stack) == {"widths": ()}
    assert options_to_kwargs(parser.parse_args(["--widths", "7"]), Stack) == {"widths": (7,)}
    for bad in ("a,b", "3,,4", ""):
        with pytest.raises(ConfigError, match="widths must be comma-separated integers "
                                              r"\(e.g. 32,16\) or none, not"):
            options_to_kwargs(parser.parse_args(["--widths", bad]), Stack)
    with pytest.raises(ConfigError, match="widths must be a tuple of integers from 1 to 64"):
        Stack(**options_to_kwargs(parser.parse_args(["--widths", "0"]), Stack))
