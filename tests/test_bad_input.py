"""Bad input, everywhere: one table of bad command lines and configuration values.

Every row of the CLI table must give exit code 2, exactly one stderr line
``zohw <command>: error: …`` holding the expected text, no traceback, nothing on stdout and no
file written (the working directory's listing is unchanged: no output, no temp file). The heavy
work of every command is replaced by a function that fails the test if reached, so each row
shows the check happens before any work starts.

Paths: ``{tmp}`` is the test's directory (the working directory too). ``adir`` is an existing
directory, ``afile`` an existing file. An unwritable parent must be unwritable for root as well
(CI runs as root, where a 0o555 directory is writable): ``/proc`` (no files can be made there)
and ``afile/…`` (a file used as a directory) are.
"""

import re

import pytest

from zohw import cli
from zohw.errors import ConfigError

# -- the table: (argv, expected text) --------------------------------------------------------

ENGINE = ["--rng", "uniform"]

_OUTPUT_CASES = [
    # (option, value, expected) for a --json FILE option; reused by every command below
    ("--json", "", "--json must be a path, not an empty string"),
    ("--json", "{tmp}/adir", "--json must be a file path, not the directory"),
    ("--json", "{tmp}/missing/r.json", "--json: parent directory"),
    ("--json", "/proc/r.json", "--json: parent directory '/proc' is not writable"),
    ("--json", "{tmp}/afile/r.json", "is not a directory"),
]


def _json_cases(prefix):
    """The --json output-path cases of the command line ``prefix``."""
    return [([*prefix, option, value], expected) for option, value, expected in _OUTPUT_CASES]


SIM_PERTURB = [
    *_json_cases(["sim", "perturb", *ENGINE]),
    (["sim", "engine", *ENGINE, "--json", "r.json", "--dump", ""],
     "--dump must be a path, not an empty string"),
    (["sim", "perturb", *ENGINE, "--json", "r.json", "--dump", "z.npy"],
     "--dump must be a .npz file, not 'z.npy'"),
    (["sim", "perturb", *ENGINE, "--json", "r.json", "--dump", "/proc/z.npz"],
     "--dump: parent directory '/proc' is not writable"),
    (["sim", "perturb", *ENGINE, "--json", "r.json", "--dump", "{tmp}/adir"],
     "--dump must be a .npz file"),
    (["sim", "perturb", *ENGINE, "--json", "r.json", "--params", "1000000000"],
     "params x steps must be at most 16777216 words"),
    (["sim", "perturb", *ENGINE, "--json", "r.json", "--params", "4000000", "--steps", "8"],
     "at most 16777216 words"),
    (["sim", "perturb", *ENGINE, "--json", "r.json", "--params", "-3"],
     "params must be at least 1, not -3"),
    (["sim", "engine", *ENGINE, "--json", "r.json", "--steps", "-1"],
     "steps must be at least 1, not -1"),
    (["sim", "engine", *ENGINE, "--json", "r.json", "--seed", "4294967296"],
     "seed must be a 32-bit unsigned integer, not 4294967296"),
    (["sim", "engine", *ENGINE, "--json", "r.json", "--backpressure", "-0.1"],
     "backpressure must be in [0, 1), not -0.1"),
    (["sim", "engine", "--rng", "uniform", "--width", "3", "--json", "r.json"],
     "width must be an integer from 4 to 16, not 3"),
    (["sim", "engine", "--rng", "gauss-clt", "--clt-k", "3", "--json", "r.json"], "clt_k"),
    (["sim", "engine", "--rng", "sparse", "--density", "3", "--json", "r.json"], "density"),
    (["sim", "engine", "--rng", "sparse", "--nonzero", "gauss", "--json", "r.json"],
     "nonzero must be one of rademacher, uniform, not 'gauss'"),
    (["sim", "engine", "--rng", "uniform", "--pool-read", "async", "--json", "r.json"],
     "pool_read must be one of comb, sync, not 'async'"),
    (["sim", "engine", "--rng", "uniform", "--lans", "4", "--json", "r.json"],
     "did you mean --lanes?"),
    (["sim", "engine", "--rng", "uniform"], "the following arguments are required: --json"),
]

