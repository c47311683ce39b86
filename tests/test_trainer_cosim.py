"""The RTL ZO trainer (:class:`zohw.hw.trainer.ZOTrainer`) against the golden model.

Co-simulation (Verilator + cocotb, :mod:`zohw.sim.tb_trainer`): every step's L+, L− and g and,
at the end, every weight and every write count must equal :func:`zohw.sw.train.train_golden`;
the cycle counter must match the analytic cycle model within 10 %. A deliberately wrong golden
model must be reported (the check can fail). The generated Verilog must pass
``verilator --lint-only -Wall`` apart from the documented waivers.

The default-configuration tests share one Verilator build (cached by the Verilog's hash).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from zohw.cim_config import CIMConfig
from zohw.config import EngineConfig
from zohw.hw.trainer import TrainerPlan, trainer_verilog
from zohw.sim.build import verilator_lint
from zohw.sim.trainer import design_verilog, run_trainer_cosim
from zohw.sw.train import RESULT_KEYS, cycle_breakdown, predicted_cycles_per_step
from zohw.train_config import TrainerConfig

#: The default digits trainer (linear, hinge, ZO-SGD, pezo-otf engine).
DEFAULT = TrainerConfig()
#: Steps of the default co-simulation (the issue asks for at least 200).
STEPS = 200
#: A small user data set (tests/data/tiny3.npz: 3 classes, 12 features, 72 train samples).
TINY3 = str(Path(__file__).parent / "data" / "tiny3.npz")
#: A second datapath: a user .npz data set, a two-hidden-layer MLP (12-6-5-3) with ReLU, MSE
#: loss, ZO-SignSGD, decaying update shift, floor rounding, a saturating g (14 bits), uniform
#: init, another engine strategy with P = 8, two write lanes (tails and a layer starting
#: mid-transfer), 8x4 CIM tiles (2 x 2, 1 x 2 and 1 x 1 tiles per layer), bit-parallel CIM
#: inputs (3 cycles per vector, as many as the 3 classes), a 9-bit ADC that truncates 2 LSBs of
#: the tiles' 11-bit full scale — fewer steps.
VARIANT = TrainerConfig(dataset=TINY3, hidden=(6, 5), hidden_shift=6, loss="mse",
                        update="sign", rounding="floor", lr_shift=1, lr_decay=7, init="uniform",
                        init_bits=6, batch=4, logit_shift=6, target=16, diff_bits=14, seed=7,
                        write_lanes=2,
                        cim=CIMConfig(input_mode="parallel", tile="8x4", adc_bits=9),
                        engine=EngineConfig(strategy="gauss-clt", lanes=8))
VARIANT_STEPS = 24


def _summary(r):
    return {k: r.get(k) for k in ("mismatches", "first_mismatches", "cycles_per_step",
                                  "predicted_cycles_per_step", "sim_cycles_per_second",
                                  "build_seconds", "sim_seconds", "error")}


#: Checkpoint period of the default co-simulation: weights and write counts compared after
#: steps 64, 128 and 192 too.
EVERY = 64
#: Calls of the default run's progress callback.
PROGRESS = []


@pytest.fixture(scope="module")
def default_run():
    return run_trainer_cosim(DEFAULT, STEPS, checkpoint_every=EVERY,
                             on_progress=lambda *call: PROGRESS.append(call))


def test_default_cosim_200_steps(default_run):
    r = default_run
    print(_summary(r))
    assert set(RESULT_KEYS) <= set(r)
    assert r["mode"] == "cosim" and r["strategy"] == DEFAULT.engine.strategy
    assert r["error"] is None
    assert r["steps"] == STEPS and len(r["train_loss"]) == STEPS
    # L+, L-, g per step (+ the step index), then every weight and write count at the end
    # and at the checkpoints
    assert r["checkpoints"] == [64, 128, 192]
    assert r["compared"] == 4 * STEPS + 2 * DEFAULT.params * (1 + len(r["checkpoints"]))
    assert r["mismatches"] == 0, r["first_mismatches"]
    assert r["passed"]
    assert r["test_accuracy"] == pytest.approx(r["golden_test_accuracy"])


def test_default_cycle_model(default_run):
    r = default_run
    predicted = predicted_cycles_per_step(DEFAULT)
    assert r["predicted_cycles_per_step"] == predicted
    assert abs(r["cycles_per_step"] - predicted) <= 0.10 * predicted, _summary(r)
    # the RTL's own schedule formula is exact, and equal to the golden's documented breakdown
    assert r["cycles_per_step"] == r["rtl_cycles_per_step"]
    assert r["cycle_breakdown"] == cycle_breakdown(DEFAULT)
    assert r["sim_cycles_per_second"] > 0
    # banked writes (16 lanes): within 1.2 x the floor 3*ceil(d/P) + 2*B*cpv of the schedule
    floor = (3 * -(-DEFAULT.params // DEFAULT.engine.lanes)
             + 2 * DEFAULT.batch * DEFAULT.cim.passes)
    assert DEFAULT.write_lanes == DEFAULT.engine.lanes == 16
    assert floor == TrainerPlan(DEFAULT).floor_cycles_per_step
    assert r["cycles_per_step"] <= 1.2 * floor, (r["cycles_per_step"], floor)


def test_progress_callback(default_run):
    """``on_progress(steps_done, steps, cycles/s)``: steps never go back, the last call is the
    whole run at the run's own rate."""
    assert PROGRESS, "no progress reported"
    done = [c[0] for c in PROGRESS]
    assert done == sorted(done) and done[-1] == STEPS
    assert {c[1] for c in PROGRESS} == {STEPS}
    last = PROGRESS[-1][2]
    assert last == pytest.approx(default_run["sim_cycles_per_second"], rel=0.05)


