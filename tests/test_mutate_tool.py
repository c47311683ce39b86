"""tools/mutate.py, the mutation tester: its operators, what it leaves alone, and the re-run of
an earlier report's survivors (docs/verification.md)."""

import ast
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import mutate  # noqa: E402

SNIPPET = '''"""Docstring 1 + 2."""
__all__ = ["f"]


def f(a, b):
    """A docstring: 3 < 4."""
    if a < b and not a:
        raise ValueError(f"a must be < {b + 1}")
    assert a != 7
    return (a + b) << 2 & ~a ^ -b
'''


def _by_kind(ms):
    out = {}
    for m in ms:
        out.setdefault(m["kind"], []).append(m)
    return out


def test_every_operator_plants_one_change_per_mutant():
    ms = list(mutate.mutants(SNIPPET))
    kinds = _by_kind(ms)
    assert set(kinds) == {"arith", "shift", "bitop", "cmp", "const", "bool", "unary"}
    original = ast.dump(ast.parse(SNIPPET))
    for m in ms:
        assert ast.dump(ast.parse(m["text"])) != original      # every mutant changes the code
        assert m["original"] == SNIPPET.splitlines()[m["line"] - 1].strip()
    body = [ast.unparse(ast.parse(m["text"]).body[2].body[-1]) for m in kinds["arith"]]
    assert body == ["return a - b << 2 & ~a ^ -b"]
    assert [ast.unparse(ast.parse(m["text"]).body[2].body[-1]) for m in kinds["unary"]
            if m["line"] == 10] == ["return a + b << 2 & a ^ -b", "return a + b << 2 & ~a ^ b"]
    assert len(kinds["const"]) == 1 and "<< 3" in kinds["const"][0]["text"]
    assert len(kinds["cmp"]) == 1 and "a <= b" in kinds["cmp"][0]["text"]
    assert len(kinds["bitop"]) == 2


def test_docstrings_messages_raises_asserts_and_all_are_left_alone():
    ms = list(mutate.mutants(SNIPPET))
    assert {m["line"] for m in ms} == {7, 10}
    assert all('"""Docstring 1 + 2."""' in m["text"] or "Docstring 1 + 2." in m["text"]
               for m in ms)


def test_rerun_finds_the_same_site_after_an_edit_elsewhere():
    ms = list(mutate.mutants(SNIPPET))
    survivor = dict(next(m for m in ms if m["kind"] == "unary" and m["col"] > 20),
                    file="x.py")
    edited = SNIPPET.replace("def f(a, b):", "X = 1\n\n\ndef f(a, b):")
    again = mutate._same_mutants(list(mutate.mutants(edited)), [survivor], "x.py")
    assert len(again) == 1 and again[0]["line"] == survivor["line"] + 3
    assert again[0]["col"] == survivor["col"] and "& a ^ -b" in again[0]["text"]
    gone = dict(survivor, original="return a")
    assert mutate._same_mutants(ms, [gone], "x.py") == []


def test_targets_name_existing_files_and_tests():
    root = Path(mutate.ROOT)
    for pattern, tests in mutate.TARGETS.items():
        assert list(root.glob(pattern)), pattern
        for t in tests:
            assert t.startswith("-") or " " in t \
                or (root / t).is_file(), t


def test_the_shadow_tree_is_what_the_tests_import(tmp_path):
    """Every package (zohw, zohw.hw, zohw.sw, zohw.sim) comes from the shadow copy, not from the
    working tree through the editable install's import hook — else a mutant of hw/ or sw/ would
    run unmutated and survive."""
    shadow = mutate.make_shadow(mutate.ROOT, tmp_path / "s0")
    mutate.check_shadow_imports(shadow)
    (shadow / "hw" / "counter.py").write_text("MUTANT = 1\n")
    import subprocess
    out = subprocess.run([sys.executable, "-c", "import zohw.hw.counter as c; print(c.MUTANT)"],
                         cwd=shadow, env=mutate.shadow_env(shadow), capture_output=True,
                         text=True)
    assert out.stdout.strip() == "1", out.stderr[-500:]