SIM_CIM = [
    *_json_cases(["sim", "cim"]),
    (["sim", "cim", "--rows", "0", "--json", "r.json"], "rows must be an integer from 1 to"),
    (["sim", "cim", "--weight-bits", "1", "--json", "r.json"], "weight_bits"),
    (["sim", "cim", "--input-mode", "diagonal", "--json", "r.json"],
     "input_mode must be one of serial, parallel, not 'diagonal'"),
    (["sim", "cim", "--vectors", "0", "--json", "r.json"], "vectors must be at least 1, not 0"),
    (["sim", "cim", "--phases", "0", "--json", "r.json"], "phases must be at least 1, not 0"),
    (["sim", "cim", "--input-gaps", "1.5", "--json", "r.json"],
     "input_gaps must be in [0, 1), not 1.5"),
]

SIM_TRAINER = [
    *_json_cases(["sim", "trainer", "--steps", "4"]),
    (["sim", "trainer", "--checkpoint-every", "1", "--json", "r.json"],
     "checkpoint-every must be 0 (none) or at least 2, not 1"),
    (["sim", "trainer", "--stride", "1433", "--json", "r.json"],
     "stride must be coprime with the train-set size 1433"),
    (["sim", "trainer", "--hidden", "0", "--json", "r.json"],
     "hidden must be a tuple of integers from 1 to"),
]

TRAIN = [
    *_json_cases(["train", "--steps", "10"]),
    (["train", "--steps", "10", "--json", "r.json", "--plot", "r.svg"],
     "--plot must be a .png file, not 'r.svg'"),
    (["train", "--steps", "10", "--json", "r.json", "--plot", ""],
     "--plot must be a path, not an empty string"),
    (["train", "--steps", "10", "--json", "r.json", "--plot", "/proc/r.png"],
     "--plot: parent directory '/proc' is not writable"),
    (["train", "--steps", "10", "--json", "r.json", "--plot", "{tmp}/afile/r.png"],
     "is not a directory"),
    (["train", "--steps", "10", "--json", "r.json", "--stride", "1433"],
     "stride must be coprime with the train-set size 1433"),
    (["train", "--steps", "10", "--json", "r.json", "--cosim", "--reference", "float-gauss"],
     "--reference cannot be used with --cosim"),
    (["train", "--steps", "0", "--json", "r.json"], "steps must be an integer from 1"),
    (["train", "--batch", "0", "--json", "r.json"], "batch must be an integer from 1 to 1024"),
    (["train", "--update", "adam", "--json", "r.json"],
     "update must be one of sgd, sign, not 'adam'"),
    (["train", "--rounding", "up", "--json", "r.json"],
     "rounding must be one of nearest, floor, not 'up'"),
    (["train", "--seed", "-1", "--json", "r.json"], "seed must be an integer from 0"),
    (["train", "--reference", "fo-sgd", "--fo-lr", "nan", "--json", "r.json"],
     "fo_lr must be a positive number"),
    (["train", "--reference", "fo-sgd", "--fo-lr", "x", "--json", "r.json"],
     "fo_lr must be a number, not 'x'"),
    (["train", "--reference", "fo-sgd,adam", "--json", "r.json"], "reference must be one of"),
    (["train", "--steps", "10"], "the following arguments are required: --json"),
    (["train", "--stpes", "10", "--json", "r.json"], "did you mean --steps?"),
]

RESOURCES = [
    *_json_cases(["resources", "--target", "xilinx7"]),
    (["resources", "--target", "xilinx7", "--markdown", ""],
     "--markdown must be a path, not an empty string"),
    (["resources", "--target", "xilinx7", "--markdown", "{tmp}/adir"],
     "--markdown must be a file path, not the directory"),
    (["resources", "--target", "xilinx7", "--plot", "chart.svg"],
     "--plot must be a .png file, not 'chart.svg'"),
    (["resources", "--target", "xilinx7", "--plot", "/proc/c.png"],
     "--plot: parent directory '/proc' is not writable"),
    (["resources", "--target", "xilinx7", "--cache-dir", ""],
     "--cache-dir must be a path, not an empty string"),
    (["resources", "--target", "xilinx7", "--cache-dir", "{tmp}/afile"],
     "exists and is not a directory"),
    (["resources", "--target", "xilinx7", "--cache-dir", "/proc/zohw/c"],
     "--cache-dir: directory '/proc' is not writable"),
    (["resources", "--target", "xilinx7", "--cache-dir", "{tmp}/afile/c"],
     "is not a directory"),
    (["resources", "--target", "virtex2"], "virtex2"),
    (["resources", "--target", "xilinx7", "--jobs", "0"], "jobs"),
    (["resources", "--target", "xilinx7", "--scaling", "log"],
     "scaling must be one of"),
]

