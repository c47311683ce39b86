"""The one-factor-at-a-time accuracy diagnosis (:mod:`zohw.accuracy.diagnose`), tiny data."""

from pathlib import Path

import torch

from zohw.accuracy import diagnose
from zohw.sw.reference import train_reference

TINY3 = str(Path(__file__).parent / "data" / "tiny3.npz")
MODEL = {"dataset": TINY3, "input_pool": 1, "hidden": ()}


def test_variants_change_one_factor_of_the_baseline():
    cfg = {n: diagnose.variant_config(n, MODEL, 10, 1, 10) for n in
           ("adc9", "adc10", "adc11", "adc9-range", "lr14", "scale2", "wb16")}
    # the baseline: 9 of the 128-row tile's 11 bits, 2 LSBs dropped
    assert (cfg["adc9"].cim.adc_bits, cfg["adc9"].cim.adc_shift) == (9, 2)
    assert cfg["adc10"].cim.adc_shift == 1 and cfg["adc11"].cim.adc_exact
    assert cfg["adc9-range"].cim.adc_shift == 0 and cfg["adc9-range"].cim.adc_can_clip
    assert cfg["lr14"].lr_shift == 14 and cfg["lr14"].cim == cfg["adc9"].cim
    assert (cfg["scale2"].eps_shift, cfg["scale2"].logit_shift) == (3, 10)
    assert cfg["wb16"].cim.weight_bits == 16 and cfg["wb16"].cim.adc_bits == 9
    # every float reference names no reference itself; every golden variant names a float one
    for name, (kind, _, _, ref) in diagnose.VARIANTS.items():
        assert (ref is None) if kind != "golden" else (ref is None or
                                                       diagnose.VARIANTS[ref][0] != "golden")


def test_weights_times_two_is_float_mezo_at_half_the_step():
    """The documented equivalence of ``scale2``: in float, ε × 2 with logit_shift + 1 trains
    exactly twice the weights of lr_shift + 1 (powers of two commute with float rounding)."""
    a = train_reference(diagnose.variant_config("scale2", MODEL, 40, 3, 40), "float-gauss")
    b = train_reference(diagnose.variant_config("float-lr14", MODEL, 40, 3, 40), "float-gauss")
    assert torch.equal(a.weights, 2 * b.weights) and a.test_accuracy == b.test_accuracy
    # and not with the default step (the check can fail)
    c = train_reference(diagnose.variant_config("float", MODEL, 40, 3, 40), "float-gauss")
    assert not torch.equal(a.weights, 2 * c.weights)


def test_diagnosis_runs_renders_and_rejects_bad_variants(tmp_path, capsys):
    out = tmp_path / "diag"
    rc = diagnose.main(["--dataset", TINY3, "--variants", "float,adc9,adc11", "--steps", "30",
                        "--seeds", "1,2", "--jobs", "1", "--quiet", "--out", str(out)])
    assert rc == 0
    text = (tmp_path / "diag.md").read_text()
    assert "| `adc11` (hardware) |" in text and "(`float`)" in text and "6 trainings" in text
    assert "wrote" in capsys.readouterr().out
    rc = diagnose.main(["--variants", "adc9,nope", "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "'nope'" in err[0]
    assert not list(tmp_path.glob("bad*"))
