"""Self-healing cache entries (zohw.cache): a truncated, corrupted, unsealed or incomplete entry
is discarded with one warning line naming it, and rebuilt by the next use; ``zohw cache
info|clear``. Small synthetic entries; the real Verilator model and synthesis result heal in
their own modules' tests."""

import json
import os

import pytest

from zohw.cache import (KINDS, MANIFEST, CacheEntry, cache_root, clear_cache, kind_usage,
                        read_json_entry, write_json_entry)


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOHW_CACHE", str(tmp_path / "cache"))
    return cache_root()


def _build(entry, calls):
    """The use pattern of the contract; counts real builds."""
    if not entry.valid():
        calls.append(1)
        with entry.build() as tmp:
            (tmp / "model.v").write_text("module top; endmodule\n" * 50)
            (tmp / "sub").mkdir()
            (tmp / "sub" / "ports.json").write_text('[["clk", "in", 1]]')
    return entry.path


def _warnings(err):
    return [line for line in err.splitlines() if line.startswith("zohw: cache entry")]


def test_build_seals_and_hits(root, capsys):
    entry, calls = CacheEntry(root / "verilator" / "k1"), []
    path = _build(entry, calls)
    manifest = json.loads((path / MANIFEST).read_text())
    assert manifest["complete"] is True
    assert set(manifest["files"]) == {"model.v", "sub/ports.json"}
    _build(entry, calls)
    assert calls == [1]                       # the second use is a hit
    assert capsys.readouterr().err == ""      # a missing entry is built silently
    # no temporary sibling is left behind
    assert [p.name for p in (root / "verilator").iterdir()] == ["k1"]


def _truncate(p):
    p.write_bytes(p.read_bytes()[:10])


def _corrupt(p):
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01              # one flipped bit, same size
    p.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, why", [
    (lambda d: _truncate(d / "model.v"), "model.v fails its checksum"),
    (lambda d: _corrupt(d / "sub" / "ports.json"), "sub/ports.json fails its checksum"),
    (lambda d: (d / MANIFEST).unlink(), "no completion marker"),
    (lambda d: (d / "model.v").unlink(), "model.v is missing"),
    (lambda d: _truncate(d / MANIFEST), "unreadable completion marker"),
    (lambda d: (d / MANIFEST).write_text('{"files": {}, "complete": false}'),
     "incomplete completion marker"),
])
def test_damaged_entry_heals(root, capsys, damage, why):
    entry, calls = CacheEntry(root / "trainer-verilog" / "k2"), []
    path = _build(entry, calls)
    good = (path / "model.v").read_text()
    damage(path)
    capsys.readouterr()
    _build(entry, calls)
    err = capsys.readouterr().err
    assert _warnings(err) == [f"zohw: cache entry {path} is damaged ({why}); rebuilding"]
    assert err.count("\n") == 1
    assert calls == [1, 1]                    # rebuilt
    assert (path / "model.v").read_text() == good
    assert entry.valid()
    _build(entry, calls)                      # and healthy again: a hit, no warning
    assert calls == [1, 1] and capsys.readouterr().err == ""


def test_entry_that_is_a_file_heals(root, capsys):
    (root / "icarus").mkdir(parents=True)
    (root / "icarus" / "k3").write_text("junk")
    entry = CacheEntry(root / "icarus" / "k3")
    assert not entry.valid()
    assert "is damaged (not a directory)" in capsys.readouterr().err
    assert not entry.path.exists()


def test_failed_build_leaves_nothing(root):
    entry = CacheEntry(root / "verilator" / "k4")
    with pytest.raises(RuntimeError, match="compiler died"):
        with entry.build() as tmp:
            (tmp / "half.o").write_text("x")
            raise RuntimeError("compiler died")
    assert list((root / "verilator").iterdir()) == []
    assert not entry.valid()


def test_interrupted_build_leaves_nothing(root):
    entry = CacheEntry(root / "verilator" / "k5")
    with pytest.raises(KeyboardInterrupt):
        with entry.build() as tmp:
            (tmp / "half.o").write_text("x")
            raise KeyboardInterrupt
    assert list((root / "verilator").iterdir()) == []


def test_concurrent_builder_keeps_first_valid(root):
    """Two builders of one key: the second finds the place taken by a valid entry and keeps
    it; a damaged leftover in the place is replaced."""
    entry = CacheEntry(root / "verilator" / "k6")
    with entry.build() as tmp2:
        (tmp2 / "f").write_text("second")
        with entry.build() as tmp1:
            (tmp1 / "f").write_text("first")
    assert (entry.path / "f").read_text() == "first" and entry.valid()
    assert [p.name for p in (root / "verilator").iterdir()] == ["k6"]
    (entry.path / MANIFEST).unlink()          # damaged while a builder works
    with entry.build() as tmp:
        (tmp / "f").write_text("third")
    assert (entry.path / "f").read_text() == "third" and entry.valid(warn=False)


def test_stale_temporary_directory_removed(root):
    base = root / "verilator"
    stale = base / ".k7.tmp-dead"
    stale.mkdir(parents=True)
    os.utime(stale, (0, 0))
    fresh = base / ".k7.tmp-live"             # a concurrent builder's: kept
    fresh.mkdir()
    with CacheEntry(base / "k7").build() as tmp:
        (tmp / "f").write_text("x")
    assert not stale.exists() and fresh.exists()


# -- one-file JSON entries ------------------------------------------------------------------