def test_wrong_checkpoint_is_reported(default_run, monkeypatch):
    """A golden checkpoint with one weight and one write count off must be reported at that
    checkpoint, quantity and index (same cached build; the per-step values still match)."""
    from zohw.sim import trainer as host

    real = host.golden_checkpoints

    def wrong(cfg, data, at, golden=None):
        out = real(cfg, data, at, golden)
        w, c = out[at[1]]
        w, c = w.clone(), c.clone()
        w[17] += 1
        c[300] += 2
        out[at[1]] = (w, c)
        return out

    monkeypatch.setattr(host, "golden_checkpoints", wrong)
    r = run_trainer_cosim(DEFAULT, 9, checkpoint_every=4)
    assert r["checkpoints"] == [4, 8]
    assert r["mismatches"] == 2 and not r["passed"]
    got = {(m["step"], m["quantity"], m["index"]): m["expected"] - m["got"]
           for m in r["first_mismatches"]}
    assert got == {(8, "weight", 17): 1, (8, "write_count", 300): 2}


def test_step_log_mismatches_are_located(default_run):
    """70 steps: one 64-step batch of the wrapper's step log and 6 steps read after the last
    step. A wrong L+ inside the batch (step 37) and a wrong g after it (step 66) are reported
    at their steps, and nothing else is (same cached build)."""
    from zohw.sim.trainer import LOG_DEPTH, log_batch
    from zohw.sw.train import train_golden

    steps = 70
    assert log_batch() == LOG_DEPTH == 64 < steps
    golden = train_golden(DEFAULT.replace(steps=steps, eval_every=steps))
    golden.l_plus[37] += 1
    golden.g[66] -= 3
    r = run_trainer_cosim(DEFAULT, steps, golden=golden, checkpoint_every=0)
    assert r["steps"] == steps and not r["passed"]
    got = {(m["step"], m["quantity"]): m["expected"] - m["got"] for m in r["first_mismatches"]}
    assert got == {(37, "L+"): 1, (66, "g"): -3}
    assert r["mismatches"] == 2


def test_log_batch():
    """Steps per step-log batch: the log's depth, at most the gap between two checkpoints
    (read at the first batch ending at or after them), 1 when stopping mid-run."""
    from zohw.sim.trainer import log_batch

    assert log_batch() == 64
    assert log_batch([1000, 2000, 3000]) == 64
    assert log_batch([64, 128, 192]) == 64
    assert log_batch([4, 8]) == 4
    assert log_batch([10, 13, 30]) == 3
    assert log_batch([50], until_stopped=True) == 1


def test_checkpoint_every_is_validated():
    with pytest.raises(ValueError, match="checkpoint_every must be 0 .none. or an integer of "
                                         "at least 2, not 1"):
        run_trainer_cosim(DEFAULT, 3, checkpoint_every=1)


