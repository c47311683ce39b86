"""Where the accuracy of a model goes in hardware arithmetic: one factor at a time.

``python -m zohw.accuracy.diagnose --out docs/accuracy-mnist-diagnosis [--steps 5000
--seeds 1,2 --jobs 2 --variants NAME,…]`` trains one model (default: the MNIST-5k linear
classifier) with the golden model from a *baseline* hardware configuration (``--baseline``,
default the 9-bit per-tile ADC that was the default before the diagnosis) and changes one
factor at a time towards float arithmetic — ADC resolution and range, tile size, weight and
input bits, update rounding, learning-rate shift, ε, the weight scale — beside float Gaussian
MeZO at the matching hyper-parameters. Each variant names the float reference it is compared
with (same model, steps, batches, seeds and effective step size). Writes ``<out>.json`` (every
run) and ``<out>.md`` (the table, with the command).
"""

import argparse
import sys
import time

from zohw.accuracy.study import run_jobs
from zohw.errors import ConfigError, UsageError
from zohw.io import write_json_atomic, write_text_atomic

__all__ = ["VARIANTS", "variant_config", "run_diagnosis", "render_markdown", "main"]

#: The baseline: the hardware before the diagnosis (a 9-bit ADC per 128-row tile drops 2 of
#: the 11 bits of its column sums).
BASELINE = {"cim": {"adc_bits": 9}}

#: name → (kind, what changes against the baseline, changes, float reference variant).
#: ``changes``: TrainerConfig fields, plus ``cim`` (CIMConfig fields) — applied on top of the
#: baseline (``cim`` merged). Float references train the same configuration in float32 (their
#: ADC fields do not matter).
VARIANTS = {
    "float": ("float-gauss", "float Gaussian MeZO at the default lr_shift", {}, None),
    "float-lr14": ("float-gauss", "float MeZO, lr_shift + 1", {"lr_shift": 14}, None),
    "float-lr15": ("float-gauss", "float MeZO, lr_shift + 2", {"lr_shift": 15}, None),
    "float-in6": ("float-gauss", "float MeZO, 6-bit inputs", {"cim": {"input_bits": 6}}, None),
    "adc9": ("golden", "baseline: 9-bit ADC, 2 LSBs of the tile's 11-bit column sums dropped",
             {}, "float"),
    "adc10": ("golden", "10-bit ADC (1 LSB dropped)", {"cim": {"adc_bits": 10}}, "float"),
    "adc11": ("golden", "11-bit ADC: exact conversion (the new default)",
              {"cim": {"adc_bits": 11}}, "float"),
    "adc16": ("golden", "16-bit ADC (exact, 5 bits to spare)", {"cim": {"adc_bits": 16}},
              "float"),
    "adc9-range": ("golden", "9-bit ADC over the low range: adc_shift 0, sums above 511 clip",
                   {"cim": {"adc_shift": 0}}, "float"),
    "tile64": ("golden", "64x32 tiles (13 row tiles): the 9-bit ADC drops 1 LSB",
               {"cim": {"tile": "64x32"}}, "float"),
    "floor": ("golden", "update rounding floor (instead of nearest)", {"rounding": "floor"},
              "float"),
    "wb16": ("golden", "16-bit weights (4 slices; the top slice's truncation weighs 2**12)",
             {"cim": {"weight_bits": 16}}, "float"),
    "in6": ("golden", "6-bit inputs (float reference: 6-bit inputs too)",
            {"cim": {"input_bits": 6}}, "float-in6"),
    "lr12": ("golden", "lr_shift - 1", {"lr_shift": 12}, None),
    "lr14": ("golden", "lr_shift + 1", {"lr_shift": 14}, "float-lr14"),
    "lr15": ("golden", "lr_shift + 2", {"lr_shift": 15}, "float-lr15"),
    "eps3": ("golden", "ε × 2 (eps_shift 3)", {"eps_shift": 3}, None),
    "eps5": ("golden", "ε / 2 (eps_shift 5)", {"eps_shift": 5}, None),
    "eps3-lr14": ("golden", "ε × 2 and lr / 2 (the same step)", {"eps_shift": 3, "lr_shift": 14},
                  None),
    "scale2": ("golden", "weights × 2: ε × 2, logit_shift + 1 (float: identical to "
                         "lr_shift + 1; the ADC error halves relative to the scores)",
               {"eps_shift": 3, "logit_shift": 10}, "float-lr14"),
    "adc10-lr14": ("golden", "10-bit ADC, lr_shift + 1", {"cim": {"adc_bits": 10},
                                                          "lr_shift": 14}, "float-lr14"),
    "adc11-lr14": ("golden", "11-bit ADC (exact), lr_shift + 1",
                   {"cim": {"adc_bits": 11}, "lr_shift": 14}, "float-lr14"),
}
#: The variants of a default diagnosis (every one).
DEFAULT_VARIANTS = tuple(VARIANTS)


