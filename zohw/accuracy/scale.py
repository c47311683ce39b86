"""The accuracy study at scale: several models of one data set (e.g. MNIST-5k linear and a
pooled MLP), each trained by the chosen strategies in hardware arithmetic beside float Gaussian
MeZO and first-order SGD on the same model, steps, batches and seeds
(:func:`zohw.accuracy.study.run_study` per model), with a cost table (d, tiles, utilisation,
cycles/step, writes/weight) and test accuracy against steps for every model.

``python -m zohw.accuracy --dataset mnist-5k --model linear --model mlp:32/pool2
--strategies pezo-otf,gauss-clt --steps 20000 --out docs/accuracy-mnist`` (``make
accuracy-mnist``).
"""

from zohw.errors import UsageError
from zohw.io import atomic_open

from .study import (REFERENCE_LABELS, _dataset_title, _key, _mean, _method_keys, render_markdown,
                    run_study)

__all__ = ["parse_model", "model_name", "run_scale", "combine", "render_scale_markdown",
           "plot_scale", "convergence"]


def parse_model(spec):
    """``linear`` | ``mlp:H[,H2…]``, optionally ``/poolK`` → ``{"hidden", "input_pool"}``."""
    text = spec.strip()
    body, _, pool = text.partition("/")
    k = 1
    if pool:
        if not pool.startswith("pool") or not pool[4:].isdigit() or int(pool[4:]) < 1:
            raise UsageError(f"model must be linear or mlp:H[,H2...], optionally /poolK "
                             f"(e.g. mlp:32/pool2), not {spec!r}")
        k = int(pool[4:])
    if body == "linear":
        hidden = ()
    elif body.startswith("mlp:"):
        try:
            hidden = tuple(int(h, 10) for h in body[4:].split(","))
        except ValueError:
            hidden = None
        if not hidden or any(h < 1 for h in hidden):
            raise UsageError(f"model must be linear or mlp:H[,H2...] with positive widths, "
                             f"optionally /poolK, not {spec!r}")
    else:
        raise UsageError(f"model must be linear or mlp:H[,H2...], optionally /poolK "
                         f"(e.g. mlp:32/pool2), not {spec!r}")
    return {"hidden": hidden, "input_pool": k}


def model_name(report):
    m = report["model"]
    pool = report["dataset"].get("input_pool", 1)
    return f"{m['kind']} {m['shape']}" + (f" (pooled {pool}×{pool})" if pool > 1 else "")


def run_scale(dataset, models, steps, seeds, jobs=2, eval_every=None, progress=True,
              strategies=None, verify_rtl=False):
    """One :func:`run_study` report per model of ``models`` (dicts from :func:`parse_model`)
    on ``dataset``; returns ``{"dataset", "steps", "seeds", "models": [report…]}``."""
    reports = []
    for spec in models:
        model = {"dataset": dataset, "input_pool": spec["input_pool"],
                 "hidden": tuple(spec["hidden"])}
        reports.append(run_study(steps, seeds, jobs, eval_every, progress, model=model,
                                 strategies=strategies, verify_rtl=verify_rtl))
    return {"kind": "scale", "dataset": dataset, "steps": steps, "seeds": list(seeds),
            "models": reports, "wall_seconds": round(sum(r["wall_seconds"] for r in reports), 1),
            "jobs": jobs}


def combine(reports):
    """A study-at-scale report from single-model study reports of one data set (their steps
    may differ: each model's section names its own)."""
    names = {r["dataset"]["name"] for r in reports if "dataset" in r}
    if len(names) != 1 or any("dataset" not in r for r in reports):
        raise UsageError("--combine needs single-model study reports of one data set, not "
                         f"{sorted(names) or 'reports without a data set'}")
    steps = sorted({r["steps"] for r in reports})
    return {"kind": "scale", "dataset": names.pop(), "steps": steps[0] if len(steps) == 1
            else steps, "seeds": reports[0]["seeds"], "models": list(reports),
            "wall_seconds": round(sum(r["wall_seconds"] for r in reports), 1),
            "jobs": reports[0]["jobs"]}


def _steps_text(n):
    return format(n, ",").replace(",", "\u202f")


def _mean_curve(report, key):
    rs = [r for r in report["runs"] if _key(r) == key]
    steps = rs[0]["curve"]["steps"]
    return steps, [_mean([r["curve"]["test"][j] for r in rs]) for j in range(len(steps))]


def convergence(report, key):
    """How far a method's mean curve still moves: (accuracy at half the steps, final, points
    gained in the second half)."""
    steps, acc = _mean_curve(report, key)
    half = min(range(len(steps)), key=lambda j: abs(steps[j] - steps[-1] / 2))
    return acc[half], acc[-1], 100.0 * (acc[-1] - acc[half])


