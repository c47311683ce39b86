"""Self-healing model cache (issue 12, deliverable 3): a simulation model is a
:class:`zohw.cache.CacheEntry` (completion marker + checksums); a truncated model or a missing
marker is discarded with one warning line naming the entry, rebuilt, and the run passes. (The
Icarus ``.vvp`` case is in tests/test_icarus.py.)"""

import re
import shutil
import sys
from pathlib import Path

from zohw.cache import CacheEntry
from zohw.sim import build as runner
from zohw.sim.host import run_cocotb

sys.path.insert(0, str(Path(__file__).parent))
from test_runner import counter_verilog  # noqa: E402


def _share_runtime(tmp_path, monkeypatch):
    """Use ``tmp_path`` as the cache, seeded with the user cache's compiled Verilator runtime
    (if any) to save its compile time."""
    runtime = runner.runtime_dir()
    monkeypatch.setenv("ZOHW_CACHE", str(tmp_path))
    if runtime.is_dir() and not runner.runtime_dir().exists():
        shutil.copytree(runtime, runner.runtime_dir())


def _warnings(err):
    return [line for line in err.splitlines() if "cache entry" in line]


def test_truncated_verilator_model_is_rebuilt(tmp_path, monkeypatch, capfd):
    _share_runtime(tmp_path, monkeypatch)
    first = run_cocotb(counter_verilog(), "zohw_counter", "tb_counter")
    assert (first["passed"], first["failed"]) == (2, 0) and first["build_seconds"] > 0
    entry = Path(first["build_dir"])
    model = entry / "zohw_counter"
    size = model.stat().st_size
    with open(model, "r+b") as f:                   # a truncated model crashed every run
        f.truncate(size // 2)
    capfd.readouterr()

    healed = run_cocotb(counter_verilog(), "zohw_counter", "tb_counter")
    warnings = _warnings(capfd.readouterr().err)
    assert len(warnings) == 1, warnings
    assert re.fullmatch(rf"zohw: cache entry {re.escape(str(entry))} is damaged \(.+\); "
                        r"rebuilding", warnings[0])
    assert (healed["passed"], healed["failed"]) == (2, 0)
    assert healed["build_dir"] == str(entry) and healed["build_seconds"] > 0
    assert CacheEntry(entry).damage() is None and model.stat().st_size > size // 2

    again = run_cocotb(counter_verilog(), "zohw_counter", "tb_counter")
    assert _warnings(capfd.readouterr().err) == []
    assert again["build_seconds"] == 0.0 and again["passed"] == 2
