"""Rows, Pareto fronts, and the JSON / CSV / Markdown / PNG outputs of an exploration.

A row is one point: one engine configuration on one target. Its metrics (:data:`ROW_METRICS`):
``lut`` (LUT sites: logic + LUT-RAM + ecp5 carry LUTs; None on a cell-library target), ``ff``
(on that target), ``ge`` (NAND2 equivalents of the engine on zohw's generic gate library),
``power`` (the switching-activity proxy, NAND2-toggle units per cycle; ``power_rel`` against the
cheapest Gaussian strategy of the same P and B in the grid), ``test_accuracy`` (mean over the
seeds of golden training; per seed in ``test_accuracy_by_seed``), ``cycles_per_step`` (the one
cycle model) and ``writes_per_weight`` (CIM writes issued per weight over the run, mean over the
seeds).

Pareto fronts maximise accuracy and minimise a cost: per target its ``lut`` (``ge`` on a
cell-library target), and over the engines their ``power``. A point is on the front when no
other point is at least as accurate and at most as costly, and strictly better in one.
"""

import csv
import io
import json

from zohw.io import atomic_open, write_json_atomic, write_text_atomic
from zohw.strategies import REGISTRY, STRATEGIES

from .grid import COMMON_AXES, axis_applies

__all__ = ["ROW_METRICS", "build_report", "pareto", "render_markdown", "verdict", "write_json",
           "write_csv", "write_markdown", "write_plots", "update_readme", "BEGIN", "END"]

ROW_METRICS = ("lut", "ff", "ge", "power", "test_accuracy", "cycles_per_step",
               "writes_per_weight")
BEGIN, END = "<!-- explore:begin -->", "<!-- explore:end -->"
#: Accuracy a cheaper strategy may lose and still count as "as accurate" in the verdict.
ACCURACY_SLACK = 0.02
_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "h", "<", ">", "p")


def _cell_library(target):
    from zohw.resources.targets import TARGETS

    return bool(TARGETS[target].liberty)


def _cost_key(target):
    return "ge" if _cell_library(target) else "lut"


# -- rows -----------------------------------------------------------------------------------

def _mean(xs):
    return sum(xs) / len(xs)


def _row(grid, point, synth, power, trains):
    e = point.engine
    fields = e.as_dict()
    row = {"strategy": e.strategy, "target": point.target, "label": e.label()}
    for name in (*COMMON_AXES, *(k.name for k in REGISTRY[e.strategy].knobs)):
        if axis_applies(name, e.strategy):
            row[name] = fields[name]
    accs = [t["test_accuracy"] for t in trains]
    row.update({
        "config_hash": point.synth_engine.config_hash,
        "engine_hash": e.config_hash,
        "lut": synth.get("lut"),
        "ff": synth.get("ff"),
        "ge": synth["ge"] if "ge" in synth else power.get("ge"),
        "power": power["power"],
        "power_rel": None,
        "test_accuracy": _mean(accs),
        "test_accuracy_min": min(accs),
        "test_accuracy_max": max(accs),
        "test_accuracy_by_seed": {str(s): a for s, a in zip(grid.seeds, accs)},
        "cycles_per_step": trains[0]["cycles_per_step"],
        "writes_per_weight": _mean([t["writes_per_weight"] for t in trains]),
        "resources": {k: v for k, v in synth.items() if k not in ("lut", "ff", "ge")},
        "toggles_per_cycle": power.get("toggles_per_cycle"),
        "config": point.synth_engine.as_dict(),
    })
    return row


def _add_power_rel(rows):
    """``power_rel``: power over the cheapest Gaussian strategy's at the same P and B."""
    base = {}
    for r in rows:
        if REGISTRY[r["strategy"]].gaussian:
            k = (r["lanes"], r["width"])
            base[k] = min(base.get(k, r["power"]), r["power"])
    for r in rows:
        b = base.get((r["lanes"], r["width"]))
        r["power_rel"] = round(r["power"] / b, 4) if b else None


