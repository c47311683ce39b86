"""Accuracy study: every perturbation strategy in hardware arithmetic beside the float references.

``python -m zohw.accuracy --out docs/accuracy [--steps 10000 --seeds 1,2,3 --jobs 2]
[--readme README.md]`` trains the default linear digits classifier (hinge loss, ZO-SGD, the
:class:`zohw.train_config.TrainerConfig` defaults) with the golden model for every strategy of
:data:`zohw.config.STRATEGIES` (each with its default engine configuration: P = 16, B = 8,
N = 256) and every seed, plus float MeZO with Gaussian z (same seeds) and first-order SGD (the
same batches and initial weights — it does not depend on the engine seed, so it runs once). It
writes ``<out>.json`` (every number), ``<out>.md`` (the table) and ``<out>.png`` (accuracy
against steps, final accuracy per method), and with ``--readme`` replaces the text between
``<!-- accuracy:begin -->`` and ``<!-- accuracy:end -->`` in that file by the table.
``--render-only`` re-renders the Markdown, plot and README from an existing ``<out>.json``.
``--knob NAME=V1,V2`` trains every strategy that declares that knob
(:data:`zohw.strategies.KNOBS`) once per value, e.g. ``--knob density=2,4,8`` gives one row per
density.
"""

import argparse
import itertools
import json
import os
import platform
import sys
import time

from zohw.config import STRATEGIES, EngineConfig
from zohw.errors import UsageError
from zohw.io import atomic_open, write_json_atomic, write_text_atomic
from zohw.strategies import KNOBS, REGISTRY
from zohw.train_config import TrainerConfig

__all__ = ["PEZO_FAMILY", "run_study", "render_markdown", "plot_study", "update_readme", "main"]

#: The PeZO-family strategies (from their registry entries): the verdict picks the best of them.
PEZO_FAMILY = tuple(name for name in STRATEGIES if REGISTRY[name].pezo_family)
REFERENCE_LABELS = {"float-gauss": "float MeZO (Gaussian z, float32)",
                    "fo-sgd": "first-order SGD (backprop, float32)"}
BEGIN, END = "<!-- accuracy:begin -->", "<!-- accuracy:end -->"
#: Points of the stored (downsampled) loss curve.
LOSS_POINTS = 100


