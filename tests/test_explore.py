"""``zohw explore``: grid parsing and expansion, bad grids, the task cache (hits, extended and
interrupted sweeps), cancellation of queued work, Pareto fronts and the outputs.

Most tests run the stand-in tasks of ``explore_fakes`` (instant, deterministic) so that the
machinery is tested without Yosys or training; ``test_real_tasks_agree_with_the_flows`` runs
the real task functions once on a tiny engine and compares them with the flows they wrap.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import explore_fakes
from zohw.config import EngineConfig
from zohw.errors import UsageError
from zohw.explore import tasks as explore_tasks
from zohw.explore.executors import PoolExecutor, SerialExecutor, make_executor
from zohw.explore.grid import AXES, Grid, expand, parse_axis
from zohw.explore.report import (pareto, render_markdown, verdict, write_csv, write_plots)
from zohw.explore.runner import ROW_METRICS, explore
from zohw.strategies import KNOBS, REGISTRY, STRATEGIES

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def zohw_main(monkeypatch):
    """``zohw.cli.main`` with the explore subcommand (registered by the lead in
    zohw/commands; added here while it is not)."""
    from zohw import cli

    if "explore" not in cli.COMMANDS:
        monkeypatch.setattr(cli, "COMMANDS", (*cli.COMMANDS, "explore"))
    return cli.main


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    """Stand-in tasks, a call log and a fresh cache."""
    log = tmp_path / "calls.log"
    monkeypatch.setenv("ZOHW_FAKE_LOG", str(log))
    monkeypatch.setenv("ZOHW_CACHE", str(tmp_path / "cache"))
    for kind, spec in explore_fakes.FAKES.items():
        monkeypatch.setitem(explore_tasks.EVALUATORS, kind, spec)

    def calls():
        return log.read_text().split() if log.exists() else []
    return calls


def _grid(strategies=("rademacher", "pezo-otf"), lanes=(4, 16), targets=("xilinx7",),
          seeds=(1, 2), steps=20, **axes):
    return Grid(list(strategies), {"lanes": list(lanes), **axes}, list(targets), list(seeds),
                steps).check()


def _run(grid, cache_dir, executor=None, **kw):
    return explore(grid, executor or SerialExecutor(), cache_dir=cache_dir, progress=False,
                   **kw)


# -- the grid -----------------------------------------------------------------------------------

def test_axes_come_from_the_registry_and_the_config():
    assert set(KNOBS) <= set(AXES)
    assert {"lanes", "width", "pool"} <= set(AXES)
    assert set(AXES) <= set(EngineConfig.fields_meta())


def test_every_axis_is_an_option(zohw_main, capsys):
    with pytest.raises(SystemExit):
        zohw_main(["explore", "--help"])
    text = capsys.readouterr().out
    for axis in AXES:
        flag = EngineConfig.fields_meta()[axis].flag or "--" + axis.replace("_", "-")
        assert flag in text, flag
    for option in ("--rng", "--target", "--steps", "--seeds", "--scheduler", "--json",
                   "--csv", "--markdown", "--plot-dir", "--dataset"):
        assert option in text


def _two_values(knob, owner):
    """Two values of an integer knob that ``owner`` accepts at 4 and 16 lanes."""
    good = []
    for v in range(0, 64):
        try:
            for lanes in (4, 16):
                EngineConfig(strategy=owner, lanes=lanes, **{knob: v})
        except Exception:
            continue
        good.append(v)
        if len(good) == 2:
            return good
    return None


def test_a_knob_varies_only_its_strategies():
    cases = [(k, owners[0], _two_values(k, owners[0])) for k, (knob, owners) in KNOBS.items()
             if knob.kind is int and len(owners) < len(STRATEGIES)]
    knob, owner, values = next(c for c in cases if c[2])
    other = next(s for s in STRATEGIES
                 if s not in KNOBS[knob][1] and REGISTRY[s].min_lanes <= 4)
    grid = Grid([owner, other], {"lanes": [4, 16], knob: values}, ["ice40"], [1], 10).check()
    points, skipped = expand(grid)
    assert not skipped
    per = {s: [p.engine for p in points if p.engine.strategy == s] for s in (owner, other)}
    assert len(per[owner]) == 4 and len(per[other]) == 2
    assert {(e.lanes, getattr(e, knob)) for e in per[owner]} == {
        (lanes, v) for lanes in (4, 16) for v in values}


def test_points_are_engines_times_targets_and_invalid_ones_are_skipped():
    lanes1 = [s for s in STRATEGIES if REGISTRY[s].min_lanes > 1]
    assert lanes1, "a strategy needing two lanes makes lanes=1 a partial value"
    grid = Grid(list(STRATEGIES), {"lanes": [1, 4]}, ["xilinx7", "asic"], [1], 10).check()
    points, skipped = expand(grid)
    assert {s["strategy"] for s in skipped} >= set(lanes1)
    assert all(s["lanes"] == 1 and "lanes" in s["reason"] for s in skipped
               if s["strategy"] in lanes1)
    assert len(points) == 2 * (2 * len(STRATEGIES) - len(skipped))
    # a pool strategy is synthesized with the target's pool read port, trained with one engine
    for p in points:
        if REGISTRY[p.engine.strategy].pool:
            from zohw.resources.targets import TARGETS
            assert p.synth_engine.pool_read == TARGETS[p.target].pool_read
            assert p.synth_engine.replace(pool_read=p.engine.pool_read) == p.engine


def test_parse_axis_types():
    assert parse_axis("lanes", "4, 16,4") == [4, 16]
    assert parse_axis("source", "xorshift32") == ["xorshift32"]
    with pytest.raises(UsageError, match="lanes must be a comma list of integers"):
        parse_axis("lanes", "4,x")


# -- bad grids: one line, exit 2, before any work ----------------------------------------------

BAD_GRIDS = [
    (["--rng", "rademacher", "--no-such-knob", "3"], "unrecognized arguments: --no-such-knob"),
    (["--rng", "rademacher", "--lanes", ""], "lanes must be a comma list"),
    (["--rng", "rademacher", "--lanes", "4,,16"], "lanes must be a comma list"),
    (["--rng", "rademacher", "--seeds", ""], "seeds must be a comma list"),
    (["--rng", "rademacher", "--clt-k", "4"], "clt_k applies to gauss-clt"),
    (["--rng", "rademacher", "--pool", "64"], "pool applies to"),
    (["--rng", "rademacher", "--target", "virtex"], "target must be a comma list of"),
    (["--rng", "nosuch"], "rng must be 'all' or a comma list"),
    (["--rng", "rademacher", "--lanes", "0"], "lanes=0 fits none of the chosen strategies "
                                             "(lanes must be an integer from 1 to 64, not 0)"),
    (["--rng", "pezo-otf", "--lanes", "1"], "lanes=1 fits none"),
    (["--rng", "rademacher", "--seeds", "1,x"], "seeds must be integers"),
    (["--rng", "rademacher", "--steps", "0"], "steps"),
    (["--rng", "rademacher", "--jobs", "0"], "jobs must be at least 1"),
    (["--rng", "rademacher", "--scheduler", "localhost:8786"], "scheduler must be an address"),
]


@pytest.mark.parametrize("argv,message", BAD_GRIDS, ids=[" ".join(a[2:]) or a[1]
                                                         for a, _ in BAD_GRIDS])
def test_bad_grid_is_one_line_before_work(zohw_main, monkeypatch, tmp_path, capsys, argv,
                                          message):
    started = []
    monkeypatch.setattr("zohw.explore.runner.explore", lambda *a, **k: started.append(1))
    out = tmp_path / "x.json"
    extra = [] if "--target" in argv else ["--target", "ice40"]
    try:
        code = zohw_main(["explore", *argv, *extra, "--json", str(out)])
    except SystemExit as exc:               # argparse's own errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("zohw explore: error: "), err
    assert message in err
    assert not started and not out.exists()


def test_a_valid_grid_reaches_the_work(zohw_main, monkeypatch, tmp_path):
    """The control of the table above: the same command line, valid, starts the work."""
    started = []

    def stub(*a, **k):
        started.append(a[0])
        raise KeyboardInterrupt
    monkeypatch.setattr("zohw.explore.runner.explore", stub)
    code = zohw_main(["explore", "--rng", "rademacher,gauss-clt", "--clt-k", "2,4",
                      "--target", "ice40", "--json", str(tmp_path / "x.json"), "--jobs", "1"])
    assert code == 130 and len(started) == 1
    assert started[0].axes == {"clt_k": [2, 4]}


# -- cache ---------------------------------------------------------------------------------------

def test_second_run_is_all_cache_hits(fakes, tmp_path):
    grid = _grid()
    first = _run(grid, tmp_path / "c")
    n_points = 2 * 2            # strategies x lanes, one target
    n_tasks = n_points * (1 + 1 + 2)   # synth + power + 2 seeds per engine
    assert first["tasks"] == {**first["tasks"], "total": n_tasks, "computed": n_tasks,
                              "cached": 0}
    assert len(fakes()) == n_tasks
    second = _run(grid, tmp_path / "c")
    assert len(fakes()) == n_tasks                     # nothing ran again
    assert second["tasks"]["computed"] == 0 and second["tasks"]["cached"] == n_tasks
    assert second["rows"] == first["rows"]


def test_extended_sweep_computes_only_what_is_new(fakes, tmp_path):
    _run(_grid(lanes=(4,), seeds=(1,)), tmp_path / "c")
    before = len(fakes())
    assert before == 2 * 3
    report = _run(_grid(lanes=(4, 16), seeds=(1, 2), targets=("xilinx7", "ice40")),
                  tmp_path / "c")
    # new: lanes 16 (2 engines x (2 synth + power + 2 seeds)), lanes 4: ice40 synth and seed 2
    new = 2 * (2 + 1 + 2) + 2 * (1 + 1)
    assert len(fakes()) - before == new == report["tasks"]["computed"]
    assert report["tasks"]["cached"] == 2 * 3


def test_cache_key_changes_with_inputs_tools_and_evaluator():
    e = EngineConfig(strategy="rademacher", lanes=4)
    versions = {"synth": {"zohw": "a", "yosys": "1"}, "train": {"zohw": "a", "torch": "2"}}
    base = explore_tasks.task_key(explore_tasks.synth_task(e, "ice40"), versions)
    assert base == explore_tasks.task_key(explore_tasks.synth_task(e, "ice40"), versions)
    assert base != explore_tasks.task_key(explore_tasks.synth_task(e, "xilinx7"), versions)
    assert base != explore_tasks.task_key(explore_tasks.synth_task(e.replace(lanes=8), "ice40"),
                                          versions)
    assert base != explore_tasks.task_key(explore_tasks.synth_task(e, "ice40"),
                                          {**versions, "synth": {"zohw": "a", "yosys": "2"}})
    assert base != explore_tasks.task_key(explore_tasks.synth_task(e, "ice40"), versions,
                                          "explore_fakes:fake_synth")
    t1 = explore_tasks.train_task(e, 1, 100)
    assert explore_tasks.task_key(t1, versions) != explore_tasks.task_key(
        explore_tasks.train_task(e, 2, 100), versions)
    assert explore_tasks.task_key(t1, versions) != explore_tasks.task_key(
        explore_tasks.train_task(e, 1, 101), versions)


def test_code_digest_covers_the_engine_and_not_the_reports():
    files = [p for root in explore_tasks._package_dirs() for p in root.rglob("*.py")]
    assert any(p.name == "engine.py" and p.parent.name == "hw" for p in files)
    digest = explore_tasks.code_digest()
    assert len(digest) == 16
    assert "explore" in explore_tasks._PRESENTATION


# -- interruption ------------------------------------------------------------------------------

def test_interrupted_sweep_keeps_finished_tasks(fakes, monkeypatch, tmp_path):
    grid = _grid()
    total = 4 * 4
    monkeypatch.setenv("ZOHW_FAKE_INTERRUPT_AT", "6")
    with pytest.raises(KeyboardInterrupt):
        _run(grid, tmp_path / "c")
    cached = list((tmp_path / "c").rglob("*.json"))
    assert len(cached) == 5                          # calls 1-5 finished, 6 was interrupted
    monkeypatch.delenv("ZOHW_FAKE_INTERRUPT_AT")
    report = _run(grid, tmp_path / "c")
    assert report["tasks"]["cached"] == 5
    assert report["tasks"]["computed"] == total - 5
    assert len(report["rows"]) == 4


def test_pool_cancels_queued_work(fakes, monkeypatch, tmp_path):
    """A task raising KeyboardInterrupt (as the parent does on Ctrl-C): queued tasks never
    start and the workers are gone at once."""
    monkeypatch.setenv("ZOHW_FAKE_INTERRUPT_AT", "2")
    monkeypatch.setenv("ZOHW_FAKE_SLEEP", "0.5")
    grid = _grid(lanes=(4, 16, 32), seeds=(1, 2, 3))           # 6 points, 30 tasks
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        _run(grid, tmp_path / "c", PoolExecutor(2))
    assert time.monotonic() - t0 < 20
    started = len(fakes())
    assert started <= 10                               # not 30: the queue was cancelled
    time.sleep(1.5)                                    # > 2 sleeps: a live worker would log
    assert len(fakes()) == started                     # the workers are gone
    assert len(list((tmp_path / "c").rglob("*.json"))) < started


def test_sigterm_exits_143_and_keeps_finished_tasks(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS),
                                                        os.environ.get("PYTHONPATH", "")]),
           "ZOHW_CACHE": str(tmp_path / "cache"), "ZOHW_FAKE_LOG": str(tmp_path / "log"),
           "ZOHW_FAKE_SLEEP": "0.3"}
    out = tmp_path / "x.json"
    argv = ["explore", "--rng", "rademacher,pezo-otf", "--lanes", "4,16", "--target", "ice40",
            "--seeds", "1,2,3", "--steps", "10", "--json", str(out), "--jobs", "2", "--quiet"]
    proc = subprocess.Popen([sys.executable, str(TESTS / "explore_fakes.py"), *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cache = tmp_path / "cache" / "explore"
    deadline = time.monotonic() + 60
    while not list(cache.rglob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == "zohw explore: terminated (SIGTERM)"
    assert not out.exists()
    kept = len(list(cache.rglob("*.json")))
    assert 1 <= kept < 4 * 5
    done = subprocess.run([sys.executable, str(TESTS / "explore_fakes.py"),
                           *[a for a in argv if a != "--quiet"], "--quiet"], env={
                               **env, "ZOHW_FAKE_SLEEP": "0"}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    assert f"({4 * 5 - kept} computed, {kept} cached)" in summary
    assert str(out) in summary and out.exists()


# -- rows, fronts, outputs -------------------------------------------------------------------

def test_pareto_hand_example():
    # (cost, accuracy): b dominates c (cheaper, as accurate); d is dominated by a
    pts = {"a": (100, 0.90), "b": (50, 0.80), "c": (60, 0.80), "d": (120, 0.85),
           "e": (200, 0.95), "f": (None, 1.0)}
    names = list(pts)
    front = pareto(names, lambda n: pts[n][0], lambda n: pts[n][1])
    assert sorted(names[i] for i in front) == ["a", "b", "e"]


def test_rows_carry_the_contract(fakes, tmp_path, zohw_main):
    out = tmp_path / "out"
    out.mkdir()
    code = zohw_main(["explore", "--rng", "rademacher,pezo-otf,gauss-clt", "--lanes", "4,16",
                      "--target", "xilinx7,asic", "--seeds", "1,2", "--steps", "10",
                      "--json", str(out / "e.json"), "--csv", str(out / "e.csv"),
                      "--markdown", str(out / "e.md"), "--plot-dir", str(out / "plots"),
                      "--jobs", "1", "--quiet"])
    assert code == 0
    report = json.loads((out / "e.json").read_text())
    rows = report["rows"]
    assert len(rows) == 3 * 2 * 2
    for r in rows:
        for key in (*ROW_METRICS, "config_hash", "strategy", "target", "lanes", "width"):
            assert key in r, key
        assert r["config_hash"] == EngineConfig.from_dict(r["config"]).config_hash
        assert (r["lut"] is None) == (r["target"] == "asic")
        assert r["ge"] is not None
        seeds = r["test_accuracy_by_seed"]
        assert set(seeds) == {"1", "2"}
        assert r["test_accuracy"] == pytest.approx(sum(seeds.values()) / 2)
    # power relative to the cheapest Gaussian engine of the same P (gauss-clt is the only one)
    for r in rows:
        g = next(x for x in rows if x["strategy"] == "gauss-clt" and x["lanes"] == r["lanes"])
        assert r["power_rel"] == pytest.approx(r["power"] / g["power"], rel=1e-3)
    # each front is the set of non-dominated rows, checked pairwise here
    for t in ("xilinx7", "asic"):
        mine = [r for r in rows if r["target"] == t]
        cost = "ge" if t == "asic" else "lut"
        for r in mine:
            dominated = any(o[cost] <= r[cost] and o["test_accuracy"] >= r["test_accuracy"]
                            and (o[cost], o["test_accuracy"]) != (r[cost], r["test_accuracy"])
                            for o in mine)
            assert r["pareto_cost"] == (not dominated)
    csv_lines = (out / "e.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + len(rows)
    assert {"lut", "ge", "power", "test_accuracy", "config_hash",
            "test_accuracy_seed_1"} <= set(csv_lines[0].split(","))
    md = (out / "e.md").read_text()
    assert "Pareto front on xilinx7" in md and "Pareto front on asic" in md
    assert "plots/accuracy_vs_lut.png" in md
    for png in ("accuracy_vs_lut.png", "accuracy_vs_power.png"):
        assert (out / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_verdict_names_the_front_and_the_cheaper_strategy(fakes, tmp_path):
    grid = _grid(strategies=("gauss-clt", "rademacher", "pezo-otf"), lanes=(16,), seeds=(1,))
    report = _run(grid, tmp_path / "c")
    text = verdict(report)
    rows = {r["strategy"]: r for r in report["rows"]}
    front = [s for s, r in rows.items() if r["pareto_cost"]]
    assert front and all(f"`{s}`" in text.split(";")[0] for s in front)
    # stand-ins: pezo-otf is cheaper than gauss-clt and within 2 points; rademacher cheaper
    assert rows["pezo-otf"]["lut"] < rows["gauss-clt"]["lut"]
    assert "PeZO's reuse pays off with `pezo-otf`" in text
    saved = round(100 * (1 - rows["pezo-otf"]["lut"] / rows["gauss-clt"]["lut"]))
    assert f"{saved} % fewer LUT" in text
    assert "`rademacher` is cheaper still" in text
    assert "Verdict" in render_markdown(report)


def test_plots_have_words_units_and_legend(fakes, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report = _run(_grid(strategies=("gauss-clt", "pezo-otf"), targets=("ice40", "asic"),
                        seeds=(1,)), tmp_path / "c")
    figures = []
    monkeypatch.setattr(plt, "close", lambda fig: figures.append(fig))
    write_plots(report, tmp_path / "lut.png", tmp_path / "power.png")
    lut, power = figures
    assert "accuracy" in lut._suptitle.get_text().lower()
    labels = [ax.get_xlabel() for ax in lut.axes]
    assert any("LUT sites (count" in x for x in labels)
    assert any("NAND2 gate equivalents" in x for x in labels)
    assert lut.legends and "Pareto front" in [t.get_text() for t in lut.legends[0].texts]
    ax = power.axes[0]
    assert "power" in ax.get_title().lower()
    assert "NAND2-toggle units per cycle" in ax.get_xlabel()
    assert {"gauss-clt", "pezo-otf"} <= {t.get_text() for t in ax.get_legend().texts}


def test_make_executor_choices():
    assert isinstance(make_executor(None, 1), SerialExecutor)
    assert isinstance(make_executor(None, None), PoolExecutor)
    assert make_executor(None, None).workers == 2


# -- the real tasks ---------------------------------------------------------------------------

def test_real_tasks_agree_with_the_flows(tmp_path, monkeypatch):
    """The task functions return what the flows they wrap compute (tiny engine, 20 steps)."""
    from zohw.resources.cells import parse_stat
    from zohw.resources.synth import engine_verilog_checked, synth_verilog
    from zohw.sw.train import predicted_cycles_per_step, train_golden
    from zohw.train_config import TrainerConfig

    monkeypatch.setenv("ZOHW_CACHE", str(tmp_path / "cache"))
    e = EngineConfig(strategy="rademacher", lanes=4)
    got = explore_tasks.run_task(explore_tasks.train_task(e, 2, 20))["result"]
    cfg = TrainerConfig(engine=e, steps=20, seed=2)
    ref = train_golden(cfg)
    assert got["test_accuracy"] == ref.final_test_accuracy
    assert got["writes_per_weight"] == float(ref.write_counts.double().mean())
    assert got["cycles_per_step"] == predicted_cycles_per_step(cfg)
    syn = explore_tasks.run_task(explore_tasks.synth_task(e, "ice40"))["result"]
    counts = parse_stat(synth_verilog(engine_verilog_checked(e), "ice40")["stat"], "ice40")
    assert (syn["lut"], syn["ff"]) == (counts["lut_total"], counts["ff"])
    assert syn["ff"] >= 32            # at least the xorshift32 state


# -- the default study ------------------------------------------------------------------------

def test_default_study_writes_everything_and_the_readme_block(fakes, tmp_path, capsys):
    from zohw.explore.__main__ import DEFAULT_GRID, main

    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- explore:begin -->\nold\n<!-- explore:end -->\n\ntail\n")
    out = tmp_path / "docs" / "explore_default"
    out.parent.mkdir()
    assert main(["--default", "--out", str(out), "--readme", str(readme), "--jobs", "1",
                 "--quiet"]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    g = report["grid"]
    assert g["strategies"] == list(STRATEGIES) and g["axes"] == {"lanes": [4, 16, 64]}
    assert g["targets"] == ["xilinx7", "ice40", "asic"] and g["seeds"] == [1, 2, 3]
    n_engines = 3 * len(STRATEGIES) - len(report["skipped"])
    assert len(report["rows"]) == 3 * n_engines
    assert report["tasks"]["total"] == n_engines * (3 + 1 + 3)
    assert "--default" in report["command"] and "--lanes" in " ".join(DEFAULT_GRID)
    text = readme.read_text()
    assert "old" not in text and text.endswith("<!-- explore:end -->\n\ntail\n")
    assert "Pareto front on asic" in text and "**Verdict.**" in text
    assert "(docs/explore_default_lut.png)" in text
    for suffix in (".json", ".csv", ".md", "_lut.png", "_power.png"):
        assert Path(str(out) + suffix).exists(), suffix
    assert str(readme) in capsys.readouterr().out.strip().splitlines()[-1]
    # re-rendered from the JSON alone: the same Markdown
    md = out.with_suffix(".md").read_text()
    out.with_suffix(".md").unlink()
    assert main(["--out", str(out), "--render-only"]) == 0
    assert out.with_suffix(".md").read_text() == md


def test_default_study_refuses_a_readme_without_the_block(fakes, tmp_path, capsys):
    from zohw.explore.__main__ import main

    readme = tmp_path / "README.md"
    readme.write_text("# no block\n")
    assert main(["--default", "--out", str(tmp_path / "e"), "--readme", str(readme),
                 "--jobs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no <!-- explore:begin -->" in err
    assert not fakes() and not (tmp_path / "e.json").exists()