def pareto(items, cost, value):
    """Indices of the Pareto-optimal ``items`` (minimise ``cost(item)``, maximise
    ``value(item)``; items whose cost is None are left out)."""
    cand = [(cost(it), value(it), i) for i, it in enumerate(items) if cost(it) is not None]
    front = []
    for c, v, i in cand:
        dominated = any(c2 <= c and v2 >= v and (c2 < c or v2 > v) for c2, v2, _ in cand)
        if not dominated:
            front.append(i)
    return front


def _mark_fronts(rows):
    for r in rows:
        r["pareto_cost"] = False
        r["pareto_power"] = False
    for t in dict.fromkeys(r["target"] for r in rows):
        mine = [r for r in rows if r["target"] == t]
        key = _cost_key(t)
        for i in pareto(mine, lambda r: r[key], lambda r: r["test_accuracy"]):
            mine[i]["pareto_cost"] = True
    engines = list({r["engine_hash"]: r for r in rows}.values())
    on = {engines[i]["engine_hash"]
          for i in pareto(engines, lambda r: r["power"], lambda r: r["test_accuracy"])}
    for r in rows:
        r["pareto_power"] = r["engine_hash"] in on


def build_report(grid, points, skipped, results):
    """The report of a grid from each point's task results ``[synth, power, train…]``."""
    rows = [_row(grid, p, res[0], res[1], res[2:]) for p, res in zip(points, results)]
    _add_power_rel(rows)
    order = {s: i for i, s in enumerate(STRATEGIES)}
    targets = list(grid.targets)
    rows.sort(key=lambda r: (targets.index(r["target"]), order[r["strategy"]],
                             json.dumps(r["config"], sort_keys=True)))
    _mark_fronts(rows)
    return {"format": 1, "grid": grid.as_dict(), "rows": rows, "skipped": list(skipped),
            "metrics": {
                "lut": "LUT sites on the target (logic + LUT-RAM + ecp5 carry LUTs); None on a "
                       "cell-library target",
                "ff": "flip-flops on the target",
                "ge": "NAND2-equivalent gates of the engine on zohw's generic gate library",
                "power": "switching-activity power proxy (NAND2-toggle units per cycle; a "
                         "relative estimate, see docs/power.md); power_rel: over the cheapest "
                         "Gaussian strategy of the same P and B in the grid",
                "test_accuracy": "golden training in hardware arithmetic, mean over the seeds",
                "cycles_per_step": "the trainer's cycle model (zohw.hw.plan)",
                "writes_per_weight": "CIM writes issued per weight over the run, mean over "
                                     "the seeds"}}


# -- text ----------------------------------------------------------------------------------

def _fmt(v, kind=None):
    if v is None:
        return "—"
    if kind == "acc":
        return f"{v:.3f}"
    if kind == "rel":
        return f"{v:.2f}"
    if isinstance(v, float):
        return f"{v:,.1f}" if v < 1000 else f"{v:,.0f}"
    return f"{v:,}"


def _knob_text(r):
    parts = [f"P={r['lanes']}", f"B={r['width']}"]
    if "pool" in r:
        parts.append(f"N={r['pool']}")
    parts += [f"{k}={r[k]}" for k in r if k in {kn.name for kn in REGISTRY[r["strategy"]].knobs}]
    return " ".join(parts)


_HEAD = ("| strategy | parameters | LUT | FF | GE | power (rel.) | test accuracy | "
         "cycles/step | writes/weight |\n|---|---|---|---|---|---|---|---|---|")


def _table_row(r):
    acc = (f"{_fmt(r['test_accuracy'], 'acc')} ({_fmt(r['test_accuracy_min'], 'acc')}–"
           f"{_fmt(r['test_accuracy_max'], 'acc')})")
    power = _fmt(r["power"]) + (f" ({_fmt(r['power_rel'], 'rel')})"
                                if r["power_rel"] is not None else "")
    return (f"| `{r['strategy']}` | {_knob_text(r)} | {_fmt(r['lut'])} | {_fmt(r['ff'])} | "
            f"{_fmt(r['ge'])} | {power} | {acc} | {_fmt(r['cycles_per_step'])} | "
            f"{_fmt(r['writes_per_weight'])} |")


