"""``zohw train``: zeroth-order training of a classifier in hardware arithmetic.

``zohw train [--rng S] [engine options] [--dataset digits|mnist-5k|PATH.npz --input-pool K]
[--hidden H[,H2,…] --tile ROWSxCOLS --write-lanes N --loss hinge|mse --mse-target T
--update sgd|sign --steps T --batch B --seed S --eps-shift E --lr-shift L …] [--cosim]
[--reference float-gauss|fo-sgd … [--fo-lr LR]] --json FILE [--plot FILE.png]`` runs the golden model
(:func:`zohw.sw.train.train_golden`, bit-exact with the RTL trainer) — fast, with a progress
bar — and writes the result. ``--reference`` also trains the float references on the same
batches (:mod:`zohw.sw.reference`). ``--cosim`` would run the same steps on the Verilated RTL.

JSON keys (:data:`zohw.sw.train.RESULT_KEYS` first): ``mode`` ("golden"), ``strategy``, ``steps``, ``test_accuracy`` (final),
``train_loss`` (per step, (L+ + L−) / (2·batch)), ``mismatches`` (0: golden mode compares
nothing), ``cycles_per_step`` (golden mode: the cycle model's value — the measured one comes
from ``--cosim``), ``predicted_cycles_per_step``; then ``accuracy_curve``, ``write_counts``,
``cycle_breakdown``, ``config`` …, ``dataset`` (name, features, classes, train/test sizes,
full scale, input_pool, input_bits), ``model`` (shape, kind, d), ``tiles`` (the macro, and per
layer rows, cols, row/col tiles, utilisation), ``write_lanes``, ``writes_per_weight`` (mean over
weights, whole run) and ``writes_per_weight_per_step``, and ``references``. ``--fo-lr`` needs
``--reference fo-sgd`` (and so cannot be used with ``--cosim``). Exit code 0, or 2 for an
invalid configuration.
"""

import math
import sys

from zohw.errors import UsageError
from zohw.io import atomic_open, check_output_path, write_json_atomic
from zohw.limits import check_memory

from ._engine_options import add_engine_options, engine_config, one_line_errors

#: The CIM macro fields ``zohw train`` exposes (the rest keep CIMConfig's defaults;
#: ``write_lanes`` is the trainer's own field).
_CIM_FIELDS = ("adc_bits", "tile")
#: TrainerConfig fields whose CLI flag is renamed here: ``--target`` means an FPGA family in
#: every zohw command (issue 13), so the MSE target is ``--mse-target``.
_RENAMED = {"target": "--mse-target"}


def register(subparsers):
    from zohw.cim_config import CIMConfig
    from zohw.configbase import add_options
    from zohw.train_config import DEFAULT_STRATEGY, TrainerConfig

    p = one_line_errors(subparsers.add_parser(
        "train", help="zeroth-order training on a data set (golden model, or RTL with --cosim)",
        description="Zeroth-order training of a classifier in hardware arithmetic on a bundled "
                    "data set or your own .npz (arrays x, y): the "
                    "golden model (bit-exact with the RTL trainer) by default, the Verilated RTL "
                    f"with --cosim. The strategy defaults to {DEFAULT_STRATEGY}."))
    add_engine_options(p, strategy_required=False)
    add_options(p, TrainerConfig, exclude=tuple(_RENAMED))
    for name, flag in _RENAMED.items():
        meta = TrainerConfig.fields_meta()[name]
        p.add_argument(flag, dest=f"cfg_{name}", default=None,
                       metavar=meta.metavar or name.upper(), help=TrainerConfig.describe(name))
    add_options(p, CIMConfig, _CIM_FIELDS)
    p.add_argument("--cosim", action="store_true",
                   help="run the steps on the Verilated RTL trainer and compare")
    p.add_argument("--reference", action="append", default=[], metavar="KIND",
                   help="also train a float reference: float-gauss (MeZO, Gaussian z) or "
                        "fo-sgd (backpropagation); repeatable or comma-separated")
    p.add_argument("--fo-lr", default=None, metavar="LR",
                   help="learning rate of the fo-sgd reference (default 4 linear, 16 mlp; "
                        "needs --reference fo-sgd)")
    p.add_argument("--json", required=True, metavar="FILE", help="write the result here")
    p.add_argument("--plot", metavar="FILE.png", help="plot loss and accuracy against steps")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no summary line")
    p.set_defaults(func=run_train)