def _downsample(values, points=LOSS_POINTS):
    n = len(values)
    k = max(1, n // points)
    return [sum(values[i:i + k]) / len(values[i:i + k]) for i in range(0, n, k)], k


def _engine(strategy, knobs):
    """The engine of a golden run; a float reference (``strategy`` None) reads only the word
    format of the default engine."""
    return EngineConfig(**({"strategy": strategy} if strategy else {}), **dict(knobs))


def _method(strategy, knobs):
    """Key of a golden run's method: the strategy, plus its knob values when varied."""
    return strategy + "".join(f":{k}={v}" for k, v in knobs)


#: The model of the default study: the linear digits classifier.
DEFAULT_MODEL = {"dataset": "digits", "input_pool": 1, "hidden": ()}


def model_config(model, **kw):
    """The :class:`TrainerConfig` of a study model (``{"dataset", "input_pool", "hidden"}``)."""
    return TrainerConfig(dataset=model["dataset"], input_pool=model["input_pool"],
                         hidden=tuple(model["hidden"]), **kw)


def rtl_verdict(cosim):
    """The stored verdict of a full-run co-simulation result dict (:func:`run_trainer_cosim`)."""
    return {"passed": bool(cosim.get("passed", not cosim.get("mismatches"))
                           and not cosim.get("mismatches")),
            "mismatches": int(cosim.get("mismatches") or 0),
            "steps": cosim.get("steps"),
            "cycles_per_step": cosim.get("cycles_per_step"),
            "predicted_cycles_per_step": cosim.get("predicted_cycles_per_step"),
            "sim_cycles_per_second": cosim.get("sim_cycles_per_second"),
            "sim_seconds": cosim.get("sim_seconds"),
            "error": cosim.get("error")}


def _cosim(cfg, golden):
    """Co-simulate the full run of ``cfg`` on the Verilated RTL, against the golden run
    ``golden`` (a hook: tests replace it)."""
    from zohw.sim.trainer import run_trainer_cosim
    return run_trainer_cosim(cfg, cfg.steps, golden=golden)


def _job(job):
    """Run one training (in a worker process); returns a JSON-able record. A golden job with
    ``verify`` also co-simulates its whole run in RTL and stores the verdict as ``rtl``."""
    kind, strategy, knobs, seed, steps, eval_every = job[:6]
    model = job[6] if len(job) > 6 else DEFAULT_MODEL
    verify = job[7] if len(job) > 7 else False
    from zohw.sw.data import load_dataset
    from zohw.sw.train import predicted_cycles_per_step, train_golden
    from zohw.sw.reference import train_reference

    cfg = model_config(model, engine=_engine(strategy, knobs), steps=steps, seed=seed,
                       eval_every=eval_every)
    data = load_dataset(cfg.dataset, cfg.cim.input_bits, cfg.input_pool)
    if kind == "golden":
        # a verified run keeps the co-simulation's checkpoint states from its own trajectory
        snapshots = ()
        if verify:
            from zohw.sim.trainer import CHECKPOINT_EVERY, checkpoint_steps
            snapshots = checkpoint_steps(cfg.steps, CHECKPOINT_EVERY)
        res = train_golden(cfg, data, snapshots=snapshots)
    else:
        res = train_reference(cfg, kind, data)
    loss, every = _downsample(res.step_loss().tolist())
    rec = {"kind": kind, "strategy": strategy, "seed": seed,
           "test_accuracy": res.final_test_accuracy,
           "train_accuracy": res.train_accuracy[-1],
           "curve": {"steps": res.eval_steps, "test": res.test_accuracy},
           "train_loss": loss, "train_loss_every": every,
           "seconds": round(res.seconds, 2)}
    if kind == "golden":
        rec["method"] = _method(strategy, knobs)
        rec["knobs"] = dict(knobs)
        rec["label"] = REGISTRY[strategy].label(cfg.engine)
        rec["engine"] = cfg.engine.name
        rec["cycles_per_step"] = predicted_cycles_per_step(cfg)
        rec["writes_per_weight"] = float(res.write_counts.double().mean())
        rec["g_saturated"] = int((res.g.abs() >= cfg.diff_max).sum())
        if verify:
            rec["rtl"] = rtl_verdict(_cosim(cfg, res))
    return rec


def variants(strategy, knobs=None):
    """The knob settings a strategy is trained with: one per combination of the values
    ``knobs`` (``{knob: [values]}``) gives for the knobs the strategy declares, as tuples of
    ``(knob, value)``; ``[()]`` (its defaults) when it declares none of them."""
    own = [k.name for k in REGISTRY[strategy].knobs if k.name in (knobs or {})]
    return [tuple(zip(own, combo)) for combo in itertools.product(*(knobs[k] for k in own))]


def check_strategies(names):
    """The strategies named (registry order kept as given), or UsageError."""
    for n in names:
        if n not in REGISTRY:
            raise UsageError(f"strategy must be one of {', '.join(STRATEGIES)}, not {n!r}")
    return tuple(dict.fromkeys(names))


def run_jobs(function, work, jobs, desc=None):
    """``[function(job) for job in work]`` in completion order, on ``jobs`` spawned processes
    when ``jobs > 1``; a tqdm bar described ``desc`` when given."""
    bar = None
    if desc:
        from tqdm import tqdm
        bar = tqdm(total=len(work), unit="run", desc=desc)
    records = []
    if jobs > 1:
        import multiprocessing as mp

        from zohw.signals import pool_worker_init
        # spawned, not forked: a forked worker deadlocks in torch's thread pool once the parent
        # has used it (seen with --verify-rtl); the workers stop with the parent on Ctrl-C
        with mp.get_context("spawn").Pool(jobs, initializer=pool_worker_init) as pool:
            for rec in pool.imap_unordered(function, work):
                records.append(rec)
                if bar is not None:
                    bar.update(1)
            pool.close()        # let the workers exit: leaving the block terminates them
            pool.join()
    else:
        for job in work:
            records.append(function(job))
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return records


def run_study(steps=10000, seeds=(1, 2, 3), jobs=2, eval_every=None, progress=True,
              knobs=None, model=None, strategies=None, verify_rtl=False):
    """Run every training of the study; returns the report dict. ``knobs`` (``{knob:
    [values]}``) trains each strategy that declares a knob once per value (else at its
    defaults). ``model`` (``{"dataset", "input_pool", "hidden"}``, default the linear digits
    classifier) is the model every method trains; ``strategies`` a subset of the registry;
    ``verify_rtl`` co-simulates the full run of the first seed of every golden row in RTL
    (``rtl`` in its record, ``verified_rtl`` in its summary)."""
    model = dict(DEFAULT_MODEL if model is None else model)
    model["hidden"] = tuple(model["hidden"])
    eval_every = eval_every or max(1, steps // 20)
    strategies = STRATEGIES if strategies is None else check_strategies(strategies)
    golden = [(s, v) for s in strategies for v in variants(s, knobs)]
    for s, v in golden:
        _engine(s, v)                     # an invalid knob value fails before any training
    cfg = model_config(model, steps=steps, seed=seeds[0])  # an invalid model fails here too
    from zohw.sw.data import load_dataset
    load_dataset(cfg.dataset, cfg.cim.input_bits, cfg.input_pool)  # loaded once, before forks
    m = model
    work = [("golden", s, v, seed, steps, eval_every, m, verify_rtl and seed == seeds[0])
            for s, v in golden for seed in seeds]
    work += [("float-gauss", None, (), seed, steps, eval_every, m) for seed in seeds]
    # first-order SGD does not depend on the engine seed; from a seeded uniform init it does
    fo_seeds = seeds if cfg.init == "uniform" else seeds[:1]
    work += [("fo-sgd", None, (), seed, steps, eval_every, m) for seed in fo_seeds]
    t0 = time.perf_counter()
    records = run_jobs(_job, work, jobs, progress and "accuracy study")
    wall = time.perf_counter() - t0
    order = {_method(s, v): i for i, (s, v) in enumerate(golden)}
    records.sort(key=lambda r: (r["kind"] != "golden", order.get(r.get("method"), 0),
                                r["kind"], r["seed"]))
    from zohw.commands.train import mapping_dict
    mapping = mapping_dict(cfg)
    return {"steps": steps, "seeds": list(seeds), "eval_every": eval_every,
            "knobs": {k: list(v) for k, v in (knobs or {}).items()},
            "model": {**mapping["model"], "input_pool": model["input_pool"]},
            "dataset": mapping["dataset"], "tiles": mapping["tiles"],
            "write_lanes": mapping["write_lanes"], "verify_rtl": bool(verify_rtl),
            "config": {k: v for k, v in cfg.as_dict().items() if k not in ("engine", "seed")},
            "runs": records, "summary": summarize(records),
            "wall_seconds": round(wall, 1), "jobs": jobs,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}


def _mean(xs):
    return sum(xs) / len(xs)


def _key(record):
    """The method a run belongs to: a golden run's method (reports before knob variants: its
    strategy), or the reference's kind."""
    if record["kind"] != "golden":
        return record["kind"]
    return record.get("method", record["strategy"])


def summarize(records):
    """Mean/min/max final test accuracy per method, gaps to float MeZO, the PeZO verdict."""
    rows = {}
    for r in records:
        rows.setdefault(_key(r), []).append(r)
    out = {}
    for key, rs in rows.items():
        accs = [r["test_accuracy"] for r in rs]
        out[key] = {"mean": _mean(accs), "min": min(accs), "max": max(accs),
                    "per_seed": {str(r["seed"]): r["test_accuracy"] for r in rs},
                    "seconds_per_run": _mean([r["seconds"] for r in rs])}
        if rs[0]["kind"] == "golden":
            out[key]["strategy"] = rs[0]["strategy"]
            out[key]["knobs"] = rs[0].get("knobs", {})
            out[key]["label"] = rs[0].get("label", rs[0]["strategy"])
            out[key]["cycles_per_step"] = rs[0]["cycles_per_step"]
            out[key]["writes_per_weight"] = _mean([r["writes_per_weight"] for r in rs])
            rtl = [r["rtl"] for r in rs if "rtl" in r]
            if rtl:
                out[key]["verified_rtl"] = {
                    "passed": all(v["passed"] for v in rtl),
                    "seeds": [r["seed"] for r in rs if "rtl" in r],
                    "mismatches": sum(v["mismatches"] for v in rtl),
                    "steps": rtl[0]["steps"]}
    mezo = out["float-gauss"]["mean"]
    for key, v in out.items():
        v["gap_to_float_mezo_points"] = 100.0 * (v["mean"] - mezo)
    pezo = [k for k, v in out.items() if v.get("strategy") in PEZO_FAMILY]
    if not pezo:
        return {"methods": out, "verdict": {"float_mezo_accuracy": mezo}}
    best = max(pezo, key=lambda k: out[k]["mean"])
    verdict = {
        "best_pezo": best,
        "best_pezo_accuracy": out[best]["mean"],
        "float_mezo_accuracy": mezo,
        "best_pezo_gap_points": out[best]["gap_to_float_mezo_points"],
        "pezo_shift_accuracy": out.get("pezo-shift", {}).get("mean"),
        "pezo_shift_gap_points": out.get("pezo-shift", {}).get("gap_to_float_mezo_points"),
        "meets_target": (out[best]["mean"] >= 0.88
                         and out[best]["gap_to_float_mezo_points"] >= -2.0),
    }
    return {"methods": out, "verdict": verdict}


def _strategy(key, method):
    return method.get("strategy", key)


def _method_keys(methods):
    """Golden methods in registry order (a strategy's knob variants by value), then the
    references."""
    order = {name: i for i, name in enumerate(STRATEGIES)}

    def rank(key):
        strategy = _strategy(key, methods[key])
        return (order.get(strategy, len(order)), strategy,
                tuple(methods[key].get("knobs", {}).values()))
    golden = sorted((k for k in methods if k not in REFERENCE_LABELS), key=rank)
    return golden + [k for k in REFERENCE_LABELS if k in methods]


def _golden_name(key, method):
    """```pezo-otf``` for a strategy at its defaults; with varied knobs, its label with the
    name as code (```sparse`` (ρ=1/4, …)``)."""
    strategy = _strategy(key, method)
    label = method.get("label", strategy)
    if key == strategy or not label.startswith(strategy):
        return f"`{key}`"
    return f"`{strategy}`{label[len(strategy):]}"


def _model_of(report):
    """(dataset name, model shape, d, kind) of a report; reports written before the data set
    options were the linear digits model."""
    m = report.get("model") or {"shape": "64-10", "kind": "linear", "params": 650}
    ds = report.get("dataset") or {"name": "digits", "n_test": 364, "input_pool": 1}
    return ds, m


def _dataset_title(name):
    return {"digits": "Digits", "mnist-5k": "MNIST-5k"}.get(name, name)


def rtl_cell(method):
    """The "verified in RTL over the full run" cell of a golden row."""
    v = method.get("verified_rtl")
    if v is None:
        return "not run"
    seeds = ", ".join(map(str, v["seeds"]))
    steps = f"{v['steps']:,}".replace(",", "\u202f") if v.get("steps") else "?"
    if v["passed"]:
        return f"yes: seed {seeds}, {steps} steps, 0 mismatches"
    return f"**FAILED**: seed {seeds}, {v['mismatches']} mismatches"


def _adc_text(cim):
    """``", 11-bit ADC per 128x32 tile (exact)"``: the CIM conversion of a study's model."""
    if not cim or cim.get("adc_bits") is None:
        return ""
    from zohw.cim_config import CIMConfig
    c = CIMConfig.from_dict(cim)
    how = ("exact" if c.adc_exact else
           f"drops {c.adc_shift} of {c.column_sum_bits} bits" if c.adc_shift else "clips")
    return f", {c.adc_bits}-bit ADC per {c.tile} tile ({how})"


def render_markdown(report, heading_level=2):
    h = "#" * heading_level
    s = report["summary"]
    m, v = s["methods"], s["verdict"]
    seeds = report["seeds"]
    ds, model = _model_of(report)
    cfg = report["config"]
    name = _dataset_title(ds["name"])
    rows = " + ".join(f"{L['rows']} × {L['cols']}" for L in report.get("tiles", {}).get(
        "layers", [])) or "65 × 10"
    kind = ("Linear classifier" if model["kind"] == "linear" else
            f"MLP {model['shape']} (ReLU, requantised)")
    pool = (f", inputs pooled {ds['input_pool']}×{ds['input_pool']}"
            if ds.get("input_pool", 1) > 1 else "")
    pool += _adc_text(cfg.get("cim"))
    lines = [
        f"{h} {name} accuracy after {report['steps']:,} steps".replace(",", "\u202f"),
        "",
        f"{kind} ({rows} weights, 12-bit in the CIM macro{pool}), {cfg['loss']} loss, "
        f"ZO-SGD, batch {cfg['batch']}, ε = 2^-{cfg['eps_shift']}, "
        f"update shift {cfg['lr_shift']}; test accuracy on the {ds['n_test']} held-out "
        f"samples, mean over engine seeds {', '.join(map(str, seeds))} "
        f"(min–max in brackets). *Hardware arithmetic* = the golden model, bit-exact with the "
        f"RTL (CIM ADC, shifts, saturation, rounding).",
        "",
        "| method | arithmetic | test accuracy | vs float MeZO | cycles/step | writes/weight "
        "| verified in RTL over the full run |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in _method_keys(m):
        r = m[key]
        acc = f"{r['mean']:.3f}"
        if len(r["per_seed"]) > 1:
            acc += f" ({r['min']:.3f}–{r['max']:.3f})"
        gap = "—" if key == "float-gauss" else f"{r['gap_to_float_mezo_points']:+.1f} pt"
        if key not in REFERENCE_LABELS:
            label = _golden_name(key, r) + (" (PeZO)" if _strategy(key, r) in PEZO_FAMILY
                                            else "")
            arith = "hardware (golden)"
            cyc = f"{r['cycles_per_step']:,}"
            wr = f"{r['writes_per_weight']:,.0f}"
            rtl = rtl_cell(r)
        else:
            label = REFERENCE_LABELS[key]
            arith = "float32"
            cyc = wr = rtl = "—"
        lines.append(f"| {label} | {arith} | {acc} | {gap} | {cyc} | {wr} | {rtl} |")
    if "best_pezo" in v and ds["name"] != "digits":
        gap = v["best_pezo_gap_points"]
        verdict = (
            f"Best PeZO-family strategy: **`{v['best_pezo']}`**, {v['best_pezo_accuracy']:.3f} "
            f"({gap:+.1f} points against float Gaussian MeZO, {v['float_mezo_accuracy']:.3f} "
            f"on the same model, steps and batches): within 2 points: "
            f"**{'yes' if gap >= -2.0 else 'no'}**.")
    elif "best_pezo" in v:
        verdict = (
            f"Best PeZO-family strategy: **`{v['best_pezo']}`**, {v['best_pezo_accuracy']:.3f} "
            f"({v['best_pezo_gap_points']:+.1f} points against float Gaussian MeZO, "
            f"{v['float_mezo_accuracy']:.3f}); target ≥ 0.88 and within 2 points: "
            f"**{'met' if v['meets_target'] else 'NOT met'}**.")
    else:
        verdict = f"Float Gaussian MeZO reaches {v['float_mezo_accuracy']:.3f}."
    if v.get("pezo_shift_accuracy") is not None:
        verdict += (
            f" `pezo-shift` reaches {v['pezo_shift_accuracy']:.3f} "
            f"({v['pezo_shift_gap_points']:+.1f} points): with d = {model['params']} weights "
            f"and a 256-word pool its perturbations span at most N/P = 16 directions, so "
            f"training is confined to a 16-dimensional subspace. `pezo-block` reads the same "
            f"pool with per-lane random block offsets and a fresh sign per word, which spans "
            f"every direction — see `docs/strategies.md`.")
    command = report.get("command", "python -m zohw.accuracy --out docs/accuracy "
                                    "--readme README.md")
    rtl_note = (" The last column: the whole run of the first seed co-simulated on the "
                "Verilated RTL trainer and compared bit for bit with the golden model (every "
                "step's L+, L−, g and cycle count; every weight and write count at "
                "checkpoints and at the end) — `make accuracy-rtl`; \"not run\" otherwise.")
    lines += [
        "",
        verdict,
        "",
        f"Regenerate: `{command}` ({len(report['runs'])} trainings, "
        f"{report['wall_seconds']:.0f} s wall on {report['jobs']} processes). Cycles/step is "
        f"the analytic model (`zohw.sw.train.predicted_cycles_per_step`); writes/weight are "
        f"the CIM writes issued per weight over the run (3 per step, unchanged values "
        f"suppressed).{rtl_note}",
        "",
    ]
    if report.get("plot", True):
        png = report.get("png", "accuracy.png")
        lines += [f"![{name} accuracy](docs/{png})" if heading_level > 2 else
                  f"![{name} accuracy]({png})", ""]
    return "\n".join(lines)


def plot_study(path, report):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = report["runs"]
    m = report["summary"]["methods"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6),
                                   gridspec_kw={"width_ratios": [1.5, 1]})
    keys = _method_keys(m)
    cmap = plt.get_cmap("tab20" if len(keys) > 10 else "tab10")
    for i, key in enumerate(keys):
        rs = [r for r in runs if _key(r) == key]
        steps = rs[0]["curve"]["steps"]
        mean = [_mean([r["curve"]["test"][j] for r in rs]) for j in range(len(steps))]
        ls = "--" if key in ("float-gauss", "fo-sgd") else "-"
        lw = 2.0 if _strategy(key, m[key]) in PEZO_FAMILY or ls == "--" else 1.2
        label = REFERENCE_LABELS.get(key, m[key].get("label", key))
        ax1.plot(steps, mean, ls, color=cmap(i), lw=lw, label=label)
    ds, model = _model_of(report)
    ax1.set_xlabel("training step")
    ax1.set_ylabel("test accuracy (fraction of test samples, mean over seeds)")
    ax1.set_ylim(0, 1)
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=7.5, loc="lower right")
    ax1.set_title(f"Test accuracy against training steps: {_dataset_title(ds['name'])}, "
                  f"{model['kind']} model {model['shape']}, zeroth-order SGD", fontsize=10)
    ys = range(len(keys))
    ax2.barh(list(ys), [m[k]["mean"] for k in keys], color=[cmap(i) for i in ys], alpha=0.8)
    for i, k in enumerate(keys):
        for a in m[k]["per_seed"].values():
            ax2.plot(a, i, "k.", ms=4)
        ax2.text(0.02, i, f"{m[k]['mean']:.3f}", va="center", fontsize=8, color="white",
                 fontweight="bold")
    if ds["name"] == "digits":
        ax2.axvline(0.88, color="gray", ls=":", lw=1, label="digits target 0.88")
        ax2.legend(fontsize=7.5, loc="lower right")
    ax2.set_yticks(list(ys))
    ax2.set_yticklabels([REFERENCE_LABELS[k].split(" (")[0] if k in REFERENCE_LABELS
                         else m[k].get("label", k) for k in keys], fontsize=8)
    ax2.invert_yaxis()
    ax2.set_xlim(0, 1)
    ax2.set_xlabel(f"test accuracy after {report['steps']} steps (dots: seeds)")
    ax2.set_title("Final test accuracy per method", fontsize=10)
    ax2.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)


