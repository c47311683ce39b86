"""Model shapes: any stack of CIM layers over any data set's inputs and classes, the golden
model's fast path bit-identical to the layer-by-layer one, the float references following the
same shape."""

import numpy as np
import pytest
import torch

from zohw.cim_config import CIMConfig
from zohw.errors import ConfigError
from zohw.hw.cim import BehaviouralCIMMacro
from zohw.sw import train as tr
from zohw.sw.reference import float_forward, train_reference
from zohw.sw.train import check_data, forward, load_data, train_golden, unflatten
from zohw.train_config import TrainerConfig


class _Plain(BehaviouralCIMMacro):
    """The behavioural macro with its golden model called layer by layer (the trainer's
    generic path, not the prepared-operand fast path)."""

    def golden(self, weights, x):
        return super().golden(weights, x)


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    """A 3-class data set of 12 features (0..20) in a .npz: three noisy prototypes."""
    rng = np.random.default_rng(0)
    proto = rng.integers(0, 21, (3, 12))
    y = np.repeat(np.arange(3), 60)
    x = np.clip(proto[y] + rng.integers(-4, 5, (180, 12)), 0, 20)
    path = tmp_path_factory.mktemp("data") / "blobs.npz"
    np.savez(path, x=x.astype(np.int64), y=y.astype(np.int64))
    return str(path)


def _same(a, b):
    return (torch.equal(a.weights, b.weights) and torch.equal(a.l_plus, b.l_plus)
            and torch.equal(a.l_minus, b.l_minus) and torch.equal(a.g, b.g)
            and torch.equal(a.write_counts, b.write_counts)
            and a.test_accuracy == b.test_accuracy and a.train_accuracy == b.train_accuracy)


FAST_CASES = [
    dict(),
    dict(hidden=(16,)),
    dict(hidden=(12, 7), loss="mse", update="sign"),
    dict(cim=CIMConfig(tile="16x4"), hidden=(9,)),                 # row and column tiles
    dict(cim=CIMConfig(input_mode="parallel", adc_bits=6), rounding="floor"),
    dict(cim=CIMConfig(adc_bits=6, adc_shift=2)),                    # the ADC clips
]


@pytest.mark.parametrize("kw", FAST_CASES, ids=lambda kw: TrainerConfig(**kw).shape + "-" +
                         TrainerConfig(**kw).cim.name)
def test_fast_path_equals_layer_by_layer(kw):
    cfg = TrainerConfig(steps=24, eval_every=12, **kw)
    assert tr._Fast.applies(tr._layers(cfg)) and not tr._Fast.applies(tr._layers(cfg, _Plain))
    assert _same(train_golden(cfg), train_golden(cfg, macro=_Plain))


def test_fast_path_without_drive_table(monkeypatch):
    cfg = TrainerConfig(steps=10, eval_every=10, hidden=(8,), cim=CIMConfig(tile="32x8"))
    a = train_golden(cfg)
    monkeypatch.setattr(tr._Fast, "TABLE_BYTES", 0)
    assert _same(a, train_golden(cfg))


def test_a_wrong_fast_path_is_caught(monkeypatch):
    """The comparison above fails for a fast path one score LSB off (class 0, w + delta)."""
    cfg = TrainerConfig(steps=6, eval_every=6)
    scorer = tr._Fast.scorer

    def off_by_one(self):
        scores = scorer(self)

        def wrong(*a):
            s = scores(*a).clone()
            s[0, :, 0] += 1
            return s
        return wrong

    monkeypatch.setattr(tr._Fast, "scorer", off_by_one)
    assert not _same(train_golden(cfg), train_golden(cfg, macro=_Plain))


def test_deep_forward_is_the_layer_stack():
    """forward = the macros in order with the requantisation between them (written out)."""
    from zohw.sw.cim import cim_matvec

    cfg = TrainerConfig(hidden=(8, 5), cim=CIMConfig(tile="32x4"))
    g = torch.Generator().manual_seed(1)
    lo, hi = cfg.weight_range
    w = torch.randint(lo, hi + 1, (cfg.params,), generator=g)
    x = torch.randint(0, 16, (6, 65), generator=g)
    x[:, 64] = 15
    y = x
    for i, (c, m) in enumerate(zip(cfg.layer_cims, unflatten(cfg, w))):
        if i:
            y = torch.cat([torch.clamp(y >> cfg.hidden_shift, 0, 15),
                           torch.full((6, 1), 15)], 1)
        y = cim_matvec(c, m, y)
    assert torch.equal(forward(cfg, w, x), y)
    assert [(c.rows, c.cols) for c in cfg.layer_cims] == [(65, 8), (9, 5), (6, 10)]
    assert cfg.layer_tiles == (3 * 2, 1 * 2, 1 * 3)
    # the float reference has the same shape
    assert float_forward(cfg, w.float(), x.float()).shape == (6, 10)


def test_npz_data_set_sets_the_shape_and_trains(blobs):
    import math

    mlp = TrainerConfig(dataset=blobs, hidden=(8,), steps=100, eval_every=100, batch=16)
    assert (mlp.inputs, mlp.classes, mlp.shape) == (12, 3, "12-8-3")
    assert mlp.layer_cims[0].rows == 13 and mlp.label_bits == 2
    data = load_data(mlp)
    assert data.x_train.shape[1] == 13 and math.gcd(mlp.stride, data.n_train) == 1
    assert train_reference(mlp, "fo-sgd", fo_lr=256.0).final_test_accuracy >= 0.9
    assert train_reference(mlp.replace(steps=20, eval_every=20), "float-gauss").weights.shape \
        == (mlp.params,)
    # 13 rows give results ~5x smaller than digits' 65: a larger update step (2**-9)
    linear = mlp.replace(hidden=(), lr_shift=9, steps=400, eval_every=400)
    res = train_golden(linear)
    assert res.test_accuracy[0] < 0.5 and res.final_test_accuracy >= 0.9


def test_data_must_fit_the_configuration(blobs):
    digits = TrainerConfig()
    other = load_data(TrainerConfig(dataset=blobs))
    with pytest.raises(ConfigError, match=r"x_train must have shape \(n, 65\)"):
        check_data(digits, other)
    with pytest.raises(ConfigError, match="y_train must hold labels from 0 to 9"):
        check_data(digits, _Swap(load_data(digits), y_train=torch.full((1433,), 10)))
    with pytest.raises(ConfigError, match="x_test must hold codes from 0 to 15"):
        check_data(digits, _Swap(load_data(digits), x_test=torch.full((364, 65), 16)))


class _Swap:
    """A data set with some arrays replaced."""

    def __init__(self, base, **arrays):
        for k in ("x_train", "y_train", "x_test", "y_test"):
            setattr(self, k, arrays.get(k, getattr(base, k)))
        self.name = "swapped"
        self.n_train = len(self.y_train)
