"""Formal properties of the RTL (SymbiYosys, :mod:`zohw.hw.formal`): every property kind is
proved (or holds to its depth, or its cover is reached) and its planted-bug twin is refuted.
The subset here is :data:`zohw.hw.formal.QUICK` (about half the checks, the fast ones); ``make
formal`` runs all of them."""

import pytest

from zohw.hw import generators as generators_module
from zohw.hw.formal import CHECKS, QUICK, Check, by_name, run, run_sby, tools
from zohw.hw.formal import __main__ as formal_main
from zohw.hw.formal import harnesses as h
from zohw.hw.formal.checks import SHIFT
from zohw.hw.formal.mutants import unguarded_seed
from zohw.hw.formal.observe import patched


@pytest.mark.parametrize("name", QUICK)
def test_check(name):
    check = by_name(name)
    result = run(check)
    assert result.status == check.expect, f"{name}: {result.status}\n{result.log}"


def test_quick_covers_every_property_kind_with_its_twin():
    kinds = {c.name.split("-")[0] for c in CHECKS}
    assert {n.split("-")[0] for n in QUICK} == kinds
    for name in QUICK:
        check = by_name(name)
        if check.expect == "pass" and check.mode != "cover":
            twins = [c.name for c in CHECKS if c.twin_of == name]
            assert twins and set(twins) <= set(QUICK), name


def test_every_property_has_a_twin_expected_to_fail():
    props = [c for c in CHECKS if c.expect == "pass" and c.mode != "cover"]
    assert len(props) >= 14
    for c in props:
        twins = [t for t in CHECKS if t.twin_of == c.name]
        assert len(twins) == 1 and twins[0].expect == "fail", c.name
        assert twins[0].property == c.property
    assert len({c.name for c in CHECKS}) == len(CHECKS)


def test_a_property_that_does_not_hold_is_not_proved():
    # the shipped design against a wrong claim: the fill of a 16-word config in an 8-word pool
    result = run_sby(h.FillHarness(SHIFT.replace(pool=16), pool=8), mode="bmc", depth=14)
    assert result.status == "fail"


def test_patches_are_undone_after_a_twin():
    original = generators_module.mixed_seed
    result = run(by_name("generator-nonzero-lfsr32~unguarded-seed"))
    assert result.status == "fail"
    assert generators_module.mixed_seed is original
    with patched(generators_module, "mixed_seed", unguarded_seed):
        assert generators_module.mixed_seed is unguarded_seed
    assert generators_module.mixed_seed is original


def test_tools_are_found():
    found = tools()
    assert set(found) == {"sby", "yosys", "smtbmc", "witness", "yices"}
    assert all(found.values())


@pytest.mark.parametrize("kwargs, message", [
    (dict(mode="proof", depth=3), "mode must be one of bmc, prove, cover, not 'proof'"),
    (dict(mode="bmc", depth=0), "depth must be a positive integer, not 0"),
    (dict(mode="bmc", depth=True), "depth must be a positive integer, not True"),
])
def test_run_sby_validates(kwargs, message):
    with pytest.raises(ValueError) as e:
        run_sby(None, **kwargs)     # validated before any elaboration
    assert str(e.value) == message


def test_unknown_check_is_named():
    with pytest.raises(KeyError, match="no formal check named 'nope'"):
        by_name("nope")


def test_runner_lists_and_rejects(capsys):
    assert formal_main.main(["--list", "rotation-index"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("rotation-index") and "expect pass" in out
    with pytest.raises(SystemExit) as e:
        formal_main.main(["nope"])
    assert e.value.code == 2
    assert "no formal check named 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        formal_main.main(["-j", "0", "rotation-index"])
    assert e.value.code == 2


def test_runner_fails_on_an_unexpected_result(monkeypatch, capsys):
    twin = by_name("rotation-index~modulus-off-by-one")
    wrong = Check("claimed", twin.property, twin.mode, twin.depth, twin.build, expect="pass")
    monkeypatch.setattr(formal_main, "by_name", lambda name: wrong)
    assert formal_main.main(["claimed"]) == 1
    out = capsys.readouterr().out
    assert "BAD claimed" in out and "UNEXPECTED fail" in out and "0 of 1" in out