def render_scale_markdown(scale):
    name = _dataset_title(scale["dataset"])
    steps = scale["steps"]
    lines = [
        f"## {name}: zeroth-order training at scale"
        + (f", {_steps_text(steps)} steps" if isinstance(steps, int) else ""),
        "",
        "Cost of one training step in hardware per model (cycles/step from the cycle model "
        "`TrainerPlan`, min–max over the strategies; writes/weight = CIM writes issued per "
        "weight per step, mean over strategies and seeds; tiles of the fixed CIM macro):",
        "",
        "| model | d (weights) | CIM tile | tiles per layer | tiles | utilisation | write lanes "
        "| cycles/step | writes/weight/step | steps trained |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in scale["models"]:
        m = r["summary"]["methods"]
        golden = [k for k in m if k not in REFERENCE_LABELS]
        cyc = sorted({m[k]["cycles_per_step"] for k in golden})
        cyc_s = f"{cyc[0]:,}" if len(cyc) == 1 else f"{cyc[0]:,}–{cyc[-1]:,}"
        wpw = _mean([m[k]["writes_per_weight"] for k in golden]) / r["steps"] if golden else 0
        layers = r["tiles"]["layers"]
        per = " + ".join(f"{L['row_tiles']}×{L['col_tiles']}" for L in layers)
        cells = sum(L["rows"] * L["cols"] for L in layers)
        tr, tc = (int(v) for v in r["tiles"]["tile"].split("x"))
        util = cells / (r["tiles"]["total"] * tr * tc)
        lines.append(f"| {model_name(r)} | {r['model']['params']:,} | {r['tiles']['tile']} | "
                     f"{per} | {r['tiles']['total']} | {100 * util:.0f} % | "
                     f"{r['write_lanes']} | {cyc_s} | {wpw:.2f} | {_steps_text(r['steps'])} |")
    lines += ["", "Test accuracy (mean over seeds, min–max in brackets), per model:", ""]
    for r in scale["models"]:
        m = r["summary"]["methods"]
        golden = [k for k in _method_keys(m) if k not in REFERENCE_LABELS]
        lines.append(f"### {model_name(r)}, {_steps_text(r['steps'])} steps")
        lines.append("")
        body = render_markdown(dict(r, plot=False, command=r.get("command")
                                    or scale.get("command", "")), heading_level=4).split("\n")
        lines += body[2:]          # the section's own heading is replaced by the model's
        notes = []
        for k in golden + ["float-gauss", "fo-sgd"]:
            if k not in m:
                continue
            a_half, a_end, gain = convergence(r, k)
            label = REFERENCE_LABELS.get(k, f"`{k}`").split(" (")[0]
            notes.append(f"{label} {a_half:.3f} → {a_end:.3f} ({gain:+.1f} pt)")
        lines += [f"Second half of the run (accuracy at step {_steps_text(r['steps'] // 2)} → "
                  f"{_steps_text(r['steps'])}): " + "; ".join(notes) + ". A method still gaining points "
                  "in the second half has not converged: zeroth-order SGD's progress per step "
                  "shrinks like 1/d, so at d = " + f"{r['model']['params']:,}" + " it needs "
                  "more steps than the first-order ceiling.", ""]
    lines += [f"![{name} test accuracy against steps]({scale.get('png', 'accuracy.png')})", ""]
    return "\n".join(lines)


def plot_scale(path, scale):
    """Test accuracy against steps, one panel per model: every method's mean over seeds, the
    min–max band of the seeds shaded."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(scale["models"])
    fig, axes = plt.subplots(1, n, figsize=(6 * n, 4.6), squeeze=False)
    for ax, r in zip(axes[0], scale["models"]):
        m = r["summary"]["methods"]
        keys = _method_keys(m)
        cmap = plt.get_cmap("tab10")
        for i, key in enumerate(keys):
            rs = [x for x in r["runs"] if _key(x) == key]
            steps, mean = _mean_curve(r, key)
            lo = [min(x["curve"]["test"][j] for x in rs) for j in range(len(steps))]
            hi = [max(x["curve"]["test"][j] for x in rs) for j in range(len(steps))]
            ref = key in REFERENCE_LABELS
            label = REFERENCE_LABELS.get(key, m[key].get("label", key) + " (hardware)")
            ax.plot(steps, mean, "--" if ref else "-", color=cmap(i), lw=1.6,
                    label=f"{label}, {len(rs)} seed{'s' if len(rs) > 1 else ''}")
            if len(rs) > 1:
                ax.fill_between(steps, lo, hi, color=cmap(i), alpha=0.15, lw=0)
        ax.set_title(f"{model_name(r)}, d = {r['model']['params']:,} weights", fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel("test accuracy (fraction of test samples)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7.5, loc="lower right", title="mean over seeds (band: min–max)",
                  title_fontsize=7.5)
    fig.suptitle(f"{_dataset_title(scale['dataset'])}: test accuracy against training steps, "
                 f"zeroth-order training in hardware arithmetic vs float references",
                 fontsize=11)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