def _pareto_tables(report, level="###"):
    rows = report["rows"]
    out = []
    for t in dict.fromkeys(r["target"] for r in rows):
        cost = _cost_key(t)
        front = sorted((r for r in rows if r["target"] == t and r["pareto_cost"]),
                       key=lambda r: r[cost])
        what = "NAND2 gate equivalents" if cost == "ge" else "LUT sites"
        out += [f"{level} Pareto front on {t}: test accuracy against {what}", "",
                _HEAD,
                *(_table_row(r) for r in front), ""]
    first = rows[0]["target"] if rows else None
    front = sorted({r["engine_hash"]: r for r in rows if r["pareto_power"]}.values(),
                   key=lambda r: r["power"])
    out += [f"{level} Pareto front: test accuracy against the power proxy "
            f"(resources on {first})", "",
            _HEAD,
            *(_table_row(r) for r in front), ""]
    return out


def _pct(a, b):
    return 100.0 * (a - b) / b if b else 0.0


def verdict(report):
    """One paragraph, from the rows: which strategies are on the fronts, and at each P where
    the cheapest PeZO-family engine that keeps the accuracy of the cheapest Gaussian baseline
    (within :data:`ACCURACY_SLACK`) saves resources and power — and whether a strategy outside
    the PeZO family is cheaper still."""
    rows = report["rows"]
    if not rows:
        return "No points."
    fpga = [t for t in dict.fromkeys(r["target"] for r in rows) if not _cell_library(t)]
    t = fpga[0] if fpga else rows[0]["target"]
    cost = _cost_key(t)
    unit = "GE" if cost == "ge" else "LUT"
    mine = [r for r in rows if r["target"] == t]
    parts = []
    for tt in dict.fromkeys(r["target"] for r in rows):
        names = list(dict.fromkeys(r["strategy"] for r in rows
                                   if r["target"] == tt and r["pareto_cost"]))
        parts.append(f"{tt}: {', '.join(f'`{n}`' for n in names)}")
    names = list(dict.fromkeys(r["strategy"] for r in rows if r["pareto_power"]))
    text = [f"On the accuracy–cost fronts ({'; '.join(parts)}); on the accuracy–power front: "
            f"{', '.join(f'`{n}`' for n in names)}."]
    for key in sorted({(r["lanes"], r["width"]) for r in mine}):
        group = [r for r in mine if (r["lanes"], r["width"]) == key]
        gauss = [r for r in group if REGISTRY[r["strategy"]].gaussian]
        if not gauss:
            continue
        g = min(gauss, key=lambda r: r[cost])
        floor = g["test_accuracy"] - ACCURACY_SLACK
        pezo = [r for r in group if REGISTRY[r["strategy"]].pezo_family]
        good = [r for r in pezo if r["test_accuracy"] >= floor]
        bad = [r for r in pezo if r["test_accuracy"] < floor]
        where = f"At P={key[0]}" + ("" if len({k[1] for k in {(r['lanes'], r['width'])
                                                                for r in mine}}) == 1
                                     else f", B={key[1]}")
        if good:
            p = min(good, key=lambda r: r[cost])
            s = (f"{where}, PeZO's reuse pays off with `{p['strategy']}`: "
                 f"{-_pct(p[cost], g[cost]):.0f} % fewer {unit} and "
                 f"{-_pct(p['power'], g['power']):.0f} % less power than `{g['strategy']}` "
                 f"({p[cost]:,} vs {g[cost]:,} {unit} on {t}), accuracy "
                 f"{p['test_accuracy']:.3f} vs {g['test_accuracy']:.3f}")
            cheaper = [r for r in group if r[cost] < p[cost] and r["test_accuracy"] >= floor
                       and not REGISTRY[r["strategy"]].pezo_family]
            if cheaper:
                c = min(cheaper, key=lambda r: r[cost])
                s += (f"; but `{c['strategy']}` is cheaper still ({c[cost]:,} {unit}, power "
                      f"{_pct(c['power'], g['power']):+.0f} %, accuracy "
                      f"{c['test_accuracy']:.3f}) without reusing anything")
        else:
            s = (f"{where}, no PeZO-family strategy keeps within {ACCURACY_SLACK * 100:.0f} "
                 f"points of `{g['strategy']}` ({g['test_accuracy']:.3f})")
        if bad:
            s += ("; reuse does not pay off for " + ", ".join(
                f"`{r['strategy']}` ({r['test_accuracy']:.3f})" for r in bad))
        text.append(s + ".")
    return " ".join(text)


