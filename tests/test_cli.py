"""``zohw sim perturb`` / ``zohw generate`` / ``zohw demo``: bad input is one stderr line with
exit code 2 and never reaches elaboration or simulation."""

import subprocess
import sys

import pytest

from zohw import cli
from zohw.config import STRATEGIES
from zohw.sim import engine


@pytest.fixture(autouse=True)
def no_simulation(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("simulation must not start on bad input")
    monkeypatch.setattr(engine, "cross_check", boom)


BAD_CONFIG = [
    (["--rng", "uniform", "--lanes", "0"], "lanes must be an integer from 1 to 64, not 0"),
    (["--rng", "uniform", "--lanes", "many"], "lanes must be an integer, not 'many'"),
    (["--rng", "gauss-box-muller"],
     "strategy must be one of " + ", ".join(STRATEGIES) + ", not 'gauss-box-muller'"),
    (["--rng", "gauss-clt", "--scaling", "fixed"],
     "scaling must be none for gauss-clt (unit std by construction), not 'fixed'"),
    (["--rng", "uniform", "--scaling", "adaptive"], "scaling must be fixed or none for uniform"),
    (["--rng", "pezo-block", "--pool", "100"], "pool must be a power of two, not 100"),
    (["--rng", "pezo-otf", "--lanes", "4", "--otf-sources", "4"],
     "otf_sources must be an integer from 1 to 3, not 4"),
    (["--rng", "uniform", "--source", "mt19937"],
     "source must be one of lfsr32, xorshift32, not 'mt19937'"),
]

BAD_RUN = [
    (["--rng", "uniform", "--params", "0"], "params must be at least 1, not 0"),
    (["--rng", "uniform", "--steps", "0"], "steps must be at least 1, not 0"),
    (["--rng", "uniform", "--seed", "-1"], "seed must be a 32-bit unsigned integer, not -1"),
    (["--rng", "uniform", "--backpressure", "1.0"], "backpressure must be in [0, 1), not 1.0"),
]


def _one_line(capsys, prefix, message):
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith(prefix), captured.err
    assert message in captured.err, captured.err
    assert "Traceback" not in captured.err


@pytest.mark.parametrize("argv, message", BAD_CONFIG + BAD_RUN)
def test_sim_perturb_bad_input(argv, message, capsys, tmp_path):
    out = tmp_path / "r.json"
    assert cli.main(["sim", "perturb", *argv, "--json", str(out)]) == 2
    _one_line(capsys, "zohw sim: error: ", message)
    assert not out.exists()


@pytest.mark.parametrize("argv, message", BAD_CONFIG)
def test_generate_bad_input(argv, message, capsys, tmp_path):
    out = tmp_path / "gen"
    assert cli.main(["generate", *argv, "-o", str(out)]) == 2
    _one_line(capsys, "zohw generate: error: ", message)
    assert not out.exists()


def test_generate_output_is_a_file(capsys, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    assert cli.main(["generate", "--rng", "uniform", "-o", str(target)]) == 2
    _one_line(capsys, "zohw generate: error: ", "exists and is not a directory")
    assert target.read_text() == "x"


@pytest.mark.parametrize("argv, message", [
    (["sim", "perturb", "--rng", "uniform"], "the following arguments are required: --json"),
    (["sim", "perturb", "--rng", "uniform", "--json", "x.json", "--params", "lots"],
     "argument --params: invalid int value: 'lots'"),
    (["generate", "--rng", "uniform"], "the following arguments are required: -o/--output"),
])
def test_argument_errors_are_one_line(argv, message, tmp_path):
    """Argument-parsing errors too: one line, exit code 2, no usage dump or traceback (run as a
    real process, as a user would)."""
    proc = subprocess.run([sys.executable, "-m", "zohw.cli", *argv], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert message in proc.stderr
    assert not list(tmp_path.iterdir())


def test_unknown_strategy_as_a_process(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "zohw.cli", "sim", "perturb", "--rng", "nope",
                           "--json", "r.json"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == ("zohw sim: error: strategy must be one of "
                           + ", ".join(STRATEGIES) + ", not 'nope'\n")
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("argv, message", [
    (["cache"], "zohw cache: error: the following arguments are required: info|clear"),
    (["cache", "clear", "--knd", "synth"], "(did you mean --kind?)"),
    (["cache", "wipe"], "invalid choice: 'wipe'"),
])
def test_cache_command_usage_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOHW_CACHE", str(tmp_path / "c"))
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and message in captured.err
    assert not (tmp_path / "c").exists()
