"""Mutation testing of zohw: plant one fault at a time in the Amaranth sources and the golden
models, run the fast tests that cover the file, and count the mutants they kill.

Operators (applied to the Python AST, one site per mutant, deterministic order; docstrings,
error messages, ``raise`` statements and ``__all__`` are left alone):

==========  ==================================================================
``arith``   ``+`` ↔ ``-``
``shift``   ``<<`` ↔ ``>>``
``bitop``   ``&`` ↔ ``|``, ``^`` → ``|``
``cmp``     ``<`` ↔ ``<=``, ``>`` ↔ ``>=``, ``==`` ↔ ``!=``
``const``   an integer literal ``n`` → ``n + 1`` (``0`` → ``1``, ``1`` → ``2``, …)
``bool``    ``and`` ↔ ``or``
``unary``   ``~x`` → ``x``, ``-x`` → ``x``, ``not x`` → ``x``
==========  ==================================================================

The mutants run in a shadow copy of the tracked files (``git ls-files``) under a temporary
directory, imported through a package tree of symbolic links that mirrors pyproject's
``package-dir`` mapping, so the working tree is never touched. A mutant is *killed* when the
tests fail or time out (3 × the clean run, at least 60 s), *survives* otherwise.

    python tools/mutate.py --json out/mutate.json [--files hw/fill.py,...] [-j 2]
        [--max-per-file N]

Writes the JSON report (per file: planted, killed, score; every survivor with its line,
operator and the mutated line) and prints one summary line.
"""

import argparse
import ast
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIRS = {"zohw": "zohw", "zohw/hw": "hw", "zohw/sw": "sw", "zohw/sim": "sim"}

#: The golden-stream statistics that take ~45 s and test no exact word (kept out of the loop).
SLOW = ["-k", "not reuse_rank and not lane_offsets_are_rich"]

#: file (or glob) → the pytest arguments of the fast tests that cover it (Amaranth simulator and
#: golden models only; the Verilator co-simulations are too slow to run once per mutant).
#: The engine components' tests (Amaranth's simulator), known answers first (fast).
ENGINE_TESTS = ["tests/test_known_answers.py", "tests/test_engine_components.py",
                "tests/test_strategies.py"]

TARGETS = {
    "zohw/sources.py": ["tests/test_sources.py", "tests/test_known_answers.py"],
    # golden-only tests first: with -x a killed mutant stops at the first (fast) failure
    "sw/perturb.py": ["tests/test_perturb_golden.py", "tests/test_sparse.py",
                      "tests/test_known_answers.py", "tests/test_strategies.py", *SLOW],
    "zohw/strategies/*.py": ["tests/test_perturb_golden.py", "tests/test_sparse.py",
                             "tests/test_known_answers.py", "tests/test_strategies.py", *SLOW],
    "hw/generators.py": ENGINE_TESTS,
    "hw/fill.py": ENGINE_TESTS,
    "hw/scaler.py": ENGINE_TESTS,
    "hw/pool.py": ENGINE_TESTS,
    "hw/addressing.py": ENGINE_TESTS,
    "hw/counter.py": ENGINE_TESTS,
    "hw/sequencer.py": ENGINE_TESTS,
    "hw/wordmap.py": ENGINE_TESTS,
    "hw/engine.py": ENGINE_TESTS,
    "sw/cim.py": ["tests/test_cim_golden.py", "tests/test_properties_trainer.py"],
    "sw/train.py": ["tests/test_properties_trainer.py", "tests/test_train.py"],
    # the trainer's components in Amaranth's simulator (no Verilator co-simulation)
    "hw/update_unit.py": ["tests/test_trainer_components.py"],
    "hw/loss_unit.py": ["tests/test_trainer_components.py"],
    "hw/requantiser.py": ["tests/test_trainer_components.py"],
    "hw/write_pipeline.py": ["tests/test_trainer_components.py"],
    "hw/controller.py": ["tests/test_trainer_components.py"],
    "hw/sample_memory.py": ["tests/test_trainer_components.py"],
    "hw/cim.py": ["tests/test_cim.py", "-k", "macro_corners or tiling or signature_members"],
}