def render_markdown(report, plots=()):
    g = report["grid"]
    axes = "; ".join(f"{k} ∈ {{{', '.join(map(str, v))}}}" for k, v in g["axes"].items())
    trainer = ", ".join(f"{k}={v}" for k, v in g["trainer"].items())
    tasks = report.get("tasks", {})
    lines = [
        "## Design-space exploration", "",
        f"{len(report['rows'])} points: strategies {', '.join(f'`{s}`' for s in g['strategies'])}"
        f"{' at ' + axes if axes else ' at their defaults'} (other knobs at their defaults); "
        f"targets {', '.join(g['targets'])}; accuracy: golden training in hardware arithmetic, "
        f"{g['steps']:,} steps, mean of seeds {', '.join(map(str, g['seeds']))} (min–max in "
        f"brackets){'; ' + trainer if trainer else ''}. Power: the switching-activity proxy in "
        f"NAND2-toggle units per cycle (relative to the cheapest Gaussian strategy at the same "
        f"P in brackets) — a relative estimate, not a sign-off number (docs/power.md).", "",
    ]
    if report.get("skipped"):
        lines += [f"Skipped (invalid for the strategy): {len(report['skipped'])} "
                  f"configurations, listed in the JSON.", ""]
    lines += _pareto_tables(report)
    lines += ["**Verdict.** " + verdict(report), ""]
    for title, path in plots:
        lines += [f"![{title}]({path})", ""]
    lines += ["<details><summary>All points</summary>", ""]
    for t in dict.fromkeys(r["target"] for r in report["rows"]):
        cost = _cost_key(t)
        lines += [f"**{t}**", "", _HEAD,
                  *(_table_row(r) for r in report["rows"] if r["target"] == t), ""]
    lines += ["</details>", ""]
    if report.get("command"):
        extra = ""
        if tasks:
            extra = (f" {tasks['total']} tasks ({tasks['computed']} computed, "
                     f"{tasks['cached']} cached) in {report['wall_seconds']:,.0f} s wall on "
                     f"{report['executor']}.")
        lines += [f"Regenerate: `{report['command']}`.{extra}", ""]
    return "\n".join(lines)


# -- files ------------------------------------------------------------------------------------

def write_json(path, report):
    write_json_atomic(path, report)


_CSV_SKIP = ("config", "resources", "test_accuracy_by_seed")


def write_csv(path, report):
    """One line per row: the scalar fields, the resource counts and the per-seed accuracies."""
    rows = []
    for r in report["rows"]:
        flat = {k: v for k, v in r.items() if k not in _CSV_SKIP}
        flat.update(r["resources"])
        flat.update({f"test_accuracy_seed_{s}": a for s, a in r["test_accuracy_by_seed"].items()})
        rows.append(flat)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else r.get(k) for k in columns})
    write_text_atomic(path, buf.getvalue())


def write_markdown(path, report, plots=()):
    write_text_atomic(path, render_markdown(report, plots))


def _style(strategy):
    import matplotlib

    i = STRATEGIES.index(strategy)
    return _MARKERS[i % len(_MARKERS)], matplotlib.colormaps["tab10"](i % 10)


def _subtitle(report):
    g = report["grid"]
    n = len(g["seeds"])
    return (f"{g['trainer'].get('dataset', 'digits')}, {g['steps']:,} steps, "
            + (f"mean of {n} seeds" if n > 1 else f"seed {g['seeds'][0]}"))


