"""The accuracy study (``zohw.accuracy``): a tiny run renders its table, plot and README section;
the command line reports bad input in one line."""

import pytest

from zohw import accuracy
from zohw.config import STRATEGIES


def test_study_renders_and_updates_readme(tmp_path):
    study = accuracy
    report = study.run_study(steps=8, seeds=(1, 2), jobs=1, eval_every=4, progress=False)
    m = report["summary"]["methods"]
    assert set(m) == set(STRATEGIES) | {"float-gauss", "fo-sgd"}
    assert {"gauss-clt", "gauss-icdf", "uniform", "rademacher", "pezo-shift", "pezo-block",
            "pezo-otf"} <= set(m)
    assert len(m["pezo-otf"]["per_seed"]) == 2 and len(m["fo-sgd"]["per_seed"]) == 1
    md = study.render_markdown(report)
    assert "| `pezo-shift` (PeZO) | hardware (golden) |" in md
    assert "| `gauss-clt` | hardware (golden) |" in md          # not in the PeZO family
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- accuracy:begin -->\nold\n<!-- accuracy:end -->\ntail\n")
    assert study.update_readme(readme, report)
    text = readme.read_text()
    assert "\nold\n" not in text and text.startswith("intro\n") and text.endswith("tail\n")
    assert "float MeZO" in text
    assert not study.update_readme(readme, report)        # idempotent
    bad = tmp_path / "bad.md"
    bad.write_text("no markers\n")
    with pytest.raises(ValueError, match="must contain <!-- accuracy:begin -->"):
        study.update_readme(bad, report)
    study.plot_study(tmp_path / "a.png", report)
    assert (tmp_path / "a.png").stat().st_size > 1000


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "1,x"], "seeds must be comma-separated integers, not '1,x'"),
    (["--steps", "0"], "steps must be at least 1, not 0"),
    (["--jobs", "0"], "jobs must be at least 1, not 0"),
])
def test_bad_input_one_line_exit_2(tmp_path, argv, message, capsys):
    assert accuracy.main(["--out", str(tmp_path / "acc"), "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert err == f"python -m zohw.accuracy: error: {message}\n"
    assert list(tmp_path.iterdir()) == []


def test_render_only_needs_the_json(tmp_path, capsys):
    assert accuracy.main(["--out", str(tmp_path / "none"), "--render-only", "--quiet"]) == 2
    assert "none.json" in capsys.readouterr().err


def test_knob_variants_are_rows_of_their_own(tmp_path):
    """``knobs`` trains each strategy that declares the knob once per value; the others once."""
    report = accuracy.run_study(steps=4, seeds=(1,), jobs=1, eval_every=2, progress=False,
                                knobs={"clt_k": [8, 2]})
    m = report["summary"]["methods"]
    assert "gauss-clt" not in m
    assert m["gauss-clt:clt_k=8"]["knobs"] == {"clt_k": 8}
    assert m["gauss-clt:clt_k=2"]["strategy"] == "gauss-clt"
    assert {"gauss-icdf", "pezo-otf"} <= set(m)
    assert len(report["runs"]) == len(STRATEGIES) + 1 + 1 + 1
    md = accuracy.render_markdown(report)
    k2, k8 = md.index("| `gauss-clt` (K=2) |"), md.index("| `gauss-clt` (K=8) |")
    assert k2 < k8 < md.index("| `gauss-icdf` |") < md.index("| float MeZO")
    accuracy.plot_study(tmp_path / "k.png", report)
    assert (tmp_path / "k.png").stat().st_size > 1000


def test_parse_knobs():
    assert accuracy.study.parse_knobs(["clt_k=2,8,2"]) == {"clt_k": [2, 8]}
    with pytest.raises(ValueError, match="knob must be NAME=V1,V2,… with NAME one of clt_k"):
        accuracy.study.parse_knobs(["depth=2"])
    with pytest.raises(ValueError, match="knob clt_k must be a list of int values, not 'x'"):
        accuracy.study.parse_knobs(["clt_k=2,x"])
    with pytest.raises(ValueError, match="clt_k must be one of 2, 4, 8, 12, not 3"):
        accuracy.run_study(steps=2, seeds=(1,), jobs=1, progress=False, knobs={"clt_k": [3]})


# -- models, data sets, the study at scale, RTL verification ----------------------------------

def test_parse_model():
    from zohw.accuracy.scale import parse_model
    assert parse_model("linear") == {"hidden": (), "input_pool": 1}
    assert parse_model("mlp:32/pool2") == {"hidden": (32,), "input_pool": 2}
    assert parse_model("mlp:8,4") == {"hidden": (8, 4), "input_pool": 1}
    for bad in ("cnn", "mlp:", "mlp:x", "mlp:0", "linear/pool", "linear/2"):
        with pytest.raises(ValueError, match=f"model must be linear or mlp:H"):
            parse_model(bad)


def _fake_cosim(fail_strategy=None):
    """A stand-in for the RTL co-simulation: passes, or reports mismatches for one strategy
    (the rendering must show a failed row as failed)."""
    def cosim(cfg, golden):
        bad = cfg.engine.strategy == fail_strategy
        return {"passed": not bad, "mismatches": 5 if bad else 0, "steps": cfg.steps,
                "cycles_per_step": 926, "predicted_cycles_per_step": 926}
    return cosim


def test_verify_rtl_column(monkeypatch):
    from zohw.accuracy import study
    monkeypatch.setattr(study, "_cosim", _fake_cosim(fail_strategy="gauss-clt"))
    report = study.run_study(steps=4, seeds=(3, 4), jobs=1, eval_every=2, progress=False,
                             strategies=["pezo-otf", "gauss-clt"], verify_rtl=True)
    runs = report["runs"]
    verified = [(r["strategy"], r["seed"]) for r in runs if "rtl" in r]
    assert sorted(verified) == [("gauss-clt", 3), ("pezo-otf", 3)]   # the first seed of each row
    m = report["summary"]["methods"]
    assert m["pezo-otf"]["verified_rtl"] == {"passed": True, "seeds": [3], "mismatches": 0,
                                             "steps": 4}
    assert m["gauss-clt"]["verified_rtl"]["passed"] is False
    md = study.render_markdown(report)
    assert "| verified in RTL over the full run |" in md
    assert "yes: seed 3, 4 steps, 0 mismatches |" in md
    assert "**FAILED**: seed 3, 5 mismatches |" in md
    plain = study.run_study(steps=2, seeds=(1,), jobs=1, progress=False,
                            strategies=["pezo-otf"])
    assert "rtl" not in plain["runs"][0]
    assert "| not run |" in study.render_markdown(plain)


def test_study_on_a_user_npz_and_an_mlp(tmp_path):
    import numpy as np
    from zohw import accuracy
    rng = np.random.default_rng(1)
    x = rng.integers(0, 9, size=(60, 5))
    y = np.arange(60) % 3
    path = tmp_path / "small.npz"
    np.savez(path, x=x, y=y)
    report = accuracy.run_study(steps=3, seeds=(1, 2), jobs=1, eval_every=3, progress=False,
                                strategies=["pezo-otf"],
                                model={"dataset": str(path), "input_pool": 1, "hidden": (4,)})
    assert report["dataset"]["name"] == str(path) and report["dataset"]["n_test"] == 12
    assert report["model"]["shape"] == "5-4-3" and report["model"]["params"] == 6 * 4 + 5 * 3
    # the MLP starts from a seeded uniform init: first-order SGD runs once per seed
    assert len(report["summary"]["methods"]["fo-sgd"]["per_seed"]) == 2
    md = accuracy.render_markdown(report)
    assert "MLP 5-4-3" in md and "6 × 4 + 5 × 3 weights" in md and "12 held-out" in md


def test_scale_report_cost_table_and_plot(tmp_path, capsys):
    from zohw import accuracy
    out = tmp_path / "scale"
    rc = accuracy.main(["--dataset", "digits", "--model", "linear", "--model", "mlp:8/pool2",
                        "--strategies", "pezo-otf", "--steps", "4", "--seeds", "1,2",
                        "--jobs", "1", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert printed.strip().splitlines()[-1].startswith("python -m zohw.accuracy: 2 model(s), ")
    md = (tmp_path / "scale.md").read_text()
    assert "| linear 64-10 | 650 | 128x32 | 1×1 | 1 | 16 % | 16 |" in md
    assert "| mlp 16-8-10 (pooled 2×2) | 226 | 128x32 | 1×1 + 1×1 | 2 |" in md
    assert "### linear 64-10" in md and "### mlp 16-8-10 (pooled 2×2)" in md
    assert "Second half of the run" in md
    assert (tmp_path / "scale.png").read_bytes()[:4] == b"\x89PNG"
    import json
    doc = json.loads((tmp_path / "scale.json").read_text())
    assert doc["kind"] == "scale" and len(doc["models"]) == 2
    # re-rendering from the JSON gives the same Markdown
    assert accuracy.main(["--out", str(out), "--render-only", "--quiet"]) == 0
    assert (tmp_path / "scale.md").read_text() == md


def test_combine_single_model_reports(tmp_path):
    """Single-model studies of one data set (different steps allowed) combine into the study
    at scale without training."""
    import json
    from zohw import accuracy
    for name, extra in (("lin", ["--steps", "4"]), ("mlp", ["--hidden", "6", "--steps", "2"])):
        assert accuracy.main(["--strategies", "pezo-otf", "--seeds", "1", "--jobs", "1",
                              "--quiet", "--out", str(tmp_path / name), *extra]) == 0
    out = tmp_path / "both"
    assert accuracy.main(["--combine", str(tmp_path / "lin.json"), "--combine",
                          str(tmp_path / "mlp.json"), "--out", str(out), "--quiet"]) == 0
    md = (tmp_path / "both.md").read_text()
    assert md.startswith("## Digits: zeroth-order training at scale\n")
    assert "### linear 64-10, 4 steps" in md and "### mlp 64-6-10, 2 steps" in md
    from zohw.hw.plan import TrainerPlan
    from zohw.train_config import TrainerConfig
    cycles = TrainerPlan(TrainerConfig()).cycles_per_step  # the one cycle model
    assert f"| 16 | {cycles:,} |" in md                  # write lanes, cycles/step of linear
    assert json.loads((tmp_path / "both.json").read_text())["steps"] == [2, 4]
    other = tmp_path / "other.npz"
    import numpy as np
    np.savez(other, x=np.arange(40).reshape(20, 2) % 7, y=np.arange(20) % 2)
    assert accuracy.main(["--dataset", str(other), "--strategies", "pezo-otf", "--seeds", "1",
                          "--steps", "2", "--jobs", "1", "--quiet",
                          "--out", str(tmp_path / "o")]) == 0
    assert accuracy.main(["--combine", str(tmp_path / "lin.json"), "--combine",
                          str(tmp_path / "o.json"), "--out", str(tmp_path / "x"),
                          "--quiet"]) == 2


@pytest.mark.parametrize("argv, message", [
    (["--model", "linear", "--hidden", "8"], "--hidden and --input-pool cannot be used with "
                                             "--model"),
    (["--model", "cnn"], "model must be linear or mlp:H"),
    (["--strategies", "pezo-otf,foo"], "strategy must be one of"),
    (["--dataset", "cifar"], "dataset must be digits, mnist-5k or a path ending in .npz, "
                             "not 'cifar'"),
    (["--input-pool", "3"], "dataset digits: input_pool 3 must divide the image side 8"),
    (["--model", "linear", "--model", "mlp:4", "--readme", "README.md"],
     "--readme takes the single-model table"),
])
def test_study_options_one_line_exit_2(tmp_path, argv, message, capsys):
    from zohw import accuracy
    assert accuracy.main(["--out", str(tmp_path / "acc"), "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"python -m zohw.accuracy: error: {message}") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