SWAPS = {
    ast.Add: (ast.Sub, "arith"), ast.Sub: (ast.Add, "arith"),
    ast.LShift: (ast.RShift, "shift"), ast.RShift: (ast.LShift, "shift"),
    ast.BitAnd: (ast.BitOr, "bitop"), ast.BitOr: (ast.BitAnd, "bitop"),
    ast.BitXor: (ast.BitOr, "bitop"),
    ast.Lt: (ast.LtE, "cmp"), ast.LtE: (ast.Lt, "cmp"), ast.Gt: (ast.GtE, "cmp"),
    ast.GtE: (ast.Gt, "cmp"), ast.Eq: (ast.NotEq, "cmp"), ast.NotEq: (ast.Eq, "cmp"),
    ast.And: (ast.Or, "bool"), ast.Or: (ast.And, "bool"),
}


def _skipped_nodes(tree):
    """Nodes whose subtrees are never mutated: docstrings, raise statements, asserts, __all__,
    f-strings (messages) and decorators."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Raise, ast.Assert, ast.JoinedStr)):
            skip.add(id(node))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                skip.add(id(body[0]))
            for dec in getattr(node, "decorator_list", []):
                skip.add(id(dec))
        elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            skip.add(id(node))
    return skip


def _walk(tree):
    """Every node outside the skipped subtrees, in a fixed depth-first order."""
    skip = _skipped_nodes(tree)
    stack = [tree]
    while stack:
        node = stack.pop()
        if id(node) in skip:
            continue
        yield node
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _sites(tree):
    """(node, kind, apply) for every mutation site; ``apply(node)`` mutates in place."""
    for node in _walk(tree):
        if isinstance(node, (ast.BinOp, ast.BoolOp)) and type(node.op) in SWAPS:
            new, kind = SWAPS[type(node.op)]
            yield node, kind, lambda n, new=new: setattr(n, "op", new())
        elif isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in SWAPS:
                    new, kind = SWAPS[type(op)]

                    def apply(n, i=i, new=new):
                        n.ops[i] = new()
                    yield node, kind, apply
        elif (isinstance(node, ast.Constant) and type(node.value) is int):
            yield node, "const", lambda n: setattr(n, "value", n.value + 1)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Invert, ast.USub,
                                                                     ast.Not)):
            yield node, "unary", None     # replaced by its operand in the parent (see mutant)


class _Unwrap(ast.NodeTransformer):
    def __init__(self, target):
        self.target = target

    def visit(self, node):
        if node is self.target:
            return self.visit(node.operand)
        return super().visit(node)


def mutants(source):
    """Every mutant of ``source``: dicts with line, kind, original and mutated line, text."""
    tree = ast.parse(source)
    count = sum(1 for _ in _sites(tree))
    lines = source.splitlines()
    for k in range(count):
        t = copy.deepcopy(tree)
        node, kind, apply = list(_sites(t))[k]
        line = node.lineno
        if apply is None:
            t = _Unwrap(node).visit(t)
        else:
            apply(node)
        ast.fix_missing_locations(t)
        try:
            text = ast.unparse(t)
        except Exception:               # pragma: no cover - an operator ast cannot print
            continue
        yield {"index": k, "line": line, "col": node.col_offset, "kind": kind,
               "original": lines[line - 1].strip(), "text": text}


# -- running ------------------------------------------------------------------------------------

def make_shadow(root, dest):
    """Copy the tracked files of ``root`` into ``dest`` and build ``dest/_pkg``: the package tree
    of pyproject's package-dir mapping as symbolic links, first on PYTHONPATH."""
    files = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True,
                           check=True).stdout.split()
    for f in files:
        src = root / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    pkg = dest / "_pkg"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "sitecustomize.py").write_text(SITECUSTOMIZE)
    for name, src in PACKAGE_DIRS.items():
        target = pkg / name
        target.mkdir(parents=True, exist_ok=True)
        for entry in (dest / src).iterdir():
            link = target / entry.name
            if entry.name in ("hw", "sw", "sim") and src == "zohw":
                continue
            if not link.exists():
                link.symlink_to(entry)
    return dest


#: Installed into the shadow's package tree: drops the editable install's import hook, which
#: would otherwise resolve ``zohw.hw`` / ``zohw.sw`` / ``zohw.sim`` to the working tree.
SITECUSTOMIZE = """import sys
sys.meta_path[:] = [f for f in sys.meta_path if "_EditableFinder" not in type(f).__name__
                    and "_EditableFinder" not in getattr(f, "__name__", "")]
"""