def _merge(base, changes):
    out = {k: v for k, v in base.items() if k != "cim"}
    out.update({k: v for k, v in changes.items() if k != "cim"})
    cim = {**base.get("cim", {}), **changes.get("cim", {})}
    if "adc_bits" in changes.get("cim", {}) or "weight_bits" in changes.get("cim", {}):
        cim.pop("adc_shift", None)
    return out, cim


def variant_config(name, model, steps, seed, eval_every, baseline=BASELINE):
    """The :class:`TrainerConfig` of variant ``name`` on ``model`` (``{"dataset",
    "input_pool", "hidden"}``)."""
    from zohw.cim_config import CIMConfig
    from zohw.train_config import TrainerConfig
    kind, _, changes, _ = VARIANTS[name]
    kw, cim = _merge(baseline, changes)
    return TrainerConfig(dataset=model["dataset"], input_pool=model["input_pool"],
                         hidden=tuple(model["hidden"]), cim=CIMConfig(**cim), steps=steps,
                         seed=seed, eval_every=eval_every, **kw)


def _job(job):
    name, model, steps, seed, eval_every, baseline = job
    from zohw.sw.reference import train_reference
    from zohw.sw.train import train_golden
    cfg = variant_config(name, model, steps, seed, eval_every, baseline)
    kind = VARIANTS[name][0]
    res = train_golden(cfg) if kind == "golden" else train_reference(cfg, kind)
    lo, hi = cfg.weight_range
    w = res.weights
    return {"variant": name, "kind": kind, "seed": seed,
            "test_accuracy": res.final_test_accuracy,
            "curve": {"steps": res.eval_steps, "test": res.test_accuracy},
            "mean_abs_g": float(res.g.double().abs().mean()),
            "weights_at_limit": float(((w <= lo) | (w >= hi)).double().mean())
            if kind == "golden" else 0.0,
            "adc_bits": cfg.cim.adc_bits, "adc_shift": cfg.cim.adc_shift,
            "lr_shift": cfg.lr_shift, "eps_shift": cfg.eps_shift,
            "logit_shift": cfg.logit_shift, "seconds": round(res.seconds, 1)}