GENERATE = [
    (["generate", *ENGINE, "-o", ""], "-o/--output must be a path, not an empty string"),
    (["generate", *ENGINE, "-o", "{tmp}/afile"], "exists and is not a directory"),
    (["generate", *ENGINE, "-o", "/proc/zohw-out"], "'/proc' is not writable"),
    (["generate", *ENGINE, "-o", "{tmp}/afile/out"], "is not a directory"),
    (["generate", *ENGINE, "-o", "out", "--top", "1bad"],
     "top must be a Verilog identifier, not '1bad'"),
    (["generate", "--rng", "pezo-otf", "--otf-sources", "0", "-o", "out"], "otf_sources"),
    (["generate", "--rng", "gauss-icdf", "--icdf-bits", "1", "-o", "out"], "icdf_bits"),
]

DEMO = [
    (["demo", "-o", ""], "-o/--output must be a path, not an empty string"),
    (["demo", "-o", "{tmp}/afile"], "exists and is not a directory"),
    (["demo", "-o", "/proc/demo"], "'/proc' is not writable"),
    (["demo", "-o", "out", "--train-steps", "0"], "train-steps must be at least 1, not 0"),
    (["demo", "-o", "out", "--cosim-steps", "-2"], "cosim-steps must be at least 1, not -2"),
    (["demo", "-o", "out", "--params", "0"], "params must be at least 1, not 0"),
    (["demo", "-o", "out", "--params", "100000000"], "at most 16777216 words"),
    (["demo", "-o", "out", "--train-steps", "20000000"],
     "train-steps: steps must be an integer from 1 to"),
]

CLI_CASES = SIM_PERTURB + SIM_CIM + SIM_TRAINER + TRAIN + RESOURCES + GENERATE + DEMO

#: Resource bounds (zohw.limits): (ZOHW_MEMORY_LIMIT or None for the default, argv, expected).
#: The limits are given where the default (80 % of the RAM) would make the row machine-bound.
_OVER = "of memory (largest part: "
MEMORY = [
    (None, ["sim", "cim", "--rows", "8192", "--cols", "4096", "--json", "r.json"],
     "the CIM co-simulation (8192x4096 cells, 2 phases of 24 vectors) would need about"),
    ("1G", ["sim", "cim", "--rows", "1024", "--cols", "64", "--json", "r.json"],
     "Verilated macro, 65536 weight cells"),
    ("1G", ["sim", "trainer", "--steps", "10000000", "--json", "r.json"],
     "more than the limit 1.0 GiB (ZOHW_MEMORY_LIMIT=1G)"),
    ("8G", ["sim", "trainer", "--hidden", "4000", "--steps", "4", "--json", "r.json"],
     "weight registers"),
    ("1G", ["train", "--steps", "10000000", "--json", "r.json"],
     "the golden training run (10000000 steps of"),
    ("2G", ["train", "--steps", "2000000", "--json", "r.json", "--plot", "r.png"],
     "per-step records, 2000000 steps"),
    ("600M", ["train", "--cosim", "--steps", "100000", "--json", "r.json"],
     "the co-simulation (100000 steps of"),
    ("8G", ["train", "--cosim", "--hidden", "4000", "--steps", "10", "--json", "r.json"],
     "more than the limit 8.0 GiB"),
    ("1G", ["demo", "-o", "out", "--train-steps", "2000000"],
     "the golden training run (2000000 steps of"),
    ("lots", ["sim", "cim", "--json", "r.json"],
     "ZOHW_MEMORY_LIMIT must be a memory size such as 8G or 512M, not 'lots'"),
    ("0", ["train", "--steps", "10", "--json", "r.json"],
     "ZOHW_MEMORY_LIMIT must be a positive memory size, not '0'"),
]