def shadow_env(shadow):
    """The environment of a run in ``shadow``: its package tree first on the path, the working
    directory not on it (PYTHONSAFEPATH: ``python -m`` would put the shadow root's plain
    ``zohw/`` first, without the hw/sw/sim subpackages), no bytecode written."""
    return dict(os.environ, PYTHONPATH=str(shadow / "_pkg"), PYTHONDONTWRITEBYTECODE="1",
                PYTHONSAFEPATH="1", ZOHW_MUTATE_SHADOW=str(shadow))


def run_tests(shadow, tests, timeout):
    env = shadow_env(shadow)
    argv = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
            "-o", "addopts=", *tests]
    start = time.monotonic()
    try:
        r = subprocess.run(argv, cwd=shadow, env=env, capture_output=True, text=True,
                           timeout=timeout)
        return r.returncode, time.monotonic() - start, r.stdout[-2000:]
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - start, ""


def check_shadow_imports(shadow):
    """Every package (and a module of each) is imported from the shadow, not the working tree."""
    code = ("import os, zohw, zohw.hw, zohw.sw, zohw.sim, zohw.sources, zohw.hw.engine, "
            "zohw.sw.perturb\n"
            "for m in (zohw, zohw.hw, zohw.sw, zohw.sim, zohw.sources, zohw.hw.engine, "
            "zohw.sw.perturb):\n"
            "    print(os.path.abspath(m.__file__))")
    out = subprocess.run([sys.executable, "-c", code], cwd=shadow, env=shadow_env(shadow),
                         capture_output=True, text=True, check=True).stdout.split()
    outside = [p for p in out if not p.startswith(str(shadow))]
    if len(out) != 7 or outside:
        raise SystemExit(f"mutate: the shadow tree is not imported first ({' '.join(out)})")


def expand_targets(files=None):
    out = {}
    for pattern, tests in TARGETS.items():
        for path in sorted(ROOT.glob(pattern)):
            rel = str(path.relative_to(ROOT))
            if path.name == "__init__.py":
                continue
            if files and rel not in files:
                continue
            out[rel] = tests
    return out