def run_diagnosis(model, variants, steps, seeds, jobs=2, progress=True, baseline=BASELINE):
    """Train every variant × seed; returns the report dict."""
    for name in variants:
        variant_config(name, model, steps, seeds[0], steps)      # invalid: fails before work
    eval_every = max(1, steps // 10)
    work = [(name, model, steps, seed, eval_every, baseline) for name in variants
            for seed in seeds]
    t0 = time.perf_counter()
    records = run_jobs(_job, work, jobs, progress and "diagnosis")
    order = {name: i for i, name in enumerate(variants)}
    records.sort(key=lambda r: (order[r["variant"]], r["seed"]))
    return {"kind": "diagnosis", "model": dict(model, hidden=list(model["hidden"])),
            "steps": steps, "seeds": list(seeds), "baseline": baseline,
            "variants": list(variants), "runs": records,
            "wall_seconds": round(time.perf_counter() - t0, 1), "jobs": jobs}


def _means(report):
    by = {}
    for r in report["runs"]:
        by.setdefault(r["variant"], []).append(r)
    return {k: (sum(r["test_accuracy"] for r in v) / len(v), v) for k, v in by.items()}


def render_markdown(report, command, heading_level=3):
    """The diagnosis table of ``report`` (Markdown)."""
    h = "#" * heading_level
    means = _means(report)
    m = report["model"]
    shape = "linear" if not m["hidden"] else "mlp " + ",".join(map(str, m["hidden"]))
    pool = f", inputs pooled {m['input_pool']}×{m['input_pool']}" if m["input_pool"] > 1 else ""
    base = means.get("adc9", (None,))[0]
    lines = [f"{h} {m['dataset']} {shape}{pool}: {report['steps']} steps, seeds "
             f"{', '.join(map(str, report['seeds']))}",
             "",
             "| variant | what changes (against the 9-bit-ADC baseline) | test accuracy per seed "
             "| mean | vs baseline | vs its float MeZO | mean abs(L+ − L−) |",
             "|---|---|---|---|---|---|---|"]
    for name in report["variants"]:
        if name not in means:
            continue
        mean, runs = means[name]
        kind, text, _, ref = VARIANTS[name]
        per = " / ".join(f"{r['test_accuracy']:.3f}" for r in runs)
        vs_base = "—" if base is None or kind != "golden" or name == "adc9" else \
            f"{100 * (mean - base):+.1f} pt"
        vs_ref = f"{100 * (mean - means[ref][0]):+.1f} pt (`{ref}`)" if ref in means else "—"
        g = sum(r["mean_abs_g"] for r in runs) / len(runs)
        arith = "float32" if kind != "golden" else "hardware"
        lines.append(f"| `{name}` ({arith}) | {text} | {per} | {mean:.3f} | {vs_base} | "
                     f"{vs_ref} | {g:.0f} |")
    lines += ["", f"Regenerate: `{command}` ({len(report['runs'])} trainings, "
                  f"{report['wall_seconds']:.0f} s wall on {report['jobs']} processes).", ""]
    return "\n".join(lines)


def _list(text, name, parse=str):
    try:
        items = [parse(t.strip()) for t in text.split(",") if t.strip()]
    except ValueError:
        items = []
    if not items:
        raise UsageError(f"{name} must be a comma-separated list, not {text!r}")
    return items


def main(argv=None):
    from .scale import parse_model
    p = argparse.ArgumentParser(prog="python -m zohw.accuracy.diagnose", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist-5k")
    p.add_argument("--model", default="linear", help="linear | mlp:H[,H2...][/poolK]")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                   help=f"comma-separated, of: {', '.join(VARIANTS)}")
    p.add_argument("--steps", default="5000")
    p.add_argument("--seeds", default="1,2")
    p.add_argument("--jobs", default="2")
    p.add_argument("--out", required=True, metavar="PATH",
                   help="writes PATH.json and PATH.md")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    try:
        variants = _list(args.variants, "variants")
        bad = [v for v in variants if v not in VARIANTS]
        if bad:
            raise UsageError(f"variants must be from {', '.join(VARIANTS)}, not {bad[0]!r}")
        steps = _list(args.steps, "steps", int)[0]
        seeds = _list(args.seeds, "seeds", int)
        jobs = _list(args.jobs, "jobs", int)[0]
        if steps < 1 or jobs < 1 or any(s < 0 for s in seeds):
            raise UsageError("steps and jobs must be positive integers, seeds non-negative")
        model = dict(parse_model(args.model), dataset=args.dataset)
        report = run_diagnosis(model, variants, steps, seeds, jobs, not args.quiet)
    except (UsageError, ConfigError) as e:
        print(f"python -m zohw.accuracy.diagnose: error: {e}", file=sys.stderr)
        return 2
    command = "python -m zohw.accuracy.diagnose " + " ".join(
        a if " " not in a else repr(a) for a in (argv if argv is not None else sys.argv[1:]))
    write_json_atomic(args.out + ".json", report)
    write_text_atomic(args.out + ".md", render_markdown(report, command))
    best = max(_means(report).items(), key=lambda kv: kv[1][0])
    print(f"diagnosis: {len(report['runs'])} trainings in {report['wall_seconds']:.0f} s, "
          f"best {best[0]} {best[1][0]:.3f}; wrote {args.out}.json, {args.out}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
