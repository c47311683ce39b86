"""Float references, the ``zohw train`` command and the accuracy-study renderer."""

import json
import subprocess
import sys

import pytest
import torch

from zohw.cli import main
from zohw.sw.data import load_digits_split
from zohw.sw.reference import train_reference
from zohw.sw.train import RESULT_KEYS, train_golden
from zohw.train_config import TrainerConfig


@pytest.fixture(scope="module")
def data():
    return load_digits_split(4)


def test_references_are_sane(data):
    cfg = TrainerConfig(steps=150, eval_every=150)
    fo = train_reference(cfg, "fo-sgd", data)
    assert fo.final_test_accuracy > 0.85                 # backprop learns digits fast
    mezo = train_reference(cfg, "float-gauss", data)
    loss = mezo.step_loss()
    assert float(loss[-30:].mean()) < float(loss[:30].mean())
    again = train_reference(cfg, "float-gauss", data)
    assert torch.equal(mezo.weights, again.weights)       # seeded
    # same initial weights and batches as the golden model: step 0 agrees up to quantisation
    gold = train_golden(cfg.replace(steps=1, eval_every=1), data)
    assert gold.test_accuracy[0] == mezo.test_accuracy[0]
    with pytest.raises(ValueError, match="reference must be one of float-gauss, fo-sgd"):
        train_reference(cfg, "adam", data)


def test_mlp_reference_runs(data):
    cfg = TrainerConfig(model="mlp", steps=60, eval_every=60)
    fo = train_reference(cfg, "fo-sgd", data)
    assert fo.final_test_accuracy > 0.3
    mezo = train_reference(cfg, "float-gauss", data)
    assert mezo.weights.shape == (cfg.params,)


def test_train_command_json_and_plot(tmp_path, capsys):
    out = tmp_path / "r.json"
    png = tmp_path / "r.png"
    rc = main(["train", "--steps", "40", "--eval-every", "20", "--batch", "8", "--quiet",
               "--reference", "float-gauss", "--json", str(out), "--plot", str(png)])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert RESULT_KEYS == ("mode", "strategy", "steps", "test_accuracy", "train_loss",
                           "mismatches", "cycles_per_step", "predicted_cycles_per_step")
    for key in RESULT_KEYS:
        assert key in doc
    assert doc["mode"] == "golden" and doc["strategy"] == "pezo-otf" and doc["steps"] == 40
    assert len(doc["train_loss"]) == 40 and doc["mismatches"] == 0
    assert doc["cycles_per_step"] == doc["predicted_cycles_per_step"] == 2753 - 2 * 24 * 12
    assert doc["accuracy_curve"]["steps"] == [0, 20, 40]
    assert doc["write_counts"]["max"] <= 120
    assert "float-gauss" in doc["references"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, message", [
    (["--loss", "l2"], "zohw train: error: loss must be one of hinge, mse, not 'l2'"),
    (["--steps", "many"], "zohw train: error: steps must be an integer, not 'many'"),
    (["--rng", "foo"], "zohw train: error: strategy must be one of"),
    (["--eps-shift", "1"], "zohw train: error: eps_shift must leave room"),
    (["--reference", "adam"], "zohw train: error: reference must be one of"),
    (["--write-lanes", "0"], "zohw train: error: write_lanes must be an integer from 1 to 64"),
    (["--write-lanes", "2"], "zohw train: error: cim.write_lanes must be 1"),
    (["--fo-lr", "-1"], "zohw train: error: fo_lr must be a positive number"),
])
def test_train_command_errors_exit_2(tmp_path, capsys, argv, message):
    rc = main(["train", *argv, "--json", str(tmp_path / "x.json")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "x.json").exists()


def test_train_help_comes_from_the_config_and_the_loss_registry(capsys):
    from zohw.losses import REGISTRY
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name, loss in REGISTRY.items():
        assert " ".join(loss.help.split()) in out
    assert f"{', '.join(REGISTRY)}; default hinge" in out
    assert "--eval-every STEPS" in out and "default 500" in out


def test_train_console_script_exit_code(tmp_path):
    r = subprocess.run([sys.executable, "-m", "zohw.cli", "train", "--loss", "l2", "--json",
                        str(tmp_path / "x.json")], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_train_cosim_end_to_end(tmp_path):
    """``--cosim`` runs the Verilated trainer and compares every step with the golden model."""
    out = tmp_path / "cosim.json"
    rc = main(["train", "--cosim", "--steps", "6", "--eval-every", "3", "--quiet",
               "--json", str(out)])
    doc = json.loads(out.read_text())
    assert rc == 0
    for key in ("mode", "strategy", "steps", "test_accuracy", "train_loss", "mismatches",
                "cycles_per_step", "predicted_cycles_per_step"):
        assert key in doc
    assert doc["mode"] == "cosim" and doc["steps"] == 6 and doc["mismatches"] == 0
    assert len(doc["train_loss"]) == 6
    assert doc["cycles_per_step"] == doc["predicted_cycles_per_step"]