@pytest.fixture
def no_work(monkeypatch):
    """Every command's heavy work fails the test if it is reached."""
    import zohw.commands.generate
    import zohw.hw.verilog
    import zohw.resources.report
    import zohw.sim.cim
    import zohw.sim.engine
    import zohw.sim.trainer
    import zohw.sw.reference
    import zohw.sw.train

    def boom(*a, **k):
        raise AssertionError("work must not start on bad input")

    for module, name in ((zohw.sim.engine, "cross_check"), (zohw.sim.cim, "cim_cosim"),
                         (zohw.sim.trainer, "run_trainer_cosim"),
                         (zohw.sw.train, "train_golden"), (zohw.sw.reference, "train_reference"),
                         (zohw.hw.verilog, "engine_verilog"), (zohw.commands.generate, "generate"),
                         (zohw.resources.report, "run")):
        monkeypatch.setattr(module, name, boom)


def _listing(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _command(argv):
    return "sim" if argv[0] == "sim" else argv[0]


def test_the_table_is_large_enough():
    assert len(CLI_CASES) + len(MEMORY) + len(CONFIG_CASES) >= 60
    for table in (SIM_PERTURB, SIM_CIM, SIM_TRAINER, TRAIN, RESOURCES, GENERATE, DEMO):
        assert len(table) >= 4


@pytest.mark.parametrize("argv, expected", CLI_CASES,
                         ids=[" ".join(a)[:70] for a, _ in CLI_CASES])
def test_bad_command_line(argv, expected, tmp_path, monkeypatch, capsys, no_work):
    monkeypatch.delenv("ZOHW_MEMORY_LIMIT", raising=False)
    _refused(argv, expected, tmp_path, monkeypatch, capsys)


@pytest.mark.parametrize("limit, argv, expected", MEMORY,
                         ids=[f"{lim} {' '.join(a)}"[:70] for lim, a, _ in MEMORY])
def test_memory_bound(limit, argv, expected, tmp_path, monkeypatch, capsys, no_work):
    """A run whose memory estimate is above the limit is refused up front, naming the limit."""
    if limit is None:
        monkeypatch.delenv("ZOHW_MEMORY_LIMIT", raising=False)
    else:
        monkeypatch.setenv("ZOHW_MEMORY_LIMIT", limit)
    err = _refused(argv, expected, tmp_path, monkeypatch, capsys)
    if "ZOHW_MEMORY_LIMIT must" not in expected:
        assert "would need about" in err and _OVER in err and "more than the limit" in err


def test_memory_bound_default_limit_is_a_share_of_the_ram(monkeypatch):
    import os

    from zohw.limits import RAM_FRACTION, memory_limit

    monkeypatch.delenv("ZOHW_MEMORY_LIMIT", raising=False)
    limit, why = memory_limit()
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert limit == int(RAM_FRACTION * ram) and "of this machine's" in why
    monkeypatch.setenv("ZOHW_MEMORY_LIMIT", "1.5GiB")
    assert memory_limit()[0] == 3 << 29
    monkeypatch.setenv("ZOHW_MEMORY_LIMIT", "512M")
    assert memory_limit()[0] == 512 << 20


def _refused(argv, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    before = _listing(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    expected = expected.replace("{tmp}", str(tmp_path))
    try:
        rc = cli.main(argv)
    except SystemExit as exc:   # argparse's own errors
        rc = exc.code
    assert rc == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    assert re.match(rf"zohw {_command(argv)}( \w+)?: error: ", captured.err), captured.err
    assert expected in captured.err, captured.err
    assert "Traceback" not in captured.err
    assert _listing(tmp_path) == before
    assert (tmp_path / "afile").read_text() == "x"
    return captured.err


GOOD = [
    ["sim", "perturb", *ENGINE, "--json", "r.json", "--dump", "z.npz"],
    ["sim", "cim", "--json", "r.json"],
    ["sim", "trainer", "--steps", "4", "--json", "r.json"],
    ["train", "--steps", "10", "--json", "r.json", "--plot", "r.png"],
    ["train", "--steps", "10", "--cosim", "--json", "r.json"],
    ["resources", "--target", "xilinx7", "--json", "r.json", "--cache-dir", "new/c"],
    ["generate", *ENGINE, "-o", "new/out"],
    ["demo", "-o", "new/demo"],
]


@pytest.mark.parametrize("argv", GOOD, ids=[" ".join(a)[:70] for a in GOOD])
def test_good_input_reaches_the_work(argv, tmp_path, monkeypatch, no_work):
    """The table's guard is live: valid options get past every check to the (replaced) work,
    so a check done only after the work would fail the table above."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZOHW_MEMORY_LIMIT", raising=False)
    with pytest.raises(AssertionError, match="work must not start"):
        cli.main(argv)
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("argv", [["train", "--steps", "10000000", "--json", "r.json"],
                                  ["sim", "trainer", "--steps", "10000000", "--json", "r.json"]])
def test_memory_bound_lets_a_large_run_under_the_limit_through(argv, tmp_path, monkeypatch,
                                                               no_work):
    """The rows of MEMORY refused at 1G reach the work under a limit that fits them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZOHW_MEMORY_LIMIT", "64G")
    with pytest.raises(AssertionError, match="work must not start"):
        cli.main(argv)


def test_unwritable_output_is_refused_for_root_too(tmp_path):
    """The check probes with a real file, not only os.access (which says yes to root)."""
    from zohw.errors import UsageError
    from zohw.io import check_output_path

    with pytest.raises(UsageError, match="not writable"):
        check_output_path("--json", "/proc/r.json")
    assert check_output_path("--json", tmp_path / "r.json") == tmp_path / "r.json"
    assert not list(tmp_path.iterdir())   # the probe file is removed


# -- configuration objects: (class, kwargs, expected text) ------------------------------------

def _engine(**kw):
    from zohw.config import EngineConfig
    return EngineConfig(**kw)


def _cim(**kw):
    from zohw.cim_config import CIMConfig
    return CIMConfig(**kw)


def _trainer(**kw):
    from zohw.train_config import TrainerConfig
    return TrainerConfig(**kw)


CONFIG_CASES = [
    (_engine, {"strategy": "gauss-box-muller"}, "strategy must be one of"),
    (_engine, {"strategy": "uniform", "lanes": 0}, "lanes must be an integer from 1 to 64, not 0"),
    (_engine, {"strategy": "uniform", "lanes": 65}, "lanes must be an integer from 1 to 64"),
    (_engine, {"strategy": "uniform", "lanes": 2.5}, "lanes must be an integer"),
    (_engine, {"strategy": "uniform", "lanes": True}, "lanes must be an integer"),
    (_engine, {"strategy": "uniform", "width": 17}, "width must be an integer from 4 to 16"),
    (_engine, {"strategy": "pezo-block", "pool": 100}, "pool must be a power of two, not 100"),
    (_engine, {"strategy": "uniform", "source": "mt19937"}, "source must be one of"),
    (_engine, {"strategy": "gauss-clt", "clt_k": 5}, "clt_k"),
    (_engine, {"strategy": "sparse", "density": 16}, "density"),
    (_engine, {"strategy": "uniform", "otf_sources": "abc"}, "otf_sources"),
    (_engine, {"strategy": "uniform", "pool_read": "async"}, "pool_read must be one of"),
    (_cim, {"rows": 0}, "rows must be an integer from 1 to"),
    (_cim, {"cols": 4097}, "cols must be an integer from 1 to 4096, not 4097"),
    (_cim, {"cell_bits": 9}, "cell_bits must be an integer from 1 to 8"),
    (_cim, {"adc_bits": "8"}, "adc_bits must be an integer"),
    (_cim, {"input_mode": "diagonal"}, "input_mode must be one of serial, parallel"),
    (_cim, {"adc_shift": -1}, "adc_shift"),
    (_trainer, {"hidden": (0,)}, "hidden must be a tuple of integers from 1 to"),
    (_trainer, {"loss": "l2"}, "loss must be one of hinge, mse, not 'l2'"),
    (_trainer, {"batch": 0}, "batch must be an integer from 1 to 1024, not 0"),
    (_trainer, {"steps": 0}, "steps must be an integer from 1"),
    (_trainer, {"eps_shift": 1}, "eps_shift must leave room"),
    (_trainer, {"lr_mult": 16}, "lr_mult must be an integer from 1 to 15"),
    (_trainer, {"rounding": "up"}, "rounding must be one of nearest, floor"),
]


@pytest.mark.parametrize("make, kwargs, expected", CONFIG_CASES,
                         ids=[f"{m.__name__}-{k}" for m, k, _ in CONFIG_CASES])
def test_bad_config(make, kwargs, expected):
    with pytest.raises(ConfigError) as info:
        make(**kwargs)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)