def _same_mutants(ms, survivors, rel):
    """The mutants of ``ms`` that are the survivors of ``rel`` in an earlier report: the same
    site index when its operator and original line still match (the file is unchanged there),
    else the site with that operator and original line nearest the old line number."""
    out = []
    for s in (s for s in survivors if s["file"] == rel):
        i = s.get("index")
        if i is not None and i < len(ms) and ms[i]["index"] == i and \
                (ms[i]["kind"], ms[i]["original"]) == (s["kind"], s["original"]):
            out.append(ms[i])
            continue
        same = [m for m in ms if (m["kind"], m["original"]) == (s["kind"], s["original"])
                and s.get("col", m["col"]) == m["col"]]
        if not same:
            print(f"mutate: {rel}:{s['line']} {s['kind']} no longer exists; skipped")
            continue
        out.append(min(same, key=lambda m: abs(m["line"] - s["line"])))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="mutate", description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="out/mutate.json", help="report path")
    ap.add_argument("--files", default=None, help="comma list of files (default: all targets)")
    ap.add_argument("--max-per-file", type=int, default=0,
                    help="at most N mutants per file, spread evenly over its sites (0: all)")
    ap.add_argument("--without", default="",
                    help="comma list of test files to leave out of every map (e.g. the score "
                         "before tests/test_known_answers.py)")
    ap.add_argument("--rerun", default=None, metavar="REPORT",
                    help="plant only the survivors of an earlier report (same file, operator and "
                         "original line) and run the current test map against them")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    if args.rerun:
        earlier = json.loads(Path(args.rerun).read_text())
        files = {s["file"] for s in earlier["survivors"]}
        args.files = ",".join(sorted(files)) or None
        if not files:
            raise SystemExit(f"mutate: error: {args.rerun} has no survivors to re-run")
    files = set(args.files.split(",")) if args.files else None
    without = set(filter(None, args.without.split(",")))
    targets = {rel: [t for t in tests if t not in without]
               for rel, tests in expand_targets(files).items()}
    if not targets:
        raise SystemExit(f"mutate: error: no target file matches {args.files!r}")

    plan = []
    for rel, tests in targets.items():
        ms = list(mutants((ROOT / rel).read_text()))
        if args.rerun:
            plan += [(rel, tests, m) for m in _same_mutants(ms, earlier["survivors"], rel)]
            continue
        if args.max_per_file and len(ms) > args.max_per_file:
            step = len(ms) / args.max_per_file
            ms = [ms[int(i * step)] for i in range(args.max_per_file)]
        plan += [(rel, tests, m) for m in ms]

    tmp = Path(tempfile.mkdtemp(prefix="zohw-mutate-"))
    shadows = [make_shadow(ROOT, tmp / f"s{i}") for i in range(max(1, args.jobs))]
    check_shadow_imports(shadows[0])
    baseline = {}
    groups = sorted({tuple(t) for _, t, _ in plan})

    def clean(n):
        rc, secs, out = run_tests(shadows[n % len(shadows)], list(groups[n]), timeout=1800)
        if rc != 0:
            raise SystemExit(f"mutate: the clean tests fail: {' '.join(groups[n])}\n{out}")
        baseline[groups[n]] = secs

    with ThreadPoolExecutor(max_workers=len(shadows)) as pool:   # clean runs write nothing
        list(pool.map(clean, range(len(groups))))
    print(f"mutate: {len(plan)} mutants in {len(targets)} files, {args.jobs} jobs "
          f"(clean runs {', '.join(f'{v:.0f}s' for v in baseline.values())})", flush=True)

    results = [None] * len(plan)
    free = list(shadows)
    lock = threading.Lock()

    def one(i):
        shadow = free.pop()
        rel, tests, m = plan[i]
        path = shadow / rel
        original = path.read_text()
        try:
            path.write_text(m["text"])
            rc, secs, _ = run_tests(shadow, tests, timeout=max(60, 3 * baseline[tuple(tests)]))
        finally:
            path.write_text(original)
            free.append(shadow)
        killed = rc != 0
        results[i] = {"file": rel, "line": m["line"], "col": m["col"], "kind": m["kind"],
                      "index": m["index"],
                      "original": m["original"], "killed": killed,
                      "by": "timeout" if rc == "timeout" else ("tests" if killed else None),
                      "seconds": round(secs, 1)}
        done = sum(r is not None for r in results)
        print(f"\rmutate: {done}/{len(plan)} run, "
              f"{sum(1 for r in results if r and not r['killed'])} survived", end="", flush=True)

    start = time.monotonic()
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)

    def write_report(final):
        """The report of the mutants run so far (``complete`` once all have run): a long run
        that is stopped keeps what it measured."""
        done = [r for r in results if r is not None]
        by_file = {}
        for r in done:
            f = by_file.setdefault(r["file"], {"planted": 0, "killed": 0})
            f["planted"] += 1
            f["killed"] += r["killed"]
        for f in by_file.values():
            f["score"] = round(f["killed"] / f["planted"], 3)
        planted, killed = len(done), sum(r["killed"] for r in done)
        report = {"planted": planted, "killed": killed,
                  "score": round(killed / max(1, planted), 3), "complete": final,
                  "of": len(plan), "by_file": by_file,
                  "survivors": [r for r in done if not r["killed"]],
                  "operators": sorted({k for _, k in SWAPS.values()} | {"const", "unary"}),
                  "max_per_file": args.max_per_file, "rerun": args.rerun,
                  "without": sorted(without), "tests": dict(targets),
                  "results": done, "seconds": round(time.monotonic() - start)}
        with lock:
            tmp_out = out.with_suffix(".tmp")
            tmp_out.write_text(json.dumps(report, indent=2) + "\n")
            tmp_out.replace(out)
        return report

    def run_one(i):
        one(i)
        write_report(False)

    try:
        with ThreadPoolExecutor(max_workers=len(shadows)) as pool:
            list(pool.map(run_one, range(len(plan))))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    report = write_report(True)
    planted, killed = report["planted"], report["killed"]
    print(f"mutate: {killed}/{planted} killed (score {report['score']:.2f}), "
          f"{planted - killed} survivors; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
