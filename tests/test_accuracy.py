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