def _scatter(ax, rows, cost, flag):
    seen = set()
    for r in rows:
        marker, color = _style(r["strategy"])
        ax.scatter(r[cost], r["test_accuracy"], marker=marker, color=color, s=46, zorder=3,
                   label=None if r["strategy"] in seen else r["strategy"])
        seen.add(r["strategy"])
        ax.annotate(str(r["lanes"]), (r[cost], r["test_accuracy"]), fontsize=6,
                    xytext=(3, 3), textcoords="offset points")
    front = sorted((r for r in rows if r[flag]), key=lambda r: r[cost])
    if front:
        xs = [r[cost] for r in front]
        ys = [r["test_accuracy"] for r in front]
        ax.step(xs, ys, where="post", color="black", lw=1, ls="--", zorder=2,
                label="Pareto front")
        ax.scatter(xs, ys, s=150, facecolors="none", edgecolors="black", lw=1, zorder=4)
    ax.set_xscale("log")
    from matplotlib.ticker import NullFormatter, ScalarFormatter
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="both", alpha=0.3)


def write_plots(report, lut_path=None, power_path=None):
    """Accuracy against each target's cost (LUT sites, or GE on a cell-library target; one
    panel per target) and against the power proxy; Pareto fronts dashed and ringed, one
    marker per strategy, P written beside each point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    if lut_path:
        targets = list(dict.fromkeys(r["target"] for r in rows))
        fig, axes = plt.subplots(1, len(targets), figsize=(5.2 * len(targets), 4.4),
                                 squeeze=False)
        for ax, t in zip(axes[0], targets):
            cost = _cost_key(t)
            _scatter(ax, [r for r in rows if r["target"] == t], cost, "pareto_cost")
            ax.set_title(f"{t}")
            ax.set_xlabel("NAND2 gate equivalents (GE, log scale)" if cost == "ge"
                          else "LUT sites (count, log scale)")
            ax.set_ylabel("test accuracy (fraction correct)")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=8)
        fig.suptitle(f"Test accuracy against engine resources, per target "
                     f"({_subtitle(report)}; numbers: P lanes)")
        fig.tight_layout(rect=(0, 0.1, 1, 0.95))
        with atomic_open(lut_path, "wb") as f:
            fig.savefig(f, format="png", dpi=110)
        plt.close(fig)
    if power_path:
        engines = list({r["engine_hash"]: r for r in rows}.values())
        fig, ax = plt.subplots(figsize=(7.5, 5))
        # absolute units: power_rel divides by a different baseline at each P
        _scatter(ax, engines, "power", "pareto_power")
        ax.set_xlabel("dynamic power proxy (NAND2-toggle units per cycle, log scale)")
        ax.set_ylabel("test accuracy (fraction correct)")
        ax.set_title(f"Test accuracy against the engine's power proxy\n({_subtitle(report)}; "
                     f"numbers: P lanes)")
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        with atomic_open(power_path, "wb") as f:
            fig.savefig(f, format="png", dpi=110)
        plt.close(fig)


def update_readme(path, report, plots=()):
    """Replace the text between :data:`BEGIN` and :data:`END` in ``path`` by the Pareto tables,
    the verdict and the plots."""
    from pathlib import Path

    from zohw.errors import UsageError

    text = Path(path).read_text()
    if BEGIN not in text or END not in text:
        raise UsageError(f"{path} has no {BEGIN} … {END} block to replace")
    body = _pareto_tables(report, level="####") + ["**Verdict.** " + verdict(report), ""]
    body += [f"![{title}]({p})" for title, p in plots] + [""]
    if report.get("command"):
        body += [f"Regenerate: `{report['command']}` ({report.get('wall_seconds', 0):,.0f} s "
                 f"wall on {report.get('executor', '?')}).", ""]
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    write_text_atomic(path, head + BEGIN + "\n" + "\n".join(body) + "\n" + END + tail)