def update_readme(readme_path, report):
    """Replace the text between the accuracy markers; returns True if the file changed.
    Raises ValueError when the markers are missing."""
    with open(readme_path, encoding="utf-8") as f:
        text = f.read()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{readme_path} must contain {BEGIN} followed by {END}")
    note = ("<!-- generated from docs/accuracy.json by `make accuracy`; do not edit by hand -->")
    body = note + "\n\n" + render_markdown(report, heading_level=3).rstrip() + "\n"
    new = text[:start + len(BEGIN)] + "\n" + body + text[end:]
    if new != text:
        write_text_atomic(readme_path, new)
    return new != text


def _seeds(text):
    try:
        seeds = tuple(int(s, 10) for s in text.split(","))
    except ValueError:
        raise UsageError(f"seeds must be comma-separated integers, not {text!r}") from None
    if not seeds or any(not 0 <= s < 2 ** 32 for s in seeds):
        raise UsageError(f"seeds must be 32-bit unsigned integers, not {text!r}")
    return seeds


def parse_knobs(items):
    """``["density=2,4,8"]`` → ``{"density": [2, 4, 8]}`` (knobs of the strategy registry)."""
    out = {}
    for item in items or ():
        name, eq, values = item.partition("=")
        name = name.strip()
        if not eq or name not in KNOBS:
            raise UsageError(f"knob must be NAME=V1,V2,… with NAME one of "
                             f"{', '.join(KNOBS)}, not {item!r}")
        kind = KNOBS[name][0].kind
        vals = []
        for text in (v.strip() for v in values.split(",") if v.strip()):
            try:
                vals.append(kind(text))
            except ValueError:
                raise UsageError(f"knob {name} must be a list of {kind.__name__} values, "
                                 f"not {text!r}") from None
        if not vals or name in out:
            raise UsageError(f"knob {name} must be given once, with at least one value")
        out[name] = list(dict.fromkeys(vals))
    return out


