"""Loss plug-ins (zohw.losses): registry, golden against independent scalar renderings, float
loss, maxima, and that nothing outside the loss modules branches on a loss name."""

import re
from pathlib import Path

import pytest
import torch

from zohw.losses import LOSSES, REGISTRY, get
from zohw.train_config import CLASSES, TrainerConfig, default_lr_shift


def hinge_scalar(cfg, s, y):
    return sum(max(0, cfg.margin + s[j] - s[y]) for j in range(len(s)) if j != y)


def mse_scalar(cfg, s, y):
    return sum((s[j] - (cfg.target if j == y else 0)) ** 2 for j in range(len(s)))


#: An element-by-element rendering of docs/trainer.md §4 for every registered loss.
SCALAR = {"hinge": hinge_scalar, "mse": mse_scalar}


def random_scores(n, lo, hi, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = torch.randint(lo, hi + 1, (n, CLASSES), generator=g)
    s[0] = lo
    s[1] = hi
    s[2, ::2] = lo
    s[2, 1::2] = hi
    labels = torch.randint(0, CLASSES, (n,), generator=g)
    return s, labels


def test_registry_drives_config_and_cli():
    assert LOSSES == tuple(REGISTRY) and set(LOSSES) == {"hinge", "mse"}
    assert TrainerConfig.fields_meta()["loss"].choices == LOSSES
    fields = set(TrainerConfig.fields_meta())
    for name, loss in REGISTRY.items():
        assert loss.name == name and loss.help and set(loss.knobs) <= fields
        assert name in TrainerConfig.describe("loss")
        assert TrainerConfig(loss=name).loss == name
    with pytest.raises(KeyError, match="loss must be one of hinge, mse, not 'l1'"):
        get("l1")


def test_lr_shift_default_follows_the_loss_and_replace():
    assert TrainerConfig().lr_shift == 13
    assert TrainerConfig().replace(update="sign").lr_shift == 3
    assert TrainerConfig().replace(loss="mse").lr_shift == 17
    assert TrainerConfig(lr_shift=5).replace(update="sign").lr_shift == 5   # given: kept
    assert default_lr_shift("mlp", "mse", "sgd") == 16


@pytest.mark.parametrize("name", LOSSES)
def test_golden_matches_scalar_rendering(name):
    assert name in SCALAR, f"add an independent scalar rendering of the new loss {name!r}"
    cfg = TrainerConfig(loss=name, margin=37, target=23)
    s, labels = random_scores(64, -300, 300)
    got = get(name).golden(cfg, s, labels)
    assert got.dtype == torch.int64 and got.shape == (64,)
    want = [SCALAR[name](cfg, row, int(y)) for row, y in zip(s.tolist(), labels)]
    assert got.tolist() == want
    # stacked scores [K, B, C] with shared labels
    st = torch.stack([s, s.flip(0)])
    assert torch.equal(get(name).golden(cfg, st, labels)[0], got)


@pytest.mark.parametrize("name", LOSSES)
def test_a_wrong_golden_is_caught(name):
    cfg = TrainerConfig(loss=name)
    s, labels = random_scores(32, -200, 200, seed=1)
    wrong = cfg.replace(margin=cfg.margin + 1, target=cfg.target + 1)
    want = [SCALAR[name](cfg, row, int(y)) for row, y in zip(s.tolist(), labels)]
    assert get(name).golden(wrong, s, labels).tolist() != want


@pytest.mark.parametrize("name", LOSSES)
def test_float_loss_equals_golden_on_integer_scores(name):
    cfg = TrainerConfig(loss=name)
    s, labels = random_scores(40, -100, 100, seed=2)
    f = get(name).float_loss(cfg, s.double(), labels)
    assert f.dtype == torch.float64
    assert torch.equal(f, get(name).golden(cfg, s, labels).double())


@pytest.mark.parametrize("name", LOSSES)
def test_sample_max_bounds_every_loss(name):
    cfg = TrainerConfig(loss=name)
    loss = get(name)
    for lo, hi in ((-50, 40), (-4096, 4095), (0, 7)):
        bound = loss.sample_max(cfg, lo, hi)
        s, labels = random_scores(2000, lo, hi, seed=3)
        corners = torch.where(torch.rand(s.shape, generator=torch.Generator().manual_seed(4))
                              < 0.5, lo, hi)
        for scores in (s, corners):
            assert int(loss.golden(cfg, scores, labels).max()) <= bound
        assert bound >= 0


def test_no_branch_on_a_loss_name_outside_the_loss_modules():
    root = Path(__file__).resolve().parent.parent
    pattern = re.compile(r"""loss\s*[!=]=\s*["']|["'](hinge|mse)["']\s*[!=]=|\.loss\s+in\s""")
    hits = []
    for folder in ("hw", "sw", "zohw"):
        for path in (root / folder).rglob("*.py"):
            if "losses" in path.relative_to(root).parts:
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    hits.append(f"{path.relative_to(root)}:{n}: {line.strip()}")
    assert hits == []