def test_run_until_stopped(default_run):
    """steps = 0 runs until ``stop``: pulsed during step 2, the trainer stops after it."""
    r = run_trainer_cosim(DEFAULT, 3, until_stopped=True)
    assert r["error"] is None and r["mismatches"] == 0, r["first_mismatches"]
    assert r["steps"] == 3


def test_wrong_golden_is_reported(default_run):
    """A golden model with another update shift must mismatch (same cached build)."""
    r = run_trainer_cosim(DEFAULT, 4, golden_overrides={"lr_shift": DEFAULT.lr_shift - 2})
    assert r["build_seconds"] == 0.0
    assert r["mismatches"] > 0 and not r["passed"]
    first = r["first_mismatches"][0]
    assert first["expected"] != first["got"]
    # step 0 is unaffected (the update only changes the weights of later steps)
    assert first.get("step", 1) >= 1
    quantities = {m["quantity"] for m in r["first_mismatches"]}
    assert quantities & {"L+", "L-", "g"}


def test_wrong_seed_is_reported(default_run):
    r = run_trainer_cosim(DEFAULT, 2, golden_overrides={"seed": DEFAULT.seed + 1})
    assert r["mismatches"] > 0
    assert r["first_mismatches"][0]["step"] == 0


def test_variant_cosim():
    r = run_trainer_cosim(VARIANT, VARIANT_STEPS)
    print(_summary(r))
    assert r["error"] is None
    assert r["mismatches"] == 0, r["first_mismatches"]
    assert r["steps"] == VARIANT_STEPS
    plan = TrainerPlan(VARIANT)
    assert r["cycles_per_step"] == plan.cycles_per_step
    # the one cycle model, whatever the shape, lanes and tiles: exact here too
    predicted = predicted_cycles_per_step(VARIANT)
    assert abs(r["cycles_per_step"] - predicted) <= 0.10 * predicted, _summary(r)


@pytest.mark.parametrize("cfg", [DEFAULT, VARIANT], ids=["default", "variant"])
def test_trainer_lint(cfg):
    """``verilator --lint-only -Wall`` is clean apart from the waived Yosys artefacts."""
    verilog, _ = design_verilog(cfg)
    ok, output = verilator_lint(verilog, "zohw_trainer")
    assert ok, output


def test_write_lanes_beyond_the_engine_rejected():
    from zohw.errors import ConfigError

    with pytest.raises(ConfigError, match="write_lanes"):
        DEFAULT.replace(write_lanes=2 * DEFAULT.engine.lanes)


def test_verilog_is_deterministic_and_single_module():
    """Regenerating gives the cached text byte for byte; the design is one flat module."""
    cached, _ = design_verilog(VARIANT)
    text = trainer_verilog(VARIANT)
    assert text == cached
    assert text.count("\nmodule ") == 1


def test_sim_trainer_cli(default_run, tmp_path):
    """``zohw sim trainer`` as a user runs it (the default configuration's cached model)."""
    out = tmp_path / "trainer.json"
    proc = subprocess.run([sys.executable, "-m", "zohw.cli", "sim", "trainer", "--steps", "2",
                           "--json", str(out)], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"PASS trainer {DEFAULT.engine.strategy}: 2 steps")
    doc = json.loads(out.read_text())
    assert set(RESULT_KEYS) <= set(doc)
    assert doc["mode"] == "cosim" and doc["steps"] == 2 and doc["mismatches"] == 0
    assert doc["compared"] == 4 * 2 + 2 * DEFAULT.params
    assert doc["build_seconds"] == 0.0


def test_source_digest_hashes_the_imported_modules():
    """The trainer Verilog cache is keyed by the files the imported modules run from (an
    installed wheel included), not by paths relative to a checkout."""
    from pathlib import Path

    import zohw.config
    import zohw.hw.trainer
    import zohw.hw.verilog
    from zohw.sim import trainer as host

    files = dict(host._source_files())
    paths = set(files.values())
    for module in (zohw.hw.trainer, zohw.hw.verilog, zohw.config):
        assert Path(module.__file__) in paths, module.__name__
    assert all(p.is_file() for p in paths)
    assert host.source_digest() == host.source_digest()
    # a hardware field changes the key, a run field does not
    assert host.hardware_key(DEFAULT) != host.hardware_key(DEFAULT.replace(batch=16))
    assert host.hardware_key(DEFAULT) == host.hardware_key(DEFAULT.replace(seed=99, steps=5))