def _model_options(args):
    """The models the options name: ``--model`` specs, else one model from ``--hidden`` and
    ``--input-pool``."""
    from .scale import parse_model
    if args.model:
        if args.hidden is not None or args.input_pool is not None:
            raise UsageError("--hidden and --input-pool cannot be used with --model (a model "
                             "spec names its own: linear, mlp:H[,H2...], /poolK)")
        models = [parse_model(spec) for spec in args.model]
    else:
        text = args.hidden or "none"
        models = [parse_model("linear" if text == "none" else f"mlp:{text}")]
        if args.input_pool is not None:
            models[0]["input_pool"] = _positive("input_pool", args.input_pool)
    return [{"dataset": args.dataset, **m} for m in models]


def _positive(name, text):
    try:
        v = int(text, 10)
    except ValueError:
        v = 0
    if v < 1:
        raise UsageError(f"{name} must be a positive integer, not {text!r}")
    return v


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m zohw.accuracy",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/accuracy", metavar="PREFIX",
                        help="write PREFIX.json, PREFIX.md, PREFIX.png (default docs/accuracy)")
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--seeds", default="1,2,3", help="engine seeds (default 1,2,3)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--knob", action="append", default=[], metavar="NAME=V1,V2,…",
                        help="train each strategy that has this knob once per value "
                             f"(repeatable; knobs: {', '.join(KNOBS)})")
    parser.add_argument("--dataset", default="digits", metavar="NAME|PATH.npz",
                        help="the data set every model trains on (default digits)")
    parser.add_argument("--model", action="append", default=[], metavar="SPEC",
                        help="a model: linear or mlp:H[,H2...], optionally /poolK (e.g. "
                             "mlp:32/pool2); repeatable: several models give the study at "
                             "scale (cost table, one accuracy panel per model)")
    parser.add_argument("--hidden", default=None, metavar="H[,H2,...]",
                        help="hidden widths of the one model (none: linear; default)")
    parser.add_argument("--input-pool", default=None, metavar="K",
                        help="sum KxK blocks of the images (default 1: off)")
    parser.add_argument("--strategies", default=None, metavar="S1,S2,…",
                        help=f"train only these strategies (default all: {', '.join(STRATEGIES)})")
    parser.add_argument("--verify-rtl", action="store_true",
                        help="also co-simulate the full run of the first seed of every "
                             "strategy row on the Verilated RTL trainer (bit-exact check); "
                             "the table's last column reports the verdicts")
    parser.add_argument("--combine", action="append", default=[], metavar="JSON",
                        help="render the study at scale from these single-model reports "
                             "(repeatable; one data set; no training)")
    parser.add_argument("--readme", metavar="FILE", help="update the table in this README")
    parser.add_argument("--render-only", action="store_true",
                        help="re-render from PREFIX.json without training")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    prefix = args.out[:-5] if args.out.endswith(".json") else args.out
    try:
        if args.steps < 1:
            raise UsageError(f"steps must be at least 1, not {args.steps}")
        if args.jobs < 1:
            raise UsageError(f"jobs must be at least 1, not {args.jobs}")
        seeds = _seeds(args.seeds)
        knobs = parse_knobs(args.knob)
        strategies = (None if args.strategies is None else
                      check_strategies([s.strip() for s in args.strategies.split(",")
                                        if s.strip()]))
        models = _model_options(args)
        for model in models:               # every model valid before any training
            model_config(model, steps=args.steps, seed=seeds[0])
        if args.readme and len(models) > 1:
            raise UsageError("--readme takes the single-model table; the study at scale "
                             "(several --model) writes PREFIX.md only")
        from zohw.io import check_output_path
        for suffix in (".json", ".md", ".png"):
            if not (args.render_only and suffix == ".json"):
                check_output_path("--out", prefix + suffix)
        from .scale import combine, plot_scale, render_scale_markdown, run_scale
        if args.combine:
            parts = []
            for path in args.combine:
                with open(path, encoding="utf-8") as f:
                    parts.append(json.load(f))
            report = combine(parts)
        elif args.render_only:
            with open(prefix + ".json", encoding="utf-8") as f:
                report = json.load(f)
        elif len(models) > 1:
            report = run_scale(args.dataset, models, args.steps, seeds, args.jobs,
                               progress=not args.quiet, strategies=strategies,
                               verify_rtl=args.verify_rtl)
        else:
            report = run_study(args.steps, seeds, args.jobs, progress=not args.quiet,
                               knobs=knobs, model=models[0], strategies=strategies,
                               verify_rtl=args.verify_rtl)
        if not args.render_only:
            report["command"] = "python -m zohw.accuracy " + " ".join(
                sys.argv[1:] if argv is None else argv)
            report["png"] = os.path.basename(prefix) + ".png"
            write_json_atomic(prefix + ".json", report)
        if report.get("kind") == "scale":
            text = render_scale_markdown(report)
            plot_scale(prefix + ".png", report)
        else:
            text = render_markdown(report)
            plot_study(prefix + ".png", report)
        write_text_atomic(prefix + ".md", text)
        if args.readme:
            changed = update_readme(args.readme, report)
            if not args.quiet:
                print(f"{args.readme}: accuracy table {'updated' if changed else 'unchanged'}")
    except (OSError, ValueError) as exc:
        print(f"python -m zohw.accuracy: error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(text)
        failed = [k for r in report.get("models", [report])
                  for k, v in r["summary"]["methods"].items()
                  if not v.get("verified_rtl", {"passed": True})["passed"]]
        print(f"python -m zohw.accuracy: {len(report.get('models', [report]))} model(s), "
              f"{sum(len(r['runs']) for r in report.get('models', [report]))} trainings"
              + (f", RTL verification FAILED for {', '.join(failed)}" if failed else "")
              + f"; wrote {prefix}.json, {prefix}.md, {prefix}.png")
    return 0