def trainer_config(args):
    """The :class:`TrainerConfig` the parsed options describe (ConfigError if invalid)."""
    from zohw.cim_config import CIMConfig
    from zohw.configbase import options_to_kwargs
    from zohw.train_config import DEFAULT_STRATEGY, TrainerConfig

    if getattr(args, "rng", None) is None:
        args.rng = DEFAULT_STRATEGY
    engine = engine_config(args)
    cim = CIMConfig(**options_to_kwargs(args, CIMConfig, _CIM_FIELDS))
    return TrainerConfig(engine=engine, cim=cim, **options_to_kwargs(args, TrainerConfig))


def _memory_estimate(cfg, cosim):
    """The run's memory estimate (zohw.limits; refused above the limit before any work)."""
    from zohw.limits import golden_train_estimate, trainer_cosim_estimate
    from zohw.sim.trainer import CHECKPOINT_EVERY

    if cosim:
        return trainer_cosim_estimate(cfg, cfg.steps, (cfg.steps - 1) // CHECKPOINT_EVERY)
    return golden_train_estimate(cfg)


def check_stride(cfg):
    """The mini-batch stride must be coprime with the train-set size: checked before any
    training (the data code would only find out at the first batch)."""
    from zohw.sw.data import dataset_info

    n_train = dataset_info(cfg.dataset, cfg.input_pool).n_train
    if math.gcd(cfg.stride, n_train) != 1:
        raise UsageError(f"stride must be coprime with the train-set size {n_train}, "
                         f"not {cfg.stride}")


def _references(args):
    from zohw.sw.reference import REFERENCES
    kinds = []
    for item in args.reference:
        for k in item.split(","):
            k = k.strip()
            if k not in REFERENCES:
                raise UsageError(f"reference must be one of {', '.join(REFERENCES)}, not {k!r}")
            if k not in kinds:
                kinds.append(k)
    return kinds


def _fo_lr(args, kinds):
    if args.fo_lr is None:
        return None
    if args.cosim:
        raise UsageError("--fo-lr cannot be used with --cosim (the co-simulation trains no "
                         "float reference)")
    if "fo-sgd" not in kinds:
        raise UsageError("--fo-lr needs --reference fo-sgd (it is the learning rate of the "
                         "fo-sgd reference)")
    try:
        v = float(args.fo_lr)
    except ValueError:
        raise UsageError(f"fo_lr must be a number, not {args.fo_lr!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise UsageError(f"fo_lr must be a positive number, not {args.fo_lr!r}")
    return v


def run_cosim(cfg, args):
    """``--cosim``: run ``cfg`` on the Verilated RTL trainer (:mod:`zohw.sim.trainer`), every
    step's L+, L-, g and cycles and every weight and write count at checkpoints and at the end
    compared with the golden model, and return the result dict (same keys as the golden mode,
    ``mode`` = "cosim")."""
    from zohw.sim.trainer import run_trainer_cosim

    from .sim import StepBar

    with StepBar(cfg.steps, "zohw train --cosim", disable=True if args.quiet else None) as bar:
        return run_trainer_cosim(cfg, progress=bar.phase, on_progress=bar.update)


def mapping_dict(cfg):
    """What ``cfg`` is made of: the data set, the model shape and the CIM tile mapping of every
    layer (from :attr:`TrainerConfig.layer_cims`), as JSON-ready dicts."""
    from zohw.sw.data import dataset_info

    info = dataset_info(cfg.dataset, cfg.input_pool)
    layers = [{"rows": c.rows, "cols": c.cols, "row_tiles": c.row_tiles,
               "col_tiles": c.col_tiles, "tiles": c.tiles,
               "utilisation": round(float(c.utilisation), 4)} for c in cfg.layer_cims]
    return {
        "dataset": {"name": info.name, "features": info.features, "classes": info.classes,
                    "n_train": info.n_train, "n_test": info.n_test,
                    "max_value": info.max_value, "input_pool": cfg.input_pool,
                    "input_bits": cfg.cim.input_bits},
        "model": {"shape": cfg.shape, "kind": cfg.model, "hidden": list(cfg.hidden),
                  "params": cfg.params},
        "tiles": {"tile": cfg.cim.tile, "total": sum(c.tiles for c in cfg.layer_cims),
                  "layers": layers},
        "write_lanes": cfg.write_lanes,
    }


def mapping_lines(cfg):
    """The mapping of :func:`mapping_dict` as short text lines (printed before the summary)."""
    m = mapping_dict(cfg)
    ds = m["dataset"]
    pool = f", pooled {cfg.input_pool}x{cfg.input_pool}" if cfg.input_pool > 1 else ""
    out = [f"data set {ds['name']}: {ds['features']} features{pool}, {ds['classes']} classes, "
           f"{ds['n_train']} train / {ds['n_test']} test samples",
           f"model {cfg.shape} ({cfg.model}, d = {cfg.params} weights) on "
           f"{m['tiles']['total']} tile(s) of {cfg.cim.tile}, write_lanes {cfg.write_lanes}"]
    for i, L in enumerate(m["tiles"]["layers"]):
        out.append(f"  layer {i + 1}: {L['rows']}x{L['cols']} weights (bias row included) -> "
                   f"{L['row_tiles']}x{L['col_tiles']} = {L['tiles']} tile(s), "
                   f"{100 * L['utilisation']:.1f} % of their cells used")
    return out


def _writes(doc, cfg):
    """Add writes per weight (whole run, mean over weights) and per step."""
    wc = doc.get("write_counts")
    if isinstance(wc, dict) and "mean" in wc:
        doc["writes_per_weight"] = round(float(wc["mean"]), 4)
        doc["writes_per_weight_per_step"] = round(float(wc["mean"]) / max(1, doc["steps"]), 4)
    return doc


def result_dict(res, references=()):
    """The JSON document of a golden :class:`zohw.sw.train.TrainResult` (plus references)."""
    from zohw.sw.train import cycle_breakdown, predicted_cycles_per_step

    cfg = res.config
    predicted = predicted_cycles_per_step(cfg)
    wc = res.write_counts
    doc = {
        "mode": "golden",
        "strategy": cfg.engine.strategy,
        "steps": cfg.steps,
        "test_accuracy": res.final_test_accuracy,
        "train_loss": [float(v) for v in res.step_loss()],
        "mismatches": 0,
        "cycles_per_step": predicted,
        "predicted_cycles_per_step": predicted,
        "cycle_breakdown": cycle_breakdown(cfg),
        "train_accuracy": res.train_accuracy[-1],
        "accuracy_curve": {"steps": res.eval_steps, "test": res.test_accuracy,
                           "train": res.train_accuracy},
        "write_counts": {"min": int(wc.min()), "max": int(wc.max()),
                         "mean": float(wc.double().mean()), "total": int(wc.sum()),
                         "per_weight": wc.tolist()},
        "weights": res.weights.tolist(),
        "g_saturated": int((res.g.abs() >= cfg.diff_max).sum()),
        "seconds": round(res.seconds, 3),
        "engine": cfg.engine.name,
        "config": cfg.as_dict(),
        "config_hash": cfg.config_hash,
        "eps": cfg.eps,
        "lr": cfg.lr,
    }
    doc.update(mapping_dict(cfg))
    _writes(doc, cfg)
    if references:
        doc["references"] = {
            kind: {"test_accuracy": r.final_test_accuracy,
                   "train_loss": [float(v) for v in r.step_loss()],
                   "accuracy_curve": {"steps": r.eval_steps, "test": r.test_accuracy,
                                      "train": r.train_accuracy},
                   "seconds": round(r.seconds, 3)}
            for kind, r in references}
    return doc


def _smooth(values, window):
    import numpy as np
    v = np.asarray(values, dtype=float)
    if window <= 1 or len(v) < window:
        return np.arange(1, len(v) + 1), v
    c = np.cumsum(np.insert(v, 0, 0.0))
    return np.arange(window, len(v) + 1), (c[window:] - c[:-window]) / window


def plot_training(path, runs, title=""):
    """Loss (moving average) and test accuracy against steps for ``runs``: a list of
    ``(label, train_loss list, accuracy_curve dict)``. Written atomically."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, loss, curve in runs:
        window = max(1, len(loss) // 100)
        x, y = _smooth(loss, window)
        ax1.plot(x, y, label=label, lw=1.2)
        ax2.plot(curve["steps"], curve["test"], label=label, lw=1.2, marker=".")
    ax1.set_xlabel("training step")
    ax1.set_ylabel("train loss per sample (score units, moving average)")
    ax1.set_yscale("log")
    ax2.set_xlabel("training step")
    ax2.set_ylabel("test accuracy (fraction of test samples)")
    ax2.set_ylim(0, 1)
    ax2.grid(alpha=0.3)
    ax1.grid(alpha=0.3)
    ax2.legend(fontsize=8, loc="lower right")
    if title:
        import textwrap
        fig.suptitle("\n".join(textwrap.wrap(title, 150)), fontsize=9)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)


def plot_title(cfg):
    """The plot's title in words."""
    return (f"Zeroth-order training on {cfg.dataset}: {cfg.model} model {cfg.shape}, "
            f"{cfg.engine.strategy} perturbations, batch {cfg.batch}, seed {cfg.seed}")


def run_train(args):
    cfg = trainer_config(args)
    kinds = _references(args)
    if args.cosim and kinds:
        raise UsageError("--reference cannot be used with --cosim (the co-simulation trains "
                         "no float reference)")
    fo_lr = _fo_lr(args, kinds)
    check_stride(cfg)
    check_memory(_memory_estimate(cfg, args.cosim))
    check_output_path("--json", args.json)
    if args.plot is not None:
        check_output_path("--plot", args.plot, suffix=".png")
    if not args.quiet:
        for line in mapping_lines(cfg):
            print(f"zohw train: {line}", file=sys.stderr)
    if args.cosim:
        doc = run_cosim(cfg, args)
        for key, value in mapping_dict(cfg).items():
            doc.setdefault(key, value)
        _writes(doc, cfg)
    else:
        from zohw.sw.data import load_dataset
        from zohw.sw.train import train_golden
        data = load_dataset(cfg.dataset, cfg.cim.input_bits, cfg.input_pool)
        res = train_golden(cfg, data, progress=not args.quiet)
        refs = []
        if kinds:
            from zohw.sw.reference import train_reference
            for kind in kinds:
                refs.append((kind, train_reference(cfg, kind, data, progress=not args.quiet,
                                                   fo_lr=fo_lr)))
        doc = result_dict(res, refs)
    write_json_atomic(args.json, doc)
    if args.plot:
        runs = [(f"{doc['mode']} {doc['strategy']}", doc["train_loss"], doc["accuracy_curve"])]
        for kind, ref in doc.get("references", {}).items():
            runs.append((kind, ref["train_loss"], ref["accuracy_curve"]))
        plot_training(args.plot, runs, title=plot_title(cfg))
    if not args.quiet:
        verdict = ""
        if args.cosim:
            verdict = (f"{'PASS' if not doc['mismatches'] else 'FAIL'} "
                       f"({doc['mismatches']} mismatches) ")
        wpw = doc.get("writes_per_weight_per_step")
        line = (f"zohw train: {verdict}{doc['mode']} {doc['strategy']} {doc['steps']} steps on "
                f"{cfg.dataset} ({cfg.shape}, {doc['tiles']['total']} tile(s)): "
                f"test accuracy {doc['test_accuracy']:.4f}, "
                f"{doc['cycles_per_step']} cycles/step"
                + (f", {wpw} writes/weight/step" if wpw is not None else ""))
        for kind, ref in doc.get("references", {}).items():
            line += f"; {kind} {ref['test_accuracy']:.4f}"
        written = [p for p in (args.json, args.plot) if p]
        print(f"{line}; wrote {', '.join(written)}", file=sys.stderr)
    return 1 if doc["mismatches"] else 0