def test_json_entry_round_trip(root, capsys):
    path = root / "synth" / "abc.json"
    assert read_json_entry(path) is None      # missing: silent
    value = {"lut": 12, "ff": [1, 2], "name": "xoshiro"}
    write_json_entry(path, value)
    assert read_json_entry(path) == value
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("damage, why", [
    (lambda p: p.write_text("{}"), "not a zohw cache entry"),
    (lambda p: _truncate(p), "not valid JSON"),
    (lambda p: p.write_text(p.read_text().replace('"lut": 12', '"lut": 13')),
     "fails its checksum"),
    (lambda p: p.write_text(p.read_text().replace('"complete": true', '"complete": false')),
     "no completion marker"),
    (lambda p: p.write_bytes(b"\xff\xfe\x00"), "not text"),
])
def test_damaged_json_entry_heals(root, capsys, damage, why):
    path = root / "synth" / "abc.json"
    write_json_entry(path, {"lut": 12})
    damage(path)
    assert read_json_entry(path) is None
    err = capsys.readouterr().err
    assert err == f"zohw: cache entry {path} is damaged ({why}); rebuilding\n"
    assert not path.exists()                  # discarded: the next write rebuilds it
    write_json_entry(path, {"lut": 12})
    assert read_json_entry(path) == {"lut": 12}


# -- zohw cache info|clear ------------------------------------------------------------------

def _zohw(capsys, monkeypatch, root, *args):
    from zohw import cli

    monkeypatch.setenv("ZOHW_CACHE", str(root))
    try:
        rc = cli.main(list(args))
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def test_cache_info_and_clear(tmp_path, capsys, monkeypatch):
    root = tmp_path / "c"
    (root / "synth").mkdir(parents=True)
    (root / "synth" / "a.json").write_bytes(b"x" * 1500)
    (root / "verilator" / "m").mkdir(parents=True)
    (root / "verilator" / "m" / "top").write_bytes(b"y" * 2000)
    (root / "verilator" / "m.lock").write_text("")
    (root / "verilator" / ".m2.tmp-abc").mkdir()          # a build in progress
    rc, out, err = _zohw(capsys, monkeypatch, root, "cache", "info")
    assert rc == 0, err
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert set(lines) == set(KINDS)
    assert "1.5 kB" in lines["synth"] and " 1 entries" in lines["synth"]
    assert "2.0 kB" in lines["verilator"] and " 1 entries" in lines["verilator"]
    assert err.count("\n") == 1 and "3.5 kB" in err and str(root) in err
    rc, out, err = _zohw(capsys, monkeypatch, root, "cache", "clear", "--kind", "synth")
    assert rc == 0, err
    assert not (root / "synth").exists() and (root / "verilator" / "m" / "top").exists()
    assert f"removed {root / 'synth'}" in out and err.count("\n") == 1
    rc, out, err = _zohw(capsys, monkeypatch, root, "cache", "clear")
    assert rc == 0 and not (root / "verilator").exists()
    assert [k for k, _, size, n in kind_usage(root) if size or n] == []
    assert sorted(p.name for p in root.iterdir()) == []   # no trash left behind


def test_cache_clear_unknown_kind(tmp_path, capsys, monkeypatch):
    rc, out, err = _zohw(capsys, monkeypatch, tmp_path / "c", "cache", "clear", "--kind",
                         "verilog")
    assert rc == 2 and out == ""
    assert err.startswith("zohw cache: error: --kind must be one of verilator,")
    assert err.count("\n") == 1
    with pytest.raises(ValueError, match="unknown cache kind"):
        clear_cache(["verilog"], tmp_path)


# -- the generated trainer Verilog (zohw.sim.trainer.design), elaboration faked --------------

def test_trainer_verilog_entry_heals(root, capsys, monkeypatch):
    """A truncated cached trainer Verilog (which once failed every run with "no top-level port
    declaration found") is discarded and regenerated, with one warning naming it."""
    import zohw.hw.trainer as hw_trainer
    import zohw.hw.verilog as hw_verilog
    from zohw.sim import trainer as sim_trainer
    from zohw.train_config import TrainerConfig

    cfg = TrainerConfig()

    made = []
    monkeypatch.setattr(sim_trainer, "hardware_key", lambda *a, **k: "k")
    monkeypatch.setattr(hw_trainer, "ZOTrainer", lambda *a, **k: made.append(1) or "dut")
    monkeypatch.setattr(hw_verilog, "ports", lambda dut: [("clk", "input", 1)])
    monkeypatch.setattr(hw_verilog, "flatten",
                        lambda dut, top: f"module {top}(input clk);\nendmodule\n")
    text, ports, _ = sim_trainer.design(cfg, 2048)
    entry = root / "trainer-verilog" / "k"
    assert sim_trainer.design(cfg, 2048)[:2] == (text, ports) and len(made) == 1   # a hit
    verilog = next(p for p in entry.iterdir() if p.suffix == ".v")
    verilog.write_text(text[:7])
    capsys.readouterr()
    assert sim_trainer.design(cfg, 2048)[:2] == (text, ports)
    assert len(made) == 2                                                    # regenerated
    assert capsys.readouterr().err == (f"zohw: cache entry {entry} is damaged "
                                       f"({verilog.name} fails its checksum); rebuilding\n")


def _race(path, n):
    import time as _t

    entry = CacheEntry(path)
    if not entry.valid():
        with entry.build() as tmp:
            (tmp / "f").write_text(f"builder {n}")
            _t.sleep(0.2)                     # all builders overlap
    return (entry.path / "f").read_text()


def test_concurrent_builders_in_processes(root):
    """Four processes build one missing entry at once: each gets a complete entry, one of
    theirs; nothing else is left in the directory."""
    import multiprocessing

    path = root / "verilator" / "race"
    with multiprocessing.get_context("fork").Pool(4) as pool:
        got = pool.starmap(_race, [(path, n) for n in range(4)])
    assert len(set(got)) == 1 and got[0].startswith("builder ")
    assert CacheEntry(path).damage() is None
    assert [p.name for p in path.parent.iterdir()] == ["race"]
